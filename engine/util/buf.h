/*
 * buf: a growable byte buffer, always NUL-terminated (git's strbuf, curl's dynbuf).
 *
 *   struct buf b = BUF_INIT;  buf_adds(&b, "x"); buf_addf(&b, "%d", 1);
 *   char *s = buf_detach(&b);   caller frees s
 *   buf_release(&b);            frees the storage, leaves b empty and reusable
 *
 * A buf with max > 0 refuses to grow beyond max bytes: buf_add returns -1
 * and keeps what it has (used to cap HTTP error bodies).
 */
#ifndef MM_BUF_H
#define MM_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max; /* 0: unlimited */
};

#define BUF_INIT              \
	{                     \
		NULL, 0, 0, 0 \
	}

int buf_add(struct buf *b, const void *data, size_t len);
int buf_adds(struct buf *b, const char *s);
int buf_addc(struct buf *b, char c);
int buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vaddf(struct buf *b, const char *fmt, va_list ap);
/* Always a valid string, "" when empty; owned by b. */
const char *buf_cstr(const struct buf *b);
void buf_reset(struct buf *b);
void buf_release(struct buf *b);
/* Hands the storage to the caller (caller frees), leaves b empty. Never NULL. */
char *buf_detach(struct buf *b);
/* Drops trailing whitespace. */
void buf_rtrim(struct buf *b);
/* Appends the whole file; 0, or -1 with errno set (git's strbuf_read_file). */
int buf_read_file(struct buf *b, const char *path);

#endif

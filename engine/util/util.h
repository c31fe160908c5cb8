/*
 * util: allocation that aborts on out-of-memory, clocks, hashing helpers.
 * Every x* function returns memory the caller frees.
 */
#ifndef MM_UTIL_H
#define MM_UTIL_H

#include <stddef.h>
#include <stdint.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Wall clock in milliseconds since the epoch; monotonic clock in ms. */
int64_t now_ms(void);
int64_t mono_ms(void);
/* "2026-11-22T04:06:58Z" into out (at least 32 bytes). */
void iso8601_utc(int64_t ms, char *out, size_t outlen);

/* Parses a decimal int64 without atoi's silence; 0 on success, -1 on junk/overflow. */
int parse_i64(const char *s, int64_t *out);
/* "90s", "15m", "12h", "2d", "1h30m" or plain seconds → seconds. */
int parse_duration(const char *s, int64_t *seconds);
/* "64MiB", "5MB", "1048576" → bytes. */
int parse_size(const char *s, int64_t *bytes);
/* A size per second: "50MB/s", "50MiB/s", "50MB" or bytes; 0 or -1. */
int parse_rate(const char *s, int64_t *bytes_per_s);

/* Edit distance, for did-you-mean suggestions. */
size_t levenshtein(const char *a, const char *b);

/*
 * url as "scheme://host/path" (or a bare path as "path"), without userinfo,
 * query or fragment: presigned links carry their signature in the query, so
 * this is the only form of a URL that messages, logs and state may hold.
 */
void url_redact(const char *url, char *out, size_t n);

/* d as an int64_t, saturated at the ends of the range; NaN is 0. For numbers read from JSON. */
int64_t double_to_i64(double d);

struct stat;
#define FILE_ID_LEN 80
/*
 * A file's identity as "dev:inode:mtime_ns" in out (FILE_ID_LEN bytes): what
 * says "the same file, not rewritten since" without reading it. A rewrite gets
 * a new mtime or a new inode (a same-tick rewrite in place is git's "racy"
 * case, accepted here as there).
 */
void file_identity(const struct stat *st, char *out);
/* st's mtime in nanoseconds. */
int64_t mtime_ns(const struct stat *st);

#endif

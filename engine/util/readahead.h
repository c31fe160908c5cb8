/*
 * readahead: reads one file sequentially on a second thread, hashing it as
 * it goes, so that the next blocks are read and hashed while the current
 * ones are being sent. An upload then reads its file once, and the sender
 * never waits for the disk or for SHA-256.
 *
 *   struct readahead *ra = ra_new(fd, size, hash, expect_hex);   hash 0: no hashing
 *   ra_start(ra, offset);              hand out bytes from offset (restarts the reader)
 *   ra_wait(ra, stop, ctx);            optional: until the first bytes are ready
 *   n = ra_read(ra, buf, len);         the next bytes; 0 at end of file, -1 with ra_error()
 *   ra_start(ra, other_offset);        after a failed request: anywhere, earlier or later
 *   ra_digest(ra, hex);                1 once every byte of the file was hashed
 *   ra_free(ra);                       stops the reader; caller closes fd
 *
 * Hashing covers each byte once, in order, whatever ra_start asks: bytes
 * before the offset that were never hashed are read and hashed first (a
 * resumed upload), bytes read again after a restart are not hashed twice.
 * With expect_hex, the block holding the file's last byte is only handed
 * out once the whole file's digest equals it: the receiver never gets a
 * complete file with another digest (an upload session stays incomplete).
 *
 * Memory: RA_SLOTS blocks of RA_BLOCK bytes, whatever the file size; none
 * when there is nothing to hash (hash 0, no expect_hex): ra_read then reads
 * straight into the caller's buffer, on the caller's thread. One thread
 * calls ra_start/ra_read/ra_digest; the reader thread is internal.
 */
#ifndef MM_READAHEAD_H
#define MM_READAHEAD_H

#include <stddef.h>
#include <stdint.h>

#define RA_SLOTS 4
#define RA_BLOCK (256 * 1024)

struct readahead;

/* Caller frees with ra_free; fd stays the caller's. hash: compute the
 * file's SHA-256; expect_hex (may be NULL, copied): refuse another one. */
struct readahead *ra_new(int fd, int64_t size, int hash, const char *expect_hex);

/* Starts handing out bytes at offset (0 <= offset <= size); 0 or -1 (errno). */
int ra_start(struct readahead *ra, int64_t offset);

/* Waits until ra_read would not block (a resumed upload hashes what the
 * server already holds first), polling stop every 100 ms. 0 ready, 1
 * stopped, -1 failed (ra_error). */
int ra_wait(struct readahead *ra, int (*stop)(void *), void *stop_ctx);

/* Where the next ra_read starts. */
int64_t ra_pos(const struct readahead *ra);

/* Up to len bytes at the current position; blocks until the reader has them.
 * 0 at the end of the file; -1 on a read error, a short file or a digest
 * mismatch (ra_error says which). */
long ra_read(struct readahead *ra, void *buf, size_t len);

/* Why ra_read failed: "" when it did not. */
const char *ra_error(const struct readahead *ra);

/* 1 and hex filled once every byte was hashed, else 0. */
int ra_digest(const struct readahead *ra, char hex[65]);

/* Bytes read from the file so far (every pass counted). */
int64_t ra_bytes_read(const struct readahead *ra);

void ra_free(struct readahead *ra);

#endif

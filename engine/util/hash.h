/*
 * hash: SHA-256 (OpenSSL's libcrypto) over memory, a stream or a file, and
 * lowercase hex. The one place the project hashes: downloads, uploads, the
 * archive check and fingerprints all use it.
 *
 *   struct sha256 h;
 *   sha256_init(&h);  sha256_update(&h, p, n); ...  sha256_final_hex(&h, hex);  sha256_release(&h);
 *   sha256_fd(&h, fd, 0, -1, blk, sizeof(blk), tick, ctx, &n)    a whole file, with progress
 */
#ifndef MM_HASH_H
#define MM_HASH_H

#include <stddef.h>
#include <stdint.h>

struct sha256 {
	void *md; /* EVP_MD_CTX, owned */
};

/* 0, or -1 when libcrypto cannot (out of memory). */
int sha256_init(struct sha256 *);
/* Starts over (after final, or to drop what was fed). */
void sha256_reset(struct sha256 *);
void sha256_update(struct sha256 *, const void *data, size_t len);
/* Writes 64 hex digits and a NUL; the stream is then reset. */
void sha256_final_hex(struct sha256 *, char hex[65]);
void sha256_release(struct sha256 *);

/* One-shot digest of a buffer. */
void sha256_hex(const void *data, size_t len, char hex[65]);
/* n bytes as 2n lowercase hex digits and a NUL. */
void hex_encode(const void *bytes, size_t n, char *out);

/*
 * Feeds bytes [off, off + len) of fd (len < 0: to the end of the file) to h
 * with pread in blocks of blk (caller's buffer), calling tick(tick_ctx, bytes
 * hashed so far) after each block when tick is set: progress, and a nonzero
 * answer stops. *hashed counts the bytes fed. Returns 0; -1 with errno on a
 * read error (ENODATA when the file ends before len); 1 when tick said stop.
 */
int sha256_fd(struct sha256 *h, int fd, int64_t off, int64_t len, void *blk, size_t blksize,
	      int (*tick)(void *, int64_t), void *tick_ctx, int64_t *hashed);

#endif

#include "hash.h"

#include <errno.h>
#include <openssl/evp.h>
#include <unistd.h>

int sha256_init(struct sha256 *h)
{
	h->md = EVP_MD_CTX_new();
	if (!h->md || !EVP_DigestInit_ex(h->md, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(h->md);
		h->md = NULL;
		return -1;
	}
	return 0;
}

void sha256_reset(struct sha256 *h)
{
	EVP_DigestInit_ex(h->md, EVP_sha256(), NULL);
}

void sha256_update(struct sha256 *h, const void *data, size_t len)
{
	EVP_DigestUpdate(h->md, data, len);
}

void sha256_final_hex(struct sha256 *h, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	EVP_DigestFinal_ex(h->md, md, &n);
	hex_encode(md, n < 32 ? n : 32, hex);
	sha256_reset(h);
}

void sha256_release(struct sha256 *h)
{
	EVP_MD_CTX_free(h->md);
	h->md = NULL;
}

void sha256_hex(const void *data, size_t len, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	hex_encode(md, n < 32 ? n : 32, hex);
}

void hex_encode(const void *bytes, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *b = bytes;

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

int sha256_fd(struct sha256 *h, int fd, int64_t off, int64_t len, void *blk, size_t blksize,
	      int (*tick)(void *, int64_t), void *tick_ctx, int64_t *hashed)
{
	*hashed = 0;
	while (len < 0 || *hashed < len) {
		size_t want = len < 0 || len - *hashed > (int64_t)blksize ? blksize : (size_t)(len - *hashed);
		ssize_t n = pread(fd, blk, want, (off_t)(off + *hashed));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			if (len < 0)
				return 0;
			errno = ENODATA;
			return -1;
		}
		sha256_update(h, blk, (size_t)n);
		*hashed += n;
		if (tick && tick(tick_ctx, *hashed))
			return 1;
	}
	return 0;
}

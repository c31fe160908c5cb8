/*
 * readahead in both modes: direct (nothing to hash: preads into the caller's
 * buffer, no thread) and hashing (a reader thread and a ring). Each hands out
 * the file's bytes from any offset, restarts anywhere, and reports a file
 * that shrank; hashing covers each byte once and withholds the last block
 * of a file whose digest is not the expected one.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "hash.h"
#include "readahead.h"

#define SIZE (3 * RA_BLOCK + 12345) /* not a whole number of blocks */

static unsigned char *pattern(void)
{
	unsigned char *p = malloc(SIZE);

	for (size_t i = 0; i < SIZE; i++)
		p[i] = (unsigned char)(i * 2654435761u >> 13);
	return p;
}

static int temp_file(const unsigned char *data, size_t len)
{
	char path[] = "/tmp/mm-test-ra-XXXXXX";
	int fd = mkstemp(path);

	unlink(path);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len)
		abort();
	return fd;
}

/* Everything from offset in reads of up to `step` bytes; 1 when it equals data. */
static int drain(struct readahead *ra, const unsigned char *data, int64_t offset, size_t step)
{
	unsigned char *buf = malloc(step);
	int64_t at = offset;
	long n;
	int ok = 1;

	while ((n = ra_read(ra, buf, step)) > 0) {
		ok &= at + n <= SIZE && !memcmp(buf, data + at, (size_t)n);
		at += n;
	}
	free(buf);
	return ok && n == 0 && at == SIZE;
}

static void direct_mode(const unsigned char *data, int fd)
{
	struct readahead *ra = ra_new(fd, SIZE, 0, NULL);
	unsigned char buf[100];
	char hex[65];

	CHECK(ra_start(ra, 0) == 0);
	CHECK(ra_wait(ra, NULL, NULL) == 0);
	CHECK(drain(ra, data, 0, 512 * 1024));
	CHECK(ra_bytes_read(ra) == SIZE);
	CHECK(ra_digest(ra, hex) == 0); /* nothing was hashed */
	/* a failed request: start again earlier */
	CHECK(ra_start(ra, 1000) == 0);
	CHECK(ra_pos(ra) == 1000);
	CHECK(drain(ra, data, 1000, 7777));
	/* the file shrinks under us */
	CHECK(ra_start(ra, SIZE - 100) == 0);
	CHECK(ftruncate(fd, SIZE - 200) == 0);
	CHECK(ra_read(ra, buf, sizeof(buf)) == -1);
	CHECK_CONTAINS(ra_error(ra), "shorter than before");
	ra_free(ra);
	CHECK(pwrite(fd, data + SIZE - 200, 200, SIZE - 200) == 200);
}

static void hashing_mode(const unsigned char *data, int fd, const char *want)
{
	struct readahead *ra = ra_new(fd, SIZE, 1, NULL);
	char hex[65];

	/* a resumed upload: the bytes before the offset are hashed, not handed out */
	CHECK(ra_start(ra, RA_BLOCK + 5) == 0);
	CHECK(ra_wait(ra, NULL, NULL) == 0);
	CHECK(drain(ra, data, RA_BLOCK + 5, 300 * 1024));
	CHECK(ra_digest(ra, hex) == 1);
	CHECK_STR(hex, want);
	/* sent again from the start: the digest does not change */
	CHECK(ra_start(ra, 0) == 0);
	CHECK(drain(ra, data, 0, 64 * 1024));
	CHECK(ra_digest(ra, hex) == 1);
	CHECK_STR(hex, want);
	ra_free(ra);
}

static void wrong_digest_withholds_the_end(int fd)
{
	const char *other = "0000000000000000000000000000000000000000000000000000000000000000";
	struct readahead *ra = ra_new(fd, SIZE, 1, other);
	unsigned char *buf = malloc(SIZE);
	int64_t got = 0;
	long n;

	CHECK(ra_start(ra, 0) == 0);
	while ((n = ra_read(ra, buf, SIZE)) > 0)
		got += n;
	CHECK(n == -1);
	CHECK(got > 0 && got < SIZE); /* all but the block holding the last byte */
	CHECK_CONTAINS(ra_error(ra), "not the one expected");
	free(buf);
	ra_free(ra);
}

int main(void)
{
	unsigned char *data = pattern();
	int fd = temp_file(data, SIZE);
	struct sha256 h;
	char want[65];

	CHECK(sha256_init(&h) == 0);
	sha256_update(&h, data, SIZE);
	sha256_final_hex(&h, want);
	sha256_release(&h);
	direct_mode(data, fd);
	hashing_mode(data, fd, want);
	wrong_digest_withholds_the_end(fd);
	close(fd);
	free(data);
	return check_done();
}

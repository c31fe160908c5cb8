/*
 * readahead: a ring of RA_SLOTS blocks between one reader thread (fills the
 * slot after the last full one, hashes it, publishes it) and the caller
 * (drains the oldest). A slot belongs to the reader from the moment count
 * says it is free until it is published, then to the caller until drained:
 * the data are copied outside the lock.
 *
 * Direct mode (nothing to hash, no digest to enforce): no thread and no
 * ring. ra_read preads straight into the caller's buffer, as the curl CLI
 * does, and the kernel's sequential read-ahead keeps the next pages ready;
 * a ring would only add a copy and a thread hand-off per block.
 */
#define _GNU_SOURCE
#include "readahead.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hash.h"
#include "util.h"

struct slot {
	char *data;
	size_t len;
};

struct readahead {
	int fd;
	int64_t size;

	/* hashing: touched by the reader thread only while it runs */
	int hash;
	struct sha256 h;
	int64_t hashed; /* bytes [0, hashed) were fed to h */
	char expect[65], digest[65];
	int have_digest, mismatch; /* mismatch is for good: the last block is never handed out */

	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
	int running, stop, done, failed;
	struct slot slot[RA_SLOTS];
	unsigned head, count; /* caller drains slot[head]; count published */
	size_t head_off;      /* bytes of slot[head] already handed out */
	int64_t next;         /* reader: where its next block starts */
	int64_t pos;          /* caller: where its next ra_read starts */
	int64_t nread;
	int direct; /* no hashing: read in ra_read, no thread, no ring */
	char err[200];
};

static void fail(struct readahead *ra, const char *fmt, const char *arg)
{
	pthread_mutex_lock(&ra->mu);
	snprintf(ra->err, sizeof(ra->err), fmt, arg);
	ra->failed = ra->done = 1;
	pthread_cond_broadcast(&ra->cv);
	pthread_mutex_unlock(&ra->mu);
}

/* Reads len bytes at off into p; 0, or -1 with errno (ENODATA: short file). */
static int read_full(struct readahead *ra, char *p, size_t len, int64_t off)
{
	while (len > 0) {
		ssize_t got = pread(ra->fd, p, len, (off_t)off);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			if (got == 0)
				errno = ENODATA;
			return -1;
		}
		__atomic_add_fetch(&ra->nread, got, __ATOMIC_RELAXED);
		p += got;
		off += got;
		len -= (size_t)got;
	}
	return 0;
}

/* Feeds the part of [pos, pos+len) not hashed yet; finishes at the end of the file. */
static void hash_block(struct readahead *ra, const char *p, int64_t pos, size_t len)
{
	int64_t end = pos + (int64_t)len;

	if (!ra->hash || end <= ra->hashed || pos > ra->hashed)
		return;
	sha256_update(&ra->h, p + (ra->hashed - pos), (size_t)(end - ra->hashed));
	ra->hashed = end;
	if (ra->hashed < ra->size)
		return;
	sha256_final_hex(&ra->h, ra->digest);
	ra->have_digest = 1;
	ra->mismatch = ra->expect[0] && strcasecmp(ra->expect, ra->digest);
}

/* Waits for a free slot; its index, or -1 when asked to stop. */
static int free_slot(struct readahead *ra)
{
	int i = -1;

	pthread_mutex_lock(&ra->mu);
	while (ra->count == RA_SLOTS && !ra->stop)
		pthread_cond_wait(&ra->cv, &ra->mu);
	if (!ra->stop)
		i = (int)((ra->head + ra->count) % RA_SLOTS);
	pthread_mutex_unlock(&ra->mu);
	return i;
}

static void publish(struct readahead *ra, unsigned i, size_t len, int last)
{
	pthread_mutex_lock(&ra->mu);
	ra->slot[i].len = len;
	ra->count++;
	ra->done = last;
	pthread_cond_broadcast(&ra->cv);
	pthread_mutex_unlock(&ra->mu);
}

/*
 * From ra->next to the end of the file. Blocks before `from` (the caller's
 * start) are only hashed: a resumed upload must hash what the server holds.
 */
static void *reader(void *arg)
{
	struct readahead *ra = arg;
	int64_t from = ra->pos, p = ra->next;
	int i;

	while (p < ra->size && (i = free_slot(ra)) >= 0) {
		int64_t lim = p < from ? from : ra->size;
		size_t len = (size_t)(lim - p < RA_BLOCK ? lim - p : RA_BLOCK);

		if (read_full(ra, ra->slot[i].data, len, p) < 0) {
			fail(ra, "cannot read the file: %s",
			     errno == ENODATA ? "it is shorter than before" : strerror(errno));
			return NULL;
		}
		hash_block(ra, ra->slot[i].data, p, len);
		if (ra->mismatch && p + (int64_t)len == ra->size) {
			fail(ra, "its SHA-256 is %s, not the one expected; its last bytes were not sent",
			     ra->digest);
			return NULL;
		}
		p += (int64_t)len;
		if (p > from)
			publish(ra, (unsigned)i, len, p == ra->size);
	}
	pthread_mutex_lock(&ra->mu);
	ra->done = 1; /* also when there was nothing to hand out: starting at the end */
	pthread_cond_broadcast(&ra->cv);
	pthread_mutex_unlock(&ra->mu);
	return NULL;
}

struct readahead *ra_new(int fd, int64_t size, int hash, const char *expect_hex)
{
	struct readahead *ra = xcalloc(1, sizeof(*ra));
	char *mem;

	ra->fd = fd;
	ra->size = size;
	ra->hash = hash && sha256_init(&ra->h) == 0;
	if (expect_hex)
		snprintf(ra->expect, sizeof(ra->expect), "%s", expect_hex);
	ra->direct = !hash && !ra->expect[0];
	mem = ra->direct ? NULL : xmalloc((size_t)RA_SLOTS * RA_BLOCK);
	for (unsigned i = 0; mem && i < RA_SLOTS; i++)
		ra->slot[i].data = mem + (size_t)i * RA_BLOCK;
	pthread_mutex_init(&ra->mu, NULL);
	pthread_cond_init(&ra->cv, NULL);
	return ra;
}

static void stop_reader(struct readahead *ra)
{
	if (!ra->running)
		return;
	pthread_mutex_lock(&ra->mu);
	ra->stop = 1;
	pthread_cond_broadcast(&ra->cv);
	pthread_mutex_unlock(&ra->mu);
	pthread_join(ra->th, NULL);
	ra->running = 0;
}

int ra_start(struct readahead *ra, int64_t offset)
{
	int rc;

	if (offset < 0 || offset > ra->size) {
		errno = EINVAL;
		return -1;
	}
	stop_reader(ra);
	ra->stop = ra->done = ra->failed = 0;
	ra->head = ra->count = 0;
	ra->head_off = 0;
	ra->err[0] = '\0';
	ra->pos = offset;
	ra->next = ra->hash && ra->hashed < offset ? ra->hashed : offset;
	/* The kernel's own read-ahead, doubled, for the part not cached yet. */
	posix_fadvise(ra->fd, (off_t)ra->next, 0, POSIX_FADV_SEQUENTIAL);
	if (ra->direct)
		return 0;
	if ((rc = pthread_create(&ra->th, NULL, reader, ra)) != 0) {
		errno = rc;
		return -1;
	}
	ra->running = 1;
	return 0;
}

int ra_wait(struct readahead *ra, int (*stop)(void *), void *stop_ctx)
{
	int ret = 0;

	if (ra->direct)
		return 0;
	pthread_mutex_lock(&ra->mu);
	while (!ra->count && !ra->done) {
		struct timespec t;

		if (stop && stop(stop_ctx)) {
			ret = 1;
			break;
		}
		clock_gettime(CLOCK_REALTIME, &t);
		t.tv_nsec += 100 * 1000 * 1000;
		if (t.tv_nsec >= 1000000000L) {
			t.tv_sec++;
			t.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&ra->cv, &ra->mu, &t);
	}
	if (!ret && !ra->count && ra->failed)
		ret = -1;
	pthread_mutex_unlock(&ra->mu);
	return ret;
}

/* Direct mode: the bytes at ra->pos, read now into the caller's buffer. */
static long read_direct(struct readahead *ra, void *buf, size_t len)
{
	if (ra->failed)
		return -1;
	if (len > (uint64_t)(ra->size - ra->pos))
		len = (size_t)(ra->size - ra->pos);
	if (!len)
		return 0;
	if (read_full(ra, buf, len, ra->pos) < 0) {
		snprintf(ra->err, sizeof(ra->err), "cannot read the file: %s",
			 errno == ENODATA ? "it is shorter than before" : strerror(errno));
		ra->failed = 1;
		return -1;
	}
	ra->pos += (int64_t)len;
	return (long)len;
}

long ra_read(struct readahead *ra, void *buf, size_t len)
{
	struct slot *s;
	size_t n;

	if (ra->direct)
		return read_direct(ra, buf, len);
	pthread_mutex_lock(&ra->mu);
	while (!ra->count && !ra->done)
		pthread_cond_wait(&ra->cv, &ra->mu);
	if (!ra->count) {
		pthread_mutex_unlock(&ra->mu);
		return ra->failed ? -1 : 0;
	}
	s = &ra->slot[ra->head];
	pthread_mutex_unlock(&ra->mu);

	n = s->len - ra->head_off < len ? s->len - ra->head_off : len;
	memcpy(buf, s->data + ra->head_off, n);
	ra->head_off += n;
	ra->pos += (int64_t)n;
	if (ra->head_off == s->len) {
		pthread_mutex_lock(&ra->mu);
		ra->head = (ra->head + 1) % RA_SLOTS;
		ra->count--;
		ra->head_off = 0;
		pthread_cond_broadcast(&ra->cv);
		pthread_mutex_unlock(&ra->mu);
	}
	return (long)n;
}

const char *ra_error(const struct readahead *ra)
{
	return ra->err;
}

int ra_digest(const struct readahead *ra, char hex[65])
{
	if (!ra->have_digest)
		return 0;
	memcpy(hex, ra->digest, 65);
	return 1;
}

int64_t ra_pos(const struct readahead *ra)
{
	return ra->pos;
}

int64_t ra_bytes_read(const struct readahead *ra)
{
	return __atomic_load_n(&ra->nread, __ATOMIC_RELAXED);
}

void ra_free(struct readahead *ra)
{
	if (!ra)
		return;
	stop_reader(ra);
	if (ra->hash)
		sha256_release(&ra->h);
	pthread_mutex_destroy(&ra->mu);
	pthread_cond_destroy(&ra->cv);
	free(ra->slot[0].data);
	free(ra);
}

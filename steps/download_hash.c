/*
 * download_hash.c: SHA-256 and the zip check beside the network I/O.
 *
 * One thread per transfer reads the .part back (pread: the page cache
 * still holds what was just written) from the bytes hashed so far up to the
 * contiguous prefix the network side has written, and feeds the digest and
 * the zip check in file order. One connection and `connections: N` publish
 * the same thing, the end of the contiguous prefix, so one consumer serves
 * both. The network side waits when it runs more than HASH_LAG ahead, so
 * the lag is bounded and memory constant (one block here). While the
 * thread runs it alone touches d->sha and d->zs; dl_hasher_finish or
 * dl_hasher_stop joins it before anyone else reads them.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dl.h"
#include "hash.h"
#include "step.h"
#include "util.h"
#include "zipstream.h"

#define HASH_LAG ((int64_t)32 << 20) /* bytes written but not yet hashed, at most */

struct dl_hasher {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
	struct dl *d;
	unsigned char *blk; /* BLOCK bytes, the thread's own */
	int64_t ready;      /* the contiguous prefix written: hash up to here */
	int64_t hashed;     /* fed to the digest and the zip check */
	int stop, failed;
	char why[256];
};

/* Waits for bytes to hash: the range [*from, *to), or 0 when told to stop. */
static int next_span(struct dl_hasher *h, int64_t *from, int64_t *to)
{
	int go;

	pthread_mutex_lock(&h->mu);
	while (!h->stop && h->hashed >= h->ready)
		pthread_cond_wait(&h->cv, &h->mu);
	*from = h->hashed;
	*to = h->ready;
	go = !h->stop;
	pthread_mutex_unlock(&h->mu);
	return go;
}

static void done_span(struct dl_hasher *h, int64_t n, const char *why)
{
	pthread_mutex_lock(&h->mu);
	if (why) {
		h->failed = 1;
		snprintf(h->why, sizeof(h->why), "%s", why);
	}
	h->hashed += n;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

static void *hash_main(void *arg)
{
	struct dl_hasher *h = arg;
	struct dl *d = h->d;
	int64_t from, to;

	while (next_span(h, &from, &to)) {
		size_t n = to - from < BLOCK ? (size_t)(to - from) : BLOCK;
		ssize_t got = pread(d->fd, h->blk, n, (off_t)from);
		char why[200];

		if (got <= 0) {
			snprintf(why, sizeof(why), "cannot read '%.120s' back at byte %lld: %s", d->part,
				 (long long)from, got == 0 ? "it shrank" : strerror(errno));
			done_span(h, 0, why);
			break;
		}
		sha256_update(&d->sha, h->blk, (size_t)got);
		if (d->zs)
			zs_feed(d->zs, h->blk, (size_t)got);
		done_span(h, got, NULL);
	}
	return NULL;
}

int dl_hasher_start(struct dl *d, int64_t from, struct mm_error *err)
{
	struct dl_hasher *h = xcalloc(1, sizeof(*h));
	int rc;

	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	h->d = d;
	h->blk = xmalloc(BLOCK);
	h->ready = h->hashed = from;
	if ((rc = pthread_create(&h->th, NULL, hash_main, h)) != 0) {
		pthread_cond_destroy(&h->cv);
		pthread_mutex_destroy(&h->mu);
		free(h->blk);
		free(h);
		return err_set(err, MM_ERR, "cannot start the hashing thread: %s", strerror(rc));
	}
	d->hs = h;
	return 0;
}

/* Joins the thread and frees it (d->hs NULL after). */
static void hasher_join(struct dl *d)
{
	struct dl_hasher *h = d->hs;

	pthread_mutex_lock(&h->mu);
	h->stop = 1;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->th, NULL);
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
	free(h->blk);
	free(h);
	d->hs = NULL;
}

void dl_hasher_stop(struct dl *d)
{
	if (d->hs)
		hasher_join(d);
}

/* Waits, a slice at a time, until pred holds for h (locked) or the step is stopped. */
static int wait_until(struct dl *d, int (*pred)(const struct dl_hasher *), struct mm_error *err)
{
	struct dl_hasher *h = d->hs;
	int ret = 0;

	pthread_mutex_lock(&h->mu);
	while (!h->failed && !pred(h)) {
		struct timespec ts;

		if (step_should_stop(d->ctx)) {
			ret = err_set(err, MM_EINTR, "interrupted while hashing '%s'", d->part);
			break;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&h->cv, &h->mu, &ts);
	}
	if (h->failed)
		ret = err_set(err, MM_ERR, "%s", h->why);
	pthread_mutex_unlock(&h->mu);
	return ret;
}

static int within_lag(const struct dl_hasher *h)
{
	return h->ready - h->hashed <= HASH_LAG;
}

static int all_hashed(const struct dl_hasher *h)
{
	return h->hashed >= h->ready;
}

int dl_hasher_feed(struct dl *d, int64_t upto, struct mm_error *err)
{
	struct dl_hasher *h = d->hs;

	pthread_mutex_lock(&h->mu);
	if (upto > h->ready)
		h->ready = upto;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	return wait_until(d, within_lag, err);
}

int64_t dl_hasher_hashed(struct dl *d)
{
	int64_t n;

	pthread_mutex_lock(&d->hs->mu);
	n = d->hs->hashed;
	pthread_mutex_unlock(&d->hs->mu);
	return n;
}

int dl_hasher_finish(struct dl *d, struct mm_error *err)
{
	int ret = wait_until(d, all_hashed, err);

	hasher_join(d);
	return ret;
}

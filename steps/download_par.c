/*
 * download_par.c: `connections: N`, a download in N ranges at once.
 *
 * One thread drives an http pool (curl multi) of N slots. The first range,
 * the lead, asks for bytes (have - overlap) to (have + LEAD - 1): its headers
 * tell the total and that the server honours Range (a 206 with a total);
 * the rest [lead end, total) is then split into up to N ranges, and a slot
 * that finishes takes the next range not yet fetched. Every range is
 * written with pwrite at its own offsets into the same .part.
 *
 * The digest and the zip check stay exact: the hashing thread
 * (download_hash.c) is told the contiguous prefix as it grows (d->have) and
 * reads the bytes back from the .part in order (the page cache makes that
 * cheap), so the outputs are those of one connection.
 *
 * Checkpoint (PAR_CKPT_MS): fsync the .part, then record every range's
 * position with the atomic state save; a kill -9 resumes every range from
 * there, comparing up to `overlap` bytes held below its position (never
 * below its start, which may not be written). `synced` stays the hashed
 * prefix (hashed and on disk). A run with one connection cuts the .part
 * back to the contiguous prefix.
 *
 * A server that answers 200 instead of 206, or a 206 without a total,
 * falls back to one connection with a warning; another total or bytes that
 * differ mean the file changed: start again from byte 0, as dl_fetch does.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dl.h"
#include "http.h"
#include "retry.h"
#include "step.h"
#include "sys.h"
#include "util.h"
#include "zipstream.h"

struct par;

/* One slot's attempt on one range. */
struct rfeed {
	struct par *p;
	struct dl_range *r; /* NULL: the slot is idle */
	int64_t ask;        /* the offset asked for */
	int64_t at;         /* file offset of the answer's next byte */
	int64_t from;       /* r->pos when the attempt started: progress is r->pos > from */
	int64_t seen;       /* the total the answer announced, -1 unknown */
	int changed, mismatch, norange, local;
};

struct par {
	struct dl *d;
	struct http_pool *pool;
	struct rfeed feed[MAX_CONNECTIONS];
	struct retry_policy policy;
	struct retry_state rs[MAX_CONNECTIONS + 1]; /* per range: `retries` in a row without progress */
	int64_t last_ckpt;
	int heard;   /* the lead's headers arrived: the total is the server's */
	int planned; /* the ranges cover [start, total) */
	int restarts, renewed;
};

enum { PAR_GO_ON = 0, PAR_CHANGED = 1, PAR_FALLBACK = 2 };

/* ---- the prefix ------------------------------------------------------- */

/* fsync, then every range's position and the hashed prefix into the checkpoint. */
static int par_checkpoint(struct par *p, struct mm_error *err)
{
	struct dl *d = p->d;

	p->last_ckpt = mono_ms();
	if (!p->planned)
		return 0; /* nothing to record before the total is known */
	if (sys_fsync(d->sys, d->fd) < 0)
		return err_set(err, MM_ERR, "cannot sync '%s': %s", d->part, strerror(errno));
	for (int i = 0; i < d->nranges; i++)
		d->ranges[i].synced = d->ranges[i].pos;
	d->synced = dl_hasher_hashed(d); /* the prefix both hashed and on disk */
	return dl_save_ckpt(d, err);
}

/* ---- the ranges ------------------------------------------------------- */

static void reset_retries(struct par *p)
{
	for (int i = 0; i <= MAX_CONNECTIONS; i++)
		p->rs[i] = (struct retry_state)RETRY_STATE_INIT;
}

static void lead_start(struct par *p)
{
	struct dl *d = p->d;

	free(d->ranges);
	d->ranges = xcalloc(MAX_CONNECTIONS + 1, sizeof(*d->ranges));
	d->ranges[0] = (struct dl_range){ d->have, d->have, d->have, d->have + LEAD, -1, 0 };
	d->nranges = 1;
	p->heard = p->planned = 0;
	reset_retries(p);
}

/* The lead's headers told the total: the rest in up to `connections` ranges. */
static void plan_rest(struct par *p)
{
	struct dl *d = p->d;
	struct dl_range *lead = &d->ranges[0];
	int64_t rest, k;

	if (lead->end > d->total)
		lead->end = d->total;
	rest = d->total - lead->end;
	k = (rest + MIN_RANGE - 1) / MIN_RANGE;
	if (k > d->conns)
		k = d->conns;
	for (int64_t j = 0; j < k; j++) {
		struct dl_range *r = &d->ranges[1 + j];

		r->start = r->pos = r->synced = lead->end + rest * j / k;
		r->end = lead->end + rest * (j + 1) / k;
		r->slot = -1;
		r->rest_until = 0;
	}
	d->nranges = 1 + (int)k;
	p->planned = 1;
	step_log(d->ctx, "%s: %lld bytes in %d ranges on %d connections", d->shown, (long long)d->total,
		 d->nranges, d->conns);
}

static int all_done(const struct par *p)
{
	return p->planned && dl_ranges_frontier(p->d) == p->d->total;
}

/* ---- one answer ------------------------------------------------------- */

/* http_head_fn: a 206 with the total recorded, or the attempt stops. */
static int on_rhead(void *arg, const struct http_dl_result *res, struct mm_error *err)
{
	struct rfeed *f = arg;
	struct dl *d = f->p->d;

	f->seen = res->range_total;
	if (res->status != 206 || res->range_total < 0) {
		f->norange = 1;
		return err_set(err, MM_ERR, "%s answers a Range request without the file's size", d->shown);
	}
	if ((d->total >= 0 && res->range_total != d->total) || res->range_total < d->have) {
		f->changed = 1;
		return err_set(err, MM_ERR, "%s has %lld bytes now, %lld before", d->shown,
			       (long long)res->range_total, (long long)(d->total >= 0 ? d->total : d->have));
	}
	if (f->r == &d->ranges[0])
		f->p->heard = 1;
	d->total = res->range_total;
	return 0;
}

/* http_write_fn: compares what is held, writes the rest at its offset, never past the range. */
static int on_rdata(void *arg, const void *data, size_t len, struct mm_error *err)
{
	struct rfeed *f = arg;
	struct dl *d = f->p->d;
	const unsigned char *p = data;

	while (len && f->at < f->r->pos) {
		size_t n = (int64_t)len > f->r->pos - f->at ? (size_t)(f->r->pos - f->at) : len;

		if (!(n = dl_compare_held(d, d->fd, f->at, p, n, &f->local, &f->mismatch, err)))
			return MM_ERR;
		p += n;
		len -= n;
		f->at += (int64_t)n;
	}
	if ((int64_t)len > f->r->end - f->at)
		len = f->r->end > f->at ? (size_t)(f->r->end - f->at) : 0;
	if (len && sys_pwrite_all(d->sys, d->fd, p, len, (off_t)f->at) < 0) {
		f->local = 1;
		return err_set(err, MM_ERR, "cannot write '%s': %s", d->part, strerror(errno));
	}
	f->at += (int64_t)len;
	f->r->pos = f->at;
	return 0;
}

/* Starts idle slots on the ranges that wait; <0 with err. */
static int start_idle(struct par *p, struct mm_error *err)
{
	struct dl *d = p->d;
	int64_t now = mono_ms();
	int next = 0;

	for (int i = 0; i < d->conns; i++) {
		struct rfeed *f = &p->feed[i];
		struct http_sink sink = { on_rdata, on_rhead, f };
		struct dl_range *r = NULL;
		int64_t lo;

		if (f->r)
			continue;
		for (; next < (p->planned ? d->nranges : 1) && !r; next++) {
			struct dl_range *c = &d->ranges[next];

			if (c->slot < 0 && c->pos < c->end && c->rest_until <= now)
				r = c;
		}
		if (!r)
			return 0;
		lo = r == &d->ranges[0] ? 0 : r->start; /* below a range's start may not be written */
		*f = (struct rfeed){ .p = p, .r = r, .from = r->pos, .seen = -1 };
		f->ask = f->at = r->pos - d->overlap > lo ? r->pos - d->overlap : lo;
		if (http_pool_start(p->pool, i, d->src, f->at, r->end - 1, d->with_auth, &sink, err) < 0) {
			f->r = NULL;
			return MM_ERR;
		}
		r->slot = i;
	}
	return 0;
}

static void cancel_all(struct par *p)
{
	for (int i = 0; i < p->d->conns; i++) {
		if (!p->feed[i].r)
			continue;
		http_pool_cancel(p->pool, i);
		p->feed[i].r->slot = -1;
		p->feed[i].r = NULL;
	}
}

/* An attempt without progress: the range rests (backoff), or the step gives up. */
static int rest(struct par *p, struct dl_range *r, const struct mm_error *e, const struct http_dl_result *res,
		struct mm_error *err)
{
	struct retry_state *rs = &p->rs[r - p->d->ranges];
	long ms = retry_next(&p->policy, rs, res->retry_after_s);

	if (ms < 0)
		return err_set(err, MM_ERR,
			       "gave up after %d attempts in a row without progress on bytes %lld-%lld: %s",
			       rs->fails, (long long)r->pos, (long long)r->end - 1,
			       e->msg[0] ? e->msg : "no data");
	step_warn(p->d->ctx, "%s; bytes %lld-%lld: attempt %d of %d without progress, next in %ld ms",
		  e->msg[0] ? e->msg : "no data", (long long)r->pos, (long long)r->end - 1, rs->fails,
		  p->policy.retries + 1, ms);
	r->rest_until = mono_ms() + ms;
	return PAR_GO_ON;
}

/* What the end of slot i's attempt means: PAR_GO_ON, PAR_CHANGED, PAR_FALLBACK, or <0. */
static int ended(struct par *p, int i, int rc, const struct http_dl_result *res, const struct mm_error *e,
		 struct mm_error *err)
{
	struct rfeed *f = &p->feed[i];
	struct dl_range *r = f->r;
	struct dl *d = p->d;

	f->r = NULL;
	r->slot = -1;
	if (rc == MM_EINTR || step_should_stop(d->ctx))
		return err_set(err, MM_EINTR, "interrupted");
	if (f->local) {
		*err = *e;
		return MM_ERR;
	}
	if (e->http_status == 416 && !p->planned && res->range_total == d->have) {
		/* the lead asked from where the file ends (an empty file): nothing to fetch */
		d->total = d->have;
		p->heard = 1;
		r->end = r->pos;
		return PAR_GO_ON;
	}
	if (f->changed || f->mismatch || e->http_status == 416)
		return PAR_CHANGED;
	if (f->norange || res->status == 200 || (res->status == 206 && res->range_start != f->ask))
		return PAR_FALLBACK;
	if (r->pos > f->from) {
		retry_progress(&p->rs[r - d->ranges]);
		p->renewed = 0;
		return PAR_GO_ON;
	}
	if (rc == 0 && r->pos == r->end)
		return PAR_GO_ON;
	if (rc == MM_ENOTFOUND)
		return dl_not_found(d, e, err);
	if (e->http_status == 401 && d->with_auth && !p->renewed) {
		p->renewed = 1; /* the http layer has logged in again: one more try */
		return PAR_GO_ON;
	}
	if (rc == 0 || rc == MM_ERETRY)
		return rest(p, r, e, res, err);
	*err = *e;
	return rc < 0 ? rc : MM_ERR;
}

/* The file changed under us: drop every range and start again from byte 0 with the lead. */
static int par_restart(struct par *p, const struct rfeed *f, const struct mm_error *e, struct mm_error *err)
{
	struct dl *d = p->d;
	char why[160];

	cancel_all(p);
	d->nranges = 0;
	snprintf(why, sizeof(why), "%.150s", e->msg[0] ? e->msg : "another size");
	if (++p->restarts > MAX_RESTARTS)
		return err_set(err, MM_ERR, "%s keeps changing while it is downloaded (%s)", d->shown, why);
	if (dl_restart(d, f->changed ? f->seen : f->mismatch ? d->total : -1, why, err) < 0)
		return MM_ERR;
	lead_start(p);
	return 0;
}

/* Back to one connection: the .part cut to its contiguous prefix, the checkpoint without ranges. */
static int fall_back(struct par *p, const struct http_dl_result *res, struct mm_error *err)
{
	struct dl *d = p->d;

	cancel_all(p);
	d->have = dl_ranges_frontier(d);
	d->nranges = 0;
	step_warn(d->ctx,
		  "%s answers a Range request with HTTP %ld%s; falling back to one connection from byte %lld",
		  d->shown, res->status,
		  res->status == 206 ? " without the file's size" : " (the whole file)", (long long)d->have);
	if (dl_truncate_part(d, d->have, err) < 0 || dl_hasher_feed(d, d->have, err) < 0)
		return MM_ERR;
	if (sys_fsync(d->sys, d->fd) < 0)
		return err_set(err, MM_ERR, "cannot sync '%s': %s", d->part, strerror(errno));
	d->synced = dl_hasher_hashed(d);
	return dl_save_ckpt(d, err) < 0 ? MM_ERR : 1;
}

/* Bytes received so far, for the progress line. */
static int64_t received(const struct dl *d)
{
	int64_t n = d->nranges ? d->ranges[0].start : d->have;

	for (int i = 0; i < d->nranges; i++)
		n += d->ranges[i].pos - d->ranges[i].start;
	return n;
}

/* One turn of the loop: start what waits, let one answer end, hash the prefix, checkpoint. */
static int turn(struct par *p, struct mm_error *err)
{
	struct dl *d = p->d;
	struct http_dl_result res;
	struct mm_error e = MM_ERROR_INIT;
	int slot, rc = 0, v = PAR_GO_ON;

	if (!p->planned && p->heard) {
		plan_rest(p);
		if (par_checkpoint(p, err) < 0) /* the total and the ranges, before a kill can lose them */
			return MM_ERR;
	}
	if (start_idle(p, err) < 0)
		return MM_ERR;
	slot = http_pool_wait(p->pool, 200, &rc, &res, &e);
	if (slot >= 0) {
		struct rfeed f = p->feed[slot];

		v = ended(p, slot, rc, &res, &e, err);
		if (v == PAR_CHANGED)
			return par_restart(p, &f, &e, err);
		if (v == PAR_FALLBACK)
			return fall_back(p, &res, err);
		if (v < 0)
			return v;
	}
	d->have = dl_ranges_frontier(d);
	if (dl_hasher_feed(d, d->have, err) < 0)
		return err->code;
	dl_meter(d, received(d));
	if (mono_ms() - p->last_ckpt >= PAR_CKPT_MS)
		return par_checkpoint(p, err);
	return 0;
}

int dl_fetch_par(struct dl *d, struct mm_error *err)
{
	struct par p = { d, NULL };
	int ret = 0;

	retry_policy_init(&p.policy, (int)param_int(d->ctx, "retries"));
	reset_retries(&p);
	p.last_ckpt = mono_ms();
	if (!(p.pool = http_pool_new(d->c, d->conns, err)))
		return MM_ERR;
	if (d->nranges > 0)
		p.heard = p.planned = 1; /* resumed: the ranges of the earlier run */
	else
		lead_start(&p);
	while (!all_done(&p) && ret == 0) {
		if (step_should_stop(d->ctx))
			ret = MM_EINTR;
		else
			ret = turn(&p, err);
	}
	cancel_all(&p);
	if (ret < 0 && d->nranges > 0) {
		struct mm_error e = MM_ERROR_INIT;

		/* what the ranges hold stays for the next run, whatever stopped this one */
		if (par_checkpoint(&p, &e) < 0)
			step_warn(d->ctx, "%s", e.msg);
	}
	if (ret == MM_EINTR)
		ret = err_set(err, MM_EINTR,
			      "download stopped at byte %lld of %lld; the next run resumes its %d ranges from '%s'",
			      (long long)received(d), (long long)d->total, d->nranges, d->part);
	if (ret == 0)
		d->nranges = 0; /* whole and hashed: finish() syncs and renames */
	http_pool_free(p.pool);
	return ret;
}

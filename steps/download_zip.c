/*
 * download_zip.c: proves a downloaded zip whole before it leaves the
 * machine, and heals it when it is not.
 *
 * The server publishes no checksum, so the download's SHA-256 is only the
 * SHA-256 of whatever arrived; a byte flipped in transit goes unnoticed
 * until the import job stops halfway on "Bad CRC-32". The zip check
 * (engine/archive/zipstream.h) runs in the same pass as the hash, as bytes
 * arrive (and over the held bytes when a run resumes, so its state needs no
 * checkpoint). What it reports are byte ranges: a damaged entry from its
 * local header to the end of its data, or the central directory to the end
 * of the file. Each range is fetched again with `Range: bytes=A-B` and
 * written over the .part, then the file is hashed and checked again from
 * byte 0 at hashing speed (a heal is rare; re-reading the page cache is
 * cheaper than keeping hash states per entry), so the SHA-256 recorded is
 * always that of the bytes on disk. HEAL_TRIES rounds, then the step fails
 * naming the entry, its offsets and what was tried.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dl.h"
#include "http.h"
#include "retry.h"
#include "step.h"
#include "sys.h"
#include "util.h"
#include "zipstream.h"

/* One ranged GET's view: bytes go to [pos, end) of the .part, never past end. */
struct span {
	struct dl *d;
	int64_t pos, end;
	int local;
};

static int on_span(void *arg, const void *data, size_t len, struct mm_error *err)
{
	struct span *s = arg;

	if (s->pos + (int64_t)len > s->end)
		return err_set(err, MM_ERETRY, "the server sent more than the range asked for");
	if (sys_pwrite_all(s->d->sys, s->d->fd, data, len, (off_t)s->pos) < 0) {
		s->local = 1;
		return err_set(err, MM_ERR, "cannot write '%s': %s", s->d->part, strerror(errno));
	}
	s->pos += (int64_t)len;
	return 0;
}

/* Fetches [start, end) of the file again over the .part, resuming within the range. */
static int refetch(struct dl *d, int64_t start, int64_t end, struct mm_error *err)
{
	struct retry_policy policy;
	struct retry_state rs = RETRY_STATE_INIT;
	struct span s = { d, start, end, 0 };

	retry_policy_init(&policy, (int)param_int(d->ctx, "retries"));
	while (s.pos < end) {
		struct mm_error e = MM_ERROR_INIT;
		struct http_dl_result res;
		int64_t before = s.pos;
		long ms;
		int rc = http_download_span(d->c, d->src, s.pos, end - 1, d->with_auth, on_span, &s, &res, &e);

		if (rc == MM_EINTR || step_should_stop(d->ctx))
			return err_set(err, MM_EINTR,
				       "stopped while fetching bytes %lld-%lld again; the next run "
				       "checks '%s' and heals it",
				       (long long)start, (long long)end - 1, d->part);
		if (s.local) {
			*err = e;
			return MM_ERR;
		}
		if (rc == 0 && s.pos == end)
			break;
		if (res.status == 200 || (res.status == 206 && res.range_start != before))
			return err_set(err, MM_ERR,
				       "%s answers a Range request for bytes %lld-%lld with HTTP %ld%s: "
				       "the damaged range cannot be fetched alone",
				       d->shown, (long long)before, (long long)end - 1, res.status,
				       res.status == 200 ? " (the whole file)" : "");
		if (s.pos > before) {
			retry_progress(&rs);
			continue;
		}
		if (rc == 0)
			rc = err_set(&e, MM_ERETRY, "the answer ended at byte %lld", (long long)s.pos);
		if (rc != MM_ERETRY && e.http_status != 401 && e.http_status != 403)
			return err_set(err, rc, "fetching bytes %lld-%lld again: %s", (long long)start,
				       (long long)end - 1, e.msg);
		if ((ms = retry_next(&policy, &rs, res.retry_after_s)) < 0)
			return err_set(err, MM_ERR,
				       "gave up fetching bytes %lld-%lld again after %d attempts: %s",
				       (long long)start, (long long)end - 1, rs.fails, e.msg);
		step_warn(d->ctx, "%s; fetching the range again in %ld ms", e.msg, ms);
		if (step_sleep(d->ctx, ms) < 0)
			return err_set(err, MM_EINTR, "stopped while healing '%s'", d->part);
	}
	return 0;
}

static void journal_heal(struct dl *d, const struct zs_damage *g, int round)
{
	cJSON *j = cJSON_CreateObject();

	cJSON_AddNumberToObject(j, "start", (double)g->start);
	cJSON_AddNumberToObject(j, "end", (double)g->end);
	if (*g->entry)
		cJSON_AddStringToObject(j, "entry", g->entry);
	cJSON_AddStringToObject(j, "why", g->why);
	cJSON_AddNumberToObject(j, "attempt", round);
	step_journal(d->ctx, "heal", j);
}

static int give_up(struct dl *d, const struct zs_damage *g, size_t n, struct mm_error *err)
{
	const char *what = *g->entry ? g->entry : g->tail ? "the central directory" : "the archive";

	if (!zs_is_zip(d->zs) && g->start == 0 && (int64_t)g->end >= d->have)
		return err_set(err, MM_ERR, "'%s' (%lld bytes) from %s is not a zip archive: %s", d->part,
			       (long long)d->have, d->shown, g->why);
	return err_set(err, MM_ERR,
		       "'%s' is damaged: %s, bytes %llu-%llu: %s; fetched that range again %d "
		       "times and it came back damaged each time%s (the server's file itself may be damaged: "
		       "run the export again)",
		       d->part, what, (unsigned long long)g->start, (unsigned long long)g->end - 1, g->why,
		       HEAL_TRIES, n > 1 ? ", and other ranges too" : "");
}

int dl_zip_heal(struct dl *d, struct mm_error *err)
{
	struct zs_damage got[ZS_MAX_DAMAGE];
	size_t n;

	if (!d->zs)
		return 0;
	for (int round = 1;; round++) {
		zs_finish(d->zs);
		if (zs_ok(d->zs))
			return 0;
		const struct zs_damage *found = zs_damage(d->zs, &n);

		memcpy(got, found, n * sizeof(*got)); /* the rescan below resets the checker */
		if (zs_damage_overflow(d->zs) ||
		    (!zs_is_zip(d->zs) && got[0].start == 0 && (int64_t)got[0].end >= d->have) ||
		    round > HEAL_TRIES)
			return give_up(d, &got[0], n, err);
		for (size_t i = 0; i < n; i++) {
			const struct zs_damage *g = &got[i];
			int64_t end = (int64_t)g->end < d->have ? (int64_t)g->end : d->have;

			step_warn(d->ctx,
				  "'%s' is damaged at bytes %llu-%lld (%s%s%s); fetching them again "
				  "(attempt %d of %d)",
				  d->part, (unsigned long long)g->start, (long long)end - 1,
				  *g->entry ? g->entry : "", *g->entry ? ": " : "", g->why, round, HEAL_TRIES);
			journal_heal(d, g, round);
			if (refetch(d, (int64_t)g->start, end, err) < 0)
				return err->code;
		}
		if (dl_hash_file(d, d->fd, d->have, d->part, err) < 0)
			return err->code;
	}
}

void dl_zip_outputs(struct dl *d)
{
	size_t n;

	if (!d->zs)
		return;
	zs_entries(d->zs, &n);
	cJSON_AddNumberToObject(d->ctx->outputs, "entries", (double)n);
	cJSON_AddBoolToObject(d->ctx->outputs, "crc_ok", zs_ok(d->zs));
}

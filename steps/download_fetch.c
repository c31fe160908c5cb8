/*
 * download_fetch.c: the resume loop of a download (see download.c for the
 * rules): one attempt at a time, the overlap compared before appending,
 * restarts when the file changed (seen in the headers, before the first
 * byte), and the probe that checks a held file without downloading it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dl.h"
#include "hash.h"
#include "http.h"
#include "mm.h"
#include "plan.h"
#include "retry.h"
#include "step.h"
#include "sys.h"
#include "util.h"
#include "zipstream.h"

/* The total an answer announced: Content-Range of a 206 or 416, or a 200's length. */
static int64_t announced_total(const struct http_dl_result *res, long http_status)
{
	if (res->status == 206 || http_status == 416)
		return res->range_total;
	if (res->status == 200)
		return res->content_length;
	return -1;
}

/*
 * http_head_fn: the answer's headers, before its first byte. The total is
 * checkpointed here, so a run killed in its first attempt has it; another
 * total than the one recorded, or fewer bytes than held, stops the attempt
 * before anything is compared or appended (judge restarts from byte 0).
 */
static int on_head(void *arg, const struct http_dl_result *res, struct mm_error *err)
{
	struct feed *f = arg;
	struct dl *d = f->d;
	int64_t seen = announced_total(res, 0);

	if (seen < 0)
		return 0;
	if ((d->total >= 0 && seen != d->total) || seen < d->have)
		return err_set(err, MM_ERR, "%s has %lld bytes, %lld %s", d->shown, (long long)seen,
			       (long long)(d->total >= 0 ? d->total : d->have),
			       d->total >= 0 ? "before" : "held");
	if (d->total >= 0 || !f->append)
		return 0;
	d->total = seen;
	if (dl_save_ckpt(d, err) < 0) {
		f->local = 1;
		return MM_ERR;
	}
	return 0;
}

/* http_write_fn: compares the bytes we hold, then appends (or stops: a probe). */
static int on_data(void *arg, const void *data, size_t len, struct mm_error *err)
{
	struct feed *f = arg;
	const unsigned char *p = data;

	while (len && f->pos < f->held) {
		size_t n = (int64_t)len > f->held - f->pos ? (size_t)(f->held - f->pos) : len;

		if (!(n = dl_compare_held(f->d, f->cmp_fd, f->pos, p, n, &f->local, &f->mismatch, err)))
			return MM_ERR;
		p += n;
		len -= n;
		f->pos += (int64_t)n;
	}
	if (!len)
		return 0;
	if (!f->append) {
		f->beyond = 1;
		return err_set(err, MM_ERR, "probe done");
	}
	return dl_append(f, p, len, err);
}

/* The file changed under us: start again from byte 0 (during a transfer: the hasher restarts). */
int dl_restart(struct dl *d, int64_t total, const char *why, struct mm_error *err)
{
	step_warn(d->ctx, "%s changed on the server (%s); downloading it again from byte 0", d->shown, why);
	dl_hasher_stop(d); /* it reads the .part and owns the digest */
	if (dl_truncate_part(d, 0, err) < 0)
		return MM_ERR;
	d->total = total;
	sha256_reset(&d->sha);
	if (d->zs)
		zs_reset(d->zs);
	if (dl_save_ckpt(d, err) < 0)
		return MM_ERR;
	return dl_hasher_start(d, 0, err);
}

enum { GO_ON = 0, DONE = 1, RETRY = 2, AGAIN = 3 }; /* AGAIN: no progress, no need to wait */

/* Second-chance credentials: a new session after a 401, a new link after an S3 403. */
static int renew(struct dl *d, const struct mm_error *e, int *renewed, struct mm_error *err)
{
	if (*renewed || !((d->with_auth && e->http_status == 401) || (d->presigned && e->http_status == 403)))
		return 0;
	*renewed = 1;
	if (d->presigned)
		return dl_presign(d, err) < 0 ? MM_EINTR : 1; /* falls back to the API on failure */
	return 1; /* the http layer has logged in again (reauth hook): one more try */
}

int dl_not_found(struct dl *d, const struct mm_error *e, struct mm_error *err)
{
	/* Only a new export brings the file back: name the step to start over. */
	const char *up = d->name ? step_linked_step(d->ctx, "export", "export") : NULL;

	if (up)
		step_set_remedy(d->ctx, REMEDY_RESET, up);
	return err_set(err, MM_ERR, "%s%s", e->msg,
		       d->is_zip ? " (no such export: deleted by retention or a cleanup step?)" : "");
}

/* What one attempt means: DONE, GO_ON (a fresh start), RETRY (back off), AGAIN, or <0. */
static int judge(struct dl *d, struct feed *f, struct http_dl_result *res, int rc, int64_t off,
		 struct mm_error *e, int *restarts, struct mm_error *err)
{
	int64_t seen = announced_total(res, e->http_status);
	char why[128];

	if (f->mismatch || (seen >= 0 && d->total >= 0 && seen != d->total) ||
	    (seen >= 0 && seen < d->have) || (e->http_status == 416 && seen != d->have)) {
		if (f->mismatch)
			snprintf(why, sizeof(why), "the bytes at %lld differ from the ones held",
				 (long long)f->pos);
		else
			snprintf(why, sizeof(why), "%lld bytes now, %lld before", (long long)seen,
				 (long long)(d->total >= 0 ? d->total : d->have));
		if (++*restarts > MAX_RESTARTS)
			return err_set(err, MM_ERR, "%s keeps changing while it is downloaded (%s)", d->shown,
				       why);
		return dl_restart(d, seen, why, err) < 0 ? MM_ERR : GO_ON;
	}
	if (d->total < 0 && seen >= 0) {
		d->total = seen;
		if (dl_save_ckpt(d, err) < 0)
			return MM_ERR;
	}
	if (e->http_status == 416)
		return DONE; /* the server's size is exactly what we hold */
	if (res->status == 200 && off > 0) {
		step_warn(d->ctx,
			  "%s ignored the Range header (HTTP 200 instead of 206); fetching from byte 0 "
			  "and comparing the %lld bytes held instead of appending",
			  d->shown, (long long)d->have);
		d->range_ignored = 1;
		return AGAIN;
	}
	if (rc == 0 && d->total < 0 && res->status == 200)
		d->total = d->have; /* no length announced: the body's end is the file's end */
	if (rc == 0 && d->have == d->total)
		return DONE;
	if (rc == 0 || rc == MM_ERETRY || (res->status == 206 && res->range_start != off))
		return RETRY;
	if (rc == MM_ENOTFOUND)
		return dl_not_found(d, e, err);
	*err = *e;
	return rc < 0 ? rc : MM_ERR;
}

/* The resume loop: attempts go on while each one adds bytes. */
int dl_fetch(struct dl *d, struct mm_error *err)
{
	struct retry_policy policy;
	struct retry_state rs = RETRY_STATE_INIT;
	int64_t best = d->have;
	int restarts = 0, renewed = 0;

	retry_policy_init(&policy, (int)param_int(d->ctx, "retries"));
	for (;;) {
		struct mm_error e = MM_ERROR_INIT;
		struct http_dl_result res = { 0 };
		int64_t off = d->range_ignored || d->have <= d->overlap ? 0 : d->have - d->overlap;
		struct feed f = { d, d->fd, off, d->have, 1, 0, 0, 0 };
		struct http_sink sink = { on_data, on_head, &f };
		long ms;
		int rc, v;

		rc = http_download(d->c, d->src, off, -1, d->with_auth, &sink, &res, &e);
		if (rc == MM_EINTR || step_should_stop(d->ctx))
			return err_set(err, MM_EINTR,
				       "download stopped at byte %lld; the next run resumes from '%s'",
				       (long long)d->have, d->part);
		if (f.local) {
			*err = e;
			return MM_ERR;
		}
		if ((v = renew(d, &e, &renewed, err)) != 0) {
			if (v < 0)
				return v;
			continue;
		}
		if (f.over && d->have == d->total) {
			step_warn(d->ctx, "%s", e.msg); /* all announced bytes are held: the checks judge them */
			return 0;
		}
		v = judge(d, &f, &res, rc, off, &e, &restarts, err);
		if (v < 0 || v == DONE)
			return v < 0 ? v : 0;
		if (v == GO_ON) {
			best = d->have;
			retry_progress(&rs);
			continue;
		}
		if (d->have > best) {
			best = d->have;
			renewed = 0;
			retry_progress(&rs);
			step_log(d->ctx, "transfer cut at byte %lld of %lld (%s); resuming",
				 (long long)d->have, (long long)d->total, e.msg[0] ? e.msg : "short body");
			continue;
		}
		if ((ms = retry_next(&policy, &rs, v == RETRY ? res.retry_after_s : 0)) < 0)
			return err_set(err, MM_ERR,
				       "gave up after %d attempts in a row without progress at byte "
				       "%lld: %s",
				       rs.fails, (long long)d->have, e.msg[0] ? e.msg : "no data");
		if (v == RETRY) {
			step_warn(d->ctx, "%s; attempt %d of %d without progress, next in %ld ms",
				  e.msg[0] ? e.msg : "no data", rs.fails, policy.retries + 1, ms);
			if (step_sleep(d->ctx, ms) < 0)
				return err_set(err, MM_EINTR,
					       "download stopped at byte %lld; the next run resumes "
					       "from '%s'",
					       (long long)d->have, d->part);
		}
	}
}

/* ---- checking without downloading ------------------------------------- */

/*
 * One GET that compares the last `overlap` of the `have` bytes in fd with the
 * server's and stops there. P_SAME: fd holds a prefix of the server's file
 * (*total its size, -1 unknown); P_DIFF: it does not (why says how).
 */
int dl_probe(struct dl *d, int fd, int64_t have, int tries_max, int64_t *total, char *why, size_t wlen,
	     struct mm_error *err)
{
	int64_t off = have <= d->overlap ? 0 : have - d->overlap;

	for (int tries = 0, renewed = 0;; tries++) {
		struct feed f = { d, fd, off, have, 0, 0, 0, 0 };
		struct http_dl_result res;
		int rc, v;

		err_clear(err);
		rc = http_download_range(d->c, d->src, off, d->with_auth, on_data, &f, &res, err);
		*total = announced_total(&res, err->http_status);
		if (rc == MM_EINTR || f.local)
			return rc;
		if (f.mismatch) {
			snprintf(why, wlen, "the bytes at %lld differ from the server's", (long long)f.pos);
			return P_DIFF;
		}
		if (res.status == 200 && off > 0)
			return P_NORANGE;
		if (f.beyond || (rc == 0 && (res.status == 200 || res.status == 206)) ||
		    (err->http_status == 416 && *total == have)) {
			if (*total >= 0 && *total < have) {
				snprintf(why, wlen, "the server's file has %lld bytes, %lld held",
					 (long long)*total, (long long)have);
				return P_DIFF;
			}
			return P_SAME;
		}
		if (err->http_status == 416) {
			snprintf(why, wlen, "the server's file has %lld bytes, %lld held", (long long)*total,
				 (long long)have);
			return P_DIFF;
		}
		if (!d->ctx->dry_run && (v = renew(d, err, &renewed, err)) != 0) {
			if (v < 0)
				return v;
			continue;
		}
		if (rc != MM_ERETRY || tries + 1 >= tries_max)
			return rc < 0 ? rc : err_set(err, MM_ERR, "%s: the answer ended early", d->shown);
		step_warn(d->ctx, "%s; checking again in %ld s", err->msg, 1L << tries);
		if (step_sleep(d->ctx, 1000L << tries) < 0)
			return err_set(err, MM_EINTR, "interrupted");
	}
}

static void use_api(struct dl *d)
{
	if (d->link)
		http_wipe(d->link, strlen(d->link));
	free(d->link);
	d->link = NULL;
	d->src = d->api;
	snprintf(d->shown, sizeof(d->shown), "%s", d->api);
	d->with_auth = d->name != NULL;
	d->presigned = 0;
}

/*
 * presign: true asks for an S3 link (a POST, so never in a dry run), once and
 * without retries: the 500 for a disabled feature (API doc 4.4) is permanent,
 * and any failure only means the API serves the file instead.
 */
int dl_presign(struct dl *d, struct mm_error *err)
{
	struct http_response r = HTTP_RESPONSE_INIT;
	struct mm_error e = MM_ERROR_INIT;
	struct buf path = BUF_INIT;
	cJSON *j = NULL;
	const cJSON *u;
	int ret = 0;

	use_api(d);
	buf_addf(&path, "%s/presign-url", d->api);
	if (http_json(d->c, "POST", path.data, NULL, HTTP_NO_RETRY, &r, &e) < 0) {
		if (e.code == MM_EINTR)
			ret = err_set(err, MM_EINTR, "%s", e.msg);
		else
			step_log(d->ctx, "no presigned link (%s); downloading through the API", e.msg);
		goto out;
	}
	j = cJSON_ParseWithLength(buf_cstr(&r.body), r.body.len);
	u = cJSON_GetObjectItemCaseSensitive(j, "url");
	if (!cJSON_IsString(u) || !dl_is_http_url(u->valuestring)) {
		step_log(d->ctx, "the presign answer holds no http(s) link; downloading through the API");
		goto out;
	}
	d->src = d->link = xstrdup(u->valuestring);
	http_wipe(u->valuestring, strlen(u->valuestring));
	url_redact(d->link, d->shown, sizeof(d->shown));
	d->with_auth = 0;
	d->presigned = 1;
	step_log(d->ctx, "downloading through a presigned link to %s", d->shown);
out:
	if (r.body.data)
		http_wipe(r.body.data, r.body.len);
	http_response_clear(&r);
	cJSON_Delete(j);
	buf_release(&path);
	return ret;
}

int dl_is_http_url(const char *s)
{
	return !strncasecmp(s, "http://", 7) || !strncasecmp(s, "https://", 8);
}

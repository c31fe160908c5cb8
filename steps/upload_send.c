/*
 * upload_send.c: the upload step's transfer: requests from the server's
 * file_offset, fed by a read-ahead thread.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "readahead.h"
#include "up.h"

/* ---- sending ------------------------------------------------------------------ */

/* Failures that no retry can fix. */
static int chunk_refused(const struct upload *u, int64_t len, struct mm_error *err)
{
	char why[sizeof(err->msg)];

	if (err->code == MM_EINTR)
		return MM_EINTR;
	memcpy(why, err->msg, sizeof(why));
	if (!strcmp(err->app_id, "api.file.cloud_upload.app_error"))
		return up_create_refused(u, err);
	if (err->http_status == 413)
		return err_set(err, MM_ERR,
			       "a %lld-byte request to upload session %s was refused as too large: a proxy "
			       "in front of the server (nginx client_max_body_size, an ingress limit) or "
			       "FileSettings.MaxFileSize caps request bodies; lower 'chunk_size' or raise "
			       "the limit (%s)",
			       (long long)len, u->id, why);
	if (err->http_status == 403 || err->http_status == 501 ||
	    !strcmp(err->app_id, "app.upload.upload_data.first_part_too_small.app_error"))
		return err->code;
	return 0;
}

/* The session is gone: it completed if the import directory has the file. */
static int session_gone(struct step_ctx *ctx, struct http_client *c, const struct upload *u, int answered,
			struct mm_error *err)
{
	int listed = mm_import_listed(c, u->name, err);

	if (listed < 0)
		return MM_ERR;
	if (!listed && answered)
		return err_set(err, MM_ERR,
			       "upload session %s completed, but GET /api/v4/imports does not list '%s'",
			       u->id, u->name);
	if (!listed)
		return err_set(err, MM_ERR,
			       "upload session %s no longer exists and '%s' is not in the import directory: the "
			       "session expired (ImportSettings.RetentionDays) or the file was imported or "
			       "deleted already; run 'mmigrate reset' on this step to upload again",
			       u->id, u->name);
	step_log(ctx, "upload %s complete: '%s' is in the import directory", u->id, u->name);
	return 0;
}

/* The request body: the read-ahead thread's next bytes. */
static long source(void *ctx, char *buf, size_t len, const char **why)
{
	struct upload *u = ctx;
	long n = ra_read(u->ra, buf, len);

	if (n < 0)
		*why = ra_error(u->ra);
	else
		step_meter_update(u->ctx, &u->meter, ra_pos(u->ra));
	return n;
}

/*
 * Puts the reader at offset, unless it is there already (the previous
 * request ended where this one starts). A resumed upload first hashes the
 * bytes the server holds: that is the only wait, and it can be stopped.
 */
static int seek_reader(struct step_ctx *ctx, struct upload *u, int64_t offset, struct mm_error *err)
{
	int rc;

	if (!u->ra)
		u->ra = ra_new(u->fd, u->size, u->hashing, u->expect[0] ? u->expect : NULL);
	else if (ra_pos(u->ra) == offset && !ra_error(u->ra)[0])
		return 0;
	if (ra_start(u->ra, offset) < 0)
		return err_set(err, MM_ERR, "cannot read '%s': %s", u->path, strerror(errno));
	if (u->hashing && offset > 0 && ra_bytes_read(u->ra) == 0)
		step_log(ctx, "computing the SHA-256 of the %lld bytes of '%s' the server already holds",
			 (long long)offset, u->path);
	if ((rc = ra_wait(u->ra, up_stop_asked, ctx)) > 0)
		return err_set(err, MM_EINTR, "stopped while computing the SHA-256 of '%s'", u->path);
	if (rc < 0)
		return err_set(err, MM_ERR, "not uploading '%s': %s", u->path, ra_error(u->ra));
	return 0;
}

static int64_t chunk_len(const struct upload *u, int64_t offset)
{
	int64_t len = offset == 0 && u->chunk < FIRST_CHUNK_MIN ? FIRST_CHUNK_MIN : u->chunk;

	return len > u->size - offset ? u->size - offset : len;
}

static int64_t now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* The next request carries about CHUNK_SECONDS at the speed the last one had. */
static void grow_chunk(struct upload *u, int64_t len, int64_t us)
{
	int64_t next;

	if (!u->chunk_base || us <= 0)
		return;
	next = (int64_t)((double)len * CHUNK_SECONDS * 1e6 / (double)us);
	if (next > 16 * u->chunk) /* one quick request is not yet a fast link */
		next = 16 * u->chunk;
	u->chunk = next < u->chunk_base ? u->chunk_base : next > CHUNK_MAX ? CHUNK_MAX : next;
}

/* A file that changed under us must not be sent on: the digest would not say what the server got. */
static int still_same(const struct upload *u, struct mm_error *err)
{
	struct stat st;

	if (fstat(u->fd, &st) < 0 || st.st_size != u->size || mtime_ns(&st) != mtime_ns(&u->st))
		return err_set(err, MM_ERR, "'%s' changed while it was being uploaded; not sending more",
			       u->path);
	return 0;
}

/* One request from offset; *len is what it carried. 0, MM_ERETRY, or a failure no retry fixes. */
static int send_chunk(struct step_ctx *ctx, struct http_client *c, struct upload *u, int64_t offset,
		      int64_t *len, int *complete, struct mm_error *err)
{
	int64_t t0;
	int rc;

	*len = chunk_len(u, offset);
	if (still_same(u, err) < 0 || (rc = seek_reader(ctx, u, offset, err)) < 0)
		return err->code;
	t0 = now_us();
	if (mm_upload_stream(c, u->id, source, u, *len, complete, err) == 0) {
		grow_chunk(u, *len, now_us() - t0);
		return 0;
	}
	if (ra_error(u->ra)[0]) /* a read error or the wrong digest: retrying cannot help */
		return err_set(err, MM_ERR, "not uploading '%s': %s", u->path, ra_error(u->ra));
	if (u->chunk_base && *len > u->chunk_base) {
		if (err->http_status == 413) {
			step_warn(ctx,
				  "a %lld-byte request was refused as too large; sending %lld-byte requests "
				  "from now on",
				  (long long)*len, (long long)u->chunk_base);
			u->chunk_base = 0; /* a proxy's body limit: never grow again */
		}
		u->chunk = CHUNK_BASE;
		if (err->http_status == 413)
			return MM_ERETRY;
	}
	return chunk_refused(u, *len, err) < 0 ? err->code : MM_ERETRY;
}

/* Saves and shows a new server offset; 1 when it moved forward. */
static int progress(struct step_ctx *ctx, const struct upload *u, int64_t offset, int64_t *last,
		    struct mm_error *err)
{
	int forward = *last >= 0 && offset > *last;

	if (offset == *last)
		return 0;
	if (offset != up_recorded_offset(ctx) && up_save(ctx, u, offset, err) < 0)
		return MM_ERR;
	step_log(ctx, "upload %s: %lld of %lld bytes on the server (%d%%)", u->id, (long long)offset,
		 (long long)u->size, (int)(offset * 100 / u->size));
	*last = offset;
	return forward;
}

/*
 * The server's offset, asked at the start and after a failure; <0 with err
 * set when there is nothing to send from it (MM_ERETRY: ask again later).
 */
static int ask_offset(struct step_ctx *ctx, struct http_client *c, struct upload *u, int64_t *offset,
		      int64_t *last, int64_t *confirmed, struct retry_state *rs, struct mm_error *err)
{
	struct mm_upload up;
	int rc;

	if ((rc = mm_get_upload(c, u->id, &up, err)) < 0)
		return rc;
	if (up.file_size != u->size)
		return err_set(err, MM_ERR, "upload session %s is for %lld bytes, but '%s' has %lld", u->id,
			       (long long)up.file_size, u->path, (long long)u->size);
	if ((rc = progress(ctx, u, up.file_offset, last, err)) < 0)
		return rc;
	/* Only the server's own offset counts as progress: a server that answers
	 * 204 and stores nothing must not reset the failure count. */
	if (*confirmed >= 0 && up.file_offset > *confirmed)
		retry_progress(rs);
	if (up.file_offset > *confirmed)
		*confirmed = up.file_offset;
	err_clear(err);
	if (up.file_offset >= u->size) /* stored but not moved into place (yet?) */
		return err_set(err, MM_ERETRY,
			       "the server holds all %lld bytes of upload session %s but has not completed "
			       "it (on S3-backed servers a file above 5 GB cannot be moved into place: "
			       "app.upload.upload_data.move_file.app_error)",
			       (long long)u->size, u->id);
	*offset = up.file_offset;
	return 0;
}

/*
 * Until the session is gone (completed): ask the offset, then send request
 * after request from it while they succeed; after any failure ask again.
 * Gives up after u->retries failures in a row that moved nothing, so a
 * server that never advances is not sent chunks forever.
 */
int up_transfer(struct step_ctx *ctx, struct http_client *c, struct upload *u, struct mm_error *err)
{
	struct retry_state rs = RETRY_STATE_INIT;
	int64_t last = -1, confirmed = -1, len;
	int64_t offset = u->fresh ? 0 : -1; /* a session this run created holds nothing yet */
	int rc, complete = 0;

	http_set_rate_limit(c, u->rate);
	step_meter_start(ctx, &u->meter, "upload", 0, u->size);
	for (;;) {
		if (step_should_stop(ctx))
			return err_set(err, MM_EINTR, "stopped uploading session %s; apply again to resume",
				       u->id);
		rc = offset < 0 ? ask_offset(ctx, c, u, &offset, &last, &confirmed, &rs, err) : 0;
		if (rc == MM_ENOTFOUND)
			return session_gone(ctx, c, u, 0, err);
		if (rc == 0 && (rc = send_chunk(ctx, c, u, offset, &len, &complete, err)) == 0) {
			if (complete)
				return session_gone(ctx, c, u, 1, err);
			offset += len; /* a 204: the server stored exactly the body */
			if ((rc = progress(ctx, u, offset, &last, err)) < 0)
				return rc;
			if (offset < u->size)
				continue;
			/* Every byte accepted, yet no 200: ask what the server really holds. */
			rc = err_set(err, MM_ERETRY,
				     "the server accepted all %lld bytes of upload session %s "
				     "without completing it",
				     (long long)u->size, u->id);
		}
		offset = -1;
		if (rc != MM_ERETRY)
			return rc;
		if ((rc = up_backoff(ctx, u, &rs, err, "asking the server how much it stored")) == MM_ERETRY)
			return err_set(err, MM_ERR,
				       "upload session %s made no progress in %d attempts: %.1500s", u->id,
				       rs.fails, err->msg);
		if (rc < 0)
			return err_set(err, MM_EINTR, "stopped uploading session %s; apply again to resume",
				       u->id);
	}
}

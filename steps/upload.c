/*
 * upload: put a local archive on the target server as an import upload
 * session (API doc section 5), in chunks, so that no single request outgrows
 * a proxy's body limit (nginx: 100 MB) or an S3-backed server's 30 s
 * per-request timeout.
 *
 * The server appends every body at the session's current file_offset and has
 * no duplicate check: a chunk resent after a lost answer is stored twice. So
 * the only loop is: GET the session → send [file_offset, +chunk) → after any
 * failure, GET again. The server's offset is the truth; ours is only a hint
 * for dry runs.
 *
 * Checkpoint (resume data), in the order it is written:
 *   phase "creating", file_size, file_id, [sha256], filename, uploads_before
 *       before POST /uploads: the file the session is for (size, and
 *       "dev:inode:mtime_ns"; the digest when already known), and the import
 *       sessions that already existed, so that a run that died between the
 *       POST and the next write can find and adopt its session
 *   phase "uploading", upload_id, offset
 *       the moment the server returns the session id; offset after progress
 * A rerun refuses to continue a session if the local file's size, identity
 * or SHA-256 changed. A 404 for a recorded session means it completed (or
 * expired): the import directory listing tells which.
 *
 * The file is read once (docs/performance.md). Its SHA-256 is taken from the
 * download or verify step that checked this very file (same inode, mtime and
 * size); otherwise it is computed while the file is sent, by a
 * read-ahead thread (readahead.h) that also keeps the next blocks ready. A
 * resumed upload first hashes the part the server already holds. When the
 * digest is expected (the sha256 key, or the one a checkpoint recorded), the
 * last block is only sent once the digest matched: a wrong file never
 * completes on the server.
 *
 * Requests: after a 204 the server holds exactly what was sent (the body
 * has an exact Content-Length), so the next request follows at once; the
 * session is only asked for its offset when this run did not create it and
 * after a failure.
 * Without chunk_size the first request carries 64 MiB and later ones as much
 * as about CHUNK_SECONDS of the measured speed (at most 1 GiB): far below a
 * server's ReadTimeout (300 s) or an S3 backend's 30 s request timeout, and
 * few enough round trips not to show. A proxy's 413 for a grown request
 * falls back to 64 MiB for good. The first request is max(chunk, 5 MiB)
 * (the server throws away a first chunk below 5 MiB that is not the whole
 * file).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plan.h"
#include "readahead.h"
#include "up.h"

static const struct param_spec upload_params[] = {
	{ "file", P_PATH, 1, NULL, "the local archive to upload, e.g. ${steps.download.path}" },
	{ "filename", P_STRING, 0, NULL, "name on the server (default: the file's base name)" },
	{ "chunk_size", P_SIZE, 0, NULL,
	  "bytes per request (default: 64 MiB, then about 10 s of transfer, at most 1 GiB); the first one is at "
	  "least 5 MiB",
	  .tuning = 1 },
	{ "sha256", P_STRING, 0, NULL, "expected SHA-256 of the file (hex); refuse to upload otherwise" },
	{ "retries", P_INT, 0, "8", "failed attempts in a row, without progress, before giving up",
	  .tuning = 1 },
	STEP_TRANSFER_PARAMS,
	{ "unverified", P_BOOL, 0, "false",
	  "upload although no download or verify step of this plan proved the file whole" },
	{ NULL },
};

static const char *const upload_outputs[] = { "upload_id", "name", "size", "sha256", NULL };
/* What the server holds: the same bytes under the same name are the same upload. */
static const char *const upload_identity[] = { "name", "size", "sha256", NULL };

/* Parameters and the local file's size and digest; 0 or <0 with err set. */
static int upload_init(struct step_ctx *ctx, struct upload *u, struct mm_error *err)
{
	u->fd = -1;
	u->ctx = ctx;
	u->path = param_path(ctx, "file");
	u->filename = param_str(ctx, "filename") ? param_str(ctx, "filename") : up_base_name(u->path);
	u->chunk = param_int(ctx, "chunk_size");
	if (u->chunk <= 0)
		u->chunk = u->chunk_base = CHUNK_BASE;
	u->rate = param_int(ctx, "rate_limit");
	retry_policy_init(&u->policy, (int)param_int(ctx, "retries"));
	if (up_open_local(u, err) < 0)
		return err->code;
	return up_choose_digest(ctx, u, err);
}

/* The name the server gives the completed file (API doc 5.6). */
static int set_name(struct upload *u, struct mm_error *err)
{
	struct mm_upload up = { 0 };

	memcpy(up.id, u->id, sizeof(up.id));
	if (snprintf(up.filename, sizeof(up.filename), "%s", u->filename) >= (int)sizeof(up.filename) ||
	    mm_import_name(&up, u->name, sizeof(u->name)) < 0)
		return err_set(err, MM_ERR, "file name '%.200s…' is too long", u->filename);
	return 0;
}

static void upload_free(struct upload *u)
{
	ra_free(u->ra); /* stops the reader before its file is closed */
	if (u->fd >= 0)
		close(u->fd);
	cJSON_Delete(u->before);
	free(u->path);
}

/*
 * No unverified upload: a byte flipped in transit makes the import stop
 * halfway with a third of the workspace in. The file must have the size and
 * SHA-256 of a completed integrity check in this plan (a download's
 * streaming zip check or a verify step), unless the plan says unverified.
 * Runs before any request to the target.
 */
static int check_proven(struct step_ctx *ctx, const struct upload *u, struct mm_error *err)
{
	const char *by;

	if (param_bool(ctx, "unverified")) {
		step_warn(ctx, "uploading '%s' unverified (unverified: true): no step of this plan checked it",
			  u->path);
		return 0;
	}
	if ((by = step_find_integrity_proof(ctx, u->size, u->sha, NULL, NULL))) {
		step_log(ctx, "'%s' was proven whole by step '%s'", u->path, by);
		return 0;
	}
	return err_set(err, MM_ERR,
		       "refusing to upload '%s' (%lld bytes, sha256 %s): no completed download or "
		       "verify step of this plan checked a file with this size and SHA-256; add a step "
		       "'{id: verify, type: verify, archive: <the file>}' before this one (or set 'unverified: "
		       "true' to upload it unchecked)",
		       u->path, (long long)u->size, u->sha);
}

static int upload_run(struct step_ctx *ctx, struct mm_error *err)
{
	struct upload u = { 0 };
	struct http_client *c;
	int ret;

	if ((ret = upload_init(ctx, &u, err)) < 0 || (ret = up_same_file(ctx, &u, err)) < 0 ||
	    (ret = check_proven(ctx, &u, err)) < 0)
		goto out;
	ret = MM_ERR;
	if (!(c = step_client(ctx, err)))
		goto out;
	if ((ret = up_open_session(ctx, c, &u, err)) < 0 || (ret = set_name(&u, err)) < 0 ||
	    (ret = up_transfer(ctx, c, &u, err)) < 0 || (step_meter_finish(ctx, &u.meter), 0) ||
	    (ret = up_final_digest(ctx, &u, err)) < 0)
		goto out;
	if (u.ra)
		step_log(ctx, "read %lld bytes of '%s' (%lld bytes long) to send %s",
			 (long long)ra_bytes_read(u.ra), u.path, (long long)u.size,
			 u.hashing ? "and hash it" : "it");
	cJSON_AddStringToObject(ctx->outputs, "upload_id", u.id);
	cJSON_AddStringToObject(ctx->outputs, "name", u.name);
	cJSON_AddNumberToObject(ctx->outputs, "size", (double)u.size);
	cJSON_AddStringToObject(ctx->outputs, "sha256", u.sha);
out:
	upload_free(&u);
	return ret;
}

/* ---- dry run: GET requests only, none offline ------------------------------------ */

static int64_t chunks_for(int64_t size, int64_t chunk)
{
	int64_t first = chunk < FIRST_CHUNK_MIN ? FIRST_CHUNK_MIN : chunk;

	return size <= first ? 1 : 1 + (size - first + chunk - 1) / chunk;
}

static int describe_session(struct step_ctx *ctx, struct http_client *c, struct upload *u, struct buf *out,
			    struct mm_error *err)
{
	struct mm_upload up;
	int rc = mm_get_upload(c, u->id, &up, err);

	if (rc == 0) {
		buf_addf(out, "would resume upload session %s at byte %lld of %lld (%d%%)", u->id,
			 (long long)up.file_offset, (long long)up.file_size,
			 (int)(up.file_offset * 100 / (up.file_size ? up.file_size : 1)));
		return 0;
	}
	if (rc != MM_ENOTFOUND || (rc = set_name(u, err)) < 0 || (rc = mm_import_listed(c, u->name, err)) < 0)
		return rc;
	if (rc)
		buf_addf(out, "upload session %s completed; would confirm '%s' and finish", u->id, u->name);
	else
		buf_addf(out,
			 "would fail: upload session %s is gone and '%s' is not in the import directory "
			 "(reset the step to upload again)",
			 u->id, u->name);
	return 0;
}

/* A note when the server's MaxFileSize, if it can be read, is below the file size. */
static void describe_limit(struct http_client *c, int64_t size, struct buf *out)
{
	struct mm_error cerr = MM_ERROR_INIT;
	cJSON *cfg = NULL;
	const cJSON *max;

	if (mm_get_config(c, &cfg, &cerr) < 0)
		return;
	max = cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "FileSettings"), "MaxFileSize");
	if (cJSON_IsNumber(max) && max->valuedouble < (double)size)
		buf_addf(out,
			 "; note: FileSettings.MaxFileSize is %.0f bytes now, below the file's %lld: "
			 "it must be raised before this step runs",
			 max->valuedouble, (long long)size);
	cJSON_Delete(cfg);
}

static int describe_new(struct step_ctx *ctx, struct http_client *c, const struct upload *u, struct buf *out,
			struct mm_error *err)
{
	const char *phase = ckpt_str(ctx, "phase");
	char id[MM_ID_LEN + 1];
	int found;

	if (c && phase && !strcmp(phase, "creating")) {
		found = up_find_session(ctx, c, u, cJSON_GetObjectItem(ctx->ckpt, "uploads_before"), id, err);
		if (found < 0)
			return MM_ERR;
		if (found) {
			buf_addf(out,
				 "would adopt upload session %s (created by an interrupted run) and send "
				 "'%s' from the server's offset",
				 id, u->filename);
			return 0;
		}
	}
	buf_addf(out, "would %s an import upload session for '%s' (%lld bytes, SHA-256 %.12s…) and send it ",
		 phase && !c ? "find or create" : "create", u->filename, (long long)u->size, u->sha);
	if (u->chunk_base && u->size > u->chunk)
		buf_addf(out, "in requests of %lld bytes first, then of about %d s each", (long long)u->chunk,
			 CHUNK_SECONDS);
	else
		buf_addf(out, "in %lld request(s) of up to %lld bytes",
			 (long long)chunks_for(u->size, u->chunk), (long long)u->chunk);
	if (u->rate)
		buf_addf(out, " at most %lld bytes/s", (long long)u->rate);
	if (c)
		describe_limit(c, u->size, out);
	return 0;
}

/* A prediction, not a failure to make one: apply would stop with this message. */
static int would_fail(struct buf *out, struct mm_error *err)
{
	buf_addf(out, "would fail: %s", err->msg);
	err_clear(err);
	return 0;
}

static int upload_describe(struct step_ctx *ctx, struct buf *out, struct mm_error *err)
{
	const char *id = ckpt_str(ctx, "upload_id");
	struct http_client *c = NULL;
	struct upload u = { 0 };
	int ret;

	if ((ret = upload_init(ctx, &u, err)) < 0) {
		if (u.size > 0 && ret != MM_EINTR) /* read, but not the file the step wants */
			ret = would_fail(out, err);
		goto out;
	}
	if ((ret = up_same_file(ctx, &u, err)) < 0) {
		ret = would_fail(out, err);
		goto out;
	}
	if (step_server_readonly_ok(ctx) && !(c = step_client(ctx, err))) {
		ret = MM_ERR;
		goto out;
	}
	if (id)
		snprintf(u.id, sizeof(u.id), "%s", id);
	if (param_bool(ctx, "unverified"))
		buf_adds(out, "UNVERIFIED (unverified: true): ");
	if (id && c)
		ret = describe_session(ctx, c, &u, out, err);
	else if (id)
		buf_addf(out,
			 "would resume upload session %s from the server's offset (last seen: byte %lld of %lld)",
			 id, (long long)up_recorded_offset(ctx), (long long)u.size);
	else
		ret = describe_new(ctx, c, &u, out, err);
	if (ret == 0 && !c)
		buf_adds(out, ctx->offline ? " (offline: not checked)"
					   : " (not checked: a password login is a POST)");
out:
	upload_free(&u);
	return ret;
}

/* ---- plan checks ----------------------------------------------------------------- */

static const char *literal(const struct plan_step *st, const char *key)
{
	const struct pnode *v = pnode_get(st->node, key);

	/* Interpolated values are only known at run time. */
	return v && v->kind == PN_SCALAR && v->scalar && !strstr(v->scalar, "${") ? v->scalar : NULL;
}

/* unverified: true, written as such (a ${...} value is judged at run time). */
static int unverified_allowed(const struct plan_step *st)
{
	const struct pnode *v = pnode_get(st->node, "unverified");

	if (!v)
		return 0;
	return !literal(st, "unverified") || !strcmp(literal(st, "unverified"), "true");
}

/*
 * Only a download (its streaming zip check) or a verify step can prove a file
 * whole: without one before the upload, the run would refuse it anyway, so
 * validate says so before anything is sent anywhere.
 */
static int has_integrity_step_before(const struct plan *p, const struct plan_step *st)
{
	for (size_t i = 0; i < st->index && i < p->nsteps; i++) {
		const struct step_type *t = p->steps[i].type;

		if (t && (!strcmp(t->name, "download") || !strcmp(t->name, "verify")))
			return 1;
	}
	return 0;
}

static int upload_check(const struct plan *p, const struct plan_step *st,
			void (*diag)(void *dctx, const char *key, const char *fmt, ...), void *dctx)
{
	const char *name = literal(st, "filename"), *sha = literal(st, "sha256"),
		   *retries = literal(st, "retries");
	int64_t n;

	if (name &&
	    (!*name || strchr(name, '/') || strchr(name, '\\') || !strcmp(name, ".") || !strcmp(name, "..")))
		diag(dctx, "filename", "'filename' must be a plain file name without directories, not '%s'",
		     name);
	if (sha && !up_is_hex64(sha))
		diag(dctx, "sha256", "'sha256' must be 64 hexadecimal digits");
	if (retries && !parse_i64(retries, &n) && n < 0)
		diag(dctx, "retries", "'retries' cannot be negative");
	if (!unverified_allowed(st) && !has_integrity_step_before(p, st))
		diag(dctx, "file",
		     "refusing to upload: no download or verify step before this one can prove the "
		     "file whole; add a step '{id: verify, type: verify, archive: <the file>}' before it (or set "
		     "'unverified: true' to upload it unchecked)");
	return 0;
}

const struct step_type step_upload = {
	.name = "upload",
	.summary = "upload a local archive as an import upload session, in resumable chunks",
	.server = SERVER_REQUIRED,
	.params = upload_params,
	.outputs = upload_outputs,
	.identity = upload_identity,
	.check = upload_check,
	.describe = upload_describe,
	.run = upload_run,
};

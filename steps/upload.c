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
 * download step that wrote it when that step is done and the file has not
 * been modified since; otherwise it is computed while the file is sent, by a
 * read-ahead thread (readahead.h) that also keeps the next blocks ready. A
 * resumed upload first hashes the part the server already holds. When the
 * digest is expected (the sha256 key, or the one a checkpoint recorded), the
 * last block is only sent once the digest matched: a wrong file never
 * completes on the server.
 *
 * Requests: after a 204 the server holds exactly what was sent (the body
 * has an exact Content-Length), so the next request follows at once; the
 * session is only asked for its offset at the start and after a failure.
 * Without chunk_size the first request carries 64 MiB and later ones as much
 * as about CHUNK_SECONDS of the measured speed (at most 1 GiB): far below a
 * server's ReadTimeout (300 s) or an S3 backend's 30 s request timeout, and
 * few enough round trips not to show. A proxy's 413 for a grown request
 * falls back to 64 MiB for good. The first request is max(chunk, 5 MiB)
 * (the server throws away a first chunk below 5 MiB that is not the whole
 * file).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jobs.h"
#include "meter.h"
#include "mm.h"
#include "plan.h"
#include "retry.h"
#include "step.h"
#include "hash.h"
#include "readahead.h"
#include "util.h"

#define MIB (1024 * 1024LL)
#define FIRST_CHUNK_MIN (5 * MIB) /* API doc 5.4: app.upload.upload_data.first_part_too_small */
#define CHUNK_BASE (64 * MIB)     /* the first request, and the one after a failure */
#define CHUNK_MAX (1024 * MIB)
#define CHUNK_SECONDS 10 /* what a grown request should take */

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

struct upload {
	char *path;
	const char *filename;
	int64_t size, chunk;
	int64_t chunk_base; /* 0: chunk_size was given, never grown */
	int64_t rate;       /* bytes/s, 0: no cap */
	struct retry_policy policy;
	struct stat st;            /* when opened: a change during the upload is refused */
	char file_id[FILE_ID_LEN]; /* "dev:inode:mtime_ns" */
	int fresh;                 /* this run created the session, which answered offset 0 */
	struct readahead *ra;
	struct step_ctx *ctx;    /* for progress from libcurl's read callback */
	struct step_meter meter; /* bytes handed to libcurl */
	int hashing;             /* the digest is computed while sending */
	char expect[65];         /* the digest the file must have, "" when none */
	char sha[65];            /* "" until known */
	char id[MM_ID_LEN + 1];
	char name[MM_ID_LEN + 600]; /* "<id>_<filename>" in the import directory */
	cJSON *before;              /* import sessions that existed before ours (creating phase) */
	int fd;
};

/* ---- the local file ----------------------------------------------------- */

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

static int stop_asked(void *ctx)
{
	return step_should_stop(ctx);
}

struct hash_tick {
	const struct step_ctx *ctx;
	struct step_meter meter;
};

/* sha256_fd's tick: progress for the admin, and a stop at a block boundary. */
static int hash_tick(void *arg, int64_t hashed)
{
	struct hash_tick *t = arg;

	step_meter_update(t->ctx, &t->meter, hashed);
	return step_should_stop(t->ctx);
}

/* Size and SHA-256 of fd, read from the start in 1 MiB blocks. */
static int hash_file(const struct step_ctx *ctx, int fd, const char *path, int64_t *size, char hex[65],
		     struct mm_error *err)
{
	struct sha256 h;
	void *block = xmalloc(MIB);
	int ret = MM_ERR, rc;

	if (sha256_init(&h) < 0) {
		free(block);
		return err_set(err, MM_ERR, "cannot compute SHA-256: OpenSSL failed");
	}
	struct hash_tick tick = { ctx };
	struct stat st;

	step_meter_start(ctx, &tick.meter, "hash", 0, fstat(fd, &st) == 0 ? (int64_t)st.st_size : -1);
	rc = sha256_fd(&h, fd, 0, -1, block, MIB, hash_tick, &tick, size);
	step_meter_finish(ctx, &tick.meter);
	if (rc > 0)
		ret = err_set(err, MM_EINTR, "stopped while computing the SHA-256 of '%s'", path);
	else if (rc < 0)
		err_set(err, MM_ERR, "cannot read '%s': %s", path, strerror(errno));
	else {
		sha256_final_hex(&h, hex);
		ret = 0;
	}
	sha256_release(&h);
	free(block);
	return ret;
}

/* Opens the file and notes its size and identity; nothing is read yet. */
static int open_local(struct upload *u, struct mm_error *err)
{
	u->fd = open(u->path, O_RDONLY | O_CLOEXEC);
	if (u->fd < 0)
		return err_set(err, MM_ERR, "cannot open '%s': %s", u->path, strerror(errno));
	if (fstat(u->fd, &u->st) < 0)
		return err_set(err, MM_ERR, "cannot stat '%s': %s", u->path, strerror(errno));
	u->size = u->st.st_size;
	if (u->size == 0)
		return err_set(err, MM_ERR, "'%s' is empty; there is nothing to import", u->path);
	file_identity(&u->st, u->file_id);
	return 0;
}

static int is_hex64(const char *s);

/*
 * The digest a done download or verify step recorded for this very file:
 * same size, inode and mtime as when that step checked it. 1 found.
 */
static int known_digest(const struct step_ctx *ctx, struct upload *u, const char **by)
{
	const char *sha = NULL;

	*by = step_find_integrity_proof(ctx, u->size, NULL, u->file_id, &sha);
	if (!*by || !is_hex64(sha))
		return 0;
	for (int i = 0; i < 65; i++)
		u->sha[i] = (char)(sha[i] >= 'A' && sha[i] <= 'F' ? sha[i] - 'A' + 'a' : sha[i]);
	return 1;
}

/*
 * Where the digest comes from: a download step (no reading at all), the
 * file itself before anything is sent (dry runs; a sha256 key, which
 * promises that a wrong file never reaches the server, not even in part;
 * checkpoints written before file identities were recorded; a file that
 * some step of the plan must have proven whole, found by its digest), or,
 * for an `unverified: true` upload only, the bytes as they are sent.
 */
static int choose_digest(const struct step_ctx *ctx, struct upload *u, struct mm_error *err)
{
	const char *want = param_str(ctx, "sha256"), *recorded = ckpt_str(ctx, "sha256"), *by;

	if (known_digest(ctx, u, &by)) {
		if (!ctx->dry_run)
			step_log(ctx,
				 "SHA-256 of '%s' known from step '%s' that checked it (same size, inode and "
				 "mtime): the file is read once, to send it",
				 u->path, by);
	} else if (ctx->dry_run || want || (recorded && !ckpt_str(ctx, "file_id")) ||
		   !param_bool(ctx, "unverified")) {
		if (!ctx->dry_run && u->size >= 1024 * MIB)
			step_log(ctx, "computing the SHA-256 of '%s' (%lld MiB)", u->path,
				 (long long)(u->size / MIB));
		if (hash_file(ctx, u->fd, u->path, &u->size, u->sha, err) < 0)
			return err->code;
	} else {
		u->hashing = 1;
		snprintf(u->expect, sizeof(u->expect), "%s", recorded ? recorded : "");
		return 0;
	}
	if (want && strcasecmp(want, u->sha))
		return err_set(err, MM_ERR, "'%s' has SHA-256 %s, but the step expects %s; not uploading it",
			       u->path, u->sha, want);
	return 0;
}

/* The checkpoint describes the file it was made for; a changed file must not be appended. */
static int same_file(const struct step_ctx *ctx, const struct upload *u, struct mm_error *err)
{
	const char *sha = ckpt_str(ctx, "sha256"), *name = ckpt_str(ctx, "filename");
	const char *fid = ckpt_str(ctx, "file_id");
	double size = cJSON_GetNumberValue(cJSON_GetObjectItem(ctx->ckpt, "file_size"));
	const char *id = ckpt_str(ctx, "upload_id");

	if (!ctx->ckpt || (!sha && !fid))
		return 0;
	/* A digest computed while sending is only known at the end: until then
	 * the file's identity (a rewrite gets a new mtime or inode) stands in. */
	if ((int64_t)size != u->size || (sha && u->sha[0] && strcmp(sha, u->sha)) ||
	    (fid && strcmp(fid, u->file_id)) || (name && strcmp(name, u->filename)))
		return err_set(err, MM_ERR,
			       "'%s' changed since %s%s was started (then %lld bytes, %s %.20s; now "
			       "%lld bytes, %s %.20s); the server may hold bytes of the old file: run "
			       "'mmigrate reset' on this step to upload the new one",
			       u->path, id ? "upload session " : "its upload", id ? id : "", (long long)size,
			       fid ? "file" : "SHA-256", fid ? fid : sha, (long long)u->size,
			       fid ? "file" : "SHA-256", fid ? u->file_id : u->sha);
	return 0;
}

/* ---- checkpoint ----------------------------------------------------------- */

static int save(struct step_ctx *ctx, const struct upload *u, int64_t offset, struct mm_error *err)
{
	cJSON *ck = cJSON_CreateObject();

	cJSON_AddStringToObject(ck, "phase", u->id[0] ? "uploading" : "creating");
	cJSON_AddNumberToObject(ck, "file_size", (double)u->size);
	cJSON_AddStringToObject(ck, "file_id", u->file_id);
	if (u->sha[0])
		cJSON_AddStringToObject(ck, "sha256", u->sha);
	else if (u->expect[0])
		cJSON_AddStringToObject(ck, "sha256", u->expect);
	cJSON_AddStringToObject(ck, "filename", u->filename);
	if (u->id[0]) {
		cJSON_AddStringToObject(ck, "upload_id", u->id);
		cJSON_AddNumberToObject(ck, "offset", (double)offset);
	} else {
		cJSON_AddItemToObject(ck, "uploads_before", cJSON_Duplicate(u->before, 1));
	}
	return ckpt_save(ctx, ck, err);
}

static int64_t recorded_offset(const struct step_ctx *ctx)
{
	const cJSON *v = cJSON_GetObjectItem(ctx->ckpt, "offset");

	return cJSON_IsNumber(v) ? double_to_i64(v->valuedouble) : -1;
}

/* ---- server calls ---------------------------------------------------------- */

static int in_array(const cJSON *arr, const char *s)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, arr)
		if (cJSON_IsString(c) && !strcmp(c->valuestring, s))
			return 1;
	return 0;
}

static int is_ours(const struct mm_upload *up, const struct upload *u, const cJSON *before)
{
	return !strcmp(up->type, "import") && !strcmp(up->filename, base_name(u->filename)) &&
	       up->file_size == u->size && !in_array(before, up->id);
}

/*
 * An incomplete import session of this file that did not exist before we
 * started creating one: made by a run that died before recording it, or by a
 * POST whose answer was lost. 1 found (id filled), 0 none, <0 error.
 */
static int find_session(struct step_ctx *ctx, struct http_client *c, const struct upload *u,
			const cJSON *before, char id[MM_ID_LEN + 1], struct mm_error *err)
{
	struct mm_upload *ups = NULL;
	size_t n = 0;
	int found = 0;

	if (mm_list_my_uploads(c, &ups, &n, err) < 0)
		return MM_ERR;
	for (size_t i = 0; i < n; i++) {
		if (!is_ours(&ups[i], u, before))
			continue;
		if (found && !ctx->dry_run)
			step_warn(ctx,
				  "upload session %s also matches; leaving it (the retention job removes it)",
				  ups[i].id);
		if (!found)
			memcpy(id, ups[i].id, MM_ID_LEN + 1);
		found = 1;
	}
	free(ups);
	return found;
}

static cJSON *import_session_ids(const struct mm_upload *ups, size_t n)
{
	cJSON *ids = cJSON_CreateArray();

	for (size_t i = 0; i < n; i++)
		if (!strcmp(ups[i].type, "import"))
			cJSON_AddItemToArray(ids, cJSON_CreateString(ups[i].id));
	return ids;
}

/* ---- creating the session --------------------------------------------------- */

static int create_refused(const struct upload *u, struct mm_error *err)
{
	char why[sizeof(err->msg)];

	memcpy(why, err->msg, sizeof(why));
	if (!strcmp(err->app_id, "api.file.cloud_upload.app_error"))
		return err_set(err, MM_ERR,
			       "the target is Mattermost Cloud, which refuses import uploads through the "
			       "API (api.file.cloud_upload.app_error); importing into Cloud goes through "
			       "Mattermost Support: open a ticket and hand them the archive");
	if (err->http_status == 413)
		return err_set(err, MM_ERR,
			       "the server refuses a %lld-byte import: FileSettings.MaxFileSize is smaller "
			       "than the archive; raise it to at least %lld bytes (a 'config' step before "
			       "this one, or System Console > Environment > File Storage > Maximum File "
			       "Size) and apply again (%s)",
			       (long long)u->size, (long long)u->size, why);
	return err->code;
}

/*
 * After a failure: says what comes next and waits as the retry policy says.
 * MM_ERETRY when the policy gives up, MM_EINTR when asked to stop.
 */
static int backoff(const struct step_ctx *ctx, struct upload *u, struct retry_state *rs,
		   const struct mm_error *e, const char *next)
{
	long ms = retry_next(&u->policy, rs, e->retry_after_s);

	if (ms < 0)
		return MM_ERETRY;
	if (e->http_status == 401)
		return 0; /* the http layer has logged in again: no reason to wait */
	step_warn(ctx, "%s; %s in %ld ms", e->msg, next, ms);
	return step_sleep(ctx, ms) < 0 ? MM_EINTR : 0;
}

/*
 * POST /uploads, never twice for one answer: after a POST without a clear
 * answer the session may exist, so the next POST waits until a listing of
 * our sessions says it does not.
 */
static int create_session(struct step_ctx *ctx, struct http_client *c, struct upload *u, struct mm_error *err)
{
	struct retry_state rs = RETRY_STATE_INIT;
	struct mm_upload up;
	int unsure = 0, rc = 0;

	for (;;) {
		if (unsure && (rc = find_session(ctx, c, u, u->before, u->id, err)) > 0) {
			step_log(ctx, "upload session %s was created although the answer was lost", u->id);
			return 0;
		}
		if (!unsure || rc == 0) {
			if ((rc = mm_create_upload(c, u->filename, u->size, &up, err)) == 0) {
				memcpy(u->id, up.id, sizeof(u->id));
				u->fresh = up.file_offset == 0 && up.file_size == u->size;
				return 0;
			}
			if (rc != MM_ERETRY)
				return create_refused(u, err);
			unsure = 1;
		}
		if ((rc = backoff(ctx, u, &rs, err, "trying again")) == MM_ERETRY)
			return err->code < 0 ? err->code : MM_ERR;
		if (rc < 0)
			return err_set(err, MM_EINTR, "stopped before creating the upload session");
	}
}

/* Finds the session of an earlier run, or creates one; u->id is checkpointed on return. */
static int open_session(struct step_ctx *ctx, struct http_client *c, struct upload *u, struct mm_error *err)
{
	const char *id = ckpt_str(ctx, "upload_id");
	struct mm_upload *ups = NULL;
	size_t n = 0;
	int found;

	if (id) {
		if (!mm_id_valid(id))
			return err_set(err, MM_ERR, "the checkpoint holds an invalid upload id '%.40s'", id);
		memcpy(u->id, id, sizeof(u->id));
		return 0;
	}
	if (ctx->ckpt && !strcmp(ckpt_str(ctx, "phase") ? ckpt_str(ctx, "phase") : "", "creating")) {
		/* The last run died between POST /uploads and recording its answer. */
		u->before = cJSON_Duplicate(cJSON_GetObjectItem(ctx->ckpt, "uploads_before"), 1);
		found = find_session(ctx, c, u, u->before, u->id, err);
		if (found < 0)
			return MM_ERR;
		if (found) {
			step_log(ctx, "adopting upload session %s, created by an interrupted run", u->id);
			return save(ctx, u, 0, err);
		}
		cJSON_Delete(u->before);
		u->before = NULL;
	}
	if (mm_list_my_uploads(c, &ups, &n, err) < 0)
		return MM_ERR;
	u->before = import_session_ids(ups, n);
	free(ups);
	if (save(ctx, u, 0, err) < 0 || create_session(ctx, c, u, err) < 0)
		return err->code ? err->code : MM_ERR;
	step_log(ctx, "created upload session %s for '%s' (%lld bytes)", u->id, u->filename,
		 (long long)u->size);
	return save(ctx, u, 0, err);
}

/* ---- sending ------------------------------------------------------------------ */

/* Failures that no retry can fix. */
static int chunk_refused(const struct upload *u, int64_t len, struct mm_error *err)
{
	char why[sizeof(err->msg)];

	if (err->code == MM_EINTR)
		return MM_EINTR;
	memcpy(why, err->msg, sizeof(why));
	if (!strcmp(err->app_id, "api.file.cloud_upload.app_error"))
		return create_refused(u, err);
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
	if ((rc = ra_wait(u->ra, stop_asked, ctx)) > 0)
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
	if (offset != recorded_offset(ctx) && save(ctx, u, offset, err) < 0)
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
static int transfer(struct step_ctx *ctx, struct http_client *c, struct upload *u, struct mm_error *err)
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
		if ((rc = backoff(ctx, u, &rs, err, "asking the server how much it stored")) == MM_ERETRY)
			return err_set(err, MM_ERR,
				       "upload session %s made no progress in %d attempts: %.1500s", u->id,
				       rs.fails, err->msg);
		if (rc < 0)
			return err_set(err, MM_EINTR, "stopped uploading session %s; apply again to resume",
				       u->id);
	}
}

/*
 * The digest for the outputs: known, or computed while sending. A session
 * that completed in an earlier run (killed before it was recorded) was not
 * read by this one: hash the file now.
 */
static int final_digest(struct step_ctx *ctx, struct upload *u, struct mm_error *err)
{
	if (u->sha[0] || (u->ra && ra_digest(u->ra, u->sha)))
		return 0;
	if (hash_file(ctx, u->fd, u->path, &u->size, u->sha, err) < 0)
		return err->code;
	if (u->expect[0] && strcasecmp(u->expect, u->sha))
		return err_set(err, MM_ERR, "'%s' has SHA-256 %s, but %s; the server holds the upload already",
			       u->path, u->sha, u->expect);
	return 0;
}

/* Parameters and the local file's size and digest; 0 or <0 with err set. */
static int upload_init(struct step_ctx *ctx, struct upload *u, struct mm_error *err)
{
	u->fd = -1;
	u->ctx = ctx;
	u->path = param_path(ctx, "file");
	u->filename = param_str(ctx, "filename") ? param_str(ctx, "filename") : base_name(u->path);
	u->chunk = param_int(ctx, "chunk_size");
	if (u->chunk <= 0)
		u->chunk = u->chunk_base = CHUNK_BASE;
	u->rate = param_int(ctx, "rate_limit");
	retry_policy_init(&u->policy, (int)param_int(ctx, "retries"));
	if (open_local(u, err) < 0)
		return err->code;
	return choose_digest(ctx, u, err);
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

	if ((ret = upload_init(ctx, &u, err)) < 0 || (ret = same_file(ctx, &u, err)) < 0 ||
	    (ret = check_proven(ctx, &u, err)) < 0)
		goto out;
	ret = MM_ERR;
	if (!(c = step_client(ctx, err)))
		goto out;
	if ((ret = open_session(ctx, c, &u, err)) < 0 || (ret = set_name(&u, err)) < 0 ||
	    (ret = transfer(ctx, c, &u, err)) < 0 || (step_meter_finish(ctx, &u.meter), 0) ||
	    (ret = final_digest(ctx, &u, err)) < 0)
		goto out;
	if (u.ra)
		step_log(ctx, "read %lld bytes of '%s' (%lld bytes long) to send and hash it",
			 (long long)ra_bytes_read(u.ra), u.path, (long long)u.size);
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
		found = find_session(ctx, c, u, cJSON_GetObjectItem(ctx->ckpt, "uploads_before"), id, err);
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
	if ((ret = same_file(ctx, &u, err)) < 0) {
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
			 id, (long long)recorded_offset(ctx), (long long)u.size);
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

static int is_hex64(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!strchr("0123456789abcdefABCDEF", s[n]))
			return 0;
	return n == 64;
}

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
	if (sha && !is_hex64(sha))
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

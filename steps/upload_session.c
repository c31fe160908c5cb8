/*
 * upload_session.c: the upload step's checkpoint and its import upload
 * session: found, adopted or created, never twice for one answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "up.h"

/* ---- checkpoint ----------------------------------------------------------- */

int up_save(struct step_ctx *ctx, const struct upload *u, int64_t offset, struct mm_error *err)
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

int64_t up_recorded_offset(const struct step_ctx *ctx)
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
	return !strcmp(up->type, "import") && !strcmp(up->filename, up_base_name(u->filename)) &&
	       up->file_size == u->size && !in_array(before, up->id);
}

/*
 * An incomplete import session of this file that did not exist before we
 * started creating one: made by a run that died before recording it, or by a
 * POST whose answer was lost. 1 found (id filled), 0 none, <0 error.
 */
int up_find_session(struct step_ctx *ctx, struct http_client *c, const struct upload *u, const cJSON *before,
		    char id[MM_ID_LEN + 1], struct mm_error *err)
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

int up_create_refused(const struct upload *u, struct mm_error *err)
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
int up_backoff(const struct step_ctx *ctx, struct upload *u, struct retry_state *rs, const struct mm_error *e,
	       const char *next)
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
		if (unsure && (rc = up_find_session(ctx, c, u, u->before, u->id, err)) > 0) {
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
				return up_create_refused(u, err);
			unsure = 1;
		}
		if ((rc = up_backoff(ctx, u, &rs, err, "trying again")) == MM_ERETRY)
			return err->code < 0 ? err->code : MM_ERR;
		if (rc < 0)
			return err_set(err, MM_EINTR, "stopped before creating the upload session");
	}
}

/* Finds the session of an earlier run, or creates one; u->id is checkpointed on return. */
int up_open_session(struct step_ctx *ctx, struct http_client *c, struct upload *u, struct mm_error *err)
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
		found = up_find_session(ctx, c, u, u->before, u->id, err);
		if (found < 0)
			return MM_ERR;
		if (found) {
			step_log(ctx, "adopting upload session %s, created by an interrupted run", u->id);
			return up_save(ctx, u, 0, err);
		}
		cJSON_Delete(u->before);
		u->before = NULL;
	}
	if (mm_list_my_uploads(c, &ups, &n, err) < 0)
		return MM_ERR;
	u->before = import_session_ids(ups, n);
	free(ups);
	if (up_save(ctx, u, 0, err) < 0 || create_session(ctx, c, u, err) < 0)
		return err->code ? err->code : MM_ERR;
	step_log(ctx, "created upload session %s for '%s' (%lld bytes)", u->id, u->filename,
		 (long long)u->size);
	return up_save(ctx, u, 0, err);
}

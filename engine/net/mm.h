/*
 * mm: typed Mattermost REST API v4 calls on top of http
 * (contract: docs/mattermost-api.md, "the API doc" below).
 *
 *   struct mm_user me;  char ver[32];
 *   mm_login(c, login_id, password, mfa_or_NULL, &me, &err);   puts the session token on c
 *   mm_get_me(c, &me, ver, &err);  if (!mm_version_at_least(ver, 5, 33)) ...
 *
 *   struct mm_job job = MM_JOB_INIT;
 *   mm_create_job(c, "export_process", data, &job, &err);      never retried: adopt first
 *   mm_get_job(c, job.id, &job, &err);  mm_job_is_terminal(job.status)
 *   mm_job_clear(&job);                                          frees job.data
 *
 *   char **names; size_t n;
 *   mm_list_exports(c, &names, &n, &err);  mm_names_free(names, n);
 *
 *   struct mm_upload up;
 *   mm_create_upload(c, "archive.zip", size, &up, &err);         never retried
 *   loop: mm_get_upload → mm_upload_chunk(c, up.id, fd, up.file_offset, len, &done, &err)
 *   mm_import_name(&up, name, sizeof(name));                     "<id>_archive.zip"
 *
 * Ownership: structs are caller-provided; mm_job owns its data (mm_job_clear),
 * arrays come back malloc'd (free them with the matching *_free), cJSON
 * results are freed by the caller with cJSON_Delete. Every function returns 0
 * or a negative MM_E* code with err filled as http.h describes; 404 is
 * MM_ENOTFOUND. Ids are checked (26 chars of [a-z0-9]) before they go into a
 * path, names are percent-encoded.
 */
#ifndef MM_MM_H
#define MM_MM_H

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "buf.h"
#include "error.h"
#include "http.h"

#define MM_ID_LEN 26
/* model.UploadNoUserID: the owner of upload sessions created in local mode. */
#define MM_UPLOAD_NO_USER "nouser"

struct mm_user {
	char id[MM_ID_LEN + 1];
	char username[65];
	char email[129];
	char roles[256]; /* space-separated */
	char auth_service[32];
	int64_t delete_at;
	int is_system_admin; /* roles holds "system_admin" */
};

struct mm_job {
	char id[MM_ID_LEN + 1];
	char type[64];
	char status[32];
	int64_t create_at, start_at, last_activity_at, progress;
	cJSON *data; /* string map; an empty object, never NULL, once filled */
};

#define MM_JOB_INIT                          \
	{                                    \
		"", "", "", 0, 0, 0, 0, NULL \
	}

struct mm_upload {
	char id[MM_ID_LEN + 1];
	char type[16]; /* "import" or "attachment" */
	char user_id[MM_ID_LEN + 1];
	char filename[512];
	int64_t create_at, file_size, file_offset;
};

struct mm_team {
	char id[MM_ID_LEN + 1];
	char name[65];
	char display_name[256];
	char type[2]; /* "O" open, "I" invite only */
	int64_t delete_at;
};

struct mm_channel {
	char id[MM_ID_LEN + 1];
	char team_id[MM_ID_LEN + 1];
	char name[65];
	char display_name[256];
	char type[2]; /* "O", "P", "D", "G" */
	int64_t delete_at;
	int64_t total_msg_count; /* -1 when the server did not say */
};

/* Flags for mm_list_team_channels: public channels are always listed. */
enum {
	MM_CHANNELS_PRIVATE = 1 << 0, /* GET /teams/{id}/channels/private (system admin) */
	MM_CHANNELS_DELETED = 1 << 1, /* GET /teams/{id}/channels/deleted (archived) */
};

/* ---- pure helpers ---- */

int mm_id_valid(const char *id);
/* "9.11.2.12345.abc.true" → "9.11.2" (first three dot parts); -1 if malformed. */
int mm_version_from_header(const char *x_version_id, char out[32]);
/* 1 when ver ("9.11.2") is major.minor or newer; 0 otherwise or unparsable. */
int mm_version_at_least(const char *ver, int major, int minor);
/* success, error, canceled, warning; anything unknown keeps polling (API doc 3.2). */
int mm_job_is_terminal(const char *status);
void mm_job_clear(struct mm_job *job);
void mm_jobs_free(struct mm_job *jobs, size_t n);
void mm_names_free(char **names, size_t n);
/* The file name the server gives a completed upload: "<session id>_<basename>". */
int mm_import_name(const struct mm_upload *up, char *out, size_t outlen);
/* "/api/v4/exports/<escaped name>", for http_download_range. */
int mm_export_path(const char *name, struct buf *path, struct mm_error *err);

/* ---- users ---- */

/* POST /users/login; sets the Token answer header on c. Retried only on
 * connect failure, 429 and 503: a lost answer just leaves a spare session. */
int mm_login(struct http_client *c, const char *login_id, const char *password, const char *mfa,
	     struct mm_user *me, struct mm_error *err);
/* POST /users/logout: revokes the session the client carries (not for tokens). */
int mm_logout(struct http_client *c, struct mm_error *err);
/* GET /system/ping (also served in local mode); version as for mm_get_me. */
int mm_ping(struct http_client *c, char version[32], struct mm_error *err);
/* GET /users/me; version (may be NULL) gets "x.y.z" from X-Version-ID. */
int mm_get_me(struct http_client *c, struct mm_user *me, char version[32], struct mm_error *err);
int mm_get_user_by_username(struct http_client *c, const char *username, struct mm_user *user,
			    struct mm_error *err);

/* ---- jobs ---- */

/* data: string→string object or NULL. One attempt, MM_ERETRY when unsure. */
int mm_create_job(struct http_client *c, const char *type, const cJSON *data, struct mm_job *job,
		  struct mm_error *err);
int mm_get_job(struct http_client *c, const char *id, struct mm_job *job, struct mm_error *err);
/* Newest first; caller frees *jobs with mm_jobs_free. */
int mm_list_jobs(struct http_client *c, const char *type, int page, int per_page, struct mm_job **jobs,
		 size_t *n, struct mm_error *err);
int mm_cancel_job(struct http_client *c, const char *id, struct mm_error *err);

/* ---- exports ---- */

/* Caller frees *names with mm_names_free. */
int mm_list_exports(struct http_client *c, char ***names, size_t *n, struct mm_error *err);
/* Succeeds when the file is already gone. */
int mm_delete_export(struct http_client *c, const char *name, struct mm_error *err);
/* Recent servers with the feature flag only; *url is a secret-bearing link the
 * caller frees (and should not log). */
int mm_presign_export(struct http_client *c, const char *name, char **url, int64_t *expiration_ns,
		      struct mm_error *err);

/* ---- imports and uploads ---- */

int mm_list_imports(struct http_client *c, char ***names, size_t *n, struct mm_error *err);
/* 1 when GET /imports lists name, 0 when it does not, <0 on error. */
int mm_import_listed(struct http_client *c, const char *name, struct mm_error *err);
/* MM_ENOTFOUND "unsupported" on servers without the route. */
int mm_delete_import(struct http_client *c, const char *name, struct mm_error *err);
/* type "import"; one attempt, MM_ERETRY when unsure: look for the session first.
 * In local mode the body carries "user_id": MM_UPLOAD_NO_USER. */
int mm_create_upload(struct http_client *c, const char *filename, int64_t size, struct mm_upload *up,
		     struct mm_error *err);
/* MM_ENOTFOUND: no such session, or it completed. */
int mm_get_upload(struct http_client *c, const char *id, struct mm_upload *up, struct mm_error *err);
/* One raw POST of [offset, offset+length) of fd; *complete is 1 when the
 * server answered 200 (the upload is done). GET the session after any error. */
int mm_upload_chunk(struct http_client *c, const char *id, int fd, int64_t offset, int64_t length,
		    int *complete, struct mm_error *err);
/* The same with the body from src (see http_upload_stream). */
int mm_upload_stream(struct http_client *c, const char *id, http_source_fn src, void *ctx, int64_t length,
		     int *complete, struct mm_error *err);
/* Incomplete sessions of the caller, oldest first; caller frees *ups. In local
 * mode: those of MM_UPLOAD_NO_USER (GET /users/nouser/uploads). */
int mm_list_my_uploads(struct http_client *c, struct mm_upload **ups, size_t *n, struct mm_error *err);

/* ---- configuration ---- */

int mm_get_config(struct http_client *c, cJSON **config, struct mm_error *err);
/* PUT /config/patch; *new_config (may be NULL) is the full masked config.
 * Writes can be silently ignored (Cloud): read the value back. */
int mm_patch_config(struct http_client *c, const cJSON *patch, cJSON **new_config, struct mm_error *err);

/* ---- teams and channels (reconciliation) ---- */

int mm_get_team_by_name(struct http_client *c, const char *name, struct mm_team *team, struct mm_error *err);
/* Every team, paged until an empty page; caller frees *teams. */
int mm_list_teams(struct http_client *c, struct mm_team **teams, size_t *n, struct mm_error *err);
int mm_get_channel_by_name(struct http_client *c, const char *team_id, const char *name, int include_deleted,
			   struct mm_channel *ch, struct mm_error *err);
/* Paged until empty; flags add private and archived channels; caller frees *chs. */
int mm_list_team_channels(struct http_client *c, const char *team_id, unsigned flags, struct mm_channel **chs,
			  size_t *n, struct mm_error *err);

/* The readers behind mm_get_job and mm_get_upload, over raw JSON bytes (for fuzz targets). */
int mm_parse_job(const char *text, size_t len, struct mm_job *job, struct mm_error *err);
int mm_parse_upload(const char *text, size_t len, struct mm_upload *up, struct mm_error *err);

#endif

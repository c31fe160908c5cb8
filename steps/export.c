/*
 * export: run an export_process job on the source and find the file it
 * wrote. The job id is checkpointed the moment the server returns it; an
 * interrupted run adopts the job instead of starting a second export.
 *
 * The file name: <jobid>_export.zip on 7.2+; before that a random name that
 * can only be found by listing /exports before and after (API doc 4.5), so
 * both lists are taken and the job id name is preferred when present.
 *
 * stall_timeout defaults to 0 (off): the export worker updates its
 * *_exported counters per page of teams, channels, users and posts, but not
 * while it copies attachments into the zip (app/export.go BulkExport:
 * exportAttachments sets attachments_exported only when done), which is the
 * long part of a big export; older servers report nothing before the end.
 *
 * job_id adopts a job made elsewhere (`mmctl export create`). On servers
 * before 7.2 its file is found only if it appears after this step first
 * listed /exports.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"
#include "mm.h"
#include "step.h"
#include "util.h"

static const struct param_spec export_params[] = {
	{ "attachments", P_BOOL, 0, "true", "include file attachments" },
	{ "archived_channels", P_BOOL, 0, "true", "include archived channels (9.1+)" },
	{ "profile_pictures", P_BOOL, 0, "false", "include profile pictures (recent servers)" },
	{ "roles_and_schemes", P_BOOL, 0, "true", "include roles and schemes (recent servers)" },
	{ "timeout", P_DURATION, 0, "12h", "give up waiting after this long (the job keeps running)",
	  .tuning = 1 },
	{ "stall_timeout", P_DURATION, 0, "0",
	  "give up when the job shows no change this long; 0: never (the export does not report while it "
	  "copies attachments)",
	  .tuning = 1 },
	{ "poll_interval", P_DURATION, 0, "10s", "longest wait between two status checks", .tuning = 1 },
	{ "adopt_wait", P_DURATION, 0, "30s",
	  "after a lost create answer, how long a new job may be missing from job listings", .tuning = 1 },
	{ "job_id", P_STRING, 0, NULL,
	  "adopt this export job (made by mmctl or the System Console) instead of creating one" },
	{ .name = "max_attempts",
	  .kind = P_INT,
	  .def = "3",
	  .doc = "jobs started in all before giving up (a failed or canceled job is retried by the next apply)",
	  .tuning = 1 },
	{ NULL },
};

static const char *const export_outputs[] = { "job_id", "file", NULL };
/* A new job is a new archive: consumers re-run when the job changes. */
static const char *const export_identity[] = { "job_id", "file", NULL };

static cJSON *export_data(const struct step_ctx *ctx)
{
	cJSON *d = cJSON_CreateObject();

	/* The server only honours the exact string "true" (API doc 1.1). */
	cJSON_AddStringToObject(d, "include_attachments", param_bool(ctx, "attachments") ? "true" : "false");
	cJSON_AddStringToObject(d, "include_archived_channels",
				param_bool(ctx, "archived_channels") ? "true" : "false");
	cJSON_AddStringToObject(d, "include_profile_pictures",
				param_bool(ctx, "profile_pictures") ? "true" : "false");
	cJSON_AddStringToObject(d, "include_roles_and_schemes",
				param_bool(ctx, "roles_and_schemes") ? "true" : "false");
	return d;
}

/* Records the exports present before our job, once: the pre-7.2 name finder needs them. */
static int remember_exports(struct step_ctx *ctx, struct http_client *c, struct mm_error *err)
{
	char **names = NULL;
	size_t n = 0;
	cJSON *arr;

	/* Taken again for each attempt: a failed job leaves its truncated file behind. */
	int attempt = cJSON_GetArraySize(cJSON_GetObjectItem(ctx->ckpt, "failed_jobs"));

	if (ckpt_str(ctx, "job_id") || (cJSON_GetObjectItem(ctx->ckpt, "exports_before") &&
					ckpt_int(ctx, "exports_before_at", 0) == attempt))
		return 0;
	if (mm_list_exports(c, &names, &n, err) < 0)
		return MM_ERR;
	arr = cJSON_CreateArray();
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(names[i]));
	mm_names_free(names, n);
	if (ckpt_put(ctx, "exports_before", arr, err) < 0)
		return MM_ERR;
	return ckpt_put(ctx, "exports_before_at", cJSON_CreateNumber(attempt), err);
}

static int was_there(const cJSON *before, const char *name)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, before)
		if (cJSON_IsString(c) && !strcmp(c->valuestring, name))
			return 1;
	return 0;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);

	return ls >= lx && !strcmp(s + ls - lx, suffix);
}

/* The file our job wrote: <jobid>_export.zip, else the one new *_export.zip. */
static int find_export_file(struct step_ctx *ctx, struct http_client *c, const char *job_id, char **file,
			    struct mm_error *err)
{
	const cJSON *before = cJSON_GetObjectItem(ctx->ckpt, "exports_before");
	char **names = NULL;
	size_t n = 0;
	char want[64];
	size_t fresh = 0;
	const char *pick = NULL;
	int ret = 0;

	snprintf(want, sizeof(want), "%s_export.zip", job_id);
	if (mm_list_exports(c, &names, &n, err) < 0)
		return MM_ERR;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(names[i], want)) {
			pick = names[i];
			fresh = 1;
			break;
		}
		if (ends_with(names[i], "_export.zip") && !was_there(before, names[i])) {
			pick = names[i];
			fresh++;
		}
	}
	if (!pick)
		ret = err_set(err, MM_ERR,
			      "export job %s succeeded but no new export file is listed by GET /api/v4/exports "
			      "(expected '%s')",
			      job_id, want);
	else if (fresh > 1)
		ret = err_set(err, MM_ERR,
			      "export job %s succeeded and %zu new export files appeared; cannot tell which "
			      "is ours (another export ran at the same time?)",
			      job_id, fresh);
	else
		*file = xstrdup(pick);
	mm_names_free(names, n);
	return ret;
}

static int export_run(struct step_ctx *ctx, struct mm_error *err)
{
	struct http_client *c = step_client(ctx, err);
	struct job_wait_opts wo = { 0 };
	struct mm_job job = MM_JOB_INIT;
	cJSON *data = NULL;
	char *file = NULL;
	int ret = MM_ERR;

	if (!c)
		return MM_ERR;
	if (remember_exports(ctx, c, err) < 0)
		goto out;
	data = export_data(ctx);
	if (param_str(ctx, "job_id"))
		ret = job_adopt_id(ctx, c, "export_process", param_str(ctx, "job_id"), &job, err);
	else
		ret = job_start(ctx, c, "export_process", data, NULL, NULL, 0, &job, err);
	if (ret < 0)
		goto out;
	wo.timeout_s = param_int(ctx, "timeout");
	wo.stall_timeout_s = param_int(ctx, "stall_timeout");
	wo.poll_max_ms = param_int(ctx, "poll_interval") * 1000;
	if ((ret = job_wait(ctx, c, &wo, &job, err)) < 0)
		goto out;
	if ((ret = find_export_file(ctx, c, job.id, &file, err)) < 0)
		goto out;
	cJSON_AddStringToObject(ctx->outputs, "job_id", job.id);
	cJSON_AddStringToObject(ctx->outputs, "file", file);
	step_log(ctx, "export job %s wrote '%s'", job.id, file);
	ret = 0;
out:
	cJSON_Delete(data);
	mm_job_clear(&job);
	free(file);
	return ret;
}

static int export_describe(struct step_ctx *ctx, struct buf *out, struct mm_error *err)
{
	return job_describe(ctx, "export_process", out, err);
}

const struct step_type step_export = {
	.name = "export",
	.summary = "run an export job on the server and find its file",
	.server = SERVER_REQUIRED,
	.params = export_params,
	.outputs = export_outputs,
	.identity = export_identity,
	.describe = export_describe,
	.run = export_run,
};

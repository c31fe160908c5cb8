/*
 * process: run the import_process job for a file in the server's import
 * directory (normally ${steps.upload.name}) and wait for it.
 *
 * An import of a file is never started twice: job_start adopts any pending,
 * running or successful import job whose data.import_file is this file, and
 * the job id is checkpointed the moment the server returns it. A successful
 * import deletes the file from the import directory, so a file that is not
 * listed and has no job is an error we explain rather than a job we start
 * only to see it fail.
 *
 * stall_timeout defaults to 0 (off): an import job does not touch
 * last_activity_at or progress while it runs (API doc 3.1), so for hours the
 * only sign of life is status "in_progress", and any stall timeout would
 * give up on a healthy import. Use 'timeout', or set stall_timeout to catch
 * a job stuck in "pending" (jobs not running on the server).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"
#include "mm.h"
#include "plan.h"
#include "step.h"
#include "util.h"

static const struct param_spec process_params[] = {
	{ "file", P_STRING, 1, NULL, "name in the import directory, e.g. ${steps.upload.name}" },
	{ "timeout", P_DURATION, 0, "12h", "give up waiting after this long (the job keeps running)",
	  .tuning = 1 },
	{ "stall_timeout", P_DURATION, 0, "0",
	  "give up when the job shows no change this long; 0: never (a running import shows none)",
	  .tuning = 1 },
	{ "poll_interval", P_DURATION, 0, "10s", "longest wait between two status checks", .tuning = 1 },
	{ "adopt_wait", P_DURATION, 0, "30s",
	  "after a lost create answer, how long a new job may be missing from job listings", .tuning = 1 },
	{ "job_id", P_STRING, 0, NULL,
	  "adopt this import job (made by mmctl) instead of creating one; its import_file must be 'file'" },
	{ "extract_content", P_BOOL, 0, "false", "extract text from document attachments while importing" },
	{ "workers", P_INT, 0, NULL, "import parallelism (recent servers; default: the server's CPUs)" },
	{ .name = "max_attempts",
	  .kind = P_INT,
	  .def = "3",
	  .doc = "jobs started in all before giving up (a failed or canceled job is retried by the next apply)",
	  .tuning = 1 },
	{ NULL },
};

static const char *const process_outputs[] = { "job_id", NULL };
static const char *const process_identity[] = { "job_id", NULL };

static cJSON *import_data(const struct step_ctx *ctx)
{
	cJSON *d = cJSON_CreateObject();
	int64_t workers = param_int(ctx, "workers");

	/* Every value a string; local_mode "false": the name is in the import directory (API doc 3.3.2). */
	cJSON_AddStringToObject(d, "import_file", param_str(ctx, "file"));
	cJSON_AddStringToObject(d, "local_mode", "false");
	cJSON_AddStringToObject(d, "extract_content", param_bool(ctx, "extract_content") ? "true" : "false");
	if (workers > 0) {
		char n[24];

		snprintf(n, sizeof(n), "%lld", (long long)workers);
		cJSON_AddStringToObject(d, "workers", n);
	}
	return d;
}

/* The newest pending/running/successful import job of file: 1 (job filled), 0 none, <0 error. */
static int existing_job(struct step_ctx *ctx, struct http_client *c, const char *file, struct mm_job *job,
			struct mm_error *err)
{
	return job_find(c, "import_process", "import_file", file, NULL, job, err);
}

/* The step whose output `file` is (the upload), so a hint can name it; else this step. */
static const char *upload_step(const struct step_ctx *ctx)
{
	const char *up = step_linked_step(ctx, "file", "upload");

	return up ? up : step_id(ctx);
}

static int file_gone(const char *file, struct mm_error *err)
{
	return err_set(err, MM_ERR,
		       "'%s' is not in the server's import directory (GET /api/v4/imports) and no import "
		       "job for it exists: it was imported already (a successful import deletes the file) "
		       "or removed by the retention job (ImportSettings.RetentionDays); upload it again "
		       "('mmigrate reset' on the upload step)",
		       file);
}

/* The step's job_id: an import_process job of this very file. */
static int adopt_given(struct step_ctx *ctx, struct http_client *c, const char *file, struct mm_job *job,
		       struct mm_error *err)
{
	const cJSON *v;

	if (job_adopt_id(ctx, c, "import_process", param_str(ctx, "job_id"), job, err) < 0)
		return MM_ERR;
	v = cJSON_GetObjectItemCaseSensitive(job->data, "import_file");
	if (!cJSON_IsString(v) || strcmp(v->valuestring, file))
		return err_set(err, MM_ERR, "job_id '%s' imports '%s', not '%s'", job->id,
			       cJSON_IsString(v) ? v->valuestring : "(no import_file)", file);
	return 0;
}

static int process_run(struct step_ctx *ctx, struct mm_error *err)
{
	const char *file = param_str(ctx, "file");
	struct http_client *c = step_client(ctx, err);
	struct job_wait_opts wo = { 0 };
	struct mm_job job = MM_JOB_INIT;
	cJSON *data = NULL;
	int ret = MM_ERR, listed;

	if (!c)
		return MM_ERR;
	if (param_str(ctx, "job_id")) {
		if ((ret = adopt_given(ctx, c, file, &job, err)) < 0)
			goto out;
	} else if (!ckpt_str(ctx, "job_id")) {
		/* Before creating: a job of this file may exist, or the file may be gone. */
		if ((ret = existing_job(ctx, c, file, &job, err)) < 0)
			goto out;
		mm_job_clear(&job);
		job = (struct mm_job)MM_JOB_INIT;
		if (ret == 0) {
			if ((listed = mm_import_listed(c, file, err)) < 0) {
				ret = MM_ERR;
				goto out;
			}
			if (!listed) {
				step_set_remedy(ctx, REMEDY_RESET, upload_step(ctx));
				ret = file_gone(file, err);
				goto out;
			}
		}
	}
	data = import_data(ctx);
	if (!param_str(ctx, "job_id") &&
	    (ret = job_start(ctx, c, "import_process", data, "import_file", file, 1, &job, err)) < 0)
		goto out;
	wo.timeout_s = param_int(ctx, "timeout");
	wo.stall_timeout_s = param_int(ctx, "stall_timeout");
	wo.poll_max_ms = param_int(ctx, "poll_interval") * 1000;
	if (wo.poll_max_ms < 1000)
		wo.poll_max_ms = 1000;
	step_log(ctx, "waiting for import job %s of '%s'", job.id, file);
	if ((ret = job_wait(ctx, c, &wo, &job, err)) < 0)
		goto out;
	cJSON_AddStringToObject(ctx->outputs, "job_id", job.id);
	step_log(ctx, "import job %s imported '%s'", job.id, file);
	ret = 0;
out:
	cJSON_Delete(data);
	mm_job_clear(&job);
	return ret;
}

static const char *job_data(const struct mm_job *j, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j->data, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void describe_job(const struct mm_job *j, struct buf *out)
{
	const char *line = job_data(j, "line_number"), *msg = job_data(j, "error");

	if (!strcmp(j->status, "success")) {
		buf_addf(out, "import job %s succeeded; would record it and finish", j->id);
	} else if (mm_job_is_terminal(j->status)) {
		buf_addf(out, "would fail again: import job %s ended '%s'", j->id, j->status);
		if (line)
			buf_addf(out, " at line %s", line);
		buf_addf(out, ": %s (apply starts a new import)", msg ? msg : "(no error text)");
	} else {
		buf_addf(out, "would keep waiting for import job %s, now '%s'", j->id, j->status);
	}
}

static int process_describe(struct step_ctx *ctx, struct buf *out, struct mm_error *err)
{
	const char *file = param_str(ctx, "file"), *id = ckpt_str(ctx, "job_id");
	struct mm_job job = MM_JOB_INIT;
	struct http_client *c;
	int ret = MM_ERR, found;

	if (!id && param_str(ctx, "job_id")) {
		buf_addf(out, "would adopt import job %s (job_id) and wait for it", param_str(ctx, "job_id"));
		return 0;
	}
	if (!id && job_describe_retry(ctx, "import_process", out))
		return 0;
	if (!step_server_readonly_ok(ctx)) {
		if (id)
			buf_addf(out, "would keep waiting for import job %s", id);
		else
			buf_addf(out, "would start an import job for '%s', unless one exists", file);
		buf_adds(out, ctx->offline ? " (offline: not checked)"
					   : " (not checked: a password login is a POST)");
		return 0;
	}
	if (!(c = step_client(ctx, err)))
		return MM_ERR;
	if (id) {
		if ((ret = mm_get_job(c, id, &job, err)) < 0)
			goto out;
		describe_job(&job, out);
		ret = 0;
		goto out;
	}
	if ((found = existing_job(ctx, c, file, &job, err)) < 0)
		goto out;
	if (found) {
		buf_addf(out, "would adopt import job %s of '%s' ('%s') instead of starting another; ",
			 job.id, file, job.status);
		describe_job(&job, out);
		ret = 0;
		goto out;
	}
	if ((found = mm_import_listed(c, file, err)) < 0)
		goto out;
	if (found)
		buf_addf(out, "would start an import_process job for '%s' and wait for it", file);
	else
		buf_addf(out, "would fail: '%s' is not in the import directory and no import job for it exists",
			 file);
	ret = 0;
out:
	mm_job_clear(&job);
	return ret;
}

static int process_check(const struct plan *p, const struct plan_step *st,
			 void (*diag)(void *dctx, const char *key, const char *fmt, ...), void *dctx)
{
	const struct pnode *w = pnode_get(st->node, "workers"), *f = pnode_get(st->node, "file");
	int64_t n;

	if (w && w->kind == PN_SCALAR && w->scalar && !parse_i64(w->scalar, &n) && n < 1)
		diag(dctx, "workers", "'workers' must be at least 1");
	if (f && f->kind == PN_SCALAR && f->scalar && (!*f->scalar || strchr(f->scalar, '/')))
		diag(dctx, "file",
		     "'file' is a name in the server's import directory (e.g. "
		     "${steps.upload.name}), not a path");
	return 0;
}

const struct step_type step_process = {
	.name = "process",
	.summary = "start the import job for an uploaded file and wait for it",
	.server = SERVER_REQUIRED,
	.params = process_params,
	.outputs = process_outputs,
	.identity = process_identity,
	.check = process_check,
	.describe = process_describe,
	.run = process_run,
};

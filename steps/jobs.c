#include "jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "meter.h"
#include "util.h"

#define JOBS_SCAN 200 /* jobs listed when looking for one to adopt: newest first */

static const char *const live_statuses[] = { "pending", "in_progress", "cancel_requested", "success", NULL };

static int status_is_live(const char *s)
{
	for (const char *const *l = live_statuses; *l; l++)
		if (!strcmp(*l, s))
			return 1;
	return 0;
}

static const char *data_str(const cJSON *data, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(data, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int job_matches(const struct mm_job *j, const char *key, const char *val)
{
	const char *v;

	if (!key)
		return 1;
	v = data_str(j->data, key);
	return v && !strcmp(v, val);
}

static int in_array(const cJSON *arr, const char *id)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, arr)
		if (cJSON_IsString(c) && !strcmp(c->valuestring, id))
			return 1;
	return 0;
}

/*
 * The newest live job of type matching key/val that is not in `exclude`
 * (NULL: any). 1 found, 0 none, <0 error.
 */
int job_find(struct http_client *c, const char *type, const char *key, const char *val, const cJSON *exclude,
	     struct mm_job *out, struct mm_error *err)
{
	struct mm_job *jobs = NULL;
	size_t n = 0;
	int found = 0;

	if (mm_list_jobs(c, type, 0, JOBS_SCAN, &jobs, &n, err) < 0)
		return MM_ERR;
	for (size_t i = 0; i < n && !found; i++) {
		struct mm_job *j = &jobs[i];

		if (!status_is_live(j->status) || !job_matches(j, key, val) ||
		    (exclude && in_array(exclude, j->id)))
			continue;
		*out = *j;
		memset(j, 0, sizeof(*j)); /* ownership of data moves to out */
		found = 1;
	}
	mm_jobs_free(jobs, n);
	return found;
}

static cJSON *live_ids(struct http_client *c, const char *type, struct mm_error *err)
{
	struct mm_job *jobs = NULL;
	size_t n = 0;
	cJSON *ids;

	if (mm_list_jobs(c, type, 0, JOBS_SCAN, &jobs, &n, err) < 0)
		return NULL;
	ids = cJSON_CreateArray();
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(ids, cJSON_CreateString(jobs[i].id));
	mm_jobs_free(jobs, n);
	return ids;
}

static int record_job(struct step_ctx *ctx, const struct mm_job *job, struct mm_error *err)
{
	cJSON *ck = ctx->ckpt ? cJSON_Duplicate(ctx->ckpt, 1) : cJSON_CreateObject();

	cJSON_DeleteItemFromObject(ck, "creating");
	cJSON_DeleteItemFromObject(ck, "creating_at");
	cJSON_DeleteItemFromObject(ck, "job_id");
	cJSON_DeleteItemFromObject(ck, "wait_started_at");
	cJSON_AddStringToObject(ck, "job_id", job->id);
	cJSON_AddNumberToObject(ck, "wait_started_at", (double)now_ms());
	return ckpt_save(ctx, ck, err);
}

static int adopt(struct step_ctx *ctx, struct mm_job *job, const char *why, struct mm_error *err)
{
	step_log(ctx, "adopting %s job %s (%s): %s", job->type, job->id, job->status, why);
	return record_job(ctx, job, err);
}

/* "creating" and the time it was set, in one checkpoint write, just before POST /jobs. */
static int mark_creating(struct step_ctx *ctx, struct mm_error *err)
{
	cJSON *ck = ctx->ckpt ? cJSON_Duplicate(ctx->ckpt, 1) : cJSON_CreateObject();

	cJSON_DeleteItemFromObject(ck, "creating");
	cJSON_DeleteItemFromObject(ck, "creating_at");
	cJSON_AddTrueToObject(ck, "creating");
	cJSON_AddNumberToObject(ck, "creating_at", (double)now_ms());
	return ckpt_save(ctx, ck, err);
}

/*
 * job_find for a job we may have created: job listings read a database
 * replica (SqlJobStore.GetAllByTypePage uses GetReplicaX), so a job created a
 * moment ago can be missing from them. Until 'adopt_wait' has passed since
 * the POST, "not listed" is not yet "not created": list again.
 */
static int find_created(struct step_ctx *ctx, struct http_client *c, const char *type, const char *key,
			const char *val, const cJSON *exclude, struct mm_job *job, struct mm_error *err)
{
	const cJSON *at = cJSON_GetObjectItem(ctx->ckpt, "creating_at");
	int64_t until =
		cJSON_IsNumber(at) ? double_to_i64(at->valuedouble) + param_int(ctx, "adopt_wait") * 1000 : 0;
	int said = 0;

	for (;;) {
		int found = job_find(c, type, key, val, exclude, job, err);
		int64_t left = until - now_ms();

		if (found != 0 || left <= 0)
			return found;
		if (!said++)
			step_log(ctx,
				 "the %s job we may have created is not listed; listing again for up to %llds "
				 "(job listings read a database replica that can lag)",
				 type, (long long)(left + 999) / 1000);
		if (step_sleep(ctx, left < 1000 ? left : 1000) < 0)
			return err_set(err, MM_EINTR, "stopped while looking for the %s job", type);
	}
}

int job_adopt_id(struct step_ctx *ctx, struct http_client *c, const char *type, const char *id,
		 struct mm_job *job, struct mm_error *err)
{
	const char *have = ckpt_str(ctx, "job_id");
	int ret;

	if (!mm_id_valid(id))
		return err_set(err, MM_ERR, "job_id '%.40s' is not a job id (26 letters and digits)", id);
	if (have && strcmp(have, id))
		return err_set(err, MM_ERR,
			       "job_id '%s' differs from job %s this step already waits for; reset the step to "
			       "adopt another job",
			       id, have);
	if ((ret = mm_get_job(c, id, job, err)) < 0) {
		if (ret == MM_ENOTFOUND)
			err_prefix(err, "job_id '%s': no such job on the server", id);
		return ret;
	}
	if (strcmp(job->type, type))
		return err_set(err, MM_ERR, "job_id '%s' is a '%s' job, not '%s'", id, job->type, type);
	if (have)
		return 0;
	return adopt(ctx, job, "given as job_id", err);
}

static int job_failed(const struct mm_job *j, struct mm_error *err)
{
	const char *msg = data_str(j->data, "error"), *line = data_str(j->data, "line_number");

	if (line)
		return err_set(err, MM_ERR, "%s job %s ended '%s' at line %s: %s", j->type, j->id, j->status,
			       line, msg ? msg : "(no error text)");
	return err_set(err, MM_ERR, "%s job %s ended '%s': %s", j->type, j->id, j->status,
		       msg ? msg : "(no error text)");
}

/* What a job of this type makes, for messages: "starting a new export". */
static const char *job_noun(const char *type)
{
	if (!strcmp(type, "export_process"))
		return "export";
	if (!strcmp(type, "import_process"))
		return "import";
	if (!strcmp(type, "extract_content"))
		return "extraction";
	return type;
}

static int max_attempts(const struct step_ctx *ctx)
{
	int64_t n = param_int(ctx, "max_attempts");

	return n > 0 ? (int)n : 3;
}

static int failed_count(const struct step_ctx *ctx)
{
	return cJSON_GetArraySize(cJSON_GetObjectItem(ctx->ckpt, "failed_jobs"));
}

static const char *const job_keys[] = { "job_id",         "jobs_before", "creating", "wait_started_at",
					"last_change_at", "signature",   NULL };

/*
 * A job that ended error or canceled is history, not a checkpoint: it moves to
 * failed_jobs (id, status, error) and the job keys go, so the next start
 * creates a new job. The step's own keys (a range, exports_before) stay.
 */
static int retire_job(struct step_ctx *ctx, const struct mm_job *job, const char *why, struct mm_error *err)
{
	cJSON *ck = cJSON_Duplicate(ctx->ckpt, 1), *hist, *e = cJSON_CreateObject();

	for (const char *const *k = job_keys; *k; k++)
		cJSON_DeleteItemFromObjectCaseSensitive(ck, *k);
	if (!cJSON_IsArray(hist = cJSON_GetObjectItem(ck, "failed_jobs")))
		hist = cJSON_AddArrayToObject(ck, "failed_jobs");
	cJSON_AddStringToObject(e, "id", job->id);
	cJSON_AddStringToObject(e, "status", job->status);
	cJSON_AddStringToObject(e, "error", why);
	cJSON_AddItemToArray(hist, e);
	return ckpt_save(ctx, ck, err);
}

/* "export job X failed: why" of the newest failed job, into out. */
static void last_failure(const struct step_ctx *ctx, const char *type, char *out, size_t len)
{
	const cJSON *hist = cJSON_GetObjectItem(ctx->ckpt, "failed_jobs");
	const cJSON *e = cJSON_GetArrayItem(hist, cJSON_GetArraySize(hist) - 1);

	snprintf(out, len, "%s job %s %s: %s", job_noun(type), data_str(e, "id") ? data_str(e, "id") : "?",
		 data_str(e, "status") && !strcmp(data_str(e, "status"), "canceled") ? "was canceled" : "failed",
		 data_str(e, "error") ? data_str(e, "error") : "(no error text)");
}

/* Before creating a job after failed ones: say so first, or refuse past max_attempts. */
static int announce_retry(struct step_ctx *ctx, const char *type, struct mm_error *err)
{
	int failed = failed_count(ctx), max = max_attempts(ctx);
	char last[1200];

	if (!failed)
		return 0;
	last_failure(ctx, type, last, sizeof(last));
	if (failed >= max) {
		step_set_remedy(ctx, REMEDY_RESET, NULL);
		return err_set(err, MM_ERR,
			       "%s; %d %s job(s) failed, max_attempts is %d: fix the cause, then reset step '%s' "
			       "(or raise max_attempts) to start again",
			       last, failed, job_noun(type), max, step_id(ctx));
	}
	step_log(ctx, "%s; starting a new %s (attempt %d of %d)", last, job_noun(type), failed + 1, max);
	return 0;
}

/* The recorded job, when it can still count: 1 (job filled), 0 none or retired, <0 error. */
static int recorded_job(struct step_ctx *ctx, struct http_client *c, struct mm_job *job, struct mm_error *err)
{
	char *id = ckpt_strdup(ctx, "job_id");
	int ret = 0;

	if (!id)
		return 0;
	if (mm_get_job(c, id, job, err) < 0) {
		ret = MM_ERR;
	} else if (!strcmp(job->status, "success") || !mm_job_is_terminal(job->status)) {
		ret = 1; /* recorded by an earlier run: never create another */
	} else {
		struct mm_error why = MM_ERROR_INIT;

		job_failed(job, &why);
		ret = retire_job(ctx, job, why.msg, err);
		mm_job_clear(job);
		*job = (struct mm_job)MM_JOB_INIT;
	}
	free(id);
	return ret;
}

int job_start(struct step_ctx *ctx, struct http_client *c, const char *type, const cJSON *data,
	      const char *match_key, const char *match_val, int reuse_existing, struct mm_job *job,
	      struct mm_error *err)
{
	/* Copies: every checkpoint save below replaces what ctx->ckpt points into. */
	char *val = match_val ? xstrdup(match_val) : NULL;
	cJSON *before = NULL, *ids = NULL;
	int creating, found, rc = MM_ERR;

	if ((rc = recorded_job(ctx, c, job, err)) != 0)
		goto out;
	rc = MM_ERR;
	if (announce_retry(ctx, type, err) < 0)
		goto out;
	before = ckpt_copy(ctx, "jobs_before");
	creating = cJSON_IsTrue(cJSON_GetObjectItem(ctx->ckpt, "creating"));
	if (creating || reuse_existing) {
		/* An earlier run may have created the job and died before recording it. */
		const cJSON *exclude = reuse_existing ? NULL : before;

		found = creating ? find_created(ctx, c, type, match_key, val, exclude, job, err)
				 : job_find(c, type, match_key, val, exclude, job, err);
		if (found < 0)
			goto out;
		if (found) {
			rc = adopt(ctx, job,
				   reuse_existing ? "a job for this file already exists"
						  : "created by an interrupted run",
				   err);
			goto out;
		}
	}
	if (!(ids = live_ids(c, type, err)))
		goto out;
	cJSON_Delete(before);
	before = cJSON_Duplicate(ids, 1);
	if (ckpt_put(ctx, "jobs_before", ids, err) < 0 || mark_creating(ctx, err) < 0)
		goto out;
	rc = mm_create_job(c, type, data, job, err);
	if (rc == MM_ERETRY) {
		/* No answer: the job may exist. Look before trying again. */
		struct mm_error ferr = MM_ERROR_INIT;

		found = find_created(ctx, c, type, match_key, val, before, job, &ferr);
		if (found > 0) {
			rc = adopt(ctx, job, "created although the answer was lost", err);
			goto out;
		}
		if (found == MM_EINTR) {
			rc = err_set(err, MM_EINTR, "%s", ferr.msg);
			goto out;
		}
		if (found == 0) {
			err_clear(err);
			rc = mm_create_job(c, type, data, job, err);
		}
	}
	if (rc < 0)
		goto out;
	step_log(ctx, "created %s job %s", type, job->id);
	rc = record_job(ctx, job, err);
out:
	free(val);
	cJSON_Delete(before);
	return rc < 0 ? rc : 0;
}

/* A string that changes whenever the job shows any sign of life. */
static char *job_signature(const struct mm_job *j)
{
	struct buf b = BUF_INIT;
	char *data = cJSON_PrintUnformatted(j->data);

	buf_addf(&b, "%s|%lld|%lld|%lld|%s", j->status, (long long)j->progress,
		 (long long)j->last_activity_at, (long long)j->start_at, data ? data : "");
	free(data);
	return buf_detach(&b);
}

static int check_limits(struct step_ctx *ctx, const struct job_wait_opts *o, const struct mm_job *job,
			int64_t now, struct mm_error *err)
{
	double started = cJSON_GetNumberValue(cJSON_GetObjectItem(ctx->ckpt, "wait_started_at"));
	double changed = cJSON_GetNumberValue(cJSON_GetObjectItem(ctx->ckpt, "last_change_at"));

	/* Both limits count from checkpointed times: applying again unchanged fails at once. */
	if (o->timeout_s && started > 0 && now - (int64_t)started > o->timeout_s * 1000) {
		step_set_remedy(ctx, REMEDY_FIX, NULL);
		return err_set(err, MM_ERR,
			       "%s job %s still '%s' after the step's timeout of %llds; the job was left "
			       "on the server (raise 'timeout' and apply again to keep waiting)",
			       job->type, job->id, job->status, (long long)o->timeout_s);
	}
	if (o->stall_timeout_s && changed > 0 && now - (int64_t)changed > o->stall_timeout_s * 1000) {
		step_set_remedy(ctx, REMEDY_FIX, NULL);
		return err_set(err, MM_ERR,
			       "%s job %s shows no change for %llds (status '%s'); a job left in_progress by "
			       "a server restart never finishes, and a pending one means jobs are not "
			       "running (JobSettings.RunJobs)",
			       job->type, job->id, (long long)o->stall_timeout_s, job->status);
	}
	return 0;
}

/*
 * The job ended error or canceled: retire it now, so that the next apply
 * starts a new one (and says so) instead of reporting the dead job forever.
 */
static int job_ended(struct step_ctx *ctx, const struct mm_job *job, struct mm_error *err)
{
	struct mm_error serr = MM_ERROR_INIT;
	int next = failed_count(ctx) + 2, max = max_attempts(ctx);

	job_failed(job, err);
	if (retire_job(ctx, job, err->msg, &serr) < 0)
		return err_set(err, MM_ERR, "%.1000s (and %.900s)", err->msg, serr.msg);
	if (next > max) {
		step_set_remedy(ctx, REMEDY_RESET, NULL);
		return err_set(err, MM_ERR,
			       "%.1700s; that was attempt %d of %d (max_attempts): fix the cause, "
			       "then reset step '%s' to start again",
			       err->msg, max, max, step_id(ctx));
	}
	return err_set(err, MM_ERR, "%.1800s; the next apply starts a new %s (attempt %d of %d)", err->msg,
		       job_noun(job->type), next, max);
}

/* The job's state for the live line or the progress event (meter.h). */
static void show_progress(const struct step_ctx *ctx, const struct mm_job *job, struct job_progress *jp)
{
	double started = cJSON_GetNumberValue(cJSON_GetObjectItem(ctx->ckpt, "wait_started_at"));
	double changed = cJSON_GetNumberValue(cJSON_GetObjectItem(ctx->ckpt, "last_change_at"));

	jp->kind = job_noun(job->type);
	jp->job_id = job->id;
	jp->status = job->status;
	jp->percent = job->progress >= 0 && job->progress <= 100 ? (int)job->progress : -1;
	jp->started_ms = started == started ? (int64_t)started : now_ms();
	jp->changed_ms = changed == changed ? (int64_t)changed : jp->started_ms;
	step_job_progress(ctx, jp);
}

int job_wait(struct step_ctx *ctx, struct http_client *c, const struct job_wait_opts *o, struct mm_job *job,
	     struct mm_error *err)
{
	int64_t interval = o->poll_min_ms ? o->poll_min_ms : 1000;
	int64_t cap = o->poll_max_ms ? o->poll_max_ms : 10000;
	char *sig = NULL, *last = xstrdup(ckpt_str(ctx, "signature") ? ckpt_str(ctx, "signature") : "");
	struct job_progress jp = { .percent = -1 };
	int ret;

	for (;;) {
		const char *id = ckpt_str(ctx, "job_id");
		int64_t now = now_ms();

		if (!job->id[0] || strcmp(job->id, id)) {
			mm_job_clear(job);
			if ((ret = mm_get_job(c, id, job, err)) < 0)
				break;
		}
		if (!strcmp(job->status, "success")) {
			ret = 0;
			break;
		}
		if (mm_job_is_terminal(job->status)) {
			ret = job_ended(ctx, job, err);
			break;
		}
		sig = job_signature(job);
		if (strcmp(sig, last) || !cJSON_GetObjectItem(ctx->ckpt, "last_change_at")) {
			cJSON *ck = cJSON_Duplicate(ctx->ckpt, 1);

			cJSON_DeleteItemFromObject(ck, "last_change_at");
			cJSON_DeleteItemFromObject(ck, "signature");
			cJSON_AddNumberToObject(ck, "last_change_at", (double)now);
			cJSON_AddStringToObject(ck, "signature", sig);
			if ((ret = ckpt_save(ctx, ck, err)) < 0)
				break;
			step_log(ctx, "job %s: %s", job->id, job->status);
			free(last);
			last = sig;
			sig = NULL;
		}
		free(sig);
		sig = NULL;
		show_progress(ctx, job, &jp);
		if ((ret = check_limits(ctx, o, job, now, err)) < 0)
			break;
		if ((ret = step_sleep(ctx, interval)) < 0) {
			err_set(err, MM_EINTR,
				"stopped while waiting for job %s (it keeps running on the server)", job->id);
			break;
		}
		interval = interval * 3 / 2 > cap ? cap : interval * 3 / 2;
		job->id[0] = '\0'; /* fetch again */
	}
	free(sig);
	free(last);
	return ret;
}

int job_describe_retry(const struct step_ctx *ctx, const char *type, struct buf *out)
{
	int failed = failed_count(ctx), max = max_attempts(ctx);
	char last[1200];

	if (!failed)
		return 0;
	last_failure(ctx, type, last, sizeof(last));
	if (failed >= max)
		buf_addf(out, "would fail: %s, and max_attempts (%d) is used up; reset the step to start again",
			 last, max);
	else
		buf_addf(out, "would start a new %s (attempt %d of %d) after %s", job_noun(type), failed + 1,
			 max, last);
	return 1;
}

int job_describe(struct step_ctx *ctx, const char *type, struct buf *out, struct mm_error *err)
{
	const char *id = ckpt_str(ctx, "job_id");
	struct mm_job job = MM_JOB_INIT;
	struct http_client *c;

	if (!id && param_str(ctx, "job_id")) {
		buf_addf(out, "would adopt %s job %s (job_id)", type, param_str(ctx, "job_id"));
		return 0;
	}
	if (!id) {
		if (!job_describe_retry(ctx, type, out))
			buf_addf(out, "would create an %s job", type);
		return 0;
	}
	if (!step_server_readonly_ok(ctx)) {
		buf_addf(out, "would keep waiting for %s job %s", type, id);
		return 0;
	}
	if (!(c = step_client(ctx, err)) || mm_get_job(c, id, &job, err) < 0)
		return MM_ERR;
	buf_addf(out, "would keep waiting for %s job %s, now '%s'", type, id, job.status);
	mm_job_clear(&job);
	return 0;
}

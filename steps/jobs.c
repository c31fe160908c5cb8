#include "jobs.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "util.h"

#define JOBS_SCAN 200 /* jobs listed when looking for one to adopt: newest first */
#define ADOPT_WAIT_S 30 /* default 'adopt_wait': how long a new job may be missing from listings */

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
int job_find(struct http_client *c, const char *type, const char *key, const char *val,
	     const cJSON *exclude, struct mm_job *out, struct mm_error *err)
{
	struct mm_job *jobs = NULL;
	size_t n = 0;
	int found = 0;

	if (mm_list_jobs(c, type, 0, JOBS_SCAN, &jobs, &n, err) < 0)
		return MM_ERR;
	for (size_t i = 0; i < n && !found; i++) {
		struct mm_job *j = &jobs[i];

		if (!status_is_live(j->status) || !job_matches(j, key, val) || (exclude && in_array(exclude, j->id)))
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

/* Checkpoint = the step's current checkpoint with key set; saved at once. */
static int ckpt_put(struct step_ctx *ctx, const char *key, cJSON *val, struct mm_error *err)
{
	cJSON *ck = ctx->ckpt ? cJSON_Duplicate(ctx->ckpt, 1) : cJSON_CreateObject();

	cJSON_DeleteItemFromObjectCaseSensitive(ck, key);
	cJSON_AddItemToObject(ck, key, val);
	return ckpt_save(ctx, ck, err);
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
	int64_t until = cJSON_IsNumber(at) ? (int64_t)at->valuedouble + param_int(ctx, "adopt_wait", ADOPT_WAIT_S) * 1000 : 0;
	int said = 0;

	for (;;) {
		int found = job_find(c, type, key, val, exclude, job, err);
		int64_t left = until - now_ms();

		if (found != 0 || left <= 0)
			return found;
		if (!said++)
			step_log(ctx, "the %s job we may have created is not listed; listing again for up to %llds "
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

int job_start(struct step_ctx *ctx, struct http_client *c, const char *type, const cJSON *data,
	      const char *match_key, const char *match_val, int reuse_existing, struct mm_job *job,
	      struct mm_error *err)
{
	const char *id = ckpt_str(ctx, "job_id");
	const cJSON *before = cJSON_GetObjectItem(ctx->ckpt, "jobs_before");
	int creating = cJSON_IsTrue(cJSON_GetObjectItem(ctx->ckpt, "creating"));
	cJSON *ids;
	int found, rc;

	if (id) /* recorded by an earlier run: never create another */
		return mm_get_job(c, id, job, err);
	if (creating || reuse_existing) {
		/* An earlier run may have created the job and died before recording it. */
		const cJSON *exclude = reuse_existing ? NULL : before;

		found = creating ? find_created(ctx, c, type, match_key, match_val, exclude, job, err)
				 : job_find(c, type, match_key, match_val, exclude, job, err);
		if (found < 0)
			return MM_ERR;
		if (found)
			return adopt(ctx, job, reuse_existing ? "a job for this file already exists"
							       : "created by an interrupted run", err);
	}
	if (!(ids = live_ids(c, type, err)))
		return MM_ERR;
	if (ckpt_put(ctx, "jobs_before", ids, err) < 0 || mark_creating(ctx, err) < 0)
		return MM_ERR;
	rc = mm_create_job(c, type, data, job, err);
	if (rc == MM_ERETRY) {
		/* No answer: the job may exist. Look before trying again. */
		struct mm_error ferr = MM_ERROR_INIT;

		found = find_created(ctx, c, type, match_key, match_val,
				     cJSON_GetObjectItem(ctx->ckpt, "jobs_before"), job, &ferr);
		if (found > 0)
			return adopt(ctx, job, "created although the answer was lost", err);
		if (found == MM_EINTR)
			return err_set(err, MM_EINTR, "%s", ferr.msg);
		if (found == 0) {
			err_clear(err);
			rc = mm_create_job(c, type, data, job, err);
		}
	}
	if (rc < 0)
		return rc;
	step_log(ctx, "created %s job %s", type, job->id);
	return record_job(ctx, job, err);
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

static int job_failed(const struct mm_job *j, struct mm_error *err)
{
	const char *msg = data_str(j->data, "error"), *line = data_str(j->data, "line_number");

	if (line)
		return err_set(err, MM_ERR, "%s job %s ended '%s' at line %s: %s", j->type, j->id, j->status,
			       line, msg ? msg : "(no error text)");
	return err_set(err, MM_ERR, "%s job %s ended '%s': %s", j->type, j->id, j->status,
		       msg ? msg : "(no error text)");
}

static int check_limits(struct step_ctx *ctx, const struct job_wait_opts *o, const struct mm_job *job,
			int64_t now, struct mm_error *err)
{
	double started = cJSON_GetNumberValue(cJSON_GetObjectItem(ctx->ckpt, "wait_started_at"));
	double changed = cJSON_GetNumberValue(cJSON_GetObjectItem(ctx->ckpt, "last_change_at"));

	if (o->timeout_s && started > 0 && now - (int64_t)started > o->timeout_s * 1000)
		return err_set(err, MM_ERR,
			       "%s job %s still '%s' after the step's timeout of %llds; the job was left "
			       "on the server (raise 'timeout' and apply again to keep waiting)",
			       job->type, job->id, job->status, (long long)o->timeout_s);
	if (o->stall_timeout_s && changed > 0 && now - (int64_t)changed > o->stall_timeout_s * 1000)
		return err_set(err, MM_ERR,
			       "%s job %s shows no change for %llds (status '%s'); a job left in_progress by "
			       "a server restart never finishes, and a pending one means jobs are not "
			       "running (JobSettings.RunJobs)",
			       job->type, job->id, (long long)o->stall_timeout_s, job->status);
	return 0;
}

int job_wait(struct step_ctx *ctx, struct http_client *c, const struct job_wait_opts *o,
	     struct mm_job *job, struct mm_error *err)
{
	int64_t interval = o->poll_min_ms ? o->poll_min_ms : 1000;
	int64_t cap = o->poll_max_ms ? o->poll_max_ms : 10000;
	char *sig = NULL, *last = xstrdup(ckpt_str(ctx, "signature") ? ckpt_str(ctx, "signature") : "");
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
			ret = job_failed(job, err);
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
		if ((ret = check_limits(ctx, o, job, now, err)) < 0)
			break;
		if ((ret = step_sleep(ctx, interval)) < 0) {
			err_set(err, MM_EINTR, "stopped while waiting for job %s (it keeps running on the server)",
				job->id);
			break;
		}
		interval = interval * 3 / 2 > cap ? cap : interval * 3 / 2;
		job->id[0] = '\0'; /* fetch again */
	}
	free(sig);
	free(last);
	return ret;
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

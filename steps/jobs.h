/*
 * jobs: creating and waiting for server jobs (export_process, import_process,
 * extract_content) so that no job is ever started twice and waiting
 * survives restarts.
 *
 *   job_start(ctx, c, type, data, match_key, match_val, &job, err)
 *       adopts a job an interrupted run created but never recorded, or creates
 *       one; the job id is checkpointed before this returns
 *   job_wait(ctx, c, &opts, &job, err)
 *       polls GET /jobs/{id} until a terminal status; timeout and stall
 *       timeout are measured from checkpointed times, so they span restarts
 *
 *   job_adopt_id(ctx, c, type, id, &job, err)
 *       instead of job_start: a job created outside mmigrate (the step's
 *       'job_id'), checked to exist and to be of type, then checkpointed
 *
 * Checkpoint keys used (the step's own keys may sit beside them):
 *   job_id, jobs_before (ids that existed before we created ours),
 *   creating (true between saving jobs_before and recording job_id),
 *   creating_at (ms, when creating was set),
 *   wait_started_at, last_change_at (ms, local clock),
 *   failed_jobs ([{id, status, error}]: jobs that ended error or canceled).
 *
 * Job listings read a database replica on the server, so a job can be
 * missing from them for a while after its creation: after a lost create
 * answer (or a run that died mid-create) job_start lists again until the
 * step's 'adopt_wait' (default 30 s, a tuning key) has passed since the POST
 * before it concludes that no job was created.
 *
 * A job that ends error or canceled is history: job_wait moves it to
 * failed_jobs and fails the step saying the next apply starts attempt N;
 * job_start says so again, then creates the new job. The step's
 * `max_attempts` (default 3) bounds the jobs; past it the step names itself
 * as the one to reset.
 */
#ifndef MM_JOBS_H
#define MM_JOBS_H

#include "mm.h"
#include "step.h"

struct job_wait_opts {
	int64_t timeout_s;       /* overall, from the job's creation; 0: none */
	int64_t stall_timeout_s; /* no change of status/progress/activity/data; 0: none */
	int64_t poll_min_ms;     /* first poll interval [1000] */
	int64_t poll_max_ms;     /* cap of the growing interval [10000] */
};

/*
 * match_key/match_val: only a job whose data[match_key] == match_val counts
 * as ours or as a duplicate (import_file for imports); NULL to match any job
 * of the type. Statuses that count as "already there": pending, in_progress,
 * cancel_requested, success. With reuse_existing, such a job that existed
 * before we ever started is adopted too (an import of this file must never
 * run twice). job is filled (caller clears with mm_job_clear).
 */
int job_start(struct step_ctx *ctx, struct http_client *c, const char *type, const cJSON *data,
	      const char *match_key, const char *match_val, int reuse_existing, struct mm_job *job,
	      struct mm_error *err);

/* The job `id` made elsewhere, if it exists and is a `type` job; recorded as
 * job_id (a second call with the same id only fetches it). job is filled. */
int job_adopt_id(struct step_ctx *ctx, struct http_client *c, const char *type, const char *id,
		 struct mm_job *job, struct mm_error *err);

/* 0 when the job succeeded; MM_ERR with the server's data.error (and line) otherwise. */
int job_wait(struct step_ctx *ctx, struct http_client *c, const struct job_wait_opts *o, struct mm_job *job,
	     struct mm_error *err);

/* Dry run, after failed jobs: "would start a new import (attempt 2 of 3) after import job X
 * failed: …" appended to out; 1 when there were failed jobs, 0 (nothing appended) otherwise. */
int job_describe_retry(const struct step_ctx *ctx, const char *type, struct buf *out);

/* Dry run: "job J is in_progress (started 3m ago)" or what would be created. GETs only. */
int job_describe(struct step_ctx *ctx, const char *type, struct buf *out, struct mm_error *err);

/*
 * The newest pending, running, cancel-requested or successful job of type
 * whose data[key] == val (key NULL: any) and whose id is not in the JSON
 * array exclude (NULL: none). 1 found (out filled; mm_job_clear), 0 none, <0 error.
 */
int job_find(struct http_client *c, const char *type, const char *key, const char *val, const cJSON *exclude,
	     struct mm_job *out, struct mm_error *err);

#endif

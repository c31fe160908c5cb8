/*
 * extract: run a content-extraction job (`mmctl extract run`, servers 6.0+)
 * over the files posted in a date range, so search finds text inside
 * attachments after an import that skipped extraction.
 *
 *   - {id: extract, type: extract, server: target, from: 2024-01-01, to: 2024-06-30T12:00:00Z}
 *
 * `from` and `to` take a date (midnight UTC), an RFC 3339 time, or epoch
 * seconds; the job wants epoch seconds as decimal strings (API doc 3.3.3).
 * Without `to` the range ends at the first run's "now", which is
 * checkpointed before the job is created: a resumed run waits for, or
 * adopts, the job for that same range instead of starting another.
 *
 * stall_timeout defaults to 0 (off): the worker (jobs/extract_content
 * worker.go) writes `processed` and `errors` once, after the last file, so a
 * healthy job shows no change until it ends.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobs.h"
#include "mm.h"
#include "plan.h"
#include "step.h"
#include "util.h"

static const struct param_spec extract_params[] = {
	{ .name = "from",
	  .kind = P_STRING,
	  .def = "0",
	  .doc = "start of the range: 2024-01-31, 2024-01-31T10:00:00Z or epoch seconds" },
	{ .name = "to",
	  .kind = P_STRING,
	  .doc = "end of the range (same forms); default: when the step first ran" },
	{ .name = "timeout",
	  .kind = P_DURATION,
	  .def = "12h",
	  .doc = "give up waiting after this long (the job keeps running)",
	  .tuning = 1 },
	{ .name = "stall_timeout",
	  .kind = P_DURATION,
	  .def = "0",
	  .doc = "give up when the job shows no change this long; 0: never (the job reports only at the end)",
	  .tuning = 1 },
	{ .name = "poll_interval",
	  .kind = P_DURATION,
	  .def = "10s",
	  .doc = "longest wait between two status checks",
	  .tuning = 1 },
	{ .name = "adopt_wait",
	  .kind = P_DURATION,
	  .def = "30s",
	  .doc = "after a lost create answer, how long a new job may be missing from job listings",
	  .tuning = 1 },
	{ .name = "max_attempts",
	  .kind = P_INT,
	  .def = "3",
	  .doc = "jobs started in all before giving up (a failed or canceled job is retried by the next apply)",
	  .tuning = 1 },
	{ NULL },
};

static const char *const extract_outputs[] = { "job_id", "processed", "errors", NULL };
static const char *const extract_identity[] = { "job_id", NULL };

/* n digits at s → *out; -1 if any is not a digit. */
static int digits(const char *s, int n, int *out)
{
	*out = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*out = *out * 10 + (s[i] - '0');
	}
	return 0;
}

/* "Z", "+02:00", "-0530" → seconds east of UTC; -1 on junk. */
static int parse_zone(const char *z, int *east)
{
	int h, m;

	if (!strcmp(z, "Z") || !strcmp(z, "z")) {
		*east = 0;
		return 0;
	}
	if ((z[0] != '+' && z[0] != '-') || digits(z + 1, 2, &h) < 0)
		return -1;
	if (!((z[3] == ':' && !digits(z + 4, 2, &m) && !z[6]) || (!digits(z + 3, 2, &m) && !z[5])))
		return -1;
	if (h > 23 || m > 59)
		return -1;
	*east = (z[0] == '-' ? -1 : 1) * (h * 3600 + m * 60);
	return 0;
}

/* A date (UTC midnight), an RFC 3339 time, or epoch seconds → epoch seconds. */
static int parse_when(const char *s, int64_t *out)
{
	struct tm tm = { 0 };
	int y, mo, d, h = 0, mi = 0, sec = 0, east = 0;
	const char *rest = s + 10;
	time_t t;

	if (!parse_i64(s, out))
		return *out >= 0 ? 0 : -1;
	if (strlen(s) < 10 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
	    digits(s + 8, 2, &d))
		return -1;
	if (*rest == 'T' || *rest == 't' || *rest == ' ') {
		if (strlen(rest) < 9 || digits(rest + 1, 2, &h) || rest[3] != ':' ||
		    digits(rest + 4, 2, &mi) || rest[6] != ':' || digits(rest + 7, 2, &sec))
			return -1;
		rest += 9;
		if (*rest == '.') /* fractions of a second: the job counts whole seconds */
			while (*++rest >= '0' && *rest <= '9')
				;
		if (parse_zone(rest, &east) < 0)
			return -1;
	} else if (*rest) {
		return -1;
	}
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	/* timegm normalises 2024-02-30 into March: a changed field means no such date. */
	if (t == (time_t)-1 || tm.tm_mday != d || tm.tm_mon != mo - 1 || tm.tm_hour != h || tm.tm_min != mi ||
	    tm.tm_sec != sec)
		return -1;
	*out = (int64_t)t - east;
	return *out >= 0 ? 0 : -1;
}

static void show_when(int64_t s, char *out, size_t len)
{
	iso8601_utc(s * 1000, out, len);
}

/* The range of this step: `to` from the checkpoint, else the plan, else now. */
static int extract_range(const struct step_ctx *ctx, int64_t *from, int64_t *to, struct mm_error *err)
{
	const char *f = param_str(ctx, "from"), *t = param_str(ctx, "to"), *saved = ckpt_str(ctx, "to");

	if (parse_when(f ? f : "0", from) < 0)
		return err_set(err, MM_ERR, "'from' is '%s', not a date, an RFC 3339 time or epoch seconds", f);
	*to = now_ms() / 1000;
	if (saved && !parse_i64(saved, to))
		t = NULL; /* chosen by an earlier run: keep it */
	if (t && parse_when(t, to) < 0)
		return err_set(err, MM_ERR, "'to' is '%s', not a date, an RFC 3339 time or epoch seconds", t);
	if (*from > *to)
		return err_set(err, MM_ERR, "'from' is after 'to'");
	return 0;
}

static int remember_range(struct step_ctx *ctx, int64_t from, int64_t to, struct mm_error *err)
{
	char num[32];
	cJSON *ck;

	if (ckpt_str(ctx, "to"))
		return 0;
	ck = ctx->ckpt ? cJSON_Duplicate(ctx->ckpt, 1) : cJSON_CreateObject();
	snprintf(num, sizeof(num), "%lld", (long long)from);
	cJSON_AddStringToObject(ck, "from", num);
	snprintf(num, sizeof(num), "%lld", (long long)to);
	cJSON_AddStringToObject(ck, "to", num);
	return ckpt_save(ctx, ck, err);
}

static const char *data_or_empty(const cJSON *data, const char *key)
{
	const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(data, key));

	return v ? v : "";
}

/*
 * A server that does not know the job type answers the listing with 400
 * api.job.retrieve.nopermissions (SessionHasPermissionToReadJob has no
 * permission for it) and the creation with
 * api.job.unable_to_create_job.incorrect_job_type; one without a worker for
 * it refuses the job with model.job.is_valid.type.app_error.
 */
static void explain_no_extraction(struct mm_error *err)
{
	if (!strcmp(err->app_id, "api.job.retrieve.nopermissions") ||
	    !strcmp(err->app_id, "api.job.unable_to_create_job.incorrect_job_type"))
		err_prefix(err, "this server does not know the extract_content job type (content extraction, "
				"`mmctl extract`, needs Mattermost 6.0 or later)");
	else if (!strcmp(err->app_id, "model.job.is_valid.type.app_error"))
		err_prefix(err, "this server runs no content extraction jobs (6.0 or later needed)");
}

static int extract_run(struct step_ctx *ctx, struct mm_error *err)
{
	struct http_client *c = step_client(ctx, err);
	struct job_wait_opts wo = { 0 };
	struct mm_job job = MM_JOB_INIT;
	cJSON *data = NULL;
	char *range_to = NULL;
	int64_t from, to;
	const char *processed, *errors;
	int ret = MM_ERR;

	if (!c)
		return MM_ERR;
	if ((ret = extract_range(ctx, &from, &to, err)) < 0 || (ret = remember_range(ctx, from, to, err)) < 0)
		goto out;
	/* Copies: job_start saves checkpoints, and the range is matched after those saves. */
	range_to = ckpt_strdup(ctx, "to");
	data = cJSON_CreateObject();
	cJSON_AddStringToObject(data, "from", ckpt_str(ctx, "from"));
	cJSON_AddStringToObject(data, "to", range_to);
	ret = job_start(ctx, c, "extract_content", data, "to", range_to, 0, &job, err);
	if (ret < 0) {
		explain_no_extraction(err);
		goto out;
	}
	wo.timeout_s = param_int(ctx, "timeout");
	wo.stall_timeout_s = param_int(ctx, "stall_timeout");
	wo.poll_max_ms = param_int(ctx, "poll_interval") * 1000;
	if ((ret = job_wait(ctx, c, &wo, &job, err)) < 0)
		goto out;
	processed = data_or_empty(job.data, "processed");
	errors = data_or_empty(job.data, "errors");
	cJSON_AddStringToObject(ctx->outputs, "job_id", job.id);
	cJSON_AddStringToObject(ctx->outputs, "processed", processed);
	cJSON_AddStringToObject(ctx->outputs, "errors", errors);
	step_log(ctx, "extract_content job %s processed %s file(s)", job.id,
		 *processed ? processed : "an unknown number of");
	if (*errors && strcmp(errors, "0"))
		step_warn(ctx, "text could not be extracted from %s file(s); see the server log", errors);
	ret = 0;
out:
	free(range_to);
	cJSON_Delete(data);
	mm_job_clear(&job);
	return ret;
}

static int extract_describe(struct step_ctx *ctx, struct buf *out, struct mm_error *err)
{
	char a[32], b[32];
	int64_t from, to;
	int ret = extract_range(ctx, &from, &to, err);

	if (ret < 0 || (ret = job_describe(ctx, "extract_content", out, err)) < 0)
		return ret;
	show_when(from, a, sizeof(a));
	show_when(to, b, sizeof(b));
	buf_addf(out, " for %s .. %s%s", a, ckpt_str(ctx, "to") || param_str(ctx, "to") ? b : "now",
		 ckpt_str(ctx, "to") ? " (range recorded by an earlier run)" : "");
	return 0;
}

static int extract_check(const struct plan *p, const struct plan_step *st,
			 void (*diag)(void *dctx, const char *key, const char *fmt, ...), void *dctx)
{
	static const char *const keys[] = { "from", "to" };
	int64_t v[2] = { 0, -1 };

	for (int i = 0; i < 2; i++) {
		const struct pnode *n = pnode_get(st->node, keys[i]);

		if (!n || n->kind != PN_SCALAR || strstr(n->scalar, "${"))
			continue;
		if (parse_when(n->scalar, &v[i]) < 0)
			diag(dctx, keys[i],
			     "'%s' must be a date like 2024-01-31, an RFC 3339 time like "
			     "2024-01-31T10:00:00Z, or epoch seconds; not '%s'",
			     keys[i], n->scalar);
	}
	if (v[1] >= 0 && v[0] > v[1])
		diag(dctx, "from", "'from' is after 'to'");
	return 0;
}

const struct step_type step_extract = {
	.name = "extract",
	.summary = "run a content-extraction job over a date range and wait for it",
	.server = SERVER_REQUIRED,
	.params = extract_params,
	.outputs = extract_outputs,
	.identity = extract_identity,
	.check = extract_check,
	.describe = extract_describe,
	.run = extract_run,
};

/*
 * `mmigrate server PLAN SERVER WHAT [ARGS]`: the runbook's read commands
 * against one of the plan's servers, with the plan's credentials.
 *
 *   exports                   GET /exports           (mmctl export list)
 *   imports                   GET /imports           (mmctl import list available)
 *   uploads                   GET /users/me/uploads  (mmctl import list incomplete)
 *   jobs TYPE                 GET /jobs/type/{type}  (mmctl export|import job list)
 *   jobs TYPE JOB_ID          GET /jobs/{id}         (mmctl export|import job show)
 *
 * TYPE is export, import, extract or a job type as the server names it
 * (export_process ...). Only GET requests, apart from the login and logout a
 * password server needs. Nothing is read from or written to the state.
 * Events go to stderr, so `--output json` leaves stdout one JSON value.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmds.h"
#include "mm.h"
#include "run.h"
#include "util.h"

#define JOBS_LISTED 200 /* one page, newest first: what mmctl's job list shows without --all */

static const char *const usage =
	"usage: mmigrate server PLAN SERVER exports|imports|uploads|jobs TYPE [JOB_ID]";

/* export → export_process; a job type as the server spells it passes through. */
static const char *job_type_of(const char *t)
{
	static const char *const alias[][2] = {
		{ "export", "export_process" },
		{ "import", "import_process" },
		{ "extract", "extract_content" },
	};

	for (size_t i = 0; i < sizeof(alias) / sizeof(alias[0]); i++)
		if (!strcmp(t, alias[i][0]))
			return alias[i][1];
	return t;
}

static void when(int64_t ms, char *out, size_t len)
{
	if (ms <= 0)
		snprintf(out, len, "-");
	else
		iso8601_utc(ms, out, len);
}

static cJSON *job_json(const struct mm_job *j)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "id", j->id);
	cJSON_AddStringToObject(o, "type", j->type);
	cJSON_AddStringToObject(o, "status", j->status);
	cJSON_AddNumberToObject(o, "create_at", (double)j->create_at);
	cJSON_AddNumberToObject(o, "start_at", (double)j->start_at);
	cJSON_AddNumberToObject(o, "last_activity_at", (double)j->last_activity_at);
	cJSON_AddNumberToObject(o, "progress", (double)j->progress);
	cJSON_AddItemToObject(o, "data", cJSON_Duplicate(j->data, 1));
	return o;
}

static void print_job(const struct mm_job *j, int detailed)
{
	char created[32], started[32];
	char *data = cJSON_PrintUnformatted(j->data);

	when(j->create_at, created, sizeof(created));
	when(j->start_at, started, sizeof(started));
	if (detailed)
		printf("ID: %s\nType: %s\nStatus: %s\nCreated: %s\nStarted: %s\nProgress: %lld\nData: %s\n",
		       j->id, j->type, j->status, created, started, (long long)j->progress, data ? data : "{}");
	else
		printf("%-26s  %-16s  %-20s  %-20s  %s\n", j->id, j->status, created, started,
		       data ? data : "{}");
	free(data);
}

static int show_names(struct http_client *c, int json, int imports, struct mm_error *err)
{
	char **names = NULL;
	size_t n = 0;
	int ret = imports ? mm_list_imports(c, &names, &n, err) : mm_list_exports(c, &names, &n, err);

	if (ret < 0)
		return ret;
	if (json) {
		cJSON *arr = cJSON_CreateArray();
		char *s;

		for (size_t i = 0; i < n; i++)
			cJSON_AddItemToArray(arr, cJSON_CreateString(names[i]));
		s = cJSON_Print(arr);
		printf("%s\n", s);
		free(s);
		cJSON_Delete(arr);
	} else {
		for (size_t i = 0; i < n; i++)
			printf("%s\n", names[i]);
		if (!n)
			fprintf(stderr, "no %s files\n", imports ? "import" : "export");
	}
	mm_names_free(names, n);
	return 0;
}

/* Incomplete import uploads, as `mmctl import list incomplete` shows them. */
static int show_uploads(struct http_client *c, int json, struct mm_error *err)
{
	struct mm_upload *ups = NULL;
	cJSON *arr = cJSON_CreateArray();
	size_t n = 0, shown = 0;

	if (mm_list_my_uploads(c, &ups, &n, err) < 0) {
		cJSON_Delete(arr);
		return MM_ERR;
	}
	for (size_t i = 0; i < n; i++) {
		const struct mm_upload *u = &ups[i];
		cJSON *o;

		if (strcmp(u->type, "import"))
			continue;
		shown++;
		if (!json) {
			printf("%-26s  %-40s  %lld/%lld bytes (%.0f%%)\n", u->id, u->filename,
			       (long long)u->file_offset, (long long)u->file_size,
			       u->file_size ? 100.0 * (double)u->file_offset / (double)u->file_size : 0.0);
			continue;
		}
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "id", u->id);
		cJSON_AddStringToObject(o, "filename", u->filename);
		cJSON_AddNumberToObject(o, "create_at", (double)u->create_at);
		cJSON_AddNumberToObject(o, "file_size", (double)u->file_size);
		cJSON_AddNumberToObject(o, "file_offset", (double)u->file_offset);
		cJSON_AddItemToArray(arr, o);
	}
	if (json) {
		char *s = cJSON_Print(arr);

		printf("%s\n", s);
		free(s);
	} else if (!shown) {
		fprintf(stderr, "no incomplete import uploads\n");
	}
	cJSON_Delete(arr);
	free(ups);
	return 0;
}

static int show_job(struct http_client *c, const char *type, const char *id, int json, struct mm_error *err)
{
	struct mm_job job = MM_JOB_INIT;
	int ret;

	if ((ret = mm_get_job(c, id, &job, err)) < 0)
		return ret;
	if (strcmp(job.type, type)) {
		ret = err_set(err, MM_ERR, "job %s is a '%s' job, not '%s'", job.id, job.type, type);
	} else if (json) {
		cJSON *o = job_json(&job);
		char *s = cJSON_Print(o);

		printf("%s\n", s);
		free(s);
		cJSON_Delete(o);
	} else {
		print_job(&job, 1);
	}
	mm_job_clear(&job);
	return ret;
}

static int list_jobs(struct http_client *c, const char *type, int json, struct mm_error *err)
{
	struct mm_job *jobs = NULL;
	size_t n = 0;

	if (mm_list_jobs(c, type, 0, JOBS_LISTED, &jobs, &n, err) < 0)
		return MM_ERR;
	if (json) {
		cJSON *arr = cJSON_CreateArray();
		char *s;

		for (size_t i = 0; i < n; i++)
			cJSON_AddItemToArray(arr, job_json(&jobs[i]));
		s = cJSON_Print(arr);
		printf("%s\n", s);
		free(s);
		cJSON_Delete(arr);
	} else if (!n) {
		fprintf(stderr, "no %s jobs\n", type);
	} else {
		printf("%-26s  %-16s  %-20s  %-20s  %s\n", "ID", "STATUS", "CREATED", "STARTED", "DATA");
		for (size_t i = 0; i < n; i++)
			print_job(&jobs[i], 0);
	}
	mm_jobs_free(jobs, n);
	return 0;
}

/* Checks the arguments after SERVER; 0 or a usage message on stderr. */
static int check_args(const struct cli_opts *o)
{
	const char *what = o->nargs >= 3 ? o->args[2] : "";
	int want_min = 3, want_max = 3;

	if (!strcmp(what, "jobs")) {
		want_min = 4;
		want_max = 5;
	} else if (strcmp(what, "exports") && strcmp(what, "imports") && strcmp(what, "uploads")) {
		fprintf(stderr, "mmigrate: %s%s%s\n%s\n",
			*what ? "unknown listing '" : "server needs a listing", what, *what ? "'" : "", usage);
		return EXIT_USAGE;
	}
	if (o->nargs < want_min || o->nargs > want_max) {
		fprintf(stderr, "mmigrate: wrong number of arguments for '%s'\n%s\n", what, usage);
		return EXIT_USAGE;
	}
	return 0;
}

static int dispatch(struct http_client *c, const struct cli_opts *o, struct mm_error *err)
{
	const char *what = o->args[2];

	if (!strcmp(what, "exports") || !strcmp(what, "imports"))
		return show_names(c, o->json, !strcmp(what, "imports"), err);
	if (!strcmp(what, "uploads"))
		return show_uploads(c, o->json, err);
	if (o->nargs == 5)
		return show_job(c, job_type_of(o->args[3]), o->args[4], o->json, err);
	return list_jobs(c, job_type_of(o->args[3]), o->json, err);
}

int cmd_server(struct cli_opts *o)
{
	struct plan *p = NULL;
	struct git_provenance prov;
	struct mm_error err = MM_ERROR_INIT;
	struct http_client *c;
	struct run r;
	int ret;

	if ((ret = check_args(o)))
		return ret;
	if ((ret = cli_load_plan(o, &p, &prov)))
		return ret;
	if (!plan_server_find(p, o->args[1])) {
		fprintf(stderr, "mmigrate: %s declares no server '%s'\n", o->plan_path, o->args[1]);
		plan_free(p);
		return EXIT_USAGE;
	}
	cli_run_init(&r, o, p, NULL);
	r.out = stderr; /* stdout is the listing */
	c = run_client(&r, o->args[1], NULL, &err);
	ret = c && dispatch(c, o, &err) == 0 ? EXIT_OK : EXIT_FAILED;
	if (ret)
		fprintf(stderr, "mmigrate: %s\n", err.msg);
	run_release(&r);
	plan_free(p);
	return ret == EXIT_OK ? EXIT_OK : cli_interrupted() ? cli_exit_for(MM_EINTR) : EXIT_FAILED;
}

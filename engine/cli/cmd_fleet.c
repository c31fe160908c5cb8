/*
 * status DIR: the fleet summary. One row per plan found under the arguments
 * (files as given, directories recursively, in path order): the result, the
 * last run, the steps by status, the revision the last run applied and the
 * lock holder; under a row, what needs a look (each failed step with its
 * error, a run that died while a step was running, a plan that does not
 * load). The per-step reading is status_steps()'s, as for one plan.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "cmds.h"
#include "state.h"
#include "termsafe.h"
#include "util.h"

/* A plan's result, least to most alarming. */
enum fleet_result {
	R_DONE,
	R_NEVER,
	R_PENDING,
	R_RUNNING,
	R_FAILED,
	R_STALE,
	R_UNREADABLE,
	R_INVALID,
	R_COUNT
};

static const char *const result_names[R_COUNT] = {
	[R_DONE] = "done",
	[R_NEVER] = "never run",
	[R_PENDING] = "pending",
	[R_RUNNING] = "running",
	[R_FAILED] = "failed",
	[R_STALE] = "stale",
	[R_UNREADABLE] = "unreadable",
	[R_INVALID] = "invalid",
};

struct fleet_row {
	char *path;      /* the plan file; owned */
	char *state_dir; /* NULL when the plan did not load; owned */
	char *error;     /* why the plan or its state could not be read; owned */
	enum fleet_result result;
	struct run_summary last; /* the last run in the journal, when has_run */
	int has_run;
	cJSON *steps; /* status_steps(); owned */
	long pid;     /* the pid the lock file names, 0 when none */
	int alive;    /* its lock is held (lock_holder) */
};

static int count_status(const cJSON *steps, const char *status)
{
	const cJSON *s;
	int n = 0;

	cJSON_ArrayForEach(s, steps)
		n += cli_jstr(s, "status") && !strcmp(cli_jstr(s, "status"), status);
	return n;
}

/* The first problem of an invalid plan as FILE:LINE:COL: message; caller frees. */
static char *first_diag(struct diags *d, const char *path)
{
	struct buf b = BUF_INIT;

	diags_sort(d);
	if (!d->n)
		return xstrdup("the plan cannot be loaded");
	buf_adds(&b, path);
	if (d->v[0].line > 0)
		buf_addf(&b, ":%d:%d", d->v[0].line, d->v[0].col);
	buf_addf(&b, ": %s", d->v[0].msg);
	if (d->n > 1)
		buf_addf(&b, " (and %zu more: mmigrate validate)", d->n - 1);
	return buf_detach(&b);
}

static enum fleet_result row_result(const struct fleet_row *r)
{
	int total = cJSON_GetArraySize(r->steps);

	if (count_status(r->steps, "running"))
		return r->alive ? R_RUNNING : R_STALE;
	if (r->alive)
		return R_RUNNING; /* an apply holds the lock and has not started a step yet */
	if (count_status(r->steps, "failed"))
		return R_FAILED;
	if (count_status(r->steps, "done") == total)
		return R_DONE;
	return r->has_run || count_status(r->steps, "pending") < total ? R_PENDING : R_NEVER;
}

/* Fills row (path set) from the plan, its state, journal and lock; prints nothing. */
static void row_read(const struct cli_opts *o, struct fleet_row *row)
{
	struct plan *p = NULL;
	struct state *st = NULL;
	struct git_provenance prov;
	struct diags d = DIAGS_INIT;
	struct mm_error err = MM_ERROR_INIT;
	struct run_summary *runs = NULL;
	size_t n = 0;
	int rc = cli_load_plan_quiet(o, row->path, &p, &prov, &d, &err);

	row->result = R_INVALID;
	if (rc < 0) {
		row->error = rc == -2 ? first_diag(&d, row->path) : xstrdup(err.msg);
		goto out;
	}
	row->state_dir = xstrdup(p->state_dir);
	if (state_open(o->sys, p->state_dir, 0, &st, &err) < 0) {
		row->error = xstrdup(err.msg);
		row->result = R_UNREADABLE;
		goto out;
	}
	row->steps = status_steps(p, st, &prov);
	if (status_journal_runs(p->state_dir, &runs, &n) == 0 && n) {
		row->last = runs[n - 1];
		row->has_run = 1;
	}
	lock_holder(p->state_dir, &row->pid, &row->alive);
	row->result = row_result(row);
out:
	free(runs);
	state_free(st);
	plan_free(p);
	diags_release(&d);
}

static void row_release(struct fleet_row *r)
{
	free(r->path);
	free(r->state_dir);
	free(r->error);
	cJSON_Delete(r->steps);
}

/* ---- text: aligned columns, every cell escaped for the terminal ---- */

enum { C_PLAN, C_RESULT, C_LAST, C_STEPS, C_REV, C_LOCK, C_COUNT };
static const char *const headings[C_COUNT] = { "PLAN", "RESULT", "LAST RUN", "STEPS", "REVISION", "LOCK" };

/* Display width of UTF-8 text: its code points (term_escape leaves no controls). */
static size_t text_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		w += ((unsigned char)*s & 0xC0) != 0x80;
	return w;
}

static void cell_set(struct buf *cell, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cell_set(struct buf *cell, const char *fmt, ...)
{
	struct buf raw = BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	buf_vaddf(&raw, fmt, ap);
	va_end(ap);
	term_escape(cell, buf_cstr(&raw), raw.len);
	buf_release(&raw);
}

static void row_cells(const struct fleet_row *r, struct buf *cells)
{
	int total = cJSON_GetArraySize(r->steps), failed = count_status(r->steps, "failed");

	cell_set(&cells[C_PLAN], "%s", r->path);
	cell_set(&cells[C_RESULT], "%s", result_names[r->result]);
	if (r->has_run)
		cell_set(&cells[C_LAST], "%s %s", r->last.start, r->last.outcome);
	else
		cell_set(&cells[C_LAST], "-");
	if (r->steps)
		cell_set(&cells[C_STEPS], failed ? "%d/%d done, %d failed" : "%d/%d done",
			 count_status(r->steps, "done"), total, failed);
	else
		cell_set(&cells[C_STEPS], "-");
	cell_set(&cells[C_REV], "%s", r->has_run ? r->last.rev : "-");
	if (r->pid && (r->alive || r->result == R_STALE))
		cell_set(&cells[C_LOCK], "pid %ld%s", r->pid, r->alive ? "" : " gone");
	else
		cell_set(&cells[C_LOCK], "-");
}

static void print_cells(struct buf *cells, const size_t *width)
{
	for (int c = 0; c < C_COUNT; c++) {
		const char *s = buf_cstr(&cells[c]);

		if (c == C_COUNT - 1) {
			printf("%s\n", s);
			break;
		}
		printf("%s%*s  ", s, (int)(width[c] - text_width(s)), "");
	}
}

/* The lines under a row: what to look at. */
static void row_details(const struct fleet_row *r)
{
	const cJSON *s;

	if (r->error)
		term_printf(stdout, "    error: %s\n", r->error);
	cJSON_ArrayForEach(s, r->steps) {
		const char *status = cli_jstr(s, "status");

		if (!strcmp(status, "failed"))
			term_printf(stdout, "    failed %s: %s\n", cli_jstr(s, "id"),
				    cli_jstr(s, "error") ? cli_jstr(s, "error") : "(no message recorded)");
		else if (!strcmp(status, "running") && r->result == R_STALE)
			term_printf(stdout,
				    "    stale %s: running under pid %ld, which is gone; apply resumes it\n",
				    cli_jstr(s, "id"), r->pid);
	}
}

static void print_text(const struct fleet_row *rows, size_t n)
{
	struct buf *cells = xcalloc((n + 1) * C_COUNT, sizeof(*cells));
	size_t width[C_COUNT] = { 0 };

	for (int c = 0; c < C_COUNT; c++)
		buf_adds(&cells[c], headings[c]);
	for (size_t i = 0; i < n; i++)
		row_cells(&rows[i], &cells[(i + 1) * C_COUNT]);
	for (size_t i = 0; i < (n + 1) * C_COUNT; i++)
		if (text_width(buf_cstr(&cells[i])) > width[i % C_COUNT])
			width[i % C_COUNT] = text_width(buf_cstr(&cells[i]));
	for (size_t i = 0; i <= n; i++) {
		print_cells(&cells[i * C_COUNT], width);
		if (i)
			row_details(&rows[i - 1]);
	}
	for (size_t i = 0; i < (n + 1) * C_COUNT; i++)
		buf_release(&cells[i]);
	free(cells);
}

/* ---- json: one status-plan event per plan; the summary counts plans by result ---- */

static cJSON *row_json(const struct fleet_row *r)
{
	cJSON *o = cJSON_CreateObject(), *counts, *failed, *s;

	cJSON_AddStringToObject(o, "plan", r->path);
	cJSON_AddStringToObject(o, "result", result_names[r->result]);
	if (r->state_dir)
		cJSON_AddStringToObject(o, "state_dir", r->state_dir);
	if (r->error)
		cJSON_AddStringToObject(o, "error", r->error);
	if (r->has_run) {
		cJSON *run = cJSON_AddObjectToObject(o, "last_run");

		cJSON_AddStringToObject(run, "run", r->last.run);
		cJSON_AddStringToObject(run, "started", r->last.start);
		if (r->last.end[0])
			cJSON_AddStringToObject(run, "finished", r->last.end);
		cJSON_AddStringToObject(run, "outcome", r->last.outcome);
		cJSON_AddStringToObject(o, "revision", r->last.rev);
	}
	if (r->steps) {
		counts = cJSON_AddObjectToObject(o, "steps");
		failed = cJSON_AddArrayToObject(o, "failed");
		cJSON_ArrayForEach(s, r->steps) {
			const char *status = cli_jstr(s, "status");

			cli_json_count(counts, status);
			if (!strcmp(status, "failed")) {
				cJSON *f = cJSON_CreateObject();

				cJSON_AddStringToObject(f, "step", cli_jstr(s, "id"));
				cJSON_AddStringToObject(f, "error",
							cli_jstr(s, "error") ? cli_jstr(s, "error") : "");
				cJSON_AddItemToArray(failed, f);
			}
		}
	}
	if (r->pid) {
		cJSON *lock = cJSON_AddObjectToObject(o, "lock");

		cJSON_AddNumberToObject(lock, "pid", (double)r->pid);
		cJSON_AddBoolToObject(lock, "alive", r->alive);
	}
	return o;
}

static void print_json(struct cli_opts *o, const struct fleet_row *rows, size_t n)
{
	cJSON *counts;

	for (size_t i = 0; i < n; i++)
		cli_json_event("status-plan", row_json(&rows[i]), "%s %s", rows[i].path,
			       result_names[rows[i].result]);
	if (!o->summary)
		o->summary = cJSON_CreateObject();
	counts = cJSON_AddObjectToObject(o->summary, "plans");
	for (size_t i = 0; i < n; i++)
		cli_json_count(counts, result_names[rows[i].result]);
}

/* The plan files the arguments name; -1 when a directory has none or is unreadable. */
static int fleet_paths(const struct cli_opts *o, char ***list, size_t *n)
{
	struct stat sb;
	int ret = 0;

	for (int i = 0; i < o->nargs; i++) {
		if (stat(o->args[i], &sb) == 0 && S_ISDIR(sb.st_mode)) {
			if (cli_plans_in_dir(o->args[i], 1, list, n) < 0)
				ret = -1;
			continue;
		}
		*list = xrealloc(*list, (*n + 1) * sizeof(**list));
		(*list)[(*n)++] = xstrdup(o->args[i]);
	}
	return ret;
}

/* 2 when a plan does not load, 1 when one failed, died running or has unreadable state. */
static int fleet_exit(const struct fleet_row *rows, size_t n)
{
	int ret = EXIT_OK;

	for (size_t i = 0; i < n; i++) {
		if (rows[i].result == R_INVALID)
			return EXIT_USAGE;
		if (rows[i].result >= R_FAILED)
			ret = EXIT_FAILED;
	}
	return ret;
}

int status_fleet(struct cli_opts *o)
{
	char **list = NULL;
	size_t n = 0;
	struct fleet_row *rows = NULL;
	int ret = EXIT_USAGE;

	if (fleet_paths(o, &list, &n) < 0)
		goto out;
	if (n > 1 && o->state_dir) {
		fprintf(stderr, "mmigrate: --state-dir names the state of one plan; %zu plans were given\n", n);
		goto out;
	}
	rows = xcalloc(n, sizeof(*rows));
	for (size_t i = 0; i < n; i++) {
		rows[i].path = list[i];
		list[i] = NULL;
		row_read(o, &rows[i]);
	}
	if (o->json)
		print_json(o, rows, n);
	else
		print_text(rows, n);
	ret = fleet_exit(rows, n);
out:
	for (size_t i = 0; i < n; i++) {
		free(list[i]);
		if (rows)
			row_release(&rows[i]);
	}
	free(list);
	free(rows);
	return ret;
}

/*
 * status, reset and log: the commands that read or edit the checkpoint and
 * the journal without running steps.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "canon.h"
#include "cmds.h"
#include "state.h"
#include "termsafe.h"
#include "util.h"

/*
 * Keys of step id that differ between the plan at the commit the step ran
 * under and the current file; NULL when there is no drift or no way to tell.
 */
static char *step_drift(const struct git_provenance *cur, const cJSON *rev, const struct plan_step *st)
{
	struct git_provenance then;
	struct mm_error err = MM_ERROR_INIT;
	struct diags d = DIAGS_INIT;
	struct pnode *old_root = NULL;
	const struct pnode *old_steps, *old_step = NULL;
	char *text = NULL, *changed = NULL;
	size_t len;

	if (!cur->in_repo || gitinfo_from_json(rev, &then, &err) < 0 || !then.in_repo || !then.commit[0])
		return NULL;
	if (!strcmp(then.commit, cur->commit) && !cur->dirty && !then.dirty)
		return NULL;
	if (gitinfo_read_blob_at_commit(cur->workdir, then.commit, then.path_in_repo, &text, &len, &err) < 0)
		return xstrdup("(plan file not found at that revision)");
	yaml_to_pnode(text, len, &old_root, &d);
	old_steps = pnode_get(old_root, "steps");
	for (size_t i = 0; old_steps && old_steps->kind == PN_SEQ && i < old_steps->n; i++) {
		const struct pnode *id = pnode_get(old_steps->items[i], "id");

		if (id && id->kind == PN_SCALAR && !strcmp(id->scalar, st->id))
			old_step = old_steps->items[i];
	}
	if (!old_step) {
		changed = xstrdup("(step not in the plan at that revision)");
	} else {
		cJSON *a = pnode_to_json(old_step), *b = pnode_to_json(st->node);

		changed = json_changed_keys(a, b);
		cJSON_Delete(a);
		cJSON_Delete(b);
		if (!*changed) {
			free(changed);
			changed = NULL;
		}
	}
	pnode_free(old_root);
	diags_release(&d);
	free(text);
	return changed;
}

/* Attempts that failed, newest last: the history a retried job or step leaves. */
static void status_text_attempts(const cJSON *rec)
{
	const cJSON *log = cJSON_GetObjectItem(rec, "attempts_log"), *e;
	double n = cJSON_GetNumberValue(cJSON_GetObjectItem(rec, "attempts"));

	if (!cJSON_GetArraySize(log))
		return;
	printf("    attempts: %.0f\n", n > 0 ? n : 1);
	cJSON_ArrayForEach(e, log)
		printf("      attempt %.0f (%s): %s\n", cJSON_GetNumberValue(cJSON_GetObjectItem(e, "attempt")),
		       cli_jstr(e, "at") ? cli_jstr(e, "at") : "?",
		       cli_jstr(e, "error") ? cli_jstr(e, "error") : "");
}

/* One step of status_steps() as text; rec is the step's item there. */
static void status_text_step(const struct plan_step *st, const cJSON *rec)
{
	const cJSON *outs = cJSON_GetObjectItem(rec, "outputs"), *c;
	const char *status = cli_jstr(rec, "status"), *drift = cli_jstr(rec, "drift"),
		   *stale = cli_jstr(rec, "stale");
	struct git_provenance rev;
	struct mm_error err = MM_ERROR_INIT;
	struct buf line = BUF_INIT;

	term_printf(stdout, "%-16s %-9s %-12s", st->id, st->type->name, status ? status : "pending");
	if (cli_jstr(rec, "finished_at"))
		term_printf(stdout, " %s", cli_jstr(rec, "finished_at"));
	else if (cli_jstr(rec, "started_at"))
		term_printf(stdout, " started %s", cli_jstr(rec, "started_at"));
	term_printf(stdout, "\n");
	if (cJSON_GetObjectItem(rec, "revision") &&
	    gitinfo_from_json(cJSON_GetObjectItem(rec, "revision"), &rev, &err) == 0) {
		gitinfo_summary(&rev, &line);
		term_printf(stdout, "    revision: %s\n", buf_cstr(&line));
	}
	if (status && !strcmp(status, "running") && cJSON_IsFalse(cJSON_GetObjectItem(rec, "run_alive")))
		term_printf(stdout, "    died: the run that started it (pid %.0f) is gone; apply resumes it\n",
			    cJSON_GetNumberValue(cJSON_GetObjectItem(rec, "run_pid")));
	if (drift)
		term_printf(stdout, "    drift: the definition changed since that revision: %s\n", drift);
	if (stale)
		term_printf(stdout, "    stale: %s; apply runs it again\n", stale);
	status_text_attempts(rec);
	cJSON_ArrayForEach(c, outs) {
		char *v = cJSON_IsString(c) ? NULL : cJSON_PrintUnformatted(c);

		term_printf(stdout, "    %s = %s\n", c->string, v ? v : c->valuestring);
		free(v);
	}
	if (cJSON_GetObjectItem(rec, "checkpoint")) {
		char *v = cJSON_PrintUnformatted(cJSON_GetObjectItem(rec, "checkpoint"));

		term_printf(stdout, "    checkpoint: %s\n", v);
		free(v);
	}
	if (cli_jstr(rec, "error"))
		term_printf(stdout, "    error: %s\n", cli_jstr(rec, "error"));
	buf_release(&line);
}

cJSON *status_steps(const struct plan *p, const struct state *st, const struct git_provenance *prov)
{
	cJSON *steps = cJSON_CreateArray();
	long pid;
	int alive;

	lock_holder(st->dir, &pid, &alive);
	for (size_t i = 0; i < p->nsteps; i++) {
		const struct plan_step *s = &p->steps[i];
		const cJSON *rec = state_step_get(st, s->id);
		char *drift = rec ? step_drift(prov, cJSON_GetObjectItem(rec, "revision"), s) : NULL;
		char *stale = rec ? sched_stale_inputs(p, st, s->id) : NULL;
		cJSON *item = rec ? cJSON_Duplicate(rec, 1) : cJSON_CreateObject();

		cJSON_AddStringToObject(item, "id", s->id);
		if (!cli_jstr(item, "status")) { /* never ran (or a record without a usable status) */
			cJSON_DeleteItemFromObjectCaseSensitive(item, "status");
			cJSON_AddStringToObject(item, "status", "pending");
		}
		if (!strcmp(cli_jstr(item, "status"), "running")) {
			if (pid)
				cJSON_AddNumberToObject(item, "run_pid", (double)pid);
			cJSON_AddBoolToObject(item, "run_alive", alive);
		}
		if (drift)
			cJSON_AddStringToObject(item, "drift", drift);
		if (stale)
			cJSON_AddStringToObject(item, "stale", stale);
		cJSON_AddItemToArray(steps, item);
		free(drift);
		free(stale);
	}
	return steps;
}

/* The summary of status PLAN: the plan and its steps by status (as apply's), for one plan only. */
static void summarise_status(struct cli_opts *o, const struct plan *p, const cJSON *steps)
{
	const cJSON *s;
	cJSON *by;

	if (!o->summary || o->nargs != 1)
		return; /* several plans: each has its report, the summary no one plan's counts */
	by = cJSON_AddObjectToObject(o->summary, "steps");
	cJSON_ArrayForEach(s, steps)
		cli_json_count(by, cli_jstr(s, "status"));
	cJSON_AddStringToObject(o->summary, "plan", p->path);
}

static int status_one(struct cli_opts *o)
{
	struct plan *p = NULL;
	struct state *st = NULL;
	struct git_provenance prov;
	struct mm_error err = MM_ERROR_INIT;
	cJSON *out = NULL, *steps;
	int ret;

	if ((ret = cli_load_plan(o, &p, &prov)))
		return ret;
	if (state_open(o->sys, p->state_dir, 0, &st, &err) < 0) {
		term_printf(stderr, "mmigrate: %s\n", err.msg);
		plan_free(p);
		return 1;
	}
	out = cJSON_CreateObject();
	cJSON_AddStringToObject(out, "plan", p->path);
	cJSON_AddStringToObject(out, "state_dir", p->state_dir);
	cJSON_AddItemToObject(out, "provenance", gitinfo_to_json(&prov));
	steps = status_steps(p, st, &prov);
	cJSON_AddItemToObject(out, "steps", steps);
	if (o->json) {
		cJSON *ev = cJSON_CreateObject();

		cJSON_AddStringToObject(ev, "plan", p->path);
		summarise_status(o, p, steps);
		cJSON_AddItemToObject(ev, "report", out);
		out = NULL;
		cli_json_event("status-report", ev, "%s: %zu steps", p->path, p->nsteps);
	} else {
		struct buf b = BUF_INIT;

		gitinfo_summary(&prov, &b);
		printf("plan %s (%s)\nstate %s\n\n", p->name, buf_cstr(&b), p->state_dir);
		buf_release(&b);
		for (size_t i = 0; i < p->nsteps; i++)
			status_text_step(&p->steps[i], cJSON_GetArrayItem(steps, (int)i));
	}
	cJSON_Delete(out);
	state_free(st);
	plan_free(p);
	return 0;
}

/* status DIR: the fleet summary (cmd_fleet.c); status PLAN...: each plan in full. */
int cmd_status(struct cli_opts *o)
{
	struct stat sb;

	for (int i = 0; i < o->nargs; i++)
		if (stat(o->args[i], &sb) == 0 && S_ISDIR(sb.st_mode))
			return status_fleet(o);
	return cli_each_plan(o, status_one, 1);
}

static int reset_steps(const struct cli_opts *o, struct plan *p, struct state *st, int *mark)
{
	struct mm_error err = MM_ERROR_INIT;
	cJSON *forgot = cJSON_CreateArray();

	for (int i = 1; i < o->nargs; i++)
		if (sched_dependents(p, o->args[i], mark) < 0) {
			fprintf(stderr, "mmigrate: %s has no step '%s'\n", o->plan_path, o->args[i]);
			cJSON_Delete(forgot);
			return 2;
		}
	for (size_t i = 0; i < p->nsteps; i++) {
		if (o->nargs > 1 && !mark[i])
			continue;
		if (state_step_get(st, p->steps[i].id)) {
			state_step_forget(st, p->steps[i].id);
			cJSON_AddItemToArray(forgot, cJSON_CreateString(p->steps[i].id));
			if (!o->quiet)
				printf("forgot %s\n", p->steps[i].id);
		}
	}
	if (state_commit(st, &err) < 0 || journal_append(st, NULL, "reset", forgot, &err) < 0) {
		term_printf(stderr, "mmigrate: %s\n", err.msg);
		return 1;
	}
	return 0;
}

int cmd_reset(struct cli_opts *o)
{
	struct plan *p = NULL;
	struct state *st = NULL;
	struct git_provenance prov;
	struct mm_error err = MM_ERROR_INIT;
	int ret, fd = -1, *mark = NULL;

	if ((ret = cli_load_plan(o, &p, &prov)))
		return ret;
	if (access(p->state_dir, F_OK) < 0) {
		if (!o->quiet)
			printf("nothing to reset: no state in %s\n", p->state_dir);
		plan_free(p);
		return 0;
	}
	if (lock_acquire(o->sys, p->state_dir, &fd, &err) < 0 ||
	    state_open(o->sys, p->state_dir, 1, &st, &err) < 0) {
		term_printf(stderr, "mmigrate: %s\n", err.msg);
		ret = cli_exit_for(err.code);
		goto out;
	}
	mark = xcalloc(p->nsteps + 1, sizeof(int));
	ret = reset_steps(o, p, st, mark);
out:
	free(mark);
	if (fd >= 0)
		close(fd);
	state_free(st);
	plan_free(p);
	return ret;
}

/* ---- log ---- */

/* The run named by ev in runs, searched newest first (a run's events come together). */
static struct run_summary *run_find(struct run_summary *runs, size_t n, const char *run)
{
	for (size_t i = n; i-- > 0;)
		if (!strcmp(runs[i].run, run))
			return &runs[i];
	return NULL;
}

static void run_begin(struct run_summary *r, const char *run, const cJSON *ev)
{
	const cJSON *prov = cJSON_GetObjectItem(cJSON_GetObjectItem(ev, "details"), "provenance");

	memset(r, 0, sizeof(*r));
	snprintf(r->run, sizeof(r->run), "%s", run);
	snprintf(r->start, sizeof(r->start), "%s", cli_jstr(ev, "time") ? cli_jstr(ev, "time") : "");
	snprintf(r->outcome, sizeof(r->outcome), "unfinished");
	if (cli_jstr(prov, "commit"))
		snprintf(r->rev, sizeof(r->rev), "%.12s%s%s%s", cli_jstr(prov, "commit"),
			 cJSON_IsTrue(cJSON_GetObjectItem(prov, "dirty")) ? "+dirty" : "",
			 cli_jstr(prov, "rev") ? " rev " : "",
			 cli_jstr(prov, "rev") ? cli_jstr(prov, "rev") : "");
	else
		snprintf(r->rev, sizeof(r->rev), "%s",
			 cJSON_IsTrue(cJSON_GetObjectItem(prov, "in_repo")) ? "uncommitted" : "not in git");
}

static void log_event(struct run_summary **runs, size_t *n, const cJSON *ev)
{
	const char *run = cli_jstr(ev, "run"), *event = cli_jstr(ev, "event");
	const cJSON *det = cJSON_GetObjectItem(ev, "details");
	struct run_summary *r;

	if (!run || !event)
		return;
	r = run_find(*runs, *n, run);
	if (!r && !strcmp(event, "run-start")) {
		*runs = xrealloc(*runs, (*n + 1) * sizeof(**runs));
		r = &(*runs)[(*n)++];
		run_begin(r, run, ev);
	}
	if (!r)
		return;
	if (!strcmp(event, "step-done"))
		r->steps_done++;
	else if (!strcmp(event, "step-failed"))
		r->steps_failed++;
	else if (!strcmp(event, "run-end")) {
		snprintf(r->outcome, sizeof(r->outcome), "%s",
			 cli_jstr(det, "outcome") ? cli_jstr(det, "outcome") : "?");
		snprintf(r->end, sizeof(r->end), "%s", cli_jstr(ev, "time") ? cli_jstr(ev, "time") : "");
		r->ms = cJSON_GetNumberValue(cJSON_GetObjectItem(det, "duration_ms"));
	}
}

int status_journal_runs(const char *state_dir, struct run_summary **runs, size_t *n)
{
	struct buf path = BUF_INIT;
	char *line = NULL;
	size_t lcap = 0;
	FILE *f;

	*runs = NULL;
	*n = 0;
	buf_addf(&path, "%s/journal.jsonl", state_dir);
	f = fopen(path.data, "re");
	buf_release(&path);
	if (!f)
		return -1;
	while (getline(&line, &lcap, f) > 0) {
		cJSON *ev = cJSON_Parse(line);

		log_event(runs, n, ev);
		cJSON_Delete(ev);
	}
	fclose(f);
	free(line);
	return 0;
}

static void log_print(const struct cli_opts *o, const struct run_summary *runs, size_t n)
{
	cJSON *arr = cJSON_CreateArray();

	if (!o->json)
		printf("%-20s %-12s %-10s %5s %5s  %s\n", "started", "outcome", "duration", "done", "fail",
		       "revision");
	for (size_t i = 0; i < n; i++) {
		const struct run_summary *r = &runs[i];
		cJSON *j = cJSON_CreateObject();

		cJSON_AddStringToObject(j, "run", r->run);
		cJSON_AddStringToObject(j, "started", r->start);
		cJSON_AddStringToObject(j, "outcome", r->outcome);
		cJSON_AddNumberToObject(j, "duration_ms", r->ms);
		cJSON_AddNumberToObject(j, "steps_done", r->steps_done);
		cJSON_AddNumberToObject(j, "steps_failed", r->steps_failed);
		cJSON_AddStringToObject(j, "revision", r->rev);
		cJSON_AddItemToArray(arr, j);
		if (!o->json)
			printf("%-20s %-12s %9.1fs %5d %5d  %s\n", r->start, r->outcome, r->ms / 1000.0,
			       r->steps_done, r->steps_failed, r->rev);
	}
	if (o->json) {
		cJSON *ev = cJSON_CreateObject();

		cJSON_AddStringToObject(ev, "plan", o->plan_path);
		cJSON_AddItemToObject(ev, "runs", arr);
		cli_json_event("log-report", ev, "%s: %zu runs", o->plan_path, n);
		return;
	}
	cJSON_Delete(arr);
}

int cmd_log(struct cli_opts *o)
{
	struct plan *p = NULL;
	struct git_provenance prov;
	struct run_summary *runs = NULL;
	size_t n = 0;
	int ret;

	if ((ret = cli_load_plan(o, &p, &prov)))
		return ret;
	if (status_journal_runs(p->state_dir, &runs, &n) < 0 && !o->json)
		printf("no runs recorded in %s\n", p->state_dir);
	log_print(o, runs, n);
	free(runs);
	plan_free(p);
	return 0;
}

/* validate, plan and apply: the commands that run a plan. */
#include "cmds.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "canon.h"
#include "state.h"
#include "termsafe.h"
#include "util.h"

static int validate_one(struct cli_opts *o)
{
	struct plan *p = NULL;
	struct git_provenance prov;
	int ret = cli_load_plan(o, &p, &prov);

	if (ret)
		return ret;
	if (cli_check_artefacts(o, p) < 0) {
		plan_free(p);
		return EXIT_USAGE;
	}
	if (o->json) {
		cJSON *f = cJSON_CreateObject();

		cJSON_AddStringToObject(f, "plan", o->plan_path);
		cJSON_AddNumberToObject(f, "step_count", (double)p->nsteps);
		cJSON_AddStringToObject(f, "state_dir", p->state_dir);
		cli_json_event("validated", f, "%s: ok", o->plan_path);
	} else if (!o->quiet) {
		printf("%s: ok (%zu steps, state in %s)\n", o->plan_path, p->nsteps, p->state_dir);
	}
	plan_free(p);
	return EXIT_OK;
}

int cmd_validate(struct cli_opts *o)
{
	return cli_each_plan(o, validate_one, 0);
}

static int plan_one(struct cli_opts *o)
{
	struct plan *p = NULL;
	struct state *st = NULL;
	struct git_provenance prov;
	struct mm_error err = MM_ERROR_INIT;
	struct run r;
	int ret, changes = 0, rc;

	if ((ret = cli_load_plan(o, &p, &prov)))
		return ret;
	if (state_open(o->sys, p->state_dir, 0, &st, &err) < 0) {
		term_printf(stderr, "mmigrate: %s\n", err.msg);
		plan_free(p);
		return EXIT_FAILED;
	}
	cli_run_init(&r, o, p, st);
	r.dry_run = 1;
	rc = sched_plan(&r, &changes, &err);
	run_release(&r);
	if (rc == MM_EINTR) {
		term_printf(stderr, "mmigrate: plan %s by %s\n", err.msg,
			    cli_stop_signal() == SIGTERM ? "SIGTERM" : "SIGINT");
		ret = cli_exit_for(rc);
	} else if (rc < 0) {
		term_printf(stderr, "mmigrate: %s\n", err.msg);
		ret = EXIT_FAILED;
	} else {
		if (!o->quiet && !o->json)
			printf("%d of %zu steps would do something\n", changes, p->nsteps);
		ret = o->detailed && changes ? EXIT_CHANGES : EXIT_OK;
	}
	state_free(st);
	plan_free(p);
	return ret;
}

static cJSON *run_start_details(const struct cli_opts *o, const struct plan *p, cJSON *prov)
{
	cJSON *d = cJSON_CreateObject();
	char cwd[4096];

	cJSON_AddStringToObject(d, "command", "apply");
	cJSON_AddStringToObject(d, "plan", p->path);
	cJSON_AddStringToObject(d, "plan_name", p->name);
	cJSON_AddStringToObject(d, "version", MM_VERSION);
	cJSON_AddNumberToObject(d, "pid", (double)getpid());
	if (getcwd(cwd, sizeof(cwd)))
		cJSON_AddStringToObject(d, "cwd", cwd);
	cJSON_AddBoolToObject(d, "allow_dirty", o->allow_dirty);
	cJSON_AddItemToObject(d, "provenance", cJSON_Duplicate(prov, 1));
	return d;
}

int cmd_plan(struct cli_opts *o)
{
	return cli_each_plan(o, plan_one, 1);
}

/*
 * The one action that works next: apply again when resuming helps; reset
 * the step that must start over when it cannot (a job failed max_attempts
 * times, a file the next step needs is gone); or fix what the message says.
 */
static void print_next_action(const struct cli_opts *o, const struct run *r, int code)
{
	const char *sd = o->state_dir ? " --state-dir " : "", *sdv = o->state_dir ? o->state_dir : "";

	if (code == MM_EINTR)
		fprintf(stderr, "mmigrate: interrupted by %s; the checkpoint is saved.\n",
			cli_stop_signal() == SIGTERM ? "SIGTERM" : "SIGINT");
	if (code != MM_EINTR && r->remedy == REMEDY_RESET)
		fprintf(stderr,
			"mmigrate: step '%s' must start over: mmigrate reset %s %s%s%s, then mmigrate apply %s%s%s\n",
			r->remedy_step, o->plan_path, r->remedy_step, sd, sdv, o->plan_path, sd, sdv);
	else if (code != MM_EINTR && r->remedy == REMEDY_FIX)
		fprintf(stderr, "mmigrate: fix what is described above, then run: mmigrate apply %s%s%s\n",
			o->plan_path, sd, sdv);
	else
		fprintf(stderr, "mmigrate: resume with: mmigrate apply %s%s%s\n", o->plan_path, sd, sdv);
}

/* For the summary event: how each step of the plan stands after the run. */
static void summarise_steps(struct cli_opts *o, const struct plan *p, const struct state *st, int64_t ms)
{
	cJSON *by;

	if (!o->summary)
		return;
	by = cJSON_CreateObject();
	for (size_t i = 0; i < p->nsteps; i++) {
		const char *status = state_step_str(st, p->steps[i].id, "status");

		cli_json_count(by, status ? status : "pending");
	}
	cJSON_AddItemToObject(o->summary, "steps", by);
	cJSON_AddNumberToObject(o->summary, "duration_ms", (double)ms);
	cJSON_AddStringToObject(o->summary, "plan", p->path);
}

static int apply_locked(struct cli_opts *o, struct plan *p, struct state *st, cJSON *prov)
{
	struct mm_error err = MM_ERROR_INIT;
	struct run r;
	int64_t t0 = mono_ms();
	cJSON *end;
	int rc;

	state_set(st, "plan", cJSON_CreateString(p->path));
	state_set(st, "plan_name", cJSON_CreateString(p->name));
	state_set(st, "provenance", cJSON_Duplicate(prov, 1));
	state_set(st, "allow_dirty", cJSON_CreateBool(o->allow_dirty));
	state_set(st, "last_run", cJSON_CreateString(st->run_id));
	if (state_commit(st, &err) < 0 ||
	    journal_append(st, NULL, "run-start", run_start_details(o, p, prov), &err) < 0) {
		term_printf(stderr, "mmigrate: %s\n", err.msg);
		return EXIT_FAILED;
	}
	cli_run_init(&r, o, p, st);
	r.provenance = prov;
	rc = sched_apply(&r, &err);
	run_release(&r);
	end = cJSON_CreateObject();
	cJSON_AddStringToObject(end, "outcome",
				rc == 0          ? "success"
				: rc == MM_EINTR ? "interrupted"
						 : "failed");
	cJSON_AddNumberToObject(end, "duration_ms", (double)(mono_ms() - t0));
	if (rc < 0)
		cJSON_AddStringToObject(end, "error", err.msg);
	{
		struct mm_error jerr = MM_ERROR_INIT;

		if (journal_append(st, NULL, "run-end", end, &jerr) < 0)
			term_printf(stderr, "mmigrate: warning: %s\n", jerr.msg);
	}
	summarise_steps(o, p, st, mono_ms() - t0);
	if (rc == 0) {
		if (!o->quiet && !o->json)
			printf("apply complete: %zu steps done\n", p->nsteps);
		return EXIT_OK;
	}
	if (o->json)
		run_event(&r, NULL, rc == MM_EINTR ? "run-interrupted" : "run-failed", NULL, "%s", err.msg);
	if (rc != MM_EINTR)
		term_printf(stderr, "mmigrate: %s\n", err.msg);
	print_next_action(o, &r, rc);
	return cli_exit_for(rc);
}

int cmd_apply(struct cli_opts *o)
{
	struct plan *p = NULL;
	struct state *st = NULL;
	struct git_provenance prov;
	struct mm_error err = MM_ERROR_INIT;
	cJSON *provj = NULL;
	int ret, lock_fd = -1;

	if ((ret = cli_load_plan(o, &p, &prov)))
		return ret;
	if (prov.in_repo && prov.dirty && !o->allow_dirty) {
		fprintf(stderr,
			"mmigrate: %s has uncommitted changes; commit them (what runs should be what was "
			"reviewed) or pass --allow-dirty\n",
			o->plan_path);
		plan_free(p);
		return EXIT_USAGE;
	}
	provj = gitinfo_to_json(&prov);
	if (state_open(o->sys, p->state_dir, 1, &st, &err) < 0 ||
	    lock_acquire(o->sys, p->state_dir, &lock_fd, &err) < 0) {
		term_printf(stderr, "mmigrate: %s\n", err.msg);
		ret = cli_exit_for(err.code);
		goto out;
	}
	/* Reload under the lock: a run that finished while we waited has written newer state. */
	state_free(st);
	if (state_open(o->sys, p->state_dir, 1, &st, &err) < 0) {
		term_printf(stderr, "mmigrate: %s\n", err.msg);
		ret = EXIT_FAILED;
		goto out;
	}
	ret = apply_locked(o, p, st, provj);
out:
	if (lock_fd >= 0)
		close(lock_fd);
	cJSON_Delete(provj);
	state_free(st);
	plan_free(p);
	return ret;
}

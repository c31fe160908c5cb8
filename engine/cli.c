#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "canon.h"
#include "cmds.h"
#include "gitinfo.h"
#include "http.h"
#include "plan.h"
#include "run.h"
#include "state.h"
#include "util.h"

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_LOCKED = 3, EXIT_CHANGES = 4 };

/* The one piece of process-wide mutable state besides curl's: a signal
 * handler can only talk through a sig_atomic_t. */
static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static const char usage_text[] =
	"usage: mmigrate [options] <command> [args]\n"
	"\n"
	"commands:\n"
	"  validate PLAN            check the plan file only: no network, no state written\n"
	"  plan PLAN                dry run: what apply would do now, step by step\n"
	"      --offline            no network at all\n"
	"      --detailed-exitcode  exit 4 when apply would do something\n"
	"      --rev REV            the plan as it is at git revision REV\n"
	"  apply PLAN               run the plan; resumes from the checkpoint\n"
	"      --allow-dirty        run a plan with uncommitted git changes (recorded)\n"
	"      --rev REV            the plan as it is at git revision REV\n"
	"  status PLAN              each step's state, outputs, time and plan revision\n"
	"  reset PLAN [STEP...]     forget all steps, or STEP and the steps using it\n"
	"  verify ARCHIVE.zip       check an export archive on its own\n"
	"      --max-errors N       errors shown (all are counted; default 50)\n"
	"  log PLAN                 the runs recorded in the journal\n"
	"  steps                    the step types and their keys\n"
	"  server PLAN SERVER exports|imports|uploads|jobs TYPE [JOB_ID]\n"
	"                           read-only listings from a plan's server (GET only)\n"
	"\n"
	"options:\n"
	"  --state-dir DIR          where state.json, journal.jsonl and artefacts live\n"
	"  --output text|json       json: one object per event, for CI\n"
	"  -q, --quiet              only errors\n"
	"  -v, --verbose            HTTP requests too (secrets redacted)\n"
	"  -h, --help               this text\n"
	"  --version                the version\n"
	"\n"
	"exit status: 0 ok, 1 a step failed (rerun apply to resume), 2 usage or invalid plan,\n"
	"3 another run holds the lock, 4 plan --detailed-exitcode with changes,\n"
	"130/143 interrupted by SIGINT/SIGTERM after saving the checkpoint\n";

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "mmigrate: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'mmigrate --help'.\n");
	return EXIT_USAGE;
}

/* Options that take a value; --opt=value and --opt value both work. */
static const char *const valued_opts[] = { "--state-dir", "--output", "--rev", "--max-errors", NULL };

static int takes_value(const char *name, size_t len)
{
	for (const char *const *o = valued_opts; *o; o++)
		if (strlen(*o) == len && !strncmp(*o, name, len))
			return 1;
	return 0;
}

static int set_option(struct cli_opts *o, const char *name, const char *val)
{
	int64_t n;

	if (!strcmp(name, "--state-dir"))
		o->state_dir = val;
	else if (!strcmp(name, "--output")) {
		if (strcmp(val, "text") && strcmp(val, "json"))
			return usage_error("--output takes 'text' or 'json', not '%s'", val);
		o->json = !strcmp(val, "json");
	} else if (!strcmp(name, "--rev"))
		o->rev = val;
	else if (!strcmp(name, "--max-errors")) {
		if (parse_i64(val, &n) < 0 || n < 0)
			return usage_error("--max-errors takes a whole number, not '%s'", val);
		o->max_errors = (int)n;
	} else if (!strcmp(name, "--offline"))
		o->offline = 1;
	else if (!strcmp(name, "--detailed-exitcode"))
		o->detailed = 1;
	else if (!strcmp(name, "--allow-dirty"))
		o->allow_dirty = 1;
	else if (!strcmp(name, "--quiet") || !strcmp(name, "-q"))
		o->quiet = 1;
	else if (!strcmp(name, "--verbose") || !strcmp(name, "-v"))
		o->verbose = 1;
	else if (!strcmp(name, "--help") || !strcmp(name, "-h"))
		o->help = 1;
	else if (!strcmp(name, "--version"))
		o->version = 1;
	else
		return usage_error("unknown option '%s'", name);
	return 0;
}

static int parse_args(int argc, char **argv, struct cli_opts *o)
{
	int only_args = 0;

	o->max_errors = 50;
	o->args = xcalloc((size_t)argc + 1, sizeof(char *));
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *eq;
		int ret;

		if (only_args || a[0] != '-' || !a[1]) {
			if (!o->cmd)
				o->cmd = a;
			else
				o->args[o->nargs++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			only_args = 1;
			continue;
		}
		eq = strchr(a, '=');
		if (eq && takes_value(a, (size_t)(eq - a))) {
			char name[64];

			snprintf(name, sizeof(name), "%.*s", (int)(eq - a), a);
			ret = set_option(o, name, eq + 1);
		} else if (takes_value(a, strlen(a))) {
			if (i + 1 >= argc)
				return usage_error("option '%s' needs a value", a);
			ret = set_option(o, a, argv[++i]);
		} else {
			ret = set_option(o, a, NULL);
		}
		if (ret)
			return ret;
	}
	return 0;
}

/* ---- shared plumbing for the plan commands ---- */

int cli_load_plan(const struct cli_opts *o, struct plan **plan, struct git_provenance *prov)
{
	struct diags d = DIAGS_INIT;
	struct mm_error err = MM_ERROR_INIT;
	char *text = NULL;
	size_t len = 0;
	int ret;

	memset(prov, 0, sizeof(*prov));
	if (o->rev) {
		if (gitinfo_read_at_rev(o->plan_path, o->rev, &text, &len, prov, &err) < 0) {
			fprintf(stderr, "mmigrate: %s\n", err.msg);
			return EXIT_USAGE;
		}
	} else if (gitinfo_provenance(o->plan_path, prov, &err) < 0 && err.code != MM_ENOTFOUND) {
		/* Provenance is a record, not a precondition: say why it is missing and go on. */
		fprintf(stderr, "mmigrate: warning: %s\n", err.msg);
		memset(prov, 0, sizeof(*prov));
	}
	ret = plan_load(o->plan_path, text, len, plan, &d);
	free(text);
	if (ret < 0) {
		diags_print(&d, stderr);
		if (d.n > 1)
			fprintf(stderr, "%zu errors in %s\n", d.n, o->plan_path);
		diags_release(&d);
		return EXIT_USAGE;
	}
	diags_release(&d);
	if (o->state_dir) {
		char cwd[4096];
		struct buf b = BUF_INIT;

		if (o->state_dir[0] != '/' && getcwd(cwd, sizeof(cwd)))
			buf_addf(&b, "%s/%s", cwd, o->state_dir);
		else
			buf_adds(&b, o->state_dir);
		free((*plan)->state_dir);
		(*plan)->state_dir = buf_detach(&b);
	}
	return EXIT_OK;
}

void cli_run_init(struct run *r, const struct cli_opts *o, struct plan *p, struct state *st)
{
	memset(r, 0, sizeof(*r));
	r->plan = p;
	r->state = st;
	r->offline = o->offline;
	r->json = o->json;
	r->quiet = o->quiet;
	r->verbose = o->verbose;
	r->stop = &stop_signal;
	r->out = stdout;
}

int cli_exit_for(int code)
{
	switch (code) {
	case 0: return EXIT_OK;
	case MM_ELOCKED: return EXIT_LOCKED;
	case MM_EINVAL: return EXIT_USAGE;
	case MM_EINTR: return stop_signal == SIGTERM ? 143 : 130;
	default: return EXIT_FAILED;
	}
}

int cli_interrupted(void)
{
	return stop_signal != 0;
}

/* ---- validate, plan, apply ---- */

static int cmd_validate(struct cli_opts *o)
{
	struct plan *p = NULL;
	struct git_provenance prov;
	int ret = cli_load_plan(o, &p, &prov);

	if (ret)
		return ret;
	if (!o->quiet)
		printf("%s: ok (%zu steps, state in %s)\n", o->plan_path, p->nsteps, p->state_dir);
	plan_free(p);
	return EXIT_OK;
}

static int cmd_plan(struct cli_opts *o)
{
	struct plan *p = NULL;
	struct state *st = NULL;
	struct git_provenance prov;
	struct mm_error err = MM_ERROR_INIT;
	struct run r;
	int ret, changes = 0, rc;

	if ((ret = cli_load_plan(o, &p, &prov)))
		return ret;
	if (state_open(p->state_dir, 0, &st, &err) < 0) {
		fprintf(stderr, "mmigrate: %s\n", err.msg);
		plan_free(p);
		return EXIT_FAILED;
	}
	cli_run_init(&r, o, p, st);
	r.dry_run = 1;
	rc = sched_plan(&r, &changes, &err);
	run_release(&r);
	if (rc < 0) {
		fprintf(stderr, "mmigrate: %s\n", err.msg);
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

static void print_resume_hint(const struct cli_opts *o, int code)
{
	if (code == MM_EINTR)
		fprintf(stderr, "mmigrate: interrupted by %s; the checkpoint is saved.\n",
			stop_signal == SIGTERM ? "SIGTERM" : "SIGINT");
	fprintf(stderr, "mmigrate: resume with: mmigrate apply %s%s%s\n", o->plan_path,
		o->state_dir ? " --state-dir " : "", o->state_dir ? o->state_dir : "");
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
		fprintf(stderr, "mmigrate: %s\n", err.msg);
		return EXIT_FAILED;
	}
	cli_run_init(&r, o, p, st);
	r.provenance = prov;
	rc = sched_apply(&r, &err);
	run_release(&r);
	end = cJSON_CreateObject();
	cJSON_AddStringToObject(end, "outcome", rc == 0 ? "success" : rc == MM_EINTR ? "interrupted" : "failed");
	cJSON_AddNumberToObject(end, "duration_ms", (double)(mono_ms() - t0));
	if (rc < 0)
		cJSON_AddStringToObject(end, "error", err.msg);
	{
		struct mm_error jerr = MM_ERROR_INIT;

		if (journal_append(st, NULL, "run-end", end, &jerr) < 0)
			fprintf(stderr, "mmigrate: warning: %s\n", jerr.msg);
	}
	if (rc == 0) {
		if (!o->quiet && !o->json)
			printf("apply complete: %zu steps done\n", p->nsteps);
		return EXIT_OK;
	}
	if (o->json)
		run_event(&r, NULL, rc == MM_EINTR ? "run-interrupted" : "run-failed", NULL, "%s", err.msg);
	if (rc != MM_EINTR)
		fprintf(stderr, "mmigrate: %s\n", err.msg);
	print_resume_hint(o, rc);
	return cli_exit_for(rc);
}

static int cmd_apply(struct cli_opts *o)
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
	if (state_open(p->state_dir, 1, &st, &err) < 0 || lock_acquire(p->state_dir, &lock_fd, &err) < 0) {
		fprintf(stderr, "mmigrate: %s\n", err.msg);
		ret = cli_exit_for(err.code);
		goto out;
	}
	/* Reload under the lock: a run that finished while we waited has written newer state. */
	state_free(st);
	if (state_open(p->state_dir, 1, &st, &err) < 0) {
		fprintf(stderr, "mmigrate: %s\n", err.msg);
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

/* ---- dispatch ---- */

struct command {
	const char *name;
	int needs_plan;
	int (*fn)(struct cli_opts *);
};

static const struct command commands[] = {
	{ "validate", 1, cmd_validate },
	{ "plan", 1, cmd_plan },
	{ "apply", 1, cmd_apply },
	{ "status", 1, cmd_status },
	{ "reset", 1, cmd_reset },
	{ "log", 1, cmd_log },
	{ "verify", 0, cmd_verify },
	{ "steps", 0, cmd_steps },
	{ "server", 1, cmd_server },
	{ NULL, 0, NULL },
};

int cli_main(int argc, char **argv)
{
	struct cli_opts o;
	int ret;

	memset(&o, 0, sizeof(o));
	if ((ret = parse_args(argc, argv, &o)))
		goto out;
	if (o.version) {
		printf("mmigrate %s\n", MM_VERSION);
		goto out;
	}
	if (o.help || !o.cmd) {
		fputs(usage_text, o.help ? stdout : stderr);
		ret = o.help ? EXIT_OK : EXIT_USAGE;
		goto out;
	}
	ret = -1;
	for (const struct command *c = commands; c->name; c++) {
		if (strcmp(c->name, o.cmd))
			continue;
		if (c->needs_plan) {
			if (o.nargs < 1) {
				ret = usage_error("'%s' needs a plan file", c->name);
				break;
			}
			o.plan_path = o.args[0];
		}
		install_signals();
		http_global_init();
		ret = c->fn(&o);
		http_global_cleanup();
		break;
	}
	if (ret < 0)
		ret = usage_error("unknown command '%s'", o.cmd);
out:
	free(o.args);
	return ret;
}

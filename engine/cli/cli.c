#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "bulkline.h"
#include "canon.h"
#include "cmds.h"
#include "steps.h"
#include "gitinfo.h"
#include "http.h"
#include "plan.h"
#include "run.h"
#include "state.h"
#include "util.h"

static const char usage_text[] =
	"usage: mmigrate [options] <command> [args]\n"
	"\n"
	"commands:\n"
	"  validate PLAN...         check plan files only: no network, no state written\n"
	"  plan PLAN...             dry run and preflight: what apply would do now, step by step\n"
	"      --offline            no network at all\n"
	"      --detailed-exitcode  exit 4 when apply would do something\n"
	"      --rev REV            the plan as it is at git revision REV\n"
	"  apply PLAN               run the plan; resumes from the checkpoint\n"
	"      --allow-dirty        run a plan with uncommitted git changes (recorded)\n"
	"      --rev REV            the plan as it is at git revision REV\n"
	"  status PLAN...           each step's state, outputs, attempts, time and plan revision\n"
	"  status DIR...            one row per plan under DIR (recursive): result, last run, lock\n"
	"  reset PLAN [STEP...]     forget all steps, or STEP and the steps using it\n"
	"  verify ARCHIVE.zip       check an export archive on its own\n"
	"      --max-errors N       errors shown (all are counted; default 50)\n"
	"      --target-version X.Y judge as that server release would (default: the newest rules)\n"
	"  log PLAN                 the runs recorded in the journal\n"
	"  steps                    the step types and their keys\n"
	"  server PLAN SERVER exports|imports|uploads|jobs TYPE [JOB_ID]\n"
	"                           read-only listings from a plan's server (GET only)\n"
	"  (PLAN... : plan files or directories of *.yaml; each is reported)\n"
	"\n"
	"options:\n"
	"  --state-dir DIR          where state.json, journal.jsonl and artefacts live\n"
	"  --output text|json       json: one object per event, for CI\n"
	"  -q, --quiet              only errors\n"
	"  -v, --verbose            HTTP requests too (secrets redacted)\n"
	"  -h, --help               this text; 'help COMMAND' or 'COMMAND --help': one command\n"
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
static const char *const valued_opts[] = { "--state-dir",  "--output",         "--rev",
					   "--max-errors", "--target-version", NULL };

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
	} else if (!strcmp(name, "--target-version")) {
		if (bulk_parse_version(val, &o->target_version) < 0)
			return usage_error("--target-version takes MAJOR.MINOR such as 9.11, not '%s'", val);
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

/* ---- per-command help: `mmigrate help CMD` and `mmigrate CMD --help` ---- */

struct cmd_help {
	const char *name;
	const char *synopsis; /* after "mmigrate " */
	const char *summary;
	const char *options; /* one "  --opt   what\n" line each, or NULL */
	const char *example; /* one command line or several, each ending in \n */
};

#define GLOBAL_OPTS_HINT "  (and the global options: mmigrate --help)\n"

static const struct cmd_help cmd_helps[] = {
	{ "validate", "validate PLAN",
	  "Check the plan file only: schema, references between steps, secrets written as\n"
	  "references. No network, no state written. Every problem is printed as\n"
	  "PLAN:LINE:COL: message; the exit status is then 2.",
	  "  --rev REV            the plan as it is at git revision REV\n"
	  "  -q, --quiet          print nothing when the plan is valid\n",
	  "mmigrate validate plans/acme.yaml\n" },
	{ "plan", "plan [--offline] [--detailed-exitcode] [--rev REV] PLAN",
	  "Dry run: for every step, what apply would do now (skip, resume at X, run, or\n"
	  "cannot predict and why). Only GET requests; none at all with --offline.",
	  "  --offline            no network at all: judge from the checkpoint alone\n"
	  "  --detailed-exitcode  exit 4 when apply would do something (drift)\n"
	  "  --rev REV            the plan as it is at git revision REV\n"
	  "  --state-dir DIR      the state directory to judge against\n"
	  "  --output text|json   json: one object per step, for CI\n",
	  "mmigrate plan --detailed-exitcode --state-dir /var/lib/mmigrate/acme plans/acme.yaml\n" },
	{ "apply", "apply [--allow-dirty] [--rev REV] PLAN",
	  "Run the plan. Finished, unchanged steps are skipped; an interrupted step resumes\n"
	  "from its checkpoint. Safe to run again at any time; one run per plan at a time\n"
	  "(exit 3 while another holds the lock).",
	  "  --allow-dirty        run a plan file with uncommitted git changes (recorded)\n"
	  "  --rev REV            the plan as it is at git revision REV\n"
	  "  --state-dir DIR      where state.json, journal.jsonl and artefacts live\n"
	  "  --output text|json   json: one object per event, for CI\n"
	  "  -q, --quiet          only errors\n"
	  "  -v, --verbose        HTTP requests too (secrets redacted)\n",
	  "mmigrate apply --rev v1.2 --state-dir /var/lib/mmigrate/acme plans/acme.yaml\n" },
	{ "status", "status PLAN... | DIR...",
	  "The checkpoint: each step's state, outputs, time and the plan revision it ran\n"
	  "under, with drift when the step changed since that revision, and died when it\n"
	  "says running but the run that started it is gone (killed; apply resumes it).\n"
	  "\n"
	  "With a directory among the arguments, a fleet summary instead: one row per plan\n"
	  "(*.yaml, *.yml under DIR, recursively, in path order) with its result (done,\n"
	  "pending, running, never run, failed, stale, unreadable, invalid), its last run and\n"
	  "revision, its steps done and the pid holding its lock; under a row, each failed\n"
	  "step's error, a run that died while running (stale: the lock's pid is gone), or\n"
	  "why the plan does not load. Exit status: 0 when every plan is done, pending,\n"
	  "running or never run; 1 when one failed, is stale or has unreadable state;\n"
	  "2 when one does not load.",
	  "  --state-dir DIR      the state directory to read (one plan only)\n"
	  "  --output text|json   json: a status-report event per plan (for a DIR, a\n"
	  "                       status-plan event per plan), then a summary\n",
	  "mmigrate status --output json plans/acme.yaml\n"
	  "mmigrate status plans/\n" },
	{ "reset", "reset PLAN [STEP...]",
	  "Forget the checkpoint of every step, or of each STEP and the steps that use its\n"
	  "outputs, so that the next apply runs them again. Nothing on a server is touched.",
	  "  --state-dir DIR      the state directory to change\n"
	  "  -q, --quiet          do not list the steps forgotten\n",
	  "mmigrate reset plans/acme.yaml download\n" },
	{ "log", "log PLAN",
	  "The runs recorded in the journal: start, outcome, duration, steps done and\n"
	  "failed, and the git revision of the plan each ran.",
	  "  --state-dir DIR      the state directory to read\n"
	  "  --output text|json   json: a log-report event with the runs, then a summary\n",
	  "mmigrate log plans/acme.yaml\n" },
	{ "verify", "verify [--max-errors N] [--target-version X.Y] ARCHIVE.zip",
	  "Check an export archive on its own: every entry's CRC, the JSONL line by line as\n"
	  "the server's import validators judge it, and attachment paths. Exit 1 when the\n"
	  "archive has errors.",
	  "  --max-errors N       errors shown (all are counted; default 50)\n"
	  "  --target-version X.Y judge as that server release would (default: the newest rules)\n"
	  "  --output text|json   json: a verify-report event, then a summary\n",
	  "mmigrate verify --target-version 9.11 archive.zip\n" },
	{ "steps", "steps", "The step types a plan may use, with their keys, types, defaults and outputs.",
	  NULL, "mmigrate steps\n" },
	{ "server", "server PLAN SERVER exports|imports|uploads|jobs TYPE [JOB_ID]",
	  "The runbook's read commands against one of the plan's servers, with the plan's\n"
	  "credentials: its export files, its import files, the incomplete import uploads,\n"
	  "the jobs of TYPE (export, import, extract, or the server's name such as\n"
	  "export_process), or one job by id. GET requests only (plus the login and logout\n"
	  "a password server needs); the state is neither read nor written.",
	  "  --output text|json   json: stdout is one JSON value (events go to stderr)\n"
	  "  -v, --verbose        HTTP requests too (secrets redacted)\n",
	  "mmigrate server plans/acme.yaml source exports\n"
	  "mmigrate server plans/acme.yaml target jobs import\n"
	  "mmigrate server plans/acme.yaml target jobs import 35uy6cwrqfnhdx3genrhqqznxc\n" },
	{ "help", "help [COMMAND]",
	  "Without COMMAND, the list of commands and global options (as --help). With\n"
	  "COMMAND, its synopsis, options and an example (as COMMAND --help).",
	  NULL, "mmigrate help apply\n" },
	{ NULL, NULL, NULL, NULL, NULL },
};

static const struct cmd_help *cmd_help_find(const char *name)
{
	for (const struct cmd_help *h = cmd_helps; h->name; h++)
		if (!strcmp(h->name, name))
			return h;
	return NULL;
}

static void cmd_help_print(const struct cmd_help *h, FILE *f)
{
	fprintf(f, "usage: mmigrate [options] %s\n\n%s\n", h->synopsis, h->summary);
	fprintf(f, "\noptions:\n%s" GLOBAL_OPTS_HINT, h->options ? h->options : "");
	fprintf(f, "\nexample:\n");
	for (const char *l = h->example, *nl; *l; l = nl + 1) {
		nl = strchr(l, '\n');
		fprintf(f, "  %.*s\n", (int)(nl - l), l);
	}
}

/* Edit distance, for "did you mean"; names are short. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[32], prev, tmp;

	if (lb >= sizeof(row) / sizeof(row[0]) || la >= 32)
		return (size_t)-1;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t best = prev + (a[i - 1] != b[j - 1]);

			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			tmp = row[j];
			row[j] = best;
			prev = tmp;
		}
	}
	return row[lb];
}

/* help CMD, CMD --help, --help alone: an exit status. */
static int show_help(const char *name)
{
	const struct cmd_help *h, *best = NULL;
	size_t d, bestd = 3;

	if (!name) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if ((h = cmd_help_find(name))) {
		cmd_help_print(h, stdout);
		return EXIT_OK;
	}
	for (h = cmd_helps; h->name; h++)
		if ((d = edit_distance(name, h->name)) < bestd) {
			bestd = d;
			best = h;
		}
	for (h = cmd_helps; !best && *name && h->name; h++)
		if (!strncmp(name, h->name, strlen(name)))
			best = h;
	fprintf(stderr, "mmigrate: no command '%s'", name);
	if (best)
		fprintf(stderr, "; did you mean '%s'?", best->name);
	fprintf(stderr, "\nTry 'mmigrate --help'.\n");
	return EXIT_USAGE;
}

/* ---- dispatch ---- */

struct command {
	const char *name;
	int needs_plan;
	int max_args; /* positional arguments taken; -1: any number (several plans, or steps) */
	int (*fn)(struct cli_opts *);
	/* --output json: 1, a stream of events closed by "summary"; 0, one JSON document (a report). */
	int events;
};

static const struct command commands[] = {
	{ "validate", 1, -1, cmd_validate, 1 }, { "plan", 1, -1, cmd_plan, 1 },
	{ "apply", 1, 1, cmd_apply, 1 },        { "status", 1, -1, cmd_status, 1 },
	{ "reset", 1, -1, cmd_reset, 0 },       { "log", 1, 1, cmd_log, 1 },
	{ "verify", 0, -1, cmd_verify, 1 },     { "steps", 0, 0, cmd_steps, 0 },
	{ "server", 1, -1, cmd_server, 0 },     { NULL, 0, 0, NULL, 0 },
};

/*
 * MMIGRATE_TEST_FAULT fails or ends the Nth seam call; MMIGRATE_TEST_FAULT_COUNT
 * names a file that receives the number of seam calls the command made, so the
 * crash sweep knows how many points there are to try.
 */
static int choose_sys(struct cli_opts *o)
{
	const char *spec = getenv("MMIGRATE_TEST_FAULT"), *count = getenv("MMIGRATE_TEST_FAULT_COUNT");

	o->sys = &sys_posix;
	if ((!spec || !*spec) && count && *count) {
		sys_fault_init(&o->fault, &sys_posix, 0, 0, -1); /* counts, never fails */
		o->sys = &o->fault.ops;
	}
	if (!spec || !*spec)
		return 0;
	if (sys_fault_parse(&o->fault, &sys_posix, spec) < 0)
		return usage_error("MMIGRATE_TEST_FAULT '%s' is not N:ERRNO, N:ERRNO+ or N:exit", spec);
	o->sys = &o->fault.ops;
	return 0;
}

static void report_seam_calls(const struct cli_opts *o)
{
	const char *path = getenv("MMIGRATE_TEST_FAULT_COUNT");
	FILE *f;

	if (!path || !*path || o->sys != &o->fault.ops)
		return;
	f = fopen(path, "w");
	if (f) {
		fprintf(f, "%ld\n", o->fault.calls);
		fclose(f);
	}
}

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
	if (!o.cmd && !o.help) {
		fputs(usage_text, stderr);
		ret = EXIT_USAGE;
		goto out;
	}
	if (o.help || !strcmp(o.cmd, "help")) {
		const char *topic = NULL; /* --help, help: the global text */

		if (o.cmd && strcmp(o.cmd, "help"))
			topic = o.cmd; /* CMD --help */
		else if (o.cmd && o.nargs)
			topic = o.args[0]; /* help CMD */
		else if (o.cmd && o.help)
			topic = "help"; /* help --help */
		ret = show_help(topic);
		goto out;
	}
	if ((ret = choose_sys(&o)))
		goto out;
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
		/* No argument is ever silently ignored. */
		if (c->max_args >= 0 && o.nargs > c->max_args) {
			ret = usage_error(c->max_args ? "'%s' takes one plan; run it once per plan"
						      : "'%s' takes no arguments",
					  c->name);
			break;
		}
		cli_install_signals();
		http_global_init();
		if (o.json && c->events)
			o.summary = cJSON_CreateObject();
		ret = c->fn(&o);
		http_global_cleanup();
		if (o.summary) {
			/* The last line of every --output json command: what ran and how it ended. */
			cJSON_AddStringToObject(o.summary, "command", c->name);
			cJSON_AddNumberToObject(o.summary, "exit_code", ret);
			cli_json_event("summary", o.summary, "%s exited %d", c->name, ret);
			o.summary = NULL;
		}
		break;
	}
	if (ret < 0)
		ret = usage_error("unknown command '%s'", o.cmd);
out:
	report_seam_calls(&o);
	free(o.args);
	return ret;
}

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
	"  reset PLAN [STEP...]     forget all steps, or STEP and the steps using it\n"
	"  verify ARCHIVE.zip       check an export archive on its own\n"
	"      --max-errors N       errors shown (all are counted; default 50)\n"
	"      --target-version X.Y judge as that server release would (default: the newest rules)\n"
	"  log PLAN                 the runs recorded in the journal\n"
	"  steps                    the step types and their keys\n"
	"  (PLAN... : plan files or directories of *.yaml; each is reported)\n"
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
static const char *const valued_opts[] = { "--state-dir", "--output", "--rev", "--max-errors",
					    "--target-version", NULL };

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

/* ---- dispatch ---- */

struct command {
	const char *name;
	int needs_plan;
	int max_args; /* positional arguments taken; -1: any number (several plans, or steps) */
	int (*fn)(struct cli_opts *);
};

static const struct command commands[] = {
	{ "validate", 1, -1, cmd_validate },
	{ "plan", 1, -1, cmd_plan },
	{ "apply", 1, 1, cmd_apply },
	{ "status", 1, -1, cmd_status },
	{ "reset", 1, -1, cmd_reset },
	{ "log", 1, 1, cmd_log },
	{ "verify", 0, -1, cmd_verify },
	{ "steps", 0, 0, cmd_steps },
	{ NULL, 0, 0, NULL },
};

static int choose_sys(struct cli_opts *o)
{
	const char *spec = getenv("MMIGRATE_TEST_FAULT");

	o->sys = &sys_posix;
	if (!spec || !*spec)
		return 0;
	if (sys_fault_parse(&o->fault, &sys_posix, spec) < 0)
		return usage_error("MMIGRATE_TEST_FAULT '%s' is not N:ERRNO, N:ERRNO+ or N:exit", spec);
	o->sys = &o->fault.ops;
	return 0;
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
	if (o.help || !o.cmd) {
		fputs(usage_text, o.help ? stdout : stderr);
		ret = o.help ? EXIT_OK : EXIT_USAGE;
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
						      : "'%s' takes no arguments", c->name);
			break;
		}
		cli_install_signals();
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

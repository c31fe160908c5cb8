/*
 * cmds: the command implementations behind cli.c's dispatch table, and the
 * plumbing they share (common.c). Each cmd_* returns an exit status.
 */
#ifndef MM_CMDS_H
#define MM_CMDS_H

#include <signal.h>

#include "gitinfo.h"
#include "plan.h"
#include "run.h"
#include "sys.h"

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_LOCKED = 3, EXIT_CHANGES = 4 };

struct cli_opts {
	const char *cmd;
	const char **args; /* positional arguments after the command */
	int nargs;
	const char *plan_path;
	const char *state_dir;
	const char *rev;
	int json, quiet, verbose, offline, detailed, allow_dirty, help, version;
	int max_errors;
	int target_version; /* verify --target-version X.Y as major * 100 + minor; 0: newest */
	/* The OS seam for state and artefacts: sys_posix, or the fault injector that
	 * MMIGRATE_TEST_FAULT asks for (tests' crash sweep; see docs/architecture.md). */
	const struct sys_ops *sys;
	struct sys_fault fault;
	cJSON *summary; /* --output json: what the command adds to its final "summary" event */
};

/* Loads the plan (from the work tree, or at o->rev) and its provenance; prints diagnostics.
 * Returns an exit status; on 0 the caller frees *plan with plan_free. */
int cli_load_plan(const struct cli_opts *, struct plan **plan, struct git_provenance *prov);
/* As cli_load_plan for the plan at path, printing nothing but a provenance warning:
 * 0 loaded (caller frees *plan); -1 the revision is unreadable (err says why); -2 the
 * plan is invalid (d holds the problems). The caller releases d either way. */
int cli_load_plan_quiet(const struct cli_opts *, const char *path, struct plan **plan,
			struct git_provenance *prov, struct diags *d, struct mm_error *err);
/* Appends the plan files (*.yaml, *.yml; not hidden) of dir to *list in path order, and those
 * of its subdirectories when recursive (hidden ones and symbolic links skipped). Each entry is
 * the caller's to free. Returns -1, having said why on stderr, when dir is unreadable or has none. */
int cli_plans_in_dir(const char *dir, int recursive, char ***list, size_t *n);
void cli_run_init(struct run *, const struct cli_opts *, struct plan *, struct state *);
/*
 * Runs fn once per plan named by the arguments (files, or directories whose
 * *.yaml / *.yml files are taken in name order), with o->plan_path set; every
 * argument is used. header: print "==> PLAN <==" before each when there are
 * several. Returns the worst exit status (usage 2 > failed 1 > changes 4 > ok).
 */
int cli_each_plan(struct cli_opts *, int (*fn)(struct cli_opts *), int header);
/* validate: refuses artefact paths inside the plan's git work tree that git does not ignore.
 * Prints each problem; returns 0 or -1. */
int cli_check_artefacts(const struct cli_opts *, const struct plan *);
int cli_exit_for(int mm_code);
int cli_interrupted(void);
/* The signal that asked us to stop (SIGINT, SIGTERM), or 0; the flag itself for polling. */
int cli_stop_signal(void);
const volatile sig_atomic_t *cli_stop_flag(void);
/* SIGINT/SIGTERM set the stop flag; SIGPIPE is ignored (a closed socket is an error, not a death). */
void cli_install_signals(void);

/* o[key] when it is a string, else NULL; owned by o. */
const char *cli_jstr(const cJSON *o, const char *key);
/* counts[key] += 1, from 0: steps or plans counted by status for a summary. */
void cli_json_count(cJSON *counts, const char *key);

/* --output json: prints {"time","event","message", fields...} as one line on stdout; takes fields. */
void cli_json_event(const char *event, cJSON *fields, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- what status reads (cmd_state.c), shared by the one-plan view and the fleet summary ---- */

/* One run in the journal, from its run-start to its run-end. */
struct run_summary {
	char run[40], start[32], end[32], outcome[24], rev[128];
	double ms;
	int steps_done, steps_failed;
};

/* The runs recorded in state_dir/journal.jsonl, oldest first: *runs is the caller's to
 * free (NULL and *n 0 when none). Returns 0, or -1 when there is no journal. */
int status_journal_runs(const char *state_dir, struct run_summary **runs, size_t *n);
/*
 * The plan's steps in plan order as status reports them: a copy of each step's record
 * with "id", "status" ("pending" when it never ran) and, when they apply, "drift" (the
 * definition changed since the revision it ran under) and "stale" (its inputs changed);
 * a running step also has "run_alive" (whether the lock's pid lives) and "run_pid".
 * The caller frees the array (cJSON_Delete).
 */
cJSON *status_steps(const struct plan *p, const struct state *st, const struct git_provenance *prov);
/* status DIR...: one row per plan under the arguments (files, directories recursively). */
int status_fleet(struct cli_opts *);

int cmd_validate(struct cli_opts *);
int cmd_plan(struct cli_opts *);
int cmd_apply(struct cli_opts *);

int cmd_status(struct cli_opts *);
int cmd_reset(struct cli_opts *);
int cmd_log(struct cli_opts *);
int cmd_verify(struct cli_opts *);
int cmd_steps(struct cli_opts *);
int cmd_server(struct cli_opts *);

#endif

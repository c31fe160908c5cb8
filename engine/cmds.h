/*
 * cmds: the command implementations behind cli.c's dispatch table, and the
 * plumbing they share. Each cmd_* returns an exit status.
 */
#ifndef MM_CMDS_H
#define MM_CMDS_H

#include "gitinfo.h"
#include "plan.h"
#include "run.h"

struct cli_opts {
	const char *cmd;
	const char **args; /* positional arguments after the command */
	int nargs;
	const char *plan_path;
	const char *state_dir;
	const char *rev;
	int json, quiet, verbose, offline, detailed, allow_dirty, help, version;
	int max_errors;
};

/* Loads the plan (from the work tree, or at o->rev) and its provenance; prints diagnostics.
 * Returns an exit status; on 0 the caller frees *plan with plan_free. */
int cli_load_plan(const struct cli_opts *, struct plan **plan, struct git_provenance *prov);
void cli_run_init(struct run *, const struct cli_opts *, struct plan *, struct state *);
int cli_exit_for(int mm_code);
int cli_interrupted(void);

int cmd_status(struct cli_opts *);
int cmd_reset(struct cli_opts *);
int cmd_log(struct cli_opts *);
int cmd_verify(struct cli_opts *);
int cmd_steps(struct cli_opts *);
int cmd_server(struct cli_opts *);

#endif

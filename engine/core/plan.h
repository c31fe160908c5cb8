/*
 * plan: a YAML plan file → a checked plan whose every node keeps its line
 * and column.
 *
 *   struct diags d = DIAGS_INIT;
 *   plan_load(path, NULL, 0, step_types_all(), &plan, &d)  → 0, or MM_EINVAL with every problem in d
 *   diags_print(&d, stderr); diags_release(&d);
 *   ... plan->steps[i] ...
 *   plan_free(plan);
 *
 * Loading reads the file (or the given text, for `--rev`), parses it with
 * libyaml into a node tree, and checks it against the schema: top-level
 * keys, servers, each step's parameter table, references between steps and
 * literal secrets. Nothing is resolved: ${env:...} and friends are expanded
 * later by interp.c, when a step is about to run. No network, no state.
 */
#ifndef MM_PLAN_H
#define MM_PLAN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "diag.h"
#include "error.h"
#include "step.h"
#include "yamltree.h"

struct plan_server {
	char *name;
	const struct pnode *node;
	const char *url, *socket, *ca_file; /* as written (url/socket not interpolated) */
	int insecure;
	const struct pnode *token, *username, *password, *mfa, *mfa_secret; /* NULL when absent */
	int64_t retries;                                                    /* -1: plan default */
};

struct plan_step {
	char *id;
	const struct step_type *type;
	const char *server; /* NULL when the step uses none */
	size_t index;
	const struct pnode *node; /* the step's map */
	int always;      /* `always: true`: runs even after an earlier step failed or a stop signal */
	cJSON *resolved; /* parameters after interpolation; set by sched */
	cJSON *inputs;   /* "steps.U.K" → identity of what it used; set by sched */
	struct plan *plan;
};

struct plan {
	const struct step_type *const *types; /* the registry the plan was checked against */
	char *path;                           /* as given, for messages */
	char *dir;                            /* absolute directory of the plan file */
	char *name;
	char *state_dir; /* absolute */
	int64_t retries;
	/* defaults: the network floor for every server; 0 = the built-in value (http.h) */
	int64_t connect_timeout_s, min_speed_bps, min_speed_window_s, transfer_deadline_s;
	struct plan_server *servers;
	size_t nservers;
	struct plan_step *steps;
	size_t nsteps;
	struct pnode *root;
};

/*
 * text: the plan's bytes, or NULL to read path; types: the step registry
 * (NULL-terminated, steps/steps.h), not owned. Returns 0, MM_EINVAL with
 * diagnostics, or MM_ERR when the file cannot be read (message in the diags too).
 * On success the caller frees *out with plan_free.
 */
int plan_load(const char *path, const char *text, size_t len, const struct step_type *const *types,
	      struct plan **out, struct diags *d);
void plan_free(struct plan *);

const struct plan_step *plan_step_find(const struct plan *, const char *id);
const struct plan_server *plan_server_find(const struct plan *, const char *name);
#endif

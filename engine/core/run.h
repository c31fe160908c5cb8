/*
 * run: one invocation of apply or plan over a loaded plan and its state.
 *
 *   struct run r = { .plan = p, .state = st, .stop = &flag, ... };
 *   sched_apply(&r, err)          → 0, MM_ERR (a step failed), MM_EINTR (stopped safely)
 *   sched_plan(&r, &changes, err) → 0, MM_ERR (a step could not be evaluated), MM_EINTR
 *   run_release(&r)               closes server connections, wipes tokens
 *
 * The run owns the per-server connections (session.c): a server is logged
 * into on first use, so a resumed run re-authenticates even when its auth
 * step is skipped.
 */
#ifndef MM_RUN_H
#define MM_RUN_H

#include <signal.h>
#include <stdio.h>

#include "buf.h"
#include "error.h"
#include "plan.h"
#include "state.h"

struct server_conn;
struct run_term;

struct run {
	struct plan *plan;
	struct state *state;
	int dry_run;
	int offline;
	int json;    /* --output json: one object per event on stdout */
	int quiet;
	int verbose;
	const volatile sig_atomic_t *stop; /* signal number once one arrived */
	struct server_conn **conns;       /* one per plan server, created lazily */
	cJSON *provenance;                /* git provenance of the plan, recorded per step */
	int *would_run;                   /* dry run: steps that will (re)run, so their outputs are unknown */
	FILE *out;
	struct run_term *term;            /* live progress lines (meter.h); NULL: plain output only */
};

int sched_apply(struct run *, struct mm_error *);
int sched_plan(struct run *, int *changes, struct mm_error *);
void run_release(struct run *);

/* Resolves a step's parameters into st->resolved (canonical key order) and its fingerprint.
 * For a dry run, *unknown names the step whose outputs are not known yet. */
int sched_resolve(struct run *, struct plan_step *, char fp[65], char **unknown, struct mm_error *);

/* Events for the user: text on stderr/stdout, or one JSON object per line with --output json. */
void run_event(const struct run *, const char *step, const char *event, cJSON *fields, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* session.c */
struct http_client *run_client(struct run *, const char *server, const char *step_id, struct mm_error *);
void run_close_conns(struct run *);
/* Replaces every secret any of the run's server clients knows (tokens, passwords, MFA codes) in b. */
void run_scrub(const struct run *, struct buf *b);

/* Steps whose parameters reference step id, directly or through other steps (for reset). */
int sched_dependents(const struct plan *, const char *id, int *mark);

#endif

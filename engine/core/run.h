/*
 * run: one invocation of apply or plan over a loaded plan and its state.
 *
 *   struct run r = { .plan = p, .state = st, .stop = &flag, ... };
 *   sched_apply(&r, err)          → 0, MM_ERR (preflight or a step failed), MM_EINTR (stopped
 *                                   safely); after either, `always` steps still ran
 *   sched_plan(&r, &changes, err) → 0, MM_ERR (a step could not be evaluated or the
 *                                   preflight found problems), MM_EINTR
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
	int json; /* --output json: one object per event on stdout */
	int quiet;
	int verbose;
	const volatile sig_atomic_t *stop;       /* signal number once one arrived */
	const volatile sig_atomic_t *stop_count; /* signals received so far, or NULL */
	int winding_down;                        /* after a failure or a stop: only `always` steps run */
	sig_atomic_t stops_seen;                 /* stop_count when winding down began */
	struct server_conn **conns;              /* one per plan server, created lazily */
	cJSON *provenance;                       /* git provenance of the plan, recorded per step */
	int *would_run; /* dry run: steps that will (re)run, so their outputs are unknown */
	FILE *out;
	struct run_term *term; /* live progress lines (meter.h); NULL: plain output only */
	/* What the failed step asks the user to do (step_set_remedy); REMEDY_APPLY by default. */
	int remedy;
	char remedy_step[128];
};

int sched_apply(struct run *, struct mm_error *);
/* 1 when the run should stop at the next safe point (steps, transfers, waits). While
 * `always` steps wind a failed or stopped run down, only a further signal counts. */
int run_should_stop(const struct run *);
/*
 * Preflight (preflight.c): before the first mutating request of apply, and in plan.
 * Resolves every ${env:}/${file:} a pending step needs, logs into every server a
 * pending step uses (GETs only besides the login), checks the state directory
 * (writable, free space against known sizes) and a target's MaxFileSize against
 * the archive to upload, taking earlier config steps into account. Every problem
 * is reported at once: one run_event per problem, a summary in err.
 */
int sched_preflight(struct run *, const int *pending, struct mm_error *); /* pending[i]: step i would run */
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

/* status: why done step id would re-run because an input it used changed since
 * ("input steps.download.path changed: sha256 ab12… → cd34…"), or NULL. Caller frees. */
char *sched_stale_inputs(const struct plan *, const struct state *, const char *id);

/* Steps whose parameters reference step id, directly or through other steps (for reset). */
int sched_dependents(const struct plan *, const char *id, int *mark);

#endif

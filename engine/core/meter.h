/*
 * meter: progress of a step as people and programs want it.
 *
 *   struct step_meter m;
 *   step_meter_start(ctx, &m, "download", have, total);   total < 0: unknown
 *   ... step_meter_update(ctx, &m, have) as bytes move ...
 *   step_meter_finish(ctx, &m);
 *   step_job_progress(ctx, &jp) for a server job being waited on
 *
 * On a terminal: one live line per running step, redrawn at most 4 times a
 * second, with a bar, human units, rate and ETA (or, for a job, its state,
 * elapsed time and time since the server last reported progress). Not on a
 * terminal (CI): a plain line every 10 s. With --output json: a "progress"
 * event with typed fields at least every 2 s while bytes move. --quiet:
 * nothing. No colour is used, so NO_COLOR holds trivially.
 */
#ifndef MM_METER_H
#define MM_METER_H

#include <stdint.h>
#include <stdio.h>

#include "step.h"

struct step_meter {
	const char *what;    /* "download", "upload", "hash" */
	int64_t total, done; /* bytes; total < 0: unknown */
	int64_t start_done;  /* done when the meter started (a resume) */
	int64_t t0, last_draw, last_emit;
	int64_t rate_t, rate_bytes;
	double rate; /* bytes/s, smoothed */
};

void step_meter_start(const struct step_ctx *, struct step_meter *, const char *what, int64_t done,
		      int64_t total);
void step_meter_update(const struct step_ctx *, struct step_meter *, int64_t done);
/* Says the final figures once (not in quiet mode) and clears the live line. */
void step_meter_finish(const struct step_ctx *, struct step_meter *);

struct job_progress {
	const char *kind, *job_id, *status; /* "export", the id, the server's state */
	int percent;                        /* -1: the server gives none */
	int64_t started_ms, changed_ms;     /* wall clock: wait start, last observed change */
	int64_t last_emit;                  /* the caller's: zero it once */
};

/* Called on every poll; draws or emits when due. */
void step_job_progress(const struct step_ctx *, struct job_progress *);

#endif

/*
 * event: the run's output and its stop flag (declared in run.h: run_event,
 * run_should_stop, run_scrub) and the terminal state behind live lines.
 */
#ifndef MM_EVENT_H
#define MM_EVENT_H

#include <stdio.h>

#include "run.h"

/* The run's view of its terminal; owned by the run (run_term_new/run_term_free). */
struct run_term {
	int tty;  /* r->out is a terminal and text output is on */
	int live; /* a live line is on screen and must be cleared before other output */
};

struct run_term *run_term_new(int fd, int json, int quiet);
void run_term_free(struct run_term *);
/* Clears a live line so that an ordinary line can be printed. */
void run_term_clear(struct run_term *, FILE *out);

#endif

/*
 * retry: the one retry policy of every network operation — JSON calls,
 * download attempts, upload session creation and chunks (docs/http.md).
 *
 *   struct retry_policy p;   retry_policy_init(&p, retries);   per operation kind
 *   struct retry_state rs = RETRY_STATE_INIT;
 *   for (;;) {
 *           attempt ...
 *           if (it moved forward) retry_progress(&rs);
 *           if ((ms = retry_next(&p, &rs, err->retry_after_s)) < 0) give up;
 *           sleep ms (polling the stop flag)
 *   }
 *
 * A failure counts against `retries` only when nothing moved forward since
 * the last one; the delay is full jitter over a ceiling that doubles per
 * failure up to a cap, unless the server sent Retry-After (honoured up to a
 * cap); and no new attempt starts once the budget, counted from the first
 * failure in a row, is spent. Jitter comes from a generator seeded per
 * policy from getrandom(2): processes that start together do not retry in
 * step (rand() without srand would give them all the same "jitter").
 */
#ifndef MM_RETRY_H
#define MM_RETRY_H

#include <stdint.h>

struct retry_policy {
	int retries;            /* failures in a row without progress before giving up */
	long base_ms, cap_ms;   /* backoff ceiling: base, doubling per failure, at most cap */
	long retry_after_cap_s; /* largest Retry-After honoured */
	long budget_s;          /* no new attempt after this long failing in a row; 0: no limit */
	uint64_t rng;           /* jitter state */
};

struct retry_state {
	int fails;        /* failures in a row without progress */
	int64_t since_ms; /* monotonic time of the first of them */
};

#define RETRY_STATE_INIT \
	{                \
		0, 0     \
	}

/* Defaults: base 500 ms, cap 30 s, Retry-After up to 120 s, budget 600 s. */
void retry_policy_init(struct retry_policy *, int retries);
/* Delay before retry number `fails` (1-based): Retry-After when > 0, else jitter. */
long retry_delay_ms(struct retry_policy *, int fails, long retry_after_s);
/* After a failed attempt: the delay before the next one, or -1 when the count or budget is spent. */
long retry_next(struct retry_policy *, struct retry_state *, long retry_after_s);
/* An attempt moved forward (bytes stored, a session found): failures count afresh. */
void retry_progress(struct retry_state *);

#endif

#include "retry.h"

#include <sys/random.h>
#include <unistd.h>

#include "util.h"

static void rng_seed(struct retry_policy *p)
{
	uint64_t seed = 0;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = (uint64_t)mono_ms() ^ ((uint64_t)now_ms() << 20) ^ ((uint64_t)getpid() << 40) ^
		       (uint64_t)(uintptr_t)p;
	p->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
}

/* xorshift64*: plenty for jitter. */
static uint64_t rng_below(struct retry_policy *p, uint64_t n)
{
	p->rng ^= p->rng >> 12;
	p->rng ^= p->rng << 25;
	p->rng ^= p->rng >> 27;
	return n ? ((p->rng * 0x2545F4914F6CDD1DULL) >> 11) % n : 0;
}

void retry_policy_init(struct retry_policy *p, int retries)
{
	p->retries = retries < 0 ? 0 : retries;
	p->base_ms = 500;
	p->cap_ms = 30000;
	p->retry_after_cap_s = 120;
	p->budget_s = 600;
	rng_seed(p);
}

long retry_delay_ms(struct retry_policy *p, int fails, long retry_after_s)
{
	long ceiling = p->base_ms;

	if (retry_after_s > 0)
		return (retry_after_s < p->retry_after_cap_s ? retry_after_s : p->retry_after_cap_s) * 1000;
	for (int i = 1; i < fails && ceiling < p->cap_ms; i++)
		ceiling *= 2;
	if (ceiling > p->cap_ms)
		ceiling = p->cap_ms;
	return (long)rng_below(p, (uint64_t)ceiling + 1);
}

long retry_next(struct retry_policy *p, struct retry_state *s, long retry_after_s)
{
	long delay;

	if (s->fails++ == 0)
		s->since_ms = mono_ms();
	if (s->fails > p->retries)
		return -1;
	delay = retry_delay_ms(p, s->fails, retry_after_s);
	if (p->budget_s > 0 && mono_ms() - s->since_ms + delay > (int64_t)p->budget_s * 1000)
		return -1;
	return delay;
}

void retry_progress(struct retry_state *s)
{
	s->fails = 0;
	s->since_ms = 0;
}

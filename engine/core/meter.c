#include "meter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "event.h"
#include "human.h"
#include "termsafe.h"
#include "run.h"
#include "util.h"

#define DRAW_MS 250    /* terminal redraws */
#define JSON_MS 2000   /* machine events while bytes move */
#define PLAIN_MS 10000 /* plain lines when not on a terminal */
#define BAR_WIDTH 20

static void draw_live(const struct step_ctx *ctx, const char *text)
{
	struct run *r = ctx->run;
	struct buf safe = BUF_INIT;

	/* Job states and ids come from the server: escaped like every other line. */
	term_escape(&safe, text, strlen(text));
	fprintf(r->out, "\r\033[K%-14s %s", ctx->step->id, buf_cstr(&safe));
	fflush(r->out);
	r->term->live = 1;
	buf_release(&safe);
}

/* "[######......]" for done/total. */
static void bar(int64_t done, int64_t total, char *out)
{
	int fill = total > 0 ? (int)(done * BAR_WIDTH / total) : 0;

	out[0] = '[';
	for (int i = 0; i < BAR_WIDTH; i++)
		out[1 + i] = i < fill ? '#' : '.';
	out[BAR_WIDTH + 1] = ']';
	out[BAR_WIDTH + 2] = '\0';
}

static int64_t eta_s(const struct step_meter *m)
{
	if (m->total < 0 || m->rate < 1)
		return -1;
	return (int64_t)((double)(m->total - m->done) / m->rate);
}

static void sample_rate(struct step_meter *m, int64_t now)
{
	int64_t dt = now - m->rate_t;

	if (dt < 500)
		return;
	double inst = (double)(m->done - m->rate_bytes) * 1000.0 / (double)dt;

	/* Smoothed over a few seconds: a single stalled second should not make the ETA jump. */
	m->rate = m->rate > 0 ? 0.7 * m->rate + 0.3 * inst : inst;
	m->rate_t = now;
	m->rate_bytes = m->done;
}

static void meter_text(const struct step_meter *m, char *out, size_t len)
{
	char done[32], total[32], rate[32], eta[32], b[BAR_WIDTH + 3];
	int64_t e = eta_s(m);

	human_bytes(m->done, done, sizeof(done));
	human_rate(m->rate, rate, sizeof(rate));
	human_duration(e, eta, sizeof(eta));
	if (m->total < 0) {
		snprintf(out, len, "%s %s  %s", m->what, done, rate);
		return;
	}
	human_bytes(m->total, total, sizeof(total));
	bar(m->done, m->total, b);
	snprintf(out, len, "%s %s %s / %s  %3d%%  %s  ETA %s", m->what, b, done, total,
		 m->total ? (int)(m->done * 100 / m->total) : 100, rate, e < 0 ? "?" : eta);
}

static void emit_json(const struct step_ctx *ctx, const struct step_meter *m, int final)
{
	cJSON *f = cJSON_CreateObject();
	char text[256];

	cJSON_AddStringToObject(f, "what", m->what);
	cJSON_AddNumberToObject(f, "bytes", (double)m->done);
	if (m->total >= 0)
		cJSON_AddNumberToObject(f, "total", (double)m->total);
	cJSON_AddNumberToObject(f, "rate", m->rate);
	if (eta_s(m) >= 0)
		cJSON_AddNumberToObject(f, "eta_s", (double)eta_s(m));
	cJSON_AddBoolToObject(f, "final", final);
	meter_text(m, text, sizeof(text));
	run_event(ctx->run, ctx->step->id, "progress", f, "%s", text);
}

void step_meter_start(const struct step_ctx *ctx, struct step_meter *m, const char *what, int64_t done,
		      int64_t total)
{
	int64_t now = mono_ms();

	memset(m, 0, sizeof(*m));
	m->what = what;
	m->done = m->start_done = m->rate_bytes = done;
	m->total = total;
	m->t0 = m->rate_t = now;
	m->last_draw = m->last_emit = now;
}

void step_meter_update(const struct step_ctx *ctx, struct step_meter *m, int64_t done)
{
	struct run *r = ctx->run;
	int64_t now = mono_ms();
	char text[256];

	m->done = done;
	sample_rate(m, now);
	if (r->quiet || ctx->dry_run)
		return;
	if (r->json) {
		if (now - m->last_emit >= JSON_MS) {
			m->last_emit = now;
			emit_json(ctx, m, 0);
		}
		return;
	}
	if (r->term && r->term->tty) {
		if (now - m->last_draw >= DRAW_MS) {
			m->last_draw = now;
			meter_text(m, text, sizeof(text));
			draw_live(ctx, text);
		}
		return;
	}
	if (now - m->last_emit >= PLAIN_MS) {
		m->last_emit = now;
		meter_text(m, text, sizeof(text));
		run_event(r, ctx->step->id, "progress", NULL, "%s", text);
	}
}

void step_meter_finish(const struct step_ctx *ctx, struct step_meter *m)
{
	struct run *r = ctx->run;
	int64_t ms = mono_ms() - m->t0;

	if (ms > 0)
		m->rate = (double)(m->done - m->start_done) * 1000.0 / (double)ms;
	if (r->quiet || ctx->dry_run)
		return;
	if (r->json)
		emit_json(ctx, m, 1);
	else
		run_term_clear(r->term, r->out);
}

void step_job_progress(const struct step_ctx *ctx, struct job_progress *jp)
{
	struct run *r = ctx->run;
	int64_t now = mono_ms(), wall = now_ms();
	char elapsed[32], quiet[32], pct[16] = "", text[256];

	if (r->quiet || ctx->dry_run)
		return;
	human_duration((wall - jp->started_ms) / 1000, elapsed, sizeof(elapsed));
	human_duration((wall - jp->changed_ms) / 1000, quiet, sizeof(quiet));
	if (jp->percent >= 0)
		snprintf(pct, sizeof(pct), " %d%%", jp->percent);
	snprintf(text, sizeof(text), "%s job %s: %s%s, %s elapsed, last change %s ago", jp->kind, jp->job_id,
		 jp->status, pct, elapsed, quiet);
	if (r->json) {
		if (jp->last_emit && now - jp->last_emit < JSON_MS)
			return;
		cJSON *f = cJSON_CreateObject();

		cJSON_AddStringToObject(f, "what", "job");
		cJSON_AddStringToObject(f, "job_id", jp->job_id);
		cJSON_AddStringToObject(f, "kind", jp->kind);
		cJSON_AddStringToObject(f, "status", jp->status);
		if (jp->percent >= 0)
			cJSON_AddNumberToObject(f, "percent", jp->percent);
		cJSON_AddNumberToObject(f, "elapsed_s", (double)((wall - jp->started_ms) / 1000));
		cJSON_AddNumberToObject(f, "since_change_s", (double)((wall - jp->changed_ms) / 1000));
		jp->last_emit = now;
		run_event(r, ctx->step->id, "progress", f, "%s", text);
		return;
	}
	if (r->term && r->term->tty) {
		if (!jp->last_emit || now - jp->last_emit >= DRAW_MS) {
			jp->last_emit = now;
			draw_live(ctx, text);
		}
		return;
	}
	if (!jp->last_emit || now - jp->last_emit >= PLAIN_MS * 3) {
		jp->last_emit = now;
		run_event(r, ctx->step->id, "progress", NULL, "%s", text);
	}
}

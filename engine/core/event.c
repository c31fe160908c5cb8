/*
 * event: what a run tells its user — one line per event on the terminal
 * (escaped, secrets scrubbed, a live progress line cleared first) or one
 * JSON object per event — and whether the user asked it to stop.
 */
#include "event.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "conn.h"
#include "termsafe.h"
#include "util.h"

struct run_term *run_term_new(int fd, int json, int quiet)
{
	struct run_term *t = xcalloc(1, sizeof(*t));
	const char *term = getenv("TERM");

	t->tty = !json && !quiet && isatty(fd) && !(term && !strcmp(term, "dumb"));
	return t;
}

void run_term_free(struct run_term *t)
{
	free(t);
}

void run_term_clear(struct run_term *t, FILE *out)
{
	if (!t || !t->live)
		return;
	fputs("\r\033[K", out);
	t->live = 0;
}

void run_scrub(const struct run *r, struct buf *b)
{
	for (size_t i = 0; r->conns && i < r->plan->nservers; i++)
		if (r->conns[i] && r->conns[i]->client)
			http_scrub_buf(r->conns[i]->client, b);
}

int run_should_stop(const struct run *r)
{
	if (!r->stop || !*r->stop)
		return 0;
	/* Winding down (always steps): only a further signal stops them. */
	if (r->winding_down)
		return r->stop_count && *r->stop_count > r->stops_seen;
	return 1;
}

void run_event(const struct run *r, const char *step, const char *event, cJSON *fields, const char *fmt, ...)
{
	struct buf msg = BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	buf_vaddf(&msg, fmt, ap);
	va_end(ap);
	run_scrub(r, &msg); /* last line of defence: no known secret is ever printed */
	if (r->json) {
		cJSON *o = fields ? fields : cJSON_CreateObject();
		char when[32], *line;

		iso8601_utc(now_ms(), when, sizeof(when));
		cJSON_AddStringToObject(o, "time", when);
		cJSON_AddStringToObject(o, "event", event);
		if (step)
			cJSON_AddStringToObject(o, "step", step);
		cJSON_AddStringToObject(o, "message", buf_cstr(&msg));
		line = cJSON_PrintUnformatted(o);
		{
			struct buf safe = BUF_INIT;

			term_json_line(&safe, line);
			fprintf(r->out, "%s\n", buf_cstr(&safe));
			buf_release(&safe);
		}
		fflush(r->out);
		free(line);
		cJSON_Delete(o);
	} else {
		cJSON_Delete(fields);
		/* Preflight problems are errors: stderr, like the message that sums them up. */
		FILE *f = !strcmp(event, "preflight") ? stderr : r->out;

		if (!r->quiet || !strcmp(event, "step-failed") || !strcmp(event, "warning") || f == stderr) {
			run_term_clear(r->term, r->out);
			/* Server text is in msg: escaped so it cannot drive the terminal or forge lines. */
			if (step)
				term_printf(f, "%-14s %s\n", step, buf_cstr(&msg));
			else
				term_printf(f, "%s\n", buf_cstr(&msg));
			fflush(f);
		}
	}
	buf_release(&msg);
}

/*
 * The plumbing every command shares: signals, loading a plan with its
 * provenance, setting up a run, and turning MM_E* codes into exit statuses.
 */
#include "cmds.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "meter.h"
#include "steps.h"
#include "termsafe.h"
#include "util.h"

/* The one piece of process-wide mutable state besides curl's: a signal
 * handler can only talk through a sig_atomic_t. */
static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

void cli_install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int cli_load_plan(const struct cli_opts *o, struct plan **plan, struct git_provenance *prov)
{
	struct diags d = DIAGS_INIT;
	struct mm_error err = MM_ERROR_INIT;
	char *text = NULL;
	size_t len = 0;
	int ret;

	memset(prov, 0, sizeof(*prov));
	if (o->rev) {
		if (gitinfo_read_at_rev(o->plan_path, o->rev, &text, &len, prov, &err) < 0) {
			term_printf(stderr, "mmigrate: %s\n", err.msg);
			return EXIT_USAGE;
		}
	} else if (gitinfo_provenance(o->plan_path, prov, &err) < 0 && err.code != MM_ENOTFOUND) {
		/* Provenance is a record, not a precondition: say why it is missing and go on. */
		term_printf(stderr, "mmigrate: warning: %s\n", err.msg);
		memset(prov, 0, sizeof(*prov));
	}
	ret = plan_load(o->plan_path, text, len, step_types_all(), plan, &d);
	free(text);
	if (ret < 0) {
		diags_print(&d, stderr);
		if (d.n > 1)
			fprintf(stderr, "%zu errors in %s\n", d.n, o->plan_path);
		diags_release(&d);
		return EXIT_USAGE;
	}
	diags_release(&d);
	if (o->state_dir) {
		char cwd[4096];
		struct buf b = BUF_INIT;

		if (o->state_dir[0] != '/' && getcwd(cwd, sizeof(cwd)))
			buf_addf(&b, "%s/%s", cwd, o->state_dir);
		else
			buf_adds(&b, o->state_dir);
		free((*plan)->state_dir);
		(*plan)->state_dir = buf_detach(&b);
	}
	return EXIT_OK;
}

void cli_run_init(struct run *r, const struct cli_opts *o, struct plan *p, struct state *st)
{
	memset(r, 0, sizeof(*r));
	r->plan = p;
	r->state = st;
	r->offline = o->offline;
	r->json = o->json;
	r->quiet = o->quiet;
	r->verbose = o->verbose;
	r->stop = &stop_signal;
	r->out = stdout;
	r->term = run_term_new(fileno(stdout), o->json, o->quiet);
}

int cli_exit_for(int code)
{
	switch (code) {
	case 0: return EXIT_OK;
	case MM_ELOCKED: return EXIT_LOCKED;
	case MM_EINVAL: return EXIT_USAGE;
	case MM_EINTR: return stop_signal == SIGTERM ? 143 : 130;
	default: return EXIT_FAILED;
	}
}

int cli_interrupted(void)
{
	return stop_signal != 0;
}

int cli_stop_signal(void)
{
	return stop_signal;
}

const volatile sig_atomic_t *cli_stop_flag(void)
{
	return &stop_signal;
}


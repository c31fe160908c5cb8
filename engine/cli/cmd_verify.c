/* `mmigrate verify ARCHIVE.zip`: the verify step's archive check, stand-alone. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive.h"
#include "cmds.h"
#include "termsafe.h"

/* The report quotes entry names and lines from the archive: each line is escaped on its way out. */
static void print_report_safely(const struct archive_report *rep)
{
	char *text = NULL, *line, *next;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);

	if (!m)
		return;
	archive_report_print(rep, m);
	fclose(m);
	for (line = text; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		term_printf(stdout, "%s\n", line);
		if (!next)
			break;
	}
	free(text);
}

/* Polled by the checker's threads between blocks: reading the flag is all it does. */
static int stop_requested(void *flag)
{
	return *(const volatile sig_atomic_t *)flag != 0;
}

int cmd_verify(struct cli_opts *o)
{
	struct archive_opts ao = ARCHIVE_OPTS_INIT;
	struct archive_report *rep = NULL;
	struct mm_error err = MM_ERROR_INIT;
	int ret = 0;

	if (o->nargs != 1) {
		fprintf(stderr, "mmigrate: verify takes one archive\nTry 'mmigrate --help'.\n");
		return 2;
	}
	ao.max_shown = o->max_errors;
	ao.target_version = o->target_version;
	ao.should_stop = stop_requested;
	ao.stop_ctx = (void *)cli_stop_flag();
	if (archive_verify(o->args[0], &ao, &rep, &err) < 0) {
		if (err.code == MM_EINTR)
			term_printf(stderr, "mmigrate: %s by %s\n", err.msg,
				    cli_stop_signal() == SIGTERM ? "SIGTERM" : "SIGINT");
		else
			term_printf(stderr, "mmigrate: %s\n", err.msg);
		return err.code == MM_EINTR ? cli_exit_for(MM_EINTR) : 1;
	}
	if (o->json) {
		cJSON *ev = cJSON_CreateObject();

		cJSON_AddItemToObject(ev, "report", archive_report_json(rep));
		cli_json_event("verify-report", ev, "%s: %lu errors", o->args[0], rep->error_count);
	} else {
		print_report_safely(rep);
	}
	ret = rep->error_count ? 1 : 0;
	archive_report_free(rep);
	return ret;
}

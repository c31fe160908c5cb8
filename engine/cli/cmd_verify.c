/* `mmigrate verify ARCHIVE.zip`: the verify step's archive check, stand-alone. */
#include <stdio.h>
#include <stdlib.h>

#include "archive.h"
#include "cmds.h"

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
	if (archive_verify(o->args[0], &ao, &rep, &err) < 0) {
		fprintf(stderr, "mmigrate: %s\n", err.msg);
		return 1;
	}
	if (o->json) {
		cJSON *j = archive_report_json(rep);
		char *s = cJSON_Print(j);

		printf("%s\n", s);
		free(s);
		cJSON_Delete(j);
	} else {
		archive_report_print(rep, stdout);
	}
	ret = rep->error_count ? 1 : 0;
	archive_report_free(rep);
	return ret;
}

/* `mmigrate steps`: the registry, as a user reads it. */
#include <stdio.h>

#include "cmds.h"
#include "steps.h"
#include "step.h"

static const char *const kind_names[] = { "string", "bool", "int",  "duration", "size",
					  "rate",   "path", "list", "step id" };

int cmd_steps(struct cli_opts *o)
{
	printf("every step: id (required), type (required), server, description,\n"
	       "    always (bool: runs even after an earlier step failed or a stop signal; default false)\n");
	for (const struct step_type *const *t = step_types_all(); *t; t++) {
		printf("%s: %s%s\n", (*t)->name, (*t)->summary,
		       (*t)->server == SERVER_REQUIRED ? " (needs server)" : "");
		for (const struct param_spec *ps = (*t)->params; ps && ps->name; ps++)
			printf("    %-26s %-8s %s%s%s%s\n", ps->name, kind_names[ps->kind],
			       ps->required ? "required. " : "", ps->doc ? ps->doc : "",
			       ps->def ? "; default " : "", ps->def ? ps->def : "");
		printf("    outputs:");
		for (const char *const *out = (*t)->outputs; out && *out; out++)
			printf(" %s", *out);
		printf("\n");
	}
	return 0;
}

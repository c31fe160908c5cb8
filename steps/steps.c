/*
 * The step registry: one line per step type. Adding a step type is one new
 * file in steps/ and one line here (git's commands[], tmux's cmd_entry).
 */
#include <string.h>

#include "step.h"

extern const struct step_type step_auth, step_export, step_download, step_upload, step_process,
	step_verify, step_config, step_cleanup, step_extract, step_exec;

static const struct step_type *const step_types[] = {
	&step_auth,
	&step_export,
	&step_download,
	&step_upload,
	&step_process,
	&step_verify,
	&step_config,
	&step_cleanup,
	&step_extract,
	&step_exec,
	NULL,
};

const struct step_type *const *step_types_all(void)
{
	return step_types;
}

const struct step_type *step_type_find(const char *name)
{
	for (size_t i = 0; step_types[i]; i++)
		if (!strcmp(step_types[i]->name, name))
			return step_types[i];
	return NULL;
}

const struct param_spec *step_param_find(const struct step_type *t, const char *key)
{
	for (const struct param_spec *ps = t->params; ps && ps->name; ps++)
		if (!strcmp(ps->name, key))
			return ps;
	return NULL;
}

int step_type_has_output(const struct step_type *t, const char *key)
{
	for (const char *const *o = t->outputs; o && *o; o++)
		if (!strcmp(*o, key))
			return 1;
	return 0;
}

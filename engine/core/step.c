/* The generic half of step types: lookups over a registry and a type's tables. */
#include "step.h"

#include <string.h>

const struct step_type *step_type_lookup(const struct step_type *const *types, const char *name)
{
	for (size_t i = 0; types && types[i]; i++)
		if (!strcmp(types[i]->name, name))
			return types[i];
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

/*
 * libFuzzer target: ${...} interpolation (engine/core/interp.c): scan and expand.
 * Any bytes must parse or be refused with a message, never crash, leak or
 * read out of bounds. Seeds: tests/fuzz/corpus/interp/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "interp.h"

static void on_ref(void *ctx, enum interp_source src, const char *arg, const char *key)
{
	(void)ctx, (void)src, (void)arg, (void)key;
}

static const cJSON *step_output(void *ctx, const char *step, const char *key, struct mm_error *err)
{
	static cJSON *value;

	if (!value)
		value = cJSON_CreateString("out");
	if (!strcmp(step, "a"))
		return value;
	err_set(err, MM_ENOTFOUND, "step '%s' has not run", step);
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct interp_env env = { "/nonexistent", step_output, NULL };
	struct mm_error err = MM_ERROR_INIT;
	char *s = malloc(size + 1), *out = NULL;

	memcpy(s, data, size);
	s[size] = '\0';
	interp_scan(s, on_ref, NULL, &err);
	/* ${file:/dev/zero} would read forever: files are the loader's business, not the parser's. */
	if (!strstr(s, "file:") && interp_expand(s, &env, &out, &err) == 0)
		interp_free_secret(out);
	free(s);
	return 0;
}

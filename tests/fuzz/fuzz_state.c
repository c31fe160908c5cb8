/*
 * libFuzzer target: state.json loading (state_parse, engine/core/state.c).
 * Any bytes must parse or be refused with a message, never crash, leak or
 * read out of bounds. Seeds: tests/fuzz/corpus/state/.
 */
#include <stdint.h>

#include "state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mm_error err = MM_ERROR_INIT;
	cJSON *root = NULL;

	if (state_parse((const char *)data, size, "fuzz", &root, &err) == 0 &&
	    !cJSON_IsObject(cJSON_GetObjectItem(root, "steps")))
		__builtin_trap();
	cJSON_Delete(root);
	return 0;
}

/*
 * libFuzzer target for the plan loader: any bytes must load or fail with
 * diagnostics, never crash, leak or read out of bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "plan.h"
#include "steps.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct diags d = DIAGS_INIT;
	struct plan *p = NULL;
	FILE *devnull;

	plan_load("fuzz.yaml", (const char *)data, size, step_types_all(), &p, &d);
	devnull = fopen("/dev/null", "w");
	if (devnull) {
		diags_print(&d, devnull);
		fclose(devnull);
	}
	diags_release(&d);
	plan_free(p);
	return 0;
}

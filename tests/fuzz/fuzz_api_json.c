/*
 * libFuzzer target: job and upload-session JSON answers (mm_parse_job, mm_parse_upload in engine/net/mm.c).
 * Any bytes must parse or be refused with a message, never crash, leak or
 * read out of bounds. Seeds: tests/fuzz/corpus/api_json/.
 */
#include <stdint.h>
#include <string.h>

#include "mm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mm_error err = MM_ERROR_INIT;
	struct mm_job job = MM_JOB_INIT;
	struct mm_upload up;

	if (mm_parse_job((const char *)data, size, &job, &err) == 0 && (!job.data || strlen(job.id) != 26))
		__builtin_trap(); /* a parsed job has a checked id and an object for data */
	mm_job_clear(&job);
	(void)mm_parse_upload((const char *)data, size, &up, &err);
	return 0;
}

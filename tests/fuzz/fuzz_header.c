/*
 * libFuzzer target: Content-Range and Retry-After headers (engine/net/httpparse.c).
 * Any bytes must parse or be refused with a message, never crash, leak or
 * read out of bounds. Seeds: tests/fuzz/corpus/header/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *v = malloc(size + 1);
	int64_t start, end, total;

	memcpy(v, data, size);
	v[size] = '\0';
	if (http_parse_content_range(v, &start, &end, &total) == 0 && start >= 0 && end < -1)
		abort(); /* a parsed range never has an end without a start */
	(void)http_parse_retry_after(v);
	free(v);
	return 0;
}

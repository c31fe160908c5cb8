/*
 * libFuzzer target: AppError bodies (http_parse_app_error, engine/net/http.c).
 * Any bytes must parse or be refused with a message, never crash, leak or
 * read out of bounds. Seeds: tests/fuzz/corpus/app_error/.
 */
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "httpparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf detail = BUF_INIT;
	char id[128];

	http_parse_app_error((const char *)data, size, id, sizeof(id), &detail);
	/* The flattened message holds no line breaks: it goes into one error line. */
	if (detail.len && (memchr(detail.data, '\n', detail.len) || memchr(detail.data, '\r', detail.len)))
		__builtin_trap();
	buf_release(&detail);
	return 0;
}

/*
 * httpparse: the parsers for what a server says in headers and error
 * bodies, apart from libcurl so fuzz targets (tests/fuzz/) can drive them.
 *
 *   http_parse_content_range("bytes 10-99/100", &start, &end, &total)   0 or -1
 *   http_parse_retry_after("120") → 120;  an HTTP date → seconds from now; -1 when unusable
 *   http_parse_app_error(body, len, id, sizeof(id), &detail)            0 when it is an AppError
 *
 * Content-Range and Retry-After live in httpparse.c; the AppError reader is
 * http.c's own (it shares the message flattening), exported from there.
 */
#ifndef MM_HTTPPARSE_H
#define MM_HTTPPARSE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* "bytes 10-99/100"; a 416 has "bytes *" then "/100"; the total may be "*" (-1). */
int http_parse_content_range(const char *v, int64_t *start, int64_t *end, int64_t *total);

/* Seconds (capped at a day) from a Retry-After value, or -1. */
long http_parse_retry_after(const char *v);

/* A Mattermost AppError body: its id into app_id, "message (detailed_error)" flattened into detail. */
int http_parse_app_error(const char *body, size_t len, char *app_id, size_t idlen, struct buf *detail);

#endif

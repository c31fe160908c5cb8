/*
 * canon: canonical JSON (object keys sorted, no whitespace) and its SHA-256,
 * the basis of step fingerprints. Caller frees the returned string.
 */
#ifndef MM_CANON_H
#define MM_CANON_H

#include <cjson/cJSON.h>

char *json_canonical(const cJSON *);
void json_fingerprint(const cJSON *, char hex[65]);
/* Keys whose values differ between two objects (top level), comma-separated; caller frees. */
char *json_changed_keys(const cJSON *a, const cJSON *b);

#endif

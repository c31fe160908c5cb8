/*
 * jsonlimit: a cheap scan that bounds a JSON text's nesting depth and number
 * of values before cJSON builds a tree of it. cJSON spends ~64 bytes per
 * value, so a body of "[0,0,0,...]" costs thirty times its size in memory,
 * and deep nesting costs stack; both are decided here from the bytes alone.
 *
 *   if (json_within_limits(text, len, 64, 1000000, err) < 0) refuse
 *
 * The scan does not validate: it counts brackets and values outside strings
 * (escapes honoured). cJSON still rejects what is not JSON.
 */
#ifndef MM_JSONLIMIT_H
#define MM_JSONLIMIT_H

#include <stddef.h>

#include "error.h"

#define JSON_MAX_DEPTH 64       /* deeper than any API answer or state file we read */
#define JSON_MAX_VALUES 1000000 /* ~64 MB of cJSON nodes at worst */

/* 0 when text nests at most max_depth deep and holds at most max_values values; MM_ERR with err set otherwise. */
int json_within_limits(const char *text, size_t len, int max_depth, size_t max_values, struct mm_error *err);

#endif

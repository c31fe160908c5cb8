/*
 * termsafe: the one escaping function for text mmigrate prints to a terminal.
 * Server strings (usernames, job statuses, file names, error bodies) reach
 * our output; raw, an ESC sequence could rewrite the screen or the window
 * title, and a CR or LF could forge a line that looks like ours.
 *
 *   struct buf b = BUF_INIT;
 *   term_escape(&b, untrusted, strlen(untrusted));  appends a safe copy
 *   term_printf(stderr, "mmigrate: %s\n", err.msg); formats, escapes, prints
 *
 * Escaped: C0 controls (tab kept) as \n \r \t-style or \xNN, DEL as \x7f,
 * C1 controls (U+0080..U+009F) as \u0080.., bytes that are not valid UTF-8
 * as \xNN, and a backslash stays a backslash (the output is for eyes, not
 * for parsing back). Valid UTF-8 text passes unchanged. JSON output needs
 * none of this: cJSON escapes control characters itself.
 */
#ifndef MM_TERMSAFE_H
#define MM_TERMSAFE_H

#include <stddef.h>
#include <stdio.h>

#include "buf.h"

void term_escape(struct buf *out, const char *s, size_t len);

/* A JSON line from cJSON with C1 controls (UTF-8 C2 80..C2 9F, raw in cJSON's output) as \u0080..\u009f. */
void term_json_line(struct buf *out, const char *json);

/* printf whose whole result is escaped, except one final "\n" (the line end we meant). */
void term_printf(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

/*
 * Fuzzes the bulk-import line validator: the input is a JSONL file, checked
 * line by line against one bulk_state, as archive_verify does. Each line is
 * copied into an allocation of its exact size, so AddressSanitizer catches a
 * read past a line's end that the following '\n' would otherwise hide.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bulkline.h"

/* Pretends the zip holds the entries whose names have an even length. */
static int lookup(void *ctx, const char *name)
{
	(void)ctx;
	return strlen(name) % 2 == 0;
}

static void report(void *ctx, unsigned long line, const char *field, const char *msg)
{
	unsigned long *last = ctx;

	/* problems arrive in line order and always say something */
	if (line < *last || !msg[0] || (field && !field[0]))
		abort();
	*last = line;
}

static int on_team(void *ctx, const char *team)
{
	return team[0] == '\0' ? 1 : 0;
}

static int on_channel(void *ctx, const char *team, const char *channel, unsigned long posts,
		      unsigned long replies)
{
	return 0;
}

static int on_user(void *ctx, const char *username, int is_bot)
{
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bulk_state *st = bulk_state_new();
	const char *p = (const char *)data, *end = p + size;
	unsigned long lineno = 0, last = 0;

	bulk_state_set_lookup(st, lookup, NULL);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = (size_t)((nl ? nl : end) - p);
		char *line = malloc(len ? len : 1);

		memcpy(line, p, len);
		bulk_check_line(st, line, len, ++lineno, report, &last);
		free(line);
		p = nl ? nl + 1 : end;
	}
	last = 0;
	bulk_finish(st, report, &last);
	bulk_state_foreach_team(st, on_team, NULL);
	bulk_state_foreach_channel(st, on_channel, NULL);
	bulk_state_foreach_user(st, on_user, NULL);
	bulk_state_free(st);
	return 0;
}

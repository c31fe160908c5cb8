/*
 * bulkline: validates Mattermost bulk-import JSONL (mattermost-api.md §8) one
 * line at a time, the way the server's importer and `mmctl import validate`
 * judge it: version line first and only first, known line types, required
 * fields and the server's limits, unique names, and references to names
 * defined on earlier lines.
 *
 *   struct bulk_state *st = bulk_state_new();
 *   bulk_state_set_lookup(st, entry_exists, zip);     optional: attachment paths
 *   bulk_state_set_target(st, 911);                   optional: judge as server 9.11 would
 *   for each line (1-based lineno, without its '\n'):
 *           bulk_check_line(st, line, len, lineno, report, ctx);
 *   bulk_finish(st, report, ctx);                     end-of-file checks
 *   bulk_state_counts(st); bulk_state_foreach_team(st, cb, ctx); ...
 *   bulk_state_free(st);
 *
 * Lines need not be NUL-terminated and are never copied. Memory is one cJSON
 * tree per line, freed before bulk_check_line returns, plus the name sets
 * (strings interned in an arena, owned by the state).
 *
 * report(ctx, line, field, msg) is called once per problem; field is a path
 * into the line such as "post.replies[2].user", or NULL when the problem is
 * the line itself (blank, invalid JSON). line is 0 for problems of the file
 * as a whole. field and msg are valid only during the call.
 */
#ifndef MM_BULKLINE_H
#define MM_BULKLINE_H

#include <stddef.h>

/* The server reads at most 16 MiB per line. */
#define BULK_MAX_LINE ((size_t)16 * 1024 * 1024)

typedef void (*bulk_report_fn)(void *ctx, unsigned long line, const char *field, const char *msg);

/*
 * Answers whether the zip holds the entry `name` ("data/" + the path as the
 * server cleans it) and records it as used. Returns BULK_PRESENT,
 * BULK_ABSENT, or BULK_EXCUSED: absent, but the export listed it in
 * warnings.txt as a file it could not read (the import skips such
 * attachments; a profile or emoji image missing still stops it).
 */
enum { BULK_ABSENT = 0, BULK_PRESENT = 1, BULK_EXCUSED = 2 };
typedef int (*bulk_lookup_fn)(void *ctx, const char *name);

/* Lines seen per type, as `mmctl import validate` counts them; replies and
 * attachments count the elements inside post and direct_post lines. */
struct bulk_counts {
	unsigned long roles, schemes, teams, channels, users, bots, emojis, posts, replies, direct_channels,
		direct_posts, attachments;
};

struct bulk_state;

/* Caller frees with bulk_state_free. */
struct bulk_state *bulk_state_new(void);
void bulk_state_free(struct bulk_state *st);

/* Without a lookup, attachment, emoji and profile image paths are only
 * checked for form, not for presence. */
void bulk_state_set_lookup(struct bulk_state *st, bulk_lookup_fn lookup, void *ctx);

/*
 * The target server's version as major * 100 + minor (9.11 -> 911). Rules
 * that changed between releases (known permissions, name casing) follow it;
 * 0, the default, applies the newest rules.
 */
void bulk_state_set_target(struct bulk_state *st, int version);

/* "9.11", "v9.11.2", "10.3.0 (hash, enterprise: true)" -> 911 / 1003.
 * Returns 0, or -1 when s does not start with MAJOR.MINOR. */
int bulk_parse_version(const char *s, int *version);

void bulk_check_line(struct bulk_state *st, const char *line, size_t len, unsigned long lineno,
		     bulk_report_fn report, void *ctx);
/* For a line the caller did not keep because it exceeds BULK_MAX_LINE. */
void bulk_line_too_long(struct bulk_state *st, unsigned long lineno, size_t len, bulk_report_fn report,
			void *ctx);
/* End-of-file checks (an empty file has no version line). */
void bulk_finish(struct bulk_state *st, bulk_report_fn report, void *ctx);

const struct bulk_counts *bulk_state_counts(const struct bulk_state *st);

/*
 * Name sets, in the order the names were defined. A callback returning
 * non-zero stops the walk; foreach returns that value (0 after a full walk).
 * Usernames are lowercased, as the server stores them.
 */
int bulk_state_foreach_team(const struct bulk_state *st, int (*cb)(void *ctx, const char *team), void *ctx);
/* posts: root posts of the channel in the file; replies: their replies. */
int bulk_state_foreach_channel(const struct bulk_state *st,
			       int (*cb)(void *ctx, const char *team, const char *channel,
					 unsigned long posts, unsigned long replies),
			       void *ctx);
int bulk_state_foreach_user(const struct bulk_state *st,
			    int (*cb)(void *ctx, const char *username, int is_bot), void *ctx);

#endif

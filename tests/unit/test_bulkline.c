/*
 * bulk_check_line on single lines: name patterns, field kinds, references,
 * the attachment lookup, and the edges the archive tests do not reach.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "bulkline.h"
#include "check.h"

/* Problems as "LINE field: msg" lines, or "LINE msg" without a field. */
static struct buf got = BUF_INIT;

static void collect(void *ctx, unsigned long line, const char *field, const char *msg)
{
	if (field)
		buf_addf(&got, "%lu %s: %s\n", line, field, msg);
	else
		buf_addf(&got, "%lu %s\n", line, msg);
}

static unsigned long lineno;

static void feed(struct bulk_state *st, const char *line)
{
	bulk_check_line(st, line, strlen(line), ++lineno, collect, NULL);
}

/* A state holding a version line, teams t1 and t2, channel t1/c1, users u1 and u2. */
static struct bulk_state *base(void)
{
	struct bulk_state *st = bulk_state_new();

	lineno = 0;
	feed(st, "{\"type\":\"version\",\"version\":1}");
	feed(st, "{\"type\":\"team\",\"team\":{\"name\":\"t1\",\"display_name\":\"T\",\"type\":\"O\"}}");
	feed(st, "{\"type\":\"team\",\"team\":{\"name\":\"t2\",\"display_name\":\"T\",\"type\":\"O\"}}");
	feed(st, "{\"type\":\"channel\",\"channel\":{\"team\":\"t1\",\"name\":\"c1\",\"type\":\"O\"}}");
	feed(st, "{\"type\":\"user\",\"user\":{\"username\":\"u1\",\"email\":\"u1@x\"}}");
	feed(st, "{\"type\":\"user\",\"user\":{\"username\":\"U2\",\"email\":\"u2@x\"}}");
	buf_reset(&got);
	return st;
}

/* Feeds one line after base() and compares the problems reported. */
static void expect(const char *line, const char *want)
{
	struct bulk_state *st = base();

	feed(st, line);
	CHECK_STR(buf_cstr(&got), want);
	bulk_state_free(st);
}

static void team_named(const char *name, const char *want)
{
	char line[256];

	snprintf(line, sizeof(line),
		 "{\"type\":\"team\",\"team\":{\"name\":\"%s\",\"display_name\":\"X\",\"type\":\"O\"}}", name);
	expect(line, want);
}

static void test_team_names(void)
{
	team_named("ab", "");
	team_named("a-b", "");
	team_named("a__b", "");
	team_named("a0", "");
	team_named("a", "7 team.name: invalid team name \"a\": must be 2-64 characters\n");
	team_named("a_b",
		   "7 team.name: invalid team name \"a_b\": only lowercase letters, digits, '-' and one inner '__' are allowed\n");
	team_named("a__b-c",
		   "7 team.name: invalid team name \"a__b-c\": only lowercase letters, digits, '-' and one inner '__' are allowed\n");
	team_named("a__b__c",
		   "7 team.name: invalid team name \"a__b__c\": only lowercase letters, digits, '-' and one inner '__' are allowed\n");
	team_named("-ab",
		   "7 team.name: invalid team name \"-ab\": must start and end with a lowercase letter or digit\n");
	team_named("ab-",
		   "7 team.name: invalid team name \"ab-\": must start and end with a lowercase letter or digit\n");
	team_named("posters", "7 team.name: invalid team name \"posters\": starts with a reserved word\n");
	team_named("signup2", "7 team.name: invalid team name \"signup2\": starts with a reserved word\n");
	team_named("myadmin", "");
	team_named("t1", "7 team.name: duplicate team \"t1\" (first defined on line 2)\n");
	team_named("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "");
	team_named("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		   "7 team.name: invalid team name \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\": must be 2-64 characters\n");
	/* display_name counts runes, not bytes */
	expect("{\"type\":\"team\",\"team\":{\"name\":\"t3\",\"display_name\":\""
	       "éééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé\",\"type\":\"O\"}}",
	       "");
	expect("{\"type\":\"team\",\"team\":{\"name\":\"t3\",\"display_name\":\"\",\"type\":\"O\"}}",
	       "7 team.display_name: must not be empty\n");
}

static void test_channel_and_user_names(void)
{
	expect("{\"type\":\"channel\",\"channel\":{\"team\":\"t1\",\"name\":\"x_\",\"type\":\"P\"}}", "");
	expect("{\"type\":\"channel\",\"channel\":{\"team\":\"t2\",\"name\":\"c1\",\"type\":\"P\"}}", "");
	/* the import lowercases channel names (import_validators.go); 7.x did not */
	expect("{\"type\":\"channel\",\"channel\":{\"team\":\"t1\",\"name\":\"Dev\",\"type\":\"O\"}}", "");
	expect("{\"type\":\"channel\",\"channel\":{\"team\":\"t1\",\"name\":\"a b\",\"type\":\"O\"}}",
	       "7 channel.name: invalid channel name \"a b\": only lowercase letters, digits, '-' and '_' are allowed\n");
	expect("{\"type\":\"user\",\"user\":{\"username\":\"Bob.Smith_2-x\",\"email\":\"b@x\"}}", "");
	expect("{\"type\":\"user\",\"user\":{\"username\":\"bob smith\",\"email\":\"b@x\"}}",
	       "7 user.username: invalid username \"bob smith\": only letters, digits, '.', '-' and '_' are allowed\n");
	expect("{\"type\":\"user\",\"user\":{\"username\":\"SYSTEM\",\"email\":\"b@x\"}}",
	       "7 user.username: invalid username \"SYSTEM\": is reserved\n");
	expect("{\"type\":\"user\",\"user\":{\"username\":\"u2\",\"email\":\"b@x\"}}",
	       "7 user.username: duplicate username \"u2\" (first defined on line 6)\n");
	expect("{\"type\":\"user\",\"user\":{\"username\":\"\",\"email\":\"b@x\"}}",
	       "7 user.username: invalid username \"\": must be 1-64 characters\n");
	expect("{\"type\":\"emoji\",\"emoji\":{\"name\":\"plus+1\",\"image\":\"e/1\"}}", "");
	/* model.IsValidEmojiName refuses system emoji names */
	expect("{\"type\":\"emoji\",\"emoji\":{\"name\":\"+1\",\"image\":\"e/1\"}}",
	       "7 emoji.name: invalid emoji name \"+1\": is the name of a system emoji\n");
	expect("{\"type\":\"role\",\"role\":{\"name\":\"Bad-Role\"}}",
	       "7 role.display_name: missing\n"
	       "7 role.name: invalid role name \"Bad-Role\": only lowercase letters, digits and '_' are allowed\n");
	/* a quote in a name is escaped in the message */
	expect("{\"type\":\"emoji\",\"emoji\":{\"name\":\"a\\\"b\",\"image\":\"e/1\"}}",
	       "7 emoji.name: invalid emoji name \"a\\\"b\": only letters, digits, '-', '+' and '_' are allowed\n");
}

static void test_line_form(void)
{
	expect("", "7 blank line\n");
	expect(" \r", "7 blank line\n");
	expect("{\"type\":", "7 invalid JSON near column 8\n");
	expect("{} {}", "7 invalid JSON near column 3\n");
	expect("{\"a\":1}  ", "7 type: missing\n");
	expect("\"team\"", "7 line is not a JSON object\n");
	expect("{\"type\":5}", "7 type: must be a string\n");
	expect("{\"type\":\"team\",\"team\":[]}", "7 team: must be an object\n");
	expect("{\"type\":\"team\",\"team\":null}", "7 team: missing\n");
	expect("{\"type\":\"Team\",\"Team\":{}}", "7 type: unknown line type \"Team\"\n");
	/* null is absent, unknown keys are ignored, the last duplicate key wins */
	expect("{\"type\":\"team\",\"team\":{\"name\":\"t3\",\"display_name\":\"X\",\"type\":\"O\","
	       "\"scheme\":null,\"extra\":[1],\"type\":\"I\"}}",
	       "");
	/* Go's decoder, too, fails a line whose earlier duplicate has the wrong kind */
	expect("{\"type\":\"team\",\"team\":{\"name\":\"t3\",\"display_name\":\"X\",\"type\":5,\"type\":\"O\"}}",
	       "7 team.type: must be a string\n");
	expect("{\"type\":\"team\",\"team\":{\"name\":\"t3\",\"display_name\":\"X\",\"type\":\"O\",\"type\":null}}",
	       "7 team.type: missing\n");
}

static void test_version_rules(void)
{
	struct bulk_state *st = bulk_state_new();

	buf_reset(&got);
	lineno = 0;
	feed(st, "{\"type\":\"version\",\"version\":1.0,\"info\":{\"generator\":\"x\"}}");
	feed(st, "{\"type\":\"version\",\"version\":1}");
	CHECK_STR(buf_cstr(&got), "2 type: version line allowed only on line 1\n");
	bulk_state_free(st);

	st = bulk_state_new();
	buf_reset(&got);
	lineno = 0;
	feed(st, "{\"type\":\"version\"}");
	CHECK_STR(buf_cstr(&got), "1 version: missing\n");
	bulk_state_free(st);

	/* a bad first line still has its own fields checked */
	st = bulk_state_new();
	buf_reset(&got);
	lineno = 0;
	feed(st, "{\"type\":\"team\",\"team\":{\"name\":\"t1\",\"type\":\"O\"}}");
	CHECK_STR(buf_cstr(&got), "1 type: first line must be the version line, not \"team\"\n"
				  "1 team.display_name: missing\n");
	bulk_state_free(st);

	st = bulk_state_new();
	buf_reset(&got);
	bulk_finish(st, collect, NULL);
	CHECK_STR(buf_cstr(&got), "0 empty file: the version line is missing\n");
	bulk_state_free(st);
}

static void test_posts(void)
{
	/* usernames resolve case-insensitively; a reply older than its post is fine */
	expect("{\"type\":\"post\",\"post\":{\"team\":\"t1\",\"channel\":\"c1\",\"user\":\"U1\",\"message\":\"m\","
	       "\"create_at\":10,\"replies\":[{\"user\":\"u2\",\"message\":\"r\",\"create_at\":5}]}}",
	       "");
	expect("{\"type\":\"post\",\"post\":{\"team\":\"t2\",\"channel\":\"c1\",\"user\":\"u1\",\"message\":\"m\",\"create_at\":1}}",
	       "7 post.channel: channel \"c1\" of team \"t2\" is not defined on an earlier line\n");
	/* an unknown team hides the channel check: one error, not two */
	expect("{\"type\":\"post\",\"post\":{\"team\":\"zz\",\"channel\":\"c1\",\"user\":\"u1\",\"message\":\"m\",\"create_at\":1}}",
	       "7 post.team: team \"zz\" is not defined on an earlier line\n");
	expect("{\"type\":\"post\",\"post\":{}}",
	       "7 post.user: missing\n7 post.message: missing\n7 post.create_at: missing\n"
	       "7 post.team: missing\n7 post.channel: missing\n");
	expect("{\"type\":\"post\",\"post\":{\"team\":\"t1\",\"channel\":\"c1\",\"user\":\"u1\",\"message\":\"m\",\"create_at\":1,"
	       "\"reactions\":[{\"user\":\"u2\",\"emoji_name\":\"\",\"create_at\":0}],\"thread_followers\":[{\"user\":\"nobody\"}],"
	       "\"attachments\":[{}, 3]}}",
	       "7 post.reactions[0].emoji_name: must not be empty\n"
	       "7 post.reactions[0].create_at: must not be 0\n"
	       "7 post.attachments[1]: must be an object\n"
	       "7 post.thread_followers[0].user: user \"nobody\" is not defined on an earlier line\n");
	expect("{\"type\":\"post\",\"post\":{\"team\":\"t1\",\"channel\":\"c1\",\"user\":\"u1\",\"message\":\"m\",\"create_at\":1,"
	       "\"flagged_by\":[\"u2\", 4]}}",
	       "7 post.flagged_by[1]: must be a string\n");
	expect("{\"type\":\"direct_post\",\"direct_post\":{\"channel_members\":[\"u1\",\"u1\"],\"user\":\"u1\","
	       "\"message\":\"note to self\",\"create_at\":1}}",
	       "");
	expect("{\"type\":\"direct_channel\",\"direct_channel\":{\"participants\":[{\"username\":\"u1\"},{\"username\":\"u1\"}]}}",
	       "");
	expect("{\"type\":\"direct_channel\",\"direct_channel\":{\"members\":\"u1\"}}",
	       "7 direct_channel.members: must be an array\n"
	       "7 direct_channel.participants: missing, and no \"members\" either\n");
	expect("{\"type\":\"bot\",\"bot\":{\"username\":\"b1\"}}", "7 bot.owner: missing\n");
}

/* Pretends the zip holds data/a.png and data/dir/b.txt, counting lookups. */
static int lookups;

static int fake_lookup(void *ctx, const char *name)
{
	lookups++;
	return !strcmp(name, "data/a.png") || !strcmp(name, "data/dir/b.txt");
}

static void test_attachment_lookup(void)
{
	struct bulk_state *st = base();

	bulk_state_set_lookup(st, fake_lookup, NULL);
	feed(st,
	     "{\"type\":\"post\",\"post\":{\"team\":\"t1\",\"channel\":\"c1\",\"user\":\"u1\",\"message\":\"\",\"create_at\":1,"
	     "\"attachments\":[{\"path\":\"a.png\"},{\"path\":\"dir/b.txt\"},{\"path\":\"c.png\"},{\"path\":\"dir/../../x\"},"
	     "{\"path\":\"/etc/x\"},{\"path\":\"..\"}]}}");
	CHECK_STR(buf_cstr(&got), "7 post.attachments[2].path: file \"data/c.png\" not in archive\n"
				  "7 post.attachments[3].path: path \"dir/../../x\" escapes data/\n"
				  "7 post.attachments[4].path: file \"data/etc/x\" not in archive\n"
				  "7 post.attachments[5].path: path \"..\" escapes data/\n");
	CHECK(lookups == 4); /* "/etc/x" is data/etc/x to the server */
	CHECK(bulk_state_counts(st)->attachments == 6);
	/* a missing profile image stops the import: ValidateUserImportData stats it */
	buf_reset(&got);
	feed(st,
	     "{\"type\":\"user\",\"user\":{\"username\":\"u3\",\"email\":\"x@y\",\"profile_image\":\"none.png\"}}");
	CHECK_STR(buf_cstr(&got), "8 user.profile_image: file \"data/none.png\" not in archive\n");
	CHECK(lookups == 5);
	bulk_state_free(st);
}

static void test_long_lines(void)
{
	struct bulk_state *st = base();
	size_t n = BULK_MAX_LINE + 1;
	char *big = malloc(n);
	static const char head[] =
		"{\"type\":\"post\",\"post\":{\"team\":\"t1\",\"channel\":\"c1\",\"user\":\"u1\","
		"\"message\":\"m\",\"create_at\":1,\"props\":{\"p\":\"";
	size_t props = 800001;
	char *line = malloc(sizeof(head) + props + 8);

	memset(big, ' ', n);
	bulk_check_line(st, big, n, 7, collect, NULL);
	CHECK_STR(buf_cstr(&got), "7 line longer than 16 MiB (16777217 bytes)\n");
	free(big);

	/* props over 800000 runes once serialized (quotes and key included) */
	buf_reset(&got);
	memcpy(line, head, sizeof(head) - 1);
	memset(line + sizeof(head) - 1, 'p', props);
	memcpy(line + sizeof(head) - 1 + props, "\"}}}", 5);
	bulk_check_line(st, line, strlen(line), 8, collect, NULL);
	CHECK_STR(buf_cstr(&got), "8 post.props: longer than 800000 characters serialized (800009)\n");
	free(line);
	bulk_state_free(st);
}

static int walk_channel(void *ctx, const char *team, const char *channel, unsigned long posts,
			unsigned long replies)
{
	buf_addf(ctx, "%s/%s:%lu/%lu ", team, channel, posts, replies);
	return 0;
}

static int walk_user(void *ctx, const char *username, int is_bot)
{
	buf_addf(ctx, "%s%s ", username, is_bot ? "*" : "");
	return 0;
}

static void test_counts_and_walks(void)
{
	struct bulk_state *st = base();
	const struct bulk_counts *c;
	struct buf w = BUF_INIT;

	feed(st, "{\"type\":\"bot\",\"bot\":{\"username\":\"B1\",\"owner\":\"u1\"}}");
	for (int i = 0; i < 3; i++)
		feed(st,
		     "{\"type\":\"post\",\"post\":{\"team\":\"t1\",\"channel\":\"c1\",\"user\":\"b1\",\"message\":\"m\","
		     "\"create_at\":1,\"replies\":[{\"user\":\"u1\",\"message\":\"r\",\"create_at\":2}]}}");
	/* a post in an unknown channel counts as a post, not for any channel */
	feed(st,
	     "{\"type\":\"post\",\"post\":{\"team\":\"t1\",\"channel\":\"nope\",\"user\":\"u1\",\"message\":\"m\",\"create_at\":1}}");
	CHECK_STR(buf_cstr(&got),
		  "11 post.channel: channel \"nope\" of team \"t1\" is not defined on an earlier line\n");
	c = bulk_state_counts(st);
	CHECK(c->teams == 2 && c->channels == 1 && c->users == 2 && c->bots == 1);
	CHECK(c->posts == 4 && c->replies == 3);
	bulk_state_foreach_channel(st, walk_channel, &w);
	CHECK_STR(buf_cstr(&w), "t1/c1:3/3 ");
	buf_reset(&w);
	bulk_state_foreach_user(st, walk_user, &w);
	CHECK_STR(buf_cstr(&w), "u1 u2 b1* ");
	buf_release(&w);
	bulk_state_free(st);
}

/* Many names: the sets grow and rehash without losing any. */
static void test_many_names(void)
{
	struct bulk_state *st = base();
	char line[256];

	for (int i = 0; i < 20000; i++) {
		snprintf(line, sizeof(line),
			 "{\"type\":\"user\",\"user\":{\"username\":\"user%d\",\"email\":\"e\"}}", i);
		feed(st, line);
	}
	for (int i = 0; i < 20000; i += 997) {
		snprintf(line, sizeof(line),
			 "{\"type\":\"direct_channel\",\"direct_channel\":{\"members\":[\"user%d\",\"USER%d\"]}}",
			 i, 19999 - i);
		feed(st, line);
	}
	CHECK_STR(buf_cstr(&got), "");
	CHECK(bulk_state_counts(st)->users == 20002);
	bulk_state_free(st);
}

int main(void)
{
	test_team_names();
	test_channel_and_user_names();
	test_line_form();
	test_version_rules();
	test_posts();
	test_attachment_lookup();
	test_long_lines();
	test_counts_and_walks();
	test_many_names();
	buf_release(&got);
	return check_done();
}

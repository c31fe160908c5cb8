/*
 * archive_verify over the archives tests/archive/mkarchive.py writes: every
 * broken case must report exactly the expected messages, every valid one none.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "buf.h"
#include "check.h"
#include "hash.h"
#include "util.h"

static char dir[] = "/tmp/mm-archive-test-XXXXXX";
static char generator[1024];

/* The generator beside this file's directory, whatever the working directory. */
static void find_generator(void)
{
	const char *slash = strrchr(__FILE__, '/');
	struct stat st;

	if (slash && __FILE__[0] == '/') {
		snprintf(generator, sizeof(generator), "%.*s/../archive/mkarchive.py",
			 (int)(slash - __FILE__), __FILE__);
		if (stat(generator, &st) == 0)
			return;
	}
	snprintf(generator, sizeof(generator), "../archive/mkarchive.py");
}

/* Each expected message follows "<dir>/<case>.zip". */
struct expect {
	const char *name;
	unsigned long count; /* error_count */
	const char *errors[6];
};

#define J "->import.jsonl:"

static const struct expect cases[] = {
	{ "valid_full", 0, { NULL } },
	{ "valid_zip64", 0, { NULL } },
	{ "valid_version_only", 0, { NULL } },
	{ "valid_other_jsonl_name", 0, { NULL } },
	{ "valid_unused_and_warnings", 0, { NULL } },
	{ "valid_no_final_newline_crlf", 0, { NULL } },
	{ "valid_line_of_16mib", 0, { NULL } },

	/* the archive itself */
	{ "truncated", 1, { ": truncated zip archive: the central directory at its end is missing" } },
	{ "bad_crc_attachment", 1, { "->data/files/c.txt: CRC mismatch: the entry is corrupt" } },
	{ "bad_crc_jsonl", 1, { "->import.jsonl: CRC mismatch: the entry is corrupt" } },
	{ "no_jsonl", 1, { ": no .jsonl file at the archive root" } },
	{ "jsonl_not_at_root", 1, { ": no .jsonl file at the archive root" } },
	{ "empty_jsonl", 1, { "->import.jsonl: empty file: the version line is missing" } },

	/* version line */
	{ "missing_version", 1, { J "1: field \"type\": first line must be the version line, not \"scheme\"" } },
	{ "version_2", 1, { J "1: field \"version\": unsupported version 2, must be 1" } },
	{ "version_string", 1, { J "1: field \"version\": must be the number 1" } },
	{ "version_twice", 1, { J "22: field \"type\": version line allowed only on line 1" } },

	/* line form */
	{ "unknown_type", 1, { J "22: field \"type\": unknown line type \"thread\"" } },
	{ "bad_json", 1, { J "16: invalid JSON near column 39" } },
	{ "trailing_garbage", 1, { J "17: invalid JSON near column 75" } },
	{ "blank_line", 2, { J "7: blank line", J "9: blank line" } },
	{ "not_an_object", 1, { J "22: line is not a JSON object" } },
	{ "missing_type", 1, { J "22: field \"type\": missing" } },
	{ "missing_type_object", 1, { J "22: field \"team\": missing" } },
	{ "over_long_line",
	  2,
	  { J "22: line longer than 16 MiB (16777217 bytes)",
	    J "23: field \"team.name\": duplicate team \"acme\" (first defined on line 5)" } },

	/* fields */
	{ "wrong_field_types",
	  4,
	  { J "6: field \"team.display_name\": must be a string",
	    J "14: field \"post.create_at\": must be an integer",
	    J "14: field \"post.is_pinned\": must be a boolean",
	    J "15: field \"post.replies[0]\": must be an object" } },
	{ "missing_required_fields",
	  4,
	  { J "7: field \"channel.type\": missing", J "11: field \"user.email\": must not be empty",
	    J "15: field \"post.create_at\": missing", J "15: field \"post.replies[0].message\": missing" } },
	{ "bad_names",
	  5,
	  { J "22: field \"team.name\": invalid team name \"Big Corp\": only lowercase letters, digits, '-' and one inner '__' are allowed",
	    J "23: field \"team.name\": invalid team name \"helpdesk\": starts with a reserved word",
	    J "24: field \"channel.name\": invalid channel name \"-x\": must start with a lowercase letter or digit",
	    J "25: field \"user.username\": invalid username \"all\": is reserved",
	    J "26: field \"emoji.name\": invalid emoji name \"no spaces\": only letters, digits, '-', '+' and '_' are allowed" } },
	{ "bad_values",
	  5,
	  { J "2: field \"scheme.scope\": must be \"team\" or \"channel\", not \"global\"",
	    J "6: field \"team.type\": must be \"O\" or \"I\", not \"X\"",
	    J "9: field \"channel.type\": must be \"O\" or \"P\", not \"D\"",
	    J "14: field \"post.reactions[0].create_at\": earlier than the post's create_at",
	    J "15: field \"post.create_at\": must not be 0" } },
	{ "long_message", 1, { J "16: field \"post.message\": longer than 16383 characters (16384)" } },
	/* ValidateUserImportData refuses a password beside any auth_data, even "" */
	{ "auth_mismatch",
	  2,
	  { J "11: field \"user.auth_data\": auth_data and auth_service must both be set or both be empty",
	    J "11: field \"user.password\": not allowed together with auth_data" } },

	/* references */
	{ "channel_unknown_team",
	  4,
	  { J "9: field \"channel.team\": team \"nope\" is not defined on an earlier line",
	    J "11: field \"user.teams[1].channels[0].name\": channel \"town-square\" of team \"beta\" is not defined on an earlier line",
	    J "12: field \"user.teams[0].channels[0].name\": channel \"town-square\" of team \"beta\" is not defined on an earlier line",
	    J "16: field \"post.channel\": channel \"town-square\" of team \"beta\" is not defined on an earlier line" } },
	{ "team_defined_late",
	  1,
	  { J "8: field \"channel.team\": team \"beta\" is not defined on an earlier line" } },
	{ "scheme_unknown_and_wrong_scope",
	  2,
	  { J "5: field \"team.scheme\": scheme \"no_such_scheme\" is not defined on an earlier line", J
	    "8: field \"channel.scheme\": scheme \"custom_team_scheme\" has scope \"team\", need \"channel\"" } },
	{ "post_unknown_team",
	  1,
	  { J "16: field \"post.team\": team \"nope\" is not defined on an earlier line" } },
	{ "post_unknown_channel",
	  1,
	  { J "16: field \"post.channel\": channel \"random\" of team \"beta\" is not defined on an earlier line" } },
	{ "post_unknown_user",
	  1,
	  { J "14: field \"post.user\": user \"mallory\" is not defined on an earlier line" } },
	{ "reply_unknown_user",
	  1,
	  { J "15: field \"post.replies[0].user\": user \"mallory\" is not defined on an earlier line" } },
	{ "reaction_and_flag_unknown_user",
	  2,
	  { J "14: field \"post.flagged_by[1]\": user \"trent\" is not defined on an earlier line",
	    J "14: field \"post.reactions[0].user\": user \"mallory\" is not defined on an earlier line" } },
	{ "user_unknown_team_and_channel",
	  2,
	  { J "10: field \"user.teams[0].channels[1].name\": channel \"ops\" of team \"acme\" is not defined on an earlier line",
	    J "11: field \"user.teams[1].name\": team \"gamma\" is not defined on an earlier line" } },
	/* issue 11: zip bombs and lying sizes are refused, overlaps before any data is read */
	{ "overlapping_entries",
	  1,
	  { ": entries overlap at byte 3381: a zip bomb or a damaged archive; "
	    "the server refuses it, so its data were not read" } },
	{ "lying_size", 1, { "->data/files/c.txt: sizes 1300/100 declared, 1300/1300 found" } },
	/* the zip check shared with the download step (zipstream) */
	{ "valid_descriptors", 0, { NULL } },
	{ "valid_descriptors_zip64", 0, { NULL } },
	{ "bad_crc_descriptor", 1, { "->data/files/c.txt: CRC mismatch: the entry is corrupt" } },
	{ "lying_central_crc",
	  2,
	  { ": damaged zip archive: the central directory disagrees with the local header "
	    "of 'data/files/c.txt' (name, CRC, sizes, method, flags or time)",
	    "->data/files/c.txt: its local header disagrees with the central directory" } },
	{ "valid_several_jsonl", 0, { NULL } },
	{ "valid_warned_attachment_missing", 0, { NULL } },

	/* an owner that is no user is a plugin id: importBot keeps it as the OwnerId */
	{ "bot_unknown_owner", 0, { NULL } },
	{ "direct_channel_unknown_member",
	  2,
	  { J "18: field \"direct_channel.participants[1].username\": user \"mallory\" is not defined on an earlier line",
	    J "19: field \"direct_channel.members[2]\": user \"trent\" is not defined on an earlier line" } },
	{ "direct_channel_counts",
	  2,
	  { J "18: field \"direct_channel.participants\": must list 2 to 8 members, found 1",
	    J "19: field \"direct_channel.members\": must list 2 to 8 members, found 9" } },
	{ "direct_channel_not_member",
	  1,
	  { J "18: field \"direct_channel.favorited_by[0]\": user \"carol\" is not a member of the channel" } },
	{ "direct_channel_no_members",
	  1,
	  { J "18: field \"direct_channel.participants\": missing, and no \"members\" either" } },
	{ "direct_post_unknown_member",
	  2,
	  { J "20: field \"direct_post.channel_members[1]\": user \"mallory\" is not defined on an earlier line",
	    J "20: field \"direct_post.flagged_by[0]\": user \"bob\" is not a member of the channel" } },
	{ "direct_post_flag_not_member",
	  1,
	  { J "20: field \"direct_post.flagged_by[0]\": user \"carol\" is not a member of the channel" } },

	/* uniqueness */
	{ "duplicate_team",
	  1,
	  { J "22: field \"team.name\": duplicate team \"acme\" (first defined on line 5)" } },
	{ "duplicate_channel",
	  1,
	  { J "22: field \"channel.name\": duplicate channel \"dev\" in team \"acme\" (first defined on line 8)" } },
	{ "duplicate_user_case",
	  1,
	  { J "22: field \"user.username\": duplicate username \"alice\" (first defined on line 10)" } },
	{ "duplicate_bot_user",
	  1,
	  { J "22: field \"bot.username\": duplicate username \"bob\" (first defined on line 11)" } },
	{ "duplicate_emoji",
	  1,
	  { J "22: field \"emoji.name\": duplicate emoji \"party-parrot\" (first defined on line 17)" } },
	{ "duplicate_role_scheme",
	  2,
	  { J "22: field \"role.name\": duplicate role \"custom_role\" (first defined on line 4)", J
	    "23: field \"scheme.name\": duplicate scheme \"custom_channel_scheme\" (first defined on line 3)" } },

	/* attachments */
	{ "missing_attachment",
	  1,
	  { J "20: field \"direct_post.attachments[0].path\": file \"data/files/c.txt\" not in archive" } },
	{ "reply_missing_attachment",
	  1,
	  { J "15: field \"post.replies[0].attachments[0].path\": file \"data/files/b.png\" not in archive" } },
	{ "attachment_data_prefix",
	  1,
	  { J "14: field \"post.attachments[0].path\": file \"data/data/files/a.txt\" not in archive (paths are relative to data/)" } },
	{ "attachment_escapes",
	  1,
	  { J "14: field \"post.attachments[0].path\": path \"../../etc/passwd\" escapes data/" } },
	{ "emoji_missing_image",
	  1,
	  { J "17: field \"emoji.image\": file \"data/emoji/abc/image\" not in archive" } },
};

static void zip_path(const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/%s.zip", dir, name);
}

static struct archive_report *verify(const char *name, const struct archive_opts *opts)
{
	char path[512];
	struct archive_report *rep = NULL;
	struct mm_error err = MM_ERROR_INIT;
	int rc;

	zip_path(name, path, sizeof(path));
	rc = archive_verify(path, opts, &rep, &err);
	CHECK(rc == 0);
	if (rc)
		fprintf(stderr, "%s: %s\n", name, err.msg);
	return rep;
}

static void check_case(const struct expect *e)
{
	struct archive_report *rep = verify(e->name, NULL);
	char path[512], want[1024];
	size_t n = 0;

	if (!rep)
		return;
	zip_path(e->name, path, sizeof(path));
	while (n < 6 && e->errors[n])
		n++;
	if (rep->error_count != e->count || rep->nerrors != n)
		fprintf(stderr, "case %s: %lu errors, %zu shown\n", e->name, rep->error_count, rep->nerrors);
	CHECK(rep->error_count == e->count);
	CHECK(rep->nerrors == n);
	for (size_t i = 0; i < n && i < rep->nerrors; i++) {
		snprintf(want, sizeof(want), "%s%s", path, e->errors[i]);
		CHECK_STR(rep->errors[i], want);
	}
	archive_report_free(rep);
}

/* ---------------------------------------------------------------- the valid one */

static int collect_team(void *ctx, const char *team)
{
	struct buf *b = ctx;

	buf_addf(b, "%s;", team);
	return 0;
}

static int collect_channel(void *ctx, const char *team, const char *channel, unsigned long posts,
			   unsigned long replies)
{
	struct buf *b = ctx;

	buf_addf(b, "%s/%s=%lu+%lu;", team, channel, posts, replies);
	return 0;
}

static int collect_user(void *ctx, const char *username, int is_bot)
{
	struct buf *b = ctx;

	buf_addf(b, "%s%s;", username, is_bot ? "(bot)" : "");
	return 0;
}

static int stop_at_first(void *ctx, const char *team)
{
	(*(int *)ctx)++;
	return 7;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct buf b = BUF_INIT;
	char chunk[65536];
	size_t n;

	if (!f)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_add(&b, chunk, n);
	fclose(f);
	*len = b.len;
	return buf_detach(&b);
}

static void test_valid_full(void)
{
	struct archive_report *rep = verify("valid_full", NULL);
	const struct bulk_counts *c;
	struct buf b = BUF_INIT;
	char path[512], hex[65];
	size_t len = 0;
	char *data;
	int calls = 0;

	if (!rep)
		return;
	c = &rep->counts;
	CHECK(c->roles == 1 && c->schemes == 2 && c->teams == 2 && c->channels == 3);
	CHECK(c->users == 3 && c->bots == 1 && c->emojis == 1 && c->posts == 3 && c->replies == 4);
	CHECK(c->direct_channels == 2 && c->direct_posts == 2 && c->attachments == 3);
	CHECK(rep->lines == 21);
	CHECK(rep->entries == 6);
	CHECK_STR(rep->jsonl, "import.jsonl");
	CHECK(rep->nunused == 0);
	CHECK(rep->export_warnings == 0);

	zip_path("valid_full", path, sizeof(path));
	data = read_file(path, &len);
	CHECK(data != NULL);
	sha256_hex(data, len, hex);
	CHECK_STR(rep->sha256, hex);
	CHECK(rep->size == len);
	free(data);

	archive_report_foreach_team(rep, collect_team, &b);
	CHECK_STR(buf_cstr(&b), "acme;beta;");
	buf_reset(&b);
	archive_report_foreach_channel(rep, collect_channel, &b);
	CHECK_STR(buf_cstr(&b), "acme/town-square=1+2;acme/dev=1+1;beta/town-square=1+0;");
	buf_reset(&b);
	archive_report_foreach_user(rep, collect_user, &b);
	CHECK_STR(buf_cstr(&b), "alice;bob;carol;helper-bot(bot);");
	buf_release(&b);
	CHECK(archive_report_foreach_team(rep, stop_at_first, &calls) == 7);
	CHECK(calls == 1);
	archive_report_free(rep);
}

static void test_unused_and_warnings(void)
{
	struct archive_report *rep = verify("valid_unused_and_warnings", NULL);
	struct archive_opts opts = ARCHIVE_OPTS_INIT;

	if (!rep)
		return;
	CHECK(rep->nunused == 2);
	if (rep->nunused == 2) {
		CHECK_STR(rep->unused[0], "data/files/orphan.bin");
		CHECK_STR(rep->unused[1], "data/files/orphan2.bin");
	}
	CHECK(rep->export_warnings == 2);
	archive_report_free(rep);

	/* without attachment checks, nothing is missing and nothing unused */
	opts.check_attachments = 0;
	rep = verify("valid_unused_and_warnings", &opts);
	if (rep)
		CHECK(rep->nunused == 0);
	archive_report_free(rep);
	rep = verify("missing_attachment", &opts);
	if (rep)
		CHECK(rep->error_count == 0);
	archive_report_free(rep);
}

static void test_max_shown(void)
{
	struct archive_opts opts = ARCHIVE_OPTS_INIT;
	struct archive_report *rep = verify("many_errors", NULL);
	char want[512];

	if (!rep)
		return;
	CHECK(rep->error_count == 120);
	CHECK(rep->nerrors == 50);
	snprintf(want, sizeof(want), "%s/many_errors.zip->import.jsonl:71: blank line", dir);
	if (rep->nerrors == 50)
		CHECK_STR(rep->errors[49], want);
	archive_report_free(rep);

	opts.max_shown = 0;
	if ((rep = verify("many_errors", &opts)))
		CHECK(rep->error_count == 120 && rep->nerrors == 0);
	archive_report_free(rep);
	opts.max_shown = -1;
	if ((rep = verify("many_errors", &opts)))
		CHECK(rep->error_count == 120 && rep->nerrors == 120);
	archive_report_free(rep);
	/* zip problems come first and share the limit */
	opts.max_shown = 1;
	if ((rep = verify("bad_crc_attachment", &opts)))
		CHECK(rep->nerrors == 1 && strstr(rep->errors[0], "CRC mismatch"));
	archive_report_free(rep);
}

static void test_cannot_check(void)
{
	struct archive_report *rep = (struct archive_report *)1;
	struct mm_error err = MM_ERROR_INIT;
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/plain.txt", dir);
	f = fopen(path, "w");
	fputs("not a zip at all\n", f);
	fclose(f);
	CHECK(archive_verify(path, NULL, &rep, &err) == MM_EINVAL);
	CHECK(rep == NULL);
	CHECK_CONTAINS(err.msg, "is not a zip archive");

	err_clear(&err);
	snprintf(path, sizeof(path), "%s/absent.zip", dir);
	CHECK(archive_verify(path, NULL, &rep, &err) == MM_ENOTFOUND);
	CHECK_CONTAINS(err.msg, "cannot open");
	CHECK(archive_verify(dir, NULL, &rep, &err) == MM_EINVAL);
}

static int always_stop(void *ctx)
{
	return 1;
}

static void test_interrupt(void)
{
	struct archive_opts opts = ARCHIVE_OPTS_INIT;
	struct archive_report *rep = NULL;
	struct mm_error err = MM_ERROR_INIT;
	char path[512];

	opts.should_stop = always_stop;
	zip_path("valid_full", path, sizeof(path));
	CHECK(archive_verify(path, &opts, &rep, &err) == MM_EINTR);
	CHECK(rep == NULL);
	CHECK_CONTAINS(err.msg, "interrupted");
}

static void test_bare_jsonl(void)
{
	struct archive_report *rep = NULL;
	struct mm_error err = MM_ERROR_INIT;
	char path[512], want[600];
	FILE *f;

	snprintf(path, sizeof(path), "%s/plain.jsonl", dir);
	f = fopen(path, "w");
	fputs("{\"type\":\"version\",\"version\":1}\n\n"
	      "{\"type\":\"post\",\"post\":{\"team\":\"t1\",\"channel\":\"c\",\"user\":\"u\","
	      "\"message\":\"m\",\"create_at\":1,\"attachments\":[{\"path\":\"nowhere\"}]}}",
	      f);
	fclose(f);
	CHECK(archive_verify_jsonl(path, NULL, &rep, &err) == 0);
	if (!rep)
		return;
	CHECK(rep->lines == 3);
	CHECK(rep->error_count == 3); /* blank line, team and user unknown; no attachment check */
	snprintf(want, sizeof(want), "%s:2: blank line", path);
	CHECK_STR(rep->errors[0], want);
	snprintf(want, sizeof(want),
		 "%s:3: field \"post.team\": team \"t1\" is not defined on an earlier line", path);
	CHECK_STR(rep->errors[1], want);
	CHECK(rep->sha256[0] != '\0');
	archive_report_free(rep);
}

static void test_print_and_json(void)
{
	struct archive_report *rep = verify("valid_unused_and_warnings", NULL);
	char *text = NULL, *js;
	size_t len = 0;
	FILE *f;
	cJSON *j;

	if (!rep)
		return;
	f = open_memstream(&text, &len);
	archive_report_print(rep, f);
	fclose(f);
	CHECK_CONTAINS(text, "Teams            2\n");
	CHECK_CONTAINS(text, "Direct Posts     2\n");
	CHECK_CONTAINS(text, "Unused Attachments (2)\n  data/files/orphan.bin\n");
	CHECK_CONTAINS(text, "the export could not read 2 attachments");
	CHECK_CONTAINS(text, ": no errors\n");
	free(text);

	j = archive_report_json(rep);
	js = cJSON_PrintUnformatted(j);
	CHECK_CONTAINS(js, "\"jsonl\":\"import.jsonl\"");
	CHECK_CONTAINS(js, "\"counts\":{\"roles\":1,\"schemes\":2,\"teams\":2,\"channels\":3,\"users\":3,"
			   "\"bots\":1,\"emojis\":1,\"posts\":3,\"replies\":4,\"direct_channels\":2,\"direct_posts\":2,"
			   "\"attachments\":3}");
	CHECK_CONTAINS(js, "\"error_count\":0,\"errors\":[]");
	CHECK_CONTAINS(js, "\"unused_attachments\":[\"data/files/orphan.bin\",\"data/files/orphan2.bin\"]");
	CHECK_CONTAINS(js, "\"export_warnings\":2");
	CHECK_CONTAINS(js, rep->sha256);
	free(js);
	cJSON_Delete(j);

	j = cJSON_CreateObject();
	archive_report_outputs(rep, j);
	js = cJSON_PrintUnformatted(j);
	CHECK_CONTAINS(
		js,
		"\"lines\":21,\"errors\":0,\"crc_ok\":true,\"unused_attachments\":2,\"counts\":{\"roles\":1,");
	CHECK_CONTAINS(js, rep->sha256);
	CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "size")) == (double)rep->size);
	free(js);
	cJSON_Delete(j);
	archive_report_free(rep);

	rep = verify("blank_line", NULL);
	if (!rep)
		return;
	f = open_memstream(&text, &len);
	archive_report_print(rep, f);
	fclose(f);
	CHECK_CONTAINS(text, "->import.jsonl:7: blank line\n");
	CHECK_CONTAINS(text, ": 2 errors\n");
	free(text);
	archive_report_free(rep);
}

/* Every case the generator writes has its expectations here. */
static void test_all_cases_listed(const char *python)
{
	char cmd[1536], name[128];
	FILE *p;
	int n = 0;

	snprintf(cmd, sizeof(cmd), "%s '%s' --list", python, generator);
	if (!(p = popen(cmd, "r"))) {
		CHECK(0);
		return;
	}
	while (fgets(name, sizeof(name), p)) {
		size_t i;

		name[strcspn(name, "\n")] = '\0';
		n++;
		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
			if (!strcmp(cases[i].name, name))
				break;
		if (i == sizeof(cases) / sizeof(cases[0]) && strcmp(name, "many_errors")) {
			fprintf(stderr, "case %s has no expectations\n", name);
			CHECK(0);
		}
	}
	CHECK(pclose(p) == 0);
	CHECK(n == (int)(sizeof(cases) / sizeof(cases[0])) + 1);
}

int main(void)
{
	const char *python = getenv("PYTHON") ? getenv("PYTHON") : "python3";
	char cmd[1536];

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	find_generator();
	snprintf(cmd, sizeof(cmd), "%s '%s' %s", python, generator, dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "cannot generate the test archives: %s\n", cmd);
		CHECK(0);
		goto out;
	}
	test_all_cases_listed(python);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i]);
	test_valid_full();
	test_unused_and_warnings();
	test_max_shown();
	test_cannot_check();
	test_interrupt();
	test_bare_jsonl();
	test_print_and_json();
out:
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	return check_done();
}

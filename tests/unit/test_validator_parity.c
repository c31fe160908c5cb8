/*
 * Validator parity: every case in tests/validator/cases.jsonl comes from the
 * Mattermost server's own tests (mostly server/channels/app/imports/
 * import_validators_test.go; each line cites its function) and says whether
 * the server accepts the line. Each is run through the bulk-line validator
 * after a prelude that defines what the cases refer to; any disagreement
 * fails the test.
 *
 * Case: {"type":T,"line":{...},"expect":"accept"|"reject","target":"9.11"?,"cite":"..."}.
 * A "version" case is line 1 on its own; the others follow the prelude.
 * Files: names holding "missing" or "not-existing" are absent from the
 * pretend zip, names holding "warned" are absent but listed in warnings.txt,
 * all others are present.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bulkline.h"
#include "check.h"

#define CASES "../validator/cases.jsonl"

static const char *const prelude[] = {
	"{\"type\":\"version\",\"version\":1}",
	"{\"type\":\"scheme\",\"scheme\":{\"name\":\"custom_team\",\"display_name\":\"T\",\"scope\":\"team\","
	"\"default_team_admin_role\":{\"name\":\"a\",\"display_name\":\"a\"},"
	"\"default_team_user_role\":{\"name\":\"b\",\"display_name\":\"b\"},"
	"\"default_channel_admin_role\":{\"name\":\"c\",\"display_name\":\"c\"},"
	"\"default_channel_user_role\":{\"name\":\"d\",\"display_name\":\"d\"}}}",
	"{\"type\":\"scheme\",\"scheme\":{\"name\":\"custom_chan\",\"display_name\":\"C\",\"scope\":\"channel\","
	"\"default_channel_admin_role\":{\"name\":\"e\",\"display_name\":\"e\"},"
	"\"default_channel_user_role\":{\"name\":\"f\",\"display_name\":\"f\"}}}",
	"{\"type\":\"team\",\"team\":{\"name\":\"teamname\",\"display_name\":\"T\",\"type\":\"O\"}}",
	"{\"type\":\"team\",\"team\":{\"name\":\"teamname2\",\"display_name\":\"T2\",\"type\":\"O\"}}",
	"{\"type\":\"channel\",\"channel\":{\"team\":\"teamname\",\"name\":\"channelname\",\"type\":\"O\"}}",
	"{\"type\":\"channel\",\"channel\":{\"team\":\"teamname2\",\"name\":\"other\",\"type\":\"O\"}}",
	"{\"type\":\"user\",\"user\":{\"username\":\"username\",\"email\":\"u@x\"}}",
	"{\"type\":\"user\",\"user\":{\"username\":\"owner\",\"email\":\"o@x\"}}",
	"{\"type\":\"user\",\"user\":{\"username\":\"user1\",\"email\":\"u1@x\"}}",
	"{\"type\":\"user\",\"user\":{\"username\":\"member1\",\"email\":\"m1@x\"}}",
	"{\"type\":\"user\",\"user\":{\"username\":\"member2\",\"email\":\"m2@x\"}}",
	"{\"type\":\"user\",\"user\":{\"username\":\"member3\",\"email\":\"m3@x\"}}",
	"{\"type\":\"user\",\"user\":{\"username\":\"member4\",\"email\":\"m4@x\"}}",
	"{\"type\":\"user\",\"user\":{\"username\":\"member5\",\"email\":\"m5@x\"}}",
	"{\"type\":\"user\",\"user\":{\"username\":\"member6\",\"email\":\"m6@x\"}}",
	"{\"type\":\"user\",\"user\":{\"username\":\"member7\",\"email\":\"m7@x\"}}",
	"{\"type\":\"user\",\"user\":{\"username\":\"member8\",\"email\":\"m8@x\"}}",
	"{\"type\":\"user\",\"user\":{\"username\":\"member9\",\"email\":\"m9@x\"}}",
};

struct tally {
	unsigned long problems;
	char first[512];
};

static void report(void *ctx, unsigned long line, const char *field, const char *msg)
{
	struct tally *t = ctx;

	if (!t->problems++)
		snprintf(t->first, sizeof(t->first), "%lu %s: %s", line, field ? field : "-", msg);
}

static int fake_lookup(void *ctx, const char *name)
{
	(void)ctx;
	if (strstr(name, "missing") || strstr(name, "not-existing"))
		return BULK_ABSENT;
	if (strstr(name, "warned"))
		return BULK_EXCUSED;
	return BULK_PRESENT;
}

static void feed(struct bulk_state *st, const char *s, unsigned long lineno, struct tally *t)
{
	bulk_check_line(st, s, strlen(s), lineno, report, t);
}

/* Runs one case; returns 1 when the validator accepts the line. */
static int run_case(const cJSON *c, struct tally *t)
{
	const char *type = cJSON_GetObjectItem(c, "type")->valuestring;
	const cJSON *target = cJSON_GetObjectItem(c, "target");
	struct bulk_state *st = bulk_state_new();
	cJSON *line = cJSON_CreateObject();
	unsigned long lineno = 1;
	int version = 0;
	char *s;

	bulk_state_set_lookup(st, fake_lookup, NULL);
	if (cJSON_IsString(target) && bulk_parse_version(target->valuestring, &version) == 0)
		bulk_state_set_target(st, version);
	memset(t, 0, sizeof(*t));
	cJSON_AddStringToObject(line, "type", type);
	if (!strcmp(type, "version")) {
		for (const cJSON *m = cJSON_GetObjectItem(c, "line")->child; m; m = m->next)
			cJSON_AddItemToObject(line, m->string, cJSON_Duplicate(m, 1));
	} else {
		cJSON_AddItemToObject(line, type, cJSON_Duplicate(cJSON_GetObjectItem(c, "line"), 1));
		for (size_t i = 0; i < sizeof(prelude) / sizeof(prelude[0]); i++)
			feed(st, prelude[i], lineno++, t);
		CHECK(t->problems == 0);
	}
	s = cJSON_PrintUnformatted(line);
	feed(st, s, lineno, t);
	free(s);
	cJSON_Delete(line);
	bulk_state_free(st);
	return t->problems == 0;
}

static char *read_line(FILE *f)
{
	size_t cap = 0;
	char *l = NULL;
	ssize_t n = getline(&l, &cap, f);

	if (n <= 0) {
		free(l);
		return NULL;
	}
	return l;
}

int main(void)
{
	FILE *f = fopen(CASES, "r");
	unsigned long total = 0, agree = 0;
	char *l;

	CHECK(f != NULL);
	if (!f)
		return check_done();
	while ((l = read_line(f))) {
		cJSON *c = cJSON_Parse(l);
		struct tally t;
		int want, got;

		free(l);
		CHECK(c != NULL);
		if (!c)
			continue;
		want = !strcmp(cJSON_GetObjectItem(c, "expect")->valuestring, "accept");
		got = run_case(c, &t);
		total++;
		if (got == want) {
			agree++;
		} else {
			char *s = cJSON_PrintUnformatted(cJSON_GetObjectItem(c, "line"));

			fprintf(stderr, "disagree: %s case (%s) %.300s: server %s, validator %s%s%s\n",
				cJSON_GetObjectItem(c, "type")->valuestring,
				cJSON_GetObjectItem(c, "cite")->valuestring, s, want ? "accepts" : "rejects",
				got ? "accepts" : "rejects", t.problems ? ": " : "", t.first);
			free(s);
		}
		cJSON_Delete(c);
	}
	fclose(f);
	printf("validator parity: %lu/%lu cases agree with the server\n", agree, total);
	CHECK(total > 0 && agree == total);
	return check_done();
}

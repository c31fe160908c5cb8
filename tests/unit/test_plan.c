/*
 * Plan loading: each bad plan must produce exactly the expected
 * "LINE:COL: message" diagnostics, and a good plan none.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "check.h"
#include "plan.h"
#include "steps.h"

#define GOOD_HEAD "version: 1\nname: t\n"
#define SERVERS                          \
	"servers:\n"                     \
	"  src:\n"                       \
	"    url: https://src.example\n" \
	"    token: ${env:SRC_TOKEN}\n"

struct bad_case {
	const char *yaml;
	const char *want; /* every diagnostic as "L:C: msg", joined by '\n' */
};

static const struct bad_case bad[] = {
	/* 1 */ { "version: 1\nname: t\nsteps:\n  - {id: a, type: exec, comand: x}\n",
		  "4:5: step 'a' (type exec) needs 'command'\n4:25: unknown key 'comand' in an exec step; did you mean 'command'?" },
	/* 2 */
	{ "version: 2\nname: t\nsteps:\n  - {id: a, type: exec, command: x}\n",
	  "1:10: unsupported plan version '2'; this mmigrate reads version 1" },
	/* 3 */ { "name: t\nsteps:\n  - {id: a, type: exec, command: x}\n", "1:1: the plan has no 'version' (write 'version: 1')" },
	/* 4 */
	{ "version: 1\nname: t\nsteps:\n  - {id: a, type: exec, command: x}\n  - {id: a, type: exec, command: y}\n",
	  "5:10: duplicate step id 'a' (first at line 4)" },
	/* 5 */ { "version: 1\nname: t\nsteps:\n  - {id: a, type: exce, command: x}\n", "4:19: unknown step type 'exce'; did you mean 'exec'?" },
	/* 6 */
	{ "version: 1\nname: t\nsteps:\n  - {id: a, type: exec, command: x, timeout: soon}\n",
	  "4:46: 'timeout' must be a duration like 90s, 15m, 12h or 1h30m, not 'soon'" },
	/* 7 */ { "version: 1\nname: t\nsteps:\n  - {id: a, type: exec, command: [x]}\n", "4:34: 'command' must be a string, not a list" },
	/* 8 */
	{ "version: 1\nname: t\nsteps:\n  - {id: a, type: exec, command: \"${steps.b.stdout}\"}\n  - {id: b, type: exec, command: y}\n",
	  "4:34: step 'b' runs later; a step can only use outputs of earlier steps" },
	/* 9 */
	{ "version: 1\nname: t\nsteps:\n  - {id: a, type: exec, command: \"${steps.nope.stdout}\"}\n",
	  "4:34: reference to unknown step 'nope'" },
	/* 10 */
	{ "version: 1\nname: t\nsteps:\n  - {id: a, type: exec, command: x}\n  - {id: b, type: exec, command: \"${steps.a.stdot}\"}\n",
	  "5:34: step 'a' (type exec) has no output 'stdot'; did you mean 'stdout'?" },
	/* 11 */
	{ "version: 1\nname: t\nsteps:\n  - {id: a, type: exec, command: \"${steps.a.stdout}\"}\n",
	  "4:34: step 'a' cannot use its own output 'stdout'" },
	/* 12 */
	{ "version: 1\nname: t\nsteps:\n  - {id: a, type: exec, command: \"${nope:x}\"}\n",
	  "4:34: unknown interpolation '${nope:x}': expected ${env:NAME}, ${file:PATH} or ${steps.ID.KEY}" },
	/* 13 */
	{ "version: 1\nname: t\nsteps:\n  - {id: a, type: exec, command: \"${env:X\"}\n",
	  "4:34: unterminated '${' (write '$${' for a literal '${')" },
	/* 14 */
	{ "version: 1\nname: t\nservers:\n  src:\n    url: https://x\n    token: literal-token-value\nsteps:\n  - {id: a, type: exec, command: x}\n",
	  "6:12: server 'src': 'token' must be ${env:NAME} or ${file:PATH}; a literal secret does not belong in a plan file" },
	/* 15 */
	{ "version: 1\nname: t\nservers:\n  src:\n    url: https://x\n    username: admin\n    password: hunter2\nsteps:\n  - {id: a, type: exec, command: x}\n",
	  "7:15: server 'src': 'password' must be ${env:NAME} or ${file:PATH}; a literal secret does not belong in a plan file" },
	/* 16 */
	{ "version: 1\nname: t\nservers:\n  src:\n    url: https://x\n    username: admin\n    password: ${env:P}\n    mfa: \"123456\"\nsteps:\n  - {id: a, type: exec, command: x}\n",
	  "8:10: server 'src': 'mfa' must be ${env:NAME} or ${file:PATH}; a literal secret does not belong in a plan file" },
	/* 17 */
	{ "version: 1\nname: t\nservers:\n  src:\n    urll: https://x\n    token: ${env:T}\nsteps:\n  - {id: a, type: exec, command: x}\n",
	  "5:5: unknown key 'urll' in a server; did you mean 'url'?\n5:5: server 'src' needs 'url' (or 'socket' for local mode)" },
	/* 18 */ { "version: 1\nname: t\nsteps:\n  - {id: a, type: exec, command: x, server: src}\n", "4:45: an exec step takes no 'server'" },
	/* 19 */
	{ "version: 1\nname: t\nstep:\n  - {id: a, type: exec, command: x}\n",
	  "1:1: the plan has no 'steps'\n3:1: unknown key 'step' in the plan; did you mean 'steps'?" },
	/* 20 */
	{ "version: 1\nname: bad name\nsteps:\n  - {id: a, type: exec, command: x}\n",
	  "2:7: plan name 'bad name' may only use letters, digits, '.', '_', '-'" },
	/* 21 */ { "version: 1\nname: t\nsteps:\n  - {id: a, type: exec, command: x, command: y}\n", "4:37: duplicate key 'command'" },
	/* 22 */
	{ "version: 1\nname: t\nsteps:\n  - {id: a, type: exec, command: x\n",
	  "5:1: invalid YAML: did not find expected ',' or '}' while parsing a flow mapping" },
	/* 23 */ { "version: 1\nname: t\nsteps: {}\n", "3:8: 'steps' must be a list of steps" },
	/* 24 */ { "version: 1\nname: t\nsteps:\n  - just a string\n", "4:5: a step must be a mapping, not a scalar" },
	/* 25 */ { "version: 1\nname: t\nsteps:\n  - {type: exec, command: x}\n", "4:5: step 1 has no 'id'" },
	/* 26 */ { "version: 1\nname: t\nsteps:\n  - {id: a, command: x}\n", "4:5: step a has no 'type'" },
	/* 27 */
	{ "version: 1\nname: t\nsteps:\n  - {id: \"a b\", type: exec, command: x}\n",
	  "4:10: step id 'a b' may only use letters, digits, '_' and '-'" },
	/* 28 */
	{ "version: 1\nname: t\ndefaults: {retries: -1}\nsteps:\n  - {id: a, type: exec, command: x}\n",
	  "3:21: 'retries' must be a whole number >= 0" },
	/* 29 */
	{ "version: 1\nname: t\nx: &a 1\ny: *a\nsteps:\n  - {id: a, type: exec, command: x}\n",
	  "4:4: YAML aliases are not supported in plans: write the value out" },
	/* 30 */ { "- 1\n- 2\n", "1:1: a plan must be a mapping with 'version', 'name' and 'steps'" },
	/* 31 */ { "", "1:1: the plan is empty" },
	/* 32 */
	{ "version: 1\nname: t\nservers:\n  src:\n    url: ftp://x\n    token: ${env:T}\nsteps:\n  - {id: a, type: exec, command: x}\n",
	  "5:10: server 'src': url must start with https:// or http://" },
	/* 33 */
	{ "version: 1\nname: t\nservers:\n  src:\n    url: https://x\n    token: ${env:T}\n    username: ${env:U}\n    password: ${env:P}\nsteps:\n  - {id: a, type: exec, command: x}\n",
	  "7:15: server 'src': use either 'token' or 'username'/'password', not both" },
	/* 34 */
	{ "version: 1\nname: t\nservers:\n  src:\n    url: https://x\nsteps:\n  - {id: a, type: exec, command: x}\n",
	  "5:5: server 'src' needs credentials: 'token', or 'username' and 'password'" },
	/* 35 */
	{ "version: 1\nname: t\nsteps:\n  - {id: a, type: exec, command: x}\n---\nversion: 1\n",
	  "5:1: a plan holds one YAML document; found another" },
	/* 36 */
	{ "version: 1\nname: t\nsteps:\n  - {id: a, type: exec, command: \"${steps.a}\"}\n",
	  "4:34: bad step reference '${steps.a}': expected ${steps.ID.KEY}" },
	/* 37 */ { "version: 1\nname: t\nsteps: []\n", "3:8: 'steps' is empty" },
	/* 38 */
	{ "version: 1\nname: t\nsteps:\n  - {id: a, type: exec, command: x, timeout: 10x}\n",
	  "4:46: 'timeout' must be a duration like 90s, 15m, 12h or 1h30m, not '10x'" },
};

/* The diagnostics in print order (diags_print sorts them), without the file name. */
static char *diags_text(struct diags *d)
{
	struct buf b = BUF_INIT;
	FILE *devnull = fopen("/dev/null", "w");

	diags_print(d, devnull);
	fclose(devnull);
	for (size_t i = 0; i < d->n; i++)
		buf_addf(&b, "%s%d:%d: %s", i ? "\n" : "", d->v[i].line, d->v[i].col, d->v[i].msg);
	return buf_detach(&b);
}

static void test_bad_plans(void)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct diags d = DIAGS_INIT;
		struct plan *p = NULL;
		int ret = plan_load("t.yaml", bad[i].yaml, strlen(bad[i].yaml), step_types_all(), &p, &d);
		char *got = diags_text(&d);

		CHECK(ret == MM_EINVAL);
		CHECK(p == NULL);
		if (strcmp(got, bad[i].want))
			fprintf(stderr, "bad plan %zu:\n", i + 1);
		CHECK_STR(got, bad[i].want);
		free(got);
		diags_release(&d);
		plan_free(p);
	}
}

static void test_good_plan(void)
{
	const char *y = GOOD_HEAD SERVERS
		"state_dir: st\n"
		"steps:\n"
		"  - id: a\n"
		"    type: exec\n"
		"    command: echo hi\n"
		"    timeout: 1h30m\n"
		"  - {id: b, type: exec, command: \"echo ${steps.a.stdout} $${literal}\"}\n";
	struct diags d = DIAGS_INIT;
	struct plan *p = NULL;

	CHECK(plan_load("/tmp/dir/t.yaml", y, strlen(y), step_types_all(), &p, &d) == 0);
	CHECK(d.n == 0);
	if (!p)
		return;
	CHECK_STR(p->name, "t");
	CHECK(p->nsteps == 2);
	CHECK(p->nservers == 1);
	CHECK_STR(p->steps[1].id, "b");
	CHECK(p->steps[1].node->line == 13);
	CHECK_STR(p->state_dir, "/tmp/dir/st");
	CHECK(plan_server_find(p, "src") != NULL);
	plan_free(p);
	diags_release(&d);
}

static void test_default_state_dir(void)
{
	const char *y = GOOD_HEAD "steps:\n  - {id: a, type: exec, command: x}\n";
	struct diags d = DIAGS_INIT;
	struct plan *p = NULL;

	CHECK(plan_load("/srv/plans/t.yaml", y, strlen(y), step_types_all(), &p, &d) == 0);
	if (p)
		CHECK_STR(p->state_dir, "/srv/plans/.mmigrate/t");
	plan_free(p);
	diags_release(&d);
}

static void test_missing_file(void)
{
	struct diags d = DIAGS_INIT;
	struct plan *p = NULL;

	CHECK(plan_load("/nonexistent/plan.yaml", NULL, 0, step_types_all(), &p, &d) == MM_ERR);
	CHECK(d.n == 1 && d.v[0].line == 0);
	CHECK_CONTAINS(d.v[0].msg, "cannot read plan");
	diags_release(&d);
}

int main(void)
{
	test_bad_plans();
	test_good_plan();
	test_default_state_dir();
	test_missing_file();
	return check_done();
}

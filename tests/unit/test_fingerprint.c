/*
 * Fingerprints: canonical key order, CRLF-insensitive plans, and a changed
 * upstream output changes the downstream fingerprint (and nothing else does).
 */
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "check.h"
#include "plan.h"
#include "steps.h"
#include "run.h"

static const char *plan_a = "version: 1\nname: t\nstate_dir: /tmp/mm-fp-unused\nsteps:\n"
			    "  - {id: up, type: exec, command: echo 1}\n"
			    "  - {id: down, type: exec, command: \"use ${steps.up.stdout}\", timeout: 60s}\n"
			    "  - {id: other, type: exec, command: echo 2}\n";
/* Same plan: keys reordered, CRLF line ends, 60s written as 1m. */
static const char *plan_b = "version: 1\r\nname: t\r\nstate_dir: /tmp/mm-fp-unused\r\nsteps:\r\n"
			    "  - {command: echo 1, type: exec, id: up}\r\n"
			    "  - {timeout: 1m, command: \"use ${steps.up.stdout}\", type: exec, id: down}\r\n"
			    "  - {id: other, command: echo 2, type: exec}\r\n";

static void fingerprints(const char *yaml, const char *up_stdout, char fps[3][65])
{
	struct diags d = DIAGS_INIT;
	struct plan *p = NULL;
	struct state st = { 0 };
	struct run r = { 0 };
	struct mm_error err = MM_ERROR_INIT;

	CHECK(plan_load("/tmp/t.yaml", yaml, strlen(yaml), step_types_all(), &p, &d) == 0);
	st.root = cJSON_Parse("{\"steps\":{\"up\":{\"status\":\"done\",\"outputs\":{\"exit_code\":0}}}}");
	cJSON_AddStringToObject(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(st.root, "steps"),
									"up"),
						    "outputs"),
				"stdout", up_stdout);
	r.plan = p;
	r.state = &st;
	for (size_t i = 0; p && i < 3; i++) {
		char *unknown = NULL;

		CHECK(sched_resolve(&r, &p->steps[i], fps[i], &unknown, &err) == 0);
		free(unknown);
	}
	cJSON_Delete(st.root);
	plan_free(p);
	diags_release(&d);
}

/* A tuning key (how long to wait) is not part of what the step does. */
static const char *plan_c = "version: 1\nname: t\nstate_dir: /tmp/mm-fp-unused\nsteps:\n"
			    "  - {id: up, type: exec, command: echo 1}\n"
			    "  - {id: down, type: exec, command: \"use ${steps.up.stdout}\", timeout: 2h}\n"
			    "  - {id: other, type: exec, command: echo 2}\n";

/* A consumer of a download: the same path string with other bytes is another input. */
static const char *plan_dl = "version: 1\nname: t\nstate_dir: /tmp/mm-fp-unused\nsteps:\n"
			     "  - {id: dl, type: download, url: \"http://127.0.0.1:9/a.zip\"}\n"
			     "  - {id: chk, type: verify, archive: \"${steps.dl.path}\"}\n";

static void consumer_fp(const char *sha, char fp[65])
{
	struct diags d = DIAGS_INIT;
	struct plan *p = NULL;
	struct state st = { 0 };
	struct run r = { 0 };
	struct mm_error err = MM_ERROR_INIT;
	char *unknown = NULL;
	cJSON *outs;

	CHECK(plan_load("/tmp/t.yaml", plan_dl, strlen(plan_dl), step_types_all(), &p, &d) == 0);
	st.root = cJSON_Parse("{\"steps\":{\"dl\":{\"status\":\"done\",\"outputs\":"
			      "{\"path\":\"/tmp/a.zip\",\"size\":10}}}}");
	outs = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(st.root, "steps"), "dl"), "outputs");
	cJSON_AddStringToObject(outs, "sha256", sha);
	r.plan = p;
	r.state = &st;
	CHECK(p && sched_resolve(&r, &p->steps[1], fp, &unknown, &err) == 0);
	CHECK(p && cJSON_GetObjectItem(p->steps[1].inputs, "steps.dl.path") != NULL);
	free(unknown);
	cJSON_Delete(st.root);
	plan_free(p);
	diags_release(&d);
}

int main(void)
{
	char a[3][65], b[3][65], c[3][65], t[3][65];
	cJSON *x = cJSON_Parse("{\"b\":1,\"a\":{\"d\":[1,2],\"c\":\"x\"}}");
	cJSON *y = cJSON_Parse("{\"a\":{\"c\":\"x\",\"d\":[1,2]},\"b\":1}");
	cJSON *z = cJSON_Parse("{\"a\":{\"c\":\"x\",\"d\":[2,1]},\"b\":1}");
	char *cx = json_canonical(x), *cy = json_canonical(y), *changed;

	CHECK_STR(cx, "{\"a\":{\"c\":\"x\",\"d\":[1,2]},\"b\":1}");
	CHECK_STR(cx, cy);
	changed = json_changed_keys(x, z);
	CHECK_STR(changed, "a");
	free(changed);
	free(cx);
	free(cy);
	cJSON_Delete(x);
	cJSON_Delete(y);
	cJSON_Delete(z);

	fingerprints(plan_a, "1", a);
	fingerprints(plan_b, "1", b);
	fingerprints(plan_a, "2", c);
	for (int i = 0; i < 3; i++)
		CHECK_STR(a[i], b[i]);  /* order, CRLF and duration spelling do not matter */
	CHECK_STR(a[0], c[0]);          /* the upstream's own definition did not change */
	CHECK(strcmp(a[1], c[1]) != 0); /* its output did: downstream re-runs */
	CHECK_STR(a[2], c[2]);          /* an unrelated step does not */
	fingerprints(plan_c, "1", t);
	CHECK_STR(a[1], t[1]); /* a changed timeout resumes, it does not restart */

	{
		char s1[65], s2[65], s3[65];

		consumer_fp("aa", s1);
		consumer_fp("aa", s2);
		consumer_fp("bb", s3);
		CHECK_STR(s1, s2);          /* the same bytes again: no cascade */
		CHECK(strcmp(s1, s3) != 0); /* other bytes at the same path: the consumer re-runs */
	}
	return check_done();
}

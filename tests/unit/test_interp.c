#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "interp.h"

static const cJSON *fake_output(void *ctx, const char *step, const char *key, struct mm_error *err)
{
	cJSON *outs = ctx;

	if (strcmp(step, "dl")) {
		err_set(err, MM_ENOTFOUND, "step '%s' has not finished", step);
		return NULL;
	}
	return cJSON_GetObjectItem(outs, key);
}

static char *expand(const char *s, cJSON *outs, struct mm_error *err)
{
	struct interp_env env = { "/tmp", fake_output, outs };
	char *out = NULL;

	err_clear(err);
	if (interp_expand(s, &env, &out, err) < 0)
		return NULL;
	return out;
}

int main(void)
{
	struct mm_error err = MM_ERROR_INIT;
	cJSON *outs = cJSON_Parse("{\"path\":\"/a/b.zip\",\"size\":1234567890123,\"ok\":true,\"obj\":{}}");
	char tmpl[] = "/tmp/mmigrate-interp-XXXXXX", *s;
	int fd;

	setenv("MM_T_VAR", "value", 1);
	unsetenv("MM_T_UNSET");
	CHECK_STR(s = expand("a ${env:MM_T_VAR} b", outs, &err), "a value b");
	free(s);
	CHECK_STR(s = expand("$${env:MM_T_VAR}", outs, &err), "${env:MM_T_VAR}");
	free(s);
	CHECK_STR(s = expand("${steps.dl.path}", outs, &err), "/a/b.zip");
	free(s);
	CHECK_STR(s = expand("${steps.dl.size}", outs, &err), "1234567890123");
	free(s);
	CHECK_STR(s = expand("${steps.dl.ok}", outs, &err), "true");
	free(s);
	CHECK(expand("${steps.dl.obj}", outs, &err) == NULL);
	CHECK_CONTAINS(err.msg, "is not a scalar");
	CHECK(expand("${env:MM_T_UNSET}", outs, &err) == NULL);
	CHECK_STR(err.msg, "environment variable 'MM_T_UNSET' is not set");
	CHECK(expand("${steps.other.x}", outs, &err) == NULL);
	CHECK_CONTAINS(err.msg, "has not finished");
	CHECK(expand("${env:1BAD}", outs, &err) == NULL);
	CHECK_CONTAINS(err.msg, "bad variable name");
	CHECK(expand("tail ${", outs, &err) == NULL);
	CHECK_CONTAINS(err.msg, "unterminated");

	/* ${file:...}: one trailing newline dropped, no more; the value never in messages. */
	fd = mkstemp(tmpl);
	CHECK(write(fd, "s3cret\n\n", 8) == 8);
	close(fd);
	{
		char ref[128];

		snprintf(ref, sizeof(ref), "${file:%s}", tmpl);
		CHECK_STR(s = expand(ref, outs, &err), "s3cret\n");
		interp_free_secret(s);
		snprintf(ref, sizeof(ref), "${file:%s}", tmpl + 5); /* relative to plan dir /tmp */
		CHECK_STR(s = expand(ref, outs, &err), "s3cret\n");
		interp_free_secret(s);
	}
	unlink(tmpl);
	CHECK(expand("${file:/nonexistent/secret}", outs, &err) == NULL);
	CHECK_CONTAINS(err.msg, "cannot read '/nonexistent/secret'");

	CHECK(interp_has_refs("a ${env:X}"));
	CHECK(!interp_has_refs("a $${env:X}"));
	CHECK(!interp_has_refs("plain"));
	cJSON_Delete(outs);
	return check_done();
}

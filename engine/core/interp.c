#include "interp.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "util.h"

static int valid_env_name(const char *s)
{
	if (!*s || !(isalpha((unsigned char)*s) || *s == '_'))
		return 0;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_'))
			return 0;
	return 1;
}

static int valid_ident(const char *s, size_t n)
{
	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '-'))
			return 0;
	return 1;
}

/*
 * Splits the body of one ${...} into source and argument. For steps.ID.KEY,
 * *key points into body (after the last '.').
 */
static int parse_ref(char *body, enum interp_source *src, char **arg, char **key, struct mm_error *err)
{
	*key = NULL;
	if (!strncmp(body, "env:", 4)) {
		*src = INTERP_ENV;
		*arg = body + 4;
		if (!valid_env_name(*arg))
			return err_set(err, MM_EINVAL, "bad variable name in '${%s}'", body);
		return 0;
	}
	if (!strncmp(body, "file:", 5)) {
		*src = INTERP_FILE;
		*arg = body + 5;
		if (!**arg)
			return err_set(err, MM_EINVAL, "empty path in '${%s}'", body);
		return 0;
	}
	if (!strncmp(body, "steps.", 6)) {
		char *dot = strchr(body + 6, '.');

		*src = INTERP_STEP;
		*arg = body + 6;
		if (!dot || !valid_ident(*arg, (size_t)(dot - *arg)) || !valid_ident(dot + 1, strlen(dot + 1)))
			return err_set(err, MM_EINVAL, "bad step reference '${%s}': expected ${steps.ID.KEY}",
				       body);
		*dot = '\0';
		*key = dot + 1;
		return 0;
	}
	return err_set(err, MM_EINVAL,
		       "unknown interpolation '${%s}': expected ${env:NAME}, ${file:PATH} or ${steps.ID.KEY}",
		       body);
}

/*
 * Walks s; literal text goes to lit (if non-NULL), each reference to ref.
 * The one parser both scanning and expanding use.
 */
static int walk(const char *s, struct buf *lit,
		int (*ref)(void *ctx, enum interp_source, const char *, const char *, struct mm_error *),
		void *ctx, struct mm_error *err)
{
	while (*s) {
		const char *end;
		char *body = NULL, *arg = NULL, *key = NULL;
		enum interp_source src = INTERP_ENV;
		int ret;

		if (s[0] == '$' && s[1] == '$' && s[2] == '{') {
			if (lit)
				buf_adds(lit, "${");
			s += 3;
			continue;
		}
		if (s[0] != '$' || s[1] != '{') {
			if (lit)
				buf_addc(lit, *s);
			s++;
			continue;
		}
		end = strchr(s + 2, '}');
		if (!end)
			return err_set(err, MM_EINVAL, "unterminated '${' (write '$${' for a literal '${')");
		body = xstrndup(s + 2, (size_t)(end - s - 2));
		ret = parse_ref(body, &src, &arg, &key, err);
		if (!ret && ref)
			ret = ref(ctx, src, arg, key, err);
		free(body);
		if (ret < 0)
			return ret;
		s = end + 1;
	}
	return 0;
}

struct scan_ctx {
	interp_ref_fn fn;
	void *ctx;
};

static int scan_ref(void *ctx, enum interp_source src, const char *arg, const char *key, struct mm_error *err)
{
	struct scan_ctx *sc = ctx;

	if (sc->fn)
		sc->fn(sc->ctx, src, arg, key);
	return 0;
}

int interp_scan(const char *s, interp_ref_fn fn, void *ctx, struct mm_error *err)
{
	struct scan_ctx sc = { fn, ctx };

	return walk(s, NULL, scan_ref, &sc, err);
}

int interp_has_refs(const char *s)
{
	for (; *s; s++) {
		if (s[0] == '$' && s[1] == '$' && s[2] == '{')
			s += 2;
		else if (s[0] == '$' && s[1] == '{')
			return 1;
	}
	return 0;
}

static int read_secret_file(const char *path, struct buf *out, struct mm_error *err)
{
	int ret = 0;

	if (buf_read_file(out, path) < 0)
		ret = err_set(err, MM_ERR, "cannot read '%s': %s", path, strerror(errno));
	if (out->len && out->data[out->len - 1] == '\n')
		out->data[--out->len] = '\0';
	if (out->len && out->data[out->len - 1] == '\r')
		out->data[--out->len] = '\0';
	return ret;
}

struct expand_ctx {
	const struct interp_env *env;
	struct buf *out;
};

static int expand_step(const struct interp_env *env, const char *id, const char *key, struct buf *out,
		       struct mm_error *err)
{
	const cJSON *v = env->step_output ? env->step_output(env->ctx, id, key, err) : NULL;

	if (!v) {
		if (!err->msg[0])
			err_set(err, MM_EINVAL, "'${steps.%s.%s}' is not available", id, key);
		return err->code ? err->code : MM_EINVAL;
	}
	if (cJSON_IsString(v))
		buf_adds(out, v->valuestring);
	else if (cJSON_IsNumber(v))
		buf_addf(out, "%.0f", v->valuedouble);
	else if (cJSON_IsBool(v))
		buf_adds(out, cJSON_IsTrue(v) ? "true" : "false");
	else
		return err_set(err, MM_EINVAL, "'${steps.%s.%s}' is not a scalar", id, key);
	return 0;
}

static int expand_ref(void *ctx, enum interp_source src, const char *arg, const char *key, struct mm_error *err)
{
	struct expand_ctx *ec = ctx;
	const char *v;
	char *path;
	int ret;

	switch (src) {
	case INTERP_ENV:
		v = getenv(arg);
		if (!v)
			return err_set(err, MM_EINVAL, "environment variable '%s' is not set", arg);
		buf_adds(ec->out, v);
		return 0;
	case INTERP_FILE:
		if (arg[0] == '/' || !ec->env->plan_dir) {
			path = xstrdup(arg);
		} else {
			struct buf p = BUF_INIT;

			buf_addf(&p, "%s/%s", ec->env->plan_dir, arg);
			path = buf_detach(&p);
		}
		ret = read_secret_file(path, ec->out, err);
		free(path);
		return ret;
	case INTERP_STEP: return expand_step(ec->env, arg, key, ec->out, err);
	}
	return MM_ERR;
}

int interp_expand(const char *s, const struct interp_env *env, char **out, struct mm_error *err)
{
	struct buf b = BUF_INIT;
	struct expand_ctx ec = { env, &b };
	int ret = walk(s, &b, expand_ref, &ec, err);

	if (ret < 0) {
		OPENSSL_cleanse(b.data, b.cap);
		buf_release(&b);
		return ret;
	}
	*out = buf_detach(&b);
	return 0;
}

void interp_free_secret(char *s)
{
	if (!s)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

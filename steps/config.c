/*
 * config: patch server settings for the migration (raise
 * FileSettings.MaxFileSize before an import upload, say) and put them back
 * later.
 *
 *   - {id: raise, type: config, server: target,
 *      set: ["FileSettings.MaxFileSize=10GiB", "ServiceSettings.ReadTimeout=1200"]}
 *   ...
 *   - {id: lower, type: config, server: target, restore: "${steps.raise.previous}"}
 *
 * `set` is a list of "Dotted.Setting.Path=value" strings rather than a
 * mapping: the parameter table has no mapping kind, and a list keeps the
 * order in which settings are reported. Each value is typed by what
 * GET /api/v4/config holds at that path: a number (a size such as 10GiB is
 * accepted for numbers), true/false, or a string. A key may itself contain
 * dots (plugin ids under PluginSettings.Plugins); each level takes the
 * shortest run of segments the server's config has.
 *
 * `restore` takes the `previous` output of an earlier config step: a JSON
 * object of the values that step replaced. Referencing it with
 * ${steps.ID.previous} makes the engine fingerprint it, so the restore runs
 * again whenever the values to restore change.
 *
 * Order of a run: GET the config, record the old values in the checkpoint
 * (before any write, so a run killed after the patch still knows what to
 * put back), PUT /config/patch only what differs, GET again and check every
 * value stuck (Cloud and RestrictSystemAdmin silently ignore writes to
 * restricted settings, API doc 7.3). Settings the server masks (secrets),
 * settings it hides, ImportSettings.Directory and PluginSettings.EnableUploads
 * are refused: their old value cannot be read back, or the server refuses
 * every change to them.
 *
 * Known gap: when a finished `set` step runs again because its definition
 * changed (10GiB edited to 20GiB before the restore ran), the engine has
 * already dropped its earlier outputs, so the "old" values it records are
 * the ones it set itself, and a restore puts those back. Run the restore
 * first, or 'mmigrate reset' both steps after restoring by hand.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "interp.h"
#include "jobs.h"
#include "mm.h"
#include "plan.h"
#include "step.h"
#include "util.h"

#define CONFIG_MASK "********************************" /* 32: the server's secret mask */
#define CONFIG_SHOW 80                                 /* longest value shown in a message */

static const struct param_spec config_params[] = {
	{ .name = "set", .kind = P_STRLIST, .doc = "settings to change, each \"Section.Setting=value\"" },
	{ .name = "restore",
	  .kind = P_STEPREF,
	  .ref_output = "previous",
	  .doc = "put back what an earlier config step changed: its id (or ${steps.ID.previous})" },
	{ NULL },
};

static const char *const config_outputs[] = { "changed", "previous", NULL };

/* Settings the server refuses to change through the API (403 not_allowed_security). */
static const char *const config_locked[] = { "ImportSettings.Directory", "PluginSettings.EnableUploads", NULL };

/*
 * Secrets (API doc 7.1). The server masks them only when set, so an empty
 * one reads as "" and would pass the mask test; writing one would put it
 * into the state, the journal and the step's log. Plugin secrets are only
 * recognisable by their mask.
 */
static const char *const config_secrets[] = {
	"LdapSettings.BindPassword",
	"FileSettings.PublicLinkSalt",
	"FileSettings.AmazonS3SecretAccessKey",
	"EmailSettings.SMTPPassword",
	"GitLabSettings.Secret",
	"GoogleSettings.Secret",
	"Office365Settings.Secret",
	"OpenIdSettings.Secret",
	"SqlSettings.DataSource",
	"SqlSettings.DataSourceReplicas",
	"SqlSettings.AtRestEncryptKey",
	"ElasticsearchSettings.Password",
	"MessageExportSettings.GlobalRelaySettings.SMTPPassword",
	"ServiceSettings.SplitKey",
	"CacheSettings.RedisPassword",
	NULL,
};

struct setting {
	char *path;  /* "FileSettings.MaxFileSize", as written */
	char *raw;   /* `set`: the value as written; NULL for restore */
	cJSON *want; /* the value to have, typed */
	cJSON *old;  /* the value before this step changed anything */
	cJSON *keys; /* the path split the way the server's config nests it */
};

struct settings {
	struct setting *v;
	size_t n;
};

static void settings_free(struct settings *ss)
{
	for (size_t i = 0; i < ss->n; i++) {
		free(ss->v[i].path);
		free(ss->v[i].raw);
		cJSON_Delete(ss->v[i].want);
		cJSON_Delete(ss->v[i].old);
		cJSON_Delete(ss->v[i].keys);
	}
	free(ss->v);
	ss->v = NULL;
	ss->n = 0;
}

static struct setting *settings_add(struct settings *ss, const char *path, size_t len)
{
	struct setting *s;

	ss->v = xrealloc(ss->v, (ss->n + 1) * sizeof(*ss->v));
	s = &ss->v[ss->n++];
	memset(s, 0, sizeof(*s));
	s->path = xstrndup(path, len);
	return s;
}

/* The server matches setting names without regard to case (Go's JSON decoding). */
static int in_list(const char *const *list, const char *path)
{
	for (; *list; list++)
		if (!strcasecmp(*list, path))
			return 1;
	return 0;
}

/* NULL when the step may change the setting, else why not. */
static const char *forbidden(const char *path)
{
	if (in_list(config_locked, path))
		return "cannot be changed through the API (the server refuses with not_allowed_security)";
	if (in_list(config_secrets, path))
		return "is a secret; config steps do not change secrets (the old value cannot be read back, "
		       "and the new one would land in the state and the log)";
	return NULL;
}

/* NULL when fine, else why the dotted path cannot name a setting. */
static const char *path_problem(const char *path)
{
	size_t len = strlen(path);

	if (!len)
		return "the setting name is empty";
	if (path[0] == '.' || path[len - 1] == '.' || strstr(path, ".."))
		return "the setting name has an empty part";
	if (!strchr(path, '.'))
		return "the setting name needs its section, like FileSettings.MaxFileSize";
	return NULL;
}

/* ---- reading the plan's values ---- */

static int parse_set(const cJSON *list, struct settings *ss, struct mm_error *err)
{
	const cJSON *e;

	cJSON_ArrayForEach(e, list) {
		const char *s = cJSON_GetStringValue(e), *eq = s ? strchr(s, '=') : NULL, *why;
		struct setting *st;

		if (!eq)
			return err_set(err, MM_ERR, "'set' entry '%.*s' is not \"Section.Setting=value\"",
				       CONFIG_SHOW, s ? s : "");
		st = settings_add(ss, s, (size_t)(eq - s));
		st->raw = xstrdup(eq + 1);
		if ((why = path_problem(st->path)))
			return err_set(err, MM_ERR, "'set' entry '%.*s': %s", CONFIG_SHOW, s, why);
	}
	return 0;
}

static int parse_restore(const char *text, struct settings *ss, struct mm_error *err)
{
	cJSON *j = cJSON_Parse(text);
	const cJSON *e;
	int ret = 0;

	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		return err_set(err, MM_ERR,
			       "'restore' is not the JSON object a config step records as "
			       "'previous'; write '${steps.ID.previous}'");
	}
	cJSON_ArrayForEach(e, j) {
		if (cJSON_IsArray(e) || cJSON_IsObject(e) || path_problem(e->string)) {
			ret = err_set(err, MM_ERR, "'restore' holds '%.*s', which is not a single setting",
				      CONFIG_SHOW, e->string);
			break;
		}
		settings_add(ss, e->string, strlen(e->string))->want = cJSON_Duplicate(e, 1);
	}
	cJSON_Delete(j);
	return ret;
}

static int settings_from_params(const struct step_ctx *ctx, struct settings *ss, struct mm_error *err)
{
	const cJSON *set = param_json(ctx, "set");
	const char *restore = param_str(ctx, "restore");

	if (set && restore)
		return err_set(err, MM_ERR, "use 'set' or 'restore', not both");
	if (restore)
		return parse_restore(restore, ss, err);
	if (!cJSON_GetArraySize(set))
		return err_set(err, MM_ERR, "nothing to do: 'set' is missing or empty");
	return parse_set(set, ss, err);
}

/* ---- the server's config ---- */

/*
 * The value at a dotted path, or NULL. A key may hold dots itself (plugin
 * ids), so each level takes the shortest run of segments present there.
 * *keys gets the split (caller deletes it, also on NULL).
 */
static const cJSON *setting_find(const cJSON *cfg, const char *path, cJSON **keys)
{
	const cJSON *at = cfg;
	const char *p = path;

	*keys = cJSON_CreateArray();
	while (*p) {
		const char *end = p;
		const cJSON *hit = NULL;

		while (!hit) {
			char *k;

			end = strchr(end, '.');
			k = xstrndup(p, end ? (size_t)(end - p) : strlen(p));
			hit = cJSON_IsObject(at) ? cJSON_GetObjectItemCaseSensitive(at, k) : NULL;
			if (hit)
				cJSON_AddItemToArray(*keys, cJSON_CreateString(k));
			free(k);
			if (!hit && !end)
				return NULL;
			if (!hit)
				end++;
		}
		at = hit;
		p = end ? end + 1 : p + strlen(p);
	}
	return at;
}

static int is_mask(const cJSON *v)
{
	return cJSON_IsString(v) && !strcmp(v->valuestring, CONFIG_MASK);
}

/* A value for `s` typed like what the server holds there now. */
static cJSON *typed_like(const cJSON *cur, const struct setting *s, struct mm_error *err)
{
	int64_t n;
	int is_bool = !strcmp(s->raw, "true") || !strcmp(s->raw, "false");

	if (cJSON_IsNumber(cur) || (cJSON_IsNull(cur) && !parse_i64(s->raw, &n))) {
		if (!parse_i64(s->raw, &n) || !parse_size(s->raw, &n))
			return cJSON_CreateNumber((double)n);
		err_set(err, MM_ERR,
			"'%s' is a number on this server, and '%.*s' is neither a number "
			"nor a size like 10GiB",
			s->path, CONFIG_SHOW, s->raw);
		return NULL;
	}
	if (cJSON_IsBool(cur) || (cJSON_IsNull(cur) && is_bool)) {
		if (is_bool)
			return cJSON_CreateBool(!strcmp(s->raw, "true"));
		err_set(err, MM_ERR, "'%s' is true or false on this server, not '%.*s'", s->path, CONFIG_SHOW,
			s->raw);
		return NULL;
	}
	if (cJSON_IsString(cur) || cJSON_IsNull(cur))
		return cJSON_CreateString(s->raw);
	err_set(err, MM_ERR, "'%s' is a list or a section on this server; only single values can be set",
		s->path);
	return NULL;
}

static int same_value(const cJSON *a, const cJSON *b)
{
	if (cJSON_IsNumber(a) && cJSON_IsNumber(b))
		return a->valuedouble == b->valuedouble;
	return a && b && cJSON_Compare(a, b, 1);
}

/* The value for a message: JSON text, cut to CONFIG_SHOW; caller frees. */
static char *shown(const cJSON *v)
{
	char *s = v ? cJSON_PrintUnformatted(v) : NULL;

	if (!s)
		return xstrdup("(none)");
	if (strlen(s) > CONFIG_SHOW)
		memcpy(s + CONFIG_SHOW - 3, "...", 4);
	return s;
}

/* Finds every setting in cfg and fixes its type; refuses secrets and hidden settings. */
static int settings_resolve(struct settings *ss, const cJSON *cfg, struct mm_error *err)
{
	for (size_t i = 0; i < ss->n; i++) {
		struct setting *s = &ss->v[i];
		const cJSON *cur = setting_find(cfg, s->path, &s->keys);

		if (forbidden(s->path))
			return err_set(err, MM_ERR, "'%s' %s", s->path, forbidden(s->path));
		if (!cur)
			return err_set(err, MM_ERR,
				       "'%s' is not in the server's configuration: misspelt, or "
				       "hidden from this account (Cloud hides restricted settings)",
				       s->path);
		if (is_mask(cur))
			return err_set(err, MM_ERR,
				       "'%s' is a secret (the server masks it), so its old value "
				       "cannot be read to restore or verify; config steps do not "
				       "change secrets",
				       s->path);
		if (s->raw && !(s->want = typed_like(cur, s, err)))
			return MM_ERR;
		if (is_mask(s->want))
			return err_set(err, MM_ERR, "'%s': refusing to write the secret mask", s->path);
		s->old = cJSON_Duplicate(cur, 1);
	}
	return 0;
}

static int read_config(struct step_ctx *ctx, struct http_client *c, cJSON **cfg, struct mm_error *err)
{
	int ret = mm_get_config(c, cfg, err);

	if (ret < 0)
		err_prefix(err, "cannot read the server's configuration");
	return ret;
}

/* {"FileSettings":{"MaxFileSize":N}} for the settings that differ from now. */
static cJSON *build_patch(const struct settings *ss, const cJSON *cfg)
{
	cJSON *patch = cJSON_CreateObject();

	for (size_t i = 0; i < ss->n; i++) {
		const struct setting *s = &ss->v[i];
		cJSON *keys = NULL, *at = patch;
		int nk = cJSON_GetArraySize(s->keys);

		if (same_value(setting_find(cfg, s->path, &keys), s->want)) {
			cJSON_Delete(keys);
			continue;
		}
		cJSON_Delete(keys);
		for (int k = 0; k < nk - 1; k++) {
			const char *name = cJSON_GetArrayItem(s->keys, k)->valuestring;
			cJSON *next = cJSON_GetObjectItemCaseSensitive(at, name);

			at = next ? next : cJSON_AddObjectToObject(at, name);
		}
		cJSON_AddItemToObject(at, cJSON_GetArrayItem(s->keys, nk - 1)->valuestring,
				      cJSON_Duplicate(s->want, 1));
	}
	return patch;
}

/* The old values: from the checkpoint when an earlier run recorded them, else saved now. */
static int remember_old(struct step_ctx *ctx, struct settings *ss, struct mm_error *err)
{
	const cJSON *saved = cJSON_GetObjectItem(ctx->ckpt, "previous");
	cJSON *ck, *prev;

	if (cJSON_IsObject(saved)) {
		for (size_t i = 0; i < ss->n; i++) {
			const cJSON *v = cJSON_GetObjectItemCaseSensitive(saved, ss->v[i].path);

			if (v) {
				cJSON_Delete(ss->v[i].old);
				ss->v[i].old = cJSON_Duplicate(v, 1);
			}
		}
		return 0;
	}
	ck = ctx->ckpt ? cJSON_Duplicate(ctx->ckpt, 1) : cJSON_CreateObject();
	prev = cJSON_AddObjectToObject(ck, "previous");
	for (size_t i = 0; i < ss->n; i++)
		cJSON_AddItemToObject(prev, ss->v[i].path, cJSON_Duplicate(ss->v[i].old, 1));
	return ckpt_save(ctx, ck, err);
}

/* After the patch: every value must read back as written. */
static int verify(const struct settings *ss, const cJSON *cfg, struct mm_error *err)
{
	struct buf b = BUF_INIT;
	size_t bad = 0;

	for (size_t i = 0; i < ss->n; i++) {
		cJSON *keys = NULL;
		const cJSON *now = setting_find(cfg, ss->v[i].path, &keys);
		char *got, *want;

		cJSON_Delete(keys);
		if (same_value(now, ss->v[i].want))
			continue;
		got = shown(now);
		want = shown(ss->v[i].want);
		buf_addf(&b, "%s'%s' is %s, not %s", bad++ ? "; " : "", ss->v[i].path, got, want);
		free(got);
		free(want);
	}
	if (bad)
		err_set(err, MM_ERR,
			"the server accepted the patch but did not keep %zu of %zu setting(s): %s "
			"(writes to restricted settings are silently ignored on Cloud and with "
			"ExperimentalSettings.RestrictSystemAdmin); the old values are checkpointed",
			bad, ss->n, buf_cstr(&b));
	buf_release(&b);
	return bad ? MM_ERR : 0;
}

static int patch(struct step_ctx *ctx, struct http_client *c, const cJSON *body, struct mm_error *err)
{
	int ret = mm_patch_config(c, body, NULL, err);

	if (ret < 0 && !strcmp(err->app_id, "api.config.update_config.not_allowed_security.app_error"))
		err_prefix(err, "the server refuses to change one of these settings through the API");
	else if (ret < 0)
		err_prefix(err, "cannot patch the server's configuration");
	return ret;
}

static void set_outputs(struct step_ctx *ctx, const struct settings *ss)
{
	struct buf changed = BUF_INIT;
	cJSON *prev = cJSON_CreateObject();
	char *text;

	for (size_t i = 0; i < ss->n; i++) {
		if (same_value(ss->v[i].old, ss->v[i].want))
			continue;
		buf_addf(&changed, "%s%s", changed.len ? "," : "", ss->v[i].path);
		cJSON_AddItemToObject(prev, ss->v[i].path, cJSON_Duplicate(ss->v[i].old, 1));
	}
	text = cJSON_PrintUnformatted(prev);
	cJSON_AddStringToObject(ctx->outputs, "changed", buf_cstr(&changed));
	cJSON_AddStringToObject(ctx->outputs, "previous", text);
	free(text);
	cJSON_Delete(prev);
	buf_release(&changed);
}

static void log_changes(struct step_ctx *ctx, const struct settings *ss, const char *verb)
{
	for (size_t i = 0; i < ss->n; i++) {
		char *from = shown(ss->v[i].old), *to = shown(ss->v[i].want);

		if (same_value(ss->v[i].old, ss->v[i].want))
			step_log(ctx, "%s is already %s", ss->v[i].path, to);
		else
			step_log(ctx, "%s %s from %s to %s", verb, ss->v[i].path, from, to);
		free(from);
		free(to);
	}
}

static int config_run(struct step_ctx *ctx, struct mm_error *err)
{
	struct http_client *c = step_client(ctx, err);
	struct settings ss = { NULL, 0 };
	cJSON *cfg = NULL, *body = NULL;
	int ret = MM_ERR;

	if (!c)
		return MM_ERR;
	if ((ret = settings_from_params(ctx, &ss, err)) < 0)
		goto out;
	if (!ss.n) { /* the step to restore changed nothing */
		step_log(ctx, "nothing to put back");
		set_outputs(ctx, &ss);
		goto out;
	}
	if ((ret = read_config(ctx, c, &cfg, err)) < 0 || (ret = settings_resolve(&ss, cfg, err)) < 0)
		goto out;
	if ((ret = remember_old(ctx, &ss, err)) < 0)
		goto out;
	body = build_patch(&ss, cfg);
	if (cJSON_GetArraySize(body)) {
		if (step_should_stop(ctx)) {
			ret = err_set(err, MM_EINTR, "stopped before patching the configuration");
			goto out;
		}
		if ((ret = patch(ctx, c, body, err)) < 0)
			goto out;
		cJSON_Delete(cfg);
		if ((ret = read_config(ctx, c, &cfg, err)) < 0)
			goto out;
	}
	if ((ret = verify(&ss, cfg, err)) < 0)
		goto out;
	log_changes(ctx, &ss, param_str(ctx, "restore") ? "restored" : "changed");
	set_outputs(ctx, &ss);
	ret = 0;
out:
	cJSON_Delete(cfg);
	cJSON_Delete(body);
	settings_free(&ss);
	return ret;
}

/* ---- dry run ---- */

static void describe_unread(const struct settings *ss, const char *why, struct buf *out)
{
	buf_adds(out, "would set ");
	for (size_t i = 0; i < ss->n; i++) {
		char *v = ss->v[i].raw ? NULL : shown(ss->v[i].want);

		buf_addf(out, "%s%s=%.*s", i ? ", " : "", ss->v[i].path, CONFIG_SHOW, v ? v : ss->v[i].raw);
		free(v);
	}
	buf_addf(out, " (current values not read: %s)", why);
}

static int config_describe(struct step_ctx *ctx, struct buf *out, struct mm_error *err)
{
	struct settings ss = { NULL, 0 };
	struct http_client *c;
	cJSON *cfg = NULL;
	size_t todo = 0;
	int ret;

	if ((ret = settings_from_params(ctx, &ss, err)) < 0)
		goto out;
	if (!ss.n) {
		buf_adds(out, "nothing to put back");
		goto out;
	}
	if (!step_server_readonly_ok(ctx)) {
		describe_unread(&ss, ctx->offline ? "offline" : "logging in with a password is a POST", out);
		goto out;
	}
	if (!(c = step_client(ctx, err)) || (ret = read_config(ctx, c, &cfg, err)) < 0 ||
	    (ret = settings_resolve(&ss, cfg, err)) < 0) {
		ret = MM_ERR;
		goto out;
	}
	for (size_t i = 0; i < ss.n; i++) {
		char *from = shown(ss.v[i].old), *to = shown(ss.v[i].want);

		if (same_value(ss.v[i].old, ss.v[i].want))
			buf_addf(out, "%s%s already %s", i ? "; " : "", ss.v[i].path, to);
		else
			buf_addf(out, "%s%s %s -> %s", i ? "; " : "", ss.v[i].path, from, to), todo++;
		free(from);
		free(to);
	}
	if (cJSON_GetObjectItem(ctx->ckpt, "previous"))
		buf_adds(out, " (old values already recorded by an interrupted run)");
	else if (!todo)
		buf_adds(out, " (nothing to patch)");
out:
	cJSON_Delete(cfg);
	settings_free(&ss);
	return ret;
}

/* ---- plan checks ---- */

struct restore_ref {
	const struct plan *plan;
	void (*diag)(void *dctx, const char *key, const char *fmt, ...);
	void *dctx;
	int n;
};

/* arg and key live only during the call: judge them here. */
static void restore_ref_fn(void *rctx, enum interp_source src, const char *arg, const char *key)
{
	struct restore_ref *r = rctx;
	const struct plan_step *up = src == INTERP_STEP ? plan_step_find(r->plan, arg) : NULL;

	if (src != INTERP_STEP || r->n++)
		return;
	if (up && up->type && (strcmp(up->type->name, "config") || strcmp(key, "previous")))
		r->diag(r->dctx, "restore",
			"'restore' must be '${steps.ID.previous}' of an earlier config "
			"step, not '${steps.%s.%s}'",
			arg, key);
}

static void check_restore(const struct plan *p, const struct pnode *v,
			  void (*diag)(void *dctx, const char *key, const char *fmt, ...), void *dctx)
{
	struct restore_ref r = { p, diag, dctx, 0 };
	struct mm_error err = MM_ERROR_INIT;
	const struct plan_step *up;

	if (v->kind == PN_SCALAR && !interp_has_refs(v->scalar)) {
		/* A bare id (product.md's `restore: STEP`); unknown and later ids are
		 * reported by the generic reference checks. */
		up = plan_step_find(p, v->scalar);
		if (up && up->type && strcmp(up->type->name, "config"))
			diag(dctx, "restore", "'restore' names step '%s' (type %s); it takes a config step",
			     v->scalar, up->type->name);
		return;
	}

	if (v->kind != PN_SCALAR || interp_scan(v->scalar, restore_ref_fn, &r, &err) < 0)
		return; /* reported by the generic checks */
	if (!r.n)
		diag(dctx, "restore",
		     "'restore' takes the values an earlier config step replaced: write "
		     "'${steps.%s.previous}'",
		     plan_step_find(p, v->scalar) ? v->scalar : "ID");
}

static void check_set(const struct pnode *v, void (*diag)(void *dctx, const char *key, const char *fmt, ...),
		      void *dctx)
{
	if (v->kind != PN_SEQ)
		return; /* reported by the generic checks */
	if (!v->n)
		diag(dctx, "set", "'set' is empty");
	for (size_t i = 0; i < v->n; i++) {
		const char *s = v->items[i]->kind == PN_SCALAR ? v->items[i]->scalar : NULL;
		const char *eq = s ? strchr(s, '=') : NULL;
		char *path;

		if (!s || (!eq && interp_has_refs(s)))
			continue;
		if (!eq) {
			diag(dctx, "set", "'set' entry '%s' is not \"Section.Setting=value\"", s);
			continue;
		}
		path = xstrndup(s, (size_t)(eq - s));
		if (path_problem(path))
			diag(dctx, "set", "'set' entry '%s': %s", s, path_problem(path));
		else if (forbidden(path))
			diag(dctx, "set", "'%s' %s", path, forbidden(path));
		else if (!strcmp(eq + 1, CONFIG_MASK))
			diag(dctx, "set", "'%s': the value is the server's secret mask, not a value", path);
		for (size_t j = 0; j < i; j++) {
			const char *o = v->items[j]->kind == PN_SCALAR ? v->items[j]->scalar : "";

			if (!strncmp(o, s, (size_t)(eq - s) + 1)) {
				diag(dctx, "set", "'%s' is set twice", path);
				break;
			}
		}
		free(path);
	}
}

static int config_check(const struct plan *p, const struct plan_step *st,
			void (*diag)(void *dctx, const char *key, const char *fmt, ...), void *dctx)
{
	const struct pnode *set = pnode_get(st->node, "set"), *restore = pnode_get(st->node, "restore");

	if (set && restore)
		diag(dctx, "restore", "use 'set' or 'restore', not both");
	else if (!set && !restore)
		diag(dctx, NULL, "a config step needs 'set' (settings to change) or 'restore'");
	if (set)
		check_set(set, diag, dctx);
	if (restore)
		check_restore(p, restore, diag, dctx);
	return 0;
}

const struct step_type step_config = {
	.name = "config",
	.summary = "patch server settings, remembering the old values; restore them later",
	.server = SERVER_REQUIRED,
	.params = config_params,
	.outputs = config_outputs,
	.check = config_check,
	.describe = config_describe,
	.run = config_run,
};

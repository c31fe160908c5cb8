/*
 * cleanup: delete a server export (and an uploaded import file) once the
 * migration no longer needs them, and optionally local artefacts.
 *
 *   - {id: cleanup, type: cleanup, server: source, export: "${steps.export.file}",
 *      local: ["${steps.download.path}"]}
 *
 * Every deletion is idempotent: DELETE /exports/{name} answers 200 for a
 * missing file (API doc 4.3), and a local file that is already gone is
 * fine, so a rerun after any interruption just does it again. Servers
 * without DELETE /imports/{name} (API doc 6.2) get a warning, not a failure.
 *
 * Local entries resolve against the plan's directory and must name a file
 * (or symlink, which is removed itself) inside the plan's directory or the
 * state directory, after symlinks in its parent are resolved. Directories,
 * the plan file and the engine's own state files are refused.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobs.h"
#include "mm.h"
#include "plan.h"
#include "step.h"
#include "sys.h"
#include "util.h"

static const struct param_spec cleanup_params[] = {
	{ .name = "export",
	  .kind = P_STRING,
	  .doc = "export file to delete on the server (e.g. ${steps.export.file})" },
	{ .name = "import", .kind = P_STRING, .doc = "import file to delete on the server (recent servers only)" },
	{ .name = "local", .kind = P_STRLIST, .doc = "local files to delete, relative to the plan file" },
	{ NULL },
};

static const char *const cleanup_outputs[] = { "deleted", NULL };

/* The engine's own files in the state directory. */
static const char *const state_files[] = { "state.json", "state.json.tmp", "journal.jsonl", "lock", NULL };

/* ---- local files ---- */

static int inside(const char *path, const char *root)
{
	size_t n = root ? strlen(root) : 0;

	return n && !strncmp(path, root, n) && (path[n] == '/' || (n == 1 && root[0] == '/'));
}

static char *real_dir(const char *dir)
{
	char rp[PATH_MAX];

	return realpath(dir, rp) ? xstrdup(rp) : NULL;
}

/*
 * Where a `local` entry points once its parent's symlinks are resolved:
 * *target is NULL when the parent does not exist (nothing to delete).
 * Fails when the entry is not a file name inside the plan or state directory.
 */
static int local_target(const struct step_ctx *ctx, const char *entry, char **target, struct mm_error *err)
{
	const struct plan *p = ctx->step->plan;
	struct buf abs = BUF_INIT, t = BUF_INIT;
	char *slash, *parent = NULL, *plan_dir = real_dir(p->dir), *state_dir = real_dir(p->state_dir);
	char *plan_file = realpath(p->path, NULL);
	const char *base;
	int ret = MM_ERR;

	*target = NULL;
	buf_addf(&abs, "%s%s%s", entry[0] == '/' ? "" : p->dir, entry[0] == '/' ? "" : "/", entry);
	slash = strrchr(abs.data, '/');
	*slash = '\0';
	base = slash + 1;
	if (!*entry || !*base || !strcmp(base, ".") || !strcmp(base, "..")) {
		err_set(err, ret, "'local' entry '%s' does not name a file", entry);
		goto out;
	}
	if (!(parent = real_dir(abs.data[0] ? abs.data : "/"))) {
		ret = errno == ENOENT || errno == ENOTDIR
			      ? 0
			      : err_set(err, MM_ERR, "cannot resolve '%s': %s", entry, strerror(errno));
		goto out;
	}
	buf_addf(&t, "%s/%s", strcmp(parent, "/") ? parent : "", base);
	if (!(plan_dir && inside(t.data, plan_dir)) && !(state_dir && inside(t.data, state_dir))) {
		err_set(err, ret,
			"'local' entry '%s' is outside the plan's directory and the state directory; "
			"refusing to delete it",
			entry);
		goto out;
	}
	for (const char *const *f = state_files; *f; f++)
		if (state_dir && !strcmp(parent, state_dir) && !strcmp(base, *f)) {
			err_set(err, ret, "'local' entry '%s' is mmigrate's own state; use 'mmigrate reset'",
				entry);
			goto out;
		}
	if (plan_file && !strcmp(t.data, plan_file)) {
		err_set(err, ret, "'local' entry '%s' is the plan file itself", entry);
		goto out;
	}
	*target = buf_detach(&t);
	ret = 0;
out:
	buf_release(&abs);
	buf_release(&t);
	free(parent);
	free(plan_dir);
	free(state_dir);
	free(plan_file);
	return ret;
}

/* 1 when the target exists (a file), 0 when gone; refuses directories. */
static int local_exists(const char *entry, const char *target, int64_t *size, struct mm_error *err)
{
	struct stat st;

	if (!target || lstat(target, &st) < 0) {
		if (!target || errno == ENOENT || errno == ENOTDIR)
			return 0;
		return err_set(err, MM_ERR, "cannot stat '%s': %s", entry, strerror(errno));
	}
	if (S_ISDIR(st.st_mode))
		return err_set(err, MM_ERR, "'local' entry '%s' is a directory; cleanup deletes files only",
			       entry);
	if (size)
		*size = (int64_t)st.st_size;
	return 1;
}

static int delete_local(struct step_ctx *ctx, const char *entry, struct mm_error *err)
{
	char *target = NULL;
	int ret = local_target(ctx, entry, &target, err);

	if (ret == 0)
		ret = local_exists(entry, target, NULL, err);
	if (ret == 1) {
		if (sys_unlink(step_sys(ctx), target) < 0 && errno != ENOENT)
			ret = err_set(err, MM_ERR, "cannot delete '%s': %s", entry, strerror(errno));
		else
			step_log(ctx, "deleted '%s'", entry);
	} else if (ret == 0) {
		step_log(ctx, "'%s' is already gone", entry);
	}
	free(target);
	return ret < 0 ? ret : 0;
}

/* ---- server files ---- */

/* 1 deleted (or already gone), 0 the server cannot delete imports. */
static int delete_remote(struct step_ctx *ctx, struct http_client *c, const char *what, const char *name,
			 struct mm_error *err)
{
	int is_import = !strcmp(what, "import");
	int ret = is_import ? mm_delete_import(c, name, err) : mm_delete_export(c, name, err);

	if (ret == MM_ENOTFOUND && is_import && !strcmp(err->app_id, "api.context.404.app_error")) {
		step_warn(ctx,
			  "cannot delete import '%s': unsupported on this server (no DELETE /imports; "
			  "the server removes it after ImportSettings.RetentionDays)",
			  name);
		err_clear(err);
		return 0;
	}
	if (ret < 0) {
		err_prefix(err, "cannot delete %s '%s'", what, name);
		return ret;
	}
	step_log(ctx, "deleted %s '%s' on server '%s' (or it was already gone)", what, name,
		 step_server_name(ctx));
	return 1;
}

static int cleanup_run(struct step_ctx *ctx, struct mm_error *err)
{
	static const char *const remote[] = { "export", "import", NULL };
	const cJSON *local = param_json(ctx, "local"), *e;
	struct http_client *c = NULL;
	struct buf deleted = BUF_INIT;
	int ret = 0;

	for (const char *const *w = remote; *w && ret >= 0; w++) {
		const char *name = param_str(ctx, *w);

		if (!name)
			continue;
		if (!c && !(c = step_client(ctx, err)))
			ret = MM_ERR;
		else if ((ret = delete_remote(ctx, c, *w, name, err)) > 0)
			buf_addf(&deleted, "%s%s", deleted.len ? "," : "", name);
	}
	cJSON_ArrayForEach(e, local) {
		if (ret < 0)
			break;
		if (step_should_stop(ctx))
			ret = err_set(err, MM_EINTR, "stopped before deleting '%s'", e->valuestring);
		else if ((ret = delete_local(ctx, e->valuestring, err)) == 0)
			buf_addf(&deleted, "%s%s", deleted.len ? "," : "", e->valuestring);
	}
	if (ret >= 0) {
		cJSON_AddStringToObject(ctx->outputs, "deleted", buf_cstr(&deleted));
		ret = 0;
	}
	buf_release(&deleted);
	return ret;
}

/* ---- dry run ---- */

/* " (present)" / " (already gone)" / "" when it cannot be told with GETs. */
static const char *remote_state(struct step_ctx *ctx, const char *what, const char *name)
{
	struct mm_error err = MM_ERROR_INIT;
	struct http_client *c;
	const char *res = " (already gone)";
	char **names = NULL;
	size_t n = 0;

	if (!step_server_readonly_ok(ctx) || !(c = step_client(ctx, &err)) ||
	    (!strcmp(what, "import") ? mm_list_imports : mm_list_exports)(c, &names, &n, &err) < 0)
		return "";
	for (size_t i = 0; i < n; i++)
		if (!strcmp(names[i], name))
			res = " (present)";
	mm_names_free(names, n);
	return res;
}

static int cleanup_describe(struct step_ctx *ctx, struct buf *out, struct mm_error *err)
{
	static const char *const remote[] = { "export", "import", NULL };
	const cJSON *e;

	for (const char *const *w = remote; *w; w++) {
		const char *name = param_str(ctx, *w);

		if (name)
			buf_addf(out, "%swould delete %s '%s' on server '%s'%s", out->len ? "; " : "", *w,
				 name, step_server_name(ctx), remote_state(ctx, *w, name));
	}
	cJSON_ArrayForEach(e, param_json(ctx, "local")) {
		char *target = NULL;
		int64_t size = 0;
		int rc = local_target(ctx, e->valuestring, &target, err);

		if (rc == 0)
			rc = local_exists(e->valuestring, target, &size, err);
		free(target);
		if (rc < 0)
			return rc;
		if (rc)
			buf_addf(out, "%swould delete '%s' (%lld bytes)", out->len ? "; " : "",
				 e->valuestring, (long long)size);
		else
			buf_addf(out, "%s'%s' is already gone", out->len ? "; " : "", e->valuestring);
	}
	return 0;
}

/* ---- plan checks ---- */

static const char *literal(const struct pnode *v)
{
	return v && v->kind == PN_SCALAR && v->scalar && !strstr(v->scalar, "${") ? v->scalar : NULL;
}

static int cleanup_check(const struct plan *p, const struct plan_step *st,
			 void (*diag)(void *dctx, const char *key, const char *fmt, ...), void *dctx)
{
	static const char *const remote[] = { "export", "import", NULL };
	const struct pnode *local = pnode_get(st->node, "local");
	int any = local != NULL;

	for (const char *const *w = remote; *w; w++) {
		const struct pnode *v = pnode_get(st->node, *w);
		const char *name = literal(v);
		size_t n = name ? strlen(name) : 0;

		if (!v)
			continue;
		any = 1;
		if (!pnode_get(st->node, "server"))
			diag(dctx, *w, "deleting an %s on the server needs 'server'", *w);
		if (name && (n < 5 || strcmp(name + n - 4, ".zip") || strchr(name, '/')))
			diag(dctx, *w, "'%s' must be a file name ending in .zip, not '%s'", *w, name);
	}
	if (!any)
		diag(dctx, NULL, "a cleanup step needs 'export', 'import' or 'local'");
	for (size_t i = 0; local && local->kind == PN_SEQ && i < local->n; i++) {
		const char *s = literal(local->items[i]);

		if (s && (!*s || !strcmp(s, "/") || !strcmp(s, ".") || !strcmp(s, "..")))
			diag(dctx, "local", "'local' entry '%s' does not name a file", s);
		else if (s && s[0] == '/' && !inside(s, p->dir) && !inside(s, p->state_dir))
			diag(dctx, "local",
			     "'local' entry '%s' is outside the plan's directory and the state "
			     "directory",
			     s);
	}
	return 0;
}

const struct step_type step_cleanup = {
	.name = "cleanup",
	.summary = "delete a server export or import file, and local artefacts",
	.server = SERVER_OPTIONAL,
	.params = cleanup_params,
	.outputs = cleanup_outputs,
	.check = cleanup_check,
	.describe = cleanup_describe,
	.run = cleanup_run,
};

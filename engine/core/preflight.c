/*
 * Preflight: what the pending steps will need, checked before apply's first
 * mutating request (and by plan), so that a migration does not stop hours in
 * on a variable that is not set, a full disk or a target that refuses the
 * archive's size. Every problem is reported, not just the first.
 *
 *   check_refs                  every ${env:}/${file:} of a pending step and of its server
 *   check_servers               one login (GETs after it) per server a pending step uses
 *   check_state_dir             writable; free space against the sizes already known
 *   check_max_file_size         an upload's file against the target's FileSettings.MaxFileSize,
 *                               as earlier pending config steps will have set it
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "interp.h"
#include "mm.h"
#include "run.h"
#include "util.h"

#define STATE_HEADROOM ((int64_t)16 << 20) /* state.json, journal and temp files */

/* "6.2 MiB" */
static void human_size(int64_t n, char *out, size_t len)
{
	static const char *const units[] = { "bytes", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, len, "%lld bytes", (long long)n);
	else
		snprintf(out, len, "%.1f %s", v, units[u]);
}

struct preflight {
	struct run *r;
	const int *pending; /* per step: 1 when apply would run it */
	int problems;
	cJSON *seen;    /* references and servers already checked */
	int *server_ok; /* per plan server: 1 logged in, -1 failed or skipped */
};

static void problem(struct preflight *pf, const char *step, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void problem(struct preflight *pf, const char *step, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	run_event(pf->r, step, "preflight", NULL, "preflight: %s", buf_cstr(&b));
	buf_release(&b);
	pf->problems++;
}

/* 1 the first time key is seen. */
static int first_time(struct preflight *pf, const char *key)
{
	if (cJSON_GetObjectItemCaseSensitive(pf->seen, key))
		return 0;
	cJSON_AddItemToObject(pf->seen, key, cJSON_CreateTrue());
	return 1;
}

/* ---- ${env:} and ${file:} ---- */

struct ref_walk {
	struct preflight *pf;
	const char *step;
	int bad;
};

static void on_ref(void *ctx, enum interp_source src, const char *arg, const char *key)
{
	struct ref_walk *w = ctx;
	struct interp_env env = { w->pf->r->plan->dir, NULL, NULL };
	struct mm_error err = MM_ERROR_INIT;
	struct buf ref = BUF_INIT;
	char *out = NULL;

	(void)key;
	if (src == INTERP_STEP)
		return;
	buf_addf(&ref, "${%s:%s}", src == INTERP_ENV ? "env" : "file", arg);
	if (interp_expand(ref.data, &env, &out, &err) < 0) {
		w->bad = 1;
		if (first_time(w->pf, ref.data))
			problem(w->pf, w->step, "%s", err.msg);
	}
	interp_free_secret(out);
	buf_release(&ref);
}

static void walk_refs(struct ref_walk *w, const struct pnode *n)
{
	struct mm_error err = MM_ERROR_INIT;

	if (!n)
		return;
	if (n->kind == PN_SCALAR) {
		interp_scan(n->scalar, on_ref, w, &err);
		return;
	}
	for (size_t i = 0; i < n->n; i++)
		walk_refs(w, n->items[i]);
}

static int used_by_pending(const struct preflight *pf, const char *server)
{
	const struct plan *p = pf->r->plan;

	for (size_t i = 0; i < p->nsteps; i++)
		if (pf->pending[i] && p->steps[i].server && !strcmp(p->steps[i].server, server))
			return 1;
	return 0;
}

static void check_refs(struct preflight *pf)
{
	const struct plan *p = pf->r->plan;

	for (size_t i = 0; i < p->nsteps; i++) {
		struct ref_walk w = { pf, p->steps[i].id, 0 };

		if (pf->pending[i])
			walk_refs(&w, p->steps[i].node);
	}
	for (size_t i = 0; i < p->nservers; i++) {
		struct ref_walk w = { pf, NULL, 0 };

		if (!used_by_pending(pf, p->servers[i].name))
			continue;
		walk_refs(&w, p->servers[i].node);
		if (w.bad)
			pf->server_ok[i] = -1; /* its login cannot work; said why already */
	}
}

/* ---- servers ---- */

static void check_servers(struct preflight *pf)
{
	struct run *r = pf->r;

	for (size_t i = 0; i < r->plan->nservers; i++) {
		const struct plan_server *sv = &r->plan->servers[i];
		struct mm_error err = MM_ERROR_INIT;

		if (!used_by_pending(pf, sv->name) || pf->server_ok[i] < 0 || r->offline)
			continue;
		if (r->dry_run && sv->username) { /* a password login is a POST: plan makes none */
			pf->server_ok[i] = -1;
			continue;
		}
		if (run_client(r, sv->name, NULL, &err)) {
			pf->server_ok[i] = 1;
			continue;
		}
		pf->server_ok[i] = -1;
		problem(pf, NULL, "server '%s': %s", sv->name, err.msg);
	}
}

/* ---- the state directory ---- */

/* Bytes a pending download still has to write, when its size is known already. */
static int64_t known_download_bytes(const struct preflight *pf)
{
	const struct plan *p = pf->r->plan;
	int64_t need = 0;

	for (size_t i = 0; i < p->nsteps; i++) {
		const cJSON *ck = state_step_checkpoint(pf->r->state, p->steps[i].id);
		double total = cJSON_GetNumberValue(cJSON_GetObjectItem(ck, "total"));
		double synced = cJSON_GetNumberValue(cJSON_GetObjectItem(ck, "synced"));

		if (!pf->pending[i] || strcmp(p->steps[i].type->name, "download") || !(total > 0))
			continue;
		need += (int64_t)total - (synced > 0 ? (int64_t)synced : 0);
	}
	return need;
}

/* The free bytes where the state lives; tests set MMIGRATE_TEST_FREE_BYTES to fake a full disk. */
static int64_t free_bytes(const struct run *r, const char *dir)
{
	const char *fake = getenv("MMIGRATE_TEST_FREE_BYTES");
	int64_t n;

	if (fake && !parse_i64(fake, &n))
		return n;
	return sys_free_bytes(r->state->sys, dir);
}

/* The state directory, or for a dry run before the first apply its nearest existing parent. */
static char *existing_dir(const char *dir)
{
	char *d = xstrdup(dir), *slash;

	while (access(d, F_OK) < 0 && (slash = strrchr(d, '/')) && slash != d)
		*slash = '\0';
	return d;
}

/*
 * Plain calls, not the sys seam: the probe is no state write, and counting it
 * would move every call number a MMIGRATE_TEST_FAULT crash sweep aims at.
 */
static int probe_write(const struct run *r, const char *dir, struct mm_error *err)
{
	struct buf path = BUF_INIT;
	int fd, ret = 0;

	if (r->dry_run) {
		if (access(dir, W_OK) < 0)
			ret = err_set(err, MM_ERR, "cannot write to '%s': %s", dir, strerror(errno));
		return ret;
	}
	buf_addf(&path, "%s/.preflight", dir);
	fd = open(path.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || write(fd, "x", 1) != 1)
		ret = err_set(err, MM_ERR, "cannot write to '%s': %s", dir, strerror(errno));
	if (fd >= 0)
		close(fd);
	unlink(path.data);
	buf_release(&path);
	return ret;
}

static void check_state_dir(struct preflight *pf)
{
	char *dir = existing_dir(pf->r->plan->state_dir), need_s[32], free_s[32];
	struct mm_error err = MM_ERROR_INIT;
	int64_t need = known_download_bytes(pf) + STATE_HEADROOM, have;

	if (probe_write(pf->r, dir, &err) < 0)
		problem(pf, NULL, "state directory: %s (choose another with --state-dir)", err.msg);
	have = free_bytes(pf->r, dir);
	if (have >= 0 && have < need) {
		human_size(need, need_s, sizeof(need_s));
		human_size(have, free_s, sizeof(free_s));
		problem(pf, NULL,
			"state directory '%s' has %s free; the pending steps need at least %s (known "
			"download sizes plus room for the state): free space or use --state-dir",
			pf->r->plan->state_dir, free_s, need_s);
	}
	free(dir);
}

/* ---- MaxFileSize ---- */

/* "FileSettings.MaxFileSize=N" in a resolved config step's `set`: 1 (*n), 0 not set, -1 unknown. */
static int sets_max_file_size(const struct plan_step *st, int64_t *n)
{
	const cJSON *set = cJSON_GetObjectItem(st->resolved, "set"), *c;
	const struct pnode *raw = pnode_get(st->node, "set");

	if (!st->resolved) { /* not resolvable yet: whether it touches MaxFileSize decides */
		for (size_t i = 0; raw && i < raw->n; i++)
			if (raw->items[i]->kind == PN_SCALAR && strstr(raw->items[i]->scalar, "MaxFileSize"))
				return -1;
		return 0;
	}
	cJSON_ArrayForEach(c, set) {
		const char *v = cJSON_GetStringValue(c);

		if (v && !strncmp(v, "FileSettings.MaxFileSize=", 25))
			return parse_size(v + 25, n) == 0 ? 1 : -1;
	}
	return 0;
}

/* The MaxFileSize upload step u will meet: the server's, unless an earlier pending config step changes it. */
static int effective_max(struct preflight *pf, const struct plan_step *u, struct http_client *c, int64_t *max,
			 const char **by)
{
	struct mm_error err = MM_ERROR_INIT;
	cJSON *cfg = NULL;
	const cJSON *v;
	int found = 0;

	*by = NULL;
	for (size_t i = u->index; i-- > 0;) {
		const struct plan_step *st = &pf->r->plan->steps[i];
		int rc;

		if (!pf->pending[i] || strcmp(st->type->name, "config") || !st->server ||
		    strcmp(st->server, u->server))
			continue;
		if ((rc = sets_max_file_size(st, max)) < 0)
			return 0; /* set from a value not known yet: cannot judge */
		if (rc > 0) {
			*by = st->id;
			return 1;
		}
	}
	if (mm_get_config(c, &cfg, &err) < 0) {
		problem(pf, u->id, "cannot read the target's configuration: %s", err.msg);
		return 0;
	}
	v = cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "FileSettings"), "MaxFileSize");
	if (cJSON_IsNumber(v)) {
		*max = double_to_i64(v->valuedouble);
		found = 1;
	}
	cJSON_Delete(cfg);
	return found;
}

/*
 * The size of the file upload step u will send, when known: the file itself
 * once its path resolves, else the size a pending download announced (its
 * checkpoint's total). *path: what to call it; caller frees.
 */
static int64_t upload_size(struct preflight *pf, struct plan_step *u, char **path)
{
	struct step_ctx ctx = { .run = pf->r, .step = u };
	const char *dl = step_linked_step(&ctx, "file", "download");
	const cJSON *ck = dl ? state_step_checkpoint(pf->r->state, dl) : NULL;
	double total = cJSON_GetNumberValue(cJSON_GetObjectItem(ck, "total"));
	struct stat sb;

	*path = u->resolved ? param_path(&ctx, "file") : NULL;
	if (*path)
		return stat(*path, &sb) == 0 ? (int64_t)sb.st_size : -1;
	if (!dl || !pf->pending[plan_step_find(pf->r->plan, dl)->index] || !(total > 0))
		return -1;
	{
		struct buf b = BUF_INIT;

		buf_addf(&b, "the archive step %s is downloading", dl);
		*path = buf_detach(&b);
	}
	return (int64_t)total;
}

static void check_upload(struct preflight *pf, struct plan_step *u)
{
	const struct plan_server *sv = plan_server_find(pf->r->plan, u->server);
	struct mm_error err = MM_ERROR_INIT;
	struct http_client *c;
	char *path = NULL, size_s[32], max_s[32];
	const char *by;
	int64_t max, size = upload_size(pf, u, &path);

	if (size < 0 || !sv || pf->server_ok[sv - pf->r->plan->servers] != 1)
		goto out;
	if (!(c = run_client(pf->r, u->server, u->id, &err)) || !effective_max(pf, u, c, &max, &by))
		goto out;
	if (size <= max)
		goto out;
	human_size(size, size_s, sizeof(size_s));
	human_size(max, max_s, sizeof(max_s));
	problem(pf, u->id,
		"'%s' is %s, but server '%s' accepts uploads up to %s (FileSettings.MaxFileSize%s%s%s): %s",
		path, size_s, u->server, max_s, by ? " as step '" : "", by ? by : "", by ? "' sets it" : "",
		by ? "raise the value that step sets"
		   : "add a config step before it with FileSettings.MaxFileSize=${steps.download.size} "
		     "(and one with restore, always: true, after the import)");
out:
	free(path);
}

static void check_max_file_size(struct preflight *pf)
{
	const struct plan *p = pf->r->plan;

	if (pf->r->offline)
		return;
	for (size_t i = 0; i < p->nsteps; i++)
		if (pf->pending[i] && !strcmp(p->steps[i].type->name, "upload") && p->steps[i].server)
			check_upload(pf, &p->steps[i]);
}

int sched_preflight(struct run *r, const int *pending, struct mm_error *err)
{
	struct preflight pf = { r, pending, 0, cJSON_CreateObject(), NULL };

	pf.server_ok = xcalloc(r->plan->nservers + 1, sizeof(int));
	check_refs(&pf);
	check_servers(&pf);
	check_state_dir(&pf);
	check_max_file_size(&pf);
	free(pf.server_ok);
	cJSON_Delete(pf.seen);
	if (pf.problems) {
		r->remedy = REMEDY_FIX;
		return err_set(err, MM_ERR, "preflight found %d problem(s) (listed above); nothing was changed",
			       pf.problems);
	}
	return 0;
}

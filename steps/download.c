/*
 * download: fetch a server export by name (GET /api/v4/exports/{name}) or any
 * http(s) URL (a presigned S3 link) into PATH.part; rename it to PATH only
 * once it is whole and checked. Constant memory: bytes stream to the file;
 * a hashing thread reads them back in order through SHA-256 and the zip
 * check (download_hash.c), so hashing runs beside the network I/O.
 *
 * Resume (API doc 4.2: no ETag, so If-Range never matches and is never sent):
 *   - the checkpoint holds the source, the total size as soon as an answer
 *     tells it, how many bytes were fsync'ed and the boot id; a run after a
 *     reboot cuts the .part back to the fsync'ed length, because the page
 *     cache may have lost its tail;
 *   - every attempt asks for bytes=(have - overlap)-; its headers are seen
 *     before its first byte (the total checkpointed, another total refused
 *     before anything is appended); it compares the overlap with the bytes
 *     held and appends the rest; a mismatch, another total, or a 416 for
 *     another size means the file changed: truncate, start at 0. No probe
 *     request: a fresh or resumed download is one GET when nothing fails;
 *   - a 200 to a Range request is never appended: from then on attempts ask
 *     from byte 0 and compare everything held before appending (a server or
 *     proxy that drops Range costs bandwidth, never correctness);
 *   - attempts go on while each adds bytes; `retries` in a row without
 *     progress give up. A run that starts with a .part hashes it once.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dl.h"
#include "hash.h"
#include "http.h"
#include "mm.h"
#include "plan.h"
#include "retry.h"
#include "step.h"
#include "sys.h"
#include "util.h"
#include "zipstream.h"

#define EOCD_WINDOW (65535 + 22) /* end of central directory + longest zip comment */

static const struct param_spec dl_params[] = {
	{ .name = "export", .kind = P_STRING, .doc = "export file on the server, e.g. ${steps.export.file}" },
	{ .name = "url",
	  .kind = P_STRING,
	  .secret = 1,
	  .identified_by = "sha256",
	  .doc = "or any http(s) URL (a presigned link), fetched without credentials" },
	{ .name = "path",
	  .kind = P_PATH,
	  .artefact = 1,
	  .doc = "destination; a relative path is in the state directory (default: the file's name there)" },
	{ .name = "presign",
	  .kind = P_BOOL,
	  .def = "false",
	  .doc = "download through a presigned S3 link when the server offers one" },
	{ .name = "sha256", .kind = P_STRING, .doc = "expected SHA-256 of the file, in hex" },
	{ .name = "retries",
	  .kind = P_INT,
	  .def = "8",
	  .doc = "attempts in a row without progress before giving up",
	  .tuning = 1 },
	STEP_TRANSFER_PARAMS,
	{ .name = "connections",
	  .kind = P_INT,
	  .def = "1",
	  .doc = "ranges fetched at once, 1 to 16, when the server honours Range (rate_limit is shared)",
	  .tuning = 1 },
	{ .name = "overlap",
	  .kind = P_SIZE,
	  .def = "64KiB",
	  .doc = "bytes fetched again and compared when resuming",
	  .tuning = 1 },
	{ .name = NULL },
};

/* entries and crc_ok: zips only, from the check made while the bytes arrived */
static const char *const dl_outputs[] = { "path", "size", "sha256", "entries", "crc_ok", "file_id", NULL };
/* Consumers re-run when the bytes change, not when the same bytes are fetched again. */
static const char *const dl_identity[] = { "size", "sha256", NULL };

/* ---- small helpers ---------------------------------------------------- */

/* The last path segment of a URL or a name, made safe as a local file name. */
static char *file_name_of(const char *s, int url)
{
	const char *p = url ? strstr(s, "://") + 3 : s;
	size_t len = strcspn(p, "?#");
	const char *slash = NULL;
	char *name;

	for (size_t i = 0; i < len; i++)
		if (p[i] == '/')
			slash = p + i;
	if (url && !slash)
		len = 0; /* host only */
	else if (slash) {
		len -= (size_t)(slash + 1 - p);
		p = slash + 1;
	}
	name = xstrndup(p, len);
	for (char *q = name; *q; q++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *q))
			*q = '_';
	if (!*name || !strcmp(name, ".") || !strcmp(name, "..")) {
		free(name);
		name = xstrdup("download");
	}
	return name;
}

static int64_t file_size(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISREG(st.st_mode) ? (int64_t)st.st_size : -1;
}

/* ---- setup ------------------------------------------------------------- */

static int dl_init(struct step_ctx *ctx, struct dl *d, struct mm_error *err)
{
	const char *name = param_str(ctx, "export"), *url = param_str(ctx, "url");
	struct buf b = BUF_INIT;
	char *base;

	memset(d, 0, sizeof(*d));
	d->ctx = ctx;
	d->fd = -1;
	d->total = -1;
	d->overlap = param_int(ctx, "overlap");
	d->conns = (int)param_int(ctx, "connections");
	d->blk = xmalloc(BLOCK);
	d->sys = step_sys(ctx);
	if (sha256_init(&d->sha) < 0)
		return err_set(err, MM_ERR, "cannot compute SHA-256: OpenSSL failed");
	if (name) {
		if (mm_export_path(name, &b, err) < 0)
			return MM_ERR;
		d->src = d->api = buf_detach(&b);
		snprintf(d->shown, sizeof(d->shown), "%s", d->src);
		snprintf(d->source, sizeof(d->source), "export:%s", name);
		d->name = name;
		d->with_auth = d->is_zip = 1;
		base = file_name_of(name, 0);
	} else if (url && dl_is_http_url(url)) {
		d->src = d->api = xstrdup(url);
		url_redact(url, d->shown, sizeof(d->shown));
		snprintf(d->source, sizeof(d->source), "url:%s", d->shown);
		base = file_name_of(url, 1);
		d->is_zip = strlen(base) > 4 && !strcasecmp(base + strlen(base) - 4, ".zip");
	} else {
		return err_set(err, MM_EINVAL, "give 'export' (a file on the server) or an http(s) 'url'");
	}
	if (d->is_zip)
		d->zs = zs_new();
	if (!(d->path = param_path(ctx, "path"))) {
		buf_addf(&b, "%s/%s", step_state_dir(ctx), base);
		d->path = buf_detach(&b);
	}
	free(base);
	buf_addf(&b, "%s.part", d->path);
	d->part = buf_detach(&b);
	return 0;
}

static void dl_release(struct dl *d)
{
	dl_hasher_stop(d);
	dl_meter_finish(d);
	if (d->fd >= 0)
		close(d->fd);
	http_client_free(d->own);
	sha256_release(&d->sha);
	zs_free(d->zs);
	if (d->api)
		http_wipe(d->api, strlen(d->api)); /* a plan's URL may be signed too */
	free(d->api);
	if (d->link)
		http_wipe(d->link, strlen(d->link));
	free(d->link);
	free(d->path);
	free(d->part);
	free(d->blk);
	free(d->ranges);
}

static int own_should_stop(void *ctx)
{
	return step_should_stop(ctx);
}

static void own_log(void *ctx, enum http_log_level level, const char *line)
{
	if (level == HTTP_LOG_WARN)
		step_warn(ctx, "%s", line);
}

/* The server's client for exports; for a URL a client of its own, no token. */
static int dl_client(struct dl *d, struct mm_error *err)
{
	struct http_opts o = { 0 };
	char origin[512];

	if (d->with_auth) {
		d->c = step_client(d->ctx, err);
		return d->c ? 0 : MM_ERR;
	}
	/* Only absolute URLs go through this client: the base is never used. */
	snprintf(origin, sizeof(origin), "%.*s",
		 (int)(strstr(d->shown, "://") + 3 - d->shown) + (int)strcspn(strstr(d->shown, "://") + 3, "/"),
		 d->shown);
	o.base_url = origin;
	o.should_stop = own_should_stop;
	o.stop_ctx = d->ctx;
	o.log = own_log;
	o.log_ctx = d->ctx;
	d->c = d->own = http_client_new(&o, err);
	if (d->own)
		step_transfer_floor(d->ctx, d->own);
	return d->c ? 0 : MM_ERR;
}

/* ---- finishing -------------------------------------------------------- */

/* The rename into place survives a power cut only once its directory is synced. */
static int fsync_dir_of(struct dl *d, struct mm_error *err)
{
	char *dir = sys_dir_of(d->path);
	int ret = 0;

	if (sys_fsync_dir(d->sys, dir) < 0)
		ret = err_set(err, MM_ERR, "cannot sync directory '%s': %s", dir, strerror(errno));
	free(dir);
	return ret;
}

/* The end of central directory record: a zip cut short has none. */
static int zip_has_eocd(struct dl *d, int fd, int64_t size)
{
	int64_t n = size < EOCD_WINDOW ? size : EOCD_WINDOW;
	ssize_t got = pread(fd, d->blk, (size_t)n, (off_t)(size - n));

	for (ssize_t i = got - 22; i >= 0; i--)
		if (!memcmp(d->blk + i, "PK\5\6", 4))
			return 1;
	return 0;
}

/* A zip without an end record at all is the server's file cut short, not transit damage. */
static int check_complete(struct dl *d, int fd, int64_t size, const char *name, struct mm_error *err)
{
	if (d->is_zip && !zip_has_eocd(d, fd, size))
		return err_set(err, MM_ERR,
			       "'%s' (%lld bytes) is not a complete zip: no end of central "
			       "directory record (the export may still be being written)",
			       name, (long long)size);
	return 0;
}

static int check_sha(struct dl *d, const char *name, const char *hex, struct mm_error *err)
{
	const char *want = param_str(d->ctx, "sha256");

	if (want && strcasecmp(want, hex))
		return err_set(err, MM_ERR, "'%s' has SHA-256 %s, expected %s", name, hex, want);
	return 0;
}

static void set_outputs(struct dl *d, int64_t size, const char *hex)
{
	struct stat st;
	char id[FILE_ID_LEN];

	cJSON_AddStringToObject(d->ctx->outputs, "path", d->path);
	if (stat(d->path, &st) == 0) { /* lets a later upload trust the digest without reading again */
		file_identity(&st, id);
		cJSON_AddStringToObject(d->ctx->outputs, "file_id", id);
	}
	cJSON_AddNumberToObject(d->ctx->outputs, "size", (double)size);
	cJSON_AddStringToObject(d->ctx->outputs, "sha256", hex);
	dl_zip_outputs(d);
}

/* These are the server's bytes; a later run fetches them afresh. */
static int remove_part(struct dl *d, struct mm_error *err)
{
	size_t len = strlen(err->msg);

	sys_unlink(d->sys, d->part);
	snprintf(err->msg + len, sizeof(err->msg) - len, "; removed it");
	return MM_ERR;
}

static int finish(struct dl *d, struct mm_error *err)
{
	char hex[65];

	if (check_complete(d, d->fd, d->have, d->part, err) < 0)
		return remove_part(d, err);
	/* heals rewrite damaged ranges and hash the file again: before the sync and the digest */
	if (dl_zip_heal(d, err) < 0)
		return err->code;
	if (sys_fsync(d->sys, d->fd) < 0)
		return err_set(err, MM_ERR, "cannot sync '%s': %s", d->part, strerror(errno));
	sha256_final_hex(&d->sha, hex);
	if (check_sha(d, d->part, hex, err) < 0)
		return remove_part(d, err);
	if (sys_rename(d->sys, d->part, d->path) < 0)
		return err_set(err, MM_ERR, "cannot rename '%s' to '%s': %s", d->part, d->path,
			       strerror(errno));
	if (fsync_dir_of(d, err) < 0)
		return MM_ERR;
	set_outputs(d, d->have, hex);
	step_log(d->ctx, "downloaded %s: %lld bytes, sha256 %s", d->path, (long long)d->have, hex);
	return 0;
}

/*
 * PATH exists and no .part does: a run that died between the rename and
 * recording the step, or a step re-run with another definition. Keep the
 * file when it is the server's (size and last bytes); 0 means download.
 */
static int adopt_final(struct dl *d, struct mm_error *err)
{
	int fd = open(d->path, O_RDONLY | O_CLOEXEC);
	int64_t have = file_size(d->path), total = -1, ck = -1;
	char why[160] = "", hex[65];
	int p, ret = 0;

	if (fd < 0)
		return 0;
	p = dl_probe(d, fd, have, 3, &total, why, sizeof(why), err);
	if (p < 0 && p != MM_EINTR && dl_ckpt_num(d->ctx, "total", &ck) && ck == have &&
	    !strcmp(ckpt_str(d->ctx, "source") ? ckpt_str(d->ctx, "source") : "", d->source)) {
		step_warn(d->ctx,
			  "cannot check '%s' against the server (%s); keeping it: its size is the "
			  "one recorded",
			  d->path, err->msg);
		total = have;
		p = P_SAME;
	}
	if (p < 0) {
		ret = p;
		goto out;
	}
	if (p != P_SAME || total != have) {
		step_log(d->ctx, "'%s' is not the server's file (%s); downloading it again", d->path,
			 p == P_NORANGE ? "cannot tell: the server ignores Range"
			 : *why         ? why
					: "the server's is longer");
		goto out;
	}
	if ((ret = dl_hash_file(d, fd, have, d->path, err)) < 0)
		goto out;
	sha256_final_hex(&d->sha, hex);
	if ((ret = check_sha(d, d->path, hex, err)) < 0 || (ret = check_complete(d, fd, have, d->path, err)) < 0)
		goto out;
	if (d->zs) {
		zs_finish(d->zs);
		if (!zs_ok(d->zs)) {
			size_t n;

			step_warn(d->ctx,
				  "'%s' is the server's size but a damaged zip (%s); downloading it again",
				  d->path, zs_damage(d->zs, &n)->why);
			goto out;
		}
	}
	step_log(d->ctx, "'%s' is already complete (%lld bytes, the server's); sha256 %s", d->path,
		 (long long)have, hex);
	set_outputs(d, have, hex);
	ret = 1;
out:
	close(fd);
	return ret;
}

/* ---- the step --------------------------------------------------------- */

/* In ranges with `connections` > 1; one attempt at a time otherwise, or when the server refuses ranges. */
static int transfer(struct dl *d, struct mm_error *err)
{
	int ret;

	if (dl_hasher_start(d, d->have, err) < 0)
		return MM_ERR;
	ret = d->conns > 1 ? dl_fetch_par(d, err) : 1;
	if (ret == 1)
		ret = dl_fetch(d, err);
	if (ret < 0) {
		dl_hasher_stop(d);
		return ret;
	}
	return dl_hasher_finish(d, err);
}

static int dl_run(struct step_ctx *ctx, struct mm_error *err)
{
	struct dl d;
	int ret;

	if ((ret = dl_init(ctx, &d, err)) < 0 || (ret = dl_client(&d, err)) < 0)
		goto out;
	if (param_bool(ctx, "presign") && d.with_auth && (ret = dl_presign(&d, err)) < 0)
		goto out;
	http_set_rate_limit(d.c, param_int(ctx, "rate_limit")); /* 0 clears an earlier step's cap */
	if (file_size(d.part) < 0 && file_size(d.path) >= 0 && (ret = adopt_final(&d, err)) != 0)
		goto out;
	if ((ret = dl_part_open(&d, err)) < 0 || (ret = dl_hash_held(&d, err)) < 0 ||
	    (ret = transfer(&d, err)) < 0)
		goto out;
	ret = finish(&d, err);
out:
	dl_release(&d);
	return ret > 0 ? 0 : ret;
}

/* A .part written in ranges: its size says nothing about what it holds. */
static int describe_ranges(struct dl *d, int64_t server_total, struct buf *out)
{
	int64_t held;
	int n = file_size(d->part) > 0 ? dl_ckpt_ranges(d, &held) : 0;

	if (n > 0 && server_total >= 0 && server_total != d->total)
		return 0; /* the file changed: said by the caller */
	if (n > 0)
		buf_addf(out, "would resume %d ranges of '%s' (%lld of %lld bytes held)%s", n, d->part,
			 (long long)held, (long long)d->total,
			 d->conns > 1 ? "" : "; with one connection, from its first gap");
	return n;
}

/* What the files say without the server. */
static void describe_files(struct dl *d, struct buf *out)
{
	int64_t part = file_size(d->part), final = file_size(d->path), total = -1;

	if (!dl_ckpt_num(d->ctx, "total", &total))
		total = -1;
	if (part > 0 && total >= 0)
		buf_addf(out, "would resume at byte %lld of %lld", (long long)part, (long long)total);
	else if (part > 0)
		buf_addf(out, "would resume at byte %lld", (long long)part);
	else if (final >= 0)
		buf_addf(out, "would check the existing '%s' (%lld bytes) against %s", d->path,
			 (long long) final, d->shown);
	else
		buf_addf(out, "would download %s to '%s'", d->shown, d->path);
}

static void describe_local(struct dl *d, const char *reason, struct buf *out)
{
	if (!describe_ranges(d, -1, out))
		describe_files(d, out);
	buf_addf(out, " (cannot check the server: %s)", reason);
}

static int dl_describe(struct step_ctx *ctx, struct buf *out, struct mm_error *err)
{
	struct dl d;
	int64_t part, final, have, total = -1;
	const char *held;
	char why[160] = "", size[48] = "";
	int fd = -1, p, ret;

	if ((ret = dl_init(ctx, &d, err)) < 0)
		goto out;
	part = file_size(d.part);
	final = file_size(d.path);
	held = part >= 0 ? d.part : final >= 0 ? d.path : NULL;
	have = part >= 0 ? part : final >= 0 ? final : 0;
	if (ctx->offline || (d.with_auth && !step_server_readonly_ok(ctx))) {
		describe_local(&d, ctx->offline ? "--offline" : "logging in to it is a POST", out);
		goto out;
	}
	if ((ret = dl_client(&d, err)) < 0)
		goto out;
	if (held && (fd = open(held, O_RDONLY | O_CLOEXEC)) < 0)
		have = 0;
	if ((ret = p = dl_probe(&d, fd, fd < 0 ? 0 : have, 1, &total, why, sizeof(why), err)) < 0)
		goto out;
	ret = 0;
	if (total >= 0)
		snprintf(size, sizeof(size), " (%lld bytes)", (long long)total);
	if (held == d.part && p == P_SAME && total >= 0 && describe_ranges(&d, total, out) > 0)
		goto presign;
	if (fd < 0 || have == 0)
		buf_addf(out, "would download %s%s to '%s'", d.shown, size, d.path);
	else if (p == P_NORANGE)
		buf_addf(out,
			 "would fetch %s from byte 0, comparing the %lld bytes in '%s' (the server "
			 "ignores Range)",
			 d.shown, (long long)have, held);
	else if (p == P_DIFF)
		buf_addf(out, "would download %s again from byte 0: '%s' is not the server's file (%s)",
			 d.shown, held, why);
	else if (held == d.path && total == have)
		buf_addf(out, "would keep '%s': %lld bytes, the same as the server's (hash and record it)",
			 d.path, (long long)have);
	else if (held == d.path)
		buf_addf(out, "would download %s%s to replace '%s'", d.shown, size, d.path);
	else if (total == have)
		buf_addf(out, "would finish '%s': it holds all %lld bytes (hash, check and rename)", held,
			 (long long)have);
	else
		buf_addf(out, "would resume at byte %lld of %lld ('%s' matches the server's so far)",
			 (long long)have, (long long)total, held);
presign:
	if (param_bool(ctx, "presign") && d.with_auth)
		buf_adds(out, "; asks for a presigned link first (a POST, not sent by plan)");
out:
	if (fd >= 0)
		close(fd);
	dl_release(&d);
	return ret;
}

static const char *scalar(const struct plan_step *st, const char *key)
{
	const struct pnode *n = pnode_get(st->node, key);

	return n && n->kind == PN_SCALAR && n->scalar && !strstr(n->scalar, "${") ? n->scalar : NULL;
}

static int dl_check(const struct plan *p, const struct plan_step *st,
		    void (*diag)(void *dctx, const char *key, const char *fmt, ...), void *dctx)
{
	int ex = pnode_get(st->node, "export") != NULL, url = pnode_get(st->node, "url") != NULL;
	const char *s;
	int64_t n;

	if (ex == url)
		diag(dctx, ex ? "url" : NULL,
		     ex ? "give 'export' or 'url', not both"
			: "needs 'export' (a file on the server) or 'url' (any http(s) link)");
	if (ex && !st->server)
		diag(dctx, "export", "'export' needs 'server': the server that holds the export");
	if (url && !ex && st->server)
		diag(dctx, "server",
		     "a 'url' download takes no 'server': the link is fetched without credentials");
	if (url && pnode_get(st->node, "presign"))
		diag(dctx, "presign", "'presign' only applies to 'export'");
	if ((s = scalar(st, "export")) && (strlen(s) < 5 || strcmp(s + strlen(s) - 4, ".zip") || strchr(s, '/')))
		diag(dctx, "export",
		     "export '%s' is not a file name ending in .zip (the server serves no other)", s);
	if ((s = scalar(st, "url")) && !dl_is_http_url(s))
		diag(dctx, "url", "'url' must start with http:// or https://");
	if ((s = scalar(st, "sha256")) && (strlen(s) != 64 || strspn(s, "0123456789abcdefABCDEF") != 64))
		diag(dctx, "sha256", "'sha256' must be 64 hex digits");
	if ((s = scalar(st, "retries")) && s[0] == '-')
		diag(dctx, "retries", "'retries' cannot be negative");
	if ((s = scalar(st, "connections")) && (parse_i64(s, &n) < 0 || n < 1 || n > MAX_CONNECTIONS))
		diag(dctx, "connections", "'connections' must be a whole number from 1 to %d (got '%s')",
		     MAX_CONNECTIONS, s);
	return 0;
}

const struct step_type step_download = {
	.name = "download",
	.summary = "download a server export or an http(s) URL, resumably",
	.server = SERVER_OPTIONAL,
	.params = dl_params,
	.outputs = dl_outputs,
	.identity = dl_identity,
	.check = dl_check,
	.describe = dl_describe,
	.run = dl_run,
};

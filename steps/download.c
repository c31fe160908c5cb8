/*
 * download: fetch a server export by name (GET /api/v4/exports/{name}) or any
 * http(s) URL (a presigned S3 link) into PATH.part; rename it to PATH only
 * once it is whole and checked. Constant memory: bytes stream to the file
 * and through SHA-256 in blocks.
 *
 * Resume (API doc 4.2: no ETag, so If-Range never matches and is never sent):
 *   - the checkpoint holds the source, the total size as soon as an answer
 *     tells it, how many bytes were fsync'ed and the boot id; a run after a
 *     reboot cuts the .part back to the fsync'ed length, because the page
 *     cache may have lost its tail;
 *   - every attempt asks for bytes=(have - overlap)-, compares the overlap
 *     with the bytes held and appends the rest; a mismatch, another total, or
 *     a 416 for another size means the file changed: truncate, start at 0;
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


#include "http.h"
#include "mm.h"
#include "plan.h"
#include "retry.h"
#include "step.h"
#include "hash.h"
#include "sys.h"
#include "util.h"

#define BLOCK (1 << 20)
#define SYNC_EVERY ((int64_t)64 << 20) /* fsync and checkpoint the .part this often */
#define PROGRESS_MS 10000
#define MAX_RESTARTS 3                 /* the file changed under us this often in one run */
#define EOCD_WINDOW (65535 + 22)       /* end of central directory + longest zip comment */

static const struct param_spec dl_params[] = {
	{ .name = "export", .kind = P_STRING, .doc = "export file on the server, e.g. ${steps.export.file}" },
	{ .name = "url", .kind = P_STRING, .secret = 1, .identified_by = "sha256",
	  .doc = "or any http(s) URL (a presigned link), fetched without credentials" },
	{ .name = "path", .kind = P_PATH, .artefact = 1,
	  .doc = "destination; a relative path is in the state directory (default: the file's name there)" },
	{ .name = "presign", .kind = P_BOOL, .def = "false",
	  .doc = "download through a presigned S3 link when the server offers one" },
	{ .name = "sha256", .kind = P_STRING, .doc = "expected SHA-256 of the file, in hex" },
	{ .name = "retries", .kind = P_INT, .def = "8", .doc = "attempts in a row without progress before giving up", .tuning = 1 },
	{ .name = "overlap", .kind = P_SIZE, .def = "64KiB", .doc = "bytes fetched again and compared when resuming", .tuning = 1 },
	{ .name = NULL },
};

static const char *const dl_outputs[] = { "path", "size", "sha256", NULL };
/* Consumers re-run when the bytes change, not when the same bytes are fetched again. */
static const char *const dl_identity[] = { "size", "sha256", NULL };

struct dl {
	struct step_ctx *ctx;
	struct http_client *c;
	struct http_client *own; /* url downloads: a client that has no credentials */
	const char *src;         /* api or link: what is fetched */
	char *api;               /* "/api/v4/exports/NAME", or the plan's URL */
	char *link;              /* presigned link: its query is a credential */
	const char *name;        /* export name */
	char shown[512];         /* src without userinfo and query: safe to print */
	char source[600];        /* "export:NAME" or "url:SHOWN", checkpointed */
	int with_auth, is_zip, presigned, range_ignored;
	char *path, *part;
	int fd;
	int64_t have, total, synced, overlap, last_log;
	struct sha256 sha;
	const struct sys_ops *sys;
	unsigned char *blk; /* BLOCK bytes for comparing and hashing */
};

/* One attempt's view of the body: bytes below held are compared, the rest appended. */
struct feed {
	struct dl *d;
	int cmp_fd;
	int64_t pos, held;
	int append;
	int mismatch, beyond, local;
};

/* ---- small helpers ---------------------------------------------------- */

static int is_http_url(const char *s)
{
	return !strncasecmp(s, "http://", 7) || !strncasecmp(s, "https://", 8);
}

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

static void boot_id(char out[64])
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");

	out[0] = '\0';
	if (f) {
		if (!fgets(out, 64, f))
			out[0] = '\0';
		out[strcspn(out, "\r\n")] = '\0';
		fclose(f);
	}
}

/* A number in the checkpoint into *out; 0 when there is none. */
static int ckpt_num(const struct step_ctx *ctx, const char *key, int64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(ctx->ckpt, key);

	if (!cJSON_IsNumber(v))
		return 0;
	*out = (int64_t)v->valuedouble;
	return 1;
}

/* Feeds bytes [0, len) of fd to the digest. */
static int stop_asked(void *ctx)
{
	return step_should_stop(ctx);
}

static int hash_file(struct dl *d, int fd, int64_t len, const char *name, struct mm_error *err)
{
	int64_t n;
	int rc = sha256_fd(&d->sha, fd, 0, len, d->blk, BLOCK, stop_asked, d->ctx, &n);

	if (rc > 0)
		return err_set(err, MM_EINTR, "interrupted while hashing '%s'", name);
	if (rc < 0)
		return err_set(err, MM_ERR, "cannot read '%s': %s", name,
			       errno == ENODATA ? "file shrank while being read" : strerror(errno));
	return 0;
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
	} else if (url && is_http_url(url)) {
		d->src = d->api = xstrdup(url);
		url_redact(url, d->shown, sizeof(d->shown));
		snprintf(d->source, sizeof(d->source), "url:%s", d->shown);
		base = file_name_of(url, 1);
		d->is_zip = strlen(base) > 4 && !strcasecmp(base + strlen(base) - 4, ".zip");
	} else {
		return err_set(err, MM_EINVAL, "give 'export' (a file on the server) or an http(s) 'url'");
	}
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
	if (d->fd >= 0)
		close(d->fd);
	http_client_free(d->own);
	sha256_release(&d->sha);
	if (d->api)
		http_wipe(d->api, strlen(d->api)); /* a plan's URL may be signed too */
	free(d->api);
	if (d->link)
		http_wipe(d->link, strlen(d->link));
	free(d->link);
	free(d->path);
	free(d->part);
	free(d->blk);
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
	snprintf(origin, sizeof(origin), "%.*s", (int)(strstr(d->shown, "://") + 3 - d->shown) +
		 (int)strcspn(strstr(d->shown, "://") + 3, "/"), d->shown);
	o.base_url = origin;
	o.should_stop = own_should_stop;
	o.stop_ctx = d->ctx;
	o.log = own_log;
	o.log_ctx = d->ctx;
	d->c = d->own = http_client_new(&o, err);
	return d->c ? 0 : MM_ERR;
}

static void use_api(struct dl *d)
{
	if (d->link)
		http_wipe(d->link, strlen(d->link));
	free(d->link);
	d->link = NULL;
	d->src = d->api;
	snprintf(d->shown, sizeof(d->shown), "%s", d->api);
	d->with_auth = d->name != NULL;
	d->presigned = 0;
}

/*
 * presign: true asks for an S3 link (a POST, so never in a dry run), once and
 * without retries: the 500 for a disabled feature (API doc 4.4) is permanent,
 * and any failure only means the API serves the file instead.
 */
static int presign(struct dl *d, struct mm_error *err)
{
	struct http_response r = HTTP_RESPONSE_INIT;
	struct mm_error e = MM_ERROR_INIT;
	struct buf path = BUF_INIT;
	cJSON *j = NULL;
	const cJSON *u;
	int ret = 0;

	use_api(d);
	buf_addf(&path, "%s/presign-url", d->api);
	if (http_json(d->c, "POST", path.data, NULL, HTTP_NO_RETRY, &r, &e) < 0) {
		if (e.code == MM_EINTR)
			ret = err_set(err, MM_EINTR, "%s", e.msg);
		else
			step_log(d->ctx, "no presigned link (%s); downloading through the API", e.msg);
		goto out;
	}
	j = cJSON_ParseWithLength(buf_cstr(&r.body), r.body.len);
	u = cJSON_GetObjectItemCaseSensitive(j, "url");
	if (!cJSON_IsString(u) || !is_http_url(u->valuestring)) {
		step_log(d->ctx, "the presign answer holds no http(s) link; downloading through the API");
		goto out;
	}
	d->src = d->link = xstrdup(u->valuestring);
	http_wipe(u->valuestring, strlen(u->valuestring));
	url_redact(d->link, d->shown, sizeof(d->shown));
	d->with_auth = 0;
	d->presigned = 1;
	step_log(d->ctx, "downloading through a presigned link to %s", d->shown);
out:
	if (r.body.data)
		http_wipe(r.body.data, r.body.len);
	http_response_clear(&r);
	cJSON_Delete(j);
	buf_release(&path);
	return ret;
}

/* ---- checkpoint ------------------------------------------------------- */

static int save_ckpt(struct dl *d, struct mm_error *err)
{
	cJSON *ck = cJSON_CreateObject();
	char boot[64];

	boot_id(boot);
	cJSON_AddStringToObject(ck, "source", d->source);
	cJSON_AddStringToObject(ck, "part", d->part);
	if (d->total >= 0)
		cJSON_AddNumberToObject(ck, "total", (double)d->total);
	cJSON_AddNumberToObject(ck, "synced", (double)d->synced);
	if (*boot)
		cJSON_AddStringToObject(ck, "boot", boot);
	return ckpt_save(d->ctx, ck, err);
}

/* The total size and durable length an earlier run recorded for this source. */
static void load_ckpt(struct dl *d, int64_t *synced, int *rebooted)
{
	const char *src = ckpt_str(d->ctx, "source"), *boot = ckpt_str(d->ctx, "boot");
	char now[64];

	*synced = -1;
	*rebooted = 0;
	if (!src || strcmp(src, d->source))
		return;
	if (!ckpt_num(d->ctx, "total", &d->total))
		d->total = -1;
	if (!ckpt_num(d->ctx, "synced", synced))
		*synced = -1;
	boot_id(now);
	*rebooted = boot && *now && strcmp(boot, now);
}

static int truncate_part(struct dl *d, int64_t len, struct mm_error *err)
{
	if (sys_ftruncate(d->sys, d->fd, (off_t)len) < 0)
		return err_set(err, MM_ERR, "cannot truncate '%s': %s", d->part, strerror(errno));
	d->have = len;
	if (d->synced > len)
		d->synced = len;
	return 0;
}

/* Opens or creates the .part and drops what a reboot may have garbled. */
static int part_open(struct dl *d, struct mm_error *err)
{
	struct stat st;
	int64_t synced;
	int rebooted;

	d->fd = sys_open(d->sys, d->part, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (d->fd < 0 || fstat(d->fd, &st) < 0)
		return err_set(err, MM_ERR, "cannot open '%s': %s", d->part, strerror(errno));
	d->have = st.st_size;
	load_ckpt(d, &synced, &rebooted);
	if (rebooted && synced >= 0 && synced < d->have) {
		step_warn(d->ctx, "the machine restarted since '%s' was written; keeping only its first %lld "
			  "bytes, which were on disk", d->part, (long long)synced);
		return truncate_part(d, synced, err);
	}
	return 0;
}

/* Hashes the bytes held (once per run), makes them durable and records the checkpoint. */
static int hash_held(struct dl *d, struct mm_error *err)
{
	sha256_reset(&d->sha);
	if (d->have > 0) {
		step_log(d->ctx, "found %lld bytes in '%s'; hashing them", (long long)d->have, d->part);
		if (hash_file(d, d->fd, d->have, d->part, err) < 0)
			return err->code;
	}
	if (sys_fsync(d->sys, d->fd) < 0)
		return err_set(err, MM_ERR, "cannot sync '%s': %s", d->part, strerror(errno));
	d->synced = d->have;
	d->last_log = mono_ms();
	return save_ckpt(d, err);
}

/* ---- streaming -------------------------------------------------------- */

static void log_progress(struct dl *d)
{
	if (mono_ms() - d->last_log < PROGRESS_MS)
		return;
	d->last_log = mono_ms();
	if (d->total > 0)
		step_log(d->ctx, "%lld of %lld bytes (%d%%)", (long long)d->have, (long long)d->total,
			 (int)(d->have * 100 / d->total));
	else
		step_log(d->ctx, "%lld bytes", (long long)d->have);
}

static int append(struct feed *f, const unsigned char *p, size_t len, struct mm_error *err)
{
	struct dl *d = f->d;

	if (sys_pwrite_all(d->sys, d->fd, p, len, (off_t)f->pos) < 0) {
		int saved = errno;

		f->local = 1;
		/* Keep the file equal to what was hashed. */
		if (sys_ftruncate(d->sys, d->fd, (off_t)d->have) < 0) {
			/* the write error below says enough */
		}
		return err_set(err, MM_ERR, "cannot write '%s': %s", d->part, strerror(saved));
	}
	sha256_update(&d->sha, p, len);
	f->pos += (int64_t)len;
	d->have = f->pos;
	if (d->have - d->synced >= SYNC_EVERY) {
		if (sys_fsync(d->sys, d->fd) < 0) {
			f->local = 1;
			return err_set(err, MM_ERR, "cannot sync '%s': %s", d->part, strerror(errno));
		}
		d->synced = d->have;
		if (save_ckpt(d, err) < 0) {
			f->local = 1;
			return MM_ERR;
		}
	}
	log_progress(d);
	return 0;
}

/* http_write_fn: compares the bytes we hold, then appends (or stops: a probe). */
static int on_data(void *arg, const void *data, size_t len, struct mm_error *err)
{
	struct feed *f = arg;
	const unsigned char *p = data;

	while (len && f->pos < f->held) {
		size_t n = len;
		ssize_t got;

		if ((int64_t)n > f->held - f->pos)
			n = (size_t)(f->held - f->pos);
		if (n > BLOCK)
			n = BLOCK;
		got = pread(f->cmp_fd, f->d->blk, n, (off_t)f->pos);
		if (got != (ssize_t)n) {
			f->local = 1;
			return err_set(err, MM_ERR, "cannot read the file being resumed: %s",
				       got < 0 ? strerror(errno) : "it shrank");
		}
		if (memcmp(f->d->blk, p, n)) {
			f->mismatch = 1;
			return err_set(err, MM_ERR, "bytes from %lld differ from the ones held",
				       (long long)f->pos);
		}
		p += n;
		len -= n;
		f->pos += (int64_t)n;
	}
	if (!len)
		return 0;
	if (!f->append) {
		f->beyond = 1;
		return err_set(err, MM_ERR, "probe done");
	}
	return append(f, p, len, err);
}

/* The total an answer announced: Content-Range of a 206 or 416, or a 200's length. */
static int64_t announced_total(const struct http_dl_result *res, long http_status)
{
	if (res->status == 206 || http_status == 416)
		return res->range_total;
	if (res->status == 200)
		return res->content_length;
	return -1;
}

/* The file changed under us: start again from byte 0. */
static int restart(struct dl *d, int64_t total, const char *why, struct mm_error *err)
{
	step_warn(d->ctx, "%s changed on the server (%s); downloading it again from byte 0", d->shown, why);
	if (truncate_part(d, 0, err) < 0)
		return MM_ERR;
	d->total = total;
	sha256_reset(&d->sha);
	return save_ckpt(d, err);
}

enum { GO_ON = 0, DONE = 1, RETRY = 2, AGAIN = 3 }; /* AGAIN: no progress, no need to wait */

/* Second-chance credentials: a new session after a 401, a new link after an S3 403. */
static int renew(struct dl *d, const struct mm_error *e, int *renewed, struct mm_error *err)
{
	if (*renewed || !((d->with_auth && e->http_status == 401) || (d->presigned && e->http_status == 403)))
		return 0;
	*renewed = 1;
	if (d->presigned)
		return presign(d, err) < 0 ? MM_EINTR : 1; /* falls back to the API on failure */
	return 1; /* the http layer has logged in again (reauth hook): one more try */
}

/* What one attempt means: DONE, GO_ON (a fresh start), RETRY (back off), AGAIN, or <0. */
static int judge(struct dl *d, struct feed *f, struct http_dl_result *res, int rc, int64_t off,
		 struct mm_error *e, int *restarts, struct mm_error *err)
{
	int64_t seen = announced_total(res, e->http_status);
	char why[128];

	if (f->mismatch || (seen >= 0 && d->total >= 0 && seen != d->total) ||
	    (seen >= 0 && seen < d->have) || (e->http_status == 416 && seen != d->have)) {
		if (f->mismatch)
			snprintf(why, sizeof(why), "the bytes at %lld differ from the ones held", (long long)f->pos);
		else
			snprintf(why, sizeof(why), "%lld bytes now, %lld before", (long long)seen,
				 (long long)(d->total >= 0 ? d->total : d->have));
		if (++*restarts > MAX_RESTARTS)
			return err_set(err, MM_ERR, "%s keeps changing while it is downloaded (%s)", d->shown, why);
		return restart(d, seen, why, err) < 0 ? MM_ERR : GO_ON;
	}
	if (d->total < 0 && seen >= 0) {
		d->total = seen;
		if (save_ckpt(d, err) < 0)
			return MM_ERR;
	}
	if (e->http_status == 416)
		return DONE; /* the server's size is exactly what we hold */
	if (res->status == 200 && off > 0) {
		step_warn(d->ctx, "%s ignored the Range header (HTTP 200 instead of 206); fetching from byte 0 "
			  "and comparing the %lld bytes held instead of appending", d->shown, (long long)d->have);
		d->range_ignored = 1;
		return AGAIN;
	}
	if (rc == 0 && d->total < 0 && res->status == 200)
		d->total = d->have; /* no length announced: the body's end is the file's end */
	if (rc == 0 && d->have == d->total)
		return DONE;
	if (rc == 0 || rc == MM_ERETRY || (res->status == 206 && res->range_start != off))
		return RETRY;
	if (rc == MM_ENOTFOUND) {
		/* Only a new export brings the file back: name the step to start over. */
		const char *up = d->name ? step_linked_step(d->ctx, "export", "export") : NULL;

		if (up)
			step_set_remedy(d->ctx, REMEDY_RESET, up);
		return err_set(err, MM_ERR, "%s%s", e->msg,
			       d->is_zip ? " (no such export: deleted by retention or a cleanup step?)" : "");
	}
	*err = *e;
	return rc < 0 ? rc : MM_ERR;
}

/* The resume loop: attempts go on while each one adds bytes. */
static int fetch(struct dl *d, struct mm_error *err)
{
	struct retry_policy policy;
	struct retry_state rs = RETRY_STATE_INIT;
	int64_t best = d->have;
	int restarts = 0, renewed = 0;

	retry_policy_init(&policy, (int)param_int(d->ctx, "retries"));
	for (;;) {
		struct mm_error e = MM_ERROR_INIT;
		struct http_dl_result res = { 0 };
		int64_t off = d->range_ignored || d->have <= d->overlap ? 0 : d->have - d->overlap;
		struct feed f = { d, d->fd, off, d->have, 1, 0, 0, 0 };
		long ms;
		int rc, v;

		rc = http_download_range(d->c, d->src, off, d->with_auth, on_data, &f, &res, &e);
		if (rc == MM_EINTR || step_should_stop(d->ctx))
			return err_set(err, MM_EINTR, "download stopped at byte %lld; the next run resumes from '%s'",
				       (long long)d->have, d->part);
		if (f.local) {
			*err = e;
			return MM_ERR;
		}
		if ((v = renew(d, &e, &renewed, err)) != 0) {
			if (v < 0)
				return v;
			continue;
		}
		v = judge(d, &f, &res, rc, off, &e, &restarts, err);
		if (v < 0 || v == DONE)
			return v < 0 ? v : 0;
		if (v == GO_ON) {
			best = d->have;
			retry_progress(&rs);
			continue;
		}
		if (d->have > best) {
			best = d->have;
			renewed = 0;
			retry_progress(&rs);
			step_log(d->ctx, "transfer cut at byte %lld of %lld (%s); resuming", (long long)d->have,
				 (long long)d->total, e.msg[0] ? e.msg : "short body");
			continue;
		}
		if ((ms = retry_next(&policy, &rs, v == RETRY ? res.retry_after_s : 0)) < 0)
			return err_set(err, MM_ERR, "gave up after %d attempts in a row without progress at byte "
				       "%lld: %s", rs.fails, (long long)d->have, e.msg[0] ? e.msg : "no data");
		if (v == RETRY) {
			step_warn(d->ctx, "%s; attempt %d of %d without progress, next in %ld ms",
				  e.msg[0] ? e.msg : "no data", rs.fails, policy.retries + 1, ms);
			if (step_sleep(d->ctx, ms) < 0)
				return err_set(err, MM_EINTR, "download stopped at byte %lld; the next run resumes "
					       "from '%s'", (long long)d->have, d->part);
		}
	}
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

static int check_whole(struct dl *d, int fd, int64_t size, const char *name, const char *hex,
		       struct mm_error *err)
{
	const char *want = param_str(d->ctx, "sha256");

	if (want && strcasecmp(want, hex))
		return err_set(err, MM_ERR, "'%s' has SHA-256 %s, expected %s", name, hex, want);
	if (d->is_zip && !zip_has_eocd(d, fd, size))
		return err_set(err, MM_ERR, "'%s' (%lld bytes) is not a complete zip: no end of central "
			       "directory record (the export may still be being written)", name, (long long)size);
	return 0;
}

static void set_outputs(struct dl *d, int64_t size, const char *hex)
{
	cJSON_AddStringToObject(d->ctx->outputs, "path", d->path);
	cJSON_AddNumberToObject(d->ctx->outputs, "size", (double)size);
	cJSON_AddStringToObject(d->ctx->outputs, "sha256", hex);
}

static int finish(struct dl *d, struct mm_error *err)
{
	char hex[65];

	if (sys_fsync(d->sys, d->fd) < 0)
		return err_set(err, MM_ERR, "cannot sync '%s': %s", d->part, strerror(errno));
	sha256_final_hex(&d->sha, hex);
	if (check_whole(d, d->fd, d->have, d->part, hex, err) < 0) {
		/* These are the server's bytes; a later run fetches them afresh. */
		size_t len = strlen(err->msg);

		sys_unlink(d->sys, d->part);
		snprintf(err->msg + len, sizeof(err->msg) - len, "; removed it");
		return MM_ERR;
	}
	if (sys_rename(d->sys, d->part, d->path) < 0)
		return err_set(err, MM_ERR, "cannot rename '%s' to '%s': %s", d->part, d->path, strerror(errno));
	if (fsync_dir_of(d, err) < 0)
		return MM_ERR;
	set_outputs(d, d->have, hex);
	step_log(d->ctx, "downloaded %s: %lld bytes, sha256 %s", d->path, (long long)d->have, hex);
	return 0;
}

/* ---- checking without downloading ------------------------------------- */

enum { P_DIFF = 0, P_SAME = 1, P_NORANGE = 2 };

/*
 * One GET that compares the last `overlap` of the `have` bytes in fd with the
 * server's and stops there. P_SAME: fd holds a prefix of the server's file
 * (*total its size, -1 unknown); P_DIFF: it does not (why says how).
 */
static int probe(struct dl *d, int fd, int64_t have, int tries_max, int64_t *total, char *why,
		 size_t wlen, struct mm_error *err)
{
	int64_t off = have <= d->overlap ? 0 : have - d->overlap;

	for (int tries = 0, renewed = 0;; tries++) {
		struct feed f = { d, fd, off, have, 0, 0, 0, 0 };
		struct http_dl_result res;
		int rc, v;

		err_clear(err);
		rc = http_download_range(d->c, d->src, off, d->with_auth, on_data, &f, &res, err);
		*total = announced_total(&res, err->http_status);
		if (rc == MM_EINTR || f.local)
			return rc;
		if (f.mismatch) {
			snprintf(why, wlen, "the bytes at %lld differ from the server's", (long long)f.pos);
			return P_DIFF;
		}
		if (res.status == 200 && off > 0)
			return P_NORANGE;
		if (f.beyond || (rc == 0 && (res.status == 200 || res.status == 206)) ||
		    (err->http_status == 416 && *total == have)) {
			if (*total >= 0 && *total < have) {
				snprintf(why, wlen, "the server's file has %lld bytes, %lld held", (long long)*total,
					 (long long)have);
				return P_DIFF;
			}
			return P_SAME;
		}
		if (err->http_status == 416) {
			snprintf(why, wlen, "the server's file has %lld bytes, %lld held", (long long)*total,
				 (long long)have);
			return P_DIFF;
		}
		if (!d->ctx->dry_run && (v = renew(d, err, &renewed, err)) != 0) {
			if (v < 0)
				return v;
			continue;
		}
		if (rc != MM_ERETRY || tries + 1 >= tries_max)
			return rc < 0 ? rc : err_set(err, MM_ERR, "%s: the answer ended early", d->shown);
		step_warn(d->ctx, "%s; checking again in %ld s", err->msg, 1L << tries);
		if (step_sleep(d->ctx, 1000L << tries) < 0)
			return err_set(err, MM_EINTR, "interrupted");
	}
}

/*
 * Before the first long attempt, one short GET learns the total and compares
 * the last `overlap` bytes held. The write callback never sees headers, so an
 * attempt only reports the size when it ends: without this a run killed in
 * its first attempt would not have checkpointed the total, and an export that
 * grew between runs would get its whole remainder appended before the other
 * size showed. Probe failures are left to the resume loop, which retries.
 */
static int check_held(struct dl *d, struct mm_error *err)
{
	struct mm_error e = MM_ERROR_INIT;
	int64_t total = -1;
	char why[160] = "";
	int p = probe(d, d->fd, d->have, 1, &total, why, sizeof(why), &e);

	if (p == MM_EINTR)
		return err_set(err, MM_EINTR, "%s", e.msg);
	if (p == P_SAME && d->total >= 0 && total >= 0 && total != d->total) {
		snprintf(why, sizeof(why), "%lld bytes now, %lld before", (long long)total, (long long)d->total);
		p = P_DIFF;
	}
	if (p == P_DIFF)
		return restart(d, total, why, err);
	if (p < 0)
		return 0;
	d->range_ignored = p == P_NORANGE;
	if (total >= 0)
		d->total = total;
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
	p = probe(d, fd, have, 3, &total, why, sizeof(why), err);
	if (p < 0 && p != MM_EINTR && ckpt_num(d->ctx, "total", &ck) && ck == have &&
	    !strcmp(ckpt_str(d->ctx, "source") ? ckpt_str(d->ctx, "source") : "", d->source)) {
		step_warn(d->ctx, "cannot check '%s' against the server (%s); keeping it: its size is the "
			  "one recorded", d->path, err->msg);
		total = have;
		p = P_SAME;
	}
	if (p < 0) {
		ret = p;
		goto out;
	}
	if (p != P_SAME || total != have) {
		step_log(d->ctx, "'%s' is not the server's file (%s); downloading it again", d->path,
			 p == P_NORANGE ? "cannot tell: the server ignores Range" :
			 *why ? why : "the server's is longer");
		goto out;
	}
	sha256_reset(&d->sha);
	if ((ret = hash_file(d, fd, have, d->path, err)) < 0)
		goto out;
	sha256_final_hex(&d->sha, hex);
	if ((ret = check_whole(d, fd, have, d->path, hex, err)) < 0)
		goto out;
	step_log(d->ctx, "'%s' is already complete (%lld bytes, the server's); sha256 %s", d->path,
		 (long long)have, hex);
	set_outputs(d, have, hex);
	ret = 1;
out:
	close(fd);
	return ret;
}

/* ---- the step --------------------------------------------------------- */

static int dl_run(struct step_ctx *ctx, struct mm_error *err)
{
	struct dl d;
	int ret;

	if ((ret = dl_init(ctx, &d, err)) < 0 || (ret = dl_client(&d, err)) < 0)
		goto out;
	if (param_bool(ctx, "presign") && d.with_auth && (ret = presign(&d, err)) < 0)
		goto out;
	if (file_size(d.part) < 0 && file_size(d.path) >= 0 && (ret = adopt_final(&d, err)) != 0)
		goto out;
	if ((ret = part_open(&d, err)) < 0 || ((d.have > 0 || d.total < 0) && (ret = check_held(&d, err)) < 0) ||
	    (ret = hash_held(&d, err)) < 0 || (ret = fetch(&d, err)) < 0)
		goto out;
	ret = finish(&d, err);
out:
	dl_release(&d);
	return ret > 0 ? 0 : ret;
}

static void describe_local(struct dl *d, const char *reason, struct buf *out)
{
	int64_t part = file_size(d->part), final = file_size(d->path), total = -1;

	if (!ckpt_num(d->ctx, "total", &total))
		total = -1;
	if (part > 0 && total >= 0)
		buf_addf(out, "would resume at byte %lld of %lld", (long long)part, (long long)total);
	else if (part > 0)
		buf_addf(out, "would resume at byte %lld", (long long)part);
	else if (final >= 0)
		buf_addf(out, "would check the existing '%s' (%lld bytes) against %s", d->path,
			 (long long)final, d->shown);
	else
		buf_addf(out, "would download %s to '%s'", d->shown, d->path);
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
	if ((ret = p = probe(&d, fd, fd < 0 ? 0 : have, 1, &total, why, sizeof(why), err)) < 0)
		goto out;
	ret = 0;
	if (total >= 0)
		snprintf(size, sizeof(size), " (%lld bytes)", (long long)total);
	if (fd < 0 || have == 0)
		buf_addf(out, "would download %s%s to '%s'", d.shown, size, d.path);
	else if (p == P_NORANGE)
		buf_addf(out, "would fetch %s from byte 0, comparing the %lld bytes in '%s' (the server "
			 "ignores Range)", d.shown, (long long)have, held);
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

	if (ex == url)
		diag(dctx, ex ? "url" : NULL, ex ? "give 'export' or 'url', not both" :
			"needs 'export' (a file on the server) or 'url' (any http(s) link)");
	if (ex && !st->server)
		diag(dctx, "export", "'export' needs 'server': the server that holds the export");
	if (url && !ex && st->server)
		diag(dctx, "server", "a 'url' download takes no 'server': the link is fetched without credentials");
	if (url && pnode_get(st->node, "presign"))
		diag(dctx, "presign", "'presign' only applies to 'export'");
	if ((s = scalar(st, "export")) && (strlen(s) < 5 || strcmp(s + strlen(s) - 4, ".zip") || strchr(s, '/')))
		diag(dctx, "export", "export '%s' is not a file name ending in .zip (the server serves no other)", s);
	if ((s = scalar(st, "url")) && !is_http_url(s))
		diag(dctx, "url", "'url' must start with http:// or https://");
	if ((s = scalar(st, "sha256")) && (strlen(s) != 64 || strspn(s, "0123456789abcdefABCDEF") != 64))
		diag(dctx, "sha256", "'sha256' must be 64 hex digits");
	if ((s = scalar(st, "retries")) && s[0] == '-')
		diag(dctx, "retries", "'retries' cannot be negative");
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

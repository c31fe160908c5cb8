/*
 * download_part.c: the .part file of a download: its checkpoint (source,
 * total, bytes fsync'ed, boot id), reopening it after a crash or a reboot,
 * hashing what it holds, and appending what arrives.
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

static void boot_id(char out[64])
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	out[0] = '\0';
	if (f) {
		if (!fgets(out, 64, f))
			out[0] = '\0';
		out[strcspn(out, "\r\n")] = '\0';
		fclose(f);
	}
}

/* A number in the checkpoint into *out; 0 when there is none. */
int dl_ckpt_num(const struct step_ctx *ctx, const char *key, int64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(ctx->ckpt, key);

	if (!cJSON_IsNumber(v))
		return 0;
	*out = double_to_i64(v->valuedouble);
	return 1;
}

/*
 * Feeds bytes [0, len) of fd to the digest and, for a zip, to the zip check,
 * both started afresh: one read of the file, at hashing speed.
 */
int dl_hash_file(struct dl *d, int fd, int64_t len, const char *name, struct mm_error *err)
{
	int64_t off = 0;

	sha256_reset(&d->sha);
	if (d->zs)
		zs_reset(d->zs);
	step_meter_start(d->ctx, &d->meter, "hash", 0, len);
	while (off < len) {
		size_t n = len - off < BLOCK ? (size_t)(len - off) : BLOCK;
		ssize_t got = pread(fd, d->blk, n, (off_t)off);

		if (step_should_stop(d->ctx))
			return err_set(err, MM_EINTR, "interrupted while hashing '%s'", name);
		if (got <= 0)
			return err_set(err, MM_ERR, "cannot read '%s': %s", name,
				       got == 0 ? "file shrank while being read" : strerror(errno));
		sha256_update(&d->sha, d->blk, (size_t)got);
		if (d->zs)
			zs_feed(d->zs, d->blk, (size_t)got);
		off += got;
		step_meter_update(d->ctx, &d->meter, off);
	}
	step_meter_finish(d->ctx, &d->meter);
	d->metering = 0;
	return 0;
}

/* ---- checkpoint ------------------------------------------------------- */

/* [[start, synced, end], ...]: only positions already fsync'ed. */
static void add_ranges(const struct dl *d, cJSON *ck)
{
	cJSON *a = cJSON_AddArrayToObject(ck, "ranges");

	for (int i = 0; i < d->nranges; i++) {
		const struct dl_range *r = &d->ranges[i];
		double v[3] = { (double)r->start, (double)r->synced, (double)r->end };

		cJSON_AddItemToArray(a, cJSON_CreateDoubleArray(v, 3));
	}
}

int dl_save_ckpt(struct dl *d, struct mm_error *err)
{
	cJSON *ck = cJSON_CreateObject();
	char boot[64];

	boot_id(boot);
	cJSON_AddStringToObject(ck, "source", d->source);
	cJSON_AddStringToObject(ck, "part", d->part);
	if (d->total >= 0)
		cJSON_AddNumberToObject(ck, "total", (double)d->total);
	cJSON_AddNumberToObject(ck, "synced", (double)d->synced);
	if (d->nranges > 0 && d->total >= 0)
		add_ranges(d, ck);
	if (*boot)
		cJSON_AddStringToObject(ck, "boot", boot);
	return ckpt_save(d->ctx, ck, err);
}

int64_t dl_ranges_frontier(const struct dl *d)
{
	for (int i = 0; i < d->nranges; i++)
		if (d->ranges[i].pos < d->ranges[i].end)
			return d->ranges[i].pos;
	return d->nranges ? d->ranges[d->nranges - 1].end : d->have;
}

/* One [start, synced, end] of the checkpoint, or 0 when it is not one that follows prev. */
static int range_of(const cJSON *item, int64_t prev_end, int64_t total, struct dl_range *r)
{
	const cJSON *v[3];

	if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) != 3)
		return 0;
	for (int i = 0; i < 3; i++)
		if (!cJSON_IsNumber(v[i] = cJSON_GetArrayItem(item, i)))
			return 0;
	r->start = double_to_i64(v[0]->valuedouble);
	r->pos = r->synced = double_to_i64(v[1]->valuedouble);
	r->end = double_to_i64(v[2]->valuedouble);
	r->slot = -1;
	r->rest_until = 0;
	return (prev_end < 0 || r->start == prev_end) && r->start <= r->pos && r->pos <= r->end &&
	       r->end <= total;
}

/* The ranges of a parallel download an earlier run recorded; none when they do not add up. */
static void load_ranges(struct dl *d)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(d->ctx->ckpt, "ranges");
	int n = cJSON_GetArraySize(a);
	int64_t prev = -1;

	if (!cJSON_IsArray(a) || n < 1 || n > MAX_CONNECTIONS + 1 || d->total < 0)
		return;
	d->ranges = xcalloc((size_t)n, sizeof(*d->ranges));
	for (int i = 0; i < n; i++) {
		if (!range_of(cJSON_GetArrayItem(a, i), prev, d->total, &d->ranges[i]))
			goto bad;
		prev = d->ranges[i].end;
	}
	if (prev != d->total)
		goto bad;
	d->nranges = n;
	return;
bad:
	free(d->ranges);
	d->ranges = NULL;
}

int dl_ckpt_ranges(struct dl *d, int64_t *held)
{
	const char *src = ckpt_str(d->ctx, "source");

	*held = 0;
	if (!src || strcmp(src, d->source) || !dl_ckpt_num(d->ctx, "total", &d->total))
		return 0;
	load_ranges(d);
	for (int i = 0; i < d->nranges; i++)
		*held += d->ranges[i].synced - d->ranges[i].start;
	if (d->nranges)
		*held += d->ranges[0].start;
	return d->nranges;
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
	if (!dl_ckpt_num(d->ctx, "total", &d->total))
		d->total = -1;
	if (!dl_ckpt_num(d->ctx, "synced", synced))
		*synced = -1;
	load_ranges(d);
	boot_id(now);
	*rebooted = boot && *now && strcmp(boot, now);
}

size_t dl_compare_held(struct dl *d, int fd, int64_t at, const unsigned char *p, size_t n, int *local,
		       int *mismatch, struct mm_error *err)
{
	ssize_t got;

	if (n > BLOCK)
		n = BLOCK;
	got = pread(fd, d->blk, n, (off_t)at);
	if (got != (ssize_t)n) {
		*local = 1;
		err_set(err, MM_ERR, "cannot read the file being resumed: %s",
			got < 0 ? strerror(errno) : "it shrank");
		return 0;
	}
	if (memcmp(d->blk, p, n)) {
		*mismatch = 1;
		err_set(err, MM_ERR, "bytes from %lld differ from the ones held", (long long)at);
		return 0;
	}
	return n;
}

int dl_truncate_part(struct dl *d, int64_t len, struct mm_error *err)
{
	if (sys_ftruncate(d->sys, d->fd, (off_t)len) < 0)
		return err_set(err, MM_ERR, "cannot truncate '%s': %s", d->part, strerror(errno));
	d->have = len;
	if (d->synced > len)
		d->synced = len;
	return 0;
}

/*
 * A parallel download's .part: every recorded position was fsync'ed before it
 * was recorded, so a reboot changes nothing. The bytes held are the prefix
 * up to the first unfinished range; with one connection now, the .part is
 * cut back to that prefix and goes on as a plain download.
 */
static int ranges_held(struct dl *d, struct mm_error *err)
{
	int64_t front = dl_ranges_frontier(d);

	if (d->have < front) { /* shorter than recorded: trust none of it */
		d->nranges = 0;
		return dl_truncate_part(d, 0, err);
	}
	if (d->conns > 1) {
		d->have = front;
		return 0;
	}
	d->nranges = 0;
	return dl_truncate_part(d, front, err);
}

/* Opens or creates the .part and drops what a reboot may have garbled. */
int dl_part_open(struct dl *d, struct mm_error *err)
{
	struct stat st;
	int64_t synced;
	int rebooted;

	d->fd = sys_open(d->sys, d->part, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (d->fd < 0 || fstat(d->fd, &st) < 0)
		return err_set(err, MM_ERR, "cannot open '%s': %s", d->part, strerror(errno));
	d->have = st.st_size;
	load_ckpt(d, &synced, &rebooted);
	if (d->nranges > 0)
		return ranges_held(d, err);
	if (rebooted && synced >= 0 && synced < d->have) {
		step_warn(d->ctx,
			  "the machine restarted since '%s' was written; keeping only its first %lld "
			  "bytes, which were on disk",
			  d->part, (long long)synced);
		return dl_truncate_part(d, synced, err);
	}
	return 0;
}

/* Hashes the bytes held (once per run), makes them durable and records the checkpoint. */
int dl_hash_held(struct dl *d, struct mm_error *err)
{
	if (d->have > 0)
		step_log(d->ctx, "found %lld bytes in '%s'; hashing%s them", (long long)d->have, d->part,
			 d->zs ? " and checking" : "");
	/* the zip check's running state is rebuilt here, not checkpointed */
	if (dl_hash_file(d, d->fd, d->have, d->part, err) < 0)
		return err->code;
	if (sys_fsync(d->sys, d->fd) < 0)
		return err_set(err, MM_ERR, "cannot sync '%s': %s", d->part, strerror(errno));
	d->synced = d->have;
	return dl_save_ckpt(d, err);
}

/* ---- streaming -------------------------------------------------------- */

void dl_meter(struct dl *d, int64_t at)
{
	if (!d->metering) {
		step_meter_start(d->ctx, &d->meter, "download", at, d->total);
		d->metering = 1;
	}
	d->meter.total = d->total;
	step_meter_update(d->ctx, &d->meter, at);
}

void dl_meter_finish(struct dl *d)
{
	if (d->metering)
		step_meter_finish(d->ctx, &d->meter);
	d->metering = 0;
}

int dl_append(struct feed *f, const unsigned char *p, size_t len, struct mm_error *err)
{
	struct dl *d = f->d;
	int over = 0;

	if (d->total >= 0 && f->pos + (int64_t)len > d->total) {
		/* never past the announced size: the rest is a failed attempt */
		len = f->pos < d->total ? (size_t)(d->total - f->pos) : 0;
		over = 1;
	}
	if (len && sys_pwrite_all(d->sys, d->fd, p, len, (off_t)f->pos) < 0) {
		int saved = errno;

		f->local = 1;
		/* Keep the file equal to what was written before. */
		if (sys_ftruncate(d->sys, d->fd, (off_t)d->have) < 0) {
			/* the write error below says enough */
		}
		return err_set(err, MM_ERR, "cannot write '%s': %s", d->part, strerror(saved));
	}
	f->pos += (int64_t)len;
	d->have = f->pos;
	if (dl_hasher_feed(d, d->have, err) < 0) {
		f->local = err->code != MM_EINTR;
		return err->code;
	}
	if (d->have - d->synced >= SYNC_EVERY) {
		if (sys_fsync(d->sys, d->fd) < 0) {
			f->local = 1;
			return err_set(err, MM_ERR, "cannot sync '%s': %s", d->part, strerror(errno));
		}
		d->synced = dl_hasher_hashed(d); /* only what is hashed and on disk */
		if (dl_save_ckpt(d, err) < 0) {
			f->local = 1;
			return MM_ERR;
		}
	}
	dl_meter(d, d->have);
	if (over) {
		f->over = 1;
		return err_set(err, MM_ERETRY,
			       "the server sent more than the %lld bytes it announced; kept "
			       "those, dropped the rest",
			       (long long)d->total);
	}
	return 0;
}

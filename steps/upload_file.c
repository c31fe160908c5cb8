/*
 * upload_file.c: the upload step's local file: its identity, and where its
 * SHA-256 comes from (docs/performance.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hash.h"
#include "readahead.h"
#include "up.h"

int up_is_hex64(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!strchr("0123456789abcdefABCDEF", s[n]))
			return 0;
	return n == 64;
}

/* ---- the local file ----------------------------------------------------- */

const char *up_base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

int up_stop_asked(void *ctx)
{
	return step_should_stop(ctx);
}

struct hash_tick {
	const struct step_ctx *ctx;
	struct step_meter meter;
};

/* sha256_fd's tick: progress for the admin, and a stop at a block boundary. */
static int hash_tick(void *arg, int64_t hashed)
{
	struct hash_tick *t = arg;

	step_meter_update(t->ctx, &t->meter, hashed);
	return step_should_stop(t->ctx);
}

/* Size and SHA-256 of fd, read from the start in 1 MiB blocks. */
static int hash_file(const struct step_ctx *ctx, int fd, const char *path, int64_t *size, char hex[65],
		     struct mm_error *err)
{
	struct sha256 h;
	void *block = xmalloc(MIB);
	int ret = MM_ERR, rc;

	if (sha256_init(&h) < 0) {
		free(block);
		return err_set(err, MM_ERR, "cannot compute SHA-256: OpenSSL failed");
	}
	struct hash_tick tick = { ctx };
	struct stat st;

	step_meter_start(ctx, &tick.meter, "hash", 0, fstat(fd, &st) == 0 ? (int64_t)st.st_size : -1);
	rc = sha256_fd(&h, fd, 0, -1, block, MIB, hash_tick, &tick, size);
	step_meter_finish(ctx, &tick.meter);
	if (rc > 0)
		ret = err_set(err, MM_EINTR, "stopped while computing the SHA-256 of '%s'", path);
	else if (rc < 0)
		err_set(err, MM_ERR, "cannot read '%s': %s", path, strerror(errno));
	else {
		sha256_final_hex(&h, hex);
		ret = 0;
	}
	sha256_release(&h);
	free(block);
	return ret;
}

/* Opens the file and notes its size and identity; nothing is read yet. */
int up_open_local(struct upload *u, struct mm_error *err)
{
	u->fd = open(u->path, O_RDONLY | O_CLOEXEC);
	if (u->fd < 0)
		return err_set(err, MM_ERR, "cannot open '%s': %s", u->path, strerror(errno));
	if (fstat(u->fd, &u->st) < 0)
		return err_set(err, MM_ERR, "cannot stat '%s': %s", u->path, strerror(errno));
	u->size = u->st.st_size;
	if (u->size == 0)
		return err_set(err, MM_ERR, "'%s' is empty; there is nothing to import", u->path);
	file_identity(&u->st, u->file_id);
	return 0;
}

/*
 * The digest a done download or verify step recorded for this very file:
 * same size, inode and mtime as when that step checked it. 1 found.
 */
static int known_digest(const struct step_ctx *ctx, struct upload *u, const char **by)
{
	const char *sha = NULL;

	*by = step_find_integrity_proof(ctx, u->size, NULL, u->file_id, &sha);
	if (!*by || !up_is_hex64(sha))
		return 0;
	for (int i = 0; i < 65; i++)
		u->sha[i] = (char)(sha[i] >= 'A' && sha[i] <= 'F' ? sha[i] - 'A' + 'a' : sha[i]);
	return 1;
}

/*
 * Where the digest comes from: a download or verify step that checked this
 * very file (no reading at all), the
 * file itself before anything is sent (dry runs; a sha256 key, which
 * promises that a wrong file never reaches the server, not even in part;
 * checkpoints written before file identities were recorded; a file that
 * some step of the plan must have proven whole, found by its digest), or,
 * for an `unverified: true` upload only, the bytes as they are sent.
 */
int up_choose_digest(const struct step_ctx *ctx, struct upload *u, struct mm_error *err)
{
	const char *want = param_str(ctx, "sha256"), *recorded = ckpt_str(ctx, "sha256"), *by;

	if (known_digest(ctx, u, &by)) {
		if (!ctx->dry_run)
			step_log(ctx,
				 "SHA-256 of '%s' known from step '%s' that checked it (same size, inode and "
				 "mtime): the file is read once, to send it",
				 u->path, by);
	} else if (ctx->dry_run || want || (recorded && !ckpt_str(ctx, "file_id")) ||
		   !param_bool(ctx, "unverified")) {
		if (!ctx->dry_run && u->size >= 1024 * MIB)
			step_log(ctx, "computing the SHA-256 of '%s' (%lld MiB)", u->path,
				 (long long)(u->size / MIB));
		if (hash_file(ctx, u->fd, u->path, &u->size, u->sha, err) < 0)
			return err->code;
	} else {
		u->hashing = 1;
		snprintf(u->expect, sizeof(u->expect), "%s", recorded ? recorded : "");
		return 0;
	}
	if (want && strcasecmp(want, u->sha))
		return err_set(err, MM_ERR, "'%s' has SHA-256 %s, but the step expects %s; not uploading it",
			       u->path, u->sha, want);
	return 0;
}

/* The checkpoint describes the file it was made for; a changed file must not be appended. */
int up_same_file(const struct step_ctx *ctx, const struct upload *u, struct mm_error *err)
{
	const char *sha = ckpt_str(ctx, "sha256"), *name = ckpt_str(ctx, "filename");
	const char *fid = ckpt_str(ctx, "file_id");
	double size = cJSON_GetNumberValue(cJSON_GetObjectItem(ctx->ckpt, "file_size"));
	const char *id = ckpt_str(ctx, "upload_id");

	if (!ctx->ckpt || (!sha && !fid))
		return 0;
	/* A digest computed while sending is only known at the end: until then
	 * the file's identity (a rewrite gets a new mtime or inode) stands in. */
	if ((int64_t)size != u->size || (sha && u->sha[0] && strcmp(sha, u->sha)) ||
	    (fid && strcmp(fid, u->file_id)) || (name && strcmp(name, u->filename)))
		return err_set(err, MM_ERR,
			       "'%s' changed since %s%s was started (then %lld bytes, %s %.20s; now "
			       "%lld bytes, %s %.20s); the server may hold bytes of the old file: run "
			       "'mmigrate reset' on this step to upload the new one",
			       u->path, id ? "upload session " : "its upload", id ? id : "", (long long)size,
			       fid ? "file" : "SHA-256", fid ? fid : sha, (long long)u->size,
			       fid ? "file" : "SHA-256", fid ? u->file_id : u->sha);
	return 0;
}

/*
 * The digest for the outputs: known, or computed while sending. A session
 * that completed in an earlier run (killed before it was recorded) was not
 * read by this one: hash the file now.
 */
int up_final_digest(struct step_ctx *ctx, struct upload *u, struct mm_error *err)
{
	if (u->sha[0] || (u->ra && ra_digest(u->ra, u->sha)))
		return 0;
	if (hash_file(ctx, u->fd, u->path, &u->size, u->sha, err) < 0)
		return err->code;
	if (u->expect[0] && strcasecmp(u->expect, u->sha))
		return err_set(err, MM_ERR, "'%s' has SHA-256 %s, but %s; the server holds the upload already",
			       u->path, u->sha, u->expect);
	return 0;
}

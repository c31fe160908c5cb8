/*
 * up.h: what the upload step's files share (private to steps/).
 *
 *   upload.c          the step: parameters, run, dry run, plan checks
 *   upload_file.c     the local file: identity, where its digest comes from
 *   upload_session.c  the checkpoint and the upload session: find, adopt, create
 *   upload_send.c     the transfer: requests from the server's offset, read-ahead
 *
 * One struct upload per run of the step; every function takes it.
 */
#ifndef MM_STEPS_UPLOAD_H
#define MM_STEPS_UPLOAD_H

#include <stdint.h>
#include <sys/stat.h>

#include "cJSON.h"
#include "meter.h"
#include "mm.h"
#include "retry.h"
#include "step.h"
#include "util.h"

#define MIB (1024 * 1024LL)
#define FIRST_CHUNK_MIN (5 * MIB) /* API doc 5.4: app.upload.upload_data.first_part_too_small */
#define CHUNK_BASE (64 * MIB)     /* the first request, and the one after a failure */
#define CHUNK_MAX (1024 * MIB)
#define CHUNK_SECONDS 10 /* what a grown request should take */

struct readahead;
struct http_client;

struct upload {
	char *path;
	const char *filename;
	int64_t size, chunk;
	int64_t chunk_base; /* 0: chunk_size was given, never grown */
	int64_t rate;       /* bytes/s, 0: no cap */
	struct retry_policy policy;
	struct stat st;            /* when opened: a change during the upload is refused */
	char file_id[FILE_ID_LEN]; /* "dev:inode:mtime_ns" */
	int fresh;                 /* this run created the session, which answered offset 0 */
	struct readahead *ra;
	struct step_ctx *ctx;    /* for progress from libcurl's read callback */
	struct step_meter meter; /* bytes handed to libcurl */
	int hashing;             /* the digest is computed while sending */
	char expect[65];         /* the digest the file must have, "" when none */
	char sha[65];            /* "" until known */
	char id[MM_ID_LEN + 1];
	char name[MM_ID_LEN + 600]; /* "<id>_<filename>" in the import directory */
	cJSON *before;              /* import sessions that existed before ours (creating phase) */
	int fd;
};

/* upload_file.c */
/* 1 when s is 64 hex digits (a SHA-256). */
int up_is_hex64(const char *s);
/* The last component of path; points into it. */
const char *up_base_name(const char *path);
/* A should_stop callback over a struct step_ctx *. */
int up_stop_asked(void *ctx);
/* Opens the file and notes its size and identity; nothing is read yet. */
int up_open_local(struct upload *u, struct mm_error *err);
/*
 * Where the digest comes from: a download or verify step that checked this
 * very file (no reading at all, see known_digest), the
 * file itself before anything is sent (dry runs; a sha256 key, which
 * promises that a wrong file never reaches the server, not even in part;
 * checkpoints written before file identities were recorded; a file that
 * some step of the plan must have proven whole, found by its digest), or,
 * for an `unverified: true` upload only, the bytes as they are sent.
 */
int up_choose_digest(const struct step_ctx *ctx, struct upload *u, struct mm_error *err);
/* The checkpoint describes the file it was made for; a changed file must not be appended. */
int up_same_file(const struct step_ctx *ctx, const struct upload *u, struct mm_error *err);
/*
 * The digest for the outputs: known, or computed while sending. A session
 * that completed in an earlier run (killed before it was recorded) was not
 * read by this one: hash the file now.
 */
int up_final_digest(struct step_ctx *ctx, struct upload *u, struct mm_error *err);

/* upload_session.c */
/* Checkpoints the session (phase, file, id) and the offset reached. */
int up_save(struct step_ctx *ctx, const struct upload *u, int64_t offset, struct mm_error *err);
/* The offset the checkpoint recorded: a hint for dry runs, never what is sent from. */
int64_t up_recorded_offset(const struct step_ctx *ctx);
/*
 * An incomplete import session of this file that did not exist before we
 * started creating one: made by a run that died before recording it, or by a
 * POST whose answer was lost. 1 found (id filled), 0 none, <0 error.
 */
int up_find_session(struct step_ctx *ctx, struct http_client *c, const struct upload *u, const cJSON *before,
		    char id[MM_ID_LEN + 1], struct mm_error *err);
/* A refusal to create a session (or store a chunk) that no retry can fix, explained; MM_ERR. */
int up_create_refused(const struct upload *u, struct mm_error *err);
/*
 * After a failure: says what comes next and waits as the retry policy says.
 * MM_ERETRY when the policy gives up, MM_EINTR when asked to stop.
 */
int up_backoff(const struct step_ctx *ctx, struct upload *u, struct retry_state *rs, const struct mm_error *e,
	       const char *next);
/* Finds the session of an earlier run, or creates one; u->id is checkpointed on return. */
int up_open_session(struct step_ctx *ctx, struct http_client *c, struct upload *u, struct mm_error *err);

/* upload_send.c */
/*
 * Until the session is gone (completed): ask the offset, then send request
 * after request from it while they succeed; after any failure ask again.
 * Gives up after u->retries failures in a row that moved nothing, so a
 * server that never advances is not sent chunks forever.
 */
int up_transfer(struct step_ctx *ctx, struct http_client *c, struct upload *u, struct mm_error *err);

#endif

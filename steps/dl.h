/*
 * dl.h: what the download step's files share (private to steps/).
 *
 *   download.c        the step: parameters, setup, finishing, adopt, describe, check
 *   download_part.c   the .part file: checkpoint, durability, hashing, appending
 *   download_fetch.c  the resume loop: attempts, restarts; the probe of plan and adopt
 *   download_zip.c    the streaming zip check and the heal of damaged ranges
 *   download_par.c    `connections: N`: ranges fetched at once into the .part
 *   download_hash.c   the hashing thread: SHA-256 and the zip check of the written prefix
 *
 * One struct dl per run of the step; every function takes it.
 */
#ifndef MM_STEPS_DOWNLOAD_H
#define MM_STEPS_DOWNLOAD_H

#include <stdint.h>

#include "error.h"
#include "hash.h"
#include "meter.h"
#include "step.h"

#define BLOCK (256 << 10)
#define SYNC_EVERY ((int64_t)64 << 20) /* fsync and checkpoint the .part this often */
#define MAX_RESTARTS 3                 /* the file changed under us this often in one run */
#define HEAL_TRIES 3                   /* fetches of one damaged range before the step gives up */
#define MAX_CONNECTIONS 16             /* `connections` is 1..MAX_CONNECTIONS */
#define LEAD ((int64_t)1 << 20)        /* the first range: its headers tell the total, then the rest split */
#define MIN_RANGE ((int64_t)1 << 20)   /* no range of the rest is smaller, but the last */
#define PAR_CKPT_MS 1000               /* a parallel download checkpoints its ranges this often */

struct zipstream;
struct sys_ops;
struct dl_hasher;

/*
 * One range of a parallel download: [start, end) of the file; bytes below
 * pos are written, below synced are on disk and in the checkpoint. The
 * ranges follow each other from the hashed prefix to the total.
 */
struct dl_range {
	int64_t start, pos, synced, end;
	int slot;           /* the pool slot fetching it, or -1 */
	int64_t rest_until; /* mono ms: an attempt without progress waits until then */
};

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
	/* have: the contiguous prefix written (the hasher may lag it by HASH_LAG);
	 * synced: what is both hashed and on disk, the checkpoint's claim */
	int64_t have, total, synced, overlap;
	struct step_meter meter; /* bytes on the way in, or bytes held being hashed */
	int metering;
	struct sha256 sha;
	const struct sys_ops *sys;
	unsigned char *blk;      /* BLOCK bytes for comparing and hashing */
	struct zipstream *zs;    /* zips: the streaming check, fed with every byte hashed */
	struct dl_hasher *hs;    /* during a transfer: owns sha and zs until joined */
	int conns;               /* `connections` */
	struct dl_range *ranges; /* a parallel download's, owned; nranges 0 otherwise */
	int nranges;
};

/* One attempt's view of the body: bytes below held are compared, the rest appended. */
struct feed {
	struct dl *d;
	int cmp_fd;
	int64_t pos, held;
	int append;
	int mismatch, beyond, local;
	int over; /* the server sent more than the total it announced */
};

enum { P_DIFF = 0, P_SAME = 1, P_NORANGE = 2 };

/* download.c */
int dl_presign(struct dl *d, struct mm_error *err);
/* 1 when s starts with http:// or https:// (a link the download may follow). */
int dl_is_http_url(const char *s);

/* download_part.c */
int dl_ckpt_num(const struct step_ctx *ctx, const char *key, int64_t *out);
int dl_hash_file(struct dl *d, int fd, int64_t len, const char *name, struct mm_error *err);
int dl_save_ckpt(struct dl *d, struct mm_error *err);
int dl_truncate_part(struct dl *d, int64_t len, struct mm_error *err);
int dl_part_open(struct dl *d, struct mm_error *err);
int dl_hash_held(struct dl *d, struct mm_error *err);
/* Ends the progress line of the transfer (once it is done or given up). */
void dl_meter_finish(struct dl *d);
/* The progress line at `at` bytes received. */
void dl_meter(struct dl *d, int64_t at);
/* A parallel download's recorded ranges into d (their count) and the bytes they hold. */
int dl_ckpt_ranges(struct dl *d, int64_t *held);
/* The end of the contiguous prefix a parallel download's ranges have written. */
int64_t dl_ranges_frontier(const struct dl *d);
int dl_append(struct feed *f, const unsigned char *p, size_t len, struct mm_error *err);
/*
 * Compares up to n received bytes (at most BLOCK) with the ones fd holds at
 * `at`: the count compared, or 0 with err set and *local (the file could not
 * be read) or *mismatch (they differ) set.
 */
size_t dl_compare_held(struct dl *d, int fd, int64_t at, const unsigned char *p, size_t n, int *local,
		       int *mismatch, struct mm_error *err);

/* download_fetch.c */
int dl_probe(struct dl *d, int fd, int64_t have, int tries_max, int64_t *total, char *why, size_t wlen,
	     struct mm_error *err);
int dl_fetch(struct dl *d, struct mm_error *err);
int dl_restart(struct dl *d, int64_t total, const char *why, struct mm_error *err);
/* A 404 (e): the error, naming the export step to reset when there is one. */
int dl_not_found(struct dl *d, const struct mm_error *e, struct mm_error *err);

/* download_hash.c */
/* Starts the hashing thread, `from` bytes already hashed; d->hs set. <0 with err. */
int dl_hasher_start(struct dl *d, int64_t from, struct mm_error *err);
/* The contiguous prefix is written up to `upto`: hash it; waits while the lag is too long. */
int dl_hasher_feed(struct dl *d, int64_t upto, struct mm_error *err);
/* Bytes hashed so far (what a checkpoint may record). */
int64_t dl_hasher_hashed(struct dl *d);
/* Waits until all that was fed is hashed, then joins the thread: 0 or <0 with err. */
int dl_hasher_finish(struct dl *d, struct mm_error *err);
/* Joins the thread, whatever is left unhashed (a failed or restarted transfer). No-op without one. */
void dl_hasher_stop(struct dl *d);

/* download_par.c */
/* `connections` > 1: 0 done, 1 fall back to one connection, <0 with err. */
int dl_fetch_par(struct dl *d, struct mm_error *err);

/* download_zip.c */
/* After the last byte: proves the zip whole, healing damaged ranges; 0 or <0 with err. */
int dl_zip_heal(struct dl *d, struct mm_error *err);
/* Outputs of the zip check (entries, crc_ok) into the step's outputs. */
void dl_zip_outputs(struct dl *d);

#endif

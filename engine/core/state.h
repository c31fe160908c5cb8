/*
 * state: the checkpoint (state.json) and the journal (journal.jsonl) in a
 * plan's state directory.
 *
 *   state_open(NULL, dir, 1, &st, err)  creates dir (0700) if needed, reads state.json
 *   state_step_begin(st, "download", &b, err)          running (commit + journal)
 *   state_step_save_checkpoint(st, "download", ckpt, err)
 *   state_step_done / state_step_failed(st, "download", ...)
 *   state_free(st)
 *
 * This file owns the record's schema: no other file writes a record field by
 * name. A record: type, status (running|done|failed|interrupted|reverted),
 * fingerprint, run, definition, inputs, revision, started_at, finished_at, attempts,
 * attempts_log (the last failures), error, outputs, checkpoint.
 *
 * state.json never holds a secret: only resolved non-credential parameters,
 * outputs and resume data reach it. Every file I/O goes through st->sys
 * (sys.h), a table of syscalls that tests replace to fail the Nth call and
 * prove the old state survives.
 */
#ifndef MM_STATE_H
#define MM_STATE_H

#include <cjson/cJSON.h>
#include <sys/types.h>

#include "error.h"
#include "sys.h"

struct state {
	char *dir;
	cJSON *root; /* {"format":1,"steps":{...},...}: read it, write through the functions below */
	const struct sys_ops *sys;
	char run_id[33];
};

/*
 * sys: the OS seam every file call goes through (NULL: sys_posix); not owned.
 * create = 0: read-only use (plan, status): a missing dir gives an empty state and nothing is created.
 */
int state_open(const struct sys_ops *sys, const char *dir, int create, struct state **out,
	       struct mm_error *err);
void state_free(struct state *);
/* Parses state.json text (what names it in errors); *root is the caller's (cJSON_Delete). */
int state_parse(const char *text, size_t len, const char *what, cJSON **root, struct mm_error *err);

/* ---- a step's record: read (owned by st; NULL when absent) ---- */
const cJSON *state_step_get(const struct state *, const char *id);
const char *state_step_str(const struct state *, const char *id, const char *key);
const cJSON *state_step_outputs(const struct state *, const char *id); /* of a done step */
const cJSON *state_step_checkpoint(const struct state *, const char *id);
int state_step_is_done(const struct state *, const char *id);

/* ---- a step's record: the lifecycle, each committed and journalled before it returns ---- */
struct step_begin {
	const char *type, *fingerprint;
	cJSON *definition;     /* resolved parameters without secrets; ownership taken */
	const cJSON *revision; /* git provenance, copied; NULL when none */
	const cJSON *inputs;   /* identity of each upstream output used ("steps.U.K"), copied; NULL: none */
	int resume;            /* 1: keep the checkpoint (same fingerprint) */
};
/* status running; a fresh start (not resume) drops the checkpoint. A fresh start, or a
 * resume after a failure, counts an attempt (a resume after a kill or signal does not). */
int state_step_begin(struct state *, const char *id, const struct step_begin *, struct mm_error *err);
/* Replaces the checkpoint (takes ownership). previous: receives the old one, detached and
 * the caller's to free (so pointers into it stay valid); NULL frees it. */
int state_step_save_checkpoint(struct state *, const char *id, cJSON *ckpt, cJSON **previous,
			       struct mm_error *err);
/* status done with a copy of outputs; the checkpoint goes. */
int state_step_done(struct state *, const char *id, const cJSON *outputs, struct mm_error *err);
/* status failed (or interrupted), with the message; the attempt is kept in "attempts_log". */
int state_step_failed(struct state *, const char *id, int interrupted, const char *msg, struct mm_error *err);
/* A done step whose effect an `always` step undid after a failure (a config restore):
 * status reverted with why, so the next apply runs it again. Committed and journalled. */
int state_step_revert(struct state *, const char *id, const char *why, struct mm_error *err);
/* Forgets the record (reset); commit with state_commit. */
void state_step_forget(struct state *, const char *id);

/* Plan-level fields (plan, provenance, last_run): root[key] = value, ownership taken. */
void state_set(struct state *, const char *key, cJSON *value);

int state_commit(struct state *, struct mm_error *);

/* Appends {"run":..,"time":..,"step":..,"event":..,"details":..}. Takes ownership of details. */
int journal_append(struct state *, const char *step, const char *event, cJSON *details, struct mm_error *err);

/* Takes an OS lock on dir/lock that dies with the process; MM_ELOCKED names the holder's pid.
 * *fd is kept open for the run; close it (or exit) to release. */
int lock_acquire(const struct sys_ops *sys, const char *dir, int *fd, struct mm_error *err);

/* Who holds dir/lock, without taking it: the pid the lock file names (0 when none) and
 * whether the lock is held: what /proc/locks says of the file (Linux; this kernel's
 * locks only), else whether a process with that pid is alive (kill(pid, 0)). The file
 * keeps the last holder's pid after it exits, so a dead holder is an abandoned lock. */
void lock_holder(const char *dir, long *pid, int *alive);

#endif

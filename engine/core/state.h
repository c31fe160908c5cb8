/*
 * state: the checkpoint (state.json) and the journal (journal.jsonl) in a
 * plan's state directory.
 *
 *   state_open(dir, 1, &st, err)     creates dir (0700) if needed, reads state.json
 *   rec = state_step(st, "download") the step's record (created empty), owned by st
 *   ... edit rec with cJSON ...
 *   state_commit(st, err)            temp file, fsync, rename, fsync dir: all or nothing
 *   journal_append(st, step, event, details, err)   one line, O_APPEND, fsync
 *   state_free(st)
 *
 * state.json never holds a secret: only resolved non-credential parameters,
 * outputs and resume data reach it. Every file I/O goes through st->sys, a
 * table of syscalls (SQLite's aSyscall[]) that tests replace to fail the Nth
 * call and prove the old state survives.
 */
#ifndef MM_STATE_H
#define MM_STATE_H

#include <cjson/cJSON.h>
#include <sys/types.h>

#include "error.h"

struct sys_ops {
	int (*open)(const char *path, int flags, mode_t mode);
	ssize_t (*write)(int fd, const void *buf, size_t n);
	int (*fsync)(int fd);
	int (*rename)(const char *from, const char *to);
	int (*close)(int fd);
	void *ctx; /* for test doubles */
};

extern const struct sys_ops sys_posix;

struct state {
	char *dir;
	cJSON *root;     /* {"format":1,"steps":{...},...} */
	const struct sys_ops *sys;
	char run_id[33];
};

/* create = 0: read-only use (plan, status): a missing dir gives an empty state and nothing is created. */
int state_open(const char *dir, int create, struct state **out, struct mm_error *err);
void state_free(struct state *);

/* The record of step id, created when missing. Owned by st. */
cJSON *state_step(struct state *, const char *id);
/* The record, or NULL. */
cJSON *state_step_get(const struct state *, const char *id);
void state_step_forget(struct state *, const char *id);
/* Sets root[key] = value (takes ownership). */
void state_set(struct state *, const char *key, cJSON *value);

int state_commit(struct state *, struct mm_error *);

/* Appends {"run":..,"time":..,"step":..,"event":..,"details":..}. Takes ownership of details. */
int journal_append(struct state *, const char *step, const char *event, cJSON *details,
		   struct mm_error *err);

/* Writes data to dir/name atomically with mode 0600 through sys. */
int atomic_write(const struct sys_ops *sys, const char *dir, const char *name, const void *data,
		 size_t len, struct mm_error *err);

/* mkdir -p with mode for each created level. */
int mkdir_p(const char *path, mode_t mode, struct mm_error *err);

/* Takes an OS lock on dir/lock that dies with the process; MM_ELOCKED names the holder's pid.
 * *fd is kept open for the run; close it (or exit) to release. */
int lock_acquire(const char *dir, int *fd, struct mm_error *err);

#endif

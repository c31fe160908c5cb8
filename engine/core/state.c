#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "buf.h"
#include "hash.h"
#include "jsonlimit.h"
#include "util.h"

static char *slurp(const char *path, int *missing, struct mm_error *err)
{
	struct buf b = BUF_INIT;

	*missing = 0;
	if (buf_read_file(&b, path) < 0) {
		if (errno == ENOENT)
			*missing = 1;
		else
			err_set(err, MM_ERR, "cannot read '%s': %s", path, strerror(errno));
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b);
}

static void new_run_id(char out[33])
{
	unsigned char raw[16];

	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		int64_t t = now_ms() ^ (int64_t)getpid();

		memcpy(raw, &t, sizeof(t));
		memcpy(raw + 8, &t, sizeof(t));
	}
	hex_encode(raw, sizeof(raw), out);
}

int state_parse(const char *text, size_t len, const char *what, cJSON **root, struct mm_error *err)
{
	*root = NULL;
	if (json_within_limits(text, len, JSON_MAX_DEPTH, JSON_MAX_VALUES, err) == 0)
		*root = cJSON_ParseWithLength(text, len);
	if (!cJSON_IsObject(*root) || !cJSON_IsObject(cJSON_GetObjectItem(*root, "steps"))) {
		cJSON_Delete(*root);
		*root = NULL;
		return err_set(err, MM_ERR,
			       "'%s' is not a valid mmigrate state file; move it away to start over", what);
	}
	return 0;
}

static int load_state(struct state *st, struct mm_error *err)
{
	struct buf path = BUF_INIT;
	int missing, ret = 0;
	char *text;

	buf_addf(&path, "%s/state.json", st->dir);
	text = slurp(path.data, &missing, err);
	if (!text && !missing) {
		ret = MM_ERR;
		goto out;
	}
	if (text) {
		if ((ret = state_parse(text, strlen(text), path.data, &st->root, err)) < 0)
			goto out;
	} else {
		st->root = cJSON_CreateObject();
		cJSON_AddNumberToObject(st->root, "format", 1);
		cJSON_AddObjectToObject(st->root, "steps");
	}
out:
	free(text);
	buf_release(&path);
	return ret;
}

/*
 * A state directory holds the checkpoint that decides what runs next: one
 * that another user owns, or that group or others may write to, lets them
 * plant links or rewrite state.json under us. A symlinked directory moves
 * everything somewhere the plan's owner never chose. lstat: the directory
 * itself, not what a link points to. A missing directory is fine (read-only
 * use, or about to be created 0700).
 */
static int check_state_dir(const char *dir, struct mm_error *err)
{
	struct stat sb;

	if (lstat(dir, &sb) < 0)
		return errno == ENOENT ? 0
				       : err_set(err, MM_ERR, "cannot inspect state directory '%s': %s", dir,
						 strerror(errno));
	if (S_ISLNK(sb.st_mode))
		return err_set(err, MM_ERR,
			       "state directory '%s' is a symbolic link; refusing to follow it (use the real "
			       "path with --state-dir, or replace the link with a directory)",
			       dir);
	if (!S_ISDIR(sb.st_mode))
		return err_set(err, MM_ERR, "state directory '%s' is not a directory", dir);
	if (sb.st_uid != geteuid())
		return err_set(err, MM_ERR,
			       "state directory '%s' is owned by uid %ld, not by you (uid %ld); refusing to "
			       "use it (fix: chown %ld '%s', or use another --state-dir)",
			       dir, (long)sb.st_uid, (long)geteuid(), (long)geteuid(), dir);
	if (sb.st_mode & (S_IWGRP | S_IWOTH))
		return err_set(err, MM_ERR,
			       "state directory '%s' has mode %04o: group or others may write to it; refusing "
			       "to use it (fix: chmod 700 '%s')",
			       dir, (unsigned)(sb.st_mode & 07777), dir);
	return 0;
}

int state_open(const struct sys_ops *sys, const char *dir, int create, struct state **out, struct mm_error *err)
{
	struct state *st = xcalloc(1, sizeof(*st));

	*out = NULL;
	st->dir = xstrdup(dir);
	st->sys = sys ? sys : &sys_posix;
	new_run_id(st->run_id);
	if ((create && sys_mkdir_p(st->sys, dir, 0700, err) < 0) || check_state_dir(dir, err) < 0 ||
	    load_state(st, err) < 0) {
		state_free(st);
		return MM_ERR;
	}
	*out = st;
	return 0;
}

void state_free(struct state *st)
{
	if (!st)
		return;
	cJSON_Delete(st->root);
	free(st->dir);
	free(st);
}

const cJSON *state_step_get(const struct state *st, const char *id)
{
	return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItem(st->root, "steps"), id);
}

const char *state_step_str(const struct state *st, const char *id, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(state_step_get(st, id), key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

int state_step_is_done(const struct state *st, const char *id)
{
	const char *status = state_step_str(st, id, "status");

	return status && !strcmp(status, "done");
}

const cJSON *state_step_outputs(const struct state *st, const char *id)
{
	return cJSON_GetObjectItemCaseSensitive(state_step_get(st, id), "outputs");
}

const cJSON *state_step_checkpoint(const struct state *st, const char *id)
{
	return cJSON_GetObjectItemCaseSensitive(state_step_get(st, id), "checkpoint");
}

/* The record of step id, created when missing. Private: the lifecycle below is the only writer. */
static cJSON *record(struct state *st, const char *id)
{
	cJSON *steps = cJSON_GetObjectItem(st->root, "steps");
	cJSON *rec = cJSON_GetObjectItemCaseSensitive(steps, id);

	return rec ? rec : cJSON_AddObjectToObject(steps, id);
}

static void put(cJSON *rec, const char *key, cJSON *item)
{
	cJSON_DeleteItemFromObjectCaseSensitive(rec, key);
	if (item)
		cJSON_AddItemToObject(rec, key, item);
}

static void put_now(cJSON *rec, const char *key)
{
	char when[32];

	iso8601_utc(now_ms(), when, sizeof(when));
	put(rec, key, cJSON_CreateString(when));
}

/* Commits, then journals event with details (ownership taken). */
static int commit_and_log(struct state *st, const char *id, const char *event, cJSON *details,
			  struct mm_error *err)
{
	if (state_commit(st, err) < 0) {
		cJSON_Delete(details);
		return MM_ERR;
	}
	return journal_append(st, id, event, details, err);
}

int state_step_begin(struct state *st, const char *id, const struct step_begin *b, struct mm_error *err)
{
	cJSON *rec = record(st, id);
	const cJSON *n = cJSON_GetObjectItem(rec, "attempts");
	double attempts = cJSON_IsNumber(n) ? n->valuedouble : 0;
	const char *was = cJSON_GetStringValue(cJSON_GetObjectItem(rec, "status"));
	int after_failure = was && !strcmp(was, "failed");

	put(rec, "type", cJSON_CreateString(b->type));
	put(rec, "status", cJSON_CreateString("running"));
	put(rec, "fingerprint", cJSON_CreateString(b->fingerprint));
	put(rec, "run", cJSON_CreateString(st->run_id));
	put(rec, "definition", b->definition);
	put(rec, "inputs", b->inputs ? cJSON_Duplicate(b->inputs, 1) : NULL);
	if (b->revision)
		put(rec, "revision", cJSON_Duplicate(b->revision, 1));
	put(rec, "error", NULL);
	put(rec, "outputs", NULL);
	if (!b->resume)
		put(rec, "checkpoint", NULL);
	if (!b->resume || after_failure)
		put(rec, "attempts", cJSON_CreateNumber(attempts + 1));
	put_now(rec, "started_at");
	put(rec, "finished_at", NULL);
	return commit_and_log(st, id, b->resume ? "step-resume" : "step-start", NULL, err);
}

#define SUMMARY_KEYS 16      /* changed keys named per journal line */
#define SUMMARY_VALUE_MAX 80 /* a scalar longer than this is shown by length only */

/* A changed key's value as the journal shows it: short scalars as they are, the rest by size. */
static cJSON *summary_value(const cJSON *v)
{
	char *text;
	size_t len;

	if (!v)
		return cJSON_CreateNull();
	if (cJSON_IsNumber(v) || cJSON_IsBool(v) ||
	    (cJSON_IsString(v) && strlen(v->valuestring) <= SUMMARY_VALUE_MAX))
		return cJSON_Duplicate(v, 1);
	text = cJSON_PrintUnformatted(v);
	len = text ? strlen(text) : 0;
	free(text);
	{
		char what[64];

		snprintf(what, sizeof(what), "(%s, %zu bytes)",
			 cJSON_IsString(v)  ? "string"
			 : cJSON_IsArray(v) ? "array"
					    : "object",
			 len);
		return cJSON_CreateString(what);
	}
}

/*
 * What the journal keeps of a checkpoint: the top-level keys that changed
 * (with short values) and the total size, never a full copy. state.json is
 * the authority; the journal is the story, and a job whose data changes on
 * every poll must not grow it by a whole checkpoint each time.
 */
static cJSON *checkpoint_summary(const cJSON *old, const cJSON *now)
{
	cJSON *out = cJSON_CreateObject(), *changed = cJSON_AddObjectToObject(out, "changed");
	const cJSON *c;
	char *text = cJSON_PrintUnformatted(now);
	int n = 0, more = 0;

	cJSON_ArrayForEach(c, now) {
		const cJSON *was = c->string ? cJSON_GetObjectItemCaseSensitive(old, c->string) : NULL;

		if (!c->string || (was && cJSON_Compare(was, c, 1)))
			continue;
		if (n++ < SUMMARY_KEYS)
			cJSON_AddItemToObject(changed, c->string, summary_value(c));
		else
			more++;
	}
	cJSON_ArrayForEach(c, old) {
		if (!c->string || cJSON_GetObjectItemCaseSensitive(now, c->string))
			continue;
		if (n++ < SUMMARY_KEYS)
			cJSON_AddItemToObject(changed, c->string, cJSON_CreateString("(removed)"));
		else
			more++;
	}
	if (more)
		cJSON_AddNumberToObject(out, "more_changed", more);
	cJSON_AddNumberToObject(out, "bytes", text ? (double)strlen(text) : 0);
	free(text);
	return out;
}

int state_step_save_checkpoint(struct state *st, const char *id, cJSON *ckpt, cJSON **previous,
			       struct mm_error *err)
{
	cJSON *rec = record(st, id);
	cJSON *old = cJSON_DetachItemFromObjectCaseSensitive(rec, "checkpoint");
	cJSON *summary = checkpoint_summary(old, ckpt);

	if (previous)
		*previous = old;
	else
		cJSON_Delete(old);
	put(rec, "checkpoint", ckpt);
	if (state_commit(st, err) < 0) {
		cJSON_Delete(summary);
		err_prefix(err, "cannot save checkpoint");
		return MM_ERR;
	}
	return journal_append(st, id, "checkpoint", summary, err);
}

int state_step_done(struct state *st, const char *id, const cJSON *outputs, struct mm_error *err)
{
	cJSON *rec = record(st, id), *details = cJSON_CreateObject();

	put(rec, "status", cJSON_CreateString("done"));
	put_now(rec, "finished_at");
	put(rec, "outputs", cJSON_Duplicate(outputs, 1));
	put(rec, "checkpoint", NULL);
	cJSON_AddItemToObject(details, "outputs", cJSON_Duplicate(outputs, 1));
	return commit_and_log(st, id, "step-done", details, err);
}

#define ATTEMPTS_KEPT 10 /* failures remembered per step: enough to see a pattern, bounded */

static void log_attempt(cJSON *rec, const char *msg)
{
	cJSON *log = cJSON_GetObjectItem(rec, "attempts_log"), *entry = cJSON_CreateObject();
	const cJSON *n = cJSON_GetObjectItem(rec, "attempts");
	char when[32];

	if (!cJSON_IsArray(log)) {
		put(rec, "attempts_log", cJSON_CreateArray());
		log = cJSON_GetObjectItem(rec, "attempts_log");
	}
	iso8601_utc(now_ms(), when, sizeof(when));
	cJSON_AddNumberToObject(entry, "attempt", cJSON_IsNumber(n) ? n->valuedouble : 1);
	cJSON_AddStringToObject(entry, "at", when);
	cJSON_AddStringToObject(entry, "error", msg);
	cJSON_AddItemToArray(log, entry);
	while (cJSON_GetArraySize(log) > ATTEMPTS_KEPT)
		cJSON_DeleteItemFromArray(log, 0);
}

int state_step_failed(struct state *st, const char *id, int interrupted, const char *msg, struct mm_error *err)
{
	cJSON *rec = record(st, id), *details = cJSON_CreateObject();

	put(rec, "status", cJSON_CreateString(interrupted ? "interrupted" : "failed"));
	put_now(rec, "finished_at");
	put(rec, "error", cJSON_CreateString(msg));
	if (!interrupted)
		log_attempt(rec, msg);
	cJSON_AddStringToObject(details, "error", msg);
	return commit_and_log(st, id, interrupted ? "step-interrupted" : "step-failed", details, err);
}

int state_step_revert(struct state *st, const char *id, const char *why, struct mm_error *err)
{
	cJSON *rec = record(st, id), *details = cJSON_CreateObject();

	put(rec, "status", cJSON_CreateString("reverted"));
	put(rec, "error", cJSON_CreateString(why));
	cJSON_AddStringToObject(details, "why", why);
	return commit_and_log(st, id, "step-reverted", details, err);
}

void state_step_forget(struct state *st, const char *id)
{
	cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItem(st->root, "steps"), id);
}

void state_set(struct state *st, const char *key, cJSON *value)
{
	if (cJSON_GetObjectItemCaseSensitive(st->root, key))
		cJSON_ReplaceItemInObjectCaseSensitive(st->root, key, value);
	else
		cJSON_AddItemToObject(st->root, key, value);
}

int state_commit(struct state *st, struct mm_error *err)
{
	char when[32], *text;
	int ret;

	iso8601_utc(now_ms(), when, sizeof(when));
	state_set(st, "updated_at", cJSON_CreateString(when));
	text = cJSON_Print(st->root);
	ret = sys_atomic_write(st->sys, st->dir, "state.json", text, strlen(text), err);
	free(text);
	return ret;
}

int journal_append(struct state *st, const char *step, const char *event, cJSON *details, struct mm_error *err)
{
	cJSON *line = cJSON_CreateObject();
	struct buf path = BUF_INIT;
	char when[32], *text = NULL;
	int fd = -1, ret = MM_ERR;

	iso8601_utc(now_ms(), when, sizeof(when));
	cJSON_AddStringToObject(line, "run", st->run_id);
	cJSON_AddStringToObject(line, "time", when);
	cJSON_AddNumberToObject(line, "time_ms", (double)now_ms());
	if (step)
		cJSON_AddStringToObject(line, "step", step);
	cJSON_AddStringToObject(line, "event", event);
	if (details)
		cJSON_AddItemToObject(line, "details", details);
	text = cJSON_PrintUnformatted(line);
	buf_addf(&path, "%s/journal.jsonl", st->dir);
	fd = sys_open(st->sys, path.data, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		err_set(err, MM_ERR, "cannot open '%s': %s", path.data, strerror(errno));
		goto out;
	}
	/* One write of the whole line: O_APPEND keeps concurrent lines whole. */
	{
		size_t len = strlen(text);

		text[len] = '\n';
		if (sys_write_all(st->sys, fd, text, len + 1) < 0 || sys_fsync(st->sys, fd) < 0) {
			err_set(err, MM_ERR, "cannot append to '%s': %s", path.data, strerror(errno));
			goto out;
		}
		text[len] = '\0';
	}
	ret = 0;
out:
	if (fd >= 0)
		sys_close(st->sys, fd);
	free(text);
	cJSON_Delete(line);
	buf_release(&path);
	return ret;
}

int lock_acquire(const struct sys_ops *sys, const char *dir, int *fd_out, struct mm_error *err)
{
	struct buf path = BUF_INIT;
	char pid[32] = "";
	int fd, ret = MM_ERR;
	ssize_t n;

	*fd_out = -1;
	buf_addf(&path, "%s/lock", dir);
	if (!sys)
		sys = &sys_posix;
	fd = sys_open(sys, path.data, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		err_set(err, MM_ERR, "cannot open lock '%s': %s", path.data, strerror(errno));
		goto out;
	}
	if (sys_flock(sys, fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK) {
			n = pread(fd, pid, sizeof(pid) - 1, 0);
			pid[n > 0 ? n : 0] = '\0';
			pid[strcspn(pid, "\n")] = '\0';
			ret = err_set(err, MM_ELOCKED,
				      "another run holds the lock '%s' (pid %s); wait for it to finish",
				      path.data, pid[0] ? pid : "unknown");
		} else {
			err_set(err, MM_ERR, "cannot lock '%s': %s", path.data, strerror(errno));
		}
		sys_close(sys, fd);
		goto out;
	}
	snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (sys_ftruncate(sys, fd, 0) < 0 || sys_pwrite_all(sys, fd, pid, strlen(pid), 0) < 0) {
		err_set(err, MM_ERR, "cannot write lock '%s': %s", path.data, strerror(errno));
		sys_close(sys, fd);
		goto out;
	}
	*fd_out = fd;
	ret = 0;
out:
	buf_release(&path);
	return ret;
}

/*
 * Whether the kernel lists a lock on the file st describes: 1 yes, 0 no, -1
 * cannot tell (no /proc/locks). /proc/locks names flock() holders of this
 * kernel, which tells a live run from a reused pid without touching the lock
 * (taking it, even for a moment, could make a starting apply fail).
 */
static int kernel_lists_lock(const struct stat *st)
{
	FILE *f = fopen("/proc/locks", "re");
	char line[256];
	int found = 0;

	if (!f)
		return -1;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned maj, min;
		unsigned long ino;
		const char *p = line;

		for (int field = 0; field < 5 && p; field++) /* id, kind, mode, access, pid */
			if ((p = strchr(p + strspn(p, " "), ' ')))
				p += strspn(p, " ");
		if (p && sscanf(p, "%x:%x:%lu", &maj, &min, &ino) == 3)
			found = maj == major(st->st_dev) && min == minor(st->st_dev) && ino == st->st_ino;
	}
	fclose(f);
	return found;
}

void lock_holder(const char *dir, long *pid, int *alive)
{
	struct buf path = BUF_INIT;
	char text[32] = "";
	ssize_t n = -1;
	struct stat st;
	int fd, listed = -1;

	*pid = 0;
	*alive = 0;
	buf_addf(&path, "%s/lock", dir);
	fd = open(path.data, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		n = pread(fd, text, sizeof(text) - 1, 0);
		if (fstat(fd, &st) == 0)
			listed = kernel_lists_lock(&st);
		close(fd);
	}
	buf_release(&path);
	text[n > 0 ? n : 0] = '\0';
	*pid = strtol(text, NULL, 10);
	if (*pid <= 0) {
		*pid = 0;
		return;
	}
	/* The kernel's word wins: a held lock under a pid this namespace cannot see
	 * is alive; a live pid that holds nothing is a reused one. */
	*alive = listed >= 0 ? listed : kill((pid_t)*pid, 0) == 0 || errno == EPERM;
}

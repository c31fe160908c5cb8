#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "util.h"

static int posix_open(const char *path, int flags, mode_t mode)
{
	return open(path, flags, mode);
}

static int posix_rename(const char *from, const char *to)
{
	return rename(from, to);
}

const struct sys_ops sys_posix = { posix_open, write, fsync, posix_rename, close, NULL };

int mkdir_p(const char *path, mode_t mode, struct mm_error *err)
{
	char *p = xstrdup(path);
	int ret = 0;

	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;

		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST) {
			ret = err_set(err, MM_ERR, "cannot create directory '%s': %s", p, strerror(errno));
			break;
		}
		*s = c;
		if (!c)
			break;
	}
	free(p);
	return ret;
}

static int write_all(const struct sys_ops *sys, int fd, const char *data, size_t len)
{
	while (len) {
		ssize_t n = sys->write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fsync_dir(const struct sys_ops *sys, const char *dir)
{
	int fd = sys->open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	int ret;

	if (fd < 0)
		return -1;
	ret = sys->fsync(fd);
	sys->close(fd);
	return ret;
}

int atomic_write(const struct sys_ops *sys, const char *dir, const char *name, const void *data,
		 size_t len, struct mm_error *err)
{
	struct buf tmp = BUF_INIT, dst = BUF_INIT;
	int fd = -1, ret = MM_ERR;

	buf_addf(&tmp, "%s/%s.tmp", dir, name);
	buf_addf(&dst, "%s/%s", dir, name);
	fd = sys->open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		err_set(err, MM_ERR, "cannot create '%s': %s", tmp.data, strerror(errno));
		goto out;
	}
	if (write_all(sys, fd, data, len) < 0) {
		err_set(err, MM_ERR, "cannot write '%s': %s", tmp.data, strerror(errno));
		goto out;
	}
	if (sys->fsync(fd) < 0) {
		err_set(err, MM_ERR, "cannot fsync '%s': %s", tmp.data, strerror(errno));
		goto out;
	}
	if (sys->close(fd) < 0) {
		fd = -1;
		err_set(err, MM_ERR, "cannot close '%s': %s", tmp.data, strerror(errno));
		goto out;
	}
	fd = -1;
	if (sys->rename(tmp.data, dst.data) < 0) {
		err_set(err, MM_ERR, "cannot rename '%s' to '%s': %s", tmp.data, dst.data, strerror(errno));
		goto out;
	}
	if (fsync_dir(sys, dir) < 0) {
		err_set(err, MM_ERR, "cannot fsync directory '%s': %s", dir, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	if (fd >= 0)
		sys->close(fd);
	if (ret < 0)
		unlink(tmp.data); /* the old file, if any, is untouched */
	buf_release(&tmp);
	buf_release(&dst);
	return ret;
}

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
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
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
		st->root = cJSON_Parse(text);
		if (!cJSON_IsObject(st->root) || !cJSON_IsObject(cJSON_GetObjectItem(st->root, "steps"))) {
			ret = err_set(err, MM_ERR,
				      "'%s' is not a valid mmigrate state file; move it away to start over",
				      path.data);
			goto out;
		}
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

int state_open(const char *dir, int create, struct state **out, struct mm_error *err)
{
	struct state *st = xcalloc(1, sizeof(*st));

	*out = NULL;
	st->dir = xstrdup(dir);
	st->sys = &sys_posix;
	new_run_id(st->run_id);
	if ((create && mkdir_p(dir, 0700, err) < 0) || load_state(st, err) < 0) {
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

cJSON *state_step_get(const struct state *st, const char *id)
{
	return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItem(st->root, "steps"), id);
}

cJSON *state_step(struct state *st, const char *id)
{
	cJSON *rec = state_step_get(st, id);

	if (!rec)
		rec = cJSON_AddObjectToObject(cJSON_GetObjectItem(st->root, "steps"), id);
	return rec;
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
	ret = atomic_write(st->sys, st->dir, "state.json", text, strlen(text), err);
	free(text);
	return ret;
}

int journal_append(struct state *st, const char *step, const char *event, cJSON *details,
		   struct mm_error *err)
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
	fd = st->sys->open(path.data, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0) {
		err_set(err, MM_ERR, "cannot open '%s': %s", path.data, strerror(errno));
		goto out;
	}
	/* One write of the whole line: O_APPEND keeps concurrent lines whole. */
	{
		size_t len = strlen(text);

		text[len] = '\n';
		if (write_all(st->sys, fd, text, len + 1) < 0 || st->sys->fsync(fd) < 0) {
			err_set(err, MM_ERR, "cannot append to '%s': %s", path.data, strerror(errno));
			goto out;
		}
		text[len] = '\0';
	}
	ret = 0;
out:
	if (fd >= 0)
		st->sys->close(fd);
	free(text);
	cJSON_Delete(line);
	buf_release(&path);
	return ret;
}

int lock_acquire(const char *dir, int *fd_out, struct mm_error *err)
{
	struct buf path = BUF_INIT;
	char pid[32] = "";
	int fd, ret = MM_ERR;
	ssize_t n;

	*fd_out = -1;
	buf_addf(&path, "%s/lock", dir);
	fd = open(path.data, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		err_set(err, MM_ERR, "cannot open lock '%s': %s", path.data, strerror(errno));
		goto out;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
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
		close(fd);
		goto out;
	}
	snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, strlen(pid), 0) < 0) {
		err_set(err, MM_ERR, "cannot write lock '%s': %s", path.data, strerror(errno));
		close(fd);
		goto out;
	}
	*fd_out = fd;
	ret = 0;
out:
	buf_release(&path);
	return ret;
}

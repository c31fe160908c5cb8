/*
 * State commit through a failing syscall seam: whichever call fails (open,
 * write, fsync, rename, the directory fsync), the previous state.json stays
 * whole and readable. Locking: a second holder gets MM_ELOCKED naming the pid.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "state.h"

struct failing {
	int calls;
	int fail_at; /* 1-based call number to fail, 0: never */
};

static struct failing F;

static int fail_now(void)
{
	if (F.fail_at && ++F.calls == F.fail_at) {
		errno = ENOSPC;
		return 1;
	}
	return 0;
}

static int f_open(void *c, const char *p, int fl, mode_t m)
{
	return fail_now() ? -1 : open(p, fl, m);
}
static ssize_t f_write(void *c, int fd, const void *b, size_t n)
{
	return fail_now() ? -1 : write(fd, b, n);
}
static int f_fsync(void *c, int fd)
{
	return fail_now() ? -1 : fsync(fd);
}
static int f_rename(void *c, const char *a, const char *b)
{
	return fail_now() ? -1 : rename(a, b);
}

static struct sys_ops failing_sys;

static void failing_sys_init(void)
{
	failing_sys = sys_posix;
	failing_sys.open = f_open;
	failing_sys.write = f_write;
	failing_sys.fsync = f_fsync;
	failing_sys.rename = f_rename;
}

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = calloc(1, 1 << 16);
	size_t n;

	if (!f)
		return buf;
	n = fread(buf, 1, (1 << 16) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int begin(struct state *st, const char *id, struct mm_error *err)
{
	struct step_begin b = { .type = "exec", .fingerprint = "f", .definition = cJSON_CreateObject() };

	return state_step_begin(st, id, &b, err);
}

static void test_commit_failures(const char *dir)
{
	cJSON *outputs = cJSON_CreateObject();
	struct mm_error err = MM_ERROR_INIT;
	struct state *st = NULL;
	char path[1024], tmp[1024];
	char *before;

	snprintf(path, sizeof(path), "%s/state.json", dir);
	snprintf(tmp, sizeof(tmp), "%s/state.json.tmp", dir);
	failing_sys_init();
	CHECK(state_open(NULL, dir, 1, &st, &err) == 0);
	CHECK(begin(st, "a", &err) == 0);
	CHECK(state_step_done(st, "a", outputs, &err) == 0);
	before = read_all(path);
	CHECK_CONTAINS(before, "\"done\"");
	CHECK_CONTAINS(before, "\"attempts\":\t1");
	/* Calls in one commit: open tmp, write, fsync, rename, open dir, fsync dir. */
	for (int n = 1; n <= 6; n++) {
		struct state *again = NULL;
		char *after;

		free(before);
		before = read_all(path);
		F.calls = 0;
		F.fail_at = n;
		st->sys = &failing_sys;
		CHECK(begin(st, "a", &err) == MM_ERR);
		CHECK_CONTAINS(err.msg, "No space left on device");
		after = read_all(path);
		if (n <= 4) {
			/* Before the rename: the old file, byte for byte, and no temp left behind. */
			CHECK_STR(after, before);
			CHECK(access(tmp, F_OK) < 0);
		} else {
			/* After the rename only the directory fsync failed: the new file is whole. */
			CHECK_CONTAINS(after, "\"running\"");
		}
		CHECK(state_open(NULL, dir, 1, &again, &err) == 0);
		CHECK(again && state_step_get(again, "a") != NULL);
		state_free(again);
		free(after);
		/* Put the old content back for the next round. */
		st->sys = &sys_posix;
		CHECK(state_step_done(st, "a", outputs, &err) == 0);
	}
	{
		struct stat sb;

		CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
	}
	free(before);
	cJSON_Delete(outputs);
	state_free(st);
}

static void test_corrupt_state(const char *dir)
{
	struct mm_error err = MM_ERROR_INIT;
	struct state *st = NULL;
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/state.json", dir);
	f = fopen(path, "w");
	fputs("{\"steps\": {\"a\": tru", f);
	fclose(f);
	CHECK(state_open(NULL, dir, 1, &st, &err) == MM_ERR);
	CHECK_CONTAINS(err.msg, "is not a valid mmigrate state file");
	unlink(path);
}

static void test_journal(const char *dir)
{
	struct mm_error err = MM_ERROR_INIT;
	struct state *st = NULL;
	char path[1024], *text;

	CHECK(state_open(NULL, dir, 1, &st, &err) == 0);
	CHECK(journal_append(st, "a", "step-start", NULL, &err) == 0);
	CHECK(journal_append(st, NULL, "run-end", cJSON_CreateObject(), &err) == 0);
	snprintf(path, sizeof(path), "%s/journal.jsonl", dir);
	text = read_all(path);
	CHECK_CONTAINS(text, "\"step\":\"a\",\"event\":\"step-start\"}\n");
	CHECK_CONTAINS(text, "\"event\":\"run-end\"");
	CHECK_CONTAINS(text, st->run_id);
	free(text);
	state_free(st);
}

/*
 * A job whose data changes on every poll: the journal gets the changed keys
 * and a size, never the whole checkpoint, while state.json holds all of it.
 */
static void test_checkpoint_journal_bounded(const char *dir)
{
	struct mm_error err = MM_ERROR_INIT;
	struct state *st = NULL;
	char path[1024], *text;
	struct stat sb;
	off_t before;

	CHECK(state_open(NULL, dir, 1, &st, &err) == 0);
	snprintf(path, sizeof(path), "%s/journal.jsonl", dir);
	before = stat(path, &sb) == 0 ? sb.st_size : 0;
	for (int i = 0; i < 20; i++) {
		cJSON *ck = cJSON_CreateObject(), *data = cJSON_AddObjectToObject(ck, "data");
		char *big = calloc(1, 100001);

		memset(big, 'a' + i % 26, 100000);
		cJSON_AddStringToObject(ck, "job_id", "abcdefghijklmnopqrstuvwxyz");
		cJSON_AddNumberToObject(ck, "poll", i);
		cJSON_AddStringToObject(data, "blob", big);
		free(big);
		CHECK(state_step_save_checkpoint(st, "exp", ck, NULL, &err) == 0);
	}
	CHECK(stat(path, &sb) == 0);
	CHECK(sb.st_size - before < 20 * 512); /* a full copy would be 2 MB */
	text = read_all(path);
	CHECK_CONTAINS(text, "\"changed\":{\"data\":\"(object, 100011 bytes)\",\"poll\":19}");
	free(text);
	/* state.json stays the authority: the whole last checkpoint is there. */
	CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(state_step_checkpoint(st, "exp"), "data"), "blob") !=
	      NULL);
	state_free(st);
}

/* A state directory that others could tamper with, or a link, is refused. */
static void test_state_dir_checks(const char *base)
{
	struct mm_error err = MM_ERROR_INIT;
	struct state *st = NULL;
	char dir[600], link[620];

	snprintf(dir, sizeof(dir), "%s/open", base);
	CHECK(mkdir(dir, 0700) == 0);
	CHECK(chmod(dir, 0777) == 0);
	CHECK(state_open(NULL, dir, 1, &st, &err) == MM_ERR);
	CHECK_CONTAINS(err.msg, "has mode 0777");
	CHECK(chmod(dir, 0700) == 0);
	CHECK(state_open(NULL, dir, 1, &st, &err) == 0);
	state_free(st);
	snprintf(link, sizeof(link), "%s/link", base);
	CHECK(symlink(dir, link) == 0);
	CHECK(state_open(NULL, link, 1, &st, &err) == MM_ERR);
	CHECK_CONTAINS(err.msg, "is a symbolic link");
	CHECK(state_open(NULL, link, 0, &st, &err) == MM_ERR);
}

static void test_lock(const char *dir)
{
	struct mm_error err = MM_ERROR_INIT;
	int pipefd[2], fd = -1;
	char c, want[64];
	pid_t child;

	CHECK(pipe(pipefd) == 0);
	child = fork();
	if (child == 0) {
		int cfd;

		if (lock_acquire(NULL, dir, &cfd, &err) < 0)
			_exit(1);
		if (write(pipefd[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	CHECK(read(pipefd[0], &c, 1) == 1);
	CHECK(lock_acquire(NULL, dir, &fd, &err) == MM_ELOCKED);
	snprintf(want, sizeof(want), "(pid %ld)", (long)child);
	CHECK_CONTAINS(err.msg, want);
	/* The holder dies: the lock goes with it, no stale lock to clear. */
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	CHECK(lock_acquire(NULL, dir, &fd, &err) == 0);
	close(fd);
	close(pipefd[0]);
	close(pipefd[1]);
}

int main(void)
{
	char dir[] = "/tmp/mmigrate-state-XXXXXX";
	char sub[600], cmd[700];

	CHECK(mkdtemp(dir) != NULL);
	snprintf(sub, sizeof(sub), "%s/deep/state", dir);
	test_commit_failures(sub);
	test_corrupt_state(sub);
	test_journal(sub);
	test_lock(sub);
	test_checkpoint_journal_bounded(sub);
	test_state_dir_checks(dir);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CHECK(system(cmd) == 0);
	return check_done();
}

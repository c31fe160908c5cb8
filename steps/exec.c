/*
 * exec: runs a local command (`sh -c`), e.g. to notify a channel, snapshot a
 * database or stop a service around the migration. The command starts clean
 * (engine/util/spawn.h: default signals, no inherited descriptors beyond
 * 0-2, its own process group), its process group is stopped on SIGINT/SIGTERM
 * and on timeout, and it never outlives mmigrate (PR_SET_PDEATHSIG).
 */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spawn.h"
#include "step.h"
#include "util.h"

#define EXEC_STDOUT_MAX (64 * 1024)
#define EXEC_POLL_MS 100

static const struct param_spec exec_params[] = {
	{ "command", P_STRING, 1, NULL, "shell command, run with /bin/sh -c" },
	{ "cwd", P_PATH, 0, ".", "working directory (relative to the plan file)" },
	{ "timeout", P_DURATION, 0, "1h", "how long the command may run", .tuning = 1 },
	{ NULL },
};

static const char *const exec_outputs[] = { "exit_code", "stdout", NULL };

/* Appends what can be read from fd now; 0 at end of file, 1 when more may come. */
static int read_some(int fd, int wait_ms, struct buf *out)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	char chunk[4096];
	ssize_t n;

	if (poll(&pfd, 1, wait_ms) <= 0)
		return 1;
	n = read(fd, chunk, sizeof(chunk));
	if (n > 0 && out->len < EXEC_STDOUT_MAX)
		buf_add(out, chunk, (size_t)n);
	return n == 0 ? 0 : 1;
}

/* After the command exited: what it wrote just before. A background child
 * may hold the pipe open, so take only what is there, never wait for EOF. */
static void drain(int fd, struct buf *out)
{
	size_t before;

	do {
		before = out->len;
		if (!read_some(fd, 0, out))
			return;
	} while (out->len > before && out->len < EXEC_STDOUT_MAX);
}

/* Reads the child's stdout until it exits; returns its wait status or <0. */
static int collect(struct step_ctx *ctx, struct spawn *sp, int fd, int64_t timeout_s, struct buf *out,
		   struct mm_error *err)
{
	int64_t deadline = mono_ms() + timeout_s * 1000;
	int open_fd = 1, rc;

	for (;;) {
		if (step_should_stop(ctx)) {
			spawn_stop(sp, SPAWN_GRACE_MS);
			return err_set(err, MM_EINTR, "command stopped by a signal");
		}
		if (mono_ms() > deadline) {
			spawn_stop(sp, SPAWN_GRACE_MS);
			return err_set(err, MM_ERR, "command did not finish within %llds",
				       (long long)timeout_s);
		}
		if (open_fd) {
			open_fd = read_some(fd, EXEC_POLL_MS, out);
		} else {
			usleep(50 * 1000);
		}
		rc = spawn_reap(sp, err);
		if (rc < 0) {
			spawn_stop(sp, SPAWN_GRACE_MS);
			return rc;
		}
		if (rc == 1) {
			if (open_fd)
				drain(fd, out);
			return sp->status;
		}
	}
}

static int exec_run(struct step_ctx *ctx, struct mm_error *err)
{
	const char *cmd = param_str(ctx, "command");
	char *cwd = param_path(ctx, "cwd");
	char *argv[] = { "sh", "-c", (char *)cmd, NULL };
	struct spawn sp = SPAWN_INIT;
	struct buf out = BUF_INIT;
	int fds[2] = { -1, -1 }, status, ret = MM_ERR;

	if (pipe2(fds, O_CLOEXEC) < 0) {
		err_set(err, MM_ERR, "cannot create a pipe: %s", strerror(errno));
		goto out;
	}
	sp.path = "/bin/sh";
	sp.argv = argv;
	sp.cwd = cwd;
	sp.stdout_fd = fds[1];
	ret = spawn_start(&sp, err);
	close(fds[1]);
	fds[1] = -1;
	if (ret < 0)
		goto out;
	status = collect(ctx, &sp, fds[0], param_int(ctx, "timeout"), &out, err);
	if (status < 0) {
		ret = status;
		goto out;
	}
	ret = MM_ERR;
	buf_rtrim(&out);
	cJSON_AddNumberToObject(ctx->outputs, "exit_code", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	cJSON_AddStringToObject(ctx->outputs, "stdout", buf_cstr(&out));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		err_set(err, MM_ERR, "command exited with status %d",
			WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
		goto out;
	}
	ret = 0;
out:
	if (fds[0] >= 0)
		close(fds[0]);
	free(cwd);
	buf_release(&out);
	return ret;
}

static int exec_describe(struct step_ctx *ctx, struct buf *out, struct mm_error *err)
{
	buf_addf(out, "would run `%s`", param_str(ctx, "command"));
	return 0;
}

const struct step_type step_exec = {
	.name = "exec",
	.summary = "run a local shell command",
	.server = SERVER_NONE,
	.params = exec_params,
	.outputs = exec_outputs,
	.describe = exec_describe,
	.run = exec_run,
};

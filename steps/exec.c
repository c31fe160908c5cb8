/*
 * exec: runs a local command (`sh -c`), e.g. to notify a channel, snapshot a
 * database or stop a service around the migration. Stopped cleanly on
 * SIGINT/SIGTERM; never outlives mmigrate (PR_SET_PDEATHSIG).
 */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "step.h"
#include "util.h"

#define EXEC_STDOUT_MAX (64 * 1024)

static const struct param_spec exec_params[] = {
	{ "command", P_STRING, 1, NULL, "shell command, run with /bin/sh -c" },
	{ "cwd", P_PATH, 0, ".", "working directory (relative to the plan file)" },
	{ "timeout", P_DURATION, 0, "1h", "how long the command may run", .tuning = 1 },
	{ NULL },
};

static const char *const exec_outputs[] = { "exit_code", "stdout", NULL };

static pid_t spawn(const char *cmd, const char *cwd, int out_fd)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (dup2(out_fd, STDOUT_FILENO) < 0 || chdir(cwd) < 0)
		_exit(127);
	execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
	_exit(127);
}

static void stop_child(pid_t pid)
{
	int status;

	kill(-pid, SIGTERM);
	for (int i = 0; i < 50; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return;
		usleep(100 * 1000);
	}
	kill(-pid, SIGKILL);
	waitpid(pid, &status, 0);
}

/* Reads the child's stdout until it exits; returns its wait status or <0. */
static int collect(struct step_ctx *ctx, pid_t pid, int fd, int64_t timeout_s, struct buf *out,
		   struct mm_error *err)
{
	int64_t deadline = mono_ms() + timeout_s * 1000;
	int status, open_fd = 1;

	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		pid_t w;

		if (step_should_stop(ctx)) {
			stop_child(pid);
			return err_set(err, MM_EINTR, "command stopped by a signal");
		}
		if (mono_ms() > deadline) {
			stop_child(pid);
			return err_set(err, MM_ERR, "command did not finish within %llds", (long long)timeout_s);
		}
		if (open_fd && poll(&pfd, 1, 100) > 0) {
			char chunk[4096];
			ssize_t n = read(fd, chunk, sizeof(chunk));

			if (n > 0 && out->len < EXEC_STDOUT_MAX)
				buf_add(out, chunk, (size_t)n);
			if (n == 0)
				open_fd = 0;
			continue;
		}
		if (!open_fd)
			usleep(50 * 1000);
		w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			return status;
		if (w < 0)
			return err_set(err, MM_ERR, "cannot wait for command: %s", strerror(errno));
	}
}

static int exec_run(struct step_ctx *ctx, struct mm_error *err)
{
	const char *cmd = param_str(ctx, "command");
	char *cwd = param_path(ctx, "cwd");
	struct buf out = BUF_INIT;
	int fds[2] = { -1, -1 }, status, ret = MM_ERR;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0) {
		err_set(err, MM_ERR, "cannot create a pipe: %s", strerror(errno));
		goto out;
	}
	pid = spawn(cmd, cwd, fds[1]);
	close(fds[1]);
	fds[1] = -1;
	if (pid < 0) {
		err_set(err, MM_ERR, "cannot start command: %s", strerror(errno));
		goto out;
	}
	status = collect(ctx, pid, fds[0], param_int(ctx, "timeout"), &out, err);
	if (status < 0) {
		ret = status;
		goto out;
	}
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

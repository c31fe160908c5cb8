/*
 * spawn: fork + exec of a child clean of mmigrate's process state. See
 * spawn.h. Between fork and exec the child only makes async-signal-safe
 * calls: libcurl's resolver may have threads, and a lock one of them held at
 * fork time would never be released in the child.
 */
#define _GNU_SOURCE /* pipe2, NSIG */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define STOP_POLL_MS 50

/* What failed in the child before exec; sent to the parent through a pipe
 * that exec closes, so reading nothing means the program runs. */
enum child_stage { STAGE_STDIO = 1, STAGE_PGID, STAGE_PARENT, STAGE_CWD, STAGE_EXEC };

struct child_report {
	int stage;
	int errnum;
};

static void __attribute__((noreturn)) child_fail(int report_fd, int stage)
{
	struct child_report r = { stage, errno };

	(void)!write(report_fd, &r, sizeof(r));
	_exit(127);
}

/* Every handler mmigrate installed (SIGINT, SIGTERM) and every signal it
 * ignores (SIGPIPE) goes back to the default: exec keeps ignored signals
 * ignored, and a child with SIGPIPE ignored spins on a closed pipe instead
 * of dying (`yes | head`). SIGKILL, SIGSTOP and libc's own fail harmlessly. */
static void child_reset_signals(void)
{
	struct sigaction sa;
	sigset_t none;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL);
	/* Last: a signal that arrived since fork is delivered now, with the default action. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Places the caller's descriptors on 0-2. They are lifted above 2 first, so
 * that placing one cannot clobber another that happens to sit on 0-2. */
static int child_stdio(const struct spawn *sp)
{
	int src[3] = { sp->stdin_fd, sp->stdout_fd, sp->stderr_fd };

	for (int i = 0; i < 3; i++)
		if (src[i] >= 0 && (src[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 3)) < 0)
			return -1;
	for (int i = 0; i < 3; i++)
		if (src[i] >= 0 && dup2(src[i], i) < 0)
			return -1;
	return 0;
}

static int close_range_sys(unsigned lo, unsigned hi)
{
#ifdef SYS_close_range
	return (int)syscall(SYS_close_range, lo, hi, 0);
#else
	errno = ENOSYS;
	return -1;
#endif
}

/* Closes every descriptor from 3 up but keep: libcurl's keep-alive sockets,
 * the run lock and libgit2's files are none of the child's business (a child
 * holding the lock's descriptor would hold the lock after mmigrate died).
 * close_range (Linux 5.9) in two calls; else one close per possible number. */
static void child_close_from_3(int keep, long open_max)
{
	if ((keep == 3 || close_range_sys(3, (unsigned)keep - 1) == 0) &&
	    close_range_sys((unsigned)keep + 1, ~0U) == 0)
		return;
	for (long fd = 3; fd < open_max; fd++)
		if (fd != keep)
			close((int)fd);
}

struct child_args {
	const struct spawn *sp;
	pid_t parent;
	int report_fd;
	long open_max;
};

static void __attribute__((noreturn)) child_run(struct child_args *a)
{
	int fd = fcntl(a->report_fd, F_DUPFD_CLOEXEC, 3);

	/* Above 2 and kept open until exec, which closes it (close-on-exec). */
	if (fd < 0)
		child_fail(a->report_fd, STAGE_STDIO);
	if (child_stdio(a->sp) < 0)
		child_fail(fd, STAGE_STDIO);
	child_close_from_3(fd, a->open_max);
	/* Its own group: spawn_stop reaches what the command started too, and
	 * a Ctrl-C at the terminal reaches only mmigrate, which stops it. */
	if (setpgid(0, 0) < 0)
		child_fail(fd, STAGE_PGID);
	/* Never outlive mmigrate. getppid: mmigrate may have died before prctl. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != a->parent)
		child_fail(fd, STAGE_PARENT);
	if (a->sp->cwd && chdir(a->sp->cwd) < 0)
		child_fail(fd, STAGE_CWD);
	child_reset_signals();
	execv(a->sp->path, a->sp->argv);
	child_fail(fd, STAGE_EXEC);
}

static ssize_t read_report(int fd, struct child_report *r)
{
	ssize_t n;

	do
		n = read(fd, r, sizeof(*r));
	while (n < 0 && errno == EINTR);
	return n;
}

static pid_t wait_blocking(pid_t pid, int *status)
{
	pid_t w;

	do
		w = waitpid(pid, status, 0);
	while (w < 0 && errno == EINTR);
	return w;
}

static int report_error(const struct spawn *sp, const struct child_report *r, struct mm_error *err)
{
	const char *why = strerror(r->errnum);

	switch (r->stage) {
	case STAGE_STDIO:
		return err_set(err, MM_ERR, "cannot set up the standard descriptors of '%s': %s", sp->path,
			       why);
	case STAGE_PGID:
		return err_set(err, MM_ERR, "cannot give '%s' its own process group: %s", sp->path, why);
	case STAGE_PARENT:
		return err_set(err, MM_ERR, "cannot tie '%s' to mmigrate's lifetime: %s", sp->path, why);
	case STAGE_CWD: return err_set(err, MM_ERR, "cannot change to directory '%s': %s", sp->cwd, why);
	default: return err_set(err, MM_ERR, "cannot run '%s': %s", sp->path, why);
	}
}

int spawn_start(struct spawn *sp, struct mm_error *err)
{
	struct child_args a = { sp, getpid(), -1, sysconf(_SC_OPEN_MAX) };
	struct child_report r;
	sigset_t all, old;
	int rp[2], fork_errno;
	ssize_t n;
	pid_t pid;

	sp->pid = 0;
	sp->status = 0;
	if (a.open_max < 0)
		a.open_max = 1024;
	if (pipe2(rp, O_CLOEXEC) < 0)
		return err_set(err, MM_ERR, "cannot create a pipe for '%s': %s", sp->path, strerror(errno));
	a.report_fd = rp[1];
	/* Blocked across fork: until the child has reset its dispositions, a
	 * signal would run mmigrate's handler in the child and be lost, and exec
	 * would then run the command though it was asked to stop. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0)
		child_run(&a);
	fork_errno = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(rp[1]);
	if (pid < 0) {
		close(rp[0]);
		return err_set(err, MM_ERR, "cannot start '%s': %s", sp->path, strerror(fork_errno));
	}
	n = read_report(rp[0], &r);
	close(rp[0]);
	if (n == 0) {
		sp->pid = pid;
		return 0;
	}
	/* The child exits with 127 right after its report. */
	wait_blocking(pid, &sp->status);
	if (n != (ssize_t)sizeof(r))
		return err_set(err, MM_ERR, "cannot start '%s': no word from the child", sp->path);
	return report_error(sp, &r, err);
}

int spawn_reap(struct spawn *sp, struct mm_error *err)
{
	pid_t w;

	if (sp->pid <= 0)
		return 1;
	do
		w = waitpid(sp->pid, &sp->status, WNOHANG);
	while (w < 0 && errno == EINTR);
	if (w == 0)
		return 0;
	if (w < 0)
		return err_set(err, MM_ERR, "cannot wait for process %ld: %s", (long)sp->pid, strerror(errno));
	sp->pid = 0;
	return 1;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL); /* a signal cutting it short only means one more look */
}

void spawn_stop(struct spawn *sp, int grace_ms)
{
	struct mm_error ignored = MM_ERROR_INIT;
	pid_t group = sp->pid;
	int64_t deadline = mono_ms() + grace_ms;

	if (group <= 0)
		return;
	kill(-group, SIGTERM);
	/* Done when the leader is reaped and no member is left; members may
	 * still be cleaning up after the leader exited. */
	while (mono_ms() < deadline) {
		if (spawn_reap(sp, &ignored) != 0 && kill(-group, 0) < 0 && errno == ESRCH)
			return;
		sleep_ms(STOP_POLL_MS);
	}
	kill(-group, SIGKILL);
	if (sp->pid > 0)
		wait_blocking(sp->pid, &sp->status);
	sp->pid = 0;
}

/*
 * spawn: starts a child process that inherits none of mmigrate's process
 * state (redis's redisFork): default dispositions for every signal (mmigrate
 * ignores SIGPIPE, which exec would otherwise pass on), an empty signal mask,
 * no descriptors beyond 0-2 (libcurl's keep-alive sockets, the run lock),
 * its own process group, and SIGKILL when mmigrate dies.
 *
 *   struct spawn sp = SPAWN_INIT;
 *   char *argv[] = { "sh", "-c", cmd, NULL };
 *   sp.path = "/bin/sh"; sp.argv = argv; sp.cwd = dir; sp.stdout_fd = pipe_w;
 *   if (spawn_start(&sp, err) < 0)      cannot start: err says why (fork, chdir, exec)
 *   while ((rc = spawn_reap(&sp)) == 0)  poll: 1 once exited, sp.status holds the wait status
 *           ... on a stop request or a timeout: spawn_stop(&sp, SPAWN_GRACE_MS);
 *
 * The struct is the caller's (on its stack, usually); spawn keeps no pointer
 * to it. path, argv, cwd and the descriptors are borrowed and only read during
 * spawn_start; the descriptors stay the caller's to close. A started child
 * must be reaped (spawn_reap returned 1, or spawn_stop): sp.pid is 0 then.
 *
 * The child dies with the thread that called spawn_start (PR_SET_PDEATHSIG
 * follows the forking thread, not the process): start it from a thread that
 * outlives it. mmigrate runs steps on its main thread.
 */
#ifndef MM_SPAWN_H
#define MM_SPAWN_H

#include <sys/types.h>

#include "error.h"

#define SPAWN_GRACE_MS 5000 /* between SIGTERM and SIGKILL in spawn_stop */

struct spawn {
	/* In: set by the caller before spawn_start. */
	const char *path;  /* executable, run with execv (no PATH search) */
	char *const *argv; /* NULL-terminated */
	const char *cwd;   /* working directory, NULL: mmigrate's */
	int stdin_fd;      /* become the child's 0, 1, 2; -1: mmigrate's own */
	int stdout_fd;
	int stderr_fd;
	/* Out. */
	pid_t pid;  /* the child, also its process group id; 0 when none is running */
	int status; /* wait status once spawn_reap returned 1 or spawn_stop returned */
};

#define SPAWN_INIT                                 \
	{                                          \
		NULL, NULL, NULL, -1, -1, -1, 0, 0 \
	}

/*
 * Forks and execs; returns once the child runs the new program (or has
 * failed to), so a signal sent to its group afterwards cannot be lost in
 * the window before exec. 0 with sp->pid set, or MM_ERR with err set.
 */
int spawn_start(struct spawn *sp, struct mm_error *err);

/* Without blocking: 1 when the child has exited (sp->status set, sp->pid 0),
 * 0 while it runs, MM_ERR with err set when it cannot be waited for. */
int spawn_reap(struct spawn *sp, struct mm_error *err);

/*
 * Stops the child's whole process group: SIGTERM, then SIGKILL for what is
 * left after grace_ms; reaps the child (sp->status, sp->pid 0). Interrupted
 * by nothing: a second Ctrl-C does not leave the group running.
 */
void spawn_stop(struct spawn *sp, int grace_ms);

#endif

/*
 * sys: the operating-system seam (SQLite's aSyscall[] in os_unix.c). Every
 * file-system call that matters for crash safety — the state file, the
 * journal, the lock, a download's .part and the finished artefact — goes
 * through one table, so tests can fail or end the process at the Nth call
 * of a whole apply and prove that nothing is lost.
 *
 *   const struct sys_ops *sys = &sys_posix;
 *   fd = sys_open(sys, path, O_WRONLY | O_CREAT, 0600);
 *   sys_write_all(sys, fd, data, len);  sys_fsync(sys, fd);  sys_close(sys, fd);
 *   sys_atomic_write(sys, dir, "state.json", text, len, err);   temp, fsync, rename, fsync dir
 *
 * Test doubles set their own functions and ctx; sys_fault wraps any table
 * to fail (or _exit) at one call number.
 */
#ifndef MM_SYS_H
#define MM_SYS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include "error.h"

struct sys_ops {
	int (*open)(void *ctx, const char *path, int flags, mode_t mode);
	ssize_t (*write)(void *ctx, int fd, const void *buf, size_t n);
	ssize_t (*pwrite)(void *ctx, int fd, const void *buf, size_t n, off_t off);
	int (*fsync)(void *ctx, int fd);
	int (*rename)(void *ctx, const char *from, const char *to);
	int (*unlink)(void *ctx, const char *path);
	int (*mkdir)(void *ctx, const char *path, mode_t mode);
	int (*flock)(void *ctx, int fd, int op);
	int (*ftruncate)(void *ctx, int fd, off_t len);
	int (*statvfs)(void *ctx, const char *path, struct statvfs *out);
	int (*close)(void *ctx, int fd);
	void *ctx; /* handed to every call: the test double's own record */
};

/* The real calls. */
extern const struct sys_ops sys_posix;

static inline int sys_open(const struct sys_ops *s, const char *path, int flags, mode_t mode)
{
	return s->open(s->ctx, path, flags, mode);
}
static inline ssize_t sys_write(const struct sys_ops *s, int fd, const void *buf, size_t n)
{
	return s->write(s->ctx, fd, buf, n);
}
static inline ssize_t sys_pwrite(const struct sys_ops *s, int fd, const void *buf, size_t n, off_t off)
{
	return s->pwrite(s->ctx, fd, buf, n, off);
}
static inline int sys_fsync(const struct sys_ops *s, int fd)
{
	return s->fsync(s->ctx, fd);
}
static inline int sys_rename(const struct sys_ops *s, const char *from, const char *to)
{
	return s->rename(s->ctx, from, to);
}
static inline int sys_unlink(const struct sys_ops *s, const char *path)
{
	return s->unlink(s->ctx, path);
}
static inline int sys_mkdir(const struct sys_ops *s, const char *path, mode_t mode)
{
	return s->mkdir(s->ctx, path, mode);
}
static inline int sys_flock(const struct sys_ops *s, int fd, int op)
{
	return s->flock(s->ctx, fd, op);
}
static inline int sys_ftruncate(const struct sys_ops *s, int fd, off_t len)
{
	return s->ftruncate(s->ctx, fd, len);
}
static inline int sys_statvfs(const struct sys_ops *s, const char *path, struct statvfs *out)
{
	return s->statvfs(s->ctx, path, out);
}
static inline int sys_close(const struct sys_ops *s, int fd)
{
	return s->close(s->ctx, fd);
}

/* Writes all of data (retrying short writes and EINTR); -1 with errno. */
int sys_write_all(const struct sys_ops *, int fd, const void *data, size_t len);
/* pwrite of all of data at off; -1 with errno. */
int sys_pwrite_all(const struct sys_ops *, int fd, const void *data, size_t len, off_t off);
/* fsync of a directory, so a rename or create in it survives a power cut; -1 with errno. */
int sys_fsync_dir(const struct sys_ops *, const char *dir);
/* The directory part of path ("." when it has none): caller frees. */
char *sys_dir_of(const char *path);

/* dir/name ← data, mode 0600: temp file, fsync, rename, fsync dir (git's lockfile). All or nothing. */
int sys_atomic_write(const struct sys_ops *, const char *dir, const char *name, const void *data, size_t len,
		     struct mm_error *err);
/* mkdir -p with mode for each created level. */
int sys_mkdir_p(const struct sys_ops *, const char *path, mode_t mode, struct mm_error *err);
/* Bytes free for an unprivileged writer at path, or -1 with errno. */
int64_t sys_free_bytes(const struct sys_ops *, const char *path);

/*
 * Fault injection: every call through ops counts; call number fail_at
 * (1-based) fails with errno fail_errno, or, with exit_code >= 0, ends the
 * process there with _exit(exit_code) as a crash would (no atexit, no
 * flush). The struct is the table's ctx and must outlive its use.
 */
struct sys_fault {
	struct sys_ops ops;         /* what to hand out: fault-counting wrappers */
	const struct sys_ops *base; /* the calls that do the work */
	long calls, fail_at;
	int fail_errno, exit_code;
	int persistent; /* fail every call from fail_at on, not just that one */
};

void sys_fault_init(struct sys_fault *, const struct sys_ops *base, long fail_at, int fail_errno,
		    int exit_code);
/*
 * From a spec such as "17:ENOSPC", "17:EIO+" (that call and every later one)
 * or "17:exit" (MMIGRATE_TEST_FAULT, for the crash sweep). 0, or -1 when the
 * spec does not parse.
 */
int sys_fault_parse(struct sys_fault *, const struct sys_ops *base, const char *spec);

#endif

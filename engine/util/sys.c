#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "util.h"

/* ---- the real calls ---- */

static int p_open(void *ctx, const char *path, int flags, mode_t mode)
{
	return open(path, flags, mode);
}
static ssize_t p_write(void *ctx, int fd, const void *buf, size_t n)
{
	return write(fd, buf, n);
}
static ssize_t p_pwrite(void *ctx, int fd, const void *buf, size_t n, off_t off)
{
	return pwrite(fd, buf, n, off);
}
static int p_fsync(void *ctx, int fd)
{
	return fsync(fd);
}
static int p_rename(void *ctx, const char *from, const char *to)
{
	return rename(from, to);
}
static int p_unlink(void *ctx, const char *path)
{
	return unlink(path);
}
static int p_mkdir(void *ctx, const char *path, mode_t mode)
{
	return mkdir(path, mode);
}
static int p_flock(void *ctx, int fd, int op)
{
	return flock(fd, op);
}
static int p_ftruncate(void *ctx, int fd, off_t len)
{
	return ftruncate(fd, len);
}
static int p_statvfs(void *ctx, const char *path, struct statvfs *out)
{
	return statvfs(path, out);
}
static int p_close(void *ctx, int fd)
{
	return close(fd);
}

const struct sys_ops sys_posix = {
	.open = p_open,
	.write = p_write,
	.pwrite = p_pwrite,
	.fsync = p_fsync,
	.rename = p_rename,
	.unlink = p_unlink,
	.mkdir = p_mkdir,
	.flock = p_flock,
	.ftruncate = p_ftruncate,
	.statvfs = p_statvfs,
	.close = p_close,
	.ctx = NULL,
};

/* ---- helpers over the table ---- */

/* write (off < 0) or pwrite at off until all of data is out: short writes and EINTR retried. */
static int write_fully(const struct sys_ops *s, int fd, const void *data, size_t len, off_t off)
{
	const char *p = data;

	while (len) {
		ssize_t n = off < 0 ? sys_write(s, fd, p, len) : sys_pwrite(s, fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		p += n;
		if (off >= 0)
			off += n;
		len -= (size_t)n;
	}
	return 0;
}

int sys_write_all(const struct sys_ops *s, int fd, const void *data, size_t len)
{
	return write_fully(s, fd, data, len, -1);
}

int sys_pwrite_all(const struct sys_ops *s, int fd, const void *data, size_t len, off_t off)
{
	return write_fully(s, fd, data, len, off < 0 ? 0 : off);
}

int sys_fsync_dir(const struct sys_ops *s, const char *dir)
{
	int fd = sys_open(s, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	int ret, saved;

	if (fd < 0)
		return -1;
	ret = sys_fsync(s, fd);
	saved = errno;
	sys_close(s, fd);
	errno = saved;
	return ret;
}

char *sys_dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

int sys_atomic_write(const struct sys_ops *s, const char *dir, const char *name, const void *data, size_t len,
		     struct mm_error *err)
{
	struct buf tmp = BUF_INIT, dst = BUF_INIT;
	int fd = -1, ret = MM_ERR;

	buf_addf(&tmp, "%s/%s.tmp", dir, name);
	buf_addf(&dst, "%s/%s", dir, name);
	/* O_NOFOLLOW: a link planted at the temp name must not redirect our write. */
	fd = sys_open(s, tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		err_set(err, MM_ERR, "cannot create '%s': %s", tmp.data, strerror(errno));
		goto out;
	}
	if (sys_write_all(s, fd, data, len) < 0) {
		err_set(err, MM_ERR, "cannot write '%s': %s", tmp.data, strerror(errno));
		goto out;
	}
	if (sys_fsync(s, fd) < 0) {
		err_set(err, MM_ERR, "cannot fsync '%s': %s", tmp.data, strerror(errno));
		goto out;
	}
	if (sys_close(s, fd) < 0) {
		fd = -1;
		err_set(err, MM_ERR, "cannot close '%s': %s", tmp.data, strerror(errno));
		goto out;
	}
	fd = -1;
	if (sys_rename(s, tmp.data, dst.data) < 0) {
		err_set(err, MM_ERR, "cannot rename '%s' to '%s': %s", tmp.data, dst.data, strerror(errno));
		goto out;
	}
	if (sys_fsync_dir(s, dir) < 0) {
		err_set(err, MM_ERR, "cannot fsync directory '%s': %s", dir, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	if (fd >= 0)
		sys_close(s, fd);
	if (ret < 0)
		unlink(tmp.data); /* the old file, if any, is untouched; not a seam call: cleanup only */
	buf_release(&tmp);
	buf_release(&dst);
	return ret;
}

int sys_mkdir_p(const struct sys_ops *s, const char *path, mode_t mode, struct mm_error *err)
{
	char *p = xstrdup(path);
	int ret = 0;

	for (char *c = p + 1;; c++) {
		if (*c != '/' && *c != '\0')
			continue;
		char saved = *c;

		*c = '\0';
		if (sys_mkdir(s, p, mode) < 0 && errno != EEXIST) {
			ret = err_set(err, MM_ERR, "cannot create directory '%s': %s", p, strerror(errno));
			break;
		}
		*c = saved;
		if (!saved)
			break;
	}
	free(p);
	return ret;
}

int64_t sys_free_bytes(const struct sys_ops *s, const char *path)
{
	struct statvfs v;

	if (sys_statvfs(s, path, &v) < 0)
		return -1;
	return (int64_t)v.f_bavail * (int64_t)v.f_frsize;
}

/* ---- fault injection ---- */

/* 1 when this call is the one to fail (errno set); ends the process when asked to. */
static int fault_hit(void *ctx)
{
	struct sys_fault *f = ctx;

	f->calls++;
	if (!f->fail_at || f->calls < f->fail_at || (f->calls > f->fail_at && !f->persistent))
		return 0;
	if (f->exit_code >= 0)
		_exit(f->exit_code);
	errno = f->fail_errno;
	return 1;
}

#define BASE(ctx) (((struct sys_fault *)(ctx))->base)

static int f_open(void *ctx, const char *path, int flags, mode_t mode)
{
	return fault_hit(ctx) ? -1 : sys_open(BASE(ctx), path, flags, mode);
}
static ssize_t f_write(void *ctx, int fd, const void *buf, size_t n)
{
	return fault_hit(ctx) ? -1 : sys_write(BASE(ctx), fd, buf, n);
}
static ssize_t f_pwrite(void *ctx, int fd, const void *buf, size_t n, off_t off)
{
	return fault_hit(ctx) ? -1 : sys_pwrite(BASE(ctx), fd, buf, n, off);
}
static int f_fsync(void *ctx, int fd)
{
	return fault_hit(ctx) ? -1 : sys_fsync(BASE(ctx), fd);
}
static int f_rename(void *ctx, const char *from, const char *to)
{
	return fault_hit(ctx) ? -1 : sys_rename(BASE(ctx), from, to);
}
static int f_unlink(void *ctx, const char *path)
{
	return fault_hit(ctx) ? -1 : sys_unlink(BASE(ctx), path);
}
static int f_mkdir(void *ctx, const char *path, mode_t mode)
{
	return fault_hit(ctx) ? -1 : sys_mkdir(BASE(ctx), path, mode);
}
static int f_flock(void *ctx, int fd, int op)
{
	return fault_hit(ctx) ? -1 : sys_flock(BASE(ctx), fd, op);
}
static int f_ftruncate(void *ctx, int fd, off_t len)
{
	return fault_hit(ctx) ? -1 : sys_ftruncate(BASE(ctx), fd, len);
}
static int f_statvfs(void *ctx, const char *path, struct statvfs *out)
{
	return fault_hit(ctx) ? -1 : sys_statvfs(BASE(ctx), path, out);
}
/* close never fails here: a failed close leaks the descriptor and tells nothing about durability. */
static int f_close(void *ctx, int fd)
{
	return sys_close(BASE(ctx), fd);
}

void sys_fault_init(struct sys_fault *f, const struct sys_ops *base, long fail_at, int fail_errno, int exit_code)
{
	memset(f, 0, sizeof(*f));
	f->base = base;
	f->fail_at = fail_at;
	f->fail_errno = fail_errno;
	f->exit_code = exit_code;
	f->ops = (struct sys_ops){
		.open = f_open,
		.write = f_write,
		.pwrite = f_pwrite,
		.fsync = f_fsync,
		.rename = f_rename,
		.unlink = f_unlink,
		.mkdir = f_mkdir,
		.flock = f_flock,
		.ftruncate = f_ftruncate,
		.statvfs = f_statvfs,
		.close = f_close,
		.ctx = f,
	};
}

static const struct {
	const char *name;
	int value;
} errnos[] = {
	{ "ENOSPC", ENOSPC }, { "EIO", EIO },       { "EROFS", EROFS }, { "EACCES", EACCES },
	{ "EDQUOT", EDQUOT }, { "ENOENT", ENOENT }, { "EINTR", EINTR },
};

int sys_fault_parse(struct sys_fault *f, const struct sys_ops *base, const char *spec)
{
	char *end;
	long n = strtol(spec, &end, 10);
	int persistent = 0;

	if (end == spec || *end != ':' || n <= 0)
		return -1;
	end++;
	if (!strcmp(end, "exit")) {
		sys_fault_init(f, base, n, 0, 137);
		return 0;
	}
	for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++) {
		size_t len = strlen(errnos[i].name);

		if (strncmp(end, errnos[i].name, len))
			continue;
		if (end[len] == '+')
			persistent = 1;
		else if (end[len])
			continue;
		sys_fault_init(f, base, n, errnos[i].value, -1);
		f->persistent = persistent;
		return 0;
	}
	return -1;
}

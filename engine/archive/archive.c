/*
 * archive: export-archive verification. See archive.h.
 *
 * Threads, each with its own zip handle or file descriptor, so libzip objects
 * are never shared:
 *   reader  inflates the JSONL entry into a ring of blocks (libzip checks its CRC at the end)
 *   caller  splits the blocks into lines and runs bulk_check_line on them
 *   crc     reads every other entry to the end: libzip reports ZIP_ER_CRC there
 *   hash    SHA-256 of the file with large reads
 * On two cores the inflate and the JSON parse overlap, which is what keeps
 * the whole check close to `unzip -tq`.
 */
#include "archive.h"
#include "zipstream.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include "buf.h"
#include "hash.h"
#include "util.h"

#define BLOCK_SIZE ((size_t)4 << 20) /* JSONL blocks: large, so lines rarely straddle */
#define NBLOCKS 3
#define RAW_BLOCK ((size_t)1 << 20) /* CRC and hash reads */

/* ---------------------------------------------------------------- problems */

struct msglist {
	char **v;
	size_t n, cap;
};

static void msglist_push(struct msglist *l, char *s)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = s;
}

static void msglist_free(struct msglist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int keeps(int max_shown, size_t n)
{
	return max_shown < 0 || n < (size_t)max_shown;
}

/* Problems of the archive (key -1) and of its entries (key = entry index),
 * shown in key order before the line problems. */
struct zprob {
	long key;
	size_t seq; /* keeps problems with the same key in the order found */
	char *msg;
};

struct zproblems {
	struct zprob *v;
	size_t n, cap;
	unsigned long count;
	int max_shown;
};

static void zprob_push(struct zproblems *z, long key, char *msg)
{
	if (z->n == z->cap) {
		z->cap = z->cap ? z->cap * 2 : 8;
		z->v = xrealloc(z->v, z->cap * sizeof(*z->v));
	}
	z->v[z->n].key = key;
	z->v[z->n].seq = z->n;
	z->v[z->n++].msg = msg;
}

__attribute__((format(printf, 5, 6))) static void zproblem(struct zproblems *z, const char *archive, long key,
							   const char *entry, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;

	z->count++;
	if (!keeps(z->max_shown, z->n))
		return;
	buf_adds(&b, archive);
	if (entry)
		buf_addf(&b, "->%s", entry);
	buf_adds(&b, ": ");
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	zprob_push(z, key, buf_detach(&b));
}

static void zproblems_free(struct zproblems *z)
{
	for (size_t i = 0; i < z->n; i++)
		free(z->v[i].msg);
	free(z->v);
	memset(z, 0, sizeof(*z));
}

/* Line problems: "WHERE:LINE: field "F": msg". */
struct sink {
	const char *where; /* "ARCHIVE->import.jsonl", or a bare file's path */
	int max_shown;
	unsigned long count;
	struct msglist shown;
};

static void sink_report(void *ctx, unsigned long line, const char *field, const char *msg)
{
	struct sink *s = ctx;
	struct buf b = BUF_INIT;

	s->count++;
	if (!keeps(s->max_shown, s->shown.n))
		return;
	buf_adds(&b, s->where);
	if (line)
		buf_addf(&b, ":%lu", line);
	buf_adds(&b, ": ");
	if (field)
		buf_addf(&b, "field \"%s\": ", field);
	buf_adds(&b, msg);
	msglist_push(&s->shown, buf_detach(&b));
}

/* ------------------------------------------------------------- stopping */

/* Shared by all threads of one check: set when any of them must stop. */
struct stopper {
	atomic_int quit;
	const struct archive_opts *opts;
};

static int should_stop(struct stopper *s)
{
	if (atomic_load_explicit(&s->quit, memory_order_relaxed))
		return 1;
	if (s->opts->should_stop && s->opts->should_stop(s->opts->stop_ctx)) {
		atomic_store(&s->quit, 1);
		return 1;
	}
	return 0;
}

/* A worker thread; runs inline when no thread can be started. */
struct task {
	pthread_t t;
	int running;
};

static void task_start(struct task *t, void *(*fn)(void *), void *arg)
{
	if (pthread_create(&t->t, NULL, fn, arg) == 0)
		t->running = 1;
	else
		fn(arg);
}

static void task_join(struct task *t)
{
	if (t->running)
		pthread_join(t->t, NULL);
	t->running = 0;
}

/* ------------------------------------------------------------ the splitter */

/*
 * Cuts blocks into lines. Lines inside a block are checked in place; only a
 * line that straddles blocks is copied, into carry, up to BULK_MAX_LINE.
 * Longer lines are measured, not kept.
 */
struct splitter {
	struct bulk_state *st;
	struct sink *sink;
	struct buf carry;
	size_t skip_len; /* > 0: inside an over-long line of this many bytes so far */
	unsigned long lineno;
};

static void emit(struct splitter *sp, const char *line, size_t len)
{
	bulk_check_line(sp->st, line, len, ++sp->lineno, sink_report, sp->sink);
}

static void carry_add(struct splitter *sp, const char *p, size_t len)
{
	if (!sp->skip_len && sp->carry.len + len <= BULK_MAX_LINE) {
		buf_add(&sp->carry, p, len);
		return;
	}
	if (!sp->skip_len) {
		sp->skip_len = sp->carry.len;
		buf_release(&sp->carry); /* give the 16 MiB back */
	}
	sp->skip_len += len;
}

/* The line in carry (or being skipped) ends here. */
static void carry_flush(struct splitter *sp)
{
	if (sp->skip_len) {
		bulk_line_too_long(sp->st, ++sp->lineno, sp->skip_len, sink_report, sp->sink);
		sp->skip_len = 0;
	} else {
		emit(sp, sp->carry.data ? sp->carry.data : "", sp->carry.len);
		buf_reset(&sp->carry);
	}
}

static void split_block(struct splitter *sp, const char *p, size_t n)
{
	const char *end = p + n;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (!nl) {
			carry_add(sp, p, (size_t)(end - p));
			return;
		}
		if (sp->carry.len || sp->skip_len) {
			carry_add(sp, p, (size_t)(nl - p));
			carry_flush(sp);
		} else {
			emit(sp, p, (size_t)(nl - p));
		}
		p = nl + 1;
	}
}

/* A last line without '\n' is still a line; a final '\n' starts none. */
static void split_end(struct splitter *sp)
{
	if (sp->carry.len || sp->skip_len)
		carry_flush(sp);
	buf_release(&sp->carry);
}

/* ------------------------------------------------------------ the pipeline */

/* Reads up to n bytes: > 0 read, 0 at the end, -1 on error with msg set. */
typedef long (*read_fn)(void *src, char *buf, size_t n, char *msg, size_t msglen);

/* A ring of blocks the reader fills and the caller drains. */
struct pipeline {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *block[NBLOCKS];
	size_t len[NBLOCKS];
	size_t head, filled;
	int done;   /* the reader stopped: end of data, error, or quit */
	int quit;   /* the caller needs no more blocks */
	int failed; /* the last read failed; msg says why */
	char msg[256];
	read_fn read;
	void *src;
	struct stopper *stop;
};

/* Returns 1 when the reader must stop after this block. */
static int fill_block(struct pipeline *p, size_t slot)
{
	size_t len = 0;
	long n = 0;

	while (len < BLOCK_SIZE) {
		n = p->read(p->src, p->block[slot] + len, BLOCK_SIZE - len, p->msg, sizeof(p->msg));
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	p->len[slot] = len;
	if (n < 0)
		p->failed = 1;
	return n <= 0 || should_stop(p->stop);
}

static void *reader_main(void *arg)
{
	struct pipeline *p = arg;
	int end = 0;

	while (!end) {
		size_t slot;

		pthread_mutex_lock(&p->mu);
		while (p->filled == NBLOCKS && !p->quit)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->quit) {
			pthread_mutex_unlock(&p->mu);
			break;
		}
		slot = (p->head + p->filled) % NBLOCKS;
		pthread_mutex_unlock(&p->mu);

		end = fill_block(p, slot);

		pthread_mutex_lock(&p->mu);
		if (p->len[slot])
			p->filled++;
		p->done = end;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
	}
	return NULL;
}

/* Waits for the next block; 0 when there are no more. */
static int pipeline_next(struct pipeline *p, const char **data, size_t *len)
{
	int ret = 0;

	pthread_mutex_lock(&p->mu);
	while (!p->filled && !p->done)
		pthread_cond_wait(&p->cv, &p->mu);
	if (p->filled) {
		*data = p->block[p->head];
		*len = p->len[p->head];
		ret = 1;
	}
	pthread_mutex_unlock(&p->mu);
	return ret;
}

static void pipeline_release(struct pipeline *p)
{
	pthread_mutex_lock(&p->mu);
	p->head = (p->head + 1) % NBLOCKS;
	p->filled--;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

static void pipeline_quit(struct pipeline *p)
{
	pthread_mutex_lock(&p->mu);
	p->quit = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

/*
 * Feeds everything src yields through the splitter into the bulk validator.
 * Returns 0 (a read error is left in p->failed/p->msg), MM_EINTR when asked
 * to stop, or -1 when no thread can be started.
 */
static int stream_lines(const char *path, read_fn read, void *src, struct splitter *sp, struct stopper *stop,
			struct pipeline *p, struct mm_error *err)
{
	pthread_t reader;
	const char *data;
	size_t len;
	int ret = 0;

	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	for (int i = 0; i < NBLOCKS; i++)
		p->block[i] = xmalloc(BLOCK_SIZE);
	p->read = read;
	p->src = src;
	p->stop = stop;
	if (pthread_create(&reader, NULL, reader_main, p) != 0) {
		ret = err_set(err, MM_ERR, "cannot start the reader thread");
		goto out;
	}
	while (pipeline_next(p, &data, &len)) {
		split_block(sp, data, len);
		pipeline_release(p);
		if (should_stop(stop)) {
			ret = MM_EINTR;
			break;
		}
	}
	pipeline_quit(p);
	pthread_join(reader, NULL);
	if (ret || should_stop(stop))
		ret = err_set(err, MM_EINTR, "check of '%s' interrupted", path);
	else
		split_end(sp);
out:
	for (int i = 0; i < NBLOCKS; i++)
		free(p->block[i]);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	return ret;
}

/* --------------------------------------------------------------- sources */

/* libzip's verdict on an entry read, in our words. */
static void describe_zip_error(zip_error_t *ze, char *msg, size_t msglen)
{
	if (zip_error_code_zip(ze) == ZIP_ER_CRC)
		snprintf(msg, msglen, "CRC mismatch: the entry is corrupt");
	else
		snprintf(msg, msglen, "cannot read entry: %s", zip_error_strerror(ze));
}

static long zip_entry_read(void *src, char *buf, size_t n, char *msg, size_t msglen)
{
	zip_file_t *zf = src;
	zip_int64_t r = zip_fread(zf, buf, n);

	if (r < 0) {
		describe_zip_error(zip_file_get_error(zf), msg, msglen);
		return -1;
	}
	return (long)r;
}

static long fd_read(void *src, char *buf, size_t n, char *msg, size_t msglen)
{
	int fd = *(int *)src;
	ssize_t r;

	do
		r = read(fd, buf, n);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		snprintf(msg, msglen, "cannot read: %s", strerror(errno));
		return -1;
	}
	return (long)r;
}

/* ----------------------------------------------------------- hash worker */

struct hash_job {
	const char *path;
	struct stopper *stop;
	struct zipstream *zs; /* zips: the zip check, fed in the hashing pass; NULL for a bare JSONL */
	char hex[65];
	char msg[256]; /* "" on success */
};

static void *hash_main(void *arg)
{
	struct hash_job *j = arg;
	struct sha256 h = { NULL };
	char *buf = xmalloc(RAW_BLOCK);
	int fd = open(j->path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || sha256_init(&h) < 0) {
		snprintf(j->msg, sizeof(j->msg), "cannot compute SHA-256: %s",
			 fd < 0 ? strerror(errno) : "OpenSSL failed");
		goto out;
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	for (;;) {
		ssize_t got = read(fd, buf, RAW_BLOCK);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			snprintf(j->msg, sizeof(j->msg), "cannot read: %s", strerror(errno));
			goto out;
		}
		if (got == 0 || should_stop(j->stop))
			break;
		sha256_update(&h, buf, (size_t)got);
		if (j->zs)
			zs_feed(j->zs, buf, (size_t)got);
	}
	if (j->zs)
		zs_finish(j->zs);
	if (!should_stop(j->stop))
		sha256_final_hex(&h, j->hex);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	sha256_release(&h);
	return NULL;
}

/* ------------------------------------------------------------- the check */

struct verify {
	const char *path;
	struct archive_opts opts;
	struct stopper stop;
	struct archive_report *rep;
	struct sink lines;
	struct zproblems zip;
	zip_t *za;             /* names and lookups; this thread only */
	unsigned char *used;   /* per entry: some line references it */
	zip_int64_t jsonl;     /* the JSONL entry, -1 if none */
	zip_int64_t warnings;  /* warnings.txt, -1 if none */
	struct msglist warned; /* the words of warnings.txt: paths the export could not read */
	struct hash_job hash;  /* SHA-256 and, for a zip, the zip check (zipstream): one read */
	struct task hash_task;
};

static void verify_init(struct verify *v, const char *path, const struct archive_opts *opts)
{
	static const struct archive_opts defaults = ARCHIVE_OPTS_INIT;

	memset(v, 0, sizeof(*v));
	v->path = path;
	v->opts = opts ? *opts : defaults;
	atomic_init(&v->stop.quit, 0);
	v->stop.opts = &v->opts;
	v->rep = xcalloc(1, sizeof(*v->rep));
	v->rep->archive = xstrdup(path);
	v->rep->max_shown = v->opts.max_shown;
	v->rep->names = bulk_state_new();
	v->lines.max_shown = v->opts.max_shown;
	v->zip.max_shown = v->opts.max_shown;
	v->jsonl = v->warnings = -1;
}

/* Stops and waits for the workers, whatever state the check is in. */
static void verify_release(struct verify *v)
{
	atomic_store(&v->stop.quit, 1);
	task_join(&v->hash_task);
	zs_free(v->hash.zs);
	zproblems_free(&v->zip);
	msglist_free(&v->lines.shown);
	msglist_free(&v->warned);
	free((char *)v->lines.where);
	free(v->used);
	if (v->za)
		zip_discard(v->za);
	archive_report_free(v->rep);
}

static int stat_file(const char *path, uint64_t *size, struct mm_error *err)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return err_set(err, errno == ENOENT ? MM_ENOTFOUND : MM_ERR, "cannot open '%s': %s", path,
			       strerror(errno));
	if (!S_ISREG(st.st_mode))
		return err_set(err, MM_EINVAL, "'%s' is not a regular file", path);
	*size = (uint64_t)st.st_size;
	return 0;
}

static void start_hash(struct verify *v)
{
	v->hash.path = v->path;
	v->hash.stop = &v->stop;
	task_start(&v->hash_task, hash_main, &v->hash);
}

/* A local file header signature at offset 0: a zip, however damaged. */
static int starts_like_zip(const char *path)
{
	unsigned char sig[4];
	FILE *f = fopen(path, "rbe");
	int ret = f && fread(sig, 1, 4, f) == 4 && !memcmp(sig, "PK\3\4", 4);

	if (f)
		fclose(f);
	return ret;
}

/* 0: open; 1: a damaged zip, reported; < 0: not a zip or unreadable. */
static int open_zip(struct verify *v, struct mm_error *err)
{
	int zerr = 0;
	zip_error_t ze;

	if ((v->za = zip_open(v->path, ZIP_RDONLY, &zerr)))
		return 0;
	zip_error_init_with_code(&ze, zerr);
	if (!starts_like_zip(v->path)) {
		err_set(err, MM_EINVAL, "'%s' is not a zip archive: %s", v->path, zip_error_strerror(&ze));
		zip_error_fini(&ze);
		return MM_EINVAL;
	}
	if (zerr == ZIP_ER_NOZIP)
		zproblem(&v->zip, v->path, -1, NULL,
			 "truncated zip archive: the central directory at its end is missing");
	else
		zproblem(&v->zip, v->path, -1, NULL, "damaged zip archive: %s", zip_error_strerror(&ze));
	zip_error_fini(&ze);
	return 1;
}

/* ------------------------------------------------------ zip layout */

/*
 * Entries whose data overlap (the "overlapping files" zip bomb: many central
 * directory entries sharing one deflated stream) or run into the central
 * directory are refused before any data is read, as Go's archive/zip reader
 * the server uses refuses them; reading them would inflate the same bytes
 * once per entry. The central directory is parsed here because libzip does
 * not expose local header offsets.
 */
struct span {
	uint64_t start, end; /* local header .. end of compressed data */
};

static uint64_t le(const unsigned char *p, int n)
{
	uint64_t v = 0;

	while (n--)
		v = (v << 8) | p[n];
	return v;
}

static int read_at(int fd, void *buf, size_t n, uint64_t off)
{
	ssize_t r = pread(fd, buf, n, (off_t)off);

	return r == (ssize_t)n ? 0 : -1;
}

/* Finds the central directory: offset, size and entry count. */
static int find_cd(int fd, uint64_t fsize, uint64_t *off, uint64_t *size, uint64_t *count)
{
	unsigned char tail[65557], z[56];
	size_t n = fsize < sizeof(tail) ? (size_t)fsize : sizeof(tail);
	uint64_t base = fsize - n;

	if (n < 22 || read_at(fd, tail, n, base) < 0)
		return -1;
	for (size_t i = n - 22 + 1; i-- > 0;) {
		if (le(tail + i, 4) != 0x06054b50)
			continue;
		*count = le(tail + i + 10, 2);
		*size = le(tail + i + 12, 4);
		*off = le(tail + i + 16, 4);
		if (*count != 0xffff && *size != 0xffffffff && *off != 0xffffffff)
			return 0;
		/* zip64: the locator sits just before the end record */
		if (base + i < 20 || le(tail + i - 20, 4) != 0x07064b50 ||
		    read_at(fd, z, sizeof(z), le(tail + i - 20 + 8, 8)) < 0 || le(z, 4) != 0x06064b50)
			return -1;
		*count = le(z + 32, 8);
		*size = le(z + 40, 8);
		*off = le(z + 48, 8);
		return 0;
	}
	return -1;
}

/* The zip64 extra field replaces the 32-bit values that read 0xffffffff. */
static void zip64_extra(const unsigned char *x, size_t n, uint64_t *usize, uint64_t *csize, uint64_t *off)
{
	for (size_t i = 0; i + 4 <= n;) {
		size_t id = (size_t)le(x + i, 2), len = (size_t)le(x + i + 2, 2), o = i + 4;

		if (id == 1) {
			if (*usize == 0xffffffff && o + 8 <= n)
				*usize = le(x + o, 8), o += 8;
			if (*csize == 0xffffffff && o + 8 <= n)
				*csize = le(x + o, 8), o += 8;
			if (*off == 0xffffffff && o + 8 <= n)
				*off = le(x + o, 8);
			return;
		}
		i = o + len;
	}
}

static int cmp_span(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	return (x->start > y->start) - (x->start < y->start);
}

/* Reads every entry's extent from the central directory and local headers. */
static int read_spans(int fd, uint64_t cd_off, uint64_t cd_size, uint64_t count, struct span *sp, size_t *nsp)
{
	unsigned char h[46], x[65536], l[30];
	uint64_t pos = cd_off;

	*nsp = 0;
	for (uint64_t i = 0; i < count; i++) {
		uint64_t usize, csize, off;
		size_t nlen, xlen, clen;

		if (pos + 46 > cd_off + cd_size || read_at(fd, h, 46, pos) < 0 || le(h, 4) != 0x02014b50)
			return -1;
		csize = le(h + 20, 4);
		usize = le(h + 24, 4);
		nlen = (size_t)le(h + 28, 2);
		xlen = (size_t)le(h + 30, 2);
		clen = (size_t)le(h + 32, 2);
		off = le(h + 42, 4);
		if (xlen && read_at(fd, x, xlen, pos + 46 + nlen) < 0)
			return -1;
		zip64_extra(x, xlen, &usize, &csize, &off);
		if (read_at(fd, l, 30, off) < 0 || le(l, 4) != 0x04034b50)
			return -1;
		sp[*nsp].start = off;
		sp[*nsp].end = off + 30 + le(l + 26, 2) + le(l + 28, 2) + csize;
		(*nsp)++;
		pos += 46 + nlen + xlen + clen;
	}
	return 0;
}

/* 0: the layout is sound (or could not be judged: libzip reports that);
 * 1: entries overlap, reported. */
static int check_layout(struct verify *v)
{
	uint64_t cd_off, cd_size, count;
	struct span *sp = NULL;
	size_t n = 0;
	int fd = open(v->path, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0 || find_cd(fd, v->rep->size, &cd_off, &cd_size, &count) < 0 ||
	    count > (uint64_t)zip_get_num_entries(v->za, 0) || count > cd_size / 46 + 1)
		goto out;
	sp = xcalloc((size_t)count + 1, sizeof(*sp));
	if (read_spans(fd, cd_off, cd_size, count, sp, &n) < 0)
		goto out;
	qsort(sp, n, sizeof(*sp), cmp_span);
	for (size_t i = 0; i < n; i++) {
		uint64_t next = i + 1 < n ? sp[i + 1].start : cd_off;

		if (sp[i].end > next) {
			zproblem(&v->zip, v->path, -1, NULL,
				 "entries overlap at byte %llu: a zip bomb "
				 "or a damaged archive; the server refuses it, so its data were not read",
				 (unsigned long long)next);
			ret = 1;
			break;
		}
	}
out:
	free(sp);
	if (fd >= 0)
		close(fd);
	return ret;
}

static int has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !memcmp(s + n - m, suffix, m);
}

/*
 * The first *.jsonl at the root, in central-directory order: the import job
 * (server/channels/jobs/import_process/worker.go, imports.IsRootJsonlFile)
 * takes that one and ignores the rest.
 */
static void find_entries(struct verify *v)
{
	zip_int64_t n = zip_get_num_entries(v->za, 0);

	v->rep->entries = (unsigned long)n;
	v->used = xcalloc((size_t)n + 1, 1);
	for (zip_int64_t i = 0; i < n; i++) {
		const char *name = zip_get_name(v->za, (zip_uint64_t)i, 0);

		if (!name || strchr(name, '/'))
			continue;
		if (has_suffix(name, ".jsonl")) {
			if (v->jsonl < 0)
				v->jsonl = i;
			v->rep->root_jsonls++;
		} else if (!strcmp(name, "warnings.txt"))
			v->warnings = i;
	}
}

/* Whether warnings.txt names the file (with or without its data/ prefix). */
static int warned(const struct verify *v, const char *name)
{
	for (size_t i = 0; i < v->warned.n; i++)
		if (!strcmp(v->warned.v[i], name) || !strcmp(v->warned.v[i], name + 5))
			return 1;
	return 0;
}

static int entry_lookup(void *ctx, const char *name)
{
	struct verify *v = ctx;
	zip_int64_t i = zip_name_locate(v->za, name, 0);

	if (i < 0)
		return warned(v, name) ? BULK_EXCUSED : BULK_ABSENT;
	v->used[i] = 1;
	return BULK_PRESENT;
}

/* Validates the JSONL entry in one streaming pass. */
static int check_jsonl(struct verify *v, struct mm_error *err)
{
	const char *name = zip_get_name(v->za, (zip_uint64_t)v->jsonl, 0);
	struct splitter sp = { v->rep->names, &v->lines, BUF_INIT, 0, 0 };
	struct pipeline p;
	int zerr = 0, ret = -1;
	zip_t *za = NULL;
	zip_file_t *zf = NULL;
	struct buf where = BUF_INIT;

	v->rep->jsonl = xstrdup(name);
	buf_addf(&where, "%s->%s", v->path, name);
	v->lines.where = buf_detach(&where);
	if (v->opts.check_attachments)
		bulk_state_set_lookup(v->rep->names, entry_lookup, v);
	bulk_state_set_target(v->rep->names, v->opts.target_version);
	/* the reader thread gets a handle of its own */
	if (!(za = zip_open(v->path, ZIP_RDONLY, &zerr)) ||
	    !(zf = zip_fopen_index(za, (zip_uint64_t)v->jsonl, 0))) {
		char msg[256];

		if (za)
			describe_zip_error(zip_get_error(za), msg, sizeof(msg));
		else
			snprintf(msg, sizeof(msg), "cannot open the archive a second time");
		zproblem(&v->zip, v->path, (long)v->jsonl, name, "%s", msg);
		ret = 0;
		goto out;
	}
	if ((ret = stream_lines(v->path, zip_entry_read, zf, &sp, &v->stop, &p, err)) < 0)
		goto out;
	if (p.failed)
		zproblem(&v->zip, v->path, (long)v->jsonl, name, "%s", p.msg);
	bulk_finish(v->rep->names, sink_report, &v->lines);
	v->rep->lines = sp.lineno;
out:
	buf_release(&sp.carry);
	if (zf)
		zip_fclose(zf);
	if (za)
		zip_discard(za);
	return ret;
}

/* data/ files no line references: attachments the import will not use. */
static void list_unused(struct verify *v)
{
	struct msglist l = { 0 };

	for (unsigned long i = 0; i < v->rep->entries; i++) {
		const char *name = zip_get_name(v->za, i, 0);

		if (name && !v->used[i] && !strncmp(name, "data/", 5) && !has_suffix(name, "/"))
			msglist_push(&l, xstrdup(name));
	}
	v->rep->unused = l.v;
	v->rep->nunused = l.n;
}

/* One word of warnings.txt, trimmed of the punctuation around paths. */
static void keep_word(struct verify *v, struct buf *w)
{
	while (w->len && strchr(":,;'\"", w->data[w->len - 1]))
		w->data[--w->len] = '\0';
	if (w->len && v->warned.n < 1000000)
		msglist_push(&v->warned, xstrdup(strchr("'\"", w->data[0]) ? w->data + 1 : w->data));
	buf_reset(w);
}

/*
 * warnings.txt lists attachments the export could not read, one a line. Its
 * words are kept: an attachment it names may be missing from the zip (the
 * import skips such files). Read before the JSONL, so lookups can use it.
 */
static void read_export_warnings(struct verify *v)
{
	zip_file_t *zf = zip_fopen_index(v->za, (zip_uint64_t)v->warnings, 0);
	struct buf w = BUF_INIT;
	char buf[8192];
	zip_int64_t n;
	char last = '\n';

	if (!zf)
		return;
	while ((n = zip_fread(zf, buf, sizeof(buf))) > 0) {
		for (zip_int64_t i = 0; i < n; i++) {
			v->rep->export_warnings += buf[i] == '\n';
			if (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r')
				keep_word(v, &w);
			else if (w.len < 4096)
				buf_add(&w, buf + i, 1);
		}
		last = buf[n - 1];
	}
	keep_word(v, &w);
	if (last != '\n')
		v->rep->export_warnings++;
	buf_release(&w);
	zip_fclose(zf);
}

static int cmp_zprob(const void *a, const void *b)
{
	const struct zprob *x = a, *y = b;

	if (x->key != y->key)
		return (x->key > y->key) - (x->key < y->key);
	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Zip problems in entry order, then line problems, max_shown in all. */
static void collect_errors(struct verify *v)
{
	struct archive_report *rep = v->rep;
	struct msglist all = { 0 };

	rep->zip_error_count = v->zip.count;
	if (v->zip.n)
		qsort(v->zip.v, v->zip.n, sizeof(*v->zip.v), cmp_zprob);
	for (size_t i = 0; i < v->zip.n; i++) {
		if (keeps(rep->max_shown, all.n))
			msglist_push(&all, v->zip.v[i].msg);
		else
			free(v->zip.v[i].msg);
	}
	v->zip.n = 0;
	for (size_t i = 0; i < v->lines.shown.n; i++) {
		if (keeps(rep->max_shown, all.n))
			msglist_push(&all, v->lines.shown.v[i]);
		else
			free(v->lines.shown.v[i]);
	}
	v->lines.shown.n = 0;
	rep->errors = all.v;
	rep->nerrors = all.n;
	rep->error_count = v->zip.count + v->lines.count;
	rep->counts = *bulk_state_counts(rep->names);
}

/*
 * The zip check's findings (the one definition of a whole zip, shared with
 * the download step). CRC mismatches are reported per entry as before;
 * structural problems only when libzip and the layout check found none (they
 * describe the same damage). The JSONL entry is read through libzip, which
 * reports its own CRC.
 */
static void zip_findings(struct verify *v)
{
	int prior = v->zip.count > 0;
	size_t n;
	const struct zs_damage *d;

	if (!v->hash.zs || !v->hash.hex[0])
		return;
	d = zs_damage(v->hash.zs, &n);
	for (size_t i = 0; i < n; i++) {
		zip_int64_t key = *d[i].entry && v->za ? zip_name_locate(v->za, d[i].entry, 0) : -1;

		if (key >= 0 && key == v->jsonl)
			continue;
		if (*d[i].entry && !strncmp(d[i].why, "CRC-32 mismatch", 15))
			zproblem(&v->zip, v->path, (long)key, d[i].entry, "CRC mismatch: the entry is corrupt");
		else if (!prior && *d[i].entry)
			zproblem(&v->zip, v->path, (long)key, d[i].entry, "%s", d[i].why);
		else if (!prior)
			zproblem(&v->zip, v->path, -1, NULL, "damaged zip archive: %s", d[i].why);
	}
}

static void finish_hash(struct verify *v)
{
	task_join(&v->hash_task);
	if (v->hash.hex[0])
		memcpy(v->rep->sha256, v->hash.hex, sizeof(v->rep->sha256));
	else if (v->hash.msg[0])
		zproblem(&v->zip, v->path, -1, NULL, "%s", v->hash.msg);
	zip_findings(v);
}

/* Hands the report over; what is left in v is freed by verify_release. */
static int verify_done(struct verify *v, int64_t t0, struct archive_report **out, struct mm_error *err)
{
	if (should_stop(&v->stop))
		return err_set(err, MM_EINTR, "check of '%s' interrupted", v->path);
	collect_errors(v);
	v->rep->elapsed_ms = mono_ms() - t0;
	*out = v->rep;
	v->rep = NULL;
	return 0;
}

int archive_verify(const char *zip_path, const struct archive_opts *opts, struct archive_report **out,
		   struct mm_error *err)
{
	struct verify v;
	int64_t t0 = mono_ms();
	int ret;

	*out = NULL;
	verify_init(&v, zip_path, opts);
	if ((ret = stat_file(zip_path, &v.rep->size, err)) < 0)
		goto out;
	v.hash.zs = zs_new();
	start_hash(&v);
	if ((ret = open_zip(&v, err)) < 0)
		goto out;
	if (ret == 0 && check_layout(&v))
		ret = 1; /* refused before any data is read */
	if (ret == 0) {
		find_entries(&v);
		if (v.warnings >= 0)
			read_export_warnings(&v);
		if (v.jsonl < 0)
			zproblem(&v.zip, v.path, -1, NULL, "no .jsonl file at the archive root");
		else if ((ret = check_jsonl(&v, err)) < 0)
			goto out;
		if (v.jsonl >= 0 && v.opts.check_attachments)
			list_unused(&v);
	}
	finish_hash(&v);
	ret = verify_done(&v, t0, out, err);
out:
	verify_release(&v);
	return ret;
}

int archive_verify_jsonl(const char *jsonl_path, const struct archive_opts *opts, struct archive_report **out,
			 struct mm_error *err)
{
	struct verify v;
	struct splitter sp;
	struct pipeline p;
	int64_t t0 = mono_ms();
	int fd = -1, ret;

	*out = NULL;
	verify_init(&v, jsonl_path, opts);
	v.lines.where = xstrdup(jsonl_path);
	memset(&sp, 0, sizeof(sp));
	sp.st = v.rep->names;
	sp.sink = &v.lines;
	if ((ret = stat_file(jsonl_path, &v.rep->size, err)) < 0)
		goto out;
	if ((fd = open(jsonl_path, O_RDONLY | O_CLOEXEC)) < 0) {
		ret = err_set(err, MM_ERR, "cannot open '%s': %s", jsonl_path, strerror(errno));
		goto out;
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	start_hash(&v);
	v.rep->jsonl = xstrdup(jsonl_path);
	if ((ret = stream_lines(jsonl_path, fd_read, &fd, &sp, &v.stop, &p, err)) < 0)
		goto out;
	if (p.failed)
		zproblem(&v.zip, v.path, -1, NULL, "%s", p.msg);
	bulk_finish(v.rep->names, sink_report, &v.lines);
	v.rep->lines = sp.lineno;
	finish_hash(&v);
	ret = verify_done(&v, t0, out, err);
out:
	buf_release(&sp.carry);
	if (fd >= 0)
		close(fd);
	verify_release(&v);
	return ret;
}

/* ---------------------------------------------------------------- report */

void archive_report_free(struct archive_report *rep)
{
	if (!rep)
		return;
	for (size_t i = 0; i < rep->nerrors; i++)
		free(rep->errors[i]);
	for (size_t i = 0; i < rep->nunused; i++)
		free(rep->unused[i]);
	free(rep->errors);
	free(rep->unused);
	free(rep->archive);
	free(rep->jsonl);
	bulk_state_free(rep->names);
	free(rep);
}

static const struct {
	const char *label, *key;
	size_t off;
} count_fields[] = {
	{ "Roles", "roles", offsetof(struct bulk_counts, roles) },
	{ "Schemes", "schemes", offsetof(struct bulk_counts, schemes) },
	{ "Teams", "teams", offsetof(struct bulk_counts, teams) },
	{ "Channels", "channels", offsetof(struct bulk_counts, channels) },
	{ "Users", "users", offsetof(struct bulk_counts, users) },
	{ "Bots", "bots", offsetof(struct bulk_counts, bots) },
	{ "Emojis", "emojis", offsetof(struct bulk_counts, emojis) },
	{ "Posts", "posts", offsetof(struct bulk_counts, posts) },
	{ "Replies", "replies", offsetof(struct bulk_counts, replies) },
	{ "Direct Channels", "direct_channels", offsetof(struct bulk_counts, direct_channels) },
	{ "Direct Posts", "direct_posts", offsetof(struct bulk_counts, direct_posts) },
	{ "Attachments", "attachments", offsetof(struct bulk_counts, attachments) },
};

static unsigned long count_at(const struct bulk_counts *c, size_t off)
{
	return *(const unsigned long *)((const char *)c + off);
}

void archive_report_print(const struct archive_report *rep, FILE *out)
{
	size_t unused_shown = rep->nunused;

	for (size_t i = 0; i < rep->nerrors; i++)
		fprintf(out, "%s\n", rep->errors[i]);
	if (rep->error_count > rep->nerrors)
		fprintf(out, "... and %lu more errors\n", rep->error_count - rep->nerrors);
	if (rep->nerrors)
		fputc('\n', out);
	for (size_t i = 0; i < sizeof(count_fields) / sizeof(count_fields[0]); i++)
		fprintf(out, "%-16s %lu\n", count_fields[i].label, count_at(&rep->counts, count_fields[i].off));
	if (rep->nunused) {
		if (rep->max_shown >= 0 && unused_shown > (size_t)rep->max_shown)
			unused_shown = (size_t)rep->max_shown;
		fprintf(out, "\nUnused Attachments (%zu)\n", rep->nunused);
		for (size_t i = 0; i < unused_shown; i++)
			fprintf(out, "  %s\n", rep->unused[i]);
		if (unused_shown < rep->nunused)
			fprintf(out, "  ... and %zu more\n", rep->nunused - unused_shown);
	}
	if (rep->export_warnings)
		fprintf(out, "\nwarnings.txt: the export could not read %lu attachments\n",
			rep->export_warnings);
	if (rep->root_jsonls > 1)
		fprintf(out, "\nwarning: %lu .jsonl files at the root; the import reads only '%s'\n",
			rep->root_jsonls, rep->jsonl);
	fprintf(out, "\n%s: %lu lines, %lu entries, %llu bytes, sha256 %s, checked in %.1f s\n", rep->archive,
		rep->lines, rep->entries, (unsigned long long)rep->size, rep->sha256[0] ? rep->sha256 : "-",
		(double)rep->elapsed_ms / 1000);
	if (rep->error_count)
		fprintf(out, "%s: %lu errors\n", rep->archive, rep->error_count);
	else
		fprintf(out, "%s: no errors\n", rep->archive);
}

static cJSON *string_array(char **v, size_t n)
{
	cJSON *a = cJSON_CreateArray();

	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
	return a;
}

static cJSON *counts_json(const struct bulk_counts *c)
{
	cJSON *o = cJSON_CreateObject();

	for (size_t i = 0; i < sizeof(count_fields) / sizeof(count_fields[0]); i++)
		cJSON_AddNumberToObject(o, count_fields[i].key, (double)count_at(c, count_fields[i].off));
	return o;
}

cJSON *archive_report_json(const struct archive_report *rep)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "archive", rep->archive);
	if (rep->jsonl)
		cJSON_AddStringToObject(o, "jsonl", rep->jsonl);
	else
		cJSON_AddNullToObject(o, "jsonl");
	cJSON_AddNumberToObject(o, "size", (double)rep->size);
	cJSON_AddStringToObject(o, "sha256", rep->sha256);
	cJSON_AddNumberToObject(o, "entries", (double)rep->entries);
	cJSON_AddNumberToObject(o, "lines", (double)rep->lines);
	cJSON_AddItemToObject(o, "counts", counts_json(&rep->counts));
	cJSON_AddNumberToObject(o, "error_count", (double)rep->error_count);
	cJSON_AddItemToObject(o, "errors", string_array(rep->errors, rep->nerrors));
	cJSON_AddItemToObject(o, "unused_attachments", string_array(rep->unused, rep->nunused));
	cJSON_AddNumberToObject(o, "export_warnings", (double)rep->export_warnings);
	cJSON_AddNumberToObject(o, "root_jsonls", (double)rep->root_jsonls);
	cJSON_AddNumberToObject(o, "elapsed_ms", (double)rep->elapsed_ms);
	return o;
}

void archive_report_outputs(const struct archive_report *rep, cJSON *outputs)
{
	cJSON_AddNumberToObject(outputs, "size", (double)rep->size);
	cJSON_AddStringToObject(outputs, "sha256", rep->sha256);
	cJSON_AddNumberToObject(outputs, "lines", (double)rep->lines);
	cJSON_AddNumberToObject(outputs, "errors", (double)rep->error_count);
	cJSON_AddBoolToObject(outputs, "crc_ok", rep->zip_error_count == 0);
	cJSON_AddNumberToObject(outputs, "unused_attachments", (double)rep->nunused);
	cJSON_AddItemToObject(outputs, "counts", counts_json(&rep->counts));
}

int archive_report_foreach_team(const struct archive_report *rep, int (*cb)(void *ctx, const char *team),
				void *ctx)
{
	return bulk_state_foreach_team(rep->names, cb, ctx);
}

int archive_report_foreach_channel(const struct archive_report *rep,
				   int (*cb)(void *ctx, const char *team, const char *channel,
					     unsigned long posts, unsigned long replies),
				   void *ctx)
{
	return bulk_state_foreach_channel(rep->names, cb, ctx);
}

int archive_report_foreach_user(const struct archive_report *rep,
				int (*cb)(void *ctx, const char *username, int is_bot), void *ctx)
{
	return bulk_state_foreach_user(rep->names, cb, ctx);
}

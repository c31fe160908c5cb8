/*
 * zipstream: the incremental zip checker (zipstream.h). A state machine over
 * the bytes in file order: gather a header into acc, then run the entry's
 * data through CRC-32 (and inflate), then the next header. Formats follow
 * PKWARE's APPNOTE.TXT 6.3 (sections 4.3.7 local header, 4.3.9 data
 * descriptor, 4.3.12 central directory, 4.3.14-16 end records, 4.5.3 ZIP64
 * extra field); Go's archive/zip, which the Mattermost import reads with,
 * writes every file entry with a data descriptor (stored ones included), so
 * those are the common case, not an exotic one.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util.h"
#include "zipstream.h"

#define SIG_LH 0x04034b50u
#define SIG_CD 0x02014b50u
#define SIG_DD 0x08074b50u
#define SIG_EOCD 0x06054b50u
#define SIG_Z64EOCD 0x06064b50u
#define SIG_Z64LOC 0x07064b50u

#define ACC_MAX (46 + 3 * 65535) /* the largest header: central directory with name, extra, comment */
#define OUT_MAX (64 * 1024)      /* inflate's output block */
#define HOLD_MAX 24              /* the longest data descriptor: signature, CRC, two 8-byte sizes */
#define DESC_GATHER 28           /* a descriptor and the next signature, to tell its form */

enum zs_state {
	S_SIG,       /* 4 bytes: which record comes next */
	S_HDR,       /* gathering a record's fixed part, then its variable part */
	S_STORED,    /* stored data of known size */
	S_STORED_DD, /* stored data whose size only its data descriptor tells */
	S_INFLATE,   /* deflated data, of known size or not */
	S_SKIP,      /* the rest of a damaged entry's data, of known size */
	S_DESC,      /* a data descriptor */
	S_RESYNC,    /* after damage: looking for the next signature */
	S_TRAIL,     /* the tail is damaged: eat to the end */
	S_END,       /* after the end of central directory record */
};

struct cur {
	struct zs_entry e;
	char name[128];
	uint64_t csize, usize; /* declared; meaningful when known */
	uint32_t lh_crc;       /* the local header's CRC: zero or the descriptor's with a descriptor */
	int known, dd, zip64, bad;
	char why[160];
};

struct zipstream {
	enum zs_state st;
	uint32_t sig;     /* S_HDR: which record */
	uint64_t pos;     /* offset of the next byte */
	uint64_t rec_off; /* where the current record began */
	unsigned char *acc;
	size_t acc_len, want;
	int fixed_done; /* S_HDR: the fixed part is in, want now covers the variable part */

	struct cur cur;
	uint64_t remaining;
	z_stream z;
	int z_live;
	unsigned char *out;
	unsigned char hold[HOLD_MAX];
	size_t hold_len;

	struct zs_entry *ents;
	size_t n, cap;

	uint64_t cd_off, cd_entries, z64_off;
	int saw_z64, finished, is_zip, first;

	struct zs_damage dmg[ZS_MAX_DAMAGE];
	size_t ndmg;
	int overflow;
	uint64_t open_start; /* S_RESYNC / S_TRAIL: where the damage began */
	char open_entry[128], open_why[160];
	int open_tail;
	uint32_t win; /* S_RESYNC: the last 4 bytes */
	int depth;    /* refeed recursion */
};

static void zs_parse(struct zipstream *zs, const unsigned char *p, size_t n);

static uint64_t le(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* ---- damage ------------------------------------------------------------- */

static void add_damage(struct zipstream *zs, uint64_t start, uint64_t end, const char *entry, int tail,
		       const char *why)
{
	struct zs_damage *d = zs->ndmg ? &zs->dmg[zs->ndmg - 1] : NULL;

	if (end <= start)
		end = start + 1;    /* a range must name at least one byte to be re-fetched */
	if (d && start <= d->end) { /* overlapping or adjacent: one range */
		if (end > d->end)
			d->end = end;
		d->tail |= tail;
		return;
	}
	if (zs->ndmg == ZS_MAX_DAMAGE) {
		zs->overflow = 1;
		return;
	}
	d = &zs->dmg[zs->ndmg++];
	d->start = start;
	d->end = end;
	d->tail = tail;
	snprintf(d->entry, sizeof(d->entry), "%s", entry ? entry : "");
	snprintf(d->why, sizeof(d->why), "%s", why);
}

static int in_damage(const struct zipstream *zs, uint64_t off)
{
	for (size_t i = 0; i < zs->ndmg; i++)
		if (off >= zs->dmg[i].start && off < zs->dmg[i].end)
			return 1;
	return (zs->st == S_RESYNC || zs->st == S_TRAIL) && off >= zs->open_start;
}

/* Damage from start on whose end is not known yet: found at the next signature. */
static void resync(struct zipstream *zs, uint64_t start, const char *entry, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void resync(struct zipstream *zs, uint64_t start, const char *entry, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(zs->open_why, sizeof(zs->open_why), fmt, ap);
	va_end(ap);
	snprintf(zs->open_entry, sizeof(zs->open_entry), "%s", entry ? entry : "");
	zs->open_start = start;
	zs->open_tail = 0;
	zs->win = 0;
	/* Inside the central directory nothing after it can be trusted: the tail goes whole. */
	zs->st = zs->cd_off != UINT64_MAX ? S_TRAIL : S_RESYNC;
	if (zs->st == S_TRAIL) {
		zs->open_start = zs->cd_off < start ? zs->cd_off : start;
		zs->open_tail = 1;
	}
}

static void tail_damage(struct zipstream *zs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tail_damage(struct zipstream *zs, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(zs->open_why, sizeof(zs->open_why), fmt, ap);
	va_end(ap);
	zs->open_entry[0] = '\0';
	zs->open_start = zs->cd_off != UINT64_MAX ? zs->cd_off : zs->rec_off;
	zs->open_tail = 1;
	zs->st = S_TRAIL;
}

/* ---- entries ------------------------------------------------------------ */

static void entry_done(struct zipstream *zs)
{
	struct cur *c = &zs->cur;

	c->e.end = zs->pos;
	/* With a descriptor the header's CRC and sizes are zero, or the same values. */
	if (c->dd && !c->bad &&
	    ((c->lh_crc && c->lh_crc != c->e.crc) ||
	     (c->csize && c->csize != 0xffffffffu && c->csize != c->e.csize) ||
	     (c->usize && c->usize != 0xffffffffu && c->usize != c->e.usize))) {
		c->bad = 1;
		snprintf(c->why, sizeof(c->why),
			 "its local header's CRC or sizes differ from its data descriptor");
	}
	if (!c->bad && c->e.crc_actual != c->e.crc) {
		c->bad = 1;
		snprintf(c->why, sizeof(c->why), "CRC-32 mismatch: computed %08x, declared %08x",
			 c->e.crc_actual, c->e.crc);
	}
	if (!c->bad && c->known && (c->e.csize != c->csize || c->e.usize != c->usize)) {
		c->bad = 1;
		snprintf(c->why, sizeof(c->why), "sizes %llu/%llu declared, %llu/%llu found",
			 (unsigned long long)c->csize, (unsigned long long)c->usize,
			 (unsigned long long)c->e.csize, (unsigned long long)c->e.usize);
	}
	c->e.crc_ok = !c->bad;
	if (c->bad)
		add_damage(zs, c->e.lh_off, c->e.end, c->name, 0, c->why);
	if (zs->n == zs->cap) {
		zs->cap = zs->cap ? zs->cap * 2 : 64;
		zs->ents = xrealloc(zs->ents, zs->cap * sizeof(*zs->ents));
	}
	zs->ents[zs->n++] = c->e;
	zs->st = S_SIG;
	zs->want = 4;
	zs->acc_len = 0;
	zs->rec_off = zs->pos;
}

/* The data ended (or its descriptor was read): a descriptor next, or the entry is done. */
static void data_done(struct zipstream *zs)
{
	if (zs->cur.dd && zs->st != S_STORED_DD) {
		zs->st = S_DESC;
		zs->acc_len = 0;
		zs->want = DESC_GATHER;
		return;
	}
	entry_done(zs);
}

static void bad_entry(struct zipstream *zs, const char *why)
{
	if (!zs->cur.bad) {
		zs->cur.bad = 1;
		snprintf(zs->cur.why, sizeof(zs->cur.why), "%s", why);
	}
}

/* ZIP64 extended information (tag 1): the fields whose 32-bit value is all ones, in order. */
static void zip64_extra(const unsigned char *x, size_t n, uint64_t *usize, uint64_t *csize, uint64_t *off,
			int *found)
{
	for (size_t i = 0; i + 4 <= n;) {
		size_t tag = le(x + i, 2), len = le(x + i + 2, 2), k = i + 4;

		if (i + 4 + len > n)
			return;
		if (tag == 1) {
			*found = 1;
			if (usize && *usize == 0xffffffffu && k + 8 <= i + 4 + len)
				*usize = le(x + k, 8), k += 8;
			if (csize && *csize == 0xffffffffu && k + 8 <= i + 4 + len)
				*csize = le(x + k, 8), k += 8;
			if (off && *off == 0xffffffffu && k + 8 <= i + 4 + len)
				*off = le(x + k, 8);
			return;
		}
		i += 4 + len;
	}
}

static void start_data(struct zipstream *zs)
{
	struct cur *c = &zs->cur;

	zs->remaining = c->csize;
	if (c->e.method == 8) {
		memset(&zs->z, 0, sizeof(zs->z));
		if (inflateInit2(&zs->z, -MAX_WBITS) != Z_OK) {
			bad_entry(zs, "cannot start inflate (out of memory)");
			zs->st = c->known ? S_SKIP : S_TRAIL;
			return;
		}
		zs->z_live = 1;
		zs->st = S_INFLATE;
	} else if (c->e.method == 0) {
		zs->st = c->known ? S_STORED : S_STORED_DD;
		zs->hold_len = 0;
	} else {
		char why[96];

		snprintf(why, sizeof(why),
			 "compression method %u: the import reads only stored and deflated entries",
			 c->e.method);
		bad_entry(zs, why);
		if (c->known)
			zs->st = S_SKIP;
		else
			resync(zs, c->e.lh_off, c->name, "%s", why);
	}
}

static void local_header(struct zipstream *zs)
{
	const unsigned char *h = zs->acc;
	struct cur *c = &zs->cur;
	size_t nlen = le(h + 26, 2), xlen = le(h + 28, 2);
	int found = 0;

	memset(c, 0, sizeof(*c));
	c->e.lh_off = zs->rec_off;
	c->e.version = (uint16_t)le(h + 4, 2);
	c->e.flags = (uint16_t)le(h + 6, 2);
	c->e.method = (uint16_t)le(h + 8, 2);
	c->e.dostime = (uint32_t)le(h + 10, 4);
	c->e.crc = c->lh_crc = (uint32_t)le(h + 14, 4);
	c->csize = le(h + 18, 4);
	c->usize = le(h + 22, 4);
	c->e.name_crc = (uint32_t)crc32(0, h + 30, (uInt)nlen);
	snprintf(c->name, sizeof(c->name), "%.*s", (int)(nlen < 127 ? nlen : 127), (const char *)h + 30);
	zip64_extra(h + 30 + nlen, xlen, &c->usize, &c->csize, NULL, &found);
	c->zip64 = found;
	if ((c->csize == 0xffffffffu || c->usize == 0xffffffffu) && !found) {
		/* ZIP64 sizes without the extra field that holds them */
		bad_entry(zs, "its local header announces ZIP64 sizes but has no ZIP64 extra field");
		if (!(c->e.flags & 8)) {
			zs->acc_len = 0;
			resync(zs, c->e.lh_off, c->name, "'%s' has ZIP64 sizes without a ZIP64 extra field",
			       c->name);
			return;
		}
	}
	c->dd = (c->e.flags & 8) != 0;
	/* With a descriptor the header's sizes are zero: inflate finds the end, or the descriptor does. */
	c->known = !c->dd || (c->e.method == 0 && c->csize != 0);
	zs->acc_len = 0;
	if (c->e.flags & 1) {
		bad_entry(zs, "encrypted entry: the import cannot read it");
		if (c->known) {
			zs->remaining = c->csize;
			zs->st = S_SKIP;
		} else
			resync(zs, c->e.lh_off, c->name, "encrypted entry of unknown size");
		return;
	}
	start_data(zs);
}

/* ---- the central directory ---------------------------------------------- */

static struct zs_entry *entry_at(struct zipstream *zs, uint64_t off)
{
	size_t lo = 0, hi = zs->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (zs->ents[mid].lh_off == off)
			return &zs->ents[mid];
		if (zs->ents[mid].lh_off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static void central_header(struct zipstream *zs)
{
	const unsigned char *h = zs->acc;
	size_t nlen = le(h + 28, 2), xlen = le(h + 30, 2);
	uint64_t csize = le(h + 20, 4), usize = le(h + 24, 4), off = le(h + 42, 4);
	uint32_t crc = (uint32_t)le(h + 16, 4), name_crc = (uint32_t)crc32(0, h + 46, (uInt)nlen);
	struct zs_entry *e;
	int found = 0;
	char name[128];

	snprintf(name, sizeof(name), "%.*s", (int)(nlen < 127 ? nlen : 127), (const char *)h + 46);
	zip64_extra(h + 46 + nlen, xlen, &usize, &csize, &off, &found);
	zs->cd_entries++;
	zs->acc_len = 0;
	zs->st = S_SIG;
	zs->want = 4;
	if (!(e = entry_at(zs, off))) {
		if (!in_damage(zs, off))
			tail_damage(zs, "the central directory lists '%s' at byte %llu, where no entry starts",
				    name, (unsigned long long)off);
		return;
	}
	if (e->in_cd++) {
		tail_damage(zs, "the central directory lists the entry at byte %llu twice",
			    (unsigned long long)off);
		return;
	}
	if (!e->crc_ok)
		return; /* the entry itself is the damage */
	if (e->name_crc != name_crc || e->crc != crc || e->csize != csize || e->usize != usize ||
	    e->method != le(h + 10, 2) || e->flags != le(h + 8, 2) || e->dostime != le(h + 12, 4)) {
		/* Either side may be the damaged one: both are fetched again. */
		add_damage(zs, e->lh_off, e->end, name, 0,
			   "its local header disagrees with the central directory");
		tail_damage(zs,
			    "the central directory disagrees with the local header of '%s' (name, CRC, "
			    "sizes, method, flags or time)",
			    name);
	}
}

static void check_all_listed(struct zipstream *zs)
{
	for (size_t i = 0; i < zs->n; i++)
		if (!zs->ents[i].in_cd && zs->ents[i].crc_ok) {
			tail_damage(zs, "the central directory does not list the entry at byte %llu",
				    (unsigned long long)zs->ents[i].lh_off);
			return;
		}
}

static void zip64_end(struct zipstream *zs)
{
	const unsigned char *h = zs->acc;

	zs->saw_z64 = 1;
	zs->z64_off = zs->rec_off;
	zs->acc_len = 0;
	zs->st = S_SIG;
	zs->want = 4;
	if (le(h + 32, 8) != zs->cd_entries ||
	    le(h + 48, 8) != (zs->cd_off == UINT64_MAX ? zs->rec_off : zs->cd_off) ||
	    le(h + 40, 8) != zs->rec_off - (zs->cd_off == UINT64_MAX ? zs->rec_off : zs->cd_off))
		tail_damage(zs, "the ZIP64 end record disagrees with the central directory");
}

static void zip64_locator(struct zipstream *zs)
{
	zs->acc_len = 0;
	zs->st = S_SIG;
	zs->want = 4;
	if (!zs->saw_z64 || le(zs->acc + 8, 8) != zs->z64_off)
		tail_damage(zs, "the ZIP64 end locator points to byte %llu, not to the ZIP64 end record",
			    (unsigned long long)le(zs->acc + 8, 8));
}

static void end_record(struct zipstream *zs)
{
	const unsigned char *h = zs->acc;
	uint64_t count = le(h + 10, 2), size = le(h + 12, 4), off = le(h + 16, 4);
	uint64_t cd = zs->cd_off == UINT64_MAX ? zs->rec_off : zs->cd_off;
	uint64_t cd_end = zs->saw_z64 ? zs->z64_off : zs->rec_off;

	zs->acc_len = 0;
	zs->st = S_END;
	if ((count != 0xffff || !zs->saw_z64) && count != zs->cd_entries % 0x10000)
		tail_damage(zs, "the end record counts %llu entries, the central directory holds %llu",
			    (unsigned long long)count, (unsigned long long)zs->cd_entries);
	else if ((off != 0xffffffffu || !zs->saw_z64) && off != cd)
		tail_damage(zs, "the end record puts the central directory at byte %llu, it starts at %llu",
			    (unsigned long long)off, (unsigned long long)cd);
	else if ((size != 0xffffffffu || !zs->saw_z64) && size != cd_end - cd)
		tail_damage(zs, "the end record gives the central directory %llu bytes, it has %llu",
			    (unsigned long long)size, (unsigned long long)(cd_end - cd));
	else
		check_all_listed(zs);
}

/* ---- headers -------------------------------------------------------------- */

/* The signature in acc: which record, and how long its fixed part is. */
static void on_signature(struct zipstream *zs)
{
	uint32_t sig = (uint32_t)le(zs->acc, 4);
	size_t fixed = 0;

	switch (sig) {
	case SIG_LH:
		fixed = zs->cd_off == UINT64_MAX ? 30 : 0; /* no entry after the central directory */
		break;
	case SIG_CD:
		if (zs->cd_off == UINT64_MAX)
			zs->cd_off = zs->rec_off;
		fixed = 46;
		break;
	case SIG_Z64EOCD: fixed = 56; break;
	case SIG_Z64LOC: fixed = 20; break;
	case SIG_EOCD: fixed = 22; break;
	}
	if (zs->first) {
		zs->first = 0;
		zs->is_zip = sig == SIG_LH || sig == SIG_EOCD;
	}
	if (!fixed) {
		uint64_t start = zs->n && !zs->ents[zs->n - 1].crc_ok ? zs->ents[zs->n - 1].lh_off
								      : zs->rec_off;

		resync(zs, start, NULL, "no zip record at byte %llu (signature %08x)",
		       (unsigned long long)zs->rec_off, sig);
		return;
	}
	zs->sig = sig;
	zs->st = S_HDR;
	zs->want = fixed;
	zs->fixed_done = 0;
}

/* The fixed part is in: how long the whole record is. */
static size_t record_length(struct zipstream *zs)
{
	const unsigned char *h = zs->acc;

	switch (zs->sig) {
	case SIG_LH: return 30 + le(h + 26, 2) + le(h + 28, 2);
	case SIG_CD: return 46 + le(h + 28, 2) + le(h + 30, 2) + le(h + 32, 2);
	case SIG_Z64EOCD: {
		uint64_t n = le(h + 4, 8);

		return n < 44 || n > ACC_MAX - 12 ? 0 : (size_t)(12 + n);
	}
	case SIG_EOCD: return 22 + le(h + 20, 2);
	default: return 20;
	}
}

static void header_complete(struct zipstream *zs)
{
	if (!zs->fixed_done) {
		size_t len = record_length(zs);

		zs->fixed_done = 1;
		if (!len) {
			resync(zs, zs->rec_off, NULL, "a ZIP64 end record of impossible length at byte %llu",
			       (unsigned long long)zs->rec_off);
			return;
		}
		if (len > zs->want) {
			zs->want = len;
			return;
		}
	}
	switch (zs->sig) {
	case SIG_LH: local_header(zs); break;
	case SIG_CD: central_header(zs); break;
	case SIG_Z64EOCD: zip64_end(zs); break;
	case SIG_Z64LOC: zip64_locator(zs); break;
	case SIG_EOCD: end_record(zs); break;
	}
}

/* ---- data ------------------------------------------------------------------ */

static int sig_at(const unsigned char *p, size_t avail, size_t at)
{
	return at + 4 <= avail && (le(p + at, 4) == SIG_LH || le(p + at, 4) == SIG_CD);
}

/* The data descriptor in acc (acc_len bytes gathered, or fewer at the end of the file). */
static void descriptor(struct zipstream *zs)
{
	struct cur *c = &zs->cur;
	const unsigned char *p = zs->acc;
	size_t n = zs->acc_len, s = n >= 4 && le(p, 4) == SIG_DD ? 4 : 0, len = 0;
	int f4 = n >= s + 12 && le(p + s + 4, 4) == (c->e.csize & 0xffffffffu) &&
		 le(p + s + 8, 4) == (c->e.usize & 0xffffffffu) && sig_at(p, n, s + 12);
	int f8 = n >= s + 20 && le(p + s + 4, 8) == c->e.csize && le(p + s + 12, 8) == c->e.usize &&
		 sig_at(p, n, s + 20);

	if (f8 && (c->zip64 || !f4 || c->e.csize >= 0xffffffffu || c->e.usize >= 0xffffffffu))
		len = s + 20;
	else if (f4)
		len = s + 12;
	if (!len) {
		bad_entry(zs, "its data descriptor does not match its data");
		len = s + 12 <= n ? s + 12 : n;
	}
	c->e.crc = (uint32_t)le(p + s, 4);
	zs->acc_len = 0;
	zs->pos -= n - len; /* the lookahead belongs to the next record */
	entry_done(zs);
	if (n > len) {
		unsigned char rest[DESC_GATHER];

		memcpy(rest, p + len, n - len);
		zs->depth++;
		zs_parse(zs, rest, n - len);
		zs->depth--;
	}
}

/*
 * A stored entry with a data descriptor has no size up front: it ends where
 * a descriptor signature is followed by sizes equal to the bytes seen so far.
 * b holds avail bytes from a candidate position; count is the data length if
 * the descriptor starts there. Returns the descriptor's length, 0 when it is
 * not one, -1 when more bytes are needed to tell.
 */
static int stored_desc_at(const unsigned char *b, size_t avail, uint64_t count, int at_end)
{
	static const unsigned char sig[4] = { 'P', 'K', 7, 8 };
	size_t k = avail < 4 ? avail : 4;

	if (memcmp(b, sig, k))
		return 0;
	if (avail < HOLD_MAX && !at_end)
		return -1;
	if (avail >= 24 && le(b + 8, 8) == count && le(b + 16, 8) == count &&
	    (count || !(avail >= 18 && b[16] == 'P' && b[17] == 'K')))
		return 24;
	if (avail >= 16 && count < 0xffffffffu && le(b + 8, 4) == count && le(b + 12, 4) == count)
		return 16;
	return 0;
}

static void stored_dd_found(struct zipstream *zs, const unsigned char *desc)
{
	zs->cur.e.crc = (uint32_t)le(desc + 4, 4);
	zs->cur.e.usize = zs->cur.e.csize;
	zs->hold_len = 0;
	entry_done(zs);
}

static void crc_add(struct zipstream *zs, const unsigned char *p, size_t n)
{
	zs->cur.e.crc_actual = (uint32_t)crc32(zs->cur.e.crc_actual, p, (uInt)n);
	zs->cur.e.csize += n;
}

/* S_STORED_DD: returns the bytes of p consumed. */
static size_t stored_dd(struct zipstream *zs, const unsigned char *p, size_t n)
{
	size_t i, from = 0;

	if (zs->hold_len) {
		/* candidates that start in the bytes held back from the last block */
		unsigned char tmp[2 * HOLD_MAX];
		size_t h = zs->hold_len, m = n < HOLD_MAX ? n : HOLD_MAX, t = h + m;

		memcpy(tmp, zs->hold, h);
		memcpy(tmp + h, p, m);
		for (i = 0; i < h; i++) {
			int r = stored_desc_at(tmp + i, t - i, zs->cur.e.csize + i, 0);

			if (r < 0) { /* too few bytes yet: keep them all back */
				crc_add(zs, tmp, i);
				memmove(zs->hold, tmp + i, t - i);
				zs->hold_len = t - i;
				zs->pos += m;
				return m;
			}
			if (r > 0) {
				size_t end = i + (size_t)r;

				crc_add(zs, tmp, i);
				if (end >= h)
					zs->pos += end - h;
				else
					zs->pos -= h - end; /* held bytes past the descriptor: fed again below */
				stored_dd_found(zs, tmp + i);
				if (end < h) {
					zs->depth++;
					zs_parse(zs, tmp + end, h - end);
					zs->depth--;
				}
				return end > h ? end - h : 0;
			}
		}
		crc_add(zs, tmp, h);
		zs->hold_len = 0;
	}
	for (i = 0; i + HOLD_MAX <= n;) {
		const unsigned char *q = memchr(p + i, 'P', n - HOLD_MAX + 1 - i);
		int r;

		if (!q)
			break;
		i = (size_t)(q - p);
		r = stored_desc_at(q, n - i, zs->cur.e.csize + (i - from), 0);
		if (r > 0) {
			crc_add(zs, p + from, i - from);
			zs->pos += i + r;
			stored_dd_found(zs, q);
			return i + r;
		}
		i++;
	}
	i = n > HOLD_MAX - 1 ? n - (HOLD_MAX - 1) : 0;
	crc_add(zs, p, i);
	memcpy(zs->hold, p + i, n - i);
	zs->hold_len = n - i;
	zs->pos += n;
	return n;
}

static void end_inflate(struct zipstream *zs)
{
	if (zs->z_live)
		inflateEnd(&zs->z);
	zs->z_live = 0;
}

/* S_INFLATE: returns the bytes of p consumed. */
static size_t inflate_some(struct zipstream *zs, const unsigned char *p, size_t n)
{
	struct cur *c = &zs->cur;
	size_t take = c->known && zs->remaining < n ? (size_t)zs->remaining : n, used;
	int rc = Z_OK;

	zs->z.next_in = (unsigned char *)p;
	zs->z.avail_in = (uInt)take;
	while (zs->z.avail_in && rc == Z_OK) {
		zs->z.next_out = zs->out;
		zs->z.avail_out = OUT_MAX;
		rc = inflate(&zs->z, Z_NO_FLUSH);
		c->e.crc_actual = (uint32_t)crc32(c->e.crc_actual, zs->out, (uInt)(OUT_MAX - zs->z.avail_out));
		c->e.usize += OUT_MAX - zs->z.avail_out;
		if (rc == Z_BUF_ERROR)
			rc = Z_OK; /* output full or input used up: go on */
	}
	used = take - zs->z.avail_in;
	c->e.csize += used;
	zs->remaining -= c->known ? used : 0;
	zs->pos += used;
	if (rc == Z_STREAM_END) {
		end_inflate(zs);
		if (c->known && zs->remaining) {
			bad_entry(zs, "its deflate stream ends before its declared compressed size");
			zs->st = S_SKIP;
			return used;
		}
		data_done(zs);
	} else if (rc != Z_OK) {
		end_inflate(zs);
		bad_entry(zs, "its deflated data are damaged (inflate failed)");
		if (c->known)
			zs->st = S_SKIP;
		else
			resync(zs, c->e.lh_off, c->name, "deflated data of '%s' are damaged", c->name);
	} else if (c->known && !zs->remaining) {
		end_inflate(zs);
		bad_entry(zs, "its deflate stream runs past its declared compressed size");
		data_done(zs);
	}
	return used;
}

/* ---- the loop ----------------------------------------------------------------- */

static size_t gather(struct zipstream *zs, const unsigned char *p, size_t n)
{
	size_t k = zs->want - zs->acc_len;

	if (k > n)
		k = n;
	memcpy(zs->acc + zs->acc_len, p, k);
	zs->acc_len += k;
	zs->pos += k;
	return k;
}

static size_t resync_scan(struct zipstream *zs, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		zs->win = zs->win >> 8 | (uint32_t)p[i] << 24;
		if (zs->win == SIG_LH || zs->win == SIG_CD || zs->win == SIG_EOCD || zs->win == SIG_Z64EOCD) {
			uint64_t at = zs->pos + i + 1 - 4;

			add_damage(zs, zs->open_start, at, zs->open_entry, 0, zs->open_why);
			zs->pos += i + 1;
			zs->rec_off = at;
			zs->acc[0] = (unsigned char)zs->win;
			zs->acc[1] = (unsigned char)(zs->win >> 8);
			zs->acc[2] = (unsigned char)(zs->win >> 16);
			zs->acc[3] = (unsigned char)(zs->win >> 24);
			zs->acc_len = 4;
			on_signature(zs);
			return i + 1;
		}
	}
	zs->pos += n;
	return n;
}

static void zs_parse(struct zipstream *zs, const unsigned char *p, size_t n)
{
	while (n) {
		size_t k = 0;

		switch (zs->st) {
		case S_SIG:
			if (!zs->acc_len)
				zs->rec_off = zs->pos;
			zs->want = 4;
			k = gather(zs, p, n);
			if (zs->acc_len == 4)
				on_signature(zs);
			break;
		case S_HDR:
			k = gather(zs, p, n);
			if (zs->acc_len == zs->want)
				header_complete(zs);
			break;
		case S_STORED:
			k = zs->remaining < n ? (size_t)zs->remaining : n;
			crc_add(zs, p, k);
			zs->cur.e.usize += k;
			zs->remaining -= k;
			zs->pos += k;
			break;
		case S_SKIP:
			k = zs->remaining < n ? (size_t)zs->remaining : n;
			zs->cur.e.csize += k;
			zs->remaining -= k;
			zs->pos += k;
			break;
		case S_STORED_DD: k = stored_dd(zs, p, n); break;
		case S_INFLATE: k = inflate_some(zs, p, n); break;
		case S_DESC:
			k = gather(zs, p, n);
			if (zs->acc_len == zs->want)
				descriptor(zs);
			break;
		case S_RESYNC: k = resync_scan(zs, p, n); break;
		case S_TRAIL:
			k = n;
			zs->pos += n;
			break;
		case S_END:
			k = n;
			tail_damage(zs, "bytes follow the end of central directory record at byte %llu",
				    (unsigned long long)zs->pos);
			zs->pos += n;
			break;
		}
		p += k;
		n -= k;
		/* zero-length data finishes without another byte */
		if ((zs->st == S_STORED || zs->st == S_SKIP) && !zs->remaining)
			data_done(zs);
	}
	if ((zs->st == S_STORED || zs->st == S_SKIP) && !zs->remaining)
		data_done(zs);
}

/* ---- the API ---------------------------------------------------------------- */

struct zipstream *zs_new(void)
{
	struct zipstream *zs = xcalloc(1, sizeof(*zs));

	zs->acc = xmalloc(ACC_MAX);
	zs->out = xmalloc(OUT_MAX);
	zs_reset(zs);
	return zs;
}

void zs_reset(struct zipstream *zs)
{
	unsigned char *acc = zs->acc, *out = zs->out;
	struct zs_entry *ents = zs->ents;
	size_t cap = zs->cap;

	end_inflate(zs);
	memset(zs, 0, sizeof(*zs));
	zs->acc = acc;
	zs->out = out;
	zs->ents = ents;
	zs->cap = cap;
	zs->st = S_SIG;
	zs->want = 4;
	zs->cd_off = UINT64_MAX;
	zs->first = 1;
}

void zs_free(struct zipstream *zs)
{
	if (!zs)
		return;
	end_inflate(zs);
	free(zs->acc);
	free(zs->out);
	free(zs->ents);
	free(zs);
}

void zs_feed(struct zipstream *zs, const void *p, size_t n)
{
	if (!zs->finished)
		zs_parse(zs, p, n);
}

void zs_finish(struct zipstream *zs)
{
	struct cur *c = &zs->cur;

	if (zs->finished)
		return;
	if (zs->st == S_STORED_DD && zs->hold_len) {
		/* a descriptor right at the end: only a file cut after it ends so */
		for (size_t i = 0; i < zs->hold_len; i++)
			if (stored_desc_at(zs->hold + i, zs->hold_len - i, c->e.csize + i, 1) > 0) {
				crc_add(zs, zs->hold, i);
				stored_dd_found(zs, zs->hold + i);
				break;
			}
	}
	if (zs->st == S_DESC && zs->acc_len >= 12)
		descriptor(zs);
	switch (zs->st) {
	case S_END: break;
	case S_RESYNC:
		add_damage(zs, zs->open_start, zs->pos, zs->open_entry, 0, zs->open_why);
		if (zs->cd_off == UINT64_MAX)
			add_damage(zs, zs->pos ? zs->pos - 1 : 0, zs->pos, NULL, 1,
				   "no end of central directory record");
		break;
	case S_TRAIL:
		add_damage(zs, zs->open_start, zs->pos, zs->open_entry, zs->open_tail, zs->open_why);
		break;
	case S_SIG:
	case S_HDR:
		if (zs->cd_off != UINT64_MAX)
			add_damage(zs, zs->cd_off, zs->pos, NULL, 1,
				   "the file ends inside its central directory");
		else
			add_damage(zs, zs->rec_off, zs->pos, NULL, 1,
				   "the file ends before its central directory (truncated)");
		break;
	default: {
		char why[200];

		snprintf(why, sizeof(why), "the file ends inside the data of '%s' (truncated)", c->name);
		add_damage(zs, c->e.lh_off, zs->pos, c->name, 1, why);
		break;
	}
	}
	end_inflate(zs);
	zs->finished = 1;
}

int zs_ok(const struct zipstream *zs)
{
	return zs->finished && !zs->ndmg && !zs->overflow;
}

uint64_t zs_offset(const struct zipstream *zs)
{
	return zs->pos;
}

const struct zs_entry *zs_entries(const struct zipstream *zs, size_t *n)
{
	*n = zs->n;
	return zs->ents;
}

const struct zs_damage *zs_damage(const struct zipstream *zs, size_t *n)
{
	*n = zs->ndmg;
	return zs->dmg;
}

int zs_damage_overflow(const struct zipstream *zs)
{
	return zs->overflow;
}

uint64_t zs_cd_offset(const struct zipstream *zs)
{
	return zs->cd_off;
}

int zs_is_zip(const struct zipstream *zs)
{
	return zs->is_zip;
}

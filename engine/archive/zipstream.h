/*
 * zipstream: checks a zip archive while its bytes go by, in order, without
 * ever seeing the whole file (a push parser, like zlib's inflate). The one
 * definition of a "whole" zip: the download step feeds it as bytes arrive,
 * `mmigrate verify` and the verify step feed it from the file.
 *
 *   struct zipstream *zs = zs_new();
 *   zs_feed(zs, p, n); ...                  bytes [0, size) in order, any block sizes
 *   zs_finish(zs);                          the end of the file
 *   zs_ok(zs)                               1: every check passed
 *   zs_entries(zs, &n) / zs_damage(zs, &n)  what was found
 *   zs_reset(zs);  or  zs_free(zs);
 *
 * Checked: every local header, every entry's CRC-32 (stored entries
 * directly, deflated ones through zlib's inflate), the sizes the headers
 * and data descriptors declare against the bytes seen, ZIP64 extra fields
 * and end records, and at the end the central directory against the local
 * headers (offset, name, CRC, sizes, method, flags, time) and the end
 * record against the central directory.
 *
 * A problem is a damaged byte range [start, end) of the file plus a reason:
 *   - an entry whose CRC or sizes do not match: [local header, end of its data);
 *   - a header that does not parse: from the last record that began well to
 *     the next signature found (the parser then goes on from there);
 *   - a central directory that disagrees with the local headers, or an end
 *     record that disagrees with it: [start of the central directory, end of file).
 * Re-fetching those bytes and feeding the file again is how the download heals.
 * Bytes only the central directory carries (external attributes, comments)
 * have no checksum anywhere: nothing can tell them damaged.
 *
 * Memory: a fixed ~200 KiB (one header with its name and extra, inflate's
 * window and output) plus 56 bytes per entry (the table the central
 * directory is compared with). Not thread-safe: one feeder at a time.
 */
#ifndef MM_ZIPSTREAM_H
#define MM_ZIPSTREAM_H

#include <stddef.h>
#include <stdint.h>

/* One entry, in local-header (file) order. */
struct zs_entry {
	uint64_t lh_off;       /* its local header */
	uint64_t end;          /* end of its data and data descriptor */
	uint64_t csize, usize; /* as counted */
	uint32_t crc;          /* as declared (local header or data descriptor) */
	uint32_t crc_actual;   /* as computed */
	uint32_t name_crc;     /* CRC-32 of the name: compared with the central directory */
	uint32_t dostime;
	uint16_t version, flags, method; /* version needed to extract */
	uint8_t crc_ok;                  /* data CRC and sizes agree with what was declared */
	uint8_t in_cd;                   /* the central directory listed it */
};

/* A damaged byte range and why; entry is the name involved, "" when none. */
struct zs_damage {
	uint64_t start, end;
	char entry[128];
	char why[160];
	int tail; /* the central directory / end records */
};

#define ZS_MAX_DAMAGE 64 /* past this many ranges the file is not worth healing */

struct zipstream;

struct zipstream *zs_new(void);
void zs_free(struct zipstream *);
/* Forgets everything: the next byte fed is byte 0 of a file. */
void zs_reset(struct zipstream *);
/* Feeds the next n bytes of the file. Never fails: problems are recorded. */
void zs_feed(struct zipstream *, const void *p, size_t n);
/* The file ends here: an unfinished record is damage up to the end. */
void zs_finish(struct zipstream *);

/* 1 when finished and nothing is damaged. */
int zs_ok(const struct zipstream *);
/* Bytes fed so far. */
uint64_t zs_offset(const struct zipstream *);
const struct zs_entry *zs_entries(const struct zipstream *, size_t *n);
const struct zs_damage *zs_damage(const struct zipstream *, size_t *n);
/* More damage than ZS_MAX_DAMAGE ranges was found (the rest is not listed). */
int zs_damage_overflow(const struct zipstream *);
/* Where the central directory starts, or UINT64_MAX before it was seen. */
uint64_t zs_cd_offset(const struct zipstream *);
/* Whether the first bytes looked like a zip at all (a local header or an empty zip's end record). */
int zs_is_zip(const struct zipstream *);

#endif

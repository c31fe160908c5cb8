/*
 * zipstream over the archives tests/archive/mkarchive.py writes: stored and
 * deflated entries, data descriptors, ZIP64, truncated, corrupt CRC, a lying
 * central directory; each fed in random block sizes. Then every single-byte
 * flip of two valid archives: each is either reported as a damaged range
 * that covers the byte (and copying the clean bytes over that range makes
 * the file whole again: what the download's heal does), or lies in bytes
 * only the central directory carries, which nothing can check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "zipstream.h"

static char dir[] = "/tmp/mm-zipstream-test-XXXXXX";
static char generator[1024];

static void find_generator(void)
{
	const char *slash = strrchr(__FILE__, '/');
	struct stat st;

	if (slash && __FILE__[0] == '/') {
		snprintf(generator, sizeof(generator), "%.*s/../archive/mkarchive.py",
			 (int)(slash - __FILE__), __FILE__);
		if (stat(generator, &st) == 0)
			return;
	}
	snprintf(generator, sizeof(generator), "../archive/mkarchive.py");
}

static unsigned char *load(const char *name, size_t *n)
{
	char path[1200];
	FILE *f;
	unsigned char *p;
	long len;

	snprintf(path, sizeof(path), "%s/%s.zip", dir, name);
	if (!(f = fopen(path, "rb")))
		return NULL;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	p = malloc((size_t)len + 1);
	*n = fread(p, 1, (size_t)len, f);
	fclose(f);
	return p;
}

static unsigned rnd_state = 12345;

static size_t rnd(size_t max)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return (rnd_state >> 8) % max + 1;
}

/* Feeds data in blocks of random size (1..maxblk) and finishes. */
static void feed_all(struct zipstream *zs, const unsigned char *p, size_t n, size_t maxblk)
{
	zs_reset(zs);
	for (size_t i = 0; i < n;) {
		size_t k = maxblk ? rnd(maxblk) : n;

		if (k > n - i)
			k = n - i;
		zs_feed(zs, p + i, k);
		i += k;
	}
	zs_finish(zs);
}

/* The same verdict whatever the block sizes. */
static int verdict(struct zipstream *zs, const unsigned char *p, size_t n, size_t *entries)
{
	static const size_t blocks[] = { 0, 1, 3, 7, 29, 64, 4096 };
	int ok = -1;

	for (size_t b = 0; b < sizeof(blocks) / sizeof(blocks[0]); b++) {
		feed_all(zs, p, n, blocks[b]);
		if (ok >= 0 && zs_ok(zs) != ok) {
			fprintf(stderr, "block size %zu changes the verdict\n", blocks[b]);
			CHECK(0);
		}
		ok = zs_ok(zs);
		zs_entries(zs, entries);
		CHECK(zs_offset(zs) == n);
	}
	return ok;
}

static void test_valid(struct zipstream *zs, const char *name, size_t want_entries)
{
	size_t n, entries;
	unsigned char *p = load(name, &n);

	CHECK(p != NULL);
	if (!p)
		return;
	if (!verdict(zs, p, n, &entries)) {
		size_t nd;
		const struct zs_damage *d = zs_damage(zs, &nd);

		fprintf(stderr, "%s: %s\n", name, nd ? d[0].why : "not finished");
		CHECK(0);
	}
	CHECK(entries == want_entries);
	CHECK(zs_is_zip(zs));
	free(p);
}

/*
 * A damaged case: the first verdict names entry (or a range reaching the end
 * of the file when entry is NULL) with why; copying the clean bytes over the
 * ranges reported, at most three rounds, makes the file whole (the heal).
 */
static void test_damaged(struct zipstream *zs, const char *name, const char *clean, const char *entry,
			 const char *why)
{
	size_t n, cn, nd, entries, i;
	unsigned char *p = load(name, &n), *c = load(clean, &cn);
	const struct zs_damage *d;
	int round;

	CHECK(p && c);
	if (!p || !c)
		goto out;
	CHECK(!verdict(zs, p, n, &entries));
	d = zs_damage(zs, &nd);
	CHECK(nd >= 1);
	for (i = 0; i < nd; i++)
		if (entry ? !strcmp(d[i].entry, entry) : d[i].end == n)
			break;
	CHECK(i < nd);
	if (i == nd)
		goto out;
	CHECK_CONTAINS(d[i].why, why);
	if (n != cn)
		goto out;
	for (round = 0; round < 3 && !zs_ok(zs); round++) {
		d = zs_damage(zs, &nd);
		for (i = 0; i < nd; i++)
			memcpy(p + d[i].start, c + d[i].start, d[i].end - d[i].start);
		feed_all(zs, p, n, 100);
	}
	CHECK(zs_ok(zs));
	CHECK(!memcmp(p, c, n));
out:
	free(p);
	free(c);
}

/*
 * Flips no reader can notice: the version-needed field of a local header
 * (the central directory's is the one used; writers differ between the two)
 * and the padding bits after a deflate stream's last block.
 */
static int unnoticeable(const struct zs_entry *e, size_t ne, size_t at)
{
	for (size_t i = 0; i < ne; i++) {
		if (at == e[i].lh_off + 4 || at == e[i].lh_off + 5)
			return 1;
		if (e[i].method == 8 && at < e[i].end && at + 25 >= e[i].end)
			return 1;
	}
	return 0;
}

/* Every byte of a valid archive flipped in turn. */
static void test_every_flip(struct zipstream *zs, const char *name)
{
	size_t n, undetected = 0, bad = 0;
	unsigned char *clean = load(name, &n), *p;

	CHECK(clean != NULL);
	if (!clean)
		return;
	struct zs_entry ents[16];
	size_t ne;
	const struct zs_entry *e;

	p = malloc(n);
	feed_all(zs, clean, n, 0);
	CHECK(zs_ok(zs));
	e = zs_entries(zs, &ne);
	ne = ne < 16 ? ne : 16;
	memcpy(ents, e, ne * sizeof(*e));
	for (size_t i = 0; i < n; i++) {
		size_t nd, j;
		const struct zs_damage *d;
		uint64_t cd;

		memcpy(p, clean, n);
		p[i] ^= 0x04;
		feed_all(zs, p, n, 997);
		d = zs_damage(zs, &nd);
		cd = zs_cd_offset(zs);
		if (zs_ok(zs)) {
			/* only bytes no record checks: central directory attributes and comments */
			if ((cd == UINT64_MAX || i < cd) && !unnoticeable(ents, ne, i)) {
				fprintf(stderr, "%s: flip at %zu not detected\n", name, i);
				bad++;
			}
			undetected++;
			continue;
		}
		for (j = 0; j < nd; j++)
			if (i >= d[j].start && i < d[j].end)
				break;
		if (j == nd && !zs_damage_overflow(zs)) {
			fprintf(stderr, "%s: flip at %zu reported elsewhere ([%llu, %llu) %s)\n", name, i,
				(unsigned long long)d[0].start, (unsigned long long)d[0].end, d[0].why);
			bad++;
			continue;
		}
		for (int round = 0; round < 3 && !zs_ok(zs); round++) {
			d = zs_damage(zs, &nd);
			for (j = 0; j < nd; j++)
				memcpy(p + d[j].start, clean + d[j].start, d[j].end - d[j].start);
			feed_all(zs, p, n, 4096);
		}
		if (!zs_ok(zs)) {
			fprintf(stderr, "%s: flip at %zu not healed by its ranges\n", name, i);
			bad++;
		}
	}
	CHECK(bad == 0);
	printf("%s: %zu bytes, %zu flips nothing can notice\n", name, n, undetected);
	free(p);
	free(clean);
}

static void test_not_a_zip(struct zipstream *zs)
{
	const char text[] = "<html>not a zip</html>";
	size_t nd;

	feed_all(zs, (const unsigned char *)text, sizeof(text) - 1, 0);
	CHECK(!zs_ok(zs));
	CHECK(!zs_is_zip(zs));
	zs_damage(zs, &nd);
	CHECK(nd >= 1);
	feed_all(zs, (const unsigned char *)"PK\5\6\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 22, 0);
	CHECK(zs_ok(zs)); /* the empty zip */
}

int main(void)
{
	const char *python = getenv("PYTHON") ? getenv("PYTHON") : "python3";
	struct zipstream *zs = zs_new();
	char cmd[1536];

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	find_generator();
	snprintf(cmd, sizeof(cmd),
		 "%s '%s' %s valid_full valid_zip64 valid_descriptors valid_descriptors_zip64 "
		 "valid_line_of_16mib truncated bad_crc_attachment bad_crc_jsonl bad_crc_descriptor lying_central_crc "
		 "lying_size overlapping_entries",
		 python, generator, dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "cannot generate the test archives: %s\n", cmd);
		CHECK(0);
		goto out;
	}
	test_valid(zs, "valid_full", 6);
	test_valid(zs, "valid_zip64", 6);
	test_valid(zs, "valid_descriptors", 7);
	test_valid(zs, "valid_descriptors_zip64", 6);
	test_valid(zs, "valid_line_of_16mib", 6);
	test_damaged(zs, "bad_crc_attachment", "valid_full", "data/files/c.txt", "CRC-32 mismatch");
	test_damaged(zs, "bad_crc_jsonl", "valid_full", "import.jsonl", "");
	test_damaged(zs, "bad_crc_descriptor", "valid_descriptors", "data/files/c.txt", "CRC-32 mismatch");
	test_damaged(zs, "lying_central_crc", "valid_full", NULL, "central directory disagrees");
	test_damaged(zs, "truncated", "valid_full", NULL, "truncated");
	test_damaged(zs, "lying_size", "valid_full", "data/files/c.txt", "");
	test_damaged(zs, "overlapping_entries", "valid_full", NULL, "twice");
	test_not_a_zip(zs);
	test_every_flip(zs, "valid_full");
	test_every_flip(zs, "valid_descriptors");
	test_every_flip(zs, "valid_descriptors_zip64");
out:
	zs_free(zs);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	return check_done();
}

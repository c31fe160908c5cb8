#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static void oom(void)
{
	fputs("mmigrate: out of memory\n", stderr);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom();
	return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

	if (!p)
		oom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void iso8601_utc(int64_t ms, char *out, size_t outlen)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int parse_i64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (!s || !*s || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

/* A number followed by a unit from the table; units multiply. */
static int parse_units(const char *s, int64_t *out, const char *const *names, const int64_t *mult,
		       int allow_chain)
{
	int64_t total = 0;
	int parts = 0;

	if (!s || !*s)
		return -1;
	while (*s) {
		char *end;
		long long v;
		size_t i, ulen = 0;
		int64_t m = -1;

		if (!isdigit((unsigned char)*s))
			return -1;
		errno = 0;
		v = strtoll(s, &end, 10);
		if (errno)
			return -1;
		while (isalpha((unsigned char)end[ulen]))
			ulen++;
		for (i = 0; names[i]; i++)
			if (strlen(names[i]) == ulen && !strncasecmp(end, names[i], ulen))
				m = mult[i];
		if (m < 0 || (v && m > INT64_MAX / v) || total > INT64_MAX - v * m)
			return -1;
		total += v * m;
		s = end + ulen;
		parts++;
		if (!allow_chain && *s)
			return -1;
	}
	*out = total;
	return parts ? 0 : -1;
}

int parse_duration(const char *s, int64_t *seconds)
{
	static const char *const names[] = { "", "s", "m", "h", "d", NULL };
	static const int64_t mult[] = { 1, 1, 60, 3600, 86400 };

	return parse_units(s, seconds, names, mult, 1);
}

int parse_size(const char *s, int64_t *bytes)
{
	static const char *const names[] = { "",   "b",   "k", "kb", "kib", "m",
					     "mb", "mib", "g", "gb", "gib", NULL };
	static const int64_t mult[] = { 1,       1,       1000,       1000,       1024,      1000000,
					1000000, 1048576, 1000000000, 1000000000, 1073741824 };

	return parse_units(s, bytes, names, mult, 0);
}

int parse_rate(const char *s, int64_t *bytes_per_s)
{
	char size[64];
	size_t n = s ? strlen(s) : 0;

	/* "50MB/s" is a size per second; a bare size means per second too. */
	if (n >= 2 && !strcmp(s + n - 2, "/s"))
		n -= 2;
	if (n == 0 || n >= sizeof(size))
		return -1;
	memcpy(size, s, n);
	size[n] = '\0';
	return parse_size(size, bytes_per_s);
}

size_t levenshtein(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	size_t *row = xmalloc((lb + 1) * sizeof(*row));
	size_t ret;

	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
			size_t best = diag + cost;

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	ret = row[lb];
	free(row);
	return ret;
}

void url_redact(const char *url, char *out, size_t n)
{
	const char *sep = strstr(url, "://"), *rest = url, *at;
	int plen = 0;

	if (sep) {
		plen = (int)(sep + 3 - url);
		rest = sep + 3;
		at = memchr(rest, '@', strcspn(rest, "/?#"));
		if (at)
			rest = at + 1;
	}
	snprintf(out, n, "%.*s%.*s", plen, url, (int)strcspn(rest, "?#"), rest);
}

int64_t double_to_i64(double d)
{
	/* A JSON number is a double: a hostile 1e300 or NaN must not become undefined behaviour. */
	if (d != d)
		return 0;
	if (d >= 9223372036854775807.0)
		return INT64_MAX;
	if (d <= -9223372036854775808.0)
		return INT64_MIN;
	return (int64_t)d;
}

int64_t mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

void file_identity(const struct stat *st, char *out)
{
	snprintf(out, FILE_ID_LEN, "%llu:%llu:%lld", (unsigned long long)st->st_dev,
		 (unsigned long long)st->st_ino, (long long)mtime_ns(st));
}

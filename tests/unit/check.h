/*
 * check.h: the whole unit-test harness. CHECK records a failure and goes on;
 * check_done prints the closing "N passed, N failed" line and gives the exit code.
 */
#ifndef MM_CHECK_H
#define MM_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (cond)                                                                        \
			check_passed++;                                                          \
		else {                                                                           \
			check_failed++;                                                          \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
		}                                                                                \
	} while (0)

#define CHECK_STR(got, want)                                                                \
	do {                                                                                \
		const char *g_ = (got), *w_ = (want);                                       \
		if (g_ && w_ && !strcmp(g_, w_))                                            \
			check_passed++;                                                     \
		else {                                                                      \
			check_failed++;                                                     \
			fprintf(stderr, "%s:%d: got '%s', want '%s'\n", __FILE__, __LINE__, \
				g_ ? g_ : "(null)", w_ ? w_ : "(null)");                    \
		}                                                                           \
	} while (0)

#define CHECK_CONTAINS(hay, needle)                                                                \
	do {                                                                                       \
		const char *h_ = (hay), *n_ = (needle);                                            \
		if (h_ && strstr(h_, n_))                                                          \
			check_passed++;                                                            \
		else {                                                                             \
			check_failed++;                                                            \
			fprintf(stderr, "%s:%d: '%s' does not contain '%s'\n", __FILE__, __LINE__, \
				h_ ? h_ : "(null)", n_);                                           \
		}                                                                                  \
	} while (0)

static inline int check_done(void)
{
	printf("%d passed, %d failed\n", check_passed, check_failed);
	return check_failed ? 1 : 0;
}

#endif

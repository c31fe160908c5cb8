/*
 * diag: problems found in a plan, each at a line and column (1-based; 0 for
 * the file as a whole).
 *
 *   struct diags d = DIAGS_INIT;
 *   diag_add(&d, line, col, "unknown key '%s'", k);
 *   diags_print(&d, stderr);  diags_release(&d);
 */
#ifndef MM_DIAG_H
#define MM_DIAG_H

#include <stddef.h>
#include <stdio.h>

struct diag {
	int line, col;
	char *msg;
};

struct diags {
	char *file;
	struct diag *v;
	size_t n, cap;
};

#define DIAGS_INIT               \
	{                        \
		NULL, NULL, 0, 0 \
	}

void diag_add(struct diags *, int line, int col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* By position; two at one position stay in the order found. */
void diags_sort(struct diags *);
/* Sorted by position, "FILE:LINE:COL: message" each. */
void diags_print(struct diags *, FILE *out);
void diags_release(struct diags *);

#endif

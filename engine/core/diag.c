/*
 * Diagnostics: problems found in a plan, each at a line and column, printed
 * sorted as FILE:LINE:COL: message.
 */
#include "diag.h"

#include <stdarg.h>
#include <stdlib.h>

#include "buf.h"
#include "util.h"

void diag_add(struct diags *d, int line, int col, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 16;
		d->v = xrealloc(d->v, d->cap * sizeof(*d->v));
	}
	d->v[d->n].line = line;
	d->v[d->n].col = col;
	d->v[d->n].msg = buf_detach(&b);
	d->n++;
}

static int diag_cmp(const void *a, const void *b)
{
	const struct diag *x = a, *y = b;

	if (x->line != y->line)
		return x->line - y->line;
	return x->col - y->col;
}

void diags_sort(struct diags *d)
{
	/* A stable sort keeps two errors at one position in the order found. */
	for (size_t i = 1; i < d->n; i++)
		for (size_t j = i; j > 0 && diag_cmp(&d->v[j - 1], &d->v[j]) > 0; j--) {
			struct diag t = d->v[j];

			d->v[j] = d->v[j - 1];
			d->v[j - 1] = t;
		}
}

void diags_print(struct diags *d, FILE *out)
{
	diags_sort(d);
	for (size_t i = 0; i < d->n; i++) {
		const char *file = d->file ? d->file : "plan";

		if (d->v[i].line > 0)
			fprintf(out, "%s:%d:%d: %s\n", file, d->v[i].line, d->v[i].col, d->v[i].msg);
		else
			fprintf(out, "%s: %s\n", file, d->v[i].msg);
	}
}

void diags_release(struct diags *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].msg);
	free(d->v);
	free(d->file);
	d->v = NULL;
	d->file = NULL;
	d->n = d->cap = 0;
}

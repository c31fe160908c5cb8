#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int err_set(struct mm_error *err, int code, const char *fmt, ...)
{
	char msg[sizeof(err->msg)];
	va_list ap;

	if (!err)
		return code;
	err->code = code;
	/* Through a copy: an argument may be err->msg itself ("%s; more", err->msg). */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	memcpy(err->msg, msg, sizeof(msg));
	return code;
}

void err_prefix(struct mm_error *err, const char *fmt, ...)
{
	char ctx[512], old[sizeof(err->msg)];
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	/* Keep the tail of an over-long message rather than warn about truncation. */
	if (snprintf(err->msg, sizeof(err->msg), "%s: %.1500s", ctx, old) < 0)
		err->msg[0] = '\0';
}

void err_clear(struct mm_error *err)
{
	err->code = 0;
	err->http_status = 0;
	err->app_id[0] = '\0';
	err->msg[0] = '\0';
	err->retry_after_s = 0;
}

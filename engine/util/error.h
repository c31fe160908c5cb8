/*
 * error: a caller-owned error record filled where a failure happens (libgit2's
 * git_error, git's strbuf *err). Functions return 0 or a negative MM_E* code;
 * only cli.c turns them into exit statuses.
 *
 *   struct mm_error err = MM_ERROR_INIT;
 *   if (do_thing(..., &err) < 0) { err_prefix(&err, "step '%s'", id); report(&err); }
 *
 * Messages are lowercase, quote their subject, carry no full stop, and never
 * contain a secret.
 */
#ifndef MM_ERROR_H
#define MM_ERROR_H

enum {
	MM_OK = 0,
	MM_ERR = -1,       /* generic failure */
	MM_ENOTFOUND = -2, /* the thing asked for does not exist */
	MM_ELOCKED = -3,   /* another run holds the lock */
	MM_ERETRY = -4,    /* transient: worth another try */
	MM_EINTR = -5,     /* a signal asked us to stop at a safe point */
	MM_EINVAL = -6,    /* invalid plan or usage */
};

struct mm_error {
	int code;         /* one of MM_E*, or 0 */
	long http_status; /* 0 if not an HTTP failure */
	char app_id[160]; /* Mattermost AppError id, "" if none */
	char msg[2048];
	long retry_after_s; /* the answer's Retry-After (429, 503), 0 if none */
};

#define MM_ERROR_INIT           \
	{                       \
		0, 0, "", "", 0 \
	}

/* Replaces the message; returns code so callers can `return err_set(...)`.
 * http_status and app_id are kept: err_clear first when reusing a record.
 * err->msg itself may be an argument. */
int err_set(struct mm_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prepends "<context>: " to the current message. */
void err_prefix(struct mm_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void err_clear(struct mm_error *err);

#endif

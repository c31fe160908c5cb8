/*
 * http: the libcurl layer under every Mattermost call. One client talks to one
 * server over one reused connection (one curl easy handle).
 *
 *   http_global_init();                          once, before any thread starts
 *   struct http_client *c = http_client_new(&opts, &err);
 *   http_set_token(c, token);                    copied; wiped on replace and free
 *
 *   struct http_response r = HTTP_RESPONSE_INIT;
 *   http_json(c, "GET", "/api/v4/users/me", NULL, 0, &r, &err);
 *   ... r.status, r.body, r.version_id ...
 *   http_response_clear(&r);                     also wipes r.token
 *
 *   http_download_range(c, "/api/v4/exports/x.zip", have, 1, write_cb, ctx, &res, &err);
 *   http_upload_chunk(c, "/api/v4/uploads/<id>", fd, offset, length, &r, &err);
 *   http_upload_stream(c, "/api/v4/uploads/<id>", source, ctx, length, &r, &err);
 *   http_set_rate_limit(c, 50000000);            bytes/s for every later transfer body
 *
 *   http_client_free(c);
 *   http_global_cleanup();
 *
 * A client is not thread-safe: one thread uses it at a time. Paths are
 * server-relative ("/api/v4/...") and joined to base_url, or, for downloads
 * only, absolute http(s) URLs (presigned S3 links) which never get the
 * Authorization header and never go through the unix socket.
 *
 * Errors: every call returns 0 or a negative MM_E* code and fills err:
 *   "<METHOD> <path>: HTTP <status> <app id>: <message>" or
 *   "<METHOD> <path>: <curl's error text>", query strings and tokens never included;
 *   err->http_status and err->app_id are set when the server answered.
 *   MM_ENOTFOUND  404
 *   MM_ERETRY     transient: connect failure, timeout, cut connection, 408/429/5xx
 *   MM_EINTR      opts.should_stop said stop
 *   MM_EINVAL     bad arguments (no request was sent)
 *   MM_ERR        anything else (4xx, TLS verification, body too large ...)
 * err must not be NULL. The caller adds the step with err_prefix. See
 * docs/http.md for the retry policy.
 */
#ifndef MM_HTTP_H
#define MM_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "buf.h"
#include "error.h"

enum http_log_level {
	HTTP_LOG_WARN = 0,  /* always worth showing: TLS off, retries */
	HTTP_LOG_INFO = 1,  /* one line per request attempt */
	HTTP_LOG_TRACE = 2, /* request and response headers, secrets redacted */
};

#define HTTP_RETRIES_NONE (-1)

struct http_client; /* opts.retries: 0 means the default */

/* A user, a job or an upload session fits in a few KiB; listings and the config grow. */
#define HTTP_MAX_BODY ((size_t)1 << 20)
#define HTTP_MAX_LARGE_BODY ((size_t)16 << 20)

/* The transfer floor: a stalled transfer ends, retries included, within two minutes. */
#define HTTP_MIN_SPEED_BPS 1024L
#define HTTP_MIN_SPEED_WINDOW_S 30L
#define HTTP_TRANSFER_DEADLINE_S 90L

struct http_opts {
	const char *base_url;    /* "https://host[:port][/prefix]"; ignored with socket_path */
	const char *socket_path; /* local mode: unix socket, base URL http://localhost, no auth */
	const char *ca_file;     /* PEM bundle to trust instead of the system store */
	int insecure;            /* skip TLS verification: only when the plan says so */

	/* Zero fields take the defaults in brackets. */
	int retries;              /* extra attempts per JSON request [8]; HTTP_RETRIES_NONE */
	long connect_timeout_s;   /* [30] */
	long request_timeout_s;   /* whole JSON request [120] */
	long low_speed_time_s;    /* old name of min_speed_window_s, used when that is 0 */
	long min_speed_bps;       /* transfers: an attempt below this many bytes/s ... [1024] */
	long min_speed_window_s;  /* ... for this long is cut [30] */
	long transfer_deadline_s; /* a transfer below the floor this long, attempts added up, fails [90] */
	long backoff_base_ms;     /* first backoff ceiling, doubles per try [500] */
	long backoff_cap_ms;      /* backoff ceiling cap [30000] */
	long retry_after_cap_s;   /* largest Retry-After honoured [120] */
	long retry_budget_s;      /* no new try once a call has spent this long [600] */
	size_t max_body;          /* largest JSON answer kept [HTTP_MAX_BODY, 1 MiB] */
	size_t max_large_body;    /* the same for HTTP_LARGE_BODY calls (listings, config) [16 MiB] */

	/* Polled during transfers and backoff sleeps; nonzero aborts with MM_EINTR. */
	int (*should_stop)(void *ctx);
	void *stop_ctx;

	/*
	 * Called when an answer is 401 (the session expired or was revoked) to
	 * put a new token on c; 0 means renewed. A JSON request is then sent
	 * once more (a 401 means the server did not act on it); a download or
	 * upload chunk returns its error and the caller's resume loop goes on
	 * with the new token. Never called from inside itself (the login).
	 */
	int (*reauth)(void *ctx, struct http_client *c, struct mm_error *err);
	void *reauth_ctx;

	/* Log lines never contain a token, a password or a query string. */
	void (*log)(void *ctx, enum http_log_level level, const char *line);
	void *log_ctx;
	enum http_log_level log_level; /* lines above this level are not produced */
};

struct http_response {
	long status;         /* 0 when no answer arrived */
	struct buf body;     /* JSON or error text; capped */
	char *token;         /* "Token" header (login): secret, wiped by http_response_clear */
	char version_id[64]; /* X-Version-ID */
	char request_id[40]; /* X-Request-ID */
	char content_type[128];
	int64_t content_length; /* -1 when absent */
	long retry_after_s;     /* -1 when absent */
};

#define HTTP_RESPONSE_INIT                            \
	{                                             \
		0, BUF_INIT, NULL, "", "", "", -1, -1 \
	}

/* What one download attempt saw. Range fields are -1 when absent or "*". */
struct http_dl_result {
	long status;
	int64_t content_length;
	int64_t range_start, range_end, range_total; /* a 416 fills range_total only */
	int64_t received;                            /* body bytes handed to the callback */
	long retry_after_s;                          /* Retry-After of a 429/503, -1 when absent */
	char content_type[128];
};

/* Flags for http_json. */
enum {
	/* One attempt, whatever happens: transient failures come back as
	 * MM_ERETRY and the caller decides (creating jobs and upload sessions). */
	HTTP_NO_RETRY = 1 << 0,
	/* A POST that may safely be repeated (presign an export link): retried like a GET. */
	HTTP_IDEMPOTENT = 1 << 1,
	/* An answer that legitimately grows (a listing, the config): accepts
	 * max_large_body instead of max_body. Too large an answer is refused at
	 * its Content-Length, or as soon as the stream passes the cap. */
	HTTP_LARGE_BODY = 1 << 2,
};

/* Fills up to len bytes of an upload body: the count (0 only at the end),
 * or -1 to abort with *why (static or owned by ctx) as the reason. */
typedef long (*http_source_fn)(void *ctx, char *buf, size_t len, const char **why);

/* Receives the body of a 200/206 download; returns 0, or <0 with err set to abort. */
typedef int (*http_write_fn)(void *ctx, const void *data, size_t len, struct mm_error *err);

/*
 * Told what the headers of a download answer said (status, Content-Length,
 * Content-Range; received is 0), once, before the first body byte goes to
 * write, and only for an answer whose body write would get. Returns 0, or
 * <0 with err set to abort the attempt before any byte is written.
 */
typedef int (*http_head_fn)(void *ctx, const struct http_dl_result *res, struct mm_error *err);

/* Where a download's answer goes: head (may be NULL) first, then write. */
struct http_sink {
	http_write_fn write;
	http_head_fn head;
	void *ctx;
};

int http_global_init(void);
void http_global_cleanup(void);

/* Caller frees with http_client_free. Strings in opts are copied. */
struct http_client *http_client_new(const struct http_opts *opts, struct mm_error *err);
void http_client_free(struct http_client *c);

/* Sets the bearer token (NULL clears it); the old one is wiped. Rejects
 * tokens with control characters or spaces (header injection) with -1. */
int http_set_token(struct http_client *c, const char *token);
int http_has_token(const struct http_client *c);
/*
 * Registers a secret (password, MFA code) the client must never show: every
 * error message and log line has it replaced by "<redacted>", like the
 * token. A copy is kept for that, wiped by http_client_free. Strings under 4
 * characters are ignored (they would redact ordinary words).
 */
void http_add_secret(struct http_client *c, const char *secret);
/* Per-step transfer floor (plan defaults or a step's tuning keys); 0 keeps the current value. */
void http_set_transfer_limits(struct http_client *c, long min_speed_bps, long window_s, long deadline_s);
/* Replaces every secret the client knows in s (cap bytes) by "<redacted>". */
void http_scrub(const struct http_client *c, char *s, size_t cap);
void http_scrub_buf(const struct http_client *c, struct buf *b);
int http_is_local(const struct http_client *c);
/* X-Version-ID of the most recent answer, "" before the first one. */
const char *http_last_version_id(const struct http_client *c);

/*
 * A JSON API call with the retry policy of docs/http.md. body may be NULL.
 * resp starts as HTTP_RESPONSE_INIT and may be reused across calls.
 * Returns 0 for 2xx (and 304); otherwise resp still holds the status and
 * the error body. The serialised request body is wiped after use (login
 * bodies hold passwords). Caller clears resp with http_response_clear.
 */
int http_json(struct http_client *c, const char *method, const char *path, const cJSON *body, int flags,
	      struct http_response *resp, struct mm_error *err);

/*
 * ONE GET attempt from offset (Range: bytes=offset- when offset > 0; never
 * If-Range, never several ranges). write receives exactly the bytes that
 * belong at offset + res->received: the body of a 200 when offset is 0, or of
 * a 206 whose Content-Range starts at offset. A 200 to a Range request (or a
 * 206 for another start) is not fed: it comes back as MM_ERR with res->status
 * set, so the caller restarts from zero instead of appending. Other answers
 * are buffered (capped) and parsed as an AppError; a 416 comes back as MM_ERR
 * with err->http_status 416 and res->range_total taken from its Content-Range
 * ("bytes *" then "/N"). A connection cut mid-body is MM_ERETRY with
 * res->received counting what was delivered. A body longer than its
 * Content-Length or Content-Range announced is fed up to that length only,
 * then cut: MM_ERETRY. No automatic retry: the caller owns the resume loop. Absolute URLs and with_auth == 0 send no token.
 */
int http_download_range(struct http_client *c, const char *path_or_url, int64_t offset, int with_auth,
			http_write_fn write, void *ctx, struct http_dl_result *res, struct mm_error *err);

/*
 * The same for the closed range bytes=offset-end (end inclusive; -1: open,
 * which is http_download_range): only a 206 starting at offset and ending
 * at or before end is fed. Heals a damaged span of a file already held.
 */
int http_download_span(struct http_client *c, const char *path_or_url, int64_t offset, int64_t end,
		       int with_auth, http_write_fn write, void *ctx, struct http_dl_result *res,
		       struct mm_error *err);

/* Either of the above (end -1: open) with a sink whose head hook sees the headers first. */
int http_download(struct http_client *c, const char *path_or_url, int64_t offset, int64_t end, int with_auth,
		  const struct http_sink *sink, struct http_dl_result *res, struct mm_error *err);

/*
 * Several downloads of one client at once, on the calling thread (curl's
 * multi interface): n slots, each its own connection, each running one
 * attempt like http_download. The client's rate_limit is shared: each slot
 * gets 1/n of it. Not thread-safe, like the client.
 *
 *   struct http_pool *p = http_pool_new(c, 4, &err);      caller frees
 *   http_pool_start(p, slot, url, offset, end, with_auth, &sink, &err);
 *   slot = http_pool_wait(p, 1000, &rc, &res, &err);       -1: none ended in time
 *   http_pool_free(p);                                     cancels what still runs
 */
struct http_pool;
struct http_pool *http_pool_new(struct http_client *c, int n, struct mm_error *err);
void http_pool_free(struct http_pool *p);
/* Starts an idle slot (0..n-1) on bytes offset..end (end inclusive, -1 open). */
int http_pool_start(struct http_pool *p, int slot, const char *path_or_url, int64_t offset, int64_t end,
		    int with_auth, const struct http_sink *sink, struct mm_error *err);
/* Drops a slot's transfer (its connection is closed); the slot is idle again. */
void http_pool_cancel(struct http_pool *p, int slot);
/*
 * Moves the transfers until one ends or timeout_ms passes. Returns the slot
 * that ended, its outcome in *rc (0 or MM_E*, as http_download returns),
 * res and err; or -1 when none ended in time.
 */
int http_pool_wait(struct http_pool *p, long timeout_ms, int *rc, struct http_dl_result *res,
		   struct mm_error *err);

/*
 * ONE raw POST of bytes [offset, offset+length) of fd, with an exact
 * Content-Length, Content-Type application/octet-stream, no chunked
 * encoding and no Expect: 100-continue. 0 for 2xx (204: more to send,
 * 200: upload complete, FileInfo in resp->body). Never resent here: after
 * any failure the caller must GET the session to learn what was stored.
 */
int http_upload_chunk(struct http_client *c, const char *path, int fd, int64_t offset, int64_t length,
		      struct http_response *resp, struct mm_error *err);

/*
 * The same, with the body taken from src in order (exactly length bytes; a
 * source that ends early aborts the request). The source may block: it is
 * how a read-ahead thread keeps the socket busy.
 */
int http_upload_stream(struct http_client *c, const char *path, http_source_fn src, void *ctx, int64_t length,
		       struct http_response *resp, struct mm_error *err);

/*
 * Caps download and upload bodies at bytes_per_s (0: no cap) from the next
 * transfer on, like rclone's --bwlimit; JSON calls are never slowed. The
 * steps that transfer set it before they start, so a cap never outlives
 * the step that asked for it.
 */
void http_set_rate_limit(struct http_client *c, int64_t bytes_per_s);

void http_response_clear(struct http_response *resp);

/* Wipes memory the compiler may not optimise away (OPENSSL_cleanse). */
void http_wipe(void *p, size_t n);

#endif

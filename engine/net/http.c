#include "http.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "httpparse.h"
#include "jsonlimit.h"
#include "retry.h"
#include "util.h"

#define ERROR_BODY_MAX (64 * 1024) /* error bodies are read for their message only */
#define STOP_SLICE_MS 100          /* how quickly a backoff sleep notices should_stop */
#define SHOWN_MAX 512              /* "<method> <path>" prefix of messages */
#define DETAIL_MAX 300             /* server text quoted in one error message */

struct http_client {
	CURL *h;
	char *base_url; /* without trailing '/' */
	char *socket_path;
	char *ca_file;
	int insecure;
	char *token;
	char **secrets; /* passwords, MFA codes: copies kept only to scrub them from messages */
	size_t nsecrets;

	struct retry_policy retry;
	long connect_timeout_s, request_timeout_s;
	size_t max_body, max_large_body;
	/* The transfer floor: an attempt below min_speed_bps for min_speed_window_s
	 * is cut; time spent below the floor adds up across attempts (stalled_ms)
	 * and a transfer fails once it reaches transfer_deadline_s. */
	long min_speed_bps, min_speed_window_s, transfer_deadline_s;
	int64_t stalled_ms;

	int (*should_stop)(void *);
	void *stop_ctx;
	void (*log)(void *, enum http_log_level, const char *);
	void *log_ctx;
	enum http_log_level log_level;

	int (*reauth)(void *, struct http_client *, struct mm_error *);
	void *reauth_ctx;
	int in_reauth;

	char last_version[64];
	int64_t rate_limit; /* bytes/s for download and upload bodies; 0: none */
};

/* State of one request attempt, shared by the curl callbacks. */
struct xfer {
	struct http_client *c;
	CURL *h; /* the client's handle, or a pool slot's */
	const char *method;
	char shown[SHOWN_MAX]; /* "GET /api/v4/x": what messages and logs may show */
	struct http_response *resp;
	int64_t range_start, range_end, range_total;

	/* download sink: only the wanted body goes to write */
	int64_t want_offset, want_end; /* want_end: last byte of a closed range, -1 for open */
	http_write_fn write;
	http_head_fn head; /* told the headers before the first byte fed, or NULL */
	void *write_ctx;
	struct mm_error *write_err;
	int decided, feed, refused, write_failed;
	int64_t received;
	int64_t announced; /* body length the headers promised, -1 unknown: never fed past it */
	int overflow, oversize;

	/* upload source: bytes of fd from up_off, or src when set */
	int fd;
	int64_t up_off, up_len, up_sent;
	int read_errno, short_read;
	http_source_fn src;
	void *src_ctx;
	const char *src_err;

	int stopped;
	int rate_share; /* transfers sharing the client's rate_limit (a pool's slots) */
	struct curl_slist *headers;
	char errbuf[CURL_ERROR_SIZE];
};

/* ---- small helpers ---------------------------------------------------- */

void http_wipe(void *p, size_t n)
{
	if (p && n)
		OPENSSL_cleanse(p, n);
}

static void wipe_free(char *s)
{
	if (s) {
		http_wipe(s, strlen(s));
		free(s);
	}
}

static void copy_str(char *dst, size_t n, const char *src, size_t len)
{
	if (len >= n)
		len = n - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* find_ci is a GNU extension. */
static const char *find_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay; hay++)
		if (!strncasecmp(hay, needle, n))
			return hay;
	return NULL;
}

static int is_absolute(const char *path)
{
	return !strncasecmp(path, "http://", 7) || !strncasecmp(path, "https://", 8);
}

static void client_log(struct http_client *c, enum http_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void scrub_token(const struct http_client *c, char *s, size_t cap);

static void client_log(struct http_client *c, enum http_log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (!c->log || level > c->log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	scrub_token(c, line, sizeof(line));
	c->log(c->log_ctx, level, line);
	http_wipe(line, sizeof(line));
}

/* Rebuilds b with every occurrence of secret replaced by "<redacted>". */
static void scrub_one(const char *secret, struct buf *b)
{
	struct buf out = BUF_INIT;
	const char *p, *hit;
	size_t tlen;

	if (!secret || !*secret || !b->data || !strstr(b->data, secret))
		return;
	tlen = strlen(secret);
	for (p = b->data; (hit = strstr(p, secret)); p = hit + tlen) {
		buf_add(&out, p, (size_t)(hit - p));
		buf_adds(&out, "<redacted>");
	}
	buf_adds(&out, p);
	http_wipe(b->data, b->len);
	out.max = b->max;
	buf_release(b);
	*b = out;
}

/* Every secret the client knows: the token and what http_add_secret registered. */
static void scrub_buf(const struct http_client *c, struct buf *b)
{
	scrub_one(c->token, b);
	for (size_t i = 0; i < c->nsecrets; i++)
		scrub_one(c->secrets[i], b);
}

static int holds_secret(const struct http_client *c, const char *s)
{
	if (c->token && strstr(s, c->token))
		return 1;
	for (size_t i = 0; i < c->nsecrets; i++)
		if (strstr(s, c->secrets[i]))
			return 1;
	return 0;
}

static void scrub_token(const struct http_client *c, char *s, size_t cap)
{
	struct buf b = BUF_INIT;

	if (!holds_secret(c, s))
		return;
	buf_adds(&b, s);
	scrub_buf(c, &b);
	copy_str(s, cap, b.data, b.len);
	http_wipe(b.data, b.len);
	buf_release(&b);
}

void http_scrub_buf(const struct http_client *c, struct buf *b)
{
	if (c && b && b->data)
		scrub_buf(c, b);
}

void http_scrub(const struct http_client *c, char *s, size_t cap)
{
	if (c && s)
		scrub_token(c, s, cap);
}

static int finish_err(const struct http_client *c, int ret, struct mm_error *err)
{
	if (ret < 0 && err)
		scrub_token(c, err->msg, sizeof(err->msg));
	return ret;
}

/*
 * "<scheme>://<host><path>" or "<path>", without query, fragment or
 * userinfo: presigned URLs carry their signature in the query string.
 */
static void show_target(const char *method, const char *path, char *out, size_t n)
{
	int len = snprintf(out, n, "%s ", method);

	if (len > 0 && (size_t)len < n)
		url_redact(path, out + len, n - (size_t)len);
}

/* ---- client ------------------------------------------------------------ */

int http_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void http_global_cleanup(void)
{
	curl_global_cleanup();
}

static long or_default(long v, long def)
{
	return v > 0 ? v : def;
}

static int set_endpoint(struct http_client *c, const struct http_opts *o, struct mm_error *err)
{
	size_t len;

	if (o->socket_path && *o->socket_path) {
		c->socket_path = xstrdup(o->socket_path);
		c->base_url = xstrdup("http://localhost");
		return 0;
	}
	if (!o->base_url || !is_absolute(o->base_url))
		return err_set(err, MM_EINVAL, "server url '%s' must start with http:// or https://",
			       o->base_url ? o->base_url : "");
	if (strpbrk(o->base_url, "?# \t\r\n"))
		return err_set(err, MM_EINVAL, "server url '%s' must not hold a query, fragment or space",
			       o->base_url);
	len = strlen(o->base_url);
	while (len && o->base_url[len - 1] == '/')
		len--;
	c->base_url = xstrndup(o->base_url, len);
	return 0;
}

static void copy_opts(struct http_client *c, const struct http_opts *o)
{
	c->insecure = o->insecure && !c->socket_path;
	retry_policy_init(&c->retry, o->retries < 0 ? 0 : o->retries ? o->retries : 8);
	c->retry.base_ms = or_default(o->backoff_base_ms, c->retry.base_ms);
	c->retry.cap_ms = or_default(o->backoff_cap_ms, c->retry.cap_ms);
	c->retry.retry_after_cap_s = or_default(o->retry_after_cap_s, c->retry.retry_after_cap_s);
	c->retry.budget_s = or_default(o->retry_budget_s, c->retry.budget_s);
	c->connect_timeout_s = or_default(o->connect_timeout_s, 30);
	c->request_timeout_s = or_default(o->request_timeout_s, 120);
	c->min_speed_bps = or_default(o->min_speed_bps, HTTP_MIN_SPEED_BPS);
	c->min_speed_window_s =
		or_default(o->min_speed_window_s, or_default(o->low_speed_time_s, HTTP_MIN_SPEED_WINDOW_S));
	c->transfer_deadline_s = or_default(o->transfer_deadline_s, HTTP_TRANSFER_DEADLINE_S);
	c->max_body = o->max_body ? o->max_body : HTTP_MAX_BODY;
	c->max_large_body = o->max_large_body ? o->max_large_body : HTTP_MAX_LARGE_BODY;
	c->should_stop = o->should_stop;
	c->stop_ctx = o->stop_ctx;
	c->log = o->log;
	c->log_ctx = o->log_ctx;
	c->log_level = o->log_level;
	c->reauth = o->reauth;
	c->reauth_ctx = o->reauth_ctx;
}

struct http_client *http_client_new(const struct http_opts *o, struct mm_error *err)
{
	struct http_client *c = xcalloc(1, sizeof(*c));

	if (set_endpoint(c, o, err) < 0)
		goto fail;
	if (o->ca_file && *o->ca_file) {
		if (access(o->ca_file, R_OK) < 0) {
			err_set(err, MM_EINVAL, "cannot read CA file '%s': %s", o->ca_file, strerror(errno));
			goto fail;
		}
		c->ca_file = xstrdup(o->ca_file);
	}
	copy_opts(c, o);
	c->h = curl_easy_init();
	if (!c->h) {
		err_set(err, MM_ERR, "cannot initialise libcurl");
		goto fail;
	}
	if (c->insecure)
		client_log(c, HTTP_LOG_WARN,
			   "TLS certificate verification is disabled for '%s' (insecure_skip_tls_verify)",
			   c->base_url);
	return c;
fail:
	http_client_free(c);
	return NULL;
}

void http_client_free(struct http_client *c)
{
	if (!c)
		return;
	if (c->h)
		curl_easy_cleanup(c->h);
	wipe_free(c->token);
	for (size_t i = 0; i < c->nsecrets; i++)
		wipe_free(c->secrets[i]);
	free(c->secrets);
	free(c->base_url);
	free(c->socket_path);
	free(c->ca_file);
	free(c);
}

int http_set_token(struct http_client *c, const char *token)
{
	/* Visible ASCII only: anything else could split the header. */
	for (const char *p = token; p && *p; p++)
		if (*p <= ' ' || *p > '~')
			return -1;
	wipe_free(c->token);
	c->token = token && *token ? xstrdup(token) : NULL;
	return 0;
}

void http_add_secret(struct http_client *c, const char *secret)
{
	/* Shorter strings would redact ordinary words; MFA codes have 6 digits. */
	if (!secret || strlen(secret) < 4)
		return;
	for (size_t i = 0; i < c->nsecrets; i++)
		if (!strcmp(c->secrets[i], secret))
			return;
	c->secrets = xrealloc(c->secrets, (c->nsecrets + 1) * sizeof(*c->secrets));
	c->secrets[c->nsecrets++] = xstrdup(secret);
}

int http_has_token(const struct http_client *c)
{
	return c->token != NULL;
}

int http_is_local(const struct http_client *c)
{
	return c->socket_path != NULL;
}

const char *http_last_version_id(const struct http_client *c)
{
	return c->last_version;
}

void http_response_clear(struct http_response *r)
{
	size_t max = r->body.max;

	buf_release(&r->body);
	r->body.max = max;
	wipe_free(r->token);
	r->token = NULL;
	r->status = 0;
	r->version_id[0] = r->request_id[0] = r->content_type[0] = '\0';
	r->content_length = -1;
	r->retry_after_s = -1;
}

/* ---- header parsing ---------------------------------------------------- */

/* A new status line: 1xx answers and proxy CONNECT answers come before the real one. */
static void start_response(struct xfer *x, const char *line)
{
	const char *sp = strchr(line, ' ');
	int64_t st = 0;
	char code[4] = "";

	if (sp)
		copy_str(code, sizeof(code), sp + 1, strspn(sp + 1, "0123456789"));
	http_response_clear(x->resp);
	x->resp->status = parse_i64(code, &st) == 0 ? (long)st : 0;
	x->range_start = x->range_end = x->range_total = -1;
}

static void take_header(struct xfer *x, const char *name, const char *v)
{
	struct http_response *r = x->resp;
	int64_t n;

	if (!strcasecmp(name, "Token")) {
		wipe_free(r->token);
		r->token = xstrdup(v);
	} else if (!strcasecmp(name, "X-Version-ID")) {
		copy_str(r->version_id, sizeof(r->version_id), v, strlen(v));
		copy_str(x->c->last_version, sizeof(x->c->last_version), v, strlen(v));
	} else if (!strcasecmp(name, "X-Request-ID")) {
		copy_str(r->request_id, sizeof(r->request_id), v, strlen(v));
	} else if (!strcasecmp(name, "Content-Type")) {
		copy_str(r->content_type, sizeof(r->content_type), v, strlen(v));
	} else if (!strcasecmp(name, "Content-Length")) {
		r->content_length = parse_i64(v, &n) == 0 && n >= 0 ? n : -1;
		/* A JSON answer announced larger than this call accepts is refused before its body. */
		if (!x->write && r->status >= 200 && r->status < 300 && r->body.max &&
		    r->content_length > (int64_t)r->body.max)
			x->overflow = 1;
	} else if (!strcasecmp(name, "Content-Range")) {
		http_parse_content_range(v, &x->range_start, &x->range_end, &x->range_total);
	} else if (!strcasecmp(name, "Retry-After")) {
		r->retry_after_s = http_parse_retry_after(v);
	}
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	size_t len = size * n;
	char line[1024], *colon, *v;

	copy_str(line, sizeof(line), data, len);
	line[strcspn(line, "\r\n")] = '\0';
	if (!strncmp(line, "HTTP/", 5)) {
		start_response(x, line);
	} else if ((colon = strchr(line, ':'))) {
		*colon = '\0';
		v = colon + 1 + strspn(colon + 1, " \t");
		for (size_t l = strlen(v); l && (v[l - 1] == ' ' || v[l - 1] == '\t'); l--)
			v[l - 1] = '\0';
		take_header(x, line, v);
	}
	http_wipe(line, sizeof(line)); /* may have held the Token header */
	return x->overflow ? 0 : len;
}

/* ---- body callbacks ---------------------------------------------------- */

/* Buffers a JSON or error body. An error body is only read for its message,
 * so what does not fit is dropped; a too large success body fails. */
static size_t keep_body(struct xfer *x, const char *p, size_t len)
{
	struct buf *b = &x->resp->body;
	int is_error = x->resp->status < 200 || x->resp->status >= 300;
	size_t cap = b->max ? b->max : (size_t)-1;

	if (is_error && cap > ERROR_BODY_MAX)
		cap = ERROR_BODY_MAX;
	if (b->len + len <= cap) {
		buf_add(b, p, len);
		return len;
	}
	if (!is_error) {
		x->overflow = 1;
		return 0;
	}
	if (b->len < cap)
		buf_add(b, p, cap - b->len);
	return len;
}

/*
 * Decides at the first body byte whether the download callback gets it: only
 * bytes that belong at want_offset. A 200 to a Range request or a 206 for
 * another offset is refused outright rather than appended at the wrong place.
 */
static int wants_body(struct xfer *x)
{
	long st = x->resp->status;

	x->announced = st == 206 && x->range_end >= 0 ? x->range_end - x->range_start + 1
		       : st == 200                    ? x->resp->content_length
						      : -1;
	if (st == 200 && x->want_offset == 0 && x->want_end < 0)
		return 1;
	if (st == 206 && x->range_start == x->want_offset &&
	    (x->want_end < 0 || (x->range_end >= 0 && x->range_end <= x->want_end)))
		return 1;
	if (st == 200 || st == 206) {
		x->refused = 1;
		return -1;
	}
	return 0;
}

static void fill_dl_result(const struct xfer *x, struct http_dl_result *res);

/* Tells the sink's head hook what the headers said; <0 (err set) aborts the attempt. */
static int announce(struct xfer *x)
{
	struct http_dl_result res;

	if (!x->head)
		return 0;
	fill_dl_result(x, &res);
	if (x->head(x->write_ctx, &res, x->write_err) < 0) {
		x->write_failed = 1;
		return -1;
	}
	return 0;
}

/* At the first body byte (or the end of an empty body): is it fed, and does the sink agree? */
static int decide(struct xfer *x)
{
	x->decided = 1;
	x->feed = wants_body(x);
	if (x->feed > 0 && announce(x) < 0)
		x->feed = -1;
	return x->feed;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	size_t len = size * n;

	if (x->write && !x->decided && decide(x) < 0)
		return 0;
	if (!x->feed)
		return keep_body(x, p, len);
	if (x->announced >= 0 && x->received + (int64_t)len > x->announced) {
		/* A server that sends more than it announced (an 8 MB file that
		 * grew a 218 MB .part): what fits is kept, the rest is a failed attempt. */
		size_t fit = (size_t)(x->announced - x->received);

		if (fit && x->write(x->write_ctx, p, fit, x->write_err) < 0) {
			x->write_failed = 1;
			return 0;
		}
		x->received += (int64_t)fit;
		x->oversize = 1;
		return 0;
	}
	if (len && x->write(x->write_ctx, p, len, x->write_err) < 0) {
		x->write_failed = 1;
		return 0;
	}
	x->received += (int64_t)len;
	return len;
}

static size_t on_read(char *p, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	int64_t left = x->up_len - x->up_sent;
	size_t want = size * n;
	ssize_t got;

	if (left <= 0)
		return 0;
	if ((int64_t)want > left)
		want = (size_t)left;
	if (x->src) {
		if ((got = x->src(x->src_ctx, p, want, &x->src_err)) < 0) {
			x->read_errno = EIO;
			return CURL_READFUNC_ABORT;
		}
	} else {
		do
			got = pread(x->fd, p, want, (off_t)(x->up_off + x->up_sent));
		while (got < 0 && errno == EINTR);
	}
	if (got < 0) {
		x->read_errno = errno;
		return CURL_READFUNC_ABORT;
	}
	if (got == 0) {
		x->short_read = 1;
		return CURL_READFUNC_ABORT;
	}
	x->up_sent += got;
	return (size_t)got;
}

static int on_progress(void *ud, curl_off_t dlt, curl_off_t dln, curl_off_t ult, curl_off_t uln)
{
	struct xfer *x = ud;

	if (x->c->should_stop && x->c->should_stop(x->c->stop_ctx)) {
		x->stopped = 1;
		return 1;
	}
	return 0;
}

/* ---- trace with secrets redacted ---------------------------------------- */

static int secret_header(const char *line)
{
	static const char *const names[] = { "authorization", "proxy-authorization", "token",
					     "cookie",        "set-cookie",          NULL };
	size_t nlen = strcspn(line, ":");

	if (!line[nlen])
		return 0;
	for (int i = 0; names[i]; i++)
		if (strlen(names[i]) == nlen && !strncasecmp(line, names[i], nlen))
			return 1;
	return 0;
}

/* Header values that are secrets become "<redacted>"; query strings are cut. */
static void redact_line(const struct http_client *c, const char *line, size_t len, struct buf *out)
{
	size_t i = 0;

	if (secret_header(line)) {
		buf_addf(out, "%.*s: <redacted>", (int)strcspn(line, ":"), line);
		return;
	}
	while (i < len) {
		if (line[i] == '?') {
			buf_adds(out, "?<redacted>");
			while (i < len && line[i] != ' ')
				i++;
			continue;
		}
		buf_addc(out, line[i++]);
	}
	scrub_buf(c, out);
}

static int on_debug(CURL *h, curl_infotype type, char *data, size_t size, void *ud)
{
	struct xfer *x = ud;
	const char *mark = type == CURLINFO_TEXT         ? "* "
			   : type == CURLINFO_HEADER_IN  ? "< "
			   : type == CURLINFO_HEADER_OUT ? "> "
							 : NULL;
	size_t i = 0;

	if (!mark) /* bodies: login passwords, tokens, archive bytes */
		return 0;
	while (i < size) {
		size_t len = 0;
		struct buf line = BUF_INIT;
		char *copy;

		while (i + len < size && data[i + len] != '\r' && data[i + len] != '\n')
			len++;
		copy = xstrndup(data + i, len);
		if (len) {
			buf_adds(&line, mark);
			redact_line(x->c, copy, len, &line);
			x->c->log(x->c->log_ctx, HTTP_LOG_TRACE, buf_cstr(&line));
		}
		http_wipe(copy, len);
		free(copy);
		http_wipe(line.data, line.len);
		buf_release(&line);
		i += len;
		while (i < size && (data[i] == '\r' || data[i] == '\n'))
			i++;
	}
	return 0;
}

/* ---- request setup ----------------------------------------------------- */

static void add_header(struct xfer *x, const char *h)
{
	struct curl_slist *l = curl_slist_append(x->headers, h);

	if (!l) {
		fputs("mmigrate: out of memory\n", stderr);
		abort();
	}
	x->headers = l;
}

static void add_auth(struct xfer *x)
{
	struct buf h = BUF_INIT;

	buf_addf(&h, "Authorization: Bearer %s", x->c->token);
	add_header(x, h.data);
	http_wipe(h.data, h.len);
	buf_release(&h);
}

/* curl_slist_free_all would leave the bearer token in freed memory. */
static void free_headers(struct xfer *x)
{
	for (struct curl_slist *l = x->headers; l; l = l->next)
		http_wipe(l->data, strlen(l->data));
	curl_slist_free_all(x->headers);
	x->headers = NULL;
}

static void xfer_init(struct xfer *x, struct http_client *c, const char *method, const char *path,
		      struct http_response *resp)
{
	memset(x, 0, sizeof(*x));
	x->c = c;
	x->h = c->h;
	x->rate_share = 1;
	x->method = method;
	x->resp = resp;
	x->fd = -1;
	x->range_start = x->range_end = x->range_total = -1;
	show_target(method, path, x->shown, sizeof(x->shown));
	http_response_clear(resp);
}

static void set_tls(struct http_client *c, CURL *h)
{
	curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, c->insecure ? 0L : 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, c->insecure ? 0L : 2L);
	if (c->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
}

static void set_callbacks(struct xfer *x)
{
	CURL *h = x->h;

	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
	if (x->c->log && x->c->log_level >= HTTP_LOG_TRACE) {
		curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, on_debug);
		curl_easy_setopt(h, CURLOPT_DEBUGDATA, x);
		curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
	}
}

/*
 * Every option is set afresh per request: curl_easy_reset keeps the live
 * connection, so requests reuse it without inheriting each other's options.
 * No cookie engine (MMAUTHTOKEN must never be stored or sent), no
 * redirects, no X-Requested-With.
 */
static int xfer_setup(struct xfer *x, const char *path, int with_auth, struct mm_error *err)
{
	struct http_client *c = x->c;
	int absolute = is_absolute(path);
	struct buf url = BUF_INIT;

	if (!absolute && path[0] != '/')
		return err_set(err, MM_EINVAL, "%s: path must start with '/'", x->shown);
	curl_easy_reset(x->h);
	if (absolute)
		buf_adds(&url, path);
	else
		buf_addf(&url, "%s%s", c->base_url, path);
	curl_easy_setopt(x->h, CURLOPT_URL, url.data);
	buf_release(&url);
	if (c->socket_path && !absolute) {
		curl_easy_setopt(x->h, CURLOPT_UNIX_SOCKET_PATH, c->socket_path);
		curl_easy_setopt(x->h, CURLOPT_PROXY, "");
	}
	curl_easy_setopt(x->h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(x->h, CURLOPT_USERAGENT, "mmigrate/" MM_VERSION);
	curl_easy_setopt(x->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x->h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(x->h, CURLOPT_CONNECTTIMEOUT, c->connect_timeout_s);
	set_tls(c, x->h);
	set_callbacks(x);
	/* An empty Expect: stops curl waiting for 100-continue before bodies. */
	add_header(x, "Expect:");
	if (with_auth && !absolute && c->token && !c->socket_path)
		add_auth(x);
	return 0;
}

static void set_low_speed(struct xfer *x)
{
	curl_easy_setopt(x->h, CURLOPT_LOW_SPEED_LIMIT, x->c->min_speed_bps);
	curl_easy_setopt(x->h, CURLOPT_LOW_SPEED_TIME, x->c->min_speed_window_s);
}

/*
 * After one transfer attempt: an attempt that failed and moved less than the
 * floor on average adds its time to the client's stalled time; a complete or
 * fast enough attempt clears it. A server trickling a few bytes a second
 * makes "progress" on every attempt, so without this a resume loop would go
 * on forever. Returns ret, or MM_ERR once the stalled time reaches the deadline.
 */
static int account_stall(struct xfer *x, int ret, int64_t t0, int64_t bytes, struct mm_error *err)
{
	struct http_client *c = x->c;
	int64_t ms = mono_ms() - t0;

	if (ret == 0 || ret == MM_EINTR || (ms > 0 && bytes * 1000 / ms >= c->min_speed_bps)) {
		c->stalled_ms = 0;
		return ret;
	}
	if (ret != MM_ERETRY)
		return ret;
	c->stalled_ms += ms;
	if (c->stalled_ms < (int64_t)c->transfer_deadline_s * 1000)
		return ret;
	err_set(err, MM_ERR,
		"%s: the transfer stayed below %ld bytes/s for %lld s over its attempts "
		"(min_speed %ld B/s over min_speed_window %ld s, transfer_deadline %ld s); last: %.300s",
		x->shown, c->min_speed_bps, (long long)(c->stalled_ms / 1000), c->min_speed_bps,
		c->min_speed_window_s, c->transfer_deadline_s, x->errbuf[0] ? x->errbuf : "cut");
	c->stalled_ms = 0;
	return MM_ERR;
}

void http_set_transfer_limits(struct http_client *c, long min_speed_bps, long window_s, long deadline_s)
{
	if (min_speed_bps > 0)
		c->min_speed_bps = min_speed_bps;
	if (window_s > 0)
		c->min_speed_window_s = window_s;
	if (deadline_s > 0)
		c->transfer_deadline_s = deadline_s;
}

/* libcurl paces the transfer itself (a sleep between socket writes or reads,
 * averaged over the transfer): set per request, as curl_easy_reset clears it. */
static void set_rate_limit(struct xfer *x, CURLoption opt)
{
	if (x->c->rate_limit > 0)
		curl_easy_setopt(x->h, opt, (curl_off_t)(x->c->rate_limit / x->rate_share));
}

/* ---- outcome ------------------------------------------------------------ */

static int transient_curl(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SEND_FAIL_REWIND: return 1;
	default: return 0;
	}
}

/* 501 (feature off) and 505 will not change by asking again. */
static int transient_status(long st)
{
	return st == 408 || st == 429 || (st >= 500 && st <= 599 && st != 501 && st != 505);
}

/* One line of server text, control characters flattened, length capped. */
static void add_flat(struct buf *out, const char *s, size_t len)
{
	if (len > DETAIL_MAX)
		len = DETAIL_MAX;
	for (size_t i = 0; i < len; i++)
		buf_addc(out, (unsigned char)s[i] < ' ' ? ' ' : s[i]);
	buf_rtrim(out);
}

/* Server text with secrets removed before it is cut to length, so no prefix of one survives. */
static void add_flat_scrubbed(const struct http_client *c, struct buf *out, const char *s)
{
	struct buf b = BUF_INIT;

	buf_adds(&b, s);
	if (c)
		scrub_buf(c, &b);
	add_flat(out, buf_cstr(&b), b.len);
	http_wipe(b.data, b.len);
	buf_release(&b);
}

static int app_error(const struct http_client *c, const struct buf *body, char *app_id, size_t idlen,
		     struct buf *detail)
{
	struct mm_error lerr = MM_ERROR_INIT;
	cJSON *j = NULL;
	const cJSON *id, *msg, *det;
	int ok = 0;

	if (json_within_limits(buf_cstr(body), body->len, JSON_MAX_DEPTH, 10000, &lerr) == 0)
		j = cJSON_ParseWithLength(buf_cstr(body), body->len);

	if (!cJSON_IsObject(j))
		goto out;
	id = cJSON_GetObjectItemCaseSensitive(j, "id");
	msg = cJSON_GetObjectItemCaseSensitive(j, "message");
	det = cJSON_GetObjectItemCaseSensitive(j, "detailed_error");
	if (!cJSON_IsString(id) && !cJSON_IsString(msg))
		goto out;
	if (cJSON_IsString(id))
		copy_str(app_id, idlen, id->valuestring, strlen(id->valuestring));
	if (cJSON_IsString(msg))
		add_flat_scrubbed(c, detail, msg->valuestring);
	if (cJSON_IsString(det) && *det->valuestring) {
		buf_adds(detail, " (");
		add_flat_scrubbed(c, detail, det->valuestring);
		buf_adds(detail, ")");
	}
	ok = 1;
out:
	cJSON_Delete(j);
	return ok;
}

/* Proxies answer 502/504 in HTML: their <title> is the useful part. */
static void html_title(const char *s, struct buf *detail)
{
	const char *t = find_ci(s, "<title>"), *e;

	if (t && (e = find_ci(t, "</title>"))) {
		t += 7;
		add_flat(detail, t, (size_t)(e - t));
	} else {
		buf_adds(detail, "HTML answer (a proxy?)");
	}
}

static void describe_body(const struct http_client *c, const struct http_response *r, char *app_id,
			  size_t idlen, struct buf *detail)
{
	const char *s = buf_cstr(&r->body);

	app_id[0] = '\0';
	if (!r->body.len || app_error(c, &r->body, app_id, idlen, detail))
		return;
	if (find_ci(r->content_type, "html") || find_ci(s, "<html"))
		html_title(s, detail);
	else
		add_flat(detail, s + strspn(s, " \t\r\n"), strcspn(s + strspn(s, " \t\r\n"), "\r\n"));
}

static int status_error(struct xfer *x, struct mm_error *err)
{
	long st = x->resp->status;
	struct buf detail = BUF_INIT;
	char id[sizeof(err->app_id)];
	int code = st == 404 ? MM_ENOTFOUND : transient_status(st) ? MM_ERETRY : MM_ERR;

	/* A server that echoes the Authorization header must not leak it. */
	scrub_buf(x->c, &x->resp->body);
	describe_body(x->c, x->resp, id, sizeof(id), &detail);
	err_set(err, code, "%s: HTTP %ld%s%s%s%s", x->shown, st, *id ? " " : "", id, detail.len ? ": " : "",
		buf_cstr(&detail));
	err->http_status = st;
	err->retry_after_s = x->resp->retry_after_s > 0 ? x->resp->retry_after_s : 0;
	copy_str(err->app_id, sizeof(err->app_id), id, strlen(id));
	buf_release(&detail);
	return code;
}

static int local_error(struct xfer *x, struct mm_error *err)
{
	if (x->write_failed) {
		int code = err->code < 0 ? err->code : MM_ERR;

		err_prefix(err, "%s", x->shown);
		err->code = code;
		return code;
	}
	if (x->read_errno)
		return err_set(err, MM_ERR, "%s: cannot read the upload source: %s", x->shown,
			       x->src_err ? x->src_err : strerror(x->read_errno));
	if (x->short_read)
		return err_set(err, MM_ERR, "%s: the upload source ended after %lld of %lld bytes", x->shown,
			       (long long)x->up_sent, (long long)x->up_len);
	if (x->overflow && x->resp->content_length > 0)
		return err_set(err, MM_ERR, "%s: answer of %lld bytes is larger than the %zu this call accepts",
			       x->shown, (long long)x->resp->content_length, x->resp->body.max);
	if (x->overflow)
		return err_set(err, MM_ERR, "%s: answer larger than the %zu bytes this call accepts",
			       x->shown, x->resp->body.max);
	if (x->oversize)
		return err_set(err, MM_ERETRY,
			       "%s: the server sent more than the %lld bytes it announced; "
			       "kept those, dropped the rest",
			       x->shown, (long long)x->announced);
	return 0;
}

/* Turns curl's result and the status into 0 or an MM_E* code with err filled. */
static int xfer_result(struct xfer *x, CURLcode rc, struct mm_error *err)
{
	int code;

	if (x->stopped)
		return err_set(err, MM_EINTR, "%s: interrupted", x->shown);
	if ((code = local_error(x, err)) < 0)
		return code;
	if (x->refused)
		return 0; /* the caller of wants_body reports it */
	if (rc != CURLE_OK) {
		err_set(err, transient_curl(rc) ? MM_ERETRY : MM_ERR, "%s: %s", x->shown,
			*x->errbuf ? x->errbuf : curl_easy_strerror(rc));
		return err->code;
	}
	if ((x->resp->status >= 200 && x->resp->status < 300) || x->resp->status == 304)
		return 0;
	return status_error(x, err);
}

/* One INFO line per request attempt that started at t0. */
static void log_attempt(struct xfer *x, CURLcode rc, int64_t t0)
{
	if (rc == CURLE_OK)
		client_log(x->c, HTTP_LOG_INFO, "%s: HTTP %ld%s%s in %lld ms", x->shown, x->resp->status,
			   *x->resp->request_id ? ", request id " : "", x->resp->request_id,
			   (long long)(mono_ms() - t0));
	else
		client_log(x->c, HTTP_LOG_INFO, "%s: %s after %lld ms", x->shown,
			   *x->errbuf ? x->errbuf : curl_easy_strerror(rc), (long long)(mono_ms() - t0));
}

static CURLcode xfer_perform(struct xfer *x)
{
	int64_t t0 = mono_ms();
	CURLcode rc;

	if (x->c->should_stop && x->c->should_stop(x->c->stop_ctx)) {
		x->stopped = 1;
		return CURLE_ABORTED_BY_CALLBACK;
	}
	curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, x->headers);
	rc = curl_easy_perform(x->h);
	log_attempt(x, rc, t0);
	return rc;
}

/* ---- JSON calls with retries -------------------------------------------- */

enum retry_kind { RETRY_NEVER, RETRY_REFUSED, RETRY_TRANSIENT };

static enum retry_kind policy_for(const char *method, int flags)
{
	if (flags & HTTP_NO_RETRY)
		return RETRY_NEVER;
	if ((flags & HTTP_IDEMPOTENT) || !strcmp(method, "GET") || !strcmp(method, "PUT") ||
	    !strcmp(method, "DELETE"))
		return RETRY_TRANSIENT;
	return RETRY_REFUSED;
}

/*
 * A request that is not idempotent is only repeated when the server cannot
 * have acted on it: nothing was sent, or the answer says it was refused
 * before any handler ran (rate limiter 429, busy 503).
 */
static int may_retry(enum retry_kind p, long status, int nothing_sent)
{
	if (p == RETRY_NEVER)
		return 0;
	if (p == RETRY_TRANSIENT)
		return 1;
	return status == 429 || status == 503 || (status == 0 && nothing_sent);
}

/* Returns 1 when should_stop fired during the sleep. */
static int sleep_or_stop(struct http_client *c, long ms)
{
	int64_t until = mono_ms() + ms;

	for (;;) {
		int64_t left = until - mono_ms();
		struct timespec ts;

		if (c->should_stop && c->should_stop(c->stop_ctx))
			return 1;
		if (left <= 0)
			return 0;
		if (left > STOP_SLICE_MS)
			left = STOP_SLICE_MS;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)left * 1000000L;
		nanosleep(&ts, NULL);
	}
}

static int set_method(struct xfer *x, const char *payload, struct mm_error *err)
{
	CURL *h = x->h;
	const char *m = x->method;

	if (!strcmp(m, "GET") && !payload) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
		return 0;
	}
	if (strcmp(m, "POST") && strcmp(m, "PUT") && strcmp(m, "PATCH") && strcmp(m, "DELETE"))
		return err_set(err, MM_EINVAL, "%s: unsupported method", x->shown);
	if (strcmp(m, "POST"))
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
	if (payload || strcmp(m, "DELETE")) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload ? payload : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(payload ? strlen(payload) : 0));
		add_header(x, "Content-Type: application/json");
	}
	return 0;
}

static int json_attempt(struct http_client *c, const char *method, const char *path, const char *payload,
			int flags, struct http_response *resp, int *nothing_sent, struct mm_error *err)
{
	struct xfer x;
	long sent = 0;
	CURLcode rc;
	int ret;

	int fresh = policy_for(method, flags) != RETRY_TRANSIENT;

	xfer_init(&x, c, method, path, resp);
	resp->body.max = (flags & HTTP_LARGE_BODY) ? c->max_large_body : c->max_body;
	if ((ret = xfer_setup(&x, path, 1, err)) < 0 || (ret = set_method(&x, payload, err)) < 0)
		goto out;
	add_header(&x, "Accept: application/json");
	/* JSON may come gzipped; curl decodes it. Downloads never ask. */
	curl_easy_setopt(c->h, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c->h, CURLOPT_TIMEOUT, c->request_timeout_s);
	/*
	 * libcurl silently resends a request whose reused connection turns out
	 * dead before any answer byte. For a POST that creates a job or an
	 * upload session the server may already have acted on the first copy:
	 * two exports, two imports. A fresh connection is never "reused", so
	 * that retry cannot happen; the caller decides what to do instead.
	 */
	curl_easy_setopt(c->h, CURLOPT_FRESH_CONNECT, fresh ? 1L : 0L);
	rc = xfer_perform(&x);
	curl_easy_setopt(c->h, CURLOPT_FRESH_CONNECT, 0L);
	curl_easy_getinfo(c->h, CURLINFO_REQUEST_SIZE, &sent);
	*nothing_sent = sent == 0;
	ret = xfer_result(&x, rc, err);
out:
	free_headers(&x);
	return ret;
}

static int valid_request(const char *method, const char *path, struct mm_error *err)
{
	if (!method || !path || !*method)
		return err_set(err, MM_EINVAL, "http: missing method or path");
	if (path[0] != '/')
		return err_set(err, MM_EINVAL, "%s: path must start with '/'", method);
	if (strpbrk(path, " \t\r\n"))
		return err_set(err, MM_EINVAL, "%s: path holds white space", method);
	return 0;
}

/*
 * After a 401: 1 when the reauth hook put a new token on c (the request may
 * go again), 0 when there is no hook or we are inside it, <0 when renewing
 * failed (its reason is appended to err).
 */
static int renew_after_401(struct http_client *c, long status, struct mm_error *err)
{
	struct mm_error rerr = MM_ERROR_INIT;
	size_t len;
	int ret;

	if (status != 401 || !c->reauth || c->in_reauth)
		return 0;
	c->in_reauth = 1;
	ret = c->reauth(c->reauth_ctx, c, &rerr);
	c->in_reauth = 0;
	if (ret == 0)
		return 1;
	len = strlen(err->msg);
	snprintf(err->msg + len, sizeof(err->msg) - len, "; %s", rerr.msg);
	return MM_ERR;
}

int http_json(struct http_client *c, const char *method, const char *path, const cJSON *body, int flags,
	      struct http_response *resp, struct mm_error *err)
{
	enum retry_kind policy = policy_for(method ? method : "", flags);
	struct retry_state rs = RETRY_STATE_INIT;
	char *payload = NULL;
	int attempt = 0, ret, nothing_sent = 0, renewed = 0;

	if ((ret = valid_request(method, path, err)) < 0)
		return ret;
	if (body && !(payload = cJSON_PrintUnformatted(body)))
		return err_set(err, MM_ERR, "%s %s: cannot serialise the request", method, path);
	for (;; attempt++) {
		long delay;

		err_clear(err);
		ret = json_attempt(c, method, path, payload, flags, resp, &nothing_sent, err);
		if (ret < 0 && !renewed && renew_after_401(c, resp->status, err) == 1) {
			renewed = 1;
			attempt--; /* a renewed session is not a failed try */
			continue;
		}
		if (ret != MM_ERETRY || !may_retry(policy, resp->status, nothing_sent))
			break;
		if ((delay = retry_next(&c->retry, &rs, resp->retry_after_s)) < 0)
			break;
		client_log(c, HTTP_LOG_WARN, "%s; retry %d of %d in %ld ms", err->msg, attempt + 1,
			   c->retry.retries, delay);
		if (sleep_or_stop(c, delay)) {
			ret = err_set(err, MM_EINTR, "%s %.*s: interrupted", method, (int)strcspn(path, "?#"),
				      path);
			break;
		}
	}
	if (ret == MM_ERETRY && attempt > 0) {
		size_t len = strlen(err->msg);

		snprintf(err->msg + len, sizeof(err->msg) - len, " (after %d tries)", attempt + 1);
	}
	if (payload) {
		http_wipe(payload, strlen(payload));
		cJSON_free(payload);
	}
	return finish_err(c, ret, err);
}

int http_parse_app_error(const char *body, size_t len, char *app_id, size_t idlen, struct buf *detail)
{
	struct buf b = BUF_INIT;
	int ok;

	buf_add(&b, body, len);
	app_id[0] = '\0';
	ok = app_error(NULL, &b, app_id, idlen, detail);
	buf_release(&b);
	return ok ? 0 : -1;
}

/* ---- streaming ---------------------------------------------------------- */

static void fill_dl_result(const struct xfer *x, struct http_dl_result *res)
{
	res->status = x->resp->status;
	res->content_length = x->resp->content_length;
	res->range_start = x->range_start;
	res->range_end = x->range_end;
	res->range_total = x->range_total;
	res->received = x->received;
	res->retry_after_s = x->resp->retry_after_s;
	copy_str(res->content_type, sizeof(res->content_type), x->resp->content_type,
		 strlen(x->resp->content_type));
}

/* The body of a complete answer must be as long as its headers promised. */
static int check_dl_complete(struct xfer *x, struct mm_error *err)
{
	int64_t want = -1;

	if (!x->decided && (x->resp->status == 200 || x->resp->status == 206) && decide(x) < 0 &&
	    x->write_failed)
		return local_error(x, err); /* an empty body never reached on_body */
	if (x->refused)
		return err_set(err, MM_ERR, "%s: asked for bytes from %lld, server answered HTTP %ld%s",
			       x->shown, (long long)x->want_offset, x->resp->status,
			       x->resp->status == 200 ? " with the whole file (Range ignored)"
						      : " for another range");
	if (x->resp->status != 200 && x->resp->status != 206)
		return err_set(err, MM_ERR, "%s: unexpected HTTP %ld for a download", x->shown,
			       x->resp->status);
	if (x->resp->status == 206 && x->range_end >= 0)
		want = x->range_end - x->range_start + 1;
	else if (x->resp->content_length >= 0)
		want = x->resp->content_length;
	if (want >= 0 && x->received != want)
		return err_set(err, MM_ERETRY, "%s: body ended after %lld of %lld bytes", x->shown,
			       (long long)x->received, (long long)want);
	return 0;
}

int http_download_range(struct http_client *c, const char *path, int64_t offset, int with_auth,
			http_write_fn write, void *ctx, struct http_dl_result *res, struct mm_error *err)
{
	struct http_sink sink = { write, NULL, ctx };

	return http_download(c, path, offset, -1, with_auth, &sink, res, err);
}

int http_download_span(struct http_client *c, const char *path, int64_t offset, int64_t end, int with_auth,
		       http_write_fn write, void *ctx, struct http_dl_result *res, struct mm_error *err)
{
	struct http_sink sink = { write, NULL, ctx };

	return http_download(c, path, offset, end, with_auth, &sink, res, err);
}

/*
 * Sets x up (on x->h) to fetch offset..end (end -1: open) into sink, resp
 * holding the error body: everything but performing it. <0 with err set.
 */
static int dl_prepare(struct xfer *x, struct http_response *resp, const char *path, int64_t offset,
		      int64_t end, int with_auth, const struct http_sink *sink, struct mm_error *err)
{
	char range[48];
	int ret;

	resp->body.max = ERROR_BODY_MAX;
	x->want_offset = offset;
	x->want_end = end;
	x->write = sink->write;
	x->head = sink->head;
	x->write_ctx = sink->ctx;
	x->write_err = err;
	if ((ret = xfer_setup(x, path, with_auth, err)) < 0)
		return ret;
	/* One range, never If-Range: Mattermost sends no validator, so
	 * If-Range would always get the whole file. */
	if (end >= 0) {
		snprintf(range, sizeof(range), "%lld-%lld", (long long)offset, (long long)end);
		curl_easy_setopt(x->h, CURLOPT_RANGE, range);
	} else if (offset > 0) {
		snprintf(range, sizeof(range), "%lld-", (long long)offset);
		curl_easy_setopt(x->h, CURLOPT_RANGE, range);
	}
	curl_easy_setopt(x->h, CURLOPT_BUFFERSIZE, 128L * 1024);
	set_low_speed(x);
	set_rate_limit(x, CURLOPT_MAX_RECV_SPEED_LARGE);
	curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, x->headers);
	err_clear(err);
	return 0;
}

/* After a download attempt that started at t0: its outcome, res filled, x's headers freed. */
static int dl_conclude(struct xfer *x, int ret, CURLcode rc, int64_t t0, int with_auth,
		       struct http_dl_result *res, struct mm_error *err)
{
	if (ret == 0) {
		ret = xfer_result(x, rc, err);
		if (ret == 0)
			ret = check_dl_complete(x, err);
		ret = account_stall(x, ret, t0, x->received, err);
	}
	fill_dl_result(x, res);
	free_headers(x);
	http_response_clear(x->resp);
	if (ret < 0 && with_auth)
		renew_after_401(x->c, res->status, err);
	return finish_err(x->c, ret, err);
}

static int dl_args_ok(const char *path, const struct http_sink *sink, int64_t offset, int64_t end)
{
	return path && sink && sink->write && offset >= 0 && (end < 0 || end >= offset);
}

int http_download(struct http_client *c, const char *path, int64_t offset, int64_t end, int with_auth,
		  const struct http_sink *sink, struct http_dl_result *res, struct mm_error *err)
{
	struct http_response resp = HTTP_RESPONSE_INIT;
	struct xfer x;
	int64_t t0;
	CURLcode rc = CURLE_OK;
	int ret;

	memset(res, 0, sizeof(*res));
	res->content_length = res->range_start = res->range_end = res->range_total = -1;
	if (!dl_args_ok(path, sink, offset, end))
		return err_set(err, MM_EINVAL, "http: bad download arguments");
	xfer_init(&x, c, "GET", path, &resp);
	t0 = mono_ms();
	if ((ret = dl_prepare(&x, &resp, path, offset, end, with_auth, sink, err)) == 0)
		rc = xfer_perform(&x);
	return dl_conclude(&x, ret, rc, t0, with_auth, res, err);
}

/* ---- several downloads at once (curl multi, one thread) ---------------- */

struct pool_slot {
	CURL *h;
	struct xfer x;
	struct http_response resp;
	struct mm_error err;
	int64_t t0;
	int with_auth, busy;
};

struct http_pool {
	struct http_client *c;
	CURLM *m;
	int n;
	struct pool_slot *slot;
};

struct http_pool *http_pool_new(struct http_client *c, int n, struct mm_error *err)
{
	struct http_pool *p;
	int ok;

	if (n < 1) {
		err_set(err, MM_EINVAL, "http: a pool needs at least one slot");
		return NULL;
	}
	p = xcalloc(1, sizeof(*p));
	p->c = c;
	p->n = n;
	p->m = curl_multi_init();
	p->slot = xcalloc((size_t)n, sizeof(*p->slot));
	ok = p->m != NULL;
	for (int i = 0; i < n; i++) {
		struct http_response init = HTTP_RESPONSE_INIT;

		p->slot[i].resp = init;
		p->slot[i].h = curl_easy_init();
		ok = ok && p->slot[i].h;
	}
	if (!ok) {
		http_pool_free(p);
		err_set(err, MM_ERR, "http: cannot create curl handles");
		return NULL;
	}
	return p;
}

/* Takes a busy slot out of the multi handle and frees what its attempt held. */
static void slot_release(struct http_pool *p, struct pool_slot *s)
{
	if (!s->busy)
		return;
	curl_multi_remove_handle(p->m, s->h);
	free_headers(&s->x);
	http_response_clear(&s->resp);
	s->busy = 0;
}

void http_pool_cancel(struct http_pool *p, int slot)
{
	if (p && slot >= 0 && slot < p->n)
		slot_release(p, &p->slot[slot]);
}

void http_pool_free(struct http_pool *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->n; i++) {
		slot_release(p, &p->slot[i]);
		if (p->slot[i].h)
			curl_easy_cleanup(p->slot[i].h);
	}
	if (p->m)
		curl_multi_cleanup(p->m);
	free(p->slot);
	free(p);
}

int http_pool_start(struct http_pool *p, int slot, const char *path, int64_t offset, int64_t end,
		    int with_auth, const struct http_sink *sink, struct mm_error *err)
{
	struct pool_slot *s;
	int ret;

	if (slot < 0 || slot >= p->n || p->slot[slot].busy || !dl_args_ok(path, sink, offset, end))
		return err_set(err, MM_EINVAL, "http: bad pool download arguments");
	s = &p->slot[slot];
	xfer_init(&s->x, p->c, "GET", path, &s->resp);
	s->x.h = s->h;
	s->x.rate_share = p->n;
	if ((ret = dl_prepare(&s->x, &s->resp, path, offset, end, with_auth, sink, &s->err)) < 0) {
		free_headers(&s->x);
		http_response_clear(&s->resp);
		*err = s->err;
		return ret;
	}
	curl_easy_setopt(s->h, CURLOPT_PRIVATE, s);
	if (curl_multi_add_handle(p->m, s->h) != CURLM_OK) {
		free_headers(&s->x);
		http_response_clear(&s->resp);
		return err_set(err, MM_ERR, "%s: cannot start the transfer", s->x.shown);
	}
	s->busy = 1;
	s->with_auth = with_auth;
	s->t0 = mono_ms();
	return 0;
}

/* A transfer curl reports done: its outcome like http_download's, the slot freed. */
static int slot_done(struct http_pool *p, CURL *h, CURLcode result, int *rc, struct http_dl_result *res,
		     struct mm_error *err)
{
	struct pool_slot *s = NULL;

	curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **)&s);
	curl_multi_remove_handle(p->m, h);
	s->busy = 0;
	log_attempt(&s->x, result, s->t0);
	*rc = dl_conclude(&s->x, 0, result, s->t0, s->with_auth, res, &s->err);
	*err = s->err;
	return (int)(s - p->slot);
}

int http_pool_wait(struct http_pool *p, long timeout_ms, int *rc, struct http_dl_result *res,
		   struct mm_error *err)
{
	int64_t deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);

	for (;;) {
		int running = 0, left = 0;
		CURLMsg *msg;
		int64_t now;

		curl_multi_perform(p->m, &running);
		while ((msg = curl_multi_info_read(p->m, &left)))
			if (msg->msg == CURLMSG_DONE)
				return slot_done(p, msg->easy_handle, msg->data.result, rc, res, err);
		if ((now = mono_ms()) >= deadline)
			return -1;
		/* short slices: should_stop is polled by the progress callbacks */
		curl_multi_poll(p->m, NULL, 0,
				(int)(deadline - now < STOP_SLICE_MS ? deadline - now : STOP_SLICE_MS), NULL);
	}
}

static int upload_body(struct http_client *c, const char *path, int fd, http_source_fn src, void *ctx,
		       int64_t offset, int64_t length, struct http_response *resp, struct mm_error *err);

void http_set_rate_limit(struct http_client *c, int64_t bytes_per_s)
{
	c->rate_limit = bytes_per_s > 0 ? bytes_per_s : 0;
}

int http_upload_chunk(struct http_client *c, const char *path, int fd, int64_t offset, int64_t length,
		      struct http_response *resp, struct mm_error *err)
{
	if (fd < 0)
		return err_set(err, MM_EINVAL, "POST %s: bad chunk (no file)", path);
	return upload_body(c, path, fd, NULL, NULL, offset, length, resp, err);
}

int http_upload_stream(struct http_client *c, const char *path, http_source_fn src, void *ctx, int64_t length,
		       struct http_response *resp, struct mm_error *err)
{
	if (!src)
		return err_set(err, MM_EINVAL, "POST %s: bad chunk (no source)", path);
	return upload_body(c, path, -1, src, ctx, 0, length, resp, err);
}

static int upload_body(struct http_client *c, const char *path, int fd, http_source_fn src, void *ctx,
		       int64_t offset, int64_t length, struct http_response *resp, struct mm_error *err)
{
	struct xfer x;
	int64_t t0;
	CURLcode rc;
	int ret;

	if ((ret = valid_request("POST", path, err)) < 0)
		return ret;
	if (offset < 0 || length <= 0)
		return err_set(err, MM_EINVAL, "POST %s: bad chunk (offset %lld, length %lld)", path,
			       (long long)offset, (long long)length);
	xfer_init(&x, c, "POST", path, resp);
	resp->body.max = c->max_body;
	x.fd = fd;
	x.src = src;
	x.src_ctx = ctx;
	x.up_off = offset;
	x.up_len = length;
	if ((ret = xfer_setup(&x, path, 1, err)) < 0)
		goto out;
	/* An exact Content-Length: the server checks it against what is left,
	 * and with chunked encoding it would silently drop extra bytes. No seek
	 * callback either, so curl can never resend the body on its own. */
	curl_easy_setopt(c->h, CURLOPT_POST, 1L);
	curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)length);
	curl_easy_setopt(c->h, CURLOPT_READFUNCTION, on_read);
	curl_easy_setopt(c->h, CURLOPT_READDATA, &x);
	curl_easy_setopt(c->h, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
	add_header(&x, "Content-Type: application/octet-stream");
	add_header(&x, "Accept: application/json");
	set_low_speed(&x);
	set_rate_limit(&x, CURLOPT_MAX_SEND_SPEED_LARGE);
	err_clear(err);
	t0 = mono_ms();
	rc = xfer_perform(&x);
	ret = xfer_result(&x, rc, err);
	ret = account_stall(&x, ret, t0, x.up_sent, err);
out:
	free_headers(&x);
	if (ret < 0)
		renew_after_401(c, resp->status, err);
	return finish_err(c, ret, err);
}

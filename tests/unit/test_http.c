/*
 * test_http: the HTTP layer and the Mattermost calls against httpd_stub.py,
 * started here on 127.0.0.1 and on a unix socket, killed at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "http.h"
#include "mm.h"
#include "hash.h"
#include "util.h"

#define TOKEN "stub-token-not-a-secret-01"
#define JOB_ID "jobjobjobjobjobjobjobjob12"

static char base_url[64];
static char dir[] = "/tmp/mmhttpXXXXXX";
static char sock_path[128];
static pid_t stub_pid = -1;

/* ---- stub server -------------------------------------------------------- */

static int read_port(const char *path)
{
	char line[16] = "";
	int64_t port = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	if (fgets(line, sizeof(line), f))
		line[strcspn(line, "\n")] = '\0';
	fclose(f);
	return parse_i64(line, &port) == 0 ? (int)port : -1;
}

static int start_stub(void)
{
	char port_file[128];
	int port = -1;

	if (!mkdtemp(dir))
		return -1;
	snprintf(port_file, sizeof(port_file), "%s/port", dir);
	snprintf(sock_path, sizeof(sock_path), "%s/sock", dir);
	stub_pid = fork();
	if (stub_pid == 0) {
		execlp("python3", "python3", "httpd_stub.py", port_file, sock_path, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200 && (port = read_port(port_file)) < 0; i++)
		usleep(50 * 1000);
	if (port < 0)
		return -1;
	snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%d", port);
	unlink(port_file);
	return 0;
}

static void stop_stub(void)
{
	if (stub_pid > 0) {
		kill(stub_pid, SIGTERM);
		waitpid(stub_pid, NULL, 0);
	}
	unlink(sock_path);
	rmdir(dir);
}

/* ---- helpers ------------------------------------------------------------ */

static void collect_log(void *ctx, enum http_log_level level, const char *line)
{
	buf_addf(ctx, "%s\n", line);
}

static struct http_client *client(struct http_opts *o)
{
	struct mm_error err = MM_ERROR_INIT;
	struct http_client *c;

	if (!o->socket_path)
		o->base_url = base_url;
	if (!o->backoff_base_ms)
		o->backoff_base_ms = 5;
	if (!o->backoff_cap_ms)
		o->backoff_cap_ms = 20;
	c = http_client_new(o, &err);
	if (!c)
		fprintf(stderr, "http_client_new: %s\n", err.msg);
	return c;
}

/* GET path as JSON and hand back the parsed answer (caller frees). */
static cJSON *get_json(struct http_client *c, const char *path)
{
	struct http_response r = HTTP_RESPONSE_INIT;
	struct mm_error err = MM_ERROR_INIT;
	cJSON *j = NULL;

	if (http_json(c, "GET", path, NULL, 0, &r, &err) == 0)
		j = cJSON_Parse(buf_cstr(&r.body));
	else
		fprintf(stderr, "%s\n", err.msg);
	http_response_clear(&r);
	return j;
}

static int hits(struct http_client *c, const char *key)
{
	char path[64];
	cJSON *j;
	int n;

	snprintf(path, sizeof(path), "/count?key=%s", key);
	j = get_json(c, path);
	n = j ? cJSON_GetObjectItem(j, "hits")->valueint : -1;
	cJSON_Delete(j);
	return n;
}

static unsigned char file_byte(int64_t i)
{
	return (unsigned char)((i * 7 + 3) % 251);
}

static int sink(void *ctx, const void *data, size_t len, struct mm_error *err)
{
	return buf_add(ctx, data, len) < 0 ? err_set(err, MM_ERR, "sink full") : 0;
}

static int bytes_match(const struct buf *b, int64_t from)
{
	for (size_t i = 0; i < b->len; i++)
		if ((unsigned char)b->data[i] != file_byte(from + (int64_t)i))
			return 0;
	return 1;
}

/* ---- client options ----------------------------------------------------- */

static void test_client_opts(void)
{
	struct buf log = BUF_INIT;
	struct http_opts o = { .base_url = "ftp://example.com" };
	struct mm_error err = MM_ERROR_INIT;
	struct http_client *c;

	CHECK(http_client_new(&o, &err) == NULL && err.code == MM_EINVAL);
	o.base_url = "https://example.com";
	o.ca_file = "/nonexistent/ca.pem";
	CHECK(http_client_new(&o, &err) == NULL);
	CHECK_CONTAINS(err.msg, "cannot read CA file '/nonexistent/ca.pem'");
	o.ca_file = NULL;
	o.insecure = 1;
	o.log = collect_log;
	o.log_ctx = &log;
	c = http_client_new(&o, &err);
	CHECK(c != NULL);
	CHECK_CONTAINS(buf_cstr(&log), "TLS certificate verification is disabled for 'https://example.com'");
	http_client_free(c);
	buf_release(&log);
}

/* ---- JSON calls --------------------------------------------------------- */

static void test_bearer_get(void)
{
	struct http_opts o = { 0 };
	struct http_client *c = client(&o);
	struct http_response r = HTTP_RESPONSE_INIT;
	struct mm_error err = MM_ERROR_INIT;

	CHECK(http_set_token(c, "bad\r\nInjected: 1") < 0);
	CHECK(http_set_token(c, TOKEN) == 0);
	CHECK(http_json(c, "GET", "/api/v4/users/me", NULL, 0, &r, &err) == 0);
	CHECK(r.status == 200);
	CHECK_STR(r.version_id, "9.11.2.12345.abcdef.true");
	CHECK_CONTAINS(buf_cstr(&r.body), "\"admin\"");

	http_set_token(c, NULL);
	CHECK(http_json(c, "GET", "/api/v4/users/me", NULL, 0, &r, &err) == MM_ERR);
	CHECK(err.http_status == 401);
	CHECK_STR(err.app_id, "api.context.session_expired.app_error");
	CHECK_STR(err.msg, "GET /api/v4/users/me: HTTP 401 api.context.session_expired.app_error: "
			   "Invalid or expired session, please login again.");
	http_response_clear(&r);
	http_client_free(c);
}

static void test_headers_and_reuse(void)
{
	struct http_opts o = { 0 };
	struct http_client *c = client(&o);
	cJSON *a, *b;

	http_set_token(c, TOKEN);
	a = get_json(c, "/echo");
	b = get_json(c, "/echo");
	CHECK(a && b);
	if (a && b) {
		CHECK(!strncmp(cJSON_GetObjectItem(a, "ua")->valuestring, "mmigrate/", 9));
		CHECK(cJSON_IsTrue(cJSON_GetObjectItem(a, "auth")));
		CHECK_STR(cJSON_GetObjectItem(a, "x_requested_with")->valuestring, "");
		CHECK_STR(cJSON_GetObjectItem(a, "cookie")->valuestring, "");
		/* the same client port: one connection, reused */
		CHECK(cJSON_GetObjectItem(a, "port")->valueint == cJSON_GetObjectItem(b, "port")->valueint);
	}
	cJSON_Delete(a);
	cJSON_Delete(b);
	http_client_free(c);
}

static void test_app_error_redacted(void)
{
	struct buf log = BUF_INIT;
	struct http_opts o = { .log = collect_log, .log_ctx = &log, .log_level = HTTP_LOG_TRACE };
	struct http_client *c = client(&o);
	struct http_response r = HTTP_RESPONSE_INIT;
	struct mm_error err = MM_ERROR_INIT;

	http_set_token(c, TOKEN);
	CHECK(http_json(c, "GET", "/apperror?secret=s3cr3t", NULL, 0, &r, &err) == MM_ERR);
	CHECK(err.http_status == 400);
	CHECK_STR(err.app_id, "api.test.app_error");
	CHECK_CONTAINS(err.msg,
		       "GET /apperror: HTTP 400 api.test.app_error: Cannot do it; you sent Bearer <redacted>");
	CHECK(!strstr(err.msg, TOKEN));
	CHECK(!strstr(err.msg, "s3cr3t"));
	CHECK_CONTAINS(buf_cstr(&log), "Authorization: <redacted>");
	CHECK(!strstr(buf_cstr(&log), TOKEN));
	CHECK(!strstr(buf_cstr(&log), "s3cr3t"));
	if (getenv("TEST_HTTP_VERBOSE"))
		fputs(buf_cstr(&log), stderr);
	buf_release(&log);
	http_response_clear(&r);
	http_client_free(c);
}

static void test_plain_and_html_errors(void)
{
	struct http_opts o = { 0 };
	struct http_client *c = client(&o);
	struct http_response r = HTTP_RESPONSE_INIT;
	struct mm_error err = MM_ERROR_INIT;

	CHECK(http_json(c, "GET", "/html", NULL, HTTP_NO_RETRY, &r, &err) == MM_ERETRY);
	CHECK(err.http_status == 502);
	CHECK_STR(err.msg, "GET /html: HTTP 502: 502 Bad Gateway");
	CHECK(http_json(c, "GET", "/nowhere", NULL, 0, &r, &err) == MM_ENOTFOUND);
	CHECK_STR(err.app_id, "api.context.404.app_error");
	http_response_clear(&r);
	http_client_free(c);
}

static void test_retry_after(void)
{
	struct http_opts o = { 0 };
	struct http_client *c = client(&o);
	struct http_response r = HTTP_RESPONSE_INIT;
	struct mm_error err = MM_ERROR_INIT;
	int64_t t0 = mono_ms();

	CHECK(http_json(c, "GET", "/rate?key=rate1", NULL, 0, &r, &err) == 0);
	CHECK(mono_ms() - t0 >= 950); /* Retry-After: 1, though backoff alone would be ≤ 20 ms */
	CHECK(hits(c, "rate1") == 2);

	/* with no retries left the plain-text 429 comes back as it is */
	http_client_free(c);
	o.retries = HTTP_RETRIES_NONE;
	c = client(&o);
	CHECK(http_json(c, "GET", "/rate?key=rate2", NULL, 0, &r, &err) == MM_ERETRY);
	CHECK(err.http_status == 429);
	CHECK_STR(err.msg, "GET /rate: HTTP 429: limit exceeded");
	http_response_clear(&r);
	http_client_free(c);
}

static void test_busy_retries(void)
{
	struct http_opts o = { .retries = 2 };
	struct http_client *c = client(&o);
	struct http_response r = HTTP_RESPONSE_INIT;
	struct mm_error err = MM_ERROR_INIT;

	CHECK(http_json(c, "GET", "/busy?key=b1&n=2", NULL, 0, &r, &err) == 0);
	CHECK(hits(c, "b1") == 3);
	CHECK(http_json(c, "GET", "/busy?key=b2&n=9", NULL, 0, &r, &err) == MM_ERETRY);
	CHECK(hits(c, "b2") == 3);
	CHECK_CONTAINS(err.msg, "HTTP 503 api.context.server_busy.app_error: Server is busy (after 3 tries)");

	/* creates: one attempt only */
	CHECK(http_json(c, "POST", "/busy?key=b3&n=9", NULL, HTTP_NO_RETRY, &r, &err) == MM_ERETRY);
	CHECK(hits(c, "b3") == 1);
	/* a plain POST is repeated only when refused (503), not after a 500 */
	CHECK(http_json(c, "POST", "/busy?key=b4&n=1", NULL, 0, &r, &err) == 0);
	CHECK(hits(c, "b4") == 2);
	CHECK(http_json(c, "POST", "/busy?key=b5&n=1&code=500", NULL, 0, &r, &err) == MM_ERETRY);
	CHECK(hits(c, "b5") == 1);
	http_response_clear(&r);
	http_client_free(c);
}

static void test_connect_failure(void)
{
	struct http_opts o = { .retries = 1, .connect_timeout_s = 2 };
	struct http_client *c;
	struct http_response r = HTTP_RESPONSE_INIT;
	struct mm_error err = MM_ERROR_INIT;
	char saved[64];

	memcpy(saved, base_url, sizeof(saved));
	snprintf(base_url, sizeof(base_url), "http://127.0.0.1:1/");
	c = client(&o);
	CHECK(http_json(c, "POST", "/api/v4/jobs", NULL, HTTP_NO_RETRY, &r, &err) == MM_ERETRY);
	CHECK_CONTAINS(err.msg, "POST /api/v4/jobs: ");
	CHECK(err.http_status == 0);
	CHECK(http_json(c, "GET", "/x", NULL, 0, &r, &err) == MM_ERETRY);
	CHECK_CONTAINS(err.msg, "(after 2 tries)");
	memcpy(base_url, saved, sizeof(saved));
	http_response_clear(&r);
	http_client_free(c);
}

static int64_t stop_at;

static int stop_after_deadline(void *ctx)
{
	return mono_ms() >= stop_at;
}

static void test_stop_during_backoff(void)
{
	struct http_opts o = { .should_stop = stop_after_deadline };
	struct http_client *c = client(&o);
	struct http_response r = HTTP_RESPONSE_INIT;
	struct mm_error err = MM_ERROR_INIT;
	int64_t t0 = mono_ms();

	stop_at = t0 + 300;
	/* Retry-After: 1 makes the sleep long enough to be cut */
	CHECK(http_json(c, "GET", "/rate?key=s1", NULL, 0, &r, &err) == MM_EINTR);
	CHECK(mono_ms() - t0 < 800);
	CHECK_STR(err.msg, "GET /rate: interrupted");
	http_response_clear(&r);
	http_client_free(c);
}

/* ---- downloads ---------------------------------------------------------- */

static void test_download_full_and_range(void)
{
	struct http_opts o = { 0 };
	struct http_client *c = client(&o);
	struct http_dl_result res;
	struct mm_error err = MM_ERROR_INIT;
	struct buf got = BUF_INIT;
	cJSON *h;

	http_set_token(c, TOKEN);
	CHECK(http_download_range(c, "/file?size=100000", 0, 1, sink, &got, &res, &err) == 0);
	CHECK(res.status == 200 && res.received == 100000 && res.content_length == 100000);
	CHECK(got.len == 100000 && bytes_match(&got, 0));
	CHECK_STR(res.content_type, "application/zip");

	buf_reset(&got);
	CHECK(http_download_range(c, "/file?size=100000", 40000, 1, sink, &got, &res, &err) == 0);
	CHECK(res.status == 206);
	CHECK(res.range_start == 40000 && res.range_end == 99999 && res.range_total == 100000);
	CHECK(res.content_length == 60000 && res.received == 60000);
	CHECK(got.len == 60000 && bytes_match(&got, 40000));
	h = get_json(c, "/lastfile");
	CHECK(h != NULL);
	if (h) {
		CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(h, "range")), "bytes=40000-");
		CHECK(!cJSON_GetObjectItem(h, "if-range"));
		CHECK(!cJSON_GetObjectItem(h, "accept-encoding")); /* never gzip an archive */
		CHECK(cJSON_GetObjectItem(h, "authorization") != NULL);
	}
	cJSON_Delete(h);
	buf_release(&got);
	http_client_free(c);
}

static void test_download_416_and_refusals(void)
{
	struct http_opts o = { 0 };
	struct http_client *c = client(&o);
	struct http_dl_result res;
	struct mm_error err = MM_ERROR_INIT;
	struct buf got = BUF_INIT;

	CHECK(http_download_range(c, "/file?size=100000", 100000, 1, sink, &got, &res, &err) == MM_ERR);
	CHECK(err.http_status == 416 && res.status == 416);
	CHECK(res.range_total == 100000 && res.received == 0 && got.len == 0);
	CHECK_CONTAINS(err.msg, "GET /file: HTTP 416: invalid range");

	/* a proxy that drops Range: nothing may be appended */
	CHECK(http_download_range(c, "/file?size=1000&ignore_range=1", 10, 1, sink, &got, &res, &err) == MM_ERR);
	CHECK(res.status == 200 && res.received == 0 && got.len == 0);
	CHECK_CONTAINS(err.msg, "Range ignored");
	CHECK(http_download_range(c, "/file?size=1000&wrong_start=1", 10, 1, sink, &got, &res, &err) == MM_ERR);
	CHECK(res.status == 206 && res.range_start == 11 && got.len == 0);
	buf_release(&got);
	http_client_free(c);
}

/* A head hook: records what the headers said, and whether any byte came before it. */
struct heard {
	struct buf body;
	struct http_dl_result seen;
	int calls, bytes_before, refuse;
};

static int heard_head(void *ctx, const struct http_dl_result *res, struct mm_error *err)
{
	struct heard *h = ctx;

	h->calls++;
	h->bytes_before = (int)h->body.len;
	h->seen = *res;
	return h->refuse ? err_set(err, MM_ERR, "another size") : 0;
}

static int heard_body(void *ctx, const void *data, size_t len, struct mm_error *err)
{
	return sink(&((struct heard *)ctx)->body, data, len, err);
}

static void test_download_head_hook(void)
{
	struct http_opts o = { 0 };
	struct http_client *c = client(&o);
	struct http_dl_result res;
	struct mm_error err = MM_ERROR_INIT;
	struct heard h = { BUF_INIT };
	struct http_sink s = { heard_body, heard_head, &h };

	CHECK(http_download(c, "/file?size=100000", 40000, -1, 1, &s, &res, &err) == 0);
	CHECK(h.calls == 1 && h.bytes_before == 0 && h.body.len == 60000);
	CHECK(h.seen.status == 206 && h.seen.range_total == 100000 && h.seen.received == 0);

	/* refused at the headers: not one byte written, the hook's message kept */
	buf_reset(&h.body);
	h.refuse = 1;
	h.calls = 0;
	CHECK(http_download(c, "/file?size=100000", 0, -1, 1, &s, &res, &err) == MM_ERR);
	CHECK(h.calls == 1 && h.body.len == 0 && h.seen.content_length == 100000);
	CHECK_CONTAINS(err.msg, "another size");

	/* a 416 has no body to feed: the hook is not called */
	h.calls = 0;
	CHECK(http_download(c, "/file?size=100000", 100000, -1, 1, &s, &res, &err) == MM_ERR);
	CHECK(h.calls == 0 && err.http_status == 416);
	buf_release(&h.body);
	http_client_free(c);
}

/* Two ranges at once through a pool: each gets exactly its bytes; a wait with nothing running times out. */
static void test_download_pool(void)
{
	struct http_opts o = { 0 };
	struct http_client *c = client(&o);
	struct http_pool *p = http_pool_new(c, 2, &(struct mm_error)MM_ERROR_INIT);
	struct buf got[2] = { BUF_INIT, BUF_INIT };
	struct http_sink s0 = { sink, NULL, &got[0] }, s1 = { sink, NULL, &got[1] };
	struct http_dl_result res;
	struct mm_error err = MM_ERROR_INIT;
	int rc = -1, ended = 0;

	CHECK(p != NULL);
	if (!p)
		goto out;
	http_set_token(c, TOKEN);
	CHECK(http_pool_start(p, 0, "/file?size=100000", 0, 49999, 1, &s0, &err) == 0);
	CHECK(http_pool_start(p, 1, "/file?size=100000", 50000, 99999, 1, &s1, &err) == 0);
	CHECK(http_pool_start(p, 1, "/file?size=100000", 0, 9, 1, &s1, &err) == MM_EINVAL); /* busy */
	for (int i = 0; i < 100 && ended < 2; i++) {
		int slot = http_pool_wait(p, 1000, &rc, &res, &err);

		if (slot < 0)
			continue;
		ended++;
		CHECK(rc == 0 && res.status == 206 && res.range_total == 100000 && res.received == 50000);
	}
	CHECK(ended == 2);
	CHECK(got[0].len == 50000 && bytes_match(&got[0], 0));
	CHECK(got[1].len == 50000 && bytes_match(&got[1], 50000));
	CHECK(http_pool_wait(p, 50, &rc, &res, &err) == -1);
out:
	http_pool_free(p);
	buf_release(&got[0]);
	buf_release(&got[1]);
	http_client_free(c);
}

static void test_download_cut(void)
{
	struct http_opts o = { 0 };
	struct http_client *c = client(&o);
	struct http_dl_result res;
	struct mm_error err = MM_ERROR_INIT;
	struct buf got = BUF_INIT;

	CHECK(http_download_range(c, "/cut?size=100000", 0, 1, sink, &got, &res, &err) == MM_ERETRY);
	CHECK(res.status == 200 && res.received == 50000 && got.len == 50000);
	CHECK(bytes_match(&got, 0));
	CHECK_CONTAINS(err.msg, "GET /cut: ");
	buf_release(&got);
	http_client_free(c);
}

static void test_download_absolute_url(void)
{
	struct http_opts o = { 0 };
	struct http_client *c = client(&o);
	struct http_dl_result res;
	struct mm_error err = MM_ERROR_INIT;
	struct buf got = BUF_INIT, url = BUF_INIT;
	cJSON *h;

	http_set_token(c, TOKEN);
	buf_addf(&url, "%s/file?size=10&X-Amz-Signature=sig123", base_url);
	CHECK(http_download_range(c, url.data, 0, 1, sink, &got, &res, &err) == 0);
	CHECK(got.len == 10);
	h = get_json(c, "/lastfile");
	CHECK(h && !cJSON_GetObjectItem(h, "authorization")); /* presigned links get no token */
	cJSON_Delete(h);
	buf_reset(&url);
	buf_addf(&url, "%s/missing?X-Amz-Signature=sig123", base_url);
	CHECK(http_download_range(c, url.data, 0, 0, sink, &got, &res, &err) == MM_ENOTFOUND);
	CHECK(!strstr(err.msg, "sig123"));
	CHECK_CONTAINS(err.msg, "/missing: HTTP 404");
	buf_release(&url);
	buf_release(&got);
	http_client_free(c);
}

static void test_stop_slow_transfer(void)
{
	struct http_opts o = { .should_stop = stop_after_deadline };
	struct http_client *c = client(&o);
	struct http_dl_result res;
	struct mm_error err = MM_ERROR_INIT;
	struct buf got = BUF_INIT;
	int64_t t0 = mono_ms();

	stop_at = t0 + 400;
	CHECK(http_download_range(c, "/slow", 0, 1, sink, &got, &res, &err) == MM_EINTR);
	CHECK(mono_ms() - t0 < 3000);
	CHECK(res.received > 0 && res.received < 1000000);
	CHECK_STR(err.msg, "GET /slow: interrupted");
	buf_release(&got);
	http_client_free(c);
}

/* ---- upload ------------------------------------------------------------- */

static void test_upload_chunk(void)
{
	struct http_opts o = { 0 };
	struct http_client *c = client(&o);
	struct http_response r = HTTP_RESPONSE_INIT;
	struct mm_error err = MM_ERROR_INIT;
	char path[160], want[65];
	unsigned char *data = xmalloc(300000);
	cJSON *j = NULL;
	int fd;

	for (int i = 0; i < 300000; i++)
		data[i] = (unsigned char)(i * 31 + (i >> 8));
	snprintf(path, sizeof(path), "%s/chunk", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && write(fd, data, 300000) == 300000);
	sha256_hex(data + 1000, 200000, want);
	http_set_token(c, TOKEN);
	CHECK(http_upload_chunk(c, "/upload", fd, 1000, 200000, &r, &err) == 0);
	CHECK(r.status == 200);
	j = cJSON_Parse(buf_cstr(&r.body));
	CHECK(j != NULL);
	if (j) {
		CHECK(cJSON_GetObjectItem(j, "len")->valueint == 200000);
		CHECK(cJSON_GetObjectItem(j, "content_length")->valueint == 200000);
		CHECK_STR(cJSON_GetObjectItem(j, "sha256")->valuestring, want);
		CHECK_STR(cJSON_GetObjectItem(j, "ct")->valuestring, "application/octet-stream");
		CHECK_STR(cJSON_GetObjectItem(j, "expect")->valuestring, "");
		CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "auth")));
	}
	/* a source shorter than promised fails instead of sending garbage */
	CHECK(http_upload_chunk(c, "/upload", fd, 299000, 5000, &r, &err) < 0);
	CHECK_CONTAINS(err.msg, "the upload source ended after 1000 of 5000 bytes");
	cJSON_Delete(j);
	close(fd);
	unlink(path);
	free(data);
	http_response_clear(&r);
	http_client_free(c);
}

/* ---- local mode --------------------------------------------------------- */

static void test_local_socket(void)
{
	struct http_opts o = { .socket_path = sock_path };
	struct http_client *c = client(&o);
	struct mm_user me;
	struct mm_error err = MM_ERROR_INIT;

	CHECK(c && http_is_local(c));
	http_set_token(c, TOKEN); /* must not be sent over the socket */
	CHECK(mm_get_me(c, &me, NULL, &err) == 0);
	CHECK_STR(me.username, "admin");
	http_client_free(c);
}

/* ---- Mattermost calls --------------------------------------------------- */

static void test_mm_login_and_me(void)
{
	struct http_opts o = { 0 };
	struct http_client *c = client(&o);
	struct mm_user me;
	struct mm_error err = MM_ERROR_INIT;
	char ver[32];

	CHECK(mm_login(c, "admin", "nope", NULL, &me, &err) == MM_ERR);
	CHECK(err.http_status == 401 && !http_has_token(c));
	CHECK(!strstr(err.msg, "nope"));
	CHECK(mm_login(c, "admin", "pw", NULL, &me, &err) == 0);
	CHECK(http_has_token(c)); /* from a lowercase "token:" header */
	CHECK(mm_get_me(c, &me, ver, &err) == 0);
	CHECK_STR(ver, "9.11.2");
	CHECK(me.is_system_admin);
	CHECK_STR(me.id, "useruseruseruseruseruser12");
	http_client_free(c);
}

static void test_mm_jobs(void)
{
	struct http_opts o = { 0 };
	struct http_client *c = client(&o);
	struct mm_job job = MM_JOB_INIT, *jobs = NULL;
	struct mm_error err = MM_ERROR_INIT;
	cJSON *data = cJSON_CreateObject(), *bad = cJSON_CreateObject();
	size_t n = 0;

	http_set_token(c, TOKEN);
	cJSON_AddStringToObject(data, "include_attachments", "true");
	CHECK(mm_create_job(c, "export_process", data, &job, &err) == 0);
	CHECK_STR(job.id, JOB_ID);
	CHECK_STR(job.status, "pending");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(job.data, "include_attachments")), "true");
	CHECK(!mm_job_is_terminal(job.status));
	CHECK(mm_get_job(c, JOB_ID, &job, &err) == 0);
	CHECK(mm_job_is_terminal(job.status) && cJSON_IsObject(job.data)); /* null data → {} */
	CHECK(mm_get_job(c, "../users/me", &job, &err) == MM_EINVAL);
	CHECK(mm_get_job(c, "zzzzzzzzzzzzzzzzzzzzzzzzzz", &job, &err) == MM_ENOTFOUND);
	cJSON_AddTrueToObject(bad, "include_attachments");
	CHECK(mm_create_job(c, "export_process", bad, &job, &err) == MM_EINVAL);
	CHECK(mm_list_jobs(c, "export_process", 0, 200, &jobs, &n, &err) == 0);
	CHECK(n == 2 && !strcmp(jobs[0].status, "in_progress"));
	mm_jobs_free(jobs, n);
	mm_job_clear(&job);
	cJSON_Delete(data);
	cJSON_Delete(bad);
	http_client_free(c);
}

static void test_mm_files(void)
{
	struct http_opts o = { 0 };
	struct http_client *c = client(&o);
	struct mm_upload up;
	struct mm_error err = MM_ERROR_INIT;
	char **names = NULL, name[600];
	size_t n = 0;

	http_set_token(c, TOKEN);
	CHECK(mm_list_exports(c, &names, &n, &err) == 0);
	CHECK(n == 2 && !strcmp(names[0], JOB_ID "_export.zip"));
	mm_names_free(names, n);
	CHECK(mm_delete_import(c, "x.zip", &err) == MM_ENOTFOUND);
	CHECK_CONTAINS(err.msg, "unsupported");
	CHECK(mm_delete_export(c, "../config", &err) == MM_EINVAL);
	CHECK(mm_create_upload(c, "cloud.zip", 10, &up, &err) == MM_ERR);
	CHECK_STR(err.msg, "POST /api/v4/uploads: HTTP 400 api.file.cloud_upload.app_error: "
			   "Cannot upload import files to Cloud");
	CHECK_STR(err.app_id, "api.file.cloud_upload.app_error");
	CHECK(mm_create_upload(c, "archive.zip", 12345, &up, &err) == 0);
	CHECK(up.file_size == 12345 && up.file_offset == 0);
	CHECK(mm_import_name(&up, name, sizeof(name)) == 0);
	CHECK_STR(name, "upupupupupupupupupupupup12_archive.zip");
	CHECK(mm_get_upload(c, up.id, &up, &err) == MM_ENOTFOUND);
	http_client_free(c);
}

static void test_mm_reads(void)
{
	struct http_opts o = { 0 };
	struct http_client *c = client(&o);
	struct mm_team *teams = NULL;
	struct mm_channel ch;
	struct mm_error err = MM_ERROR_INIT;
	cJSON *patch = cJSON_Parse("{\"FileSettings\":{\"MaxFileSize\":10737418240}}"), *cfg = NULL;
	size_t n = 0;

	http_set_token(c, TOKEN);
	CHECK(mm_list_teams(c, &teams, &n, &err) == 0);
	CHECK(n == 3 && !strcmp(teams[2].name, "team-2"));
	CHECK(mm_get_channel_by_name(c, teams[0].id, "town-square", 1, &ch, &err) == 0);
	CHECK(ch.total_msg_count == 42 && !strcmp(ch.name, "town-square"));
	CHECK(mm_patch_config(c, patch, &cfg, &err) == 0);
	CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "FileSettings"), "MaxFileSize")->valuedouble ==
	      10737418240.0);
	free(teams);
	cJSON_Delete(patch);
	cJSON_Delete(cfg);
	http_client_free(c);
}

static void test_versions(void)
{
	char v[32];

	CHECK(mm_version_from_header("9.11.2.12345.abcdef.true", v) == 0);
	CHECK_STR(v, "9.11.2");
	CHECK(mm_version_from_header("5.33.0", v) == 0);
	CHECK(mm_version_from_header("junk", v) < 0 && !*v);
	CHECK(mm_version_from_header("9.11", v) < 0);
	CHECK(mm_version_at_least("5.33.0", 5, 33));
	CHECK(mm_version_at_least("10.0.1", 5, 33));
	CHECK(!mm_version_at_least("5.32.9", 5, 33));
	CHECK(!mm_version_at_least("", 5, 33));
	CHECK(mm_id_valid("abcdefghijklmnopqrstuvwxyz"));
	CHECK(!mm_id_valid("ABCDEFGHIJKLMNOPQRSTUVWXYZ"));
	CHECK(!mm_id_valid("short"));
	CHECK(mm_job_is_terminal("warning") && !mm_job_is_terminal("cancel_requested"));
}

int main(void)
{
	static const char *const proxies[] = { "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
					       "all_proxy",  "ALL_PROXY",  NULL };

	for (int i = 0; proxies[i]; i++)
		unsetenv(proxies[i]);
	signal(SIGPIPE, SIG_IGN);
	test_versions();
	test_client_opts();
	if (http_global_init() < 0 || start_stub() < 0) {
		fprintf(stderr, "cannot start httpd_stub.py\n");
		stop_stub();
		return 1;
	}
	test_bearer_get();
	test_headers_and_reuse();
	test_app_error_redacted();
	test_plain_and_html_errors();
	test_retry_after();
	test_busy_retries();
	test_connect_failure();
	test_stop_during_backoff();
	test_download_full_and_range();
	test_download_416_and_refusals();
	test_download_head_hook();
	test_download_pool();
	test_download_cut();
	test_download_absolute_url();
	test_stop_slow_transfer();
	test_upload_chunk();
	test_local_socket();
	test_mm_login_and_me();
	test_mm_jobs();
	test_mm_files();
	test_mm_reads();
	stop_stub();
	http_global_cleanup();
	return check_done();
}

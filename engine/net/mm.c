#include "mm.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonlimit.h"
#include "util.h"

#define API "/api/v4"
#define PER_PAGE 200    /* the server clamps larger values to 200 */
#define MAX_PAGES 10000 /* a server that ignores `page` must not loop us forever */

typedef int (*parse_fn)(cJSON *o, void *out, struct mm_error *err);

/* ---- pure helpers ------------------------------------------------------- */

int mm_id_valid(const char *id)
{
	size_t i;

	if (!id)
		return 0;
	for (i = 0; id[i]; i++)
		if (!(islower((unsigned char)id[i]) || isdigit((unsigned char)id[i])))
			return 0;
	return i == MM_ID_LEN;
}

int mm_version_from_header(const char *xv, char out[32])
{
	const char *p = xv;

	out[0] = '\0';
	if (!xv)
		return -1;
	for (int part = 0; part < 3; part++) {
		size_t n = strspn(p, "0123456789");

		if (!n || (p[n] && p[n] != '.') || (part < 2 && !p[n]))
			return -1;
		p += n + (part < 2);
	}
	if (p - xv >= 32)
		return -1;
	memcpy(out, xv, (size_t)(p - xv));
	out[p - xv] = '\0';
	return 0;
}

int mm_version_at_least(const char *ver, int major, int minor)
{
	char *end;
	long maj, min;

	if (!ver || !isdigit((unsigned char)*ver))
		return 0;
	maj = strtol(ver, &end, 10);
	if (*end != '.' || !isdigit((unsigned char)end[1]))
		return 0;
	min = strtol(end + 1, &end, 10);
	return maj > major || (maj == major && min >= minor);
}

int mm_job_is_terminal(const char *status)
{
	static const char *const done[] = { "success", "error", "canceled", "warning", NULL };

	for (int i = 0; status && done[i]; i++)
		if (!strcmp(status, done[i]))
			return 1;
	return 0;
}

void mm_job_clear(struct mm_job *job)
{
	cJSON_Delete(job->data);
	memset(job, 0, sizeof(*job));
}

void mm_jobs_free(struct mm_job *jobs, size_t n)
{
	for (size_t i = 0; jobs && i < n; i++)
		mm_job_clear(&jobs[i]);
	free(jobs);
}

void mm_names_free(char **names, size_t n)
{
	for (size_t i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
}

int mm_import_name(const struct mm_upload *up, char *out, size_t outlen)
{
	const char *base = strrchr(up->filename, '/');
	int n;

	base = base ? base + 1 : up->filename;
	n = snprintf(out, outlen, "%s_%s", up->id, base);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* ---- paths -------------------------------------------------------------- */

static void add_escaped(struct buf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~')
			buf_addc(b, (char)ch);
		else
			buf_addf(b, "%%%02X", ch);
	}
}

static int check_id(const char *id, const char *what, struct mm_error *err)
{
	if (mm_id_valid(id))
		return 0;
	return err_set(err, MM_EINVAL, "invalid %s id '%.40s': want 26 characters of a-z and 0-9", what,
		       id ? id : "");
}

/* Export and import names: the routes only match names ending in .zip. */
static int check_zip_name(const char *name, struct mm_error *err)
{
	size_t len = name ? strlen(name) : 0;

	if (len < 5 || strcmp(name + len - 4, ".zip") || strchr(name, '/') || !strcmp(name, ".."))
		return err_set(err, MM_EINVAL, "invalid archive name '%s': want a file name ending in .zip",
			       name ? name : "");
	return 0;
}

static int check_name(const char *name, const char *what, struct mm_error *err)
{
	if (name && *name && strlen(name) <= 64)
		return 0;
	return err_set(err, MM_EINVAL, "invalid %s name '%.70s'", what, name ? name : "");
}

/* Job types go unescaped into the path: the route wants [A-Za-z0-9_-]{1,32}. */
static int check_job_type(const char *type, struct mm_error *err)
{
	size_t len = type ? strlen(type) : 0;

	if (len && len <= 32 &&
	    strspn(type, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789_-") == len)
		return 0;
	return err_set(err, MM_EINVAL, "invalid job type '%.40s'", type ? type : "");
}

int mm_export_path(const char *name, struct buf *path, struct mm_error *err)
{
	int ret = check_zip_name(name, err);

	if (ret < 0)
		return ret;
	buf_adds(path, API "/exports/");
	add_escaped(path, name);
	return 0;
}

/* ---- JSON fields -------------------------------------------------------- */

static const char *str_field(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : "";
}

static void copy_field(char *dst, size_t n, const cJSON *o, const char *key)
{
	const char *s = str_field(o, key);
	size_t len = strlen(s);

	if (len >= n)
		len = n - 1;
	memcpy(dst, s, len);
	dst[len] = '\0';
}

static int64_t int_field(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(v) ? double_to_i64(v->valuedouble) : 0;
}

static int id_field(char out[MM_ID_LEN + 1], const cJSON *o, const char *key, const char *what,
		    struct mm_error *err)
{
	const char *s = str_field(o, key);

	if (!mm_id_valid(s))
		return err_set(err, MM_ERR, "the server sent %s with an invalid %s '%.40s'", what, key, s);
	memcpy(out, s, MM_ID_LEN + 1);
	return 0;
}

/* Optional ids (a channel's team_id is empty for DMs) are only length-checked. */
static void opt_id_field(char out[MM_ID_LEN + 1], const cJSON *o, const char *key)
{
	const char *s = str_field(o, key);

	if (mm_id_valid(s))
		memcpy(out, s, MM_ID_LEN + 1);
	else
		out[0] = '\0';
}

static int is_object(const cJSON *o, const char *what, struct mm_error *err)
{
	if (cJSON_IsObject(o))
		return 0;
	return err_set(err, MM_ERR, "the server sent %s that is not a JSON object", what);
}

/* ---- parsers ------------------------------------------------------------ */

static int has_word(const char *list, const char *word)
{
	size_t wlen = strlen(word);

	for (const char *p = list; (p = strstr(p, word)); p += wlen)
		if ((p == list || p[-1] == ' ') && (p[wlen] == ' ' || !p[wlen]))
			return 1;
	return 0;
}

static int parse_user(cJSON *o, void *out, struct mm_error *err)
{
	struct mm_user *u = out;
	int ret;

	memset(u, 0, sizeof(*u));
	if ((ret = is_object(o, "a user", err)) < 0 || (ret = id_field(u->id, o, "id", "a user", err)) < 0)
		return ret;
	copy_field(u->username, sizeof(u->username), o, "username");
	copy_field(u->email, sizeof(u->email), o, "email");
	copy_field(u->roles, sizeof(u->roles), o, "roles");
	copy_field(u->auth_service, sizeof(u->auth_service), o, "auth_service");
	u->delete_at = int_field(o, "delete_at");
	u->is_system_admin = has_word(str_field(o, "roles"), "system_admin");
	return 0;
}

/* Takes o's data member; data that is null or missing becomes {}. */
static int parse_job(cJSON *o, void *out, struct mm_error *err)
{
	struct mm_job *j = out;
	cJSON *data;
	int ret;

	mm_job_clear(j);
	if ((ret = is_object(o, "a job", err)) < 0 || (ret = id_field(j->id, o, "id", "a job", err)) < 0)
		return ret;
	copy_field(j->type, sizeof(j->type), o, "type");
	copy_field(j->status, sizeof(j->status), o, "status");
	j->create_at = int_field(o, "create_at");
	j->start_at = int_field(o, "start_at");
	j->last_activity_at = int_field(o, "last_activity_at");
	j->progress = int_field(o, "progress");
	data = cJSON_DetachItemFromObjectCaseSensitive(o, "data");
	if (!cJSON_IsObject(data)) {
		cJSON_Delete(data);
		data = cJSON_CreateObject();
	}
	j->data = data;
	return 0;
}

static void clear_job(void *p)
{
	mm_job_clear(p);
}

static int parse_upload(cJSON *o, void *out, struct mm_error *err)
{
	struct mm_upload *u = out;
	int ret;

	memset(u, 0, sizeof(*u));
	if ((ret = is_object(o, "an upload session", err)) < 0 ||
	    (ret = id_field(u->id, o, "id", "an upload session", err)) < 0)
		return ret;
	copy_field(u->type, sizeof(u->type), o, "type");
	opt_id_field(u->user_id, o, "user_id");
	copy_field(u->filename, sizeof(u->filename), o, "filename");
	u->create_at = int_field(o, "create_at");
	u->file_size = int_field(o, "file_size");
	u->file_offset = int_field(o, "file_offset");
	return 0;
}

static int parse_team(cJSON *o, void *out, struct mm_error *err)
{
	struct mm_team *t = out;
	int ret;

	memset(t, 0, sizeof(*t));
	if ((ret = is_object(o, "a team", err)) < 0 || (ret = id_field(t->id, o, "id", "a team", err)) < 0)
		return ret;
	copy_field(t->name, sizeof(t->name), o, "name");
	copy_field(t->display_name, sizeof(t->display_name), o, "display_name");
	copy_field(t->type, sizeof(t->type), o, "type");
	t->delete_at = int_field(o, "delete_at");
	return 0;
}

static int parse_channel(cJSON *o, void *out, struct mm_error *err)
{
	struct mm_channel *ch = out;
	int ret;

	memset(ch, 0, sizeof(*ch));
	if ((ret = is_object(o, "a channel", err)) < 0 ||
	    (ret = id_field(ch->id, o, "id", "a channel", err)) < 0)
		return ret;
	opt_id_field(ch->team_id, o, "team_id");
	copy_field(ch->name, sizeof(ch->name), o, "name");
	copy_field(ch->display_name, sizeof(ch->display_name), o, "display_name");
	copy_field(ch->type, sizeof(ch->type), o, "type");
	ch->delete_at = int_field(o, "delete_at");
	/* -1 when the server leaves it out: reconciliation must not read that as zero posts. */
	ch->total_msg_count = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "total_msg_count"))
				      ? int_field(o, "total_msg_count")
				      : -1;
	return 0;
}

/* A JSON array into a malloc'd array of n structs of elem bytes each. */
static int parse_array(cJSON *arr, size_t elem, parse_fn fn, void (*clear)(void *), void **out, size_t *n,
		       struct mm_error *err)
{
	size_t count = 0, cap = (size_t)cJSON_GetArraySize(arr);
	char *items = xcalloc(cap ? cap : 1, elem);
	cJSON *it;
	int ret = 0;

	cJSON_ArrayForEach(it, arr) {
		if ((ret = fn(it, items + count * elem, err)) < 0)
			break;
		count++;
	}
	if (ret < 0) {
		for (size_t i = 0; clear && i <= count && i < cap; i++)
			clear(items + i * elem);
		free(items);
		return ret;
	}
	*out = items;
	*n = count;
	return 0;
}

static int parse_names(const cJSON *arr, char ***names, size_t *n, struct mm_error *err)
{
	size_t count = 0, cap = (size_t)cJSON_GetArraySize(arr);
	char **v = xcalloc(cap ? cap : 1, sizeof(*v));
	const cJSON *it;

	cJSON_ArrayForEach(it, arr) {
		if (!cJSON_IsString(it)) {
			mm_names_free(v, count);
			return err_set(err, MM_ERR, "the server sent a file list holding a non-string");
		}
		v[count++] = xstrdup(it->valuestring);
	}
	*names = v;
	*n = count;
	return 0;
}

/* ---- requests ----------------------------------------------------------- */

static int parse_answer(const struct http_response *r, const char *method, const char *path, cJSON **out,
			struct mm_error *err)
{
	*out = NULL;
	if (json_within_limits(buf_cstr(&r->body), r->body.len, JSON_MAX_DEPTH, JSON_MAX_VALUES, err) < 0)
		return err_prefix(err, "%s %.*s", method, (int)strcspn(path, "?"), path), MM_ERR;
	*out = cJSON_ParseWithLength(buf_cstr(&r->body), r->body.len);
	if (!*out)
		return err_set(err, MM_ERR, "%s %.*s: the answer is not JSON", method,
			       (int)strcspn(path, "?"), path);
	return 0;
}

/* One API call; *out (may be NULL) gets the parsed JSON answer. */
static int call(struct http_client *c, const char *method, const char *path, const cJSON *body, int flags,
		cJSON **out, struct mm_error *err)
{
	struct http_response r = HTTP_RESPONSE_INIT;
	int ret = http_json(c, method, path, body, flags, &r, err);

	if (ret == 0 && out)
		ret = parse_answer(&r, method, path, out, err);
	http_response_clear(&r);
	return ret;
}

/* GET path and parse the object answer with fn into out. */
static int get_one(struct http_client *c, const char *path, parse_fn fn, void *out, struct mm_error *err)
{
	cJSON *j = NULL;
	int ret = call(c, "GET", path, NULL, 0, &j, err);

	if (ret == 0)
		ret = fn(j, out, err);
	cJSON_Delete(j);
	return ret;
}

static int get_array(struct http_client *c, const char *path, cJSON **arr, struct mm_error *err)
{
	/* Every array answer is a listing: the only answers allowed to grow large. */
	int ret = call(c, "GET", path, NULL, HTTP_LARGE_BODY, arr, err);

	if (ret == 0 && !cJSON_IsArray(*arr))
		ret = err_set(err, MM_ERR, "GET %.*s: the answer is not a JSON array",
			      (int)strcspn(path, "?"), path);
	if (ret < 0) {
		cJSON_Delete(*arr);
		*arr = NULL;
	}
	return ret;
}

/* Appends every page of prefix (page=0,1,... per_page=200) to all, until an empty page. */
static int get_pages(struct http_client *c, const char *prefix, cJSON *all, struct mm_error *err)
{
	char sep = strchr(prefix, '?') ? '&' : '?';

	for (int page = 0; page < MAX_PAGES; page++) {
		struct buf path = BUF_INIT;
		cJSON *arr = NULL;
		int ret, empty;

		buf_addf(&path, "%s%cpage=%d&per_page=%d", prefix, sep, page, PER_PAGE);
		ret = get_array(c, path.data, &arr, err);
		buf_release(&path);
		if (ret < 0)
			return ret;
		empty = !arr->child;
		while (arr->child)
			cJSON_AddItemToArray(all, cJSON_DetachItemViaPointer(arr, arr->child));
		cJSON_Delete(arr);
		if (empty)
			return 0;
	}
	return err_set(err, MM_ERR, "GET %s: more than %d pages", prefix, MAX_PAGES);
}

static int get_names(struct http_client *c, const char *path, char ***names, size_t *n, struct mm_error *err)
{
	cJSON *arr = NULL;
	int ret = get_array(c, path, &arr, err);

	if (ret == 0)
		ret = parse_names(arr, names, n, err);
	cJSON_Delete(arr);
	return ret;
}

/* For fuzz targets: the job and upload-session readers over raw bytes. */
static int parse_bytes(const char *text, size_t len, parse_fn fn, void *out, struct mm_error *err)
{
	struct http_response r = HTTP_RESPONSE_INIT;
	cJSON *j = NULL;
	int ret;

	buf_add(&r.body, text, len);
	ret = parse_answer(&r, "GET", "(bytes)", &j, err);
	if (ret == 0)
		ret = fn(j, out, err);
	cJSON_Delete(j);
	http_response_clear(&r);
	return ret;
}

int mm_parse_job(const char *text, size_t len, struct mm_job *job, struct mm_error *err)
{
	return parse_bytes(text, len, parse_job, job, err);
}

int mm_parse_upload(const char *text, size_t len, struct mm_upload *up, struct mm_error *err)
{
	return parse_bytes(text, len, parse_upload, up, err);
}

/* ---- users -------------------------------------------------------------- */

/* The login body holds the password: wipe every string before freeing. */
static void wipe_delete(cJSON *j)
{
	for (cJSON *it = j ? j->child : NULL; it; it = it->next)
		if (cJSON_IsString(it) && it->valuestring)
			http_wipe(it->valuestring, strlen(it->valuestring));
	cJSON_Delete(j);
}

static cJSON *login_body(const char *login_id, const char *password, const char *mfa)
{
	cJSON *b = cJSON_CreateObject();

	cJSON_AddStringToObject(b, "login_id", login_id);
	cJSON_AddStringToObject(b, "password", password);
	if (mfa && *mfa)
		cJSON_AddStringToObject(b, "token", mfa);
	return b;
}

int mm_login(struct http_client *c, const char *login_id, const char *password, const char *mfa,
	     struct mm_user *me, struct mm_error *err)
{
	static const char path[] = API "/users/login";
	struct http_response r = HTTP_RESPONSE_INIT;
	cJSON *body = NULL, *j = NULL;
	int ret;

	if (http_is_local(c))
		return err_set(err, MM_EINVAL, "local mode uses no login");
	if (!login_id || !*login_id || !password || !*password)
		return err_set(err, MM_EINVAL, "login needs a login id and a password");
	/* A server that echoes the request in its error must not make us print these. */
	http_add_secret(c, password);
	http_add_secret(c, mfa);
	body = login_body(login_id, password, mfa);
	/* A repeated login only makes a spare session, but repeat only what was refused. */
	if ((ret = http_json(c, "POST", path, body, 0, &r, err)) < 0)
		goto out;
	if (!r.token || !*r.token) {
		ret = err_set(err, MM_ERR, "POST %s: the answer has no Token header", path);
		goto out;
	}
	if (http_set_token(c, r.token) < 0) {
		ret = err_set(err, MM_ERR, "POST %s: the Token header holds unexpected characters", path);
		goto out;
	}
	if ((ret = parse_answer(&r, "POST", path, &j, err)) == 0)
		ret = parse_user(j, me, err);
out:
	wipe_delete(body);
	cJSON_Delete(j);
	http_response_clear(&r);
	return ret;
}

int mm_logout(struct http_client *c, struct mm_error *err)
{
	/* api4/user.go Logout: revokes the session the request carries, 200 {"status":"OK"}. */
	if (http_is_local(c))
		return err_set(err, MM_EINVAL, "local mode has no session to log out of");
	return call(c, "POST", API "/users/logout", NULL, 0, NULL, err);
}

int mm_ping(struct http_client *c, char version[32], struct mm_error *err)
{
	int ret = call(c, "GET", API "/system/ping", NULL, 0, NULL, err);

	if (ret == 0 && version && mm_version_from_header(http_last_version_id(c), version) < 0)
		version[0] = '\0';
	return ret;
}

int mm_get_me(struct http_client *c, struct mm_user *me, char version[32], struct mm_error *err)
{
	int ret = get_one(c, API "/users/me", parse_user, me, err);

	if (ret == 0 && version && mm_version_from_header(http_last_version_id(c), version) < 0)
		version[0] = '\0';
	return ret;
}

int mm_get_user_by_username(struct http_client *c, const char *username, struct mm_user *user,
			    struct mm_error *err)
{
	struct buf path = BUF_INIT;
	int ret = check_name(username, "user", err);

	if (ret < 0)
		return ret;
	buf_adds(&path, API "/users/username/");
	add_escaped(&path, username);
	ret = get_one(c, path.data, parse_user, user, err);
	buf_release(&path);
	return ret;
}

/* ---- jobs --------------------------------------------------------------- */

/* Every value must be a string: the server only understands "true", never true. */
static int check_job_data(const cJSON *data, struct mm_error *err)
{
	const cJSON *it;

	if (!data)
		return 0;
	if (!cJSON_IsObject(data))
		return err_set(err, MM_EINVAL, "job data must be a map of strings");
	cJSON_ArrayForEach(it, data)
		if (!cJSON_IsString(it))
			return err_set(err, MM_EINVAL, "job data '%s' must be a string", it->string);
	return 0;
}

int mm_create_job(struct http_client *c, const char *type, const cJSON *data, struct mm_job *job,
		  struct mm_error *err)
{
	cJSON *body = NULL, *j = NULL;
	int ret;

	if ((ret = check_job_type(type, err)) < 0 || (ret = check_job_data(data, err)) < 0)
		return ret;
	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "type", type);
	cJSON_AddItemToObject(body, "data", data ? cJSON_Duplicate(data, 1) : cJSON_CreateObject());
	/* Never resent: a lost 201 would start a second export or import. */
	ret = call(c, "POST", API "/jobs", body, HTTP_NO_RETRY, &j, err);
	if (ret == 0)
		ret = parse_job(j, job, err);
	cJSON_Delete(body);
	cJSON_Delete(j);
	return ret;
}

int mm_get_job(struct http_client *c, const char *id, struct mm_job *job, struct mm_error *err)
{
	struct buf path = BUF_INIT;
	int ret = check_id(id, "job", err);

	if (ret < 0)
		return ret;
	buf_addf(&path, API "/jobs/%s", id);
	ret = get_one(c, path.data, parse_job, job, err);
	buf_release(&path);
	return ret;
}

int mm_list_jobs(struct http_client *c, const char *type, int page, int per_page, struct mm_job **jobs,
		 size_t *n, struct mm_error *err)
{
	struct buf path = BUF_INIT;
	cJSON *arr = NULL;
	int ret = check_job_type(type, err);

	*jobs = NULL;
	*n = 0;
	if (ret < 0)
		return ret;
	if (page < 0 || per_page < 1 || per_page > PER_PAGE)
		return err_set(err, MM_EINVAL, "job list page %d, per_page %d out of range", page, per_page);
	buf_addf(&path, API "/jobs/type/%s?page=%d&per_page=%d", type, page, per_page);
	ret = get_array(c, path.data, &arr, err);
	if (ret == 0)
		ret = parse_array(arr, sizeof(**jobs), parse_job, clear_job, (void **)jobs, n, err);
	cJSON_Delete(arr);
	buf_release(&path);
	return ret;
}

int mm_cancel_job(struct http_client *c, const char *id, struct mm_error *err)
{
	struct buf path = BUF_INIT;
	int ret = check_id(id, "job", err);

	if (ret < 0)
		return ret;
	buf_addf(&path, API "/jobs/%s/cancel", id);
	ret = call(c, "POST", path.data, NULL, 0, NULL, err);
	buf_release(&path);
	return ret;
}

/* ---- exports ------------------------------------------------------------ */

int mm_list_exports(struct http_client *c, char ***names, size_t *n, struct mm_error *err)
{
	return get_names(c, API "/exports", names, n, err);
}

int mm_delete_export(struct http_client *c, const char *name, struct mm_error *err)
{
	struct buf path = BUF_INIT;
	int ret = mm_export_path(name, &path, err);

	if (ret == 0)
		ret = call(c, "DELETE", path.data, NULL, 0, NULL, err);
	buf_release(&path);
	return ret;
}

static int parse_presign(const cJSON *j, char **url, int64_t *expiration_ns, struct mm_error *err)
{
	const char *u = str_field(j, "url");

	if (strncmp(u, "https://", 8) && strncmp(u, "http://", 7))
		return err_set(err, MM_ERR, "the server sent a presigned link that is not an http(s) URL");
	*url = xstrdup(u);
	if (expiration_ns)
		*expiration_ns = int_field(j, "expiration");
	return 0;
}

int mm_presign_export(struct http_client *c, const char *name, char **url, int64_t *expiration_ns,
		      struct mm_error *err)
{
	struct buf path = BUF_INIT;
	cJSON *j = NULL;
	int ret = mm_export_path(name, &path, err);

	*url = NULL;
	if (ret < 0)
		goto out;
	buf_adds(&path, "/presign-url");
	/* One attempt: the feature-off and missing-file answers are 500s that
	 * never change, and a caller falls back to the API download anyway. */
	ret = call(c, "POST", path.data, NULL, HTTP_NO_RETRY, &j, err);
	if (ret == 0)
		ret = parse_presign(j, url, expiration_ns, err);
out:
	cJSON_Delete(j);
	buf_release(&path);
	return ret;
}

/* ---- imports and uploads ------------------------------------------------ */

int mm_list_imports(struct http_client *c, char ***names, size_t *n, struct mm_error *err)
{
	return get_names(c, API "/imports", names, n, err);
}

int mm_import_listed(struct http_client *c, const char *name, struct mm_error *err)
{
	char **names = NULL;
	size_t n = 0;
	int found = 0;

	if (mm_list_imports(c, &names, &n, err) < 0)
		return MM_ERR;
	for (size_t i = 0; i < n && !found; i++)
		found = !strcmp(names[i], name);
	mm_names_free(names, n);
	return found;
}

int mm_delete_import(struct http_client *c, const char *name, struct mm_error *err)
{
	struct buf path = BUF_INIT;
	int ret = check_zip_name(name, err);

	if (ret < 0)
		return ret;
	buf_adds(&path, API "/imports/");
	add_escaped(&path, name);
	ret = call(c, "DELETE", path.data, NULL, 0, NULL, err);
	/* Older servers lack the route: the generic 404 means "cannot", not "gone". */
	if (ret == MM_ENOTFOUND && !strcmp(err->app_id, "api.context.404.app_error"))
		err_set(err, MM_ENOTFOUND, "DELETE %s: unsupported by this server (no such route)", path.data);
	buf_release(&path);
	return ret;
}

int mm_create_upload(struct http_client *c, const char *filename, int64_t size, struct mm_upload *up,
		     struct mm_error *err)
{
	cJSON *body, *j = NULL;
	int ret;

	if (!filename || !*filename || size <= 0)
		return err_set(err, MM_EINVAL, "an upload needs a file name and a size above 0");
	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "type", "import");
	cJSON_AddStringToObject(body, "filename", filename);
	cJSON_AddNumberToObject(body, "file_size", (double)size);
	/* Over the socket there is no session user to fill in: the server keeps the
	 * user_id sent, and UploadSession.IsValid accepts only a real id or
	 * model.UploadNoUserID (mmctl sends it in local mode; "me" gets 400). */
	if (http_is_local(c))
		cJSON_AddStringToObject(body, "user_id", MM_UPLOAD_NO_USER);
	/* Never resent: look for the session in mm_list_my_uploads first. */
	ret = call(c, "POST", API "/uploads", body, HTTP_NO_RETRY, &j, err);
	if (ret == 0)
		ret = parse_upload(j, up, err);
	cJSON_Delete(body);
	cJSON_Delete(j);
	return ret;
}

int mm_get_upload(struct http_client *c, const char *id, struct mm_upload *up, struct mm_error *err)
{
	struct buf path = BUF_INIT;
	int ret = check_id(id, "upload", err);

	if (ret < 0)
		return ret;
	buf_addf(&path, API "/uploads/%s", id);
	ret = get_one(c, path.data, parse_upload, up, err);
	buf_release(&path);
	return ret;
}

int mm_upload_chunk(struct http_client *c, const char *id, int fd, int64_t offset, int64_t length,
		    int *complete, struct mm_error *err)
{
	struct http_response r = HTTP_RESPONSE_INIT;
	struct buf path = BUF_INIT;
	int ret = check_id(id, "upload", err);

	*complete = 0;
	if (ret < 0)
		return ret;
	buf_addf(&path, API "/uploads/%s", id);
	ret = http_upload_chunk(c, path.data, fd, offset, length, &r, err);
	/* 204: stored, more to come; 200 with a FileInfo: this chunk finished it. */
	if (ret == 0)
		*complete = r.status == 200;
	http_response_clear(&r);
	buf_release(&path);
	return ret;
}

int mm_upload_stream(struct http_client *c, const char *id, http_source_fn src, void *ctx, int64_t length,
		     int *complete, struct mm_error *err)
{
	struct http_response r = HTTP_RESPONSE_INIT;
	struct buf path = BUF_INIT;
	int ret = check_id(id, "upload", err);

	*complete = 0;
	if (ret < 0)
		return ret;
	buf_addf(&path, API "/uploads/%s", id);
	ret = http_upload_stream(c, path.data, src, ctx, length, &r, err);
	if (ret == 0)
		*complete = r.status == 200;
	http_response_clear(&r);
	buf_release(&path);
	return ret;
}

int mm_list_my_uploads(struct http_client *c, struct mm_upload **ups, size_t *n, struct mm_error *err)
{
	cJSON *arr = NULL;
	/* localGetUploadsForUser takes the user id as sent ("me" is not resolved
	 * there), and socket sessions belong to model.UploadNoUserID. */
	int ret = get_array(c,
			    http_is_local(c) ? API "/users/" MM_UPLOAD_NO_USER "/uploads"
					     : API "/users/me/uploads",
			    &arr, err);

	*ups = NULL;
	*n = 0;
	if (ret == 0)
		ret = parse_array(arr, sizeof(**ups), parse_upload, NULL, (void **)ups, n, err);
	cJSON_Delete(arr);
	return ret;
}

/* ---- configuration ------------------------------------------------------ */

static int get_object(struct http_client *c, const char *method, const char *path, const cJSON *body,
		      cJSON **out, struct mm_error *err)
{
	/* The config (GET /config, PUT /config/patch) is the one large object. */
	int ret = call(c, method, path, body, HTTP_LARGE_BODY, out, err);

	if (ret == 0 && !cJSON_IsObject(*out))
		ret = err_set(err, MM_ERR, "%s %s: the answer is not a JSON object", method, path);
	if (ret < 0) {
		cJSON_Delete(*out);
		*out = NULL;
	}
	return ret;
}

int mm_get_config(struct http_client *c, cJSON **config, struct mm_error *err)
{
	*config = NULL;
	return get_object(c, "GET", API "/config", NULL, config, err);
}

int mm_patch_config(struct http_client *c, const cJSON *patch, cJSON **new_config, struct mm_error *err)
{
	cJSON *cfg = NULL;
	int ret;

	if (new_config)
		*new_config = NULL;
	if (!cJSON_IsObject(patch))
		return err_set(err, MM_EINVAL, "a config patch must be a JSON object");
	/* PUT of the same patch twice gives the same config: safe to retry. */
	ret = get_object(c, "PUT", API "/config/patch", patch, &cfg, err);
	if (ret == 0 && new_config)
		*new_config = cfg;
	else
		cJSON_Delete(cfg);
	return ret;
}

/* ---- teams and channels ------------------------------------------------- */

int mm_get_team_by_name(struct http_client *c, const char *name, struct mm_team *team, struct mm_error *err)
{
	struct buf path = BUF_INIT;
	int ret = check_name(name, "team", err);

	if (ret < 0)
		return ret;
	buf_adds(&path, API "/teams/name/");
	add_escaped(&path, name);
	ret = get_one(c, path.data, parse_team, team, err);
	buf_release(&path);
	return ret;
}

int mm_list_teams(struct http_client *c, struct mm_team **teams, size_t *n, struct mm_error *err)
{
	cJSON *all = cJSON_CreateArray();
	int ret = get_pages(c, API "/teams", all, err);

	*teams = NULL;
	*n = 0;
	if (ret == 0)
		ret = parse_array(all, sizeof(**teams), parse_team, NULL, (void **)teams, n, err);
	cJSON_Delete(all);
	return ret;
}

int mm_get_channel_by_name(struct http_client *c, const char *team_id, const char *name, int include_deleted,
			   struct mm_channel *ch, struct mm_error *err)
{
	struct buf path = BUF_INIT;
	int ret;

	if ((ret = check_id(team_id, "team", err)) < 0 || (ret = check_name(name, "channel", err)) < 0)
		return ret;
	buf_addf(&path, API "/teams/%s/channels/name/", team_id);
	add_escaped(&path, name);
	if (include_deleted)
		buf_adds(&path, "?include_deleted=true");
	ret = get_one(c, path.data, parse_channel, ch, err);
	buf_release(&path);
	return ret;
}

int mm_list_team_channels(struct http_client *c, const char *team_id, unsigned flags, struct mm_channel **chs,
			  size_t *n, struct mm_error *err)
{
	static const struct {
		unsigned flag;
		const char *suffix;
	} lists[] = {
		{ 0, "" },
		{ MM_CHANNELS_PRIVATE, "/private" },
		{ MM_CHANNELS_DELETED, "/deleted" },
	};
	cJSON *all = NULL;
	int ret = check_id(team_id, "team", err);

	*chs = NULL;
	*n = 0;
	if (ret < 0)
		return ret;
	all = cJSON_CreateArray();
	for (size_t i = 0; ret == 0 && i < sizeof(lists) / sizeof(lists[0]); i++) {
		struct buf prefix = BUF_INIT;

		if (lists[i].flag && !(flags & lists[i].flag))
			continue;
		buf_addf(&prefix, API "/teams/%s/channels%s", team_id, lists[i].suffix);
		ret = get_pages(c, prefix.data, all, err);
		buf_release(&prefix);
	}
	if (ret == 0)
		ret = parse_array(all, sizeof(**chs), parse_channel, NULL, (void **)chs, n, err);
	cJSON_Delete(all);
	return ret;
}

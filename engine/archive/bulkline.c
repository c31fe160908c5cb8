/*
 * bulkline: per-line validation of bulk-import JSONL. See bulkline.h.
 *
 * Each line type is a table of the fields the server knows (kind, required,
 * length limits) plus a function that judges meaning: name patterns,
 * uniqueness, references. Generic code binds a JSON object against a table in
 * one walk over its members, the way Go's decoder fills the importer's structs
 * (the last duplicate key wins, null is absent, unknown keys are ignored).
 */
#include "bulkline.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* The server's limits (mattermost-api.md §8.3). */
#define MAX_POST_RUNES 16383        /* MaxPostSize on current databases */
#define MAX_PROPS_RUNES 800000
#define MAX_NAME 64
#define MAX_CHANNEL_MEMBERS 8

/* ---------------------------------------------------------------- name sets */

#define ARENA_CHUNK (64 * 1024)

/* Strings of all name sets live here until bulk_state_free. */
struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	char data[];
};

struct name {
	const char *key;     /* interned; a channel's key is "team\0channel" */
	uint32_t len, hash;
	unsigned long line;  /* where it was defined */
	unsigned long a, b;  /* channel: posts, replies; scheme: scope; user: is_bot */
};

/* Open addressing over an insertion-ordered array, so walks follow the file. */
struct nameset {
	struct name *v;
	size_t n, cap;
	uint32_t *slots; /* index + 1 into v, 0 = empty */
	size_t nslots;   /* a power of two */
};

static char *arena_dup(struct arena_chunk **head, const char *s, size_t len)
{
	struct arena_chunk *c = *head;
	char *p;

	if (!c || c->cap - c->used < len + 1) {
		size_t cap = len + 1 > ARENA_CHUNK ? len + 1 : ARENA_CHUNK;

		c = xmalloc(sizeof(*c) + cap);
		c->next = *head;
		c->used = 0;
		c->cap = cap;
		*head = c;
	}
	p = c->data + c->used;
	memcpy(p, s, len);
	p[len] = '\0';
	c->used += len + 1;
	return p;
}

static void arena_free(struct arena_chunk *c)
{
	while (c) {
		struct arena_chunk *next = c->next;

		free(c);
		c = next;
	}
}

/* FNV-1a: names are short, and it needs no alignment or tail handling. */
static uint32_t hash_bytes(const char *s, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

static struct name *nameset_find(const struct nameset *ns, const char *key, size_t len)
{
	uint32_t h;
	size_t mask;

	if (!ns->nslots)
		return NULL;
	h = hash_bytes(key, len);
	mask = ns->nslots - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		uint32_t s = ns->slots[i];
		struct name *e;

		if (!s)
			return NULL;
		e = &ns->v[s - 1];
		if (e->hash == h && e->len == len && !memcmp(e->key, key, len))
			return e;
	}
}

static void nameset_place(struct nameset *ns, uint32_t idx)
{
	size_t mask = ns->nslots - 1;
	size_t i = ns->v[idx].hash & mask;

	while (ns->slots[i])
		i = (i + 1) & mask;
	ns->slots[i] = idx + 1;
}

/* Keeps the load factor under 3/4. */
static void nameset_grow(struct nameset *ns)
{
	if ((ns->n + 1) * 4 <= ns->nslots * 3)
		return;
	free(ns->slots);
	ns->nslots = ns->nslots ? ns->nslots * 2 : 64;
	ns->slots = xcalloc(ns->nslots, sizeof(*ns->slots));
	for (size_t i = 0; i < ns->n; i++)
		nameset_place(ns, (uint32_t)i);
}

/* Returns the existing entry, or adds one and sets *added. The pointer is
 * valid until the next insertion into the same set. */
static struct name *nameset_add(struct nameset *ns, struct arena_chunk **arena,
	const char *key, size_t len, unsigned long line, int *added)
{
	struct name *e = nameset_find(ns, key, len);

	*added = 0;
	if (e)
		return e;
	nameset_grow(ns);
	if (ns->n == ns->cap) {
		ns->cap = ns->cap ? ns->cap * 2 : 64;
		ns->v = xrealloc(ns->v, ns->cap * sizeof(*ns->v));
	}
	e = &ns->v[ns->n];
	e->key = arena_dup(arena, key, len);
	e->len = (uint32_t)len;
	e->hash = hash_bytes(key, len);
	e->line = line;
	e->a = e->b = 0;
	nameset_place(ns, (uint32_t)ns->n);
	ns->n++;
	*added = 1;
	return e;
}

static void nameset_release(struct nameset *ns)
{
	free(ns->v);
	free(ns->slots);
	memset(ns, 0, sizeof(*ns));
}

/* ------------------------------------------------------------------ state */

struct bulk_state {
	struct nameset roles, schemes, teams, channels, users, emojis;
	struct arena_chunk *arena;
	struct bulk_counts counts;
	unsigned long lines; /* lines seen, blank and bad ones included */
	bulk_lookup_fn lookup;
	void *lookup_ctx;
};

struct bulk_state *bulk_state_new(void)
{
	return xcalloc(1, sizeof(struct bulk_state));
}

void bulk_state_free(struct bulk_state *st)
{
	if (!st)
		return;
	nameset_release(&st->roles);
	nameset_release(&st->schemes);
	nameset_release(&st->teams);
	nameset_release(&st->channels);
	nameset_release(&st->users);
	nameset_release(&st->emojis);
	arena_free(st->arena);
	free(st);
}

void bulk_state_set_lookup(struct bulk_state *st, bulk_lookup_fn lookup, void *ctx)
{
	st->lookup = lookup;
	st->lookup_ctx = ctx;
}

const struct bulk_counts *bulk_state_counts(const struct bulk_state *st)
{
	return &st->counts;
}

/* --------------------------------------------------------------- reporting */

/* What one line's checks share. */
struct lc {
	struct bulk_state *st;
	unsigned long lineno;
	size_t len;
	bulk_report_fn report;
	void *ctx;
};

/* A user-supplied string made safe to quote in a message: escaped, cut short. */
struct quoted {
	char s[96];
};

static const char *q(struct quoted *b, const char *s)
{
	size_t o = 0, max = sizeof(b->s) - 8;

	b->s[o++] = '"';
	for (; *s && o < max; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			b->s[o++] = '\\';
			b->s[o++] = (char)ch;
		} else if (ch < 0x20) {
			o += (size_t)snprintf(b->s + o, sizeof(b->s) - o, "\\x%02x", ch);
		} else {
			b->s[o++] = (char)ch;
		}
	}
	if (*s) {
		memcpy(b->s + o, "...", 3);
		o += 3;
	}
	b->s[o++] = '"';
	b->s[o] = '\0';
	return b->s;
}

static void vproblem(struct lc *c, const char *field, const char *fmt, va_list ap)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	c->report(c->ctx, c->lineno, field, msg);
}

/* A problem with the line as a whole, or with a top-level field. */
__attribute__((format(printf, 3, 4)))
static void problem(struct lc *c, const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vproblem(c, field, fmt, ap);
	va_end(ap);
}

/* A problem with prefix.key, e.g. "post.replies[1]" + "user". */
__attribute__((format(printf, 4, 5)))
static void fproblem(struct lc *c, const char *prefix, const char *key, const char *fmt, ...)
{
	char field[256];
	va_list ap;

	snprintf(field, sizeof(field), "%s.%s", prefix, key);
	va_start(ap, fmt);
	vproblem(c, field, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------ field tables */

enum kind { K_STR = 1, K_INT, K_BOOL, K_ARR, K_OBJ };

struct field {
	const char *key;
	unsigned char kind;
	unsigned char req;
	unsigned short min; /* runes, strings only */
	unsigned int max;   /* runes, strings only; 0: no limit */
};

#define REQ 1
#define MAX_FIELDS 64

static const char *kind_name(int kind)
{
	switch (kind) {
	case K_STR: return "a string";
	case K_INT: return "an integer";
	case K_BOOL: return "a boolean";
	case K_ARR: return "an array";
	default: return "an object";
	}
}

static int is_int(const cJSON *v)
{
	double d = v->valuedouble;

	return cJSON_IsNumber(v) && isfinite(d) && d == floor(d) && fabs(d) < 9.2e18;
}

static int kind_ok(const cJSON *v, int kind)
{
	switch (kind) {
	case K_STR: return cJSON_IsString(v);
	case K_INT: return is_int(v);
	case K_BOOL: return cJSON_IsBool(v);
	case K_ARR: return cJSON_IsArray(v);
	default: return cJSON_IsObject(v);
	}
}

static size_t runes(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

static size_t spec_find(const struct field *spec, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (spec[i].key[0] == key[0] && !strcmp(spec[i].key, key))
			return i;
	return n;
}

static void check_length(struct lc *c, const char *prefix, const struct field *f, const char *s)
{
	size_t n;

	if (!f->min && !f->max)
		return;
	n = runes(s);
	if (f->max && n > f->max)
		fproblem(c, prefix, f->key, "longer than %u characters (%zu)", f->max, n);
	else if (n < f->min)
		fproblem(c, prefix, f->key, f->min == 1 ? "must not be empty" :
			"shorter than %u characters", f->min);
}

/*
 * Fills val[i] with the member for spec[i], NULL when absent, null or of the
 * wrong kind; reports wrong kinds, missing required fields and lengths.
 */
static void bind(struct lc *c, const cJSON *obj, const char *prefix,
	const struct field *spec, size_t n, const cJSON **val)
{
	uint64_t bad = 0;

	memset(val, 0, n * sizeof(*val));
	for (const cJSON *m = obj->child; m; m = m->next) {
		size_t i = spec_find(spec, n, m->string);

		if (i == n)
			continue;
		val[i] = NULL;
		bad &= ~((uint64_t)1 << i);
		if (cJSON_IsNull(m))
			continue;
		if (!kind_ok(m, spec[i].kind)) {
			fproblem(c, prefix, spec[i].key, "must be %s", kind_name(spec[i].kind));
			bad |= (uint64_t)1 << i;
			continue;
		}
		val[i] = m;
	}
	for (size_t i = 0; i < n; i++) {
		if (val[i] && spec[i].kind == K_STR)
			check_length(c, prefix, &spec[i], val[i]->valuestring);
		else if (!val[i] && spec[i].req && !(bad & ((uint64_t)1 << i)))
			fproblem(c, prefix, spec[i].key, "missing");
	}
}

#define NFIELDS(t) (sizeof(t) / sizeof((t)[0]))
#define BIND(c, obj, prefix, spec, val) bind(c, obj, prefix, spec, NFIELDS(spec), val)

static const char *str(const cJSON *v)
{
	return v ? v->valuestring : NULL;
}

/* ---------------------------------------------------------- name patterns */

static int is_lower_alnum(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

/* The server's pattern ^[a-z0-9]+([a-z\-0-9]+|(__)?)[a-z0-9]+$ plus its
 * reserved prefixes; returns why s is not a team name, or NULL. */
static const char *team_name_problem(const char *s)
{
	static const char *const reserved[] = { "admin", "api", "channel", "claim", "error",
		"files", "help", "landing", "login", "mfa", "oauth", "plug", "plugins", "post",
		"signup", "boards", "playbooks" };
	size_t len = strlen(s);
	const char *us = strchr(s, '_');

	if (len < 2 || len > MAX_NAME)
		return "must be 2-64 characters";
	if (!is_lower_alnum(s[0]) || !is_lower_alnum(s[len - 1]))
		return "must start and end with a lowercase letter or digit";
	for (const char *p = s; *p; p++)
		if (!is_lower_alnum(*p) && *p != '-' && *p != '_')
			return "only lowercase letters, digits, '-' and one inner '__' are allowed";
	if (us) {
		/* "__" joins two alphanumeric runs and excludes '-' */
		if (us[1] != '_' || strchr(us + 2, '_') || strchr(s, '-'))
			return "only lowercase letters, digits, '-' and one inner '__' are allowed";
	}
	for (size_t i = 0; i < NFIELDS(reserved); i++)
		if (!strncmp(s, reserved[i], strlen(reserved[i])))
			return "starts with a reserved word";
	return NULL;
}

static const char *channel_name_problem(const char *s)
{
	size_t len = strlen(s);

	if (len < 1 || len > MAX_NAME)
		return "must be 1-64 characters";
	if (!is_lower_alnum(s[0]))
		return "must start with a lowercase letter or digit";
	for (const char *p = s; *p; p++)
		if (!is_lower_alnum(*p) && *p != '-' && *p != '_')
			return "only lowercase letters, digits, '-' and '_' are allowed";
	return NULL;
}

/* Checked after lowercasing, as the server does. */
static const char *username_problem(const char *lower)
{
	static const char *const reserved[] = { "all", "channel", "matterbot", "system" };
	size_t len = strlen(lower);

	if (len < 1 || len > MAX_NAME)
		return "must be 1-64 characters";
	for (const char *p = lower; *p; p++)
		if (!is_lower_alnum(*p) && *p != '.' && *p != '-' && *p != '_')
			return "only letters, digits, '.', '-' and '_' are allowed";
	for (size_t i = 0; i < NFIELDS(reserved); i++)
		if (!strcmp(lower, reserved[i]))
			return "is reserved";
	return NULL;
}

static const char *emoji_name_problem(const char *s)
{
	size_t len = strlen(s);

	if (len < 1 || len > MAX_NAME)
		return "must be 1-64 characters";
	for (const char *p = s; *p; p++)
		if (!is_lower_alnum(*p) && !(*p >= 'A' && *p <= 'Z') && !strchr("-+_", *p))
			return "only letters, digits, '-', '+' and '_' are allowed";
	return NULL;
}

/* Roles and schemes: ^[a-z0-9_]+$, at most 64. */
static const char *role_name_problem(const char *s)
{
	size_t len = strlen(s);

	if (len < 1 || len > MAX_NAME)
		return "must be 1-64 characters";
	for (const char *p = s; *p; p++)
		if (!is_lower_alnum(*p) && *p != '_')
			return "only lowercase letters, digits and '_' are allowed";
	return NULL;
}

/* ------------------------------------------------------- name set helpers */

/* Usernames are keyed lowercased; longer ones cannot be valid anyway. */
static int lower_username(const char *s, char out[MAX_NAME + 1])
{
	size_t i;

	for (i = 0; s[i]; i++) {
		if (i == MAX_NAME)
			return -1;
		out[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
	}
	out[i] = '\0';
	return 0;
}

static struct name *find_user(struct bulk_state *st, const char *username)
{
	char low[MAX_NAME + 1];

	if (lower_username(username, low) < 0)
		return NULL;
	return nameset_find(&st->users, low, strlen(low));
}

/* "team\0channel" into out; returns its length, or 0 when it cannot be a key. */
static size_t channel_key(const char *team, const char *channel, char out[2 * MAX_NAME + 2])
{
	size_t tl = strlen(team), cl = strlen(channel);

	if (tl > MAX_NAME || cl > MAX_NAME)
		return 0;
	memcpy(out, team, tl);
	out[tl] = '\0';
	memcpy(out + tl + 1, channel, cl);
	return tl + 1 + cl;
}

static struct name *find_channel(struct bulk_state *st, const char *team, const char *channel)
{
	char key[2 * MAX_NAME + 2];
	size_t len = channel_key(team, channel, key);

	return len ? nameset_find(&st->channels, key, len) : NULL;
}

/* Defines a name once; reports a duplicate with where it was first defined. */
static void define(struct lc *c, struct nameset *ns, const char *what, const char *field,
	const char *key, size_t len, const char *shown, unsigned long a)
{
	struct quoted qb;
	int added;
	struct name *e = nameset_add(ns, &c->st->arena, key, len, c->lineno, &added);

	if (added)
		e->a = a;
	else
		problem(c, field, "duplicate %s %s (first defined on line %lu)", what,
			q(&qb, shown), e->line);
}

static void undefined(struct lc *c, const char *prefix, const char *key, const char *what,
	const char *name)
{
	struct quoted qb;

	fproblem(c, prefix, key, "%s %s is not defined on an earlier line", what, q(&qb, name));
}

/* A reference to a user (or bot) defined earlier. */
static int check_user_ref(struct lc *c, const char *prefix, const char *key, const char *username)
{
	if (find_user(c->st, username))
		return 0;
	undefined(c, prefix, key, "user", username);
	return -1;
}

static int check_team_ref(struct lc *c, const char *prefix, const char *key, const char *team)
{
	if (nameset_find(&c->st->teams, team, strlen(team)))
		return 0;
	undefined(c, prefix, key, "team", team);
	return -1;
}

enum scope { SCOPE_TEAM = 1, SCOPE_CHANNEL };

static void check_scheme_ref(struct lc *c, const char *prefix, const char *scheme, unsigned long want)
{
	struct quoted qb;
	struct name *e = nameset_find(&c->st->schemes, scheme, strlen(scheme));

	if (!e)
		undefined(c, prefix, "scheme", "scheme", scheme);
	else if (e->a && e->a != want) /* a scheme without a valid scope is reported on its own line */
		fproblem(c, prefix, "scheme", "scheme %s has scope \"%s\", need \"%s\"", q(&qb, scheme),
			e->a == SCOPE_TEAM ? "team" : "channel", want == SCOPE_TEAM ? "team" : "channel");
}

/*
 * A path relative to data/ (§8.4): it must not escape data/, and with a
 * lookup, "data/" + path must be in the zip. Returns 1 if present, 0 if not,
 * -1 if not checked.
 */
static int lookup_path(struct lc *c, const char *prefix, const char *key, const char *path, int required)
{
	struct quoted qb;
	char name[4096];
	int found;

	if (!strcmp(path, "..") || !strncmp(path, "../", 3) || strstr(path, "/../") ||
	    (strlen(path) >= 3 && !strcmp(path + strlen(path) - 3, "/..")) || path[0] == '/') {
		fproblem(c, prefix, key, "path %s escapes data/", q(&qb, path));
		return 0;
	}
	if (!c->st->lookup)
		return -1;
	if ((size_t)snprintf(name, sizeof(name), "data/%s", path) >= sizeof(name))
		found = 0;
	else
		found = c->st->lookup(c->st->lookup_ctx, name);
	if (!found && required) {
		struct quoted qn;

		q(&qn, name);
		if (!strncmp(path, "data/", 5))
			fproblem(c, prefix, key, "file %s not in archive (paths are relative to data/)", qn.s);
		else
			fproblem(c, prefix, key, "file %s not in archive", qn.s);
	}
	return found;
}

/* Arrays of strings: every element must be a string. */
static int check_strings(struct lc *c, const char *prefix, const char *key, const cJSON *arr)
{
	int i = 0, ret = 0;

	for (const cJSON *e = arr ? arr->child : NULL; e; e = e->next, i++) {
		if (!cJSON_IsString(e)) {
			char k[96];

			snprintf(k, sizeof(k), "%s[%d]", key, i);
			fproblem(c, prefix, k, "must be a string");
			ret = -1;
		}
	}
	return ret;
}

/* --------------------------------------------------------- role and scheme */

enum { R_NAME, R_DISPLAY_NAME, R_DESCRIPTION, R_PERMISSIONS, R_SCHEME_MANAGED };
static const struct field role_fields[] = {
	[R_NAME] = { "name", K_STR, REQ, 0, 0 },
	[R_DISPLAY_NAME] = { "display_name", K_STR, 0, 0, 128 },
	[R_DESCRIPTION] = { "description", K_STR, 0, 0, 1024 },
	[R_PERMISSIONS] = { "permissions", K_ARR, 0, 0, 0 },
	[R_SCHEME_MANAGED] = { "scheme_managed", K_BOOL, 0, 0, 0 },
};

/* Binds a role object; returns its name, or NULL. */
static const char *check_role_obj(struct lc *c, const cJSON *obj, const char *prefix)
{
	const cJSON *v[NFIELDS(role_fields)];
	const char *name, *why;
	struct quoted qb;

	BIND(c, obj, prefix, role_fields, v);
	check_strings(c, prefix, "permissions", v[R_PERMISSIONS]);
	if (!(name = str(v[R_NAME])))
		return NULL;
	if ((why = role_name_problem(name)))
		fproblem(c, prefix, "name", "invalid role name %s: %s", q(&qb, name), why);
	return name;
}

static void check_role(struct lc *c, const cJSON *obj)
{
	const char *name = check_role_obj(c, obj, "role");

	if (name)
		define(c, &c->st->roles, "role", "role.name", name, strlen(name), name, 0);
}

enum {
	S_NAME, S_DISPLAY_NAME, S_DESCRIPTION, S_SCOPE, S_TEAM_ADMIN, S_TEAM_USER, S_TEAM_GUEST,
	S_CHANNEL_ADMIN, S_CHANNEL_USER, S_CHANNEL_GUEST, S_PLAYBOOK_ADMIN, S_PLAYBOOK_MEMBER,
	S_RUN_ADMIN, S_RUN_MEMBER
};
static const struct field scheme_fields[] = {
	[S_NAME] = { "name", K_STR, REQ, 0, 0 },
	[S_DISPLAY_NAME] = { "display_name", K_STR, REQ, 1, 128 },
	[S_DESCRIPTION] = { "description", K_STR, 0, 0, 1024 },
	[S_SCOPE] = { "scope", K_STR, REQ, 0, 0 },
	[S_TEAM_ADMIN] = { "default_team_admin_role", K_OBJ, 0, 0, 0 },
	[S_TEAM_USER] = { "default_team_user_role", K_OBJ, 0, 0, 0 },
	[S_TEAM_GUEST] = { "default_team_guest_role", K_OBJ, 0, 0, 0 },
	[S_CHANNEL_ADMIN] = { "default_channel_admin_role", K_OBJ, 0, 0, 0 },
	[S_CHANNEL_USER] = { "default_channel_user_role", K_OBJ, 0, 0, 0 },
	[S_CHANNEL_GUEST] = { "default_channel_guest_role", K_OBJ, 0, 0, 0 },
	[S_PLAYBOOK_ADMIN] = { "default_playbook_admin_role", K_OBJ, 0, 0, 0 },
	[S_PLAYBOOK_MEMBER] = { "default_playbook_member_role", K_OBJ, 0, 0, 0 },
	[S_RUN_ADMIN] = { "default_run_admin_role", K_OBJ, 0, 0, 0 },
	[S_RUN_MEMBER] = { "default_run_member_role", K_OBJ, 0, 0, 0 },
};

static void check_scheme(struct lc *c, const cJSON *obj)
{
	const cJSON *v[NFIELDS(scheme_fields)];
	const char *name, *scope, *why;
	unsigned long sc = 0;
	struct quoted qb;

	BIND(c, obj, "scheme", scheme_fields, v);
	if ((scope = str(v[S_SCOPE]))) {
		if (!strcmp(scope, "team"))
			sc = SCOPE_TEAM;
		else if (!strcmp(scope, "channel"))
			sc = SCOPE_CHANNEL;
		else
			problem(c, "scheme.scope", "must be \"team\" or \"channel\", not %s", q(&qb, scope));
	}
	/* The roles a scope needs; guest and playbook roles are optional. */
	for (int i = S_TEAM_ADMIN; i < (int)NFIELDS(scheme_fields); i++) {
		int needed = (sc == SCOPE_TEAM && (i == S_TEAM_ADMIN || i == S_TEAM_USER)) ||
			(sc && (i == S_CHANNEL_ADMIN || i == S_CHANNEL_USER));
		char prefix[64];

		snprintf(prefix, sizeof(prefix), "scheme.%s", scheme_fields[i].key);
		if (v[i])
			check_role_obj(c, v[i], prefix);
		else if (needed)
			fproblem(c, "scheme", scheme_fields[i].key, "missing (required for scope \"%s\")", scope);
	}
	if (!(name = str(v[S_NAME])))
		return;
	if ((why = role_name_problem(name)))
		problem(c, "scheme.name", "invalid scheme name %s: %s", q(&qb, name), why);
	define(c, &c->st->schemes, "scheme", "scheme.name", name, strlen(name), name, sc);
}

/* ---------------------------------------------------------- team, channel */

enum { T_NAME, T_DISPLAY_NAME, T_TYPE, T_DESCRIPTION, T_ALLOW_OPEN_INVITE, T_SCHEME };
static const struct field team_fields[] = {
	[T_NAME] = { "name", K_STR, REQ, 0, 0 },
	[T_DISPLAY_NAME] = { "display_name", K_STR, REQ, 1, 64 },
	[T_TYPE] = { "type", K_STR, REQ, 0, 0 },
	[T_DESCRIPTION] = { "description", K_STR, 0, 0, 255 },
	[T_ALLOW_OPEN_INVITE] = { "allow_open_invite", K_BOOL, 0, 0, 0 },
	[T_SCHEME] = { "scheme", K_STR, 0, 0, 0 },
};

static void check_team(struct lc *c, const cJSON *obj)
{
	const cJSON *v[NFIELDS(team_fields)];
	const char *name, *type, *why;
	struct quoted qb;

	BIND(c, obj, "team", team_fields, v);
	if ((type = str(v[T_TYPE])) && strcmp(type, "O") && strcmp(type, "I"))
		problem(c, "team.type", "must be \"O\" or \"I\", not %s", q(&qb, type));
	if (v[T_SCHEME])
		check_scheme_ref(c, "team", str(v[T_SCHEME]), SCOPE_TEAM);
	if (!(name = str(v[T_NAME])))
		return;
	if ((why = team_name_problem(name)))
		problem(c, "team.name", "invalid team name %s: %s", q(&qb, name), why);
	define(c, &c->st->teams, "team", "team.name", name, strlen(name), name, 0);
}

enum { C_TEAM, C_NAME, C_DISPLAY_NAME, C_TYPE, C_HEADER, C_PURPOSE, C_SCHEME, C_DELETED_AT };
static const struct field channel_fields[] = {
	[C_TEAM] = { "team", K_STR, REQ, 0, 0 },
	[C_NAME] = { "name", K_STR, REQ, 0, 0 },
	[C_DISPLAY_NAME] = { "display_name", K_STR, 0, 0, 64 },
	[C_TYPE] = { "type", K_STR, REQ, 0, 0 },
	[C_HEADER] = { "header", K_STR, 0, 0, 1024 },
	[C_PURPOSE] = { "purpose", K_STR, 0, 0, 250 },
	[C_SCHEME] = { "scheme", K_STR, 0, 0, 0 },
	[C_DELETED_AT] = { "deleted_at", K_INT, 0, 0, 0 },
};

/* The duplicate message names both halves of the (team, channel) key. */
static void define_channel(struct lc *c, const char *team, const char *name)
{
	char key[2 * MAX_NAME + 2];
	size_t klen = channel_key(team, name, key);
	struct quoted qb, qt;
	struct name *e;
	int added;

	if (!klen)
		return;
	if ((e = nameset_find(&c->st->channels, key, klen))) {
		problem(c, "channel.name", "duplicate channel %s in team %s (first defined on line %lu)",
			q(&qb, name), q(&qt, team), e->line);
		return;
	}
	nameset_add(&c->st->channels, &c->st->arena, key, klen, c->lineno, &added);
}

static void check_channel(struct lc *c, const cJSON *obj)
{
	const cJSON *v[NFIELDS(channel_fields)];
	const char *team, *name, *type, *why;
	struct quoted qb;

	BIND(c, obj, "channel", channel_fields, v);
	if ((type = str(v[C_TYPE])) && strcmp(type, "O") && strcmp(type, "P"))
		problem(c, "channel.type", "must be \"O\" or \"P\", not %s", q(&qb, type));
	if (v[C_SCHEME])
		check_scheme_ref(c, "channel", str(v[C_SCHEME]), SCOPE_CHANNEL);
	if ((team = str(v[C_TEAM])))
		check_team_ref(c, "channel", "team", team);
	if (!(name = str(v[C_NAME])))
		return;
	if ((why = channel_name_problem(name)))
		problem(c, "channel.name", "invalid channel name %s: %s", q(&qb, name), why);
	if (team)
		define_channel(c, team, name);
}

/* -------------------------------------------------------------- user, bot */

static const char *const auth_services[] = { "", "email", "gitlab", "saml", "ldap", "google",
	"office365", "openid" };

enum {
	U_USERNAME, U_EMAIL, U_AUTH_SERVICE, U_AUTH_DATA, U_PASSWORD, U_NICKNAME, U_FIRST_NAME,
	U_LAST_NAME, U_POSITION, U_ROLES, U_LOCALE, U_DELETE_AT, U_PROFILE_IMAGE, U_NOTIFY_PROPS,
	U_TEAMS, U_CUSTOM_STATUS, U_PREFERENCES /* the preference strings follow */
};
#define PREF(key) { key, K_STR, 0, 0, 0 }
static const struct field user_fields[] = {
	[U_USERNAME] = { "username", K_STR, REQ, 0, 0 },
	[U_EMAIL] = { "email", K_STR, REQ, 1, 128 },
	[U_AUTH_SERVICE] = { "auth_service", K_STR, 0, 0, 0 },
	[U_AUTH_DATA] = { "auth_data", K_STR, 0, 0, 128 },
	[U_PASSWORD] = { "password", K_STR, 0, 0, 72 },
	[U_NICKNAME] = { "nickname", K_STR, 0, 0, 64 },
	[U_FIRST_NAME] = { "first_name", K_STR, 0, 0, 64 },
	[U_LAST_NAME] = { "last_name", K_STR, 0, 0, 64 },
	[U_POSITION] = { "position", K_STR, 0, 0, 128 },
	[U_ROLES] = { "roles", K_STR, 0, 0, 0 },
	[U_LOCALE] = { "locale", K_STR, 0, 0, 0 },
	[U_DELETE_AT] = { "delete_at", K_INT, 0, 0, 0 },
	[U_PROFILE_IMAGE] = { "profile_image", K_STR, 0, 0, 0 },
	[U_NOTIFY_PROPS] = { "notify_props", K_OBJ, 0, 0, 0 },
	[U_TEAMS] = { "teams", K_ARR, 0, 0, 0 },
	[U_CUSTOM_STATUS] = { "custom_status", K_OBJ, 0, 0, 0 },
	PREF("theme"), PREF("military_time"), PREF("link_previews"), PREF("message_display"),
	PREF("collapse_consecutive_messages"), PREF("colorize_usernames"),
	PREF("channel_display_mode"), PREF("tutorial_step"), PREF("email_interval"),
	PREF("feature_enabled_markdown_preview"), PREF("formatting"), PREF("show_unread_section"),
	PREF("send_on_ctrl_enter"), PREF("code_block_ctrl_enter"), PREF("show_join_leave"),
	PREF("show_unread_scroll_position"), PREF("sync_drafts"), PREF("limit_visible_dms_gms"),
	PREF("name_format"),
};

/* bind() tracks fields in a 64-bit mask */
_Static_assert(NFIELDS(user_fields) <= MAX_FIELDS, "user_fields outgrew bind()'s mask");

enum { UT_NAME, UT_ROLES, UT_THEME, UT_CHANNELS };
static const struct field user_team_fields[] = {
	[UT_NAME] = { "name", K_STR, REQ, 0, 0 },
	[UT_ROLES] = { "roles", K_STR, 0, 0, 0 },
	[UT_THEME] = { "theme", K_STR, 0, 0, 0 },
	[UT_CHANNELS] = { "channels", K_ARR, 0, 0, 0 },
};

enum {
	UC_NAME, UC_ROLES, UC_NOTIFY_PROPS, UC_FAVORITE, UC_MENTION_COUNT, UC_MENTION_COUNT_ROOT,
	UC_URGENT_MENTION_COUNT, UC_MSG_COUNT, UC_MSG_COUNT_ROOT, UC_LAST_VIEWED_AT
};
static const struct field user_channel_fields[] = {
	[UC_NAME] = { "name", K_STR, REQ, 0, 0 },
	[UC_ROLES] = { "roles", K_STR, 0, 0, 0 },
	[UC_NOTIFY_PROPS] = { "notify_props", K_OBJ, 0, 0, 0 },
	[UC_FAVORITE] = { "favorite", K_BOOL, 0, 0, 0 },
	[UC_MENTION_COUNT] = { "mention_count", K_INT, 0, 0, 0 },
	[UC_MENTION_COUNT_ROOT] = { "mention_count_root", K_INT, 0, 0, 0 },
	[UC_URGENT_MENTION_COUNT] = { "urgend_mention_count", K_INT, 0, 0, 0 },
	[UC_MSG_COUNT] = { "msg_count", K_INT, 0, 0, 0 },
	[UC_MSG_COUNT_ROOT] = { "msg_count_root", K_INT, 0, 0, 0 },
	[UC_LAST_VIEWED_AT] = { "last_viewed_at", K_INT, 0, 0, 0 },
};

/*
 * For arrays of objects: names element i ("post.replies[2]") into out, and
 * reports it when it is not an object. Returns 0 for an object, -1 otherwise.
 */
static int element(struct lc *c, const cJSON *e, const char *prefix, const char *key, int i,
	char *out, size_t outlen)
{
	snprintf(out, outlen, "%s.%s[%d]", prefix, key, i);
	if (cJSON_IsObject(e))
		return 0;
	problem(c, out, "must be an object");
	return -1;
}

#define EACH(e, arr) for (const cJSON *e = (arr) ? (arr)->child : NULL; e; e = e->next)

static void check_user_channels(struct lc *c, const char *prefix, const char *team, const cJSON *arr)
{
	char ep[160];
	int i = 0;
	struct quoted qb, qt;

	EACH(ch, arr) {
		if (element(c, ch, prefix, "channels", i++, ep, sizeof(ep)) < 0)
			continue;
		const cJSON *v[NFIELDS(user_channel_fields)];
		const char *name;

		BIND(c, ch, ep, user_channel_fields, v);
		if (team && (name = str(v[UC_NAME])) && !find_channel(c->st, team, name))
			fproblem(c, ep, "name", "channel %s of team %s is not defined on an earlier line",
				q(&qb, name), q(&qt, team));
	}
}

static void check_user_teams(struct lc *c, const cJSON *arr)
{
	char ep[96];
	int i = 0;

	EACH(t, arr) {
		if (element(c, t, "user", "teams", i++, ep, sizeof(ep)) < 0)
			continue;
		const cJSON *v[NFIELDS(user_team_fields)];
		const char *team;

		BIND(c, t, ep, user_team_fields, v);
		team = str(v[UT_NAME]);
		if (team && check_team_ref(c, ep, "name", team) < 0)
			team = NULL; /* one error for the team, none per channel */
		check_user_channels(c, ep, team, v[UT_CHANNELS]);
	}
}

static void check_auth(struct lc *c, const cJSON **v)
{
	const char *svc = str(v[U_AUTH_SERVICE]), *data = str(v[U_AUTH_DATA]);
	int has_svc = svc && *svc, has_data = data && *data;
	struct quoted qb;

	if (svc) {
		size_t i;

		for (i = 0; i < NFIELDS(auth_services); i++)
			if (!strcmp(svc, auth_services[i]))
				break;
		if (i == NFIELDS(auth_services))
			problem(c, "user.auth_service", "unknown auth service %s", q(&qb, svc));
	}
	if (has_svc != has_data)
		problem(c, "user.auth_data", "auth_data and auth_service must both be set or both be empty");
	if (has_data && str(v[U_PASSWORD]) && *str(v[U_PASSWORD]))
		problem(c, "user.password", "not allowed together with auth_data");
}

/* Users and bots share one namespace of lowercased usernames. */
static void define_username(struct lc *c, const char *type, const char *username, int is_bot)
{
	char field[32], low[MAX_NAME + 1];
	const char *why;
	struct quoted qb;

	snprintf(field, sizeof(field), "%s.username", type);
	if (lower_username(username, low) < 0) {
		problem(c, field, "invalid username %s: must be 1-64 characters", q(&qb, username));
		return;
	}
	if ((why = username_problem(low)))
		problem(c, field, "invalid username %s: %s", q(&qb, username), why);
	define(c, &c->st->users, "username", field, low, strlen(low), low, (unsigned long)is_bot);
}

static void check_user(struct lc *c, const cJSON *obj)
{
	const cJSON *v[NFIELDS(user_fields)];

	BIND(c, obj, "user", user_fields, v);
	check_auth(c, v);
	/* the server only warns about a missing profile image */
	if (v[U_PROFILE_IMAGE])
		lookup_path(c, "user", "profile_image", str(v[U_PROFILE_IMAGE]), 0);
	check_user_teams(c, v[U_TEAMS]);
	if (v[U_USERNAME])
		define_username(c, "user", str(v[U_USERNAME]), 0);
}

enum { B_USERNAME, B_OWNER, B_DISPLAY_NAME, B_DESCRIPTION, B_DELETE_AT, B_PROFILE_IMAGE };
static const struct field bot_fields[] = {
	[B_USERNAME] = { "username", K_STR, REQ, 0, 0 },
	[B_OWNER] = { "owner", K_STR, REQ, 0, 0 },
	[B_DISPLAY_NAME] = { "display_name", K_STR, 0, 0, 64 },
	[B_DESCRIPTION] = { "description", K_STR, 0, 0, 1024 },
	[B_DELETE_AT] = { "delete_at", K_INT, 0, 0, 0 },
	[B_PROFILE_IMAGE] = { "profile_image", K_STR, 0, 0, 0 },
};

static void check_bot(struct lc *c, const cJSON *obj)
{
	const cJSON *v[NFIELDS(bot_fields)];

	BIND(c, obj, "bot", bot_fields, v);
	if (v[B_OWNER])
		check_user_ref(c, "bot", "owner", str(v[B_OWNER]));
	if (v[B_PROFILE_IMAGE])
		lookup_path(c, "bot", "profile_image", str(v[B_PROFILE_IMAGE]), 0);
	if (v[B_USERNAME])
		define_username(c, "bot", str(v[B_USERNAME]), 1);
}

/* ------------------------------------------------------------------ posts */

/* The channel a post lives in, to check flagged_by against its members. */
struct members {
	char name[MAX_CHANNEL_MEMBERS][MAX_NAME + 1];
	int n; /* -1: not a direct channel, or members unknown */
};

static int is_member(const struct members *m, const char *username)
{
	char low[MAX_NAME + 1];

	if (lower_username(username, low) < 0)
		return 0;
	for (int i = 0; i < m->n; i++)
		if (!strcmp(m->name[i], low))
			return 1;
	return 0;
}

/* An array of usernames that must resolve, and be members when m->n >= 0. */
static void check_usernames(struct lc *c, const char *prefix, const char *key, const cJSON *arr,
	const struct members *m)
{
	int i = 0;
	struct quoted qb;

	for (const cJSON *e = arr ? arr->child : NULL; e; e = e->next, i++) {
		char k[64];

		snprintf(k, sizeof(k), "%s[%d]", key, i);
		if (!cJSON_IsString(e))
			fproblem(c, prefix, k, "must be a string");
		else if (check_user_ref(c, prefix, k, e->valuestring) < 0)
			;
		else if (m && m->n >= 0 && !is_member(m, e->valuestring))
			fproblem(c, prefix, k, "user %s is not a member of the channel", q(&qb, e->valuestring));
	}
}

enum { RE_USER, RE_EMOJI_NAME, RE_CREATE_AT };
static const struct field reaction_fields[] = {
	[RE_USER] = { "user", K_STR, REQ, 0, 0 },
	[RE_EMOJI_NAME] = { "emoji_name", K_STR, REQ, 1, MAX_NAME },
	[RE_CREATE_AT] = { "create_at", K_INT, REQ, 0, 0 },
};

static void check_reactions(struct lc *c, const char *prefix, const cJSON *arr, double post_create_at)
{
	char ep[160];
	int i = 0;

	EACH(r, arr) {
		if (element(c, r, prefix, "reactions", i++, ep, sizeof(ep)) < 0)
			continue;
		const cJSON *v[NFIELDS(reaction_fields)];

		BIND(c, r, ep, reaction_fields, v);
		if (v[RE_USER])
			check_user_ref(c, ep, "user", str(v[RE_USER]));
		if (!v[RE_CREATE_AT])
			continue;
		if (v[RE_CREATE_AT]->valuedouble == 0)
			fproblem(c, ep, "create_at", "must not be 0");
		else if (v[RE_CREATE_AT]->valuedouble < post_create_at)
			fproblem(c, ep, "create_at", "earlier than the post's create_at");
	}
}

static const struct field attachment_fields[] = {
	{ "path", K_STR, REQ, 1, 0 },
};

/* Returns how many attachments the array lists. */
static unsigned long check_attachments(struct lc *c, const char *prefix, const cJSON *arr)
{
	char ep[160];
	int i = 0;

	EACH(a, arr) {
		if (element(c, a, prefix, "attachments", i++, ep, sizeof(ep)) < 0)
			continue;
		const cJSON *v[1];

		BIND(c, a, ep, attachment_fields, v);
		if (v[0] && *str(v[0]))
			lookup_path(c, ep, "path", str(v[0]), 1);
	}
	return (unsigned long)i;
}

enum { TF_USER, TF_LAST_VIEWED, TF_UNREAD_MENTIONS };
static const struct field follower_fields[] = {
	[TF_USER] = { "user", K_STR, REQ, 0, 0 },
	[TF_LAST_VIEWED] = { "last_viewed", K_INT, 0, 0, 0 },
	[TF_UNREAD_MENTIONS] = { "unread_mentions", K_INT, 0, 0, 0 },
};

static void check_followers(struct lc *c, const char *prefix, const cJSON *arr)
{
	char ep[160];
	int i = 0;

	EACH(f, arr) {
		if (element(c, f, prefix, "thread_followers", i++, ep, sizeof(ep)) < 0)
			continue;
		const cJSON *v[NFIELDS(follower_fields)];

		BIND(c, f, ep, follower_fields, v);
		if (v[TF_USER])
			check_user_ref(c, ep, "user", str(v[TF_USER]));
	}
}

/* The fields post, direct_post and reply have in common come first, so one
 * function checks them for all three. */
enum {
	P_USER, P_MESSAGE, P_CREATE_AT, P_TYPE, P_PROPS, P_EDIT_AT, P_IS_PINNED, P_FLAGGED_BY,
	P_REACTIONS, P_ATTACHMENTS, P_COMMON,
	P_THREAD_FOLLOWERS = P_COMMON, P_REPLIES, P_TEAM, P_CHANNEL, P_CHANNEL_MEMBERS
};
#define POST_COMMON_FIELDS                                                  \
	[P_USER] = { "user", K_STR, REQ, 0, 0 },                            \
	[P_MESSAGE] = { "message", K_STR, REQ, 0, MAX_POST_RUNES },         \
	[P_CREATE_AT] = { "create_at", K_INT, REQ, 0, 0 },                  \
	[P_TYPE] = { "type", K_STR, 0, 0, 0 },                              \
	[P_PROPS] = { "props", K_OBJ, 0, 0, 0 },                            \
	[P_EDIT_AT] = { "edit_at", K_INT, 0, 0, 0 },                        \
	[P_IS_PINNED] = { "is_pinned", K_BOOL, 0, 0, 0 },                   \
	[P_FLAGGED_BY] = { "flagged_by", K_ARR, 0, 0, 0 },                  \
	[P_REACTIONS] = { "reactions", K_ARR, 0, 0, 0 },                    \
	[P_ATTACHMENTS] = { "attachments", K_ARR, 0, 0, 0 }

static const struct field reply_fields[] = {
	POST_COMMON_FIELDS,
};
static const struct field post_fields[] = {
	POST_COMMON_FIELDS,
	[P_THREAD_FOLLOWERS] = { "thread_followers", K_ARR, 0, 0, 0 },
	[P_REPLIES] = { "replies", K_ARR, 0, 0, 0 },
	[P_TEAM] = { "team", K_STR, REQ, 0, 0 },
	[P_CHANNEL] = { "channel", K_STR, REQ, 0, 0 },
};
static const struct field direct_post_fields[] = {
	POST_COMMON_FIELDS,
	[P_THREAD_FOLLOWERS] = { "thread_followers", K_ARR, 0, 0, 0 },
	[P_REPLIES] = { "replies", K_ARR, 0, 0, 0 },
	[P_TEAM] = { "team", K_STR, 0, 0, 0 },
	[P_CHANNEL] = { "channel", K_STR, 0, 0, 0 },
	[P_CHANNEL_MEMBERS] = { "channel_members", K_ARR, REQ, 0, 0 },
};

/* props serialized must stay under the server's limit; only a long line can
 * exceed it, so short lines skip the serialization. */
static void check_props(struct lc *c, const char *prefix, const cJSON *props)
{
	char *s;
	size_t n;

	if (!props || c->len <= MAX_PROPS_RUNES)
		return;
	if (!(s = cJSON_PrintUnformatted(props)))
		return;
	n = runes(s);
	free(s);
	if (n > MAX_PROPS_RUNES)
		fproblem(c, prefix, "props", "longer than %d characters serialized (%zu)",
			MAX_PROPS_RUNES, n);
}

/* Checks what post, reply and direct_post share; returns attachments seen. */
static unsigned long check_post_common(struct lc *c, const char *prefix, const cJSON **v,
	const struct members *m, double parent_create_at)
{
	double create_at = v[P_CREATE_AT] ? v[P_CREATE_AT]->valuedouble : parent_create_at;

	if (v[P_USER])
		check_user_ref(c, prefix, "user", str(v[P_USER]));
	if (v[P_CREATE_AT] && create_at == 0)
		fproblem(c, prefix, "create_at", "must not be 0");
	check_props(c, prefix, v[P_PROPS]);
	check_usernames(c, prefix, "flagged_by", v[P_FLAGGED_BY], m);
	check_reactions(c, prefix, v[P_REACTIONS], create_at);
	return check_attachments(c, prefix, v[P_ATTACHMENTS]);
}

/* Replies of a post or direct post; adds to the reply and attachment counts. */
static unsigned long check_replies(struct lc *c, const char *prefix, const cJSON *arr,
	const struct members *m, double parent_create_at)
{
	char ep[96];
	int i = 0;

	EACH(r, arr) {
		if (element(c, r, prefix, "replies", i++, ep, sizeof(ep)) < 0)
			continue;
		const cJSON *v[NFIELDS(reply_fields)];

		BIND(c, r, ep, reply_fields, v);
		c->st->counts.attachments += check_post_common(c, ep, v, m, parent_create_at);
	}
	c->st->counts.replies += (unsigned long)i;
	return (unsigned long)i;
}

static void check_post(struct lc *c, const cJSON *obj)
{
	const cJSON *v[NFIELDS(post_fields)];
	const char *team, *channel;
	struct name *ch = NULL;
	struct members none = { .n = -1 };
	double create_at;
	unsigned long replies;
	struct quoted qb, qt;

	BIND(c, obj, "post", post_fields, v);
	team = str(v[P_TEAM]);
	channel = str(v[P_CHANNEL]);
	if (team && check_team_ref(c, "post", "team", team) == 0 && channel &&
	    !(ch = find_channel(c->st, team, channel)))
		problem(c, "post.channel", "channel %s of team %s is not defined on an earlier line",
			q(&qb, channel), q(&qt, team));
	create_at = v[P_CREATE_AT] ? v[P_CREATE_AT]->valuedouble : 0;
	c->st->counts.attachments += check_post_common(c, "post", v, &none, create_at);
	check_followers(c, "post", v[P_THREAD_FOLLOWERS]);
	replies = check_replies(c, "post", v[P_REPLIES], &none, create_at);
	if (ch) {
		ch->a++;
		ch->b += replies;
	}
}

/* Fills m from an array of usernames; reports the count and unknown users. */
static void check_members(struct lc *c, const char *prefix, const char *key, const cJSON *arr,
	struct members *m)
{
	int n = cJSON_GetArraySize(arr), i = 0;

	m->n = 0;
	if (n < 2 || n > MAX_CHANNEL_MEMBERS)
		fproblem(c, prefix, key, "must list 2 to %d members, found %d", MAX_CHANNEL_MEMBERS, n);
	for (const cJSON *e = arr->child; e; e = e->next, i++) {
		char k[64];

		snprintf(k, sizeof(k), "%s[%d]", key, i);
		if (!cJSON_IsString(e)) {
			fproblem(c, prefix, k, "must be a string");
			continue;
		}
		check_user_ref(c, prefix, k, e->valuestring);
		if (m->n < MAX_CHANNEL_MEMBERS && lower_username(e->valuestring, m->name[m->n]) == 0)
			m->n++;
	}
}

static void check_direct_post(struct lc *c, const cJSON *obj)
{
	const cJSON *v[NFIELDS(direct_post_fields)];
	struct members m = { .n = -1 };
	double create_at;

	BIND(c, obj, "direct_post", direct_post_fields, v);
	if (v[P_CHANNEL_MEMBERS])
		check_members(c, "direct_post", "channel_members", v[P_CHANNEL_MEMBERS], &m);
	create_at = v[P_CREATE_AT] ? v[P_CREATE_AT]->valuedouble : 0;
	c->st->counts.attachments += check_post_common(c, "direct_post", v, &m, create_at);
	check_followers(c, "direct_post", v[P_THREAD_FOLLOWERS]);
	check_replies(c, "direct_post", v[P_REPLIES], &m, create_at);
}

enum { DC_PARTICIPANTS, DC_MEMBERS, DC_HEADER, DC_FAVORITED_BY, DC_SHOWN_BY };
static const struct field direct_channel_fields[] = {
	[DC_PARTICIPANTS] = { "participants", K_ARR, 0, 0, 0 },
	[DC_MEMBERS] = { "members", K_ARR, 0, 0, 0 },
	[DC_HEADER] = { "header", K_STR, 0, 0, 1024 },
	[DC_FAVORITED_BY] = { "favorited_by", K_ARR, 0, 0, 0 },
	[DC_SHOWN_BY] = { "shown_by", K_ARR, 0, 0, 0 },
};

enum { DP_USERNAME, DP_NOTIFY_PROPS, DP_SCHEME_USER, DP_SCHEME_ADMIN, DP_SCHEME_GUEST };
static const struct field participant_fields[] = {
	[DP_USERNAME] = { "username", K_STR, REQ, 0, 0 },
	[DP_NOTIFY_PROPS] = { "notify_props", K_OBJ, 0, 0, 0 },
	[DP_SCHEME_USER] = { "scheme_user", K_BOOL, 0, 0, 0 },
	[DP_SCHEME_ADMIN] = { "scheme_admin", K_BOOL, 0, 0, 0 },
	[DP_SCHEME_GUEST] = { "scheme_guest", K_BOOL, 0, 0, 0 },
};

static void check_participants(struct lc *c, const cJSON *arr, struct members *m)
{
	int n = cJSON_GetArraySize(arr), i = 0;
	char ep[96];

	m->n = 0;
	if (n < 2 || n > MAX_CHANNEL_MEMBERS)
		problem(c, "direct_channel.participants", "must list 2 to %d members, found %d",
			MAX_CHANNEL_MEMBERS, n);
	EACH(p, arr) {
		if (element(c, p, "direct_channel", "participants", i++, ep, sizeof(ep)) < 0)
			continue;
		const cJSON *v[NFIELDS(participant_fields)];
		const char *u;

		BIND(c, p, ep, participant_fields, v);
		if (!(u = str(v[DP_USERNAME])))
			continue;
		check_user_ref(c, ep, "username", u);
		if (m->n < MAX_CHANNEL_MEMBERS && lower_username(u, m->name[m->n]) == 0)
			m->n++;
	}
}

static void check_direct_channel(struct lc *c, const cJSON *obj)
{
	const cJSON *v[NFIELDS(direct_channel_fields)];
	struct members m = { .n = -1 };

	BIND(c, obj, "direct_channel", direct_channel_fields, v);
	/* current exporters write participants, older ones members */
	if (v[DC_PARTICIPANTS])
		check_participants(c, v[DC_PARTICIPANTS], &m);
	else if (v[DC_MEMBERS])
		check_members(c, "direct_channel", "members", v[DC_MEMBERS], &m);
	else
		problem(c, "direct_channel.participants", "missing, and no \"members\" either");
	check_usernames(c, "direct_channel", "favorited_by", v[DC_FAVORITED_BY], &m);
	check_strings(c, "direct_channel", "shown_by", v[DC_SHOWN_BY]);
}

enum { E_NAME, E_IMAGE };
static const struct field emoji_fields[] = {
	[E_NAME] = { "name", K_STR, REQ, 0, 0 },
	[E_IMAGE] = { "image", K_STR, REQ, 1, 0 },
};

static void check_emoji(struct lc *c, const cJSON *obj)
{
	const cJSON *v[NFIELDS(emoji_fields)];
	const char *name, *why;
	struct quoted qb;

	BIND(c, obj, "emoji", emoji_fields, v);
	if (v[E_IMAGE] && *str(v[E_IMAGE]))
		lookup_path(c, "emoji", "image", str(v[E_IMAGE]), 1);
	if (!(name = str(v[E_NAME])))
		return;
	if ((why = emoji_name_problem(name)))
		problem(c, "emoji.name", "invalid emoji name %s: %s", q(&qb, name), why);
	define(c, &c->st->emojis, "emoji", "emoji.name", name, strlen(name), name, 0);
}

/* ------------------------------------------------------------- dispatch */

static void check_version(struct lc *c, const cJSON *line)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(line, "version");

	if (c->lineno != 1) {
		problem(c, "type", "version line allowed only on line 1");
		return;
	}
	if (!v || cJSON_IsNull(v))
		problem(c, "version", "missing");
	else if (!cJSON_IsNumber(v))
		problem(c, "version", "must be the number 1");
	else if (v->valuedouble != 1)
		problem(c, "version", "unsupported version %g, must be 1", v->valuedouble);
}

struct line_type {
	const char *name;
	void (*check)(struct lc *, const cJSON *obj);
	size_t count; /* offsetof in struct bulk_counts */
};

static const struct line_type line_types[] = {
	{ "post", check_post, offsetof(struct bulk_counts, posts) },
	{ "direct_post", check_direct_post, offsetof(struct bulk_counts, direct_posts) },
	{ "user", check_user, offsetof(struct bulk_counts, users) },
	{ "channel", check_channel, offsetof(struct bulk_counts, channels) },
	{ "direct_channel", check_direct_channel, offsetof(struct bulk_counts, direct_channels) },
	{ "team", check_team, offsetof(struct bulk_counts, teams) },
	{ "bot", check_bot, offsetof(struct bulk_counts, bots) },
	{ "emoji", check_emoji, offsetof(struct bulk_counts, emojis) },
	{ "role", check_role, offsetof(struct bulk_counts, roles) },
	{ "scheme", check_scheme, offsetof(struct bulk_counts, schemes) },
};

static const struct line_type *find_type(const char *name)
{
	for (size_t i = 0; i < NFIELDS(line_types); i++)
		if (!strcmp(line_types[i].name, name))
			return &line_types[i];
	return NULL;
}

/* {"type":"<t>","<t>":{...}}: the type, then the object under its name. */
static void check_object(struct lc *c, const cJSON *line)
{
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(line, "type");
	const struct line_type *lt;
	const cJSON *obj;
	struct quoted qb;

	if (!type || cJSON_IsNull(type)) {
		problem(c, "type", "missing");
		return;
	}
	if (!cJSON_IsString(type)) {
		problem(c, "type", "must be a string");
		return;
	}
	if (!strcmp(type->valuestring, "version")) {
		check_version(c, line);
		return;
	}
	if (c->lineno == 1) {
		problem(c, "type", "first line must be the version line, not %s", q(&qb, type->valuestring));
		/* go on: the rest of the line can still be judged */
	}
	if (!(lt = find_type(type->valuestring))) {
		problem(c, "type", "unknown line type %s", q(&qb, type->valuestring));
		return;
	}
	(*(unsigned long *)((char *)&c->st->counts + lt->count))++;
	obj = cJSON_GetObjectItemCaseSensitive(line, lt->name);
	if (!obj || cJSON_IsNull(obj))
		problem(c, lt->name, "missing");
	else if (!cJSON_IsObject(obj))
		problem(c, lt->name, "must be an object");
	else
		lt->check(c, obj);
}

static int is_blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return 0;
	return 1;
}

void bulk_line_too_long(struct bulk_state *st, unsigned long lineno, size_t len,
	bulk_report_fn report, void *ctx)
{
	struct lc c = { st, lineno, len, report, ctx };

	st->lines++;
	problem(&c, NULL, "line longer than 16 MiB (%zu bytes)", len);
}

void bulk_check_line(struct bulk_state *st, const char *line, size_t len, unsigned long lineno,
	bulk_report_fn report, void *ctx)
{
	struct lc c = { st, lineno, len, report, ctx };
	const char *end = NULL;
	cJSON *json;

	if (len > BULK_MAX_LINE) {
		bulk_line_too_long(st, lineno, len, report, ctx);
		return;
	}
	st->lines++;
	if (is_blank(line, len)) {
		problem(&c, NULL, "blank line");
		return;
	}
	json = cJSON_ParseWithLengthOpts(line, len, &end, 0);
	/* the server's json.Unmarshal refuses trailing data too */
	if (json && !is_blank(end, len - (size_t)(end - line))) {
		cJSON_Delete(json);
		json = NULL;
	}
	if (!json) {
		size_t col = end && end >= line && end <= line + len ? (size_t)(end - line) + 1 : 1;

		problem(&c, NULL, "invalid JSON near column %zu", col);
		return;
	}
	if (!cJSON_IsObject(json))
		problem(&c, NULL, "line is not a JSON object");
	else
		check_object(&c, json);
	cJSON_Delete(json);
}

void bulk_finish(struct bulk_state *st, bulk_report_fn report, void *ctx)
{
	struct lc c = { st, 0, 0, report, ctx };

	if (!st->lines)
		problem(&c, NULL, "empty file: the version line is missing");
}

/* ---------------------------------------------------------------- walks */

int bulk_state_foreach_team(const struct bulk_state *st,
	int (*cb)(void *ctx, const char *team), void *ctx)
{
	int ret;

	for (size_t i = 0; i < st->teams.n; i++)
		if ((ret = cb(ctx, st->teams.v[i].key)))
			return ret;
	return 0;
}

int bulk_state_foreach_channel(const struct bulk_state *st,
	int (*cb)(void *ctx, const char *team, const char *channel,
		unsigned long posts, unsigned long replies), void *ctx)
{
	int ret;

	for (size_t i = 0; i < st->channels.n; i++) {
		const struct name *e = &st->channels.v[i];

		if ((ret = cb(ctx, e->key, e->key + strlen(e->key) + 1, e->a, e->b)))
			return ret;
	}
	return 0;
}

int bulk_state_foreach_user(const struct bulk_state *st,
	int (*cb)(void *ctx, const char *username, int is_bot), void *ctx)
{
	int ret;

	for (size_t i = 0; i < st->users.n; i++)
		if ((ret = cb(ctx, st->users.v[i].key, (int)st->users.v[i].a)))
			return ret;
	return 0;
}

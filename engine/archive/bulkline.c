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
#define MAX_POST_RUNES 16383 /* MaxPostSize on current databases */
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
	const char *key; /* interned; a channel's key is "team\0channel" */
	uint32_t len, hash;
	unsigned long line; /* where it was defined */
	unsigned long a, b; /* channel: posts, replies; scheme: scope; user: is_bot */
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
static struct name *nameset_add(struct nameset *ns, struct arena_chunk **arena, const char *key, size_t len,
				unsigned long line, int *added)
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
	int target; /* major * 100 + minor; 0: the newest rules */
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

void bulk_state_set_target(struct bulk_state *st, int version)
{
	st->target = version;
}

/* Whether the target server is at least `version` (an unknown target is the newest). */
static int target_at_least(const struct bulk_state *st, int version)
{
	return !st->target || st->target >= version;
}

int bulk_parse_version(const char *s, int *version)
{
	long major, minor;
	char *end;

	if (*s == 'v' || *s == 'V')
		s++;
	if (*s < '0' || *s > '9')
		return -1;
	major = strtol(s, &end, 10);
	if (*end != '.' || end[1] < '0' || end[1] > '9')
		return -1;
	minor = strtol(end + 1, &end, 10);
	if (major > 999 || minor > 99)
		return -1;
	*version = (int)(major * 100 + minor);
	return 0;
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
__attribute__((format(printf, 3, 4))) static void problem(struct lc *c, const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vproblem(c, field, fmt, ap);
	va_end(ap);
}

/* A problem with prefix.key, e.g. "post.replies[1]" + "user". */
__attribute__((format(printf, 4, 5))) static void fproblem(struct lc *c, const char *prefix, const char *key,
							   const char *fmt, ...)
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
		fproblem(c, prefix, f->key, f->min == 1 ? "must not be empty" : "shorter than %u characters",
			 f->min);
}

/*
 * Fills val[i] with the member for spec[i], NULL when absent, null or of the
 * wrong kind; reports wrong kinds, missing required fields and lengths.
 */
static void bind(struct lc *c, const cJSON *obj, const char *prefix, const struct field *spec, size_t n,
		 const cJSON **val)
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
	static const char *const reserved[] = { "admin",  "api",      "channel", "claim", "error",
						"files",  "help",     "landing", "login", "mfa",
						"oauth",  "plug",     "plugins", "post",  "signup",
						"boards", "playbooks" };
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

static const char *name_problem(const char *s, size_t min);

static const char *role_name_problem(const char *s)
{
	return name_problem(s, 1);
}

static const char *scheme_name_problem(const char *s)
{
	return name_problem(s, 2);
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

/*
 * A few of the system emoji names (public/model/emoji_data.go) a custom emoji
 * may not take. Only the commonest: the full list is thousands of names.
 */
static const char *const system_emojis[] = {
	"+1",    "-1",     "100",      "blush",      "grin",     "grinning",
	"heart", "joy",    "laughing", "ok_hand",    "rocket",   "slightly_smiling_face",
	"smile", "smiley", "tada",     "thumbsdown", "thumbsup", "white_check_mark",
	"wink"
};

static const char *emoji_name_problem(const char *s)
{
	size_t len = strlen(s);

	if (len < 1 || len > MAX_NAME)
		return "must be 1-64 characters";
	for (const char *p = s; *p; p++)
		if (!is_lower_alnum(*p) && !(*p >= 'A' && *p <= 'Z') && !strchr("-+_", *p))
			return "only letters, digits, '-', '+' and '_' are allowed";
	for (size_t i = 0; i < NFIELDS(system_emojis); i++)
		if (!strcmp(s, system_emojis[i]))
			return "is the name of a system emoji";
	return NULL;
}

/* Roles: ^[a-z0-9_]+$, at most 64 (model.IsValidRoleName). Schemes:
 * ^[a-z0-9_]{2,64}$ (model.IsValidSchemeName), so min is 2 for them. */
static const char *name_problem(const char *s, size_t min)
{
	size_t len = strlen(s);

	if (len < min || len > MAX_NAME)
		return min == 1 ? "must be 1-64 characters" : "must be 2-64 characters";
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

/*
 * Team and channel names as the import stores them: lowercased since 8.0
 * (the server's validators check strings.ToLower(name); MM-51487). Returns
 * the name to judge and key by: s itself, or out.
 */
static const char *import_name(const struct bulk_state *st, const char *s, char out[MAX_NAME + 1])
{
	if (!target_at_least(st, 800) || lower_username(s, out) < 0)
		return s;
	return out;
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
	char key[2 * MAX_NAME + 2], lt[MAX_NAME + 1], lc[MAX_NAME + 1];
	size_t len = channel_key(import_name(st, team, lt), import_name(st, channel, lc), key);

	return len ? nameset_find(&st->channels, key, len) : NULL;
}

/* Defines a name once; reports a duplicate with where it was first defined. */
static void define(struct lc *c, struct nameset *ns, const char *what, const char *field, const char *key,
		   size_t len, const char *shown, unsigned long a)
{
	struct quoted qb;
	int added;
	struct name *e = nameset_add(ns, &c->st->arena, key, len, c->lineno, &added);

	if (added)
		e->a = a;
	else
		problem(c, field, "duplicate %s %s (first defined on line %lu)", what, q(&qb, shown), e->line);
}

static void undefined(struct lc *c, const char *prefix, const char *key, const char *what, const char *name)
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
	char low[MAX_NAME + 1];
	const char *t = import_name(c->st, team, low);

	if (nameset_find(&c->st->teams, t, strlen(t)))
		return 0;
	undefined(c, prefix, key, "team", team);
	return -1;
}

enum scope { SCOPE_TEAM = 1, SCOPE_CHANNEL };

static void check_scheme_ref(struct lc *c, const char *prefix, const char *scheme, unsigned long want)
{
	struct quoted qb;
	struct name *e = nameset_find(&c->st->schemes, scheme, strlen(scheme));
	const char *why;

	if ((why = scheme_name_problem(scheme)))
		fproblem(c, prefix, "scheme", "invalid scheme name %s: %s", q(&qb, scheme), why);
	else if (!e)
		undefined(c, prefix, "scheme", "scheme", scheme);
	else if (e->a && e->a != want) /* a scheme without a valid scope is reported on its own line */
		fproblem(c, prefix, "scheme", "scheme %s has scope \"%s\", need \"%s\"", q(&qb, scheme),
			 e->a == SCOPE_TEAM ? "team" : "channel", want == SCOPE_TEAM ? "team" : "channel");
}

/*
 * filepath.Join("data", path) as the server computes it before the lookup
 * (ValidateAttachmentPathForImport in server/channels/app/imports/
 * import_validators.go): repeated slashes, "." and "a/.." are cleaned away,
 * a leading '/' is just a separator. Returns 0 with the entry name in out,
 * or -1 when the result escapes data/ (or does not fit).
 */
static int data_path(const char *path, char *out, size_t outlen)
{
	size_t n = 4;
	const char *p = path;

	if (outlen < 5)
		return -1;
	memcpy(out, "data", 4);
	while (*p) {
		const char *seg;
		size_t len;

		while (*p == '/')
			p++;
		seg = p;
		while (*p && *p != '/')
			p++;
		len = (size_t)(p - seg);
		if (!len || (len == 1 && seg[0] == '.'))
			continue;
		if (len == 2 && seg[0] == '.' && seg[1] == '.') {
			char *slash;

			if (!n)
				return -1; /* above data/: escapes */
			out[n] = '\0';
			slash = strrchr(out, '/');
			n = slash ? (size_t)(slash - out) : 0;
			continue;
		}
		if (n + 1 + len + 1 > outlen)
			return -1;
		if (n)
			out[n++] = '/';
		memcpy(out + n, seg, len);
		n += len;
	}
	out[n] = '\0';
	return n >= 4 && !strncmp(out, "data", 4) && (n == 4 || out[4] == '/') ? 0 : -1;
}

/* What a missing file means for the line. */
enum need { OPTIONAL, REQUIRED, SKIPPABLE };

/*
 * A path relative to data/ (§8.4): it must not escape data/, and with a
 * lookup, the cleaned entry must be in the zip. An attachment (SKIPPABLE)
 * the export listed in warnings.txt may be missing: the import skips it.
 * Returns 1 if present, 0 if not, -1 if not checked.
 */
static int lookup_path(struct lc *c, const char *prefix, const char *key, const char *path, enum need need)
{
	struct quoted qb, qn;
	char name[4096];
	int found;

	if (data_path(path, name, sizeof(name)) < 0) {
		fproblem(c, prefix, key, "path %s escapes data/", q(&qb, path));
		return 0;
	}
	if (!c->st->lookup)
		return -1;
	found = c->st->lookup(c->st->lookup_ctx, name);
	if (found == BULK_PRESENT)
		return 1;
	if (need == OPTIONAL || (need == SKIPPABLE && found == BULK_EXCUSED))
		return 0;
	q(&qn, name);
	if (!strncmp(path, "data/", 5))
		fproblem(c, prefix, key, "file %s not in archive (paths are relative to data/)", qn.s);
	else if (found == BULK_EXCUSED)
		fproblem(c, prefix, key,
			 "file %s not in archive (the export could not read it, "
			 "and the import stops at a missing image)",
			 qn.s);
	else
		fproblem(c, prefix, key, "file %s not in archive", qn.s);
	return 0;
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
	[R_DISPLAY_NAME] = { "display_name", K_STR, REQ, 1, 128 },
	[R_DESCRIPTION] = { "description", K_STR, 0, 0, 1024 },
	[R_PERMISSIONS] = { "permissions", K_ARR, 0, 0, 0 },
	[R_SCHEME_MANAGED] = { "scheme_managed", K_BOOL, 0, 0, 0 },
};

/*
 * model.AllPermissions + model.DeprecatedPermissions
 * (server/public/model/permission.go), each with the first release that knows
 * it (0: every supported release). ValidateRoleImportData refuses any other.
 */
static const struct permission {
	const char *id;
	int since;
} permissions[] = {
	{ "invite_user", 0 },
	{ "add_user_to_team", 0 },
	{ "use_slash_commands", 0 },
	{ "manage_slash_commands", 0 },
	{ "manage_own_slash_commands", 0 },
	{ "manage_others_slash_commands", 0 },
	{ "create_public_channel", 0 },
	{ "create_private_channel", 0 },
	{ "manage_public_channel_members", 0 },
	{ "manage_private_channel_members", 0 },
	{ "convert_public_channel_to_private", 0 },
	{ "convert_private_channel_to_public", 0 },
	{ "assign_system_admin_role", 0 },
	{ "manage_roles", 0 },
	{ "manage_team_roles", 0 },
	{ "manage_channel_roles", 0 },
	{ "manage_system", 0 },
	{ "create_direct_channel", 0 },
	{ "create_group_channel", 0 },
	{ "manage_public_channel_properties", 0 },
	{ "manage_private_channel_properties", 0 },
	{ "list_public_teams", 0 },
	{ "join_public_teams", 0 },
	{ "list_private_teams", 0 },
	{ "join_private_teams", 0 },
	{ "list_team_channels", 0 },
	{ "join_public_channels", 0 },
	{ "delete_public_channel", 0 },
	{ "delete_private_channel", 0 },
	{ "edit_other_users", 0 },
	{ "read_channel", 0 },
	{ "read_channel_content", 0 },
	{ "read_public_channel_groups", 0 },
	{ "read_private_channel_groups", 0 },
	{ "read_public_channel", 0 },
	{ "add_reaction", 0 },
	{ "remove_reaction", 0 },
	{ "remove_others_reactions", 0 },
	{ "permanent_delete_user", 0 },
	{ "upload_file", 0 },
	{ "get_public_link", 0 },
	{ "manage_webhooks", 0 },
	{ "manage_others_webhooks", 0 },
	{ "manage_incoming_webhooks", 0 },
	{ "manage_own_incoming_webhooks", 0 },
	{ "manage_outgoing_webhooks", 0 },
	{ "manage_own_outgoing_webhooks", 0 },
	{ "manage_others_incoming_webhooks", 0 },
	{ "manage_others_outgoing_webhooks", 0 },
	{ "bypass_incoming_webhook_channel_lock", 0 },
	{ "manage_oauth", 0 },
	{ "manage_system_wide_oauth", 0 },
	{ "manage_emojis", 0 },
	{ "manage_others_emojis", 0 },
	{ "create_emojis", 0 },
	{ "delete_emojis", 0 },
	{ "delete_others_emojis", 0 },
	{ "create_post", 0 },
	{ "create_post_public", 0 },
	{ "create_post_ephemeral", 0 },
	{ "read_deleted_posts", 0 },
	{ "edit_post", 0 },
	{ "edit_others_posts", 0 },
	{ "delete_post", 0 },
	{ "delete_others_posts", 0 },
	{ "manage_shared_channels", 0 },
	{ "manage_secure_connections", 0 },
	{ "create_data_retention_job", 0 },
	{ "manage_data_retention_job", 0 },
	{ "read_data_retention_job", 0 },
	{ "create_compliance_export_job", 0 },
	{ "manage_compliance_export_job", 0 },
	{ "read_compliance_export_job", 0 },
	{ "read_audits", 0 },
	{ "purge_bleve_indexes", 0 },
	{ "create_post_bleve_indexes_job", 0 },
	{ "manage_post_bleve_indexes_job", 0 },
	{ "create_ldap_sync_job", 0 },
	{ "manage_ldap_sync_job", 0 },
	{ "read_ldap_sync_job", 0 },
	{ "test_ldap", 0 },
	{ "invalidate_email_invite", 0 },
	{ "get_saml_metadata_from_idp", 0 },
	{ "add_saml_public_cert", 0 },
	{ "add_saml_private_cert", 0 },
	{ "add_saml_idp_cert", 0 },
	{ "remove_saml_public_cert", 0 },
	{ "remove_saml_private_cert", 0 },
	{ "remove_saml_idp_cert", 0 },
	{ "get_saml_cert_status", 0 },
	{ "add_ldap_public_cert", 0 },
	{ "add_ldap_private_cert", 0 },
	{ "remove_ldap_public_cert", 0 },
	{ "remove_ldap_private_cert", 0 },
	{ "get_logs", 0 },
	{ "read_license_information", 0 },
	{ "get_analytics", 0 },
	{ "manage_license_information", 0 },
	{ "download_compliance_export_result", 0 },
	{ "test_site_url", 0 },
	{ "test_elasticsearch", 0 },
	{ "test_s3", 0 },
	{ "reload_config", 0 },
	{ "invalidate_caches", 0 },
	{ "recycle_database_connections", 0 },
	{ "purge_elasticsearch_indexes", 0 },
	{ "test_email", 0 },
	{ "create_elasticsearch_post_indexing_job", 0 },
	{ "manage_elasticsearch_post_indexing_job", 0 },
	{ "create_elasticsearch_post_aggregation_job", 0 },
	{ "manage_elasticsearch_post_aggregation_job", 0 },
	{ "read_elasticsearch_post_indexing_job", 0 },
	{ "read_elasticsearch_post_aggregation_job", 0 },
	{ "remove_user_from_team", 0 },
	{ "create_team", 0 },
	{ "manage_team", 0 },
	{ "import_team", 0 },
	{ "view_team", 0 },
	{ "list_users_without_team", 0 },
	{ "create_user_access_token", 0 },
	{ "read_user_access_token", 0 },
	{ "revoke_user_access_token", 0 },
	{ "create_bot", 0 },
	{ "assign_bot", 0 },
	{ "read_bots", 0 },
	{ "read_others_bots", 0 },
	{ "manage_bots", 0 },
	{ "manage_others_bots", 0 },
	{ "read_jobs", 0 },
	{ "manage_jobs", 0 },
	{ "view_members", 0 },
	{ "invite_guest", 0 },
	{ "promote_guest", 0 },
	{ "demote_to_guest", 0 },
	{ "use_channel_mentions", 0 },
	{ "use_group_mentions", 0 },
	{ "read_other_users_teams", 0 },
	{ "edit_brand", 0 },
	{ "sysconsole_read_about", 0 },
	{ "sysconsole_write_about", 0 },
	{ "sysconsole_read_about_edition_and_license", 0 },
	{ "sysconsole_write_about_edition_and_license", 0 },
	{ "sysconsole_read_billing", 0 },
	{ "sysconsole_write_billing", 0 },
	{ "sysconsole_read_reporting", 0 },
	{ "sysconsole_write_reporting", 0 },
	{ "sysconsole_read_reporting_site_statistics", 0 },
	{ "sysconsole_write_reporting_site_statistics", 0 },
	{ "sysconsole_read_reporting_team_statistics", 0 },
	{ "sysconsole_write_reporting_team_statistics", 0 },
	{ "sysconsole_read_reporting_server_logs", 0 },
	{ "sysconsole_write_reporting_server_logs", 0 },
	{ "sysconsole_read_user_management_users", 0 },
	{ "sysconsole_write_user_management_users", 0 },
	{ "sysconsole_read_user_management_groups", 0 },
	{ "sysconsole_write_user_management_groups", 0 },
	{ "sysconsole_read_user_management_teams", 0 },
	{ "sysconsole_write_user_management_teams", 0 },
	{ "sysconsole_read_user_management_channels", 0 },
	{ "sysconsole_write_user_management_channels", 0 },
	{ "sysconsole_read_user_management_permissions", 0 },
	{ "sysconsole_write_user_management_permissions", 0 },
	{ "sysconsole_read_user_management_system_roles", 0 },
	{ "sysconsole_write_user_management_system_roles", 0 },
	{ "sysconsole_read_environment", 0 },
	{ "sysconsole_write_environment", 0 },
	{ "sysconsole_read_environment_web_server", 0 },
	{ "sysconsole_write_environment_web_server", 0 },
	{ "sysconsole_read_environment_database", 0 },
	{ "sysconsole_write_environment_database", 0 },
	{ "sysconsole_read_environment_elasticsearch", 0 },
	{ "sysconsole_write_environment_elasticsearch", 0 },
	{ "sysconsole_read_environment_file_storage", 0 },
	{ "sysconsole_write_environment_file_storage", 0 },
	{ "sysconsole_read_environment_image_proxy", 0 },
	{ "sysconsole_write_environment_image_proxy", 0 },
	{ "sysconsole_read_environment_smtp", 0 },
	{ "sysconsole_write_environment_smtp", 0 },
	{ "sysconsole_read_environment_push_notification_server", 0 },
	{ "sysconsole_write_environment_push_notification_server", 0 },
	{ "sysconsole_read_environment_high_availability", 0 },
	{ "sysconsole_write_environment_high_availability", 0 },
	{ "sysconsole_read_environment_rate_limiting", 0 },
	{ "sysconsole_write_environment_rate_limiting", 0 },
	{ "sysconsole_read_environment_logging", 0 },
	{ "sysconsole_write_environment_logging", 0 },
	{ "sysconsole_read_environment_session_lengths", 0 },
	{ "sysconsole_write_environment_session_lengths", 0 },
	{ "sysconsole_read_environment_performance_monitoring", 0 },
	{ "sysconsole_write_environment_performance_monitoring", 0 },
	{ "sysconsole_read_environment_developer", 0 },
	{ "sysconsole_write_environment_developer", 0 },
	{ "sysconsole_read_environment_mobile_security", 0 },
	{ "sysconsole_write_environment_mobile_security", 0 },
	{ "sysconsole_read_site", 0 },
	{ "sysconsole_write_site", 0 },
	{ "sysconsole_read_site_customization", 0 },
	{ "sysconsole_write_site_customization", 0 },
	{ "sysconsole_read_site_localization", 0 },
	{ "sysconsole_write_site_localization", 0 },
	{ "sysconsole_read_site_users_and_teams", 0 },
	{ "sysconsole_write_site_users_and_teams", 0 },
	{ "sysconsole_read_site_notifications", 0 },
	{ "sysconsole_write_site_notifications", 0 },
	{ "sysconsole_read_site_announcement_banner", 0 },
	{ "sysconsole_write_site_announcement_banner", 0 },
	{ "sysconsole_read_site_emoji", 0 },
	{ "sysconsole_write_site_emoji", 0 },
	{ "sysconsole_read_site_posts", 0 },
	{ "sysconsole_write_site_posts", 0 },
	{ "sysconsole_read_site_file_sharing_and_downloads", 0 },
	{ "sysconsole_write_site_file_sharing_and_downloads", 0 },
	{ "sysconsole_read_site_public_links", 0 },
	{ "sysconsole_write_site_public_links", 0 },
	{ "sysconsole_read_site_notices", 0 },
	{ "sysconsole_write_site_notices", 0 },
	{ "sysconsole_read_authentication", 0 },
	{ "sysconsole_write_authentication", 0 },
	{ "sysconsole_read_authentication_signup", 0 },
	{ "sysconsole_write_authentication_signup", 0 },
	{ "sysconsole_read_authentication_email", 0 },
	{ "sysconsole_write_authentication_email", 0 },
	{ "sysconsole_read_authentication_password", 0 },
	{ "sysconsole_write_authentication_password", 0 },
	{ "sysconsole_read_authentication_mfa", 0 },
	{ "sysconsole_write_authentication_mfa", 0 },
	{ "sysconsole_read_authentication_ldap", 0 },
	{ "sysconsole_write_authentication_ldap", 0 },
	{ "sysconsole_read_authentication_saml", 0 },
	{ "sysconsole_write_authentication_saml", 0 },
	{ "sysconsole_read_authentication_openid", 0 },
	{ "sysconsole_write_authentication_openid", 0 },
	{ "sysconsole_read_authentication_guest_access", 0 },
	{ "sysconsole_write_authentication_guest_access", 0 },
	{ "sysconsole_read_plugins", 0 },
	{ "sysconsole_write_plugins", 0 },
	{ "sysconsole_read_integrations", 0 },
	{ "sysconsole_write_integrations", 0 },
	{ "sysconsole_read_integrations_integration_management", 0 },
	{ "sysconsole_write_integrations_integration_management", 0 },
	{ "sysconsole_read_integrations_bot_accounts", 0 },
	{ "sysconsole_write_integrations_bot_accounts", 0 },
	{ "sysconsole_read_integrations_gif", 0 },
	{ "sysconsole_write_integrations_gif", 0 },
	{ "sysconsole_read_integrations_cors", 0 },
	{ "sysconsole_write_integrations_cors", 0 },
	{ "sysconsole_read_compliance", 0 },
	{ "sysconsole_write_compliance", 0 },
	{ "sysconsole_read_compliance_data_retention_policy", 0 },
	{ "sysconsole_write_compliance_data_retention_policy", 0 },
	{ "sysconsole_read_compliance_compliance_export", 0 },
	{ "sysconsole_write_compliance_compliance_export", 0 },
	{ "sysconsole_read_compliance_compliance_monitoring", 0 },
	{ "sysconsole_write_compliance_compliance_monitoring", 0 },
	{ "sysconsole_read_compliance_custom_terms_of_service", 0 },
	{ "sysconsole_write_compliance_custom_terms_of_service", 0 },
	{ "sysconsole_read_experimental", 0 },
	{ "sysconsole_write_experimental", 0 },
	{ "sysconsole_read_experimental_features", 0 },
	{ "sysconsole_write_experimental_features", 0 },
	{ "sysconsole_read_experimental_feature_flags", 0 },
	{ "sysconsole_write_experimental_feature_flags", 0 },
	{ "sysconsole_read_experimental_bleve", 0 },
	{ "sysconsole_write_experimental_bleve", 0 },
	{ "create_custom_group", 0 },
	{ "manage_custom_group_members", 0 },
	{ "edit_custom_group", 0 },
	{ "delete_custom_group", 0 },
	{ "restore_custom_group", 0 },
	{ "playbook_public_create", 0 },
	{ "playbook_public_manage_properties", 0 },
	{ "playbook_public_manage_members", 0 },
	{ "playbook_public_manage_roles", 0 },
	{ "playbook_public_view", 0 },
	{ "playbook_public_make_private", 0 },
	{ "playbook_private_create", 0 },
	{ "playbook_private_manage_properties", 0 },
	{ "playbook_private_manage_members", 0 },
	{ "playbook_private_manage_roles", 0 },
	{ "playbook_private_view", 0 },
	{ "playbook_private_make_public", 0 },
	{ "run_create", 0 },
	{ "run_manage_properties", 0 },
	{ "run_manage_members", 0 },
	{ "run_view", 0 },
	{ "sysconsole_read_products_boards", 0 },
	{ "sysconsole_write_products_boards", 0 },
	{ "manage_outgoing_oauth_connections", 906 },
	{ "sysconsole_read_site_ip_filters", 906 },
	{ "sysconsole_write_site_ip_filters", 906 },
	{ "add_bookmark_public_channel", 911 },
	{ "edit_bookmark_public_channel", 911 },
	{ "delete_bookmark_public_channel", 911 },
	{ "order_bookmark_public_channel", 911 },
	{ "add_bookmark_private_channel", 911 },
	{ "edit_bookmark_private_channel", 911 },
	{ "delete_bookmark_private_channel", 911 },
	{ "order_bookmark_private_channel", 911 },
	{ "manage_public_channel_banner", 1009 },
	{ "manage_private_channel_banner", 1009 },
	{ "manage_channel_access_rules", 1009 },
	{ "manage_team_access_rules", 1009 },
	{ "manage_public_channel_auto_translation", 1100 },
	{ "manage_private_channel_auto_translation", 1100 },
	{ "edit_file_attachment", 1100 },
	{ "create_wiki", 1100 },
	{ "manage_wiki", 1100 },
	{ "read_wiki", 1100 },
	{ "delete_wiki", 1100 },
	{ "admin_wiki", 1100 },
	{ "create_page", 1100 },
	{ "read_page", 1100 },
	{ "edit_page", 1100 },
	{ "edit_own_page", 1100 },
	{ "delete_own_page", 1100 },
	{ "delete_page", 1100 },
	{ "comment_page", 1100 },
	{ "manage_own_agent", 1100 },
	{ "manage_others_agent", 1100 },
};

static const char *permission_problem(const struct bulk_state *st, const char *id)
{
	for (size_t i = 0; i < NFIELDS(permissions); i++) {
		if (strcmp(permissions[i].id, id))
			continue;
		return target_at_least(st, permissions[i].since)
			       ? NULL
			       : "is not known to the target server's version";
	}
	return "is not a permission the server knows";
}

static void check_permissions(struct lc *c, const char *prefix, const cJSON *arr)
{
	struct quoted qb;
	const char *why;
	int i = 0;

	for (const cJSON *e = arr ? arr->child : NULL; e; e = e->next, i++) {
		char k[64];

		snprintf(k, sizeof(k), "permissions[%d]", i);
		if (!cJSON_IsString(e))
			fproblem(c, prefix, k, "must be a string");
		else if ((why = permission_problem(c->st, e->valuestring)))
			fproblem(c, prefix, k, "permission %s %s", q(&qb, e->valuestring), why);
	}
}

/* Binds a role object; returns its name, or NULL. */
static const char *check_role_obj(struct lc *c, const cJSON *obj, const char *prefix)
{
	const cJSON *v[NFIELDS(role_fields)];
	const char *name, *why;
	struct quoted qb;

	BIND(c, obj, prefix, role_fields, v);
	check_permissions(c, prefix, v[R_PERMISSIONS]);
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
	S_NAME,
	S_DISPLAY_NAME,
	S_DESCRIPTION,
	S_SCOPE,
	S_TEAM_ADMIN,
	S_TEAM_USER,
	S_TEAM_GUEST,
	S_CHANNEL_ADMIN,
	S_CHANNEL_USER,
	S_CHANNEL_GUEST,
	S_PLAYBOOK_ADMIN,
	S_PLAYBOOK_MEMBER,
	S_RUN_ADMIN,
	S_RUN_MEMBER
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
		int team_role = i == S_TEAM_ADMIN || i == S_TEAM_USER;
		int needed = (sc == SCOPE_TEAM && team_role) ||
			     (sc && (i == S_CHANNEL_ADMIN || i == S_CHANNEL_USER));
		char prefix[64];

		snprintf(prefix, sizeof(prefix), "scheme.%s", scheme_fields[i].key);
		if (v[i] && sc == SCOPE_CHANNEL && team_role)
			fproblem(c, "scheme", scheme_fields[i].key, "not allowed for scope \"channel\"");
		else if (v[i])
			check_role_obj(c, v[i], prefix);
		else if (needed)
			fproblem(c, "scheme", scheme_fields[i].key, "missing (required for scope \"%s\")",
				 scope);
	}
	if (!(name = str(v[S_NAME])))
		return;
	if ((why = scheme_name_problem(name)))
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
	char low[MAX_NAME + 1];
	struct quoted qb;

	BIND(c, obj, "team", team_fields, v);
	if ((type = str(v[T_TYPE])) && strcmp(type, "O") && strcmp(type, "I"))
		problem(c, "team.type", "must be \"O\" or \"I\", not %s", q(&qb, type));
	if (v[T_SCHEME])
		check_scheme_ref(c, "team", str(v[T_SCHEME]), SCOPE_TEAM);
	if (!(name = str(v[T_NAME])))
		return;
	if ((why = team_name_problem(import_name(c->st, name, low))))
		problem(c, "team.name", "invalid team name %s: %s", q(&qb, name), why);
	name = import_name(c->st, name, low);
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
	char lt[MAX_NAME + 1], lc[MAX_NAME + 1];
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
	if ((why = channel_name_problem(import_name(c->st, name, lc))))
		problem(c, "channel.name", "invalid channel name %s: %s", q(&qb, name), why);
	if (team)
		define_channel(c, import_name(c->st, team, lt), import_name(c->st, name, lc));
}

/* -------------------------------------------------------------- user, bot */

static const char *const auth_services[] = { "",     "email",  "gitlab",    "saml",
					     "ldap", "google", "office365", "openid" };

enum {
	U_USERNAME,
	U_EMAIL,
	U_AUTH_SERVICE,
	U_AUTH_DATA,
	U_PASSWORD,
	U_NICKNAME,
	U_FIRST_NAME,
	U_LAST_NAME,
	U_POSITION,
	U_ROLES,
	U_LOCALE,
	U_DELETE_AT,
	U_PROFILE_IMAGE,
	U_NOTIFY_PROPS,
	U_TEAMS,
	U_CUSTOM_STATUS,
	U_PREFERENCES /* the preference strings follow */
};
#define PREF(key)                   \
	{                           \
		key, K_STR, 0, 0, 0 \
	}
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
	PREF("theme"),
	PREF("military_time"),
	PREF("link_previews"),
	PREF("message_display"),
	PREF("collapse_consecutive_messages"),
	PREF("colorize_usernames"),
	PREF("channel_display_mode"),
	PREF("tutorial_step"),
	PREF("email_interval"),
	PREF("feature_enabled_markdown_preview"),
	PREF("formatting"),
	PREF("show_unread_section"),
	PREF("send_on_ctrl_enter"),
	PREF("code_block_ctrl_enter"),
	PREF("show_join_leave"),
	PREF("show_unread_scroll_position"),
	PREF("sync_drafts"),
	PREF("limit_visible_dms_gms"),
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
	UC_NAME,
	UC_ROLES,
	UC_NOTIFY_PROPS,
	UC_FAVORITE,
	UC_MENTION_COUNT,
	UC_MENTION_COUNT_ROOT,
	UC_URGENT_MENTION_COUNT,
	UC_MSG_COUNT,
	UC_MSG_COUNT_ROOT,
	UC_LAST_VIEWED_AT
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
static int element(struct lc *c, const cJSON *e, const char *prefix, const char *key, int i, char *out,
		   size_t outlen)
{
	snprintf(out, outlen, "%s.%s[%d]", prefix, key, i);
	if (cJSON_IsObject(e))
		return 0;
	problem(c, out, "must be an object");
	return -1;
}

#define EACH(e, arr) for (const cJSON *e = (arr) ? (arr)->child : NULL; e; e = e->next)

/* A string that must be one of a NULL-terminated list. */
static void check_enum(struct lc *c, const char *prefix, const char *key, const cJSON *v, const char *const *ok)
{
	struct quoted qb;

	if (!v)
		return;
	for (const char *const *o = ok; *o; o++)
		if (!strcmp(v->valuestring, *o))
			return;
	fproblem(c, prefix, key, "invalid value %s", q(&qb, v->valuestring));
}

static const char *const true_false[] = { "true", "false", NULL };
static const char *const user_levels[] = { "all", "mention", "none", NULL };
static const char *const channel_levels[] = { "default", "all", "mention", "none", NULL };

enum {
	UN_DESKTOP,
	UN_DESKTOP_SOUND,
	UN_EMAIL,
	UN_MOBILE,
	UN_PUSH_STATUS,
	UN_CHANNEL,
	UN_COMMENTS,
	UN_MENTION_KEYS
};
static const struct field user_notify_fields[] = {
	[UN_DESKTOP] = { "desktop", K_STR, 0, 0, 0 },
	[UN_DESKTOP_SOUND] = { "desktop_sound", K_STR, 0, 0, 0 },
	[UN_EMAIL] = { "email", K_STR, 0, 0, 0 },
	[UN_MOBILE] = { "mobile", K_STR, 0, 0, 0 },
	[UN_PUSH_STATUS] = { "mobile_push_status", K_STR, 0, 0, 0 },
	[UN_CHANNEL] = { "channel", K_STR, 0, 0, 0 },
	[UN_COMMENTS] = { "comments", K_STR, 0, 0, 0 },
	[UN_MENTION_KEYS] = { "mention_keys", K_STR, 0, 0, 0 },
};

/* isValidUserNotifyLevel and friends in import_validators.go. */
static void check_user_notify(struct lc *c, const cJSON *obj)
{
	static const char *const push[] = { "online", "away", "offline", NULL };
	static const char *const comments[] = { "any", "root", "never", NULL };
	const cJSON *v[NFIELDS(user_notify_fields)];
	const char *p = "user.notify_props";

	BIND(c, obj, p, user_notify_fields, v);
	check_enum(c, p, "desktop", v[UN_DESKTOP], user_levels);
	check_enum(c, p, "desktop_sound", v[UN_DESKTOP_SOUND], true_false);
	check_enum(c, p, "email", v[UN_EMAIL], true_false);
	check_enum(c, p, "mobile", v[UN_MOBILE], user_levels);
	check_enum(c, p, "mobile_push_status", v[UN_PUSH_STATUS], push);
	check_enum(c, p, "channel", v[UN_CHANNEL], true_false);
	check_enum(c, p, "comments", v[UN_COMMENTS], comments);
}

/* model.IsValidUserRoles: role names, and not system_admin alone. */
static void check_roles(struct lc *c, const char *prefix, const char *key, const cJSON *v)
{
	char buf[1024], *save = NULL, *tok;
	struct quoted qb;
	int n = 0, admin = 0;

	if (!v)
		return;
	if (strlen(v->valuestring) >= sizeof(buf)) {
		fproblem(c, prefix, key, "invalid roles: too long");
		return;
	}
	memcpy(buf, v->valuestring, strlen(v->valuestring) + 1);
	for (tok = strtok_r(buf, " \t\r\n", &save); tok; tok = strtok_r(NULL, " \t\r\n", &save)) {
		if (role_name_problem(tok)) {
			fproblem(c, prefix, key, "invalid role %s", q(&qb, tok));
			return;
		}
		n++;
		admin = !strcmp(tok, "system_admin");
	}
	if (n == 1 && admin)
		fproblem(c, prefix, key,
			 "\"system_admin\" alone is refused: give \"system_user system_admin\"");
}

static void check_user_values(struct lc *c, const cJSON **v)
{
	static const char *const intervals[] = { "immediately", "fifteen", "hour", NULL };

	if (v[U_PASSWORD] && !*str(v[U_PASSWORD]))
		problem(c, "user.password", "must not be empty");
	check_roles(c, "user", "roles", v[U_ROLES]);
	if (v[U_NOTIFY_PROPS])
		check_user_notify(c, v[U_NOTIFY_PROPS]);
	for (size_t i = U_PREFERENCES; i < NFIELDS(user_fields); i++) {
		const char *k = user_fields[i].key;

		if (!strcmp(k, "feature_enabled_markdown_preview") || !strcmp(k, "formatting") ||
		    !strcmp(k, "show_unread_section"))
			check_enum(c, "user", k, v[i], true_false);
		else if (!strcmp(k, "email_interval"))
			check_enum(c, "user", k, v[i], intervals);
	}
}

enum { CN_DESKTOP, CN_MOBILE, CN_MARK_UNREAD };
static const struct field channel_notify_fields[] = {
	[CN_DESKTOP] = { "desktop", K_STR, 0, 0, 0 },
	[CN_MOBILE] = { "mobile", K_STR, 0, 0, 0 },
	[CN_MARK_UNREAD] = { "mark_unread", K_STR, 0, 0, 0 },
};

/* model.IsChannelNotifyLevelValid / IsChannelMarkUnreadLevelValid. */
static void check_channel_notify(struct lc *c, const char *prefix, const cJSON *obj)
{
	static const char *const unread[] = { "all", "mention", NULL };
	const cJSON *v[NFIELDS(channel_notify_fields)];
	char p[192];

	snprintf(p, sizeof(p), "%s.notify_props", prefix);
	BIND(c, obj, p, channel_notify_fields, v);
	check_enum(c, p, "desktop", v[CN_DESKTOP], channel_levels);
	check_enum(c, p, "mobile", v[CN_MOBILE], channel_levels);
	check_enum(c, p, "mark_unread", v[CN_MARK_UNREAD], unread);
}

/*
 * A team theme is decoded into map[string]string: blank is fine, else the
 * first JSON value must be an object of strings (null counts as "").
 */
static void check_theme(struct lc *c, const char *prefix, const char *theme)
{
	const char *p = theme;
	cJSON *j;
	int ok;

	while (*p == ' ' || *p == '\t' || *p == '\r')
		p++;
	if (!*p)
		return;
	j = cJSON_ParseWithOpts(p, NULL, 0);
	ok = j && (cJSON_IsObject(j) || cJSON_IsNull(j));
	for (const cJSON *m = ok ? j->child : NULL; m; m = m->next)
		ok &= cJSON_IsString(m) || cJSON_IsNull(m);
	cJSON_Delete(j);
	if (!ok)
		fproblem(c, prefix, "theme", "must be a JSON object of strings");
}

static void check_user_channels(struct lc *c, const char *prefix, const char *team, const cJSON *arr)
{
	char ep[160];
	int i = 0;
	struct quoted qb, qt;

	EACH(ch, arr)
	{
		if (element(c, ch, prefix, "channels", i++, ep, sizeof(ep)) < 0)
			continue;
		const cJSON *v[NFIELDS(user_channel_fields)];
		const char *name;

		BIND(c, ch, ep, user_channel_fields, v);
		check_roles(c, ep, "roles", v[UC_ROLES]);
		if (v[UC_NOTIFY_PROPS])
			check_channel_notify(c, ep, v[UC_NOTIFY_PROPS]);
		if (team && (name = str(v[UC_NAME])) && !find_channel(c->st, team, name))
			fproblem(c, ep, "name", "channel %s of team %s is not defined on an earlier line",
				 q(&qb, name), q(&qt, team));
	}
}

static void check_user_teams(struct lc *c, const cJSON *arr)
{
	char ep[96];
	int i = 0;

	EACH(t, arr)
	{
		if (element(c, t, "user", "teams", i++, ep, sizeof(ep)) < 0)
			continue;
		const cJSON *v[NFIELDS(user_team_fields)];
		const char *team;

		BIND(c, t, ep, user_team_fields, v);
		check_roles(c, ep, "roles", v[UT_ROLES]);
		if (v[UT_THEME])
			check_theme(c, ep, str(v[UT_THEME]));
		team = str(v[UT_NAME]);
		if (team && check_team_ref(c, ep, "name", team) < 0)
			team = NULL; /* one error for the team, none per channel */
		check_user_channels(c, ep, team, v[UT_CHANNELS]);
	}
}

/* Whether the space-separated roles hold `role` (model.IsInRole). */
static int in_role(const cJSON *roles, const char *role)
{
	size_t n = strlen(role);

	for (const char *p = roles ? roles->valuestring : ""; (p = strstr(p, role)); p += n)
		if ((p == roles->valuestring || strchr(" \t\r\n", p[-1])) && (!p[n] || strchr(" \t\r\n", p[n])))
			return 1;
	return 0;
}

static const cJSON *member_str(const cJSON *obj, const char *key)
{
	const cJSON *m = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;

	return cJSON_IsString(m) ? m : NULL;
}

/*
 * validateGuestRoles (import_validators.go): a system guest must be a guest
 * in every team and channel listed, and only a system guest may be one.
 */
static void check_guest_roles(struct lc *c, const cJSON *roles, const cJSON *teams)
{
	unsigned long nteams = 0, tguests = 0, nchans = 0, cguests = 0;
	int sys, team_guest, chan_guest;

	if (!roles || !cJSON_GetArraySize(teams))
		return;
	EACH(t, teams)
	{
		const cJSON *chans = cJSON_IsObject(t) ? cJSON_GetObjectItemCaseSensitive(t, "channels") : NULL;

		nteams++;
		tguests += in_role(member_str(t, "roles"), "team_guest");
		EACH(ch, cJSON_IsArray(chans) ? chans : NULL)
		{
			nchans++;
			cguests += in_role(member_str(ch, "roles"), "channel_guest");
		}
	}
	sys = in_role(roles, "system_guest");
	team_guest = tguests == nteams;
	chan_guest = nchans && cguests == nchans;
	if (sys && !team_guest)
		problem(c, "user.teams", "a system guest must have \"team_guest\" in every team (%lu of %lu)",
			tguests, nteams);
	else if (sys && nchans && !chan_guest)
		problem(c, "user.teams",
			"a system guest must have \"channel_guest\" in every channel "
			"(%lu of %lu)",
			cguests, nchans);
	else if (!sys && (team_guest || chan_guest))
		problem(c, "user.roles", "guest in %s but not \"system_guest\"",
			team_guest ? "every team" : "every channel");
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
	/* any auth_data at all, even empty, refuses a password */
	if (v[U_AUTH_DATA] && v[U_PASSWORD])
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
	/* the lookup only warns, but ValidateUserImportData then stats the
	 * path on the server's disk and stops the import */
	if (v[U_PROFILE_IMAGE])
		lookup_path(c, "user", "profile_image", str(v[U_PROFILE_IMAGE]), REQUIRED);
	check_user_values(c, v);
	check_user_teams(c, v[U_TEAMS]);
	check_guest_roles(c, v[U_ROLES], v[U_TEAMS]);
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
	const char *why;
	struct quoted qb;

	BIND(c, obj, "bot", bot_fields, v);
	/* An owner that is no user is a plugin's id (importBot keeps it as the
	 * OwnerId; the export writes it so); it need only look like a username. */
	if (v[B_OWNER] && (why = username_problem(str(v[B_OWNER]))))
		problem(c, "bot.owner", "invalid owner %s: %s", q(&qb, str(v[B_OWNER])), why);
	if (v[B_PROFILE_IMAGE])
		lookup_path(c, "bot", "profile_image", str(v[B_PROFILE_IMAGE]), REQUIRED);
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
			fproblem(c, prefix, k, "user %s is not a member of the channel",
				 q(&qb, e->valuestring));
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

	EACH(r, arr)
	{
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

/* ValidateAttachmentImportData accepts null, {} and an empty path. */
static const struct field attachment_fields[] = {
	{ "path", K_STR, 0, 0, 0 },
};

/* Returns how many attachments the array lists. */
static unsigned long check_attachments(struct lc *c, const char *prefix, const cJSON *arr)
{
	char ep[160];
	int i = 0;

	EACH(a, arr)
	{
		if (cJSON_IsNull(a)) {
			i++;
			continue;
		}
		if (element(c, a, prefix, "attachments", i++, ep, sizeof(ep)) < 0)
			continue;
		const cJSON *v[1];

		BIND(c, a, ep, attachment_fields, v);
		if (v[0] && *str(v[0]))
			lookup_path(c, ep, "path", str(v[0]), SKIPPABLE);
	}
	return (unsigned long)i;
}

enum { TF_USER, TF_LAST_VIEWED, TF_UNREAD_MENTIONS };
static const struct field follower_fields[] = {
	[TF_USER] = { "user", K_STR, REQ, 1, 0 },
	[TF_LAST_VIEWED] = { "last_viewed", K_INT, 0, 0, 0 },
	[TF_UNREAD_MENTIONS] = { "unread_mentions", K_INT, 0, 0, 0 },
};

static void check_followers(struct lc *c, const char *prefix, const cJSON *arr)
{
	char ep[160];
	int i = 0;

	EACH(f, arr)
	{
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
	P_USER,
	P_MESSAGE,
	P_CREATE_AT,
	P_TYPE,
	P_PROPS,
	P_EDIT_AT,
	P_IS_PINNED,
	P_FLAGGED_BY,
	P_REACTIONS,
	P_ATTACHMENTS,
	P_COMMON,
	P_THREAD_FOLLOWERS = P_COMMON,
	P_REPLIES,
	P_TEAM,
	P_CHANNEL,
	P_CHANNEL_MEMBERS
};
#define POST_COMMON_FIELDS                                                                                   \
	[P_USER] = { "user", K_STR, REQ, 0, 0 }, [P_MESSAGE] = { "message", K_STR, REQ, 0, MAX_POST_RUNES }, \
	[P_CREATE_AT] = { "create_at", K_INT, REQ, 0, 0 }, [P_TYPE] = { "type", K_STR, 0, 0, 0 },            \
	[P_PROPS] = { "props", K_OBJ, 0, 0, 0 }, [P_EDIT_AT] = { "edit_at", K_INT, 0, 0, 0 },                \
	[P_IS_PINNED] = { "is_pinned", K_BOOL, 0, 0, 0 }, [P_FLAGGED_BY] = { "flagged_by", K_ARR, 0, 0, 0 }, \
	[P_REACTIONS] = { "reactions", K_ARR, 0, 0, 0 }, [P_ATTACHMENTS] = { "attachments", K_ARR, 0, 0, 0 }

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
		fproblem(c, prefix, "props", "longer than %d characters serialized (%zu)", MAX_PROPS_RUNES, n);
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

	EACH(r, arr)
	{
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
	EACH(p, arr)
	{
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
		lookup_path(c, "emoji", "image", str(v[E_IMAGE]), REQUIRED);
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

void bulk_line_too_long(struct bulk_state *st, unsigned long lineno, size_t len, bulk_report_fn report,
			void *ctx)
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

int bulk_state_foreach_team(const struct bulk_state *st, int (*cb)(void *ctx, const char *team), void *ctx)
{
	int ret;

	for (size_t i = 0; i < st->teams.n; i++)
		if ((ret = cb(ctx, st->teams.v[i].key)))
			return ret;
	return 0;
}

int bulk_state_foreach_channel(const struct bulk_state *st,
			       int (*cb)(void *ctx, const char *team, const char *channel,
					 unsigned long posts, unsigned long replies),
			       void *ctx)
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

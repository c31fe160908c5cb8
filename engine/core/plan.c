/*
 * Plan loading: the schema checks behind `mmigrate validate`. Every problem
 * becomes one diagnostic at a line and column; checking goes on after an
 * error so that one run reports them all.
 */
#include "plan.h"

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "interp.h"
#include "util.h"

static const char *const top_keys[] = { "version", "name",     "description", "state_dir",
					"servers", "defaults", "steps",       NULL };
static const char *const server_keys[] = { "url",        "socket",   "token",
					   "username",   "password", "mfa",
					   "mfa_secret", "ca_file",  "insecure_skip_tls_verify",
					   "retries",    NULL };
static const char *const default_keys[] = { "retries",          "connect_timeout",   "min_speed",
					    "min_speed_window", "transfer_deadline", NULL };
static const char *const step_common_keys[] = { "id", "type", "server", "description", "always", NULL };
static const char *const secret_keys[] = { "token", "password", "mfa", "mfa_secret", NULL };

static const char *kind_name(enum pnode_kind k)
{
	return k == PN_MAP ? "a mapping" : k == PN_SEQ ? "a list" : "a scalar";
}

static int in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (!strcmp(*list, s))
			return 1;
	return 0;
}

/* The closest candidate within a few edits, or NULL. */
static const char *suggest(const char *word, const char *const *cands, const char *const *more)
{
	const char *best = NULL;
	size_t best_d = (size_t)-1, limit = strlen(word) > 6 ? 3 : 2;
	const char *const *lists[2] = { cands, more };

	for (int l = 0; l < 2; l++)
		for (const char *const *c = lists[l]; c && *c; c++) {
			size_t dist = levenshtein(word, *c);

			if (dist < best_d) {
				best_d = dist;
				best = *c;
			}
		}
	return best_d <= limit ? best : NULL;
}

static void unknown_key(struct diags *d, const struct pnode *key, const char *where, const char *const *cands,
			const char *const *more)
{
	const char *s = suggest(key->scalar, cands, more);

	if (s)
		diag_add(d, key->line, key->col, "unknown key '%s' in %s; did you mean '%s'?", key->scalar,
			 where, s);
	else
		diag_add(d, key->line, key->col, "unknown key '%s' in %s", key->scalar, where);
}

static void check_keys(struct diags *d, const struct pnode *map, const char *where, const char *const *allowed)
{
	for (size_t i = 0; i < map->n; i++)
		if (map->keys[i]->kind == PN_SCALAR && !in_list(allowed, map->keys[i]->scalar))
			unknown_key(d, map->keys[i], where, allowed, NULL);
}

static const char *scalar_of(struct diags *d, const struct pnode *n, const char *what)
{
	if (!n)
		return NULL;
	if (n->kind != PN_SCALAR) {
		diag_add(d, n->line, n->col, "'%s' must be a string, not %s", what, kind_name(n->kind));
		return NULL;
	}
	return n->scalar;
}

static int valid_name(const char *s, const char *extra)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr(extra, *s))
			return 0;
	return 1;
}

/* ---- interpolation checks ---- */

struct ref_check {
	struct diags *d;
	const struct pnode *at;
	const struct plan *plan;
	size_t step_index; /* references must point at earlier steps */
	int in_step;
	int only_secret_sources; /* credential fields */
	int bad;
};

static void check_step_ref(struct ref_check *rc, const char *id, const char *key)
{
	const struct plan *p = rc->plan;
	const struct plan_step *target = plan_step_find(p, id);

	if (!rc->in_step) {
		diag_add(rc->d, rc->at->line, rc->at->col, "'${steps.%s.%s}' cannot be used outside a step",
			 id, key);
		return;
	}
	if (!target) {
		const char **ids = xcalloc(p->nsteps + 1, sizeof(*ids));
		const char *s;

		for (size_t i = 0; i < p->nsteps; i++)
			ids[i] = p->steps[i].id;
		s = suggest(id, ids, NULL);
		if (s)
			diag_add(rc->d, rc->at->line, rc->at->col,
				 "reference to unknown step '%s'; did you mean '%s'?", id, s);
		else
			diag_add(rc->d, rc->at->line, rc->at->col, "reference to unknown step '%s'", id);
		free(ids);
		return;
	}
	if (target->index == rc->step_index) {
		diag_add(rc->d, rc->at->line, rc->at->col, "step '%s' cannot use its own output '%s'", id, key);
		return;
	}
	if (target->index > rc->step_index) {
		diag_add(rc->d, rc->at->line, rc->at->col,
			 "step '%s' runs later; a step can only use outputs of earlier steps", id);
		return;
	}
	if (target->type && !step_type_has_output(target->type, key)) {
		const char *s = suggest(key, target->type->outputs, NULL);

		diag_add(rc->d, rc->at->line, rc->at->col, "step '%s' (type %s) has no output '%s'%s%s%s", id,
			 target->type->name, key, s ? "; did you mean '" : "", s ? s : "", s ? "'?" : "");
	}
}

static void on_ref(void *ctx, enum interp_source src, const char *arg, const char *key)
{
	struct ref_check *rc = ctx;

	if (src == INTERP_STEP)
		check_step_ref(rc, arg, key);
	if (rc->only_secret_sources && src == INTERP_STEP)
		rc->bad = 1;
}

/* Checks the ${...} syntax and references of every scalar below n. */
static void check_refs(struct ref_check *rc, const struct pnode *n)
{
	struct mm_error err = MM_ERROR_INIT;

	if (!n)
		return;
	if (n->kind != PN_SCALAR) {
		for (size_t i = 0; i < n->n; i++)
			check_refs(rc, n->items[i]);
		return;
	}
	rc->at = n;
	if (interp_scan(n->scalar, on_ref, rc, &err) < 0)
		diag_add(rc->d, n->line, n->col, "%s", err.msg);
}

/* A credential must be exactly one ${env:..} or ${file:..}: never text meant for git. */
static void check_secret(struct diags *d, const struct pnode *n, const char *key, const char *server)
{
	const char *s = scalar_of(d, n, key);
	size_t len;

	if (!s)
		return;
	len = strlen(s);
	if ((!strncmp(s, "${env:", 6) || !strncmp(s, "${file:", 7)) && s[len - 1] == '}' &&
	    !strchr(s + 2, '{') && strchr(s, '}') == s + len - 1)
		return;
	diag_add(d, n->line, n->col,
		 "server '%s': '%s' must be ${env:NAME} or ${file:PATH}; a literal secret does not belong "
		 "in a plan file",
		 server, key);
}

/* ---- servers ---- */

static int scalar_bool(const struct pnode *n, int *out)
{
	if (!n || n->kind != PN_SCALAR)
		return -1;
	if (!strcmp(n->scalar, "true")) {
		*out = 1;
		return 0;
	}
	if (!strcmp(n->scalar, "false")) {
		*out = 0;
		return 0;
	}
	return -1;
}

static void load_server(struct plan *p, struct plan_server *s, const struct pnode *key,
			const struct pnode *map, struct diags *d)
{
	const struct pnode *v;
	struct ref_check rc = { .d = d, .plan = p };

	s->name = xstrdup(key->scalar);
	s->node = map;
	s->retries = -1;
	if (!valid_name(s->name, "._-"))
		diag_add(d, key->line, key->col,
			 "server name '%s' may only use letters, digits, '.', '_', '-'", s->name);
	if (map->kind != PN_MAP) {
		diag_add(d, map->line, map->col, "server '%s' must be a mapping, not %s", s->name,
			 kind_name(map->kind));
		return;
	}
	check_keys(d, map, "a server", server_keys);
	s->url = scalar_of(d, pnode_get(map, "url"), "url");
	s->socket = scalar_of(d, pnode_get(map, "socket"), "socket");
	s->ca_file = scalar_of(d, pnode_get(map, "ca_file"), "ca_file");
	if ((v = pnode_get(map, "insecure_skip_tls_verify")) && scalar_bool(v, &s->insecure) < 0)
		diag_add(d, v->line, v->col, "'insecure_skip_tls_verify' must be true or false");
	if ((v = pnode_get(map, "retries")) &&
	    (v->kind != PN_SCALAR || parse_i64(v->scalar, &s->retries) < 0 || s->retries < 0))
		diag_add(d, v->line, v->col, "'retries' must be a whole number >= 0");
	if (!s->url && !s->socket)
		diag_add(d, map->line, map->col, "server '%s' needs 'url' (or 'socket' for local mode)",
			 s->name);
	if (s->url && s->socket)
		diag_add(d, map->line, map->col, "server '%s' has both 'url' and 'socket'; choose one",
			 s->name);
	if (s->url && !interp_has_refs(s->url) && strncmp(s->url, "https://", 8) &&
	    strncmp(s->url, "http://", 7))
		diag_add(d, pnode_get(map, "url")->line, pnode_get(map, "url")->col,
			 "server '%s': url must start with https:// or http://", s->name);
	s->token = pnode_get(map, "token");
	s->username = pnode_get(map, "username");
	s->password = pnode_get(map, "password");
	s->mfa = pnode_get(map, "mfa");
	s->mfa_secret = pnode_get(map, "mfa_secret");
	for (const char *const *k = secret_keys; *k; k++)
		if (pnode_get(map, *k))
			check_secret(d, pnode_get(map, *k), *k, s->name);
	if (s->token && s->username)
		diag_add(d, s->username->line, s->username->col,
			 "server '%s': use either 'token' or 'username'/'password', not both", s->name);
	if (s->username && !s->password)
		diag_add(d, s->username->line, s->username->col, "server '%s': 'username' needs 'password'",
			 s->name);
	if (s->password && !s->username)
		diag_add(d, s->password->line, s->password->col, "server '%s': 'password' needs 'username'",
			 s->name);
	if (s->mfa && !s->password)
		diag_add(d, s->mfa->line, s->mfa->col, "server '%s': 'mfa' goes with 'username'/'password'",
			 s->name);
	if (s->mfa_secret && !s->password)
		diag_add(d, s->mfa_secret->line, s->mfa_secret->col,
			 "server '%s': 'mfa_secret' goes with 'username'/'password'", s->name);
	if (s->mfa && s->mfa_secret)
		diag_add(d, s->mfa->line, s->mfa->col,
			 "server '%s': use either 'mfa' (one code) or 'mfa_secret' (a fresh code per login), "
			 "not both",
			 s->name);
	if (s->socket && (s->token || s->username))
		diag_add(d, map->line, map->col, "server '%s': local mode ('socket') takes no credentials",
			 s->name);
	if (!s->socket && !s->token && !s->username)
		diag_add(d, map->line, map->col,
			 "server '%s' needs credentials: 'token', or 'username' and 'password'", s->name);
	rc.in_step = 0;
	for (size_t i = 0; i < map->n; i++)
		check_refs(&rc, map->items[i]);
}

static void load_servers(struct plan *p, const struct pnode *servers, struct diags *d)
{
	if (!servers)
		return;
	if (servers->kind != PN_MAP) {
		diag_add(d, servers->line, servers->col, "'servers' must be a mapping of names to servers");
		return;
	}
	p->servers = xcalloc(servers->n, sizeof(*p->servers));
	for (size_t i = 0; i < servers->n; i++)
		if (servers->keys[i]->kind == PN_SCALAR)
			load_server(p, &p->servers[p->nservers++], servers->keys[i], servers->items[i], d);
}

/* ---- steps ---- */

/* The registered type names, for suggest(); caller frees the array. */
static const char **type_names(const struct step_type *const *all)
{
	size_t n = 0;
	const char **names;

	while (all[n])
		n++;
	names = xcalloc(n + 1, sizeof(*names));
	for (size_t i = 0; i < n; i++)
		names[i] = all[i]->name;
	return names;
}

static void load_step_head(struct plan *p, struct plan_step *st, const struct pnode *map, struct diags *d)
{
	const struct pnode *id = pnode_get(map, "id"), *type = pnode_get(map, "type");
	const char *s;

	if (!id)
		diag_add(d, map->line, map->col, "step %zu has no 'id'", st->index + 1);
	else if ((s = scalar_of(d, id, "id"))) {
		if (!valid_name(s, "_-"))
			diag_add(d, id->line, id->col,
				 "step id '%s' may only use letters, digits, '_' and '-'", s);
		else if (plan_step_find(p, s))
			diag_add(d, id->line, id->col, "duplicate step id '%s' (first at line %d)", s,
				 plan_step_find(p, s)->node->line);
		else
			st->id = xstrdup(s);
	}
	if (!type) {
		diag_add(d, map->line, map->col, "step %s has no 'type'", st->id ? st->id : "");
		return;
	}
	if (!(s = scalar_of(d, type, "type")))
		return;
	st->type = step_type_lookup(p->types, s);
	if (!st->type) {
		const char **names = type_names(p->types);
		const char *sug = suggest(s, names, NULL);

		free(names);
		if (sug)
			diag_add(d, type->line, type->col, "unknown step type '%s'; did you mean '%s'?", s,
				 sug);
		else
			diag_add(d, type->line, type->col, "unknown step type '%s'", s);
	}
}

static int param_scalar_ok(const struct param_spec *ps, const char *v)
{
	int64_t n;
	int b;
	struct pnode tmp = { .kind = PN_SCALAR, .scalar = (char *)v };

	switch (ps->kind) {
	case P_BOOL: return scalar_bool(&tmp, &b) == 0;
	case P_INT: return parse_i64(v, &n) == 0;
	case P_DURATION: return parse_duration(v, &n) == 0;
	case P_SIZE: return parse_size(v, &n) == 0 && n > 0;
	case P_RATE: return parse_rate(v, &n) == 0 && n > 0;
	default: return 1;
	}
}

static const char *param_kind_text(enum param_kind k)
{
	switch (k) {
	case P_BOOL: return "true or false";
	case P_INT: return "a whole number";
	case P_DURATION: return "a duration like 90s, 15m, 12h or 1h30m";
	case P_SIZE: return "a size like 64MiB or 5242880";
	case P_RATE: return "a rate like 50MB/s, 50MiB/s or 5000000 (bytes per second)";
	case P_STRLIST: return "a list of strings";
	case P_STEPREF: return "the id of an earlier step";
	default: return "a string";
	}
}

static void check_param_value(const struct param_spec *ps, const struct pnode *v, struct diags *d)
{
	if (ps->kind == P_STRLIST) {
		if (v->kind != PN_SEQ) {
			diag_add(d, v->line, v->col, "'%s' must be %s", ps->name, param_kind_text(ps->kind));
			return;
		}
		for (size_t i = 0; i < v->n; i++)
			if (v->items[i]->kind != PN_SCALAR)
				diag_add(d, v->items[i]->line, v->items[i]->col,
					 "'%s' must be a list of strings", ps->name);
		return;
	}
	if (v->kind != PN_SCALAR) {
		diag_add(d, v->line, v->col, "'%s' must be %s, not %s", ps->name, param_kind_text(ps->kind),
			 kind_name(v->kind));
		return;
	}
	/* A value that is still ${...} is checked once resolved, at run time. */
	if (!interp_has_refs(v->scalar) && !param_scalar_ok(ps, v->scalar))
		diag_add(d, v->line, v->col, "'%s' must be %s, not '%s'", ps->name, param_kind_text(ps->kind),
			 v->scalar);
}

static void check_step_params(const struct plan_step *st, const struct pnode *map, struct diags *d)
{
	const struct step_type *t = st->type;
	const char **names;
	size_t np = 0;

	for (const struct param_spec *ps = t->params; ps && ps->name; ps++)
		np++;
	names = xcalloc(np + 1, sizeof(*names));
	for (size_t i = 0; i < np; i++)
		names[i] = t->params[i].name;
	for (size_t i = 0; i < map->n; i++) {
		const struct pnode *k = map->keys[i];
		const struct param_spec *ps;
		char where[128];

		if (k->kind != PN_SCALAR || in_list(step_common_keys, k->scalar))
			continue;
		ps = step_param_find(t, k->scalar);
		snprintf(where, sizeof(where), "%s %s step", strchr("aeiou", t->name[0]) ? "an" : "a", t->name);
		if (!ps)
			unknown_key(d, k, where, names, step_common_keys);
		else
			check_param_value(ps, map->items[i], d);
	}
	for (const struct param_spec *ps = t->params; ps && ps->name; ps++)
		if (ps->required && !pnode_get(map, ps->name))
			diag_add(d, map->line, map->col, "step '%s' (type %s) needs '%s'",
				 st->id ? st->id : "?", t->name, ps->name);
	free(names);
}

static void check_step_server(const struct plan *p, struct plan_step *st, const struct pnode *map,
			      struct diags *d)
{
	const struct pnode *sv = pnode_get(map, "server");
	const char *name = sv ? scalar_of(d, sv, "server") : NULL;

	if (!st->type)
		return;
	if (!sv && st->type->server == SERVER_REQUIRED) {
		diag_add(d, map->line, map->col, "step '%s' (type %s) needs 'server'", st->id ? st->id : "?",
			 st->type->name);
		return;
	}
	if (sv && st->type->server == SERVER_NONE) {
		diag_add(d, sv->line, sv->col, "%s %s step takes no 'server'",
			 strchr("aeiou", st->type->name[0]) ? "an" : "a", st->type->name);
		return;
	}
	if (!name)
		return;
	if (!plan_server_find(p, name)) {
		const char **names = xcalloc(p->nservers + 1, sizeof(*names));
		const char *sug;

		for (size_t i = 0; i < p->nservers; i++)
			names[i] = p->servers[i].name;
		sug = suggest(name, names, NULL);
		if (sug)
			diag_add(d, sv->line, sv->col,
				 "server '%s' is not declared under 'servers'; did you mean '%s'?", name, sug);
		else
			diag_add(d, sv->line, sv->col, "server '%s' is not declared under 'servers'", name);
		free(names);
		return;
	}
	st->server = name;
}

struct check_diag_ctx {
	struct diags *d;
	const struct plan_step *st;
};

static void step_check_diag(void *dctx, const char *key, const char *fmt, ...)
{
	struct check_diag_ctx *c = dctx;
	const struct pnode *at = key ? pnode_get(c->st->node, key) : NULL;
	struct buf b = BUF_INIT;
	va_list ap;

	if (!at)
		at = c->st->node;
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	diag_add(c->d, at->line, at->col, "step '%s': %s", c->st->id ? c->st->id : "?", buf_cstr(&b));
	buf_release(&b);
}

static void check_always(struct plan_step *st, struct diags *d)
{
	const struct pnode *v = pnode_get(st->node, "always");

	if (v && scalar_bool(v, &st->always) < 0)
		diag_add(d, v->line, v->col, "'always' must be true or false");
}

/* A P_STEPREF written as a bare id is the reference ${steps.ID.<ref_output>}. */
static void check_stepref_params(struct ref_check *rc, const struct plan_step *st)
{
	for (const struct param_spec *ps = st->type->params; ps && ps->name; ps++) {
		const struct pnode *v = pnode_get(st->node, ps->name);

		if (ps->kind != P_STEPREF || !v || v->kind != PN_SCALAR || interp_has_refs(v->scalar))
			continue;
		rc->at = v;
		check_step_ref(rc, v->scalar, ps->ref_output);
	}
}

static void load_steps(struct plan *p, const struct pnode *steps, struct diags *d)
{
	if (!steps) {
		diag_add(d, p->root->line, p->root->col, "the plan has no 'steps'");
		return;
	}
	if (steps->kind != PN_SEQ) {
		diag_add(d, steps->line, steps->col, "'steps' must be a list of steps");
		return;
	}
	if (!steps->n)
		diag_add(d, steps->line, steps->col, "'steps' is empty");
	p->steps = xcalloc(steps->n ? steps->n : 1, sizeof(*p->steps));
	/* Pass 1: ids and types, so references can be checked in any order. */
	for (size_t i = 0; i < steps->n; i++) {
		struct plan_step *st = &p->steps[p->nsteps];

		st->index = p->nsteps;
		st->node = steps->items[i];
		st->plan = p;
		if (st->node->kind != PN_MAP) {
			diag_add(d, st->node->line, st->node->col, "a step must be a mapping, not %s",
				 kind_name(st->node->kind));
			continue;
		}
		load_step_head(p, st, st->node, d);
		p->nsteps++;
	}
	/* Pass 2: parameters, servers, references, meaning. */
	for (size_t i = 0; i < p->nsteps; i++) {
		struct plan_step *st = &p->steps[i];
		struct ref_check rc = { .d = d, .plan = p, .step_index = i, .in_step = 1 };
		struct check_diag_ctx cd = { d, st };

		check_refs(&rc, st->node);
		if (!st->type)
			continue;
		check_stepref_params(&rc, st);
		check_step_params(st, st->node, d);
		check_always(st, d);
		check_step_server(p, st, st->node, d);
		if (st->type->check)
			st->type->check(p, st, step_check_diag, &cd);
	}
}

/* ---- top level ---- */

static char *abs_dir_of(const char *path)
{
	char *copy = xstrdup(path), *dir = dirname(copy), *res;
	char rp[PATH_MAX];

	if (realpath(dir, rp)) {
		res = xstrdup(rp);
	} else if (dir[0] == '/') {
		res = xstrdup(dir);
	} else {
		char cwd[PATH_MAX];
		struct buf b = BUF_INIT;

		if (!getcwd(cwd, sizeof(cwd)))
			cwd[0] = '\0';
		buf_addf(&b, "%s/%s", cwd, dir);
		res = buf_detach(&b);
	}
	free(copy);
	return res;
}

static char *join_path(const char *dir, const char *p)
{
	struct buf b = BUF_INIT;

	if (p[0] == '/')
		return xstrdup(p);
	buf_addf(&b, "%s/%s", dir, p);
	return buf_detach(&b);
}

/* Transfer floor and connect timeout for every server (docs/http.md); 0 keeps the built-in value. */
static void load_network_defaults(struct plan *p, const struct pnode *defs, struct diags *d)
{
	static const struct {
		const char *key;
		int size; /* 1: a size (bytes per second), 0: a duration */
		size_t off;
	} keys[] = {
		{ "connect_timeout", 0, offsetof(struct plan, connect_timeout_s) },
		{ "min_speed", 1, offsetof(struct plan, min_speed_bps) },
		{ "min_speed_window", 0, offsetof(struct plan, min_speed_window_s) },
		{ "transfer_deadline", 0, offsetof(struct plan, transfer_deadline_s) },
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct pnode *v = pnode_get(defs, keys[i].key);
		int64_t *out = (int64_t *)((char *)p + keys[i].off);

		if (!v)
			continue;
		if (v->kind != PN_SCALAR ||
		    (keys[i].size ? parse_size(v->scalar, out) : parse_duration(v->scalar, out)) < 0 ||
		    *out <= 0)
			diag_add(d, v->line, v->col, "'%s' must be a positive %s", keys[i].key,
				 keys[i].size ? "size per second such as 1KiB" : "duration such as 30s");
	}
}

static void load_defaults(struct plan *p, const struct pnode *defs, struct diags *d)
{
	const struct pnode *v;

	p->retries = 8;
	if (!defs)
		return;
	if (defs->kind != PN_MAP) {
		diag_add(d, defs->line, defs->col, "'defaults' must be a mapping");
		return;
	}
	check_keys(d, defs, "defaults", default_keys);
	if ((v = pnode_get(defs, "retries")) &&
	    (v->kind != PN_SCALAR || parse_i64(v->scalar, &p->retries) < 0 || p->retries < 0))
		diag_add(d, v->line, v->col, "'retries' must be a whole number >= 0");
	load_network_defaults(p, defs, d);
}

static void load_head(struct plan *p, struct diags *d)
{
	const struct pnode *root = p->root, *v;
	const char *s;

	check_keys(d, root, "the plan", top_keys);
	if (!(v = pnode_get(root, "version")))
		diag_add(d, root->line, root->col, "the plan has no 'version' (write 'version: 1')");
	else if (v->kind != PN_SCALAR || strcmp(v->scalar, "1"))
		diag_add(d, v->line, v->col, "unsupported plan version '%s'; this mmigrate reads version 1",
			 v->kind == PN_SCALAR ? v->scalar : "?");
	if (!(v = pnode_get(root, "name")))
		diag_add(d, root->line, root->col, "the plan has no 'name'");
	else if ((s = scalar_of(d, v, "name"))) {
		if (!valid_name(s, "._-"))
			diag_add(d, v->line, v->col,
				 "plan name '%s' may only use letters, digits, '.', '_', '-'", s);
		else
			p->name = xstrdup(s);
	}
	if ((v = pnode_get(root, "state_dir")) && (s = scalar_of(d, v, "state_dir"))) {
		if (interp_has_refs(s))
			diag_add(d, v->line, v->col, "'state_dir' cannot use ${...}");
		else
			p->state_dir = join_path(p->dir, s);
	}
	if (!p->state_dir && p->name) {
		struct buf b = BUF_INIT;

		buf_addf(&b, "%s/.mmigrate/%s", p->dir, p->name);
		p->state_dir = buf_detach(&b);
	}
}

static char *read_file(const char *path, size_t *len, struct diags *d)
{
	struct buf b = BUF_INIT;

	if (buf_read_file(&b, path) < 0) {
		diag_add(d, 0, 0, "cannot read plan: %s", strerror(errno));
		buf_release(&b);
		return NULL;
	}
	*len = b.len;
	return buf_detach(&b);
}

int plan_load(const char *path, const char *text, size_t len, const struct step_type *const *types,
	      struct plan **out, struct diags *d)
{
	struct plan *p = xcalloc(1, sizeof(*p));
	char *owned = NULL;
	int ret;

	*out = NULL;
	free(d->file);
	d->file = xstrdup(path);
	p->types = types;
	p->path = xstrdup(path);
	p->dir = abs_dir_of(path);
	if (!text && !(text = owned = read_file(path, &len, d))) {
		plan_free(p);
		return MM_ERR;
	}
	if (memchr(text, '\0', len)) {
		diag_add(d, 1, 1, "the plan contains a NUL byte; is it a text file?");
		ret = MM_EINVAL;
		goto out;
	}
	yaml_to_pnode(text, len, &p->root, d);
	if (!p->root) {
		ret = MM_EINVAL;
		goto out;
	}
	if (p->root->kind != PN_MAP) {
		diag_add(d, p->root->line, p->root->col,
			 "a plan must be a mapping with 'version', 'name' and 'steps'");
		ret = MM_EINVAL;
		goto out;
	}
	load_head(p, d);
	load_defaults(p, pnode_get(p->root, "defaults"), d);
	load_servers(p, pnode_get(p->root, "servers"), d);
	load_steps(p, pnode_get(p->root, "steps"), d);
	ret = d->n ? MM_EINVAL : 0;
out:
	free(owned);
	if (ret < 0)
		plan_free(p);
	else
		*out = p;
	return ret;
}

void plan_free(struct plan *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nservers; i++)
		free(p->servers[i].name);
	for (size_t i = 0; i < p->nsteps; i++) {
		free(p->steps[i].id);
		cJSON_Delete(p->steps[i].resolved);
		cJSON_Delete(p->steps[i].inputs);
	}
	free(p->servers);
	free(p->steps);
	pnode_free(p->root);
	free(p->path);
	free(p->dir);
	free(p->name);
	free(p->state_dir);
	free(p);
}

const struct plan_step *plan_step_find(const struct plan *p, const char *id)
{
	for (size_t i = 0; i < p->nsteps; i++)
		if (p->steps[i].id && !strcmp(p->steps[i].id, id))
			return &p->steps[i];
	return NULL;
}

const struct plan_server *plan_server_find(const struct plan *p, const char *name)
{
	for (size_t i = 0; i < p->nservers; i++)
		if (!strcmp(p->servers[i].name, name))
			return &p->servers[i];
	return NULL;
}

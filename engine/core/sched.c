/*
 * The scheduler: for every step in plan order, resolve its parameters,
 * fingerprint them, and decide skip / resume / run against the checkpoint.
 *
 * A step's fingerprint covers its type, its server's address, its resolved
 * parameters and the identity of every upstream output it uses (a file's
 * size and sha256, a job's id: step_type.identity), as recorded when that
 * upstream ran; so a changed step re-runs, and a step downstream re-runs
 * exactly when what it consumes changed, bytes included. Credentials are
 * never part of it.
 *
 * apply: preflight first (preflight.c); after a failure or a stop signal only
 * `always` steps run, and only a further signal stops them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "interp.h"
#include "event.h"
#include "run.h"
#include "hash.h"
#include "termsafe.h"
#include "util.h"

static int preflight_pending(struct run *r, struct mm_error *err);

enum decision { DO_SKIP, DO_RESUME, DO_RUN, DO_UNKNOWN };

static const char *const decision_names[] = { "skip", "resume", "run", "unknown" };

struct resolve_ctx {
	struct run *run;
	const char *unknown; /* dry run: the first step whose outputs are not known */
	cJSON *inputs;       /* "steps.U.K" → identity of the output, as recorded when U ran */
};

/*
 * What identifies output key of step up: the type's identity outputs (a file's
 * size and sha256, a job's id), else the value itself. A consumer's fingerprint
 * holds these, so it re-runs when the bytes or the job changed even if the path
 * string did not, and not when a re-run produced the same bytes. Caller frees.
 */
static cJSON *output_identity(const struct plan_step *up, const cJSON *outputs, const char *key)
{
	const char *const *ids = up && up->type ? up->type->identity : NULL;
	cJSON *o;

	if (!ids)
		return cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(outputs, key), 1);
	o = cJSON_CreateObject();
	for (; *ids; ids++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(outputs, *ids);

		if (v)
			cJSON_AddItemToObject(o, *ids, cJSON_Duplicate(v, 1));
	}
	return o;
}

static const cJSON *lookup_output(void *ctx, const char *id, const char *key, struct mm_error *err)
{
	struct resolve_ctx *rc = ctx;
	const cJSON *v, *outs;
	const struct plan_step *up = plan_step_find(rc->run->plan, id);
	int rerun = rc->run->would_run && up && rc->run->would_run[up->index];
	char name[300];

	if (rerun || !state_step_is_done(rc->run->state, id)) {
		if (!rc->unknown)
			rc->unknown = plan_step_find(rc->run->plan, id)->id;
		err_set(err, MM_ENOTFOUND, "'${steps.%s.%s}': step '%s' has not finished", id, key, id);
		return NULL;
	}
	outs = state_step_outputs(rc->run->state, id);
	v = cJSON_GetObjectItemCaseSensitive(outs, key);
	if (!v) {
		err_set(err, MM_ERR, "'${steps.%s.%s}': step '%s' recorded no output '%s'", id, key, id, key);
		return NULL;
	}
	snprintf(name, sizeof(name), "steps.%s.%s", id, key);
	if (!cJSON_GetObjectItemCaseSensitive(rc->inputs, name))
		cJSON_AddItemToObject(rc->inputs, name, output_identity(up, outs, key));
	return v;
}

static cJSON *typed_value(const struct param_spec *ps, const char *s, struct mm_error *err)
{
	int64_t n;

	switch (ps->kind) {
	case P_BOOL:
		if (!strcmp(s, "true") || !strcmp(s, "false"))
			return cJSON_CreateBool(!strcmp(s, "true"));
		break;
	case P_INT:
		if (!parse_i64(s, &n))
			return cJSON_CreateNumber((double)n);
		break;
	case P_DURATION:
		if (!parse_duration(s, &n))
			return cJSON_CreateNumber((double)n);
		break;
	case P_SIZE:
		if (!parse_size(s, &n) && n > 0)
			return cJSON_CreateNumber((double)n);
		break;
	case P_RATE:
		if (!parse_rate(s, &n) && n > 0)
			return cJSON_CreateNumber((double)n);
		break;
	default: return cJSON_CreateString(s);
	}
	err_set(err, MM_EINVAL, "'%s' resolved to '%s', which is not valid here", ps->name, s);
	return NULL;
}

static cJSON *resolve_value(const struct param_spec *ps, const struct pnode *v, const struct interp_env *env,
			    struct mm_error *err)
{
	char *s = NULL;
	cJSON *out;

	if (ps->kind == P_STRLIST) {
		cJSON *arr = cJSON_CreateArray();

		for (size_t i = 0; i < v->n; i++) {
			if (interp_expand(v->items[i]->scalar, env, &s, err) < 0) {
				cJSON_Delete(arr);
				return NULL;
			}
			cJSON_AddItemToArray(arr, cJSON_CreateString(s));
			free(s);
		}
		return arr;
	}
	if (ps->kind == P_STEPREF && !interp_has_refs(v->scalar)) {
		struct buf ref = BUF_INIT;
		int rc;

		buf_addf(&ref, "${steps.%s.%s}", v->scalar, ps->ref_output);
		rc = interp_expand(ref.data, env, &s, err);
		buf_release(&ref);
		if (rc < 0)
			return NULL;
	} else if (interp_expand(v->scalar, env, &s, err) < 0) {
		return NULL;
	}
	out = typed_value(ps, s, err);
	free(s);
	return out;
}

#define SECRET_TAG "(secret sha256:"

/* The resolved parameters as they may be persisted: secret ones replaced by their digest. */
static cJSON *persistable_params(const struct plan_step *st)
{
	cJSON *out = cJSON_Duplicate(st->resolved, 1);

	for (const struct param_spec *ps = st->type->params; ps && ps->name; ps++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(out, ps->name);
		char hex[65], tag[80];

		/* A tag taken from the record (a done step's secret, never read) is already a digest. */
		if (!ps->secret || !cJSON_IsString(v) ||
		    !strncmp(v->valuestring, SECRET_TAG, strlen(SECRET_TAG)))
			continue;
		sha256_hex(v->valuestring, strlen(v->valuestring), hex);
		snprintf(tag, sizeof(tag), SECRET_TAG "%.16s)", hex);
		cJSON_ReplaceItemInObjectCaseSensitive(out, ps->name, cJSON_CreateString(tag));
	}
	return out;
}

/* {"params":{...},"server":{"name","url"},"type"} — canonical order is applied when hashing. */
static cJSON *fingerprint_input(const struct run *r, const struct plan_step *st)
{
	cJSON *params = persistable_params(st);

	cJSON *in;

	for (const struct param_spec *ps = st->type->params; ps && ps->name; ps++)
		if (ps->tuning ||
		    (ps->identified_by && cJSON_GetObjectItemCaseSensitive(st->resolved, ps->identified_by)))
			cJSON_DeleteItemFromObjectCaseSensitive(params, ps->name);
	in = cJSON_CreateObject();

	cJSON_AddStringToObject(in, "type", st->type->name);
	if (st->server) {
		const struct plan_server *sv = plan_server_find(r->plan, st->server);
		cJSON *s = cJSON_AddObjectToObject(in, "server");

		cJSON_AddStringToObject(s, "name", sv->name);
		cJSON_AddStringToObject(s, sv->socket ? "socket" : "url", sv->socket ? sv->socket : sv->url);
	}
	cJSON_AddItemToObject(in, "params", params);
	/* Older records were fingerprinted without inputs: adding an empty object would
	 * make every step that uses no other step re-run once. */
	if (st->inputs && cJSON_GetArraySize(st->inputs))
		cJSON_AddItemToObject(in, "inputs", cJSON_Duplicate(st->inputs, 1));
	return in;
}

/*
 * recorded: a done step's record. Its secret parameters fall back to the
 * digests it recorded when they cannot be resolved (a link that expired, a
 * variable no longer set), and are not read at all when the fingerprint leaves
 * them out: an unchanged done step needs no secret. *unread counts them.
 */
static int resolve_step(struct run *r, struct plan_step *st, const cJSON *recorded, char fp[65],
			char **unknown, int *unread, struct mm_error *err)
{
	struct resolve_ctx rc = { r, NULL, cJSON_CreateObject() };
	struct interp_env env = { r->plan->dir, lookup_output, &rc };
	const cJSON *def = cJSON_GetObjectItem(recorded, "definition");
	cJSON *params = cJSON_CreateObject(), *in;

	*unknown = NULL;
	for (const struct param_spec *ps = st->type->params; ps && ps->name; ps++) {
		const struct pnode *v = pnode_get(st->node, ps->name);
		struct pnode dflt = { .kind = PN_SCALAR, .scalar = (char *)ps->def };
		const cJSON *tag = ps->secret ? cJSON_GetObjectItemCaseSensitive(def, ps->name) : NULL;
		cJSON *val;

		if (!v && !ps->def)
			continue;
		if (cJSON_IsString(tag) && !strncmp(tag->valuestring, SECRET_TAG, strlen(SECRET_TAG))) {
			struct mm_error serr = MM_ERROR_INIT;

			/* Left out of the fingerprint (sha256 names the bytes): not even read. Otherwise
			 * read when possible, so that a new link is a change, and the recorded digest
			 * stands in when it cannot be read. */
			val = ps->identified_by && pnode_get(st->node, ps->identified_by)
				      ? NULL
				      : resolve_value(ps, v ? v : &dflt, &env, &serr);
			if (!val) {
				val = cJSON_Duplicate(tag, 1);
				(*unread)++;
			}
			cJSON_AddItemToObject(params, ps->name, val);
			continue;
		}
		val = resolve_value(ps, v ? v : &dflt, &env, err);
		if (!val) {
			cJSON_Delete(params);
			cJSON_Delete(rc.inputs);
			if (rc.unknown)
				*unknown = xstrdup(rc.unknown);
			err_prefix(err, "step '%s' (%s:%d), '%s'", st->id, r->plan->path,
				   v ? v->line : st->node->line, ps->name);
			return err->code ? err->code : MM_ERR;
		}
		cJSON_AddItemToObject(params, ps->name, val);
	}
	cJSON_Delete(st->resolved);
	st->resolved = params;
	cJSON_Delete(st->inputs);
	st->inputs = rc.inputs;
	in = fingerprint_input(r, st);
	json_fingerprint(in, fp);
	cJSON_Delete(in);
	return 0;
}

int sched_resolve(struct run *r, struct plan_step *st, char fp[65], char **unknown, struct mm_error *err)
{
	return resolve_step(r, st, NULL, fp, unknown, NULL, err);
}

/*
 * Resolution for a decision: a done step is first fingerprinted with its
 * recorded secret digests standing in for secrets it cannot or need not
 * read; when that matches it is skipped (*unread says how many stood in).
 * Otherwise, or when it is not done, everything is resolved and a secret
 * that cannot be is an error: the step has to run, and needs it.
 */
static int resolve_for_decision(struct run *r, struct plan_step *st, char fp[65], char **unknown, int *unread,
				struct mm_error *err)
{
	const cJSON *rec = state_step_get(r->state, st->id);
	const char *old = cJSON_GetStringValue(cJSON_GetObjectItem(rec, "fingerprint"));
	struct mm_error e2 = MM_ERROR_INIT;

	*unread = 0;
	if (state_step_is_done(r->state, st->id) && old &&
	    resolve_step(r, st, rec, fp, unknown, unread, &e2) == 0 && (!*unread || !strcmp(fp, old)))
		return 0;
	free(*unknown);
	*unknown = NULL;
	*unread = 0;
	return resolve_step(r, st, NULL, fp, unknown, NULL, err);
}

static const char *rec_str(const cJSON *rec, const char *key)
{
	const cJSON *v = cJSON_GetObjectItem(rec, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* "sha256 ab12… → cd34…": the first identity field that differs between a and b. */
static void describe_identity_change(const cJSON *a, const cJSON *b, struct buf *why)
{
	const cJSON *c;

	if (cJSON_IsObject(a) && cJSON_IsObject(b)) {
		cJSON_ArrayForEach(c, b) {
			const cJSON *o = cJSON_GetObjectItemCaseSensitive(a, c->string);

			if (o && cJSON_Compare(o, c, 1))
				continue;
			describe_identity_change(o, c, why);
			return;
		}
		return;
	}
	if (cJSON_IsString(a) && cJSON_IsString(b) && strlen(a->valuestring) == 64 &&
	    strlen(b->valuestring) == 64)
		buf_addf(why, "sha256 %.4s… → %.4s…", a->valuestring, b->valuestring);
	else {
		char *x = a ? cJSON_PrintUnformatted(a) : xstrdup("(none)"), *y = cJSON_PrintUnformatted(b);

		buf_addf(why, "%.60s → %.60s", x, y);
		free(x);
		free(y);
	}
}

/* One input's change, "input steps.X.K changed: …", into why. */
static void explain_input(const char *name, const cJSON *o, const cJSON *c, struct buf *why)
{
	const cJSON *f;

	buf_addf(why, "input %s changed: ", name);
	if (cJSON_IsObject(c) && cJSON_IsObject(o))
		cJSON_ArrayForEach(f, c) {
			const cJSON *of = cJSON_GetObjectItemCaseSensitive(o, f->string);

			if (of && cJSON_Compare(of, f, 1))
				continue;
			if (strcmp(f->string, "sha256"))
				buf_addf(why, "%s ", f->string);
			describe_identity_change(of, f, why);
			return;
		}
	describe_identity_change(o, c, why);
}

/* Why a done step's fingerprint changed: an input's identity, else the definition. */
static void explain_change(const struct plan_step *st, const cJSON *rec, struct buf *why)
{
	const cJSON *old = cJSON_GetObjectItem(rec, "inputs"), *c;
	cJSON *def;
	char *keys;

	cJSON_ArrayForEach(c, st->inputs) {
		const cJSON *o = cJSON_GetObjectItemCaseSensitive(old, c->string);

		if (o && cJSON_Compare(o, c, 1))
			continue;
		if (!o)
			buf_addf(why, "input %s is new", c->string);
		else
			explain_input(c->string, o, c, why);
		return;
	}
	def = persistable_params(st);
	keys = json_changed_keys(cJSON_GetObjectItem(rec, "definition"), def);
	if (*keys)
		buf_addf(why, "definition changed: %s", keys);
	else
		buf_adds(why, "definition or inputs changed");
	free(keys);
	cJSON_Delete(def);
}

char *sched_stale_inputs(const struct plan *p, const struct state *st, const char *id)
{
	const cJSON *rec = state_step_get(st, id), *in;
	struct buf why = BUF_INIT;

	if (!state_step_is_done(st, id))
		return NULL;
	cJSON_ArrayForEach(in, cJSON_GetObjectItem(rec, "inputs")) {
		char up[256], *dot;
		const struct plan_step *u;
		cJSON *now;

		/* "steps.ID.KEY" */
		snprintf(up, sizeof(up), "%s", in->string + (strncmp(in->string, "steps.", 6) ? 0 : 6));
		if (!(dot = strrchr(up, '.')))
			continue;
		*dot = '\0';
		if (!(u = plan_step_find(p, up)))
			continue;
		if (!state_step_is_done(st, up)) {
			buf_addf(&why, "input %s: step '%s' is not done now", in->string, up);
			break;
		}
		now = output_identity(u, state_step_outputs(st, up), dot + 1);
		if (!cJSON_Compare(now, in, 1))
			explain_input(in->string, in, now, &why);
		cJSON_Delete(now);
		if (why.len)
			break;
	}
	if (!why.len) {
		buf_release(&why);
		return NULL;
	}
	return buf_detach(&why);
}

static enum decision decide(const struct plan_step *st, const cJSON *rec, const char *fp, struct buf *why)
{
	const char *status = rec_str(rec, "status"), *old = rec_str(rec, "fingerprint");
	int same = old && !strcmp(old, fp);

	if (!rec || !status) {
		buf_adds(why, "not run yet");
		return DO_RUN;
	}
	if (same && !strcmp(status, "done")) {
		buf_adds(why, "done, definition unchanged");
		return DO_SKIP;
	}
	if (!strcmp(status, "reverted")) {
		buf_addf(why, "%s", rec_str(rec, "error") ? rec_str(rec, "error") : "reverted");
		return DO_RUN;
	}
	if (same && cJSON_GetObjectItem(rec, "checkpoint")) {
		buf_adds(why, !strcmp(status, "failed") ? "failed last time; resuming from its checkpoint"
							: "interrupted with a checkpoint");
		return DO_RESUME;
	}
	if (!same) {
		if (!strcmp(status, "done"))
			explain_change(st, rec, why);
		else
			buf_adds(why, "definition changed since it last ran");
		return DO_RUN;
	}
	buf_adds(why, !strcmp(status, "failed") ? "failed last time" : "did not finish last time");
	return DO_RUN;
}

static int record_start(struct run *r, struct plan_step *st, const char *fp, enum decision d,
			struct mm_error *err)
{
	struct step_begin b = {
		.type = st->type->name,
		.fingerprint = fp,
		.definition = persistable_params(st),
		.revision = r->provenance,
		.inputs = st->inputs,
		.resume = d == DO_RESUME,
	};

	return state_step_begin(r->state, st->id, &b, err);
}

static int record_end(struct run *r, struct plan_step *st, int rc, cJSON *outputs,
		      const struct mm_error *step_err, struct mm_error *err)
{
	struct buf msg = BUF_INIT;
	int ret;

	if (rc == 0)
		return state_step_done(r->state, st->id, outputs, err);
	buf_adds(&msg, step_err->msg);
	run_scrub(r, &msg); /* state.json and the journal never hold a known secret */
	ret = state_step_failed(r->state, st->id, rc == MM_EINTR, buf_cstr(&msg), err);
	buf_release(&msg);
	return ret;
}

static int run_step(struct run *r, struct plan_step *st, const char *fp, enum decision d, struct mm_error *err)
{
	struct step_ctx ctx = { .run = r, .step = st };
	struct mm_error serr = MM_ERROR_INIT;
	cJSON *outputs = cJSON_CreateObject();
	int rc;

	if (record_start(r, st, fp, d, err) < 0)
		goto fail_state;
	ctx.ckpt = state_step_checkpoint(r->state, st->id);
	ctx.outputs = outputs;
	rc = st->type->run(&ctx, &serr);
	if (rc < 0 && rc != MM_EINTR && run_should_stop(r))
		rc = MM_EINTR; /* a transfer cut by our own signal is an interruption, not a failure */
	if (rc < 0 && !serr.msg[0])
		err_set(&serr, rc, rc == MM_EINTR ? "interrupted" : "failed without a message");
	cJSON_Delete(ctx.retired);
	if (record_end(r, st, rc, outputs, &serr, err) < 0)
		goto fail_state;
	cJSON_Delete(outputs);
	if (rc == 0) {
		run_event(r, st->id, "step-done", NULL, "done");
		return 0;
	}
	*err = serr;
	/* A step's own failure is exit 1 whatever code it used: the plan was valid. */
	if (rc != MM_EINTR)
		rc = MM_ERR;
	err->code = rc;
	err_prefix(err, "step '%s' (%s:%d)", st->id, r->plan->path, st->node->line);
	return rc;
fail_state:
	cJSON_Delete(outputs);
	err_prefix(err, "step '%s': cannot record progress", st->id);
	return MM_ERR;
}

static const cJSON *outputs_of(const struct run *r, const char *id)
{
	return state_step_outputs(r->state, id);
}

static char *outputs_text(const cJSON *outputs)
{
	struct buf b = BUF_INIT;
	const cJSON *c;

	cJSON_ArrayForEach(c, outputs) {
		char *v = cJSON_IsString(c) ? NULL : cJSON_PrintUnformatted(c);

		buf_addf(&b, "%s%s=%s", b.len ? " " : "", c->string, v ? v : c->valuestring);
		free(v);
	}
	return buf_detach(&b);
}

/* After a failure or a stop signal: from now on only `always` steps run. */
static void wind_down(struct run *r)
{
	if (r->winding_down)
		return;
	r->winding_down = 1;
	r->stops_seen = r->stop_count ? *r->stop_count : 0;
}

/*
 * An always step that ran after a failure undid what the steps it names by id
 * did (restore: raise): those are reverted, so the next apply runs them again
 * before the retried step that needed them.
 */
static void revert_restored(struct run *r, const struct plan_step *st)
{
	for (const struct param_spec *ps = st->type->params; ps && ps->name; ps++) {
		const struct pnode *v = pnode_get(st->node, ps->name);
		struct mm_error e = MM_ERROR_INIT;
		char why[300];

		if (ps->kind != P_STEPREF || !v || v->kind != PN_SCALAR ||
		    !state_step_is_done(r->state, v->scalar))
			continue;
		snprintf(why, sizeof(why), "undone by '%s' after a failure; runs again", st->id);
		if (state_step_revert(r->state, v->scalar, why, &e) < 0)
			run_event(r, st->id, "warning", NULL, "cannot record that '%s' was undone: %s",
				  v->scalar, e.msg);
	}
}

struct apply_pass {
	int rc;              /* the first failure (or MM_EINTR), 0 while all went well */
	struct mm_error err; /* its message */
	int ran;             /* a step ran in this apply: always steps run again after it */
};

static void apply_failed(struct run *r, struct apply_pass *ap, int rc, const struct mm_error *err)
{
	if (!ap->rc) {
		ap->rc = rc;
		ap->err = *err;
	}
	wind_down(r);
}

static void apply_one(struct run *r, struct plan_step *st, struct apply_pass *ap)
{
	char fp[65], *unknown = NULL, *outs;
	struct buf why = BUF_INIT;
	struct mm_error err = MM_ERROR_INIT;
	enum decision d;
	int rc, unread;

	if (ap->rc && !st->always)
		return;
	rc = resolve_for_decision(r, st, fp, &unknown, &unread, &err);
	free(unknown);
	if (rc < 0) {
		if (ap->rc) /* winding down: an always step whose inputs never came to be has nothing to undo */
			run_event(r, st->id, "step-skip", NULL, "skip (always, but cannot run now: %s)",
				  err.msg);
		else {
			r->remedy = REMEDY_FIX; /* a value that cannot be resolved stays so until fixed */
			apply_failed(r, ap, rc == MM_EINVAL || rc == MM_ENOTFOUND ? MM_ERR : rc, &err);
		}
		return;
	}
	d = decide(st, state_step_get(r->state, st->id), fp, &why);
	if (d == DO_SKIP && st->always && ap->ran) {
		d = DO_RUN;
		buf_reset(&why);
		buf_adds(&why, "always: an earlier step ran in this apply");
	}
	if (d == DO_SKIP) {
		outs = outputs_text(outputs_of(r, st->id));
		run_event(r, st->id, "step-skip", NULL, "skip (%s%s)%s%s", buf_cstr(&why),
			  unread ? "; its secrets were not needed" : "", *outs ? ": " : "", outs);
		free(outs);
		buf_release(&why);
		return;
	}
	run_event(r, st->id, d == DO_RESUME ? "step-resume" : "step-start", NULL, "%s %s (%s)%s",
		  decision_names[d], st->type->name, buf_cstr(&why),
		  ap->rc ? (ap->rc == MM_EINTR ? " after a stop signal" : " after a failure") : "");
	buf_release(&why);
	rc = run_step(r, st, fp, d, &err);
	if (rc < 0) {
		if (ap->rc)
			run_event(r, st->id, "step-failed", NULL, "failed: %s", err.msg);
		apply_failed(r, ap, rc, &err);
		return;
	}
	if (ap->rc)
		revert_restored(r, st);
	ap->ran = 1;
}

int sched_apply(struct run *r, struct mm_error *err)
{
	struct apply_pass ap = { 0, MM_ERROR_INIT, 0 };

	if (preflight_pending(r, err) < 0)
		return MM_ERR;
	for (size_t i = 0; i < r->plan->nsteps; i++) {
		struct plan_step *st = &r->plan->steps[i];

		if (!ap.rc && run_should_stop(r)) {
			struct mm_error e = MM_ERROR_INIT;

			err_set(&e, MM_EINTR, "interrupted before step '%s'", st->id);
			apply_failed(r, &ap, MM_EINTR, &e);
		}
		apply_one(r, st, &ap);
	}
	if (ap.rc)
		*err = ap.err;
	return ap.rc;
}

/* Dry run of one step: what apply would do now. */
static int evaluate_step(struct run *r, struct plan_step *st, int *changes, int *would_run, int quiet,
			 struct mm_error *err)
{
	char fp[65], *unknown = NULL;
	struct buf why = BUF_INIT, detail = BUF_INIT;
	enum decision d;
	int ret = 0, unread, upstream_runs = 0;

	for (size_t i = 0; i < st->index; i++)
		upstream_runs |= would_run[i];
	if (resolve_for_decision(r, st, fp, &unknown, &unread, err) < 0) {
		if (!unknown) {
			if (!quiet)
				run_event(r, st->id, "plan-error", NULL, "cannot evaluate: %s", err->msg);
			return MM_ERR;
		}
		(*changes)++;
		would_run[st->index] = 1;
		if (!quiet)
			run_event(r, st->id, "plan-unknown", NULL,
				  "run after '%s' (its inputs are not known yet)", unknown);
		free(unknown);
		err_clear(err);
		return 0;
	}
	d = decide(st, state_step_get(r->state, st->id), fp, &why);
	if (d == DO_SKIP && st->always && upstream_runs) {
		d = DO_RUN;
		buf_reset(&why);
		buf_adds(&why, "always: an earlier step will run");
	}
	if (d == DO_SKIP) {
		char *outs = outputs_text(outputs_of(r, st->id));

		if (!quiet)
			run_event(r, st->id, "plan-skip", NULL, "skip (%s%s)%s%s", buf_cstr(&why),
				  unread ? "; its secrets were not needed" : "", *outs ? ": " : "", outs);
		free(outs);
		buf_release(&why);
		return 0;
	}
	(*changes)++;
	would_run[st->index] = 1;
	if (quiet) {
		buf_release(&why);
		return 0;
	}
	if (st->type->describe) {
		struct step_ctx ctx = { .run = r, .step = st, .dry_run = 1, .offline = r->offline };
		struct mm_error derr = MM_ERROR_INIT;

		ctx.ckpt = d == DO_RESUME ? state_step_checkpoint(r->state, st->id) : NULL;
		if (st->type->describe(&ctx, &detail, &derr) < 0) {
			buf_reset(&detail);
			buf_addf(&detail, "cannot predict: %s", derr.msg);
			ret = MM_ERR;
		}
	}
	run_event(r, st->id, d == DO_RESUME ? "plan-resume" : "plan-run", NULL, "%s %s (%s)%s%s",
		  decision_names[d], st->type->name, buf_cstr(&why), detail.len ? ": " : "", buf_cstr(&detail));
	buf_release(&why);
	buf_release(&detail);
	return ret;
}

/* Which steps would run (pending[i] = 1), without printing or asking a server. */
static int sched_pending(struct run *r, int *pending)
{
	int changes = 0, *saved = r->would_run;
	struct mm_error err = MM_ERROR_INIT;

	r->would_run = pending;
	for (size_t i = 0; i < r->plan->nsteps; i++) {
		if (evaluate_step(r, &r->plan->steps[i], &changes, pending, 1, &err) < 0)
			pending[i] = 1; /* cannot be evaluated: preflight says why */
		err_clear(&err);
	}
	r->would_run = saved;
	return changes;
}

/* The preflight of the steps that would run now. */
static int preflight_pending(struct run *r, struct mm_error *err)
{
	int *pending = xcalloc(r->plan->nsteps + 1, sizeof(int));
	int ret = sched_pending(r, pending) ? sched_preflight(r, pending, err) : 0;

	free(pending);
	return ret;
}

int sched_plan(struct run *r, int *changes, struct mm_error *err)
{
	int *would_run = xcalloc(r->plan->nsteps + 1, sizeof(int));
	int failed = 0;
	struct mm_error perr = MM_ERROR_INIT;

	*changes = 0;
	r->would_run = would_run;
	for (size_t i = 0; i < r->plan->nsteps && !(r->stop && *r->stop); i++)
		if (evaluate_step(r, &r->plan->steps[i], changes, would_run, 0, err) < 0)
			failed++;
	r->would_run = NULL;
	free(would_run);
	/* A signal cuts the dry run's GETs short: what they could not predict is
	 * no failure, and the steps left would only ask again. */
	if (r->stop && *r->stop)
		return err_set(err, MM_EINTR, "interrupted");
	if (preflight_pending(r, &perr) < 0) {
		*err = perr;
		return MM_ERR;
	}
	if (failed)
		return err_set(err, MM_ERR, "%d step(s) could not be evaluated", failed);
	return 0;
}

struct dep_scan {
	const char *id;
	int hit;
};

static void dep_ref(void *ctx, enum interp_source src, const char *arg, const char *key)
{
	struct dep_scan *ds = ctx;

	if (src == INTERP_STEP && !strcmp(arg, ds->id))
		ds->hit = 1;
}

static int node_uses(const struct pnode *n, const char *id);

/* Uses through ${steps.ID...} anywhere, or a P_STEPREF naming ID. */
static int step_uses(const struct plan_step *st, const char *id)
{
	for (const struct param_spec *ps = st->type ? st->type->params : NULL; ps && ps->name; ps++) {
		const struct pnode *v = pnode_get(st->node, ps->name);

		if (ps->kind == P_STEPREF && v && v->kind == PN_SCALAR && !strcmp(v->scalar, id))
			return 1;
	}
	return node_uses(st->node, id);
}

static int node_uses(const struct pnode *n, const char *id)
{
	struct dep_scan ds = { id, 0 };
	struct mm_error err = MM_ERROR_INIT;

	if (n->kind == PN_SCALAR) {
		interp_scan(n->scalar, dep_ref, &ds, &err);
		return ds.hit;
	}
	for (size_t i = 0; i < n->n; i++)
		if (node_uses(n->items[i], id))
			return 1;
	return 0;
}

int sched_dependents(const struct plan *p, const char *id, int *mark)
{
	const struct plan_step *root = plan_step_find(p, id);

	if (!root)
		return MM_ENOTFOUND;
	mark[root->index] = 1;
	/* Steps only use earlier steps, so one forward pass closes the set. */
	for (size_t i = root->index + 1; i < p->nsteps; i++)
		for (size_t j = 0; j < i && !mark[i]; j++)
			if (mark[j] && step_uses(&p->steps[i], p->steps[j].id))
				mark[i] = 1;
	return 0;
}

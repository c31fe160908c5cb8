/*
 * The scheduler: for every step in plan order, resolve its parameters,
 * fingerprint them, and decide skip / resume / run against the checkpoint.
 *
 * A step's fingerprint covers its type, its server's address and its
 * resolved parameters, which include the outputs of the steps it uses; so a
 * changed step re-runs, and a step downstream re-runs exactly when what it
 * consumes changed. Credentials are never part of it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "interp.h"
#include "meter.h"
#include "run.h"
#include "hash.h"
#include "termsafe.h"
#include "util.h"

enum decision { DO_SKIP, DO_RESUME, DO_RUN, DO_UNKNOWN };

static const char *const decision_names[] = { "skip", "resume", "run", "unknown" };

struct resolve_ctx {
	struct run *run;
	const char *unknown; /* dry run: the first step whose outputs are not known */
};

static const cJSON *lookup_output(void *ctx, const char *id, const char *key, struct mm_error *err)
{
	struct resolve_ctx *rc = ctx;
	const cJSON *v;
	const struct plan_step *up = plan_step_find(rc->run->plan, id);
	int rerun = rc->run->would_run && up && rc->run->would_run[up->index];

	if (rerun || !state_step_is_done(rc->run->state, id)) {
		if (!rc->unknown)
			rc->unknown = plan_step_find(rc->run->plan, id)->id;
		err_set(err, MM_ENOTFOUND, "'${steps.%s.%s}': step '%s' has not finished", id, key, id);
		return NULL;
	}
	v = cJSON_GetObjectItemCaseSensitive(state_step_outputs(rc->run->state, id), key);
	if (!v)
		err_set(err, MM_ERR, "'${steps.%s.%s}': step '%s' recorded no output '%s'", id, key, id, key);
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
	default:
		return cJSON_CreateString(s);
	}
	err_set(err, MM_EINVAL, "'%s' resolved to '%s', which is not valid here", ps->name, s);
	return NULL;
}

static cJSON *resolve_value(const struct param_spec *ps, const struct pnode *v,
			    const struct interp_env *env, struct mm_error *err)
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

/* The resolved parameters as they may be persisted: secret ones replaced by their digest. */
static cJSON *persistable_params(const struct plan_step *st)
{
	cJSON *out = cJSON_Duplicate(st->resolved, 1);

	for (const struct param_spec *ps = st->type->params; ps && ps->name; ps++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(out, ps->name);
		char hex[65], tag[80];

		if (!ps->secret || !cJSON_IsString(v))
			continue;
		sha256_hex(v->valuestring, strlen(v->valuestring), hex);
		snprintf(tag, sizeof(tag), "(secret sha256:%.16s)", hex);
		cJSON_ReplaceItemInObjectCaseSensitive(out, ps->name, cJSON_CreateString(tag));
	}
	return out;
}

/* {"params":{...},"server":{"name","url"},"type"} — canonical order is applied when hashing. */
static cJSON *fingerprint_input(const struct run *r, const struct plan_step *st)
{
	cJSON *params = persistable_params(st);

	for (const struct param_spec *ps = st->type->params; ps && ps->name; ps++)
		if (ps->tuning)
			cJSON_DeleteItemFromObjectCaseSensitive(params, ps->name);
	cJSON *in = cJSON_CreateObject();

	cJSON_AddStringToObject(in, "type", st->type->name);
	if (st->server) {
		const struct plan_server *sv = plan_server_find(r->plan, st->server);
		cJSON *s = cJSON_AddObjectToObject(in, "server");

		cJSON_AddStringToObject(s, "name", sv->name);
		cJSON_AddStringToObject(s, sv->socket ? "socket" : "url", sv->socket ? sv->socket : sv->url);
	}
	cJSON_AddItemToObject(in, "params", params);
	return in;
}

int sched_resolve(struct run *r, struct plan_step *st, char fp[65], char **unknown, struct mm_error *err)
{
	struct resolve_ctx rc = { r, NULL };
	struct interp_env env = { r->plan->dir, lookup_output, &rc };
	cJSON *params = cJSON_CreateObject(), *in;

	*unknown = NULL;
	for (const struct param_spec *ps = st->type->params; ps && ps->name; ps++) {
		const struct pnode *v = pnode_get(st->node, ps->name);
		struct pnode def = { .kind = PN_SCALAR, .scalar = (char *)ps->def };
		cJSON *val;

		if (!v && !ps->def)
			continue;
		val = resolve_value(ps, v ? v : &def, &env, err);
		if (!val) {
			cJSON_Delete(params);
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
	in = fingerprint_input(r, st);
	json_fingerprint(in, fp);
	cJSON_Delete(in);
	return 0;
}

static const char *rec_str(const cJSON *rec, const char *key)
{
	const cJSON *v = cJSON_GetObjectItem(rec, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static enum decision decide(const cJSON *rec, const char *fp, const char **why)
{
	const char *status = rec_str(rec, "status"), *old = rec_str(rec, "fingerprint");
	int same = old && !strcmp(old, fp);

	if (!rec || !status) {
		*why = "not run yet";
		return DO_RUN;
	}
	if (same && !strcmp(status, "done")) {
		*why = "done, definition unchanged";
		return DO_SKIP;
	}
	if (same && cJSON_GetObjectItem(rec, "checkpoint")) {
		*why = "interrupted with a checkpoint";
		return DO_RESUME;
	}
	if (!same) {
		*why = !strcmp(status, "done") ? "definition or inputs changed" : "definition changed since it last ran";
		return DO_RUN;
	}
	*why = !strcmp(status, "failed") ? "failed last time" : "did not finish last time";
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

static int run_step(struct run *r, struct plan_step *st, const char *fp, enum decision d,
		    struct mm_error *err)
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
	if (rc < 0 && rc != MM_EINTR && r->stop && *r->stop)
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

int sched_apply(struct run *r, struct mm_error *err)
{
	for (size_t i = 0; i < r->plan->nsteps; i++) {
		struct plan_step *st = &r->plan->steps[i];
		char fp[65], *unknown = NULL;
		const char *why;
		enum decision d;
		int rc;

		if (r->stop && *r->stop)
			return err_set(err, MM_EINTR, "interrupted before step '%s'", st->id);
		rc = sched_resolve(r, st, fp, &unknown, err);
		free(unknown);
		if (rc < 0)
			return rc == MM_EINVAL || rc == MM_ENOTFOUND ? MM_ERR : rc;
		d = decide(state_step_get(r->state, st->id), fp, &why);
		if (d == DO_SKIP) {
			char *outs = outputs_text(outputs_of(r, st->id));

			run_event(r, st->id, "step-skip", NULL, "skip (%s)%s%s", why, *outs ? ": " : "", outs);
			free(outs);
			continue;
		}
		run_event(r, st->id, d == DO_RESUME ? "step-resume" : "step-start", NULL, "%s %s (%s)",
			  decision_names[d], st->type->name, why);
		rc = run_step(r, st, fp, d, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Dry run of one step: what apply would do now. */
static int plan_step(struct run *r, struct plan_step *st, int *changes, int *would_run,
		     struct mm_error *err)
{
	char fp[65], *unknown = NULL;
	const char *why;
	enum decision d;
	struct buf detail = BUF_INIT;
	int ret = 0;

	if (sched_resolve(r, st, fp, &unknown, err) < 0) {
		if (!unknown) {
			run_event(r, st->id, "plan-error", NULL, "cannot evaluate: %s", err->msg);
			return MM_ERR;
		}
		(*changes)++;
		would_run[st->index] = 1;
		run_event(r, st->id, "plan-unknown", NULL, "run after '%s' (its inputs are not known yet)",
			  unknown);
		free(unknown);
		err_clear(err);
		return 0;
	}
	d = decide(state_step_get(r->state, st->id), fp, &why);
	if (d == DO_SKIP) {
		char *outs = outputs_text(outputs_of(r, st->id));

		run_event(r, st->id, "plan-skip", NULL, "skip (%s)%s%s", why, *outs ? ": " : "", outs);
		free(outs);
		return 0;
	}
	(*changes)++;
	would_run[st->index] = 1;
	if (st->type->describe) {
		struct step_ctx ctx = { .run = r, .step = st, .dry_run = 1, .offline = r->offline };
		struct mm_error derr = MM_ERROR_INIT;

		ctx.ckpt = d == DO_RESUME ? state_step_checkpoint(r->state, st->id)
					  : NULL;
		if (st->type->describe(&ctx, &detail, &derr) < 0) {
			buf_reset(&detail);
			buf_addf(&detail, "cannot predict: %s", derr.msg);
			ret = MM_ERR;
		}
	}
	run_event(r, st->id, d == DO_RESUME ? "plan-resume" : "plan-run", NULL, "%s %s (%s)%s%s",
		  decision_names[d], st->type->name, why, detail.len ? ": " : "", buf_cstr(&detail));
	buf_release(&detail);
	return ret;
}

int sched_plan(struct run *r, int *changes, struct mm_error *err)
{
	int *would_run = xcalloc(r->plan->nsteps + 1, sizeof(int));
	int failed = 0;

	*changes = 0;
	r->would_run = would_run;
	for (size_t i = 0; i < r->plan->nsteps && !(r->stop && *r->stop); i++)
		if (plan_step(r, &r->plan->steps[i], changes, would_run, err) < 0)
			failed++;
	r->would_run = NULL;
	free(would_run);
	/* A signal cuts the dry run's GETs short: what they could not predict is
	 * no failure, and the steps left would only ask again. */
	if (r->stop && *r->stop)
		return err_set(err, MM_EINTR, "interrupted");
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

void run_event(const struct run *r, const char *step, const char *event, cJSON *fields,
	       const char *fmt, ...)
{
	struct buf msg = BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	buf_vaddf(&msg, fmt, ap);
	va_end(ap);
	run_scrub(r, &msg); /* last line of defence: no known secret is ever printed */
	if (r->json) {
		cJSON *o = fields ? fields : cJSON_CreateObject();
		char when[32], *line;

		iso8601_utc(now_ms(), when, sizeof(when));
		cJSON_AddStringToObject(o, "time", when);
		cJSON_AddStringToObject(o, "event", event);
		if (step)
			cJSON_AddStringToObject(o, "step", step);
		cJSON_AddStringToObject(o, "message", buf_cstr(&msg));
		line = cJSON_PrintUnformatted(o);
		{
			struct buf safe = BUF_INIT;

			term_json_line(&safe, line);
			fprintf(r->out, "%s\n", buf_cstr(&safe));
			buf_release(&safe);
		}
		fflush(r->out);
		free(line);
		cJSON_Delete(o);
	} else {
		cJSON_Delete(fields);
		if (!r->quiet || !strcmp(event, "step-failed") || !strcmp(event, "warning")) {
			run_term_clear(r->term, r->out);
			/* Server text is in msg: escaped so it cannot drive the terminal or forge lines. */
			if (step)
				term_printf(r->out, "%-14s %s\n", step, buf_cstr(&msg));
			else
				term_printf(r->out, "%s\n", buf_cstr(&msg));
			fflush(r->out);
		}
	}
	buf_release(&msg);
}

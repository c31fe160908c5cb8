/*
 * What a running step may ask of the engine (declared in step.h):
 * resolved parameters, checkpoints, its server connection, progress output.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buf.h"
#include "http.h"
#include "interp.h"
#include "run.h"
#include "util.h"

const cJSON *param_json(const struct step_ctx *ctx, const char *name)
{
	return cJSON_GetObjectItemCaseSensitive(ctx->step->resolved, name);
}

const char *param_str(const struct step_ctx *ctx, const char *name)
{
	const cJSON *v = param_json(ctx, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The spec's default, typed: the one place a parameter's default is stated. */
static int64_t spec_default_int(const struct step_ctx *ctx, const char *name)
{
	const struct param_spec *ps = step_param_find(ctx->step->type, name);
	int64_t n = 0;

	if (!ps || !ps->def)
		return 0;
	switch (ps->kind) {
	case P_DURATION: return parse_duration(ps->def, &n) ? 0 : n;
	case P_SIZE: return parse_size(ps->def, &n) ? 0 : n;
	case P_BOOL: return !strcmp(ps->def, "true");
	default: return parse_i64(ps->def, &n) ? 0 : n;
	}
}

/* Resolved parameters carry their defaults already (sched_resolve); the spec is
 * the fallback for a step asked before resolution. */
int64_t param_int(const struct step_ctx *ctx, const char *name)
{
	const cJSON *v = param_json(ctx, name);

	return cJSON_IsNumber(v) ? double_to_i64(v->valuedouble) : spec_default_int(ctx, name);
}

int param_bool(const struct step_ctx *ctx, const char *name)
{
	const cJSON *v = param_json(ctx, name);

	return cJSON_IsBool(v) ? cJSON_IsTrue(v) : (int)spec_default_int(ctx, name);
}

char *param_path(const struct step_ctx *ctx, const char *name)
{
	const struct param_spec *ps = step_param_find(ctx->step->type, name);
	const char *p = param_str(ctx, name);
	struct buf b = BUF_INIT;

	if (!p)
		return NULL;
	if (p[0] == '/')
		return xstrdup(p);
	buf_addf(&b, "%s/%s", ps && ps->artefact ? ctx->run->plan->state_dir : ctx->run->plan->dir, p);
	return buf_detach(&b);
}

int ckpt_save(struct step_ctx *ctx, cJSON *ckpt, struct mm_error *err)
{
	cJSON *previous = NULL;
	int ret = state_step_save_checkpoint(ctx->run->state, ctx->step->id, ckpt, &previous, err);

	/* The old checkpoint lives until the step ends: strings a step read from it stay valid. */
	if (previous) {
		if (!ctx->retired)
			ctx->retired = cJSON_CreateArray();
		cJSON_AddItemToArray(ctx->retired, previous);
	}
	ctx->ckpt = ckpt;
	return ret;
}

int ckpt_put(struct step_ctx *ctx, const char *key, cJSON *val, struct mm_error *err)
{
	cJSON *ck = ctx->ckpt ? cJSON_Duplicate(ctx->ckpt, 1) : cJSON_CreateObject();

	cJSON_DeleteItemFromObjectCaseSensitive(ck, key);
	cJSON_AddItemToObject(ck, key, val);
	return ckpt_save(ctx, ck, err);
}

int ckpt_drop(struct step_ctx *ctx, const char *const *keys, struct mm_error *err)
{
	cJSON *ck = ctx->ckpt ? cJSON_Duplicate(ctx->ckpt, 1) : cJSON_CreateObject();

	for (; *keys; keys++)
		cJSON_DeleteItemFromObjectCaseSensitive(ck, *keys);
	return ckpt_save(ctx, ck, err);
}

const char *ckpt_str(const struct step_ctx *ctx, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(ctx->ckpt, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

char *ckpt_strdup(const struct step_ctx *ctx, const char *key)
{
	const char *s = ckpt_str(ctx, key);

	return s ? xstrdup(s) : NULL;
}

int64_t ckpt_int(const struct step_ctx *ctx, const char *key, int64_t def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(ctx->ckpt, key);

	return cJSON_IsNumber(v) ? double_to_i64(v->valuedouble) : def;
}

cJSON *ckpt_copy(const struct step_ctx *ctx, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(ctx->ckpt, key);

	return v ? cJSON_Duplicate(v, 1) : NULL;
}

void step_set_remedy(struct step_ctx *ctx, enum step_remedy remedy, const char *step)
{
	ctx->run->remedy = remedy;
	snprintf(ctx->run->remedy_step, sizeof(ctx->run->remedy_step), "%s", step ? step : ctx->step->id);
}

const struct sys_ops *step_sys(const struct step_ctx *ctx)
{
	return ctx->run->state->sys;
}

const char *step_server_name(const struct step_ctx *ctx)
{
	return ctx->step->server;
}

const char *step_id(const struct step_ctx *ctx)
{
	return ctx->step->id;
}

const char *step_state_dir(const struct step_ctx *ctx)
{
	return ctx->run->plan->state_dir;
}

int step_should_stop(const struct step_ctx *ctx)
{
	return run_should_stop(ctx->run);
}

/* A step's tuning key, else the plan's default, else the built-in value. */
static long floor_value(const struct step_ctx *ctx, const char *key, int64_t plan_value, long builtin)
{
	int64_t v = param_int(ctx, key);

	return (long)(v > 0 ? v : plan_value > 0 ? plan_value : builtin);
}

struct http_client *step_client(struct step_ctx *ctx, struct mm_error *err)
{
	struct http_client *c;

	if (!ctx->step->server)
		return err_set(err, MM_ERR, "step '%s' has no server", ctx->step->id), NULL;
	c = run_client(ctx->run, ctx->step->server, ctx->step->id, err);
	/* The client is shared by the server's steps: each step sets its own floor. */
	if (c)
		step_transfer_floor(ctx, c);
	return c;
}

void step_transfer_floor(const struct step_ctx *ctx, struct http_client *c)
{
	const struct plan *p = ctx->run->plan;

	http_set_transfer_limits(c, floor_value(ctx, "min_speed", p->min_speed_bps, HTTP_MIN_SPEED_BPS),
				 floor_value(ctx, "min_speed_window", p->min_speed_window_s,
					     HTTP_MIN_SPEED_WINDOW_S),
				 floor_value(ctx, "transfer_deadline", p->transfer_deadline_s,
					     HTTP_TRANSFER_DEADLINE_S));
}

static void step_vemit(const struct step_ctx *ctx, const char *event, const char *fmt, va_list ap)
{
	struct buf b = BUF_INIT;

	buf_vaddf(&b, fmt, ap);
	run_event(ctx->run, ctx->step->id, event, NULL, "%s", buf_cstr(&b));
	buf_release(&b);
}

void step_log(const struct step_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	step_vemit(ctx, "progress", fmt, ap);
	va_end(ap);
}

void step_warn(const struct step_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	step_vemit(ctx, "warning", fmt, ap);
	va_end(ap);
}

int step_journal(const struct step_ctx *ctx, const char *event, cJSON *details)
{
	struct mm_error err = MM_ERROR_INIT;

	return journal_append(ctx->run->state, ctx->step->id, event, details, &err);
}

const char *step_find_integrity_proof(const struct step_ctx *ctx, int64_t size, const char *sha256,
				      const char *file_id, const char **sha_out)
{
	const struct plan *p = ctx->run->plan;

	for (size_t i = 0; i < p->nsteps; i++) {
		const struct plan_step *st = &p->steps[i];
		const cJSON *out = state_step_outputs(ctx->run->state, st->id);
		const cJSON *sha = cJSON_GetObjectItemCaseSensitive(out, "sha256");
		const cJSON *sz = cJSON_GetObjectItemCaseSensitive(out, "size");
		const cJSON *errs = cJSON_GetObjectItemCaseSensitive(out, "errors");
		const cJSON *fid = cJSON_GetObjectItemCaseSensitive(out, "file_id");

		if (!st->type || st == ctx->step || !state_step_is_done(ctx->run->state, st->id))
			continue;
		if (strcmp(st->type->name, "download") && strcmp(st->type->name, "verify"))
			continue;
		if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(out, "crc_ok")) || !cJSON_IsString(sha) ||
		    !cJSON_IsNumber(sz) || double_to_i64(sz->valuedouble) != size)
			continue;
		if ((sha256 && strcasecmp(sha->valuestring, sha256)) ||
		    (file_id && (!cJSON_IsString(fid) || strcmp(fid->valuestring, file_id))))
			continue;
		if (!strcmp(st->type->name, "verify") && (!cJSON_IsNumber(errs) || errs->valuedouble != 0))
			continue;
		if (sha_out)
			*sha_out = sha->valuestring;
		return st->id;
	}
	return NULL;
}

int step_sleep(const struct step_ctx *ctx, int64_t ms)
{
	int64_t until = mono_ms() + ms;

	while (mono_ms() < until) {
		struct timespec ts = { 0, 100 * 1000000L };

		if (step_should_stop(ctx))
			return MM_EINTR;
		nanosleep(&ts, NULL);
	}
	return step_should_stop(ctx) ? MM_EINTR : 0;
}

struct link_scan {
	const struct plan *plan;
	const char *type;
	const char *found;
};

static void link_ref(void *ctx, enum interp_source src, const char *arg, const char *key)
{
	struct link_scan *ls = ctx;
	const struct plan_step *up;

	if (src != INTERP_STEP || ls->found)
		return;
	up = plan_step_find(ls->plan, arg);
	if (up && up->type && !strcmp(up->type->name, ls->type))
		ls->found = up->id;
}

const char *step_linked_step(const struct step_ctx *ctx, const char *param, const char *type)
{
	const struct pnode *v = pnode_get(ctx->step->node, param);
	struct link_scan ls = { ctx->run->plan, type, NULL };
	struct mm_error err = MM_ERROR_INIT;

	if (!v || v->kind != PN_SCALAR || interp_scan(v->scalar, link_ref, &ls, &err) < 0)
		return NULL;
	return ls.found;
}

const cJSON *step_linked_outputs(const struct step_ctx *ctx, const char *param, const char *type)
{
	const char *id = step_linked_step(ctx, param, type);

	return id ? cJSON_GetObjectItem(state_step_get(ctx->run->state, id), "outputs") : NULL;
}

const cJSON *step_linked_record(const struct step_ctx *ctx, const char *param, const char *type)
{
	const char *id = step_linked_step(ctx, param, type);

	return id ? state_step_get(ctx->run->state, id) : NULL;
}

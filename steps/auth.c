/*
 * auth: log in to a server and prove the account can migrate (system admin,
 * Mattermost 5.33 or later). Later steps reuse the connection; a resumed
 * run logs in again on first use even when this step is skipped.
 */
#include <string.h>

#include "mm.h"
#include "step.h"

static const struct param_spec auth_params[] = {
	{ NULL },
};

static const char *const auth_outputs[] = { "user_id", "username", "server_version", NULL };

static int auth_run(struct step_ctx *ctx, struct mm_error *err)
{
	const struct mm_user *me;

	if (!step_client(ctx, err))
		return MM_ERR;
	me = step_server_user(ctx);
	cJSON_AddStringToObject(ctx->outputs, "user_id", me->id);
	cJSON_AddStringToObject(ctx->outputs, "username", me->username);
	cJSON_AddStringToObject(ctx->outputs, "server_version", step_server_version(ctx));
	step_log(ctx, "logged in to '%s' as '%s' (system admin), Mattermost %s", step_server_name(ctx),
		 me->username, step_server_version(ctx)[0] ? step_server_version(ctx) : "(version unknown)");
	return 0;
}

static int auth_describe(struct step_ctx *ctx, struct buf *out, struct mm_error *err)
{
	const struct mm_user *me;

	if (!step_server_readonly_ok(ctx)) {
		buf_addf(out, "would log in to '%s'%s", step_server_name(ctx),
			 ctx->offline ? " (offline: not checked)" : "");
		return 0;
	}
	if (!step_client(ctx, err))
		return MM_ERR;
	me = step_server_user(ctx);
	buf_addf(out, "would log in to '%s': the token works for '%s' (system admin), Mattermost %s",
		 step_server_name(ctx), me->username, step_server_version(ctx));
	return 0;
}

const struct step_type step_auth = {
	.name = "auth",
	.summary = "log in and check the account is a system admin on Mattermost 5.33+",
	.server = SERVER_REQUIRED,
	.params = auth_params,
	.outputs = auth_outputs,
	.describe = auth_describe,
	.run = auth_run,
};

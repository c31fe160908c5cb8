/*
 * verify: prove an export archive is whole (zip CRCs, bulk JSONL rules,
 * attachments present) and, with a server, that the target now holds what
 * the archive carries: every team, channel and user, and at least as many
 * posts per channel. Read-only on the server: GET requests only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "archive.h"
#include "jobs.h"
#include "mm.h"
#include "step.h"
#include "util.h"

static const struct param_spec verify_params[] = {
	{ "archive", P_PATH, 1, NULL, "the export zip to check" },
	{ "max_errors", P_INT, 0, "50", "errors shown (all are counted)", .tuning = 1 },
	{ "attachments", P_BOOL, 0, "true", "check that attachment paths are in the zip" },
	{ "fail_on_errors", P_BOOL, 0, "true", "fail the step when the archive has errors" },
	{ "post_counts", P_BOOL, 0, "true", "with a server: compare posts per channel" },
	{ "sha256", P_STRING, 0, NULL, "expected SHA-256 of the archive" },
	{ "target_version", P_STRING, 0, NULL,
	  "judge as this server release (X.Y) would; default: the server's" },
	{ NULL },
};

static const char *const verify_outputs[] = {
	"counts",  "errors",      "crc_ok",  "size", "sha256", "lines", "unused_attachments",
	"missing", "fewer_posts", "file_id", NULL
};

struct reconcile {
	struct step_ctx *ctx;
	struct http_client *c;
	struct mm_team *teams;
	size_t nteams;
	struct mm_channel *chans; /* all channels of all teams */
	size_t nchans;
	unsigned long missing, fewer;
	int check_posts;
	struct mm_error *err;
	int failed;
};

static const struct mm_team *team_named(const struct reconcile *rc, const char *name)
{
	for (size_t i = 0; i < rc->nteams; i++)
		if (!strcmp(rc->teams[i].name, name))
			return &rc->teams[i];
	return NULL;
}

static int check_team(void *ctx, const char *team)
{
	struct reconcile *rc = ctx;

	if (!team_named(rc, team)) {
		step_log(rc->ctx, "missing on target: team '%s'", team);
		rc->missing++;
	}
	return 0;
}

static const struct mm_channel *channel_named(const struct reconcile *rc, const char *team_id, const char *name)
{
	for (size_t i = 0; i < rc->nchans; i++)
		if (!strcmp(rc->chans[i].team_id, team_id) && !strcmp(rc->chans[i].name, name))
			return &rc->chans[i];
	return NULL;
}

static int check_channel(void *ctx, const char *team, const char *channel, unsigned long posts,
			 unsigned long replies)
{
	struct reconcile *rc = ctx;
	const struct mm_team *t = team_named(rc, team);
	const struct mm_channel *ch = t ? channel_named(rc, t->id, channel) : NULL;

	if (!t)
		return 0; /* the team itself is already reported */
	if (!ch) {
		step_log(rc->ctx, "missing on target: channel '%s/%s'", team, channel);
		rc->missing++;
		return 0;
	}
	/* The target may hold more (system messages, earlier imports), never fewer. */
	if (rc->check_posts && ch->total_msg_count >= 0 &&
	    (unsigned long)ch->total_msg_count < posts + replies) {
		step_log(rc->ctx, "fewer posts on target: channel '%s/%s' has %lld, the archive %lu", team,
			 channel, (long long)ch->total_msg_count, posts + replies);
		rc->fewer++;
	}
	return 0;
}

static int check_user(void *ctx, const char *username, int is_bot)
{
	struct reconcile *rc = ctx;
	struct mm_user u;
	int ret;

	if (step_should_stop(rc->ctx))
		return 1;
	ret = mm_get_user_by_username(rc->c, username, &u, rc->err);
	if (ret == MM_ENOTFOUND) {
		err_clear(rc->err);
		step_log(rc->ctx, "missing on target: %s '%s'", is_bot ? "bot" : "user", username);
		rc->missing++;
		return 0;
	}
	if (ret < 0) {
		rc->failed = ret;
		return 1;
	}
	return 0;
}

static int load_target(struct reconcile *rc)
{
	if (mm_list_teams(rc->c, &rc->teams, &rc->nteams, rc->err) < 0)
		return MM_ERR;
	for (size_t i = 0; i < rc->nteams; i++) {
		struct mm_channel *chs = NULL;
		size_t n = 0;

		if (mm_list_team_channels(rc->c, rc->teams[i].id, MM_CHANNELS_PRIVATE | MM_CHANNELS_DELETED,
					  &chs, &n, rc->err) < 0)
			return MM_ERR;
		rc->chans = xrealloc(rc->chans, (rc->nchans + n + 1) * sizeof(*rc->chans));
		memcpy(rc->chans + rc->nchans, chs, n * sizeof(*chs));
		rc->nchans += n;
		free(chs);
	}
	return 0;
}

static int reconcile_target(struct step_ctx *ctx, const struct archive_report *rep, struct mm_error *err)
{
	struct reconcile rc = { .ctx = ctx, .err = err, .check_posts = param_bool(ctx, "post_counts") };
	int ret = MM_ERR;

	if (!(rc.c = step_client(ctx, err)) || load_target(&rc) < 0)
		goto out;
	archive_report_foreach_team(rep, check_team, &rc);
	archive_report_foreach_channel(rep, check_channel, &rc);
	archive_report_foreach_user(rep, check_user, &rc);
	if (rc.failed || step_should_stop(ctx)) {
		ret = rc.failed ? rc.failed : MM_EINTR;
		goto out;
	}
	cJSON_AddNumberToObject(ctx->outputs, "missing", (double)rc.missing);
	cJSON_AddNumberToObject(ctx->outputs, "fewer_posts", (double)rc.fewer);
	if (rc.missing || rc.fewer) {
		ret = err_set(err, MM_ERR,
			      "the target is missing %lu team(s), channel(s) or user(s) of the archive and "
			      "has fewer posts in %lu channel(s) (listed above)",
			      rc.missing, rc.fewer);
		goto out;
	}
	step_log(ctx,
		 "target holds every team, channel and user of the archive (%zu teams, %zu channels checked)",
		 rc.nteams, rc.nchans);
	ret = 0;
out:
	free(rc.teams);
	free(rc.chans);
	return ret;
}

/* Size and digest must match what the linked download step recorded. */
static int check_linked(struct step_ctx *ctx, const struct archive_report *rep, struct mm_error *err)
{
	const cJSON *dl = step_linked_outputs(ctx, "archive", "download");
	const cJSON *sha = cJSON_GetObjectItem(dl, "sha256"), *size = cJSON_GetObjectItem(dl, "size");
	const char *want = param_str(ctx, "sha256");

	if (want && strcasecmp(want, rep->sha256))
		return err_set(err, MM_ERR, "archive '%s' has SHA-256 %s, the plan expects %s", rep->archive,
			       rep->sha256, want);
	if (cJSON_IsString(sha) && strcmp(sha->valuestring, rep->sha256))
		return err_set(err, MM_ERR,
			       "archive '%s' changed since it was downloaded: SHA-256 %s, the download recorded %s",
			       rep->archive, rep->sha256, sha->valuestring);
	if (cJSON_IsNumber(size) && double_to_i64(size->valuedouble) != (int64_t)rep->size)
		return err_set(err, MM_ERR,
			       "archive '%s' changed since it was downloaded: %llu bytes, the download recorded %.0f",
			       rep->archive, (unsigned long long)rep->size, size->valuedouble);
	return 0;
}

/*
 * The release whose import rules apply: target_version, else with a server
 * the version it reports, else the newest rules (0).
 */
static int target_version(struct step_ctx *ctx, int *version, struct mm_error *err)
{
	const char *v = param_str(ctx, "target_version");

	*version = 0;
	if (v && *v) {
		if (bulk_parse_version(v, version) < 0)
			return err_set(err, MM_EINVAL,
				       "target_version takes MAJOR.MINOR such as 9.11, not '%s'", v);
		return 0;
	}
	if (step_server_name(ctx) && bulk_parse_version(step_server_version(ctx), version) < 0)
		*version = 0;
	return 0;
}

/*
 * The identity of the file checked, when it did not change while it was
 * read: a later upload of this very file then trusts the recorded digest
 * instead of reading the file once more.
 */
static void record_identity(struct step_ctx *ctx, const struct stat *before, const char *path)
{
	struct stat after;
	char id[FILE_ID_LEN], again[FILE_ID_LEN];

	if (stat(path, &after) < 0 || after.st_size != before->st_size)
		return;
	file_identity(before, id);
	file_identity(&after, again);
	if (!strcmp(id, again))
		cJSON_AddStringToObject(ctx->outputs, "file_id", id);
}

static int stop_cb(void *ctx)
{
	return step_should_stop(ctx);
}

static int verify_run(struct step_ctx *ctx, struct mm_error *err)
{
	struct archive_opts ao = ARCHIVE_OPTS_INIT;
	struct archive_report *rep = NULL;
	char *path = param_path(ctx, "archive");
	struct stat before;
	int ret, have_before;

	ao.max_shown = (int)param_int(ctx, "max_errors");
	ao.check_attachments = param_bool(ctx, "attachments");
	ao.should_stop = stop_cb;
	ao.stop_ctx = ctx;
	if ((ret = target_version(ctx, &ao.target_version, err)) < 0)
		goto out;
	have_before = stat(path, &before) == 0;
	if ((ret = archive_verify(path, &ao, &rep, err)) < 0)
		goto out;
	if (have_before)
		record_identity(ctx, &before, path);
	for (size_t i = 0; i < rep->nerrors; i++)
		step_log(ctx, "%s", rep->errors[i]);
	archive_report_outputs(rep, ctx->outputs);
	step_log(ctx, "%lu lines, %lu errors, %llu bytes, sha256 %s", rep->lines, rep->error_count,
		 (unsigned long long)rep->size, rep->sha256);
	if ((ret = check_linked(ctx, rep, err)) < 0)
		goto out;
	if (rep->error_count && param_bool(ctx, "fail_on_errors")) {
		step_set_remedy(ctx, REMEDY_FIX, NULL); /* the same archive fails the same way */
		ret = err_set(err, MM_ERR, "archive '%s' has %lu error(s)%s", path, rep->error_count,
			      rep->error_count > rep->nerrors ? " (the first are listed above)"
							      : " (listed above)");
		goto out;
	}
	if (step_server_name(ctx))
		ret = reconcile_target(ctx, rep, err);
out:
	archive_report_free(rep);
	free(path);
	return ret;
}

static int verify_describe(struct step_ctx *ctx, struct buf *out, struct mm_error *err)
{
	char *path = param_path(ctx, "archive");

	buf_addf(out, "would check '%s'%s%s", path, step_server_name(ctx) ? " and reconcile it against " : "",
		 step_server_name(ctx) ? step_server_name(ctx) : "");
	free(path);
	return 0;
}

const struct step_type step_verify = {
	.name = "verify",
	.summary = "check an export archive, and with a server reconcile the target against it",
	.server = SERVER_OPTIONAL,
	.params = verify_params,
	.outputs = verify_outputs,
	.describe = verify_describe,
	.run = verify_run,
};

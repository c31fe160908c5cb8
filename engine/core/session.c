/*
 * Server connections of a run: one http_client per plan server, created and
 * logged into on first use. Credentials are expanded from ${env:}/${file:}
 * only here, handed to libcurl, and wiped; they never reach the state,
 * the journal or a message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "interp.h"
#include "conn.h"
#include "event.h"
#include "mm.h"
#include "run.h"
#include "step.h"
#include "totp.h"
#include "util.h"

static int conn_should_stop(void *ctx)
{
	const struct run *r = ctx;

	return run_should_stop(r);
}

static void conn_log(void *ctx, enum http_log_level level, const char *line)
{
	struct server_conn *sc = ctx;

	run_event(sc->run, NULL, level == HTTP_LOG_WARN ? "warning" : "http", NULL, "%s: %s", sc->sv->name,
		  line);
}

/* Expands a credential or address field; caller frees with interp_free_secret. */
static char *expand_field(struct run *r, const struct plan_server *sv, const char *field, const char *value,
			  struct mm_error *err)
{
	struct interp_env env = { r->plan->dir, NULL, NULL };
	char *out = NULL;

	if (interp_expand(value, &env, &out, err) < 0) {
		err_prefix(err, "server '%s', '%s'", sv->name, field);
		return NULL;
	}
	return out;
}

static int conn_login(struct run *r, struct server_conn *sc, struct mm_error *err);

/*
 * http's reauth hook: a 401 mid-run logs in again once with the plan's password.
 * Only a session that once worked can expire: before that, a 401 is the
 * server refusing what we sent (a wrong password, a bad code), and asking
 * again would spend a second of the account's MaximumLoginAttempts.
 */
static int conn_reauth(void *ctx, struct http_client *c, struct mm_error *err)
{
	struct server_conn *sc = ctx;

	if (sc->sv->socket)
		/* No token over the socket: web/handlers.go answers 401
		 * api.context.local_origin_required.app_error when the server does
		 * not take the connection as local. Nothing to renew. */
		return err_set(err, MM_ERR,
			       "server '%s': not allowed in local mode (the server did not accept the "
			       "socket connection as local; check ServiceSettings.EnableLocalMode and the "
			       "socket path)",
			       sc->sv->name);
	if (!sc->sv->username)
		return err_set(err, MM_ERR, "server '%s' refused the token; renew it", sc->sv->name);
	if (!sc->authed)
		return err_set(err, MM_ERR, "server '%s' refused the login; not trying again", sc->sv->name);
	if (sc->run->dry_run)
		return err_set(err, MM_ERR, "server '%s': the session expired and plan makes no login",
			       sc->sv->name);
	run_event(sc->run, NULL, "warning", NULL, "server '%s': the session expired; logging in again",
		  sc->sv->name);
	return conn_login(sc->run, sc, err);
}

static int conn_open(struct run *r, struct server_conn *sc, struct mm_error *err)
{
	const struct plan_server *sv = sc->sv;
	struct http_opts o = { 0 };
	char *url = NULL, *ca = NULL;
	int ret = MM_ERR;

	if (sv->url && !(url = expand_field(r, sv, "url", sv->url, err)))
		goto out;
	if (sv->ca_file) {
		struct buf b = BUF_INIT;

		buf_addf(&b, "%s%s%s", sv->ca_file[0] == '/' ? "" : r->plan->dir,
			 sv->ca_file[0] == '/' ? "" : "/", sv->ca_file);
		ca = buf_detach(&b);
	}
	o.base_url = url;
	o.socket_path = sv->socket;
	o.ca_file = ca;
	o.insecure = sv->insecure;
	o.retries = (int)(sv->retries >= 0 ? sv->retries : r->plan->retries);
	if (o.retries == 0)
		o.retries = HTTP_RETRIES_NONE;
	o.connect_timeout_s = (long)r->plan->connect_timeout_s;
	o.min_speed_bps = (long)r->plan->min_speed_bps;
	o.min_speed_window_s = (long)r->plan->min_speed_window_s;
	o.transfer_deadline_s = (long)r->plan->transfer_deadline_s;
	o.should_stop = conn_should_stop;
	o.stop_ctx = r;
	o.log = conn_log;
	o.log_ctx = sc;
	o.log_level = r->verbose ? HTTP_LOG_INFO : HTTP_LOG_WARN;
	o.reauth = conn_reauth;
	o.reauth_ctx = sc;
	if (sv->insecure)
		run_event(r, NULL, "warning", NULL,
			  "server '%s': TLS verification is off (insecure_skip_tls_verify: true)", sv->name);
	sc->client = http_client_new(&o, err);
	if (!sc->client) {
		err_prefix(err, "server '%s'", sv->name);
		goto out;
	}
	ret = 0;
out:
	free(url);
	free(ca);
	return ret;
}

/*
 * The TOTP code of time step `step` from the base32 secret. The server takes
 * the steps t0-1..t0+1 (WindowSize 3) and each only once per user
 * (mfa.ValidateToken: dgoogauth DisallowReuse).
 */
static int mfa_code_at(struct run *r, struct server_conn *sc, int64_t step, char code[7], struct mm_error *err)
{
	const struct plan_server *sv = sc->sv;
	char *secret = expand_field(r, sv, "mfa_secret", sv->mfa_secret->scalar, err);
	uint8_t key[128];
	size_t n = 0;
	int ret = MM_ERR;

	if (!secret)
		return MM_ERR;
	if (totp_base32_decode(secret, key, sizeof(key), &n) < 0)
		err_set(err, MM_ERR, "server '%s', 'mfa_secret': not a base32 TOTP secret", sv->name);
	else if (totp_code(key, n, step, code) < 0)
		err_set(err, MM_ERR, "server '%s', 'mfa_secret': cannot compute the TOTP code", sv->name);
	else
		ret = 0;
	http_wipe(key, sizeof(key));
	interp_free_secret(secret);
	return ret;
}

/*
 * Password login. With mfa_secret, the code's time step is chosen among those
 * the server accepts (t0, t0+1, t0-1): first t0 (or the step after the one
 * this process last used), and when the server refuses the code as used (an
 * earlier run within the same 30 s took that step) the next candidate. Each
 * refusal counts as a failed attempt until a login succeeds; with no
 * candidate left (three logins within 30 s) the refusal stands.
 */
static int login_password(struct run *r, struct server_conn *sc, const char *user, const char *pass,
			  const char *mfa, struct mm_error *err)
{
	int64_t now = totp_step(time(NULL));
	const int64_t cand[] = { now, now + 1, now - 1 };
	char code[7] = "";
	int ret = MM_ERR, tried = 0;

	if (!sc->sv->mfa_secret)
		return mm_login(sc->client, user, pass, mfa, &sc->me, err);
	for (size_t i = 0; i < sizeof(cand) / sizeof(cand[0]); i++) {
		if (sc->mfa_step && cand[i] <= sc->mfa_step)
			continue; /* ours already: the server would refuse it */
		if (tried++) {
			if (strcmp(err->app_id, "api.user.check_user_mfa.bad_code.app_error"))
				break;
			run_event(r, NULL, "warning", NULL,
				  "server '%s': the MFA code was refused (used already?); trying the code of "
				  "another 30 s step",
				  sc->sv->name);
			err_clear(err);
		}
		if ((ret = mfa_code_at(r, sc, cand[i], code, err)) < 0)
			break;
		if ((ret = mm_login(sc->client, user, pass, code, &sc->me, err)) == 0) {
			sc->mfa_step = cand[i];
			break;
		}
	}
	if (!tried)
		ret = err_set(err, MM_ERR,
			      "server '%s': every MFA code the server would accept now was used "
			      "by this run; try again in 30 s",
			      sc->sv->name);
	http_wipe(code, sizeof(code));
	return ret;
}

static int conn_login(struct run *r, struct server_conn *sc, struct mm_error *err)
{
	const struct plan_server *sv = sc->sv;
	char *user = NULL, *pass = NULL, *mfa = NULL, *token = NULL;
	int ret = MM_ERR;

	if (sv->socket)
		return 0; /* local mode: the socket is the credential */
	if (sv->token) {
		if (!(token = expand_field(r, sv, "token", sv->token->scalar, err)))
			goto out;
		if (http_set_token(sc->client, token) < 0) {
			err_set(err, MM_ERR, "server '%s': the token holds spaces or control characters",
				sv->name);
			goto out;
		}
		ret = 0;
		goto out;
	}
	if (!(user = expand_field(r, sv, "username", sv->username->scalar, err)) ||
	    !(pass = expand_field(r, sv, "password", sv->password->scalar, err)) ||
	    (sv->mfa && !(mfa = expand_field(r, sv, "mfa", sv->mfa->scalar, err))))
		goto out;
	ret = login_password(r, sc, user, pass, mfa, err);
	if (ret == 0)
		sc->logged_in = 1;
	else
		err_prefix(err, "server '%s': cannot log in as '%s'", sv->name, user);
out:
	interp_free_secret(user);
	interp_free_secret(pass);
	interp_free_secret(mfa);
	interp_free_secret(token);
	return ret;
}

/* Who we are, and whether that account and server can do a migration. */
static int conn_check(struct server_conn *sc, struct mm_error *err)
{
	const struct plan_server *sv = sc->sv;

	if (sv->socket) {
		snprintf(sc->me.username, sizeof(sc->me.username), "(local mode)");
		sc->me.is_system_admin = 1;
	}
	if (!sv->socket && mm_get_me(sc->client, &sc->me, sc->version, err) < 0) {
		if (err->http_status == 401)
			err_prefix(err, "server '%s': the credentials were refused", sv->name);
		else
			err_prefix(err, "server '%s'", sv->name);
		return MM_ERR;
	}
	/* The socket has no login answer to read X-Version-Id from: ask once. A
	 * server without the local ping route still works, only unversioned. */
	if (sv->socket && mm_ping(sc->client, sc->version, err) < 0) {
		if (err->http_status == 0) {
			err_prefix(err, "server '%s' (local mode)", sv->name);
			return MM_ERR;
		}
		run_event(sc->run, NULL, "warning", NULL, "server '%s': cannot read the server version: %s",
			  sv->name, err->msg);
		err_clear(err);
		sc->version[0] = '\0';
	}
	if (!sc->me.is_system_admin)
		return err_set(err, MM_ERR,
			       "server '%s': account '%s' is not a system admin (roles '%s'); exports and "
			       "imports need the system_admin role",
			       sv->name, sc->me.username, sc->me.roles);
	if (sc->version[0] && !mm_version_at_least(sc->version, 5, 33))
		return err_set(err, MM_ERR,
			       "server '%s' runs Mattermost %s; migrations need 5.33 or later (export "
			       "download and import upload arrived in 5.33)",
			       sv->name, sc->version);
	return 0;
}

static struct server_conn *conn_for(struct run *r, const char *server, struct mm_error *err)
{
	const struct plan_server *sv = plan_server_find(r->plan, server);
	size_t i;

	if (!sv) {
		err_set(err, MM_ERR, "server '%s' is not declared", server);
		return NULL;
	}
	i = (size_t)(sv - r->plan->servers);
	if (!r->conns)
		r->conns = xcalloc(r->plan->nservers, sizeof(*r->conns));
	if (!r->conns[i]) {
		r->conns[i] = xcalloc(1, sizeof(struct server_conn));
		r->conns[i]->sv = sv;
		r->conns[i]->run = r;
	}
	return r->conns[i];
}

static int conn_auth(struct run *r, struct server_conn *sc, struct mm_error *err)
{
	if (!sc->client && conn_open(r, sc, err) < 0)
		return MM_ERR;
	if (conn_login(r, sc, err) < 0 || conn_check(sc, err) < 0)
		return MM_ERR;
	sc->authed = 1;
	return 0;
}

struct http_client *run_client(struct run *r, const char *server, const char *step_id, struct mm_error *err)
{
	struct server_conn *sc = conn_for(r, server, err);

	if (!sc)
		return NULL;
	if (!sc->authed) {
		if (r->offline)
			return err_set(err, MM_ERR, "offline: no requests to server '%s'", server), NULL;
		if (r->dry_run && sc->sv->username)
			return err_set(err, MM_ERR,
				       "server '%s' uses a password login, which is a POST; plan makes none "
				       "(use a personal access token for an exact dry run)",
				       server),
			       NULL;
		if (conn_auth(r, sc, err) < 0)
			return NULL;
	}
	return sc->client;
}

static struct server_conn *conn_of(const struct step_ctx *ctx)
{
	struct mm_error err = MM_ERROR_INIT;

	return ctx->step->server ? conn_for(ctx->run, ctx->step->server, &err) : NULL;
}

const struct mm_user *step_server_user(const struct step_ctx *ctx)
{
	struct server_conn *sc = conn_of(ctx);

	return sc ? &sc->me : NULL;
}

const char *step_server_version(const struct step_ctx *ctx)
{
	struct server_conn *sc = conn_of(ctx);

	return sc ? sc->version : "";
}

int step_server_readonly_ok(const struct step_ctx *ctx)
{
	struct server_conn *sc = conn_of(ctx);

	return sc && !ctx->offline && !sc->sv->username;
}

/* Ends the session a password login made, so runs do not pile sessions up
 * on the account (tokens and the socket have none of their own). */
static void conn_logout(struct server_conn *sc)
{
	struct mm_error err = MM_ERROR_INIT;

	if (!sc->client || !sc->logged_in || sc->run->dry_run)
		return;
	if (mm_logout(sc->client, &err) < 0)
		run_event(sc->run, NULL, "warning", NULL, "server '%s': cannot log out: %s", sc->sv->name,
			  err.msg);
	sc->logged_in = 0;
}

void run_close_conns(struct run *r)
{
	for (size_t i = 0; r->conns && i < r->plan->nservers; i++) {
		if (!r->conns[i])
			continue;
		conn_logout(r->conns[i]);
		http_client_free(r->conns[i]->client);
		free(r->conns[i]);
	}
	free(r->conns);
	r->conns = NULL;
}

void run_release(struct run *r)
{
	run_close_conns(r);
	run_term_clear(r->term, r->out);
	run_term_free(r->term);
	r->term = NULL;
}

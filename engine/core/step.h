/*
 * step: what a step type is, and what the engine hands a step while it runs.
 *
 * A step type is data plus a small vtable (nginx's ngx_command_t, git's
 * commands[]): a name, the table of keys it accepts, the outputs it
 * produces, and hooks. Generic code in plan.c rejects unknown, missing and
 * ill-typed keys from `params`; `check` only judges meaning.
 *
 *   steps/steps.c: step_types[] = { &step_auth, &step_export, ... }   (one line per type)
 *   sched.c: type->run(ctx, err)   → 0 done, <0 failed (MM_EINTR: stopped safely)
 *
 * While running, a step:
 *   - reads its resolved parameters with param_str/param_int/param_bool/param_path,
 *   - finds its previous progress in ctx->ckpt (NULL on a fresh start),
 *   - saves resume data the moment it has any with ckpt_save(ctx, json),
 *   - writes its results into ctx->outputs (an object owned by the engine),
 *   - polls step_should_stop(ctx) at safe points and returns MM_EINTR.
 */
#ifndef MM_STEP_H
#define MM_STEP_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"

struct run;
struct plan;
struct plan_step;
struct http_client;

enum param_kind {
	P_STRING,
	P_BOOL,
	P_INT,
	P_DURATION, /* "90s", "12h", "1h30m" or seconds; resolved to seconds */
	P_SIZE,     /* "64MiB", "5MB" or bytes; resolved to bytes */
	P_RATE,     /* "50MB/s", "50MiB/s" or bytes per second; resolved to bytes/s */
	P_PATH,     /* relative paths resolve against the plan file's directory */
	P_STRLIST,  /* a sequence of strings */
	P_STEPREF,  /* the id of an earlier step; resolves to its output `ref_output` */
};

struct param_spec {
	const char *name;
	enum param_kind kind;
	int required;
	const char *def; /* default as written in a plan, or NULL */
	const char *doc;
	/* The value may carry a credential (a presigned URL): state, journal and
	 * fingerprint only ever see its SHA-256. */
	int secret;
	const char *ref_output; /* P_STEPREF: which output of the named step the value stands for */
	/* How, not what (timeouts, chunk sizes, retries): left out of the
	 * fingerprint, so raising a timeout resumes the wait instead of
	 * starting a second job. */
	int tuning;
	/* P_PATH: an artefact mmigrate writes; a relative path resolves against the
	 * state directory, and validate refuses one inside the plan's git work tree
	 * that git does not ignore. */
	int artefact;
	/* When the named parameter is set, this one is left out of the fingerprint: a
	 * download with `sha256:` is identified by its bytes, not by its (new) link. */
	const char *identified_by;
};

/*
 * The keys every transfer step (download, upload) takes for its floor and
 * its cap, stated once: tuning keys, left out of the fingerprint.
 */
/* clang-format off */
#define STEP_TRANSFER_PARAMS \
	{ .name = "min_speed", .kind = P_SIZE, .tuning = 1, \
	  .doc = "bytes per second below which an attempt counts as stalled (default: defaults.min_speed, 1KiB)" }, \
	{ .name = "min_speed_window", .kind = P_DURATION, .tuning = 1, \
	  .doc = "an attempt below min_speed this long is cut (default 30s)" }, \
	{ .name = "transfer_deadline", .kind = P_DURATION, .tuning = 1, \
	  .doc = "stalled time, attempts added up, after which the step fails (default 90s)" }, \
	{ .name = "rate_limit", .kind = P_RATE, .tuning = 1, \
	  .doc = "bandwidth cap, e.g. 50MB/s or 50MiB/s (default: none)" }
/* clang-format on */

enum step_server_use { SERVER_NONE, SERVER_OPTIONAL, SERVER_REQUIRED };

struct step_ctx {
	struct run *run;
	struct plan_step *step;
	const cJSON *ckpt; /* resume data of an earlier run with the same fingerprint, or NULL */
	cJSON *outputs;    /* the step fills it; owned by the engine */
	int dry_run;       /* describe: only GET requests; offline: none at all */
	int offline;
	cJSON *retired; /* checkpoints replaced during this step, freed when it ends */
};

struct step_type {
	const char *name;
	const char *summary;
	enum step_server_use server;
	const struct param_spec *params; /* terminated by { NULL } */
	const char *const *outputs;      /* names other steps may reference; NULL-terminated */
	/* The outputs that identify what the step produced (a file's size and sha256,
	 * a job's id), NULL-terminated; a consumer's fingerprint includes them as they
	 * were recorded, so it re-runs exactly when what it uses changed. NULL: the
	 * referenced value itself is the identity. */
	const char *const *identity;
	/* Meaning checks on the plan as written; adds "message" strings through diag. */
	int (*check)(const struct plan *, const struct plan_step *,
		     void (*diag)(void *dctx, const char *key, const char *fmt, ...), void *dctx);
	/* Dry run: appends what apply would do now to out. Only GET requests, none offline. */
	int (*describe)(struct step_ctx *, struct buf *out, struct mm_error *);
	int (*run)(struct step_ctx *, struct mm_error *);
};

/* In a NULL-terminated registry (steps/steps.h): the type called name, or NULL. */
const struct step_type *step_type_lookup(const struct step_type *const *types, const char *name);
const struct param_spec *step_param_find(const struct step_type *, const char *key);
int step_type_has_output(const struct step_type *, const char *key);

/*
 * Resolved parameters. A key the plan leaves out has the default stated once,
 * in the type's param_spec table; one without a default is NULL / 0 / false.
 * param_path: absolute, caller frees; relative paths resolve against the plan's
 * directory, or the state directory for an `artefact` parameter.
 */
const char *param_str(const struct step_ctx *, const char *name);
int64_t param_int(const struct step_ctx *, const char *name);
int param_bool(const struct step_ctx *, const char *name);
char *param_path(const struct step_ctx *, const char *name);
const cJSON *param_json(const struct step_ctx *, const char *name);

/* Outputs of the earlier step of type `type` that parameter `param` refers to
 * (archive: ${steps.dl.path} → dl's outputs), or NULL. Owned by the state. */
const cJSON *step_linked_outputs(const struct step_ctx *, const char *param, const char *type);
/* The id of that earlier step, or NULL. Owned by the plan. */
const char *step_linked_step(const struct step_ctx *, const char *param, const char *type);
/* That step's whole state record (status, finished_at, outputs ...), or NULL. */
const cJSON *step_linked_record(const struct step_ctx *, const char *param, const char *type);

/*
 * Checkpoint access. Reads copy (ckpt_strdup: caller frees), so no later save
 * can invalidate what a step holds; ckpt_str's borrowed pointer stays valid
 * until the step returns too (replaced checkpoints are retired, not freed),
 * but a copy is the rule for anything passed on.
 *
 * ckpt_save records resume data now (state.json committed before return) and
 * takes ownership of ckpt. ckpt_put sets one key on a copy of the current
 * checkpoint and saves it (takes ownership of val); ckpt_drop removes keys
 * (NULL-terminated list) the same way.
 */
int ckpt_save(struct step_ctx *, cJSON *ckpt, struct mm_error *);
int ckpt_put(struct step_ctx *, const char *key, cJSON *val, struct mm_error *);
int ckpt_drop(struct step_ctx *, const char *const *keys, struct mm_error *);
const char *ckpt_str(const struct step_ctx *, const char *key);
char *ckpt_strdup(const struct step_ctx *, const char *key);
int64_t ckpt_int(const struct step_ctx *, const char *key, int64_t def);
/* A copy of checkpoint item key, or NULL; caller frees with cJSON_Delete. */
cJSON *ckpt_copy(const struct step_ctx *, const char *key);

/*
 * What the user should do when this step fails, shown instead of the generic
 * "resume with: mmigrate apply" (only when resuming cannot help):
 * REMEDY_RESET: `mmigrate reset PLAN <step>` then apply (step: the one that must start over);
 * REMEDY_FIX: the message says what to fix; apply after that.
 */
enum step_remedy { REMEDY_APPLY, REMEDY_RESET, REMEDY_FIX };
void step_set_remedy(struct step_ctx *, enum step_remedy, const char *step);

/* The authenticated client for the step's server (logs in on first use). Owned by the run. */
struct http_client *step_client(struct step_ctx *, struct mm_error *);
/* Puts the step's transfer floor (min_speed, min_speed_window, transfer_deadline:
 * its tuning keys, else the plan's defaults) on c; step_client does it for its own. */
void step_transfer_floor(const struct step_ctx *ctx, struct http_client *c);
/* Who the step's server connection is logged in as (valid after step_client). */
struct mm_user;
const struct mm_user *step_server_user(const struct step_ctx *);
const char *step_server_version(const struct step_ctx *);
/* Dry runs: 1 when the server can be queried with GET only (token or socket, not a login). */
int step_server_readonly_ok(const struct step_ctx *);
/* The step's server name, or NULL. */
const char *step_server_name(const struct step_ctx *);
const char *step_id(const struct step_ctx *);
/* The OS seam (sys.h) every crash-relevant file call of a step goes through. */
struct sys_ops;
const struct sys_ops *step_sys(const struct step_ctx *);
/* Where artefacts go by default: the state directory. */
const char *step_state_dir(const struct step_ctx *);
int step_should_stop(const struct step_ctx *);
/* Progress for the user (suppressed by --quiet, one JSON event with --output json). */
void step_log(const struct step_ctx *, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void step_warn(const struct step_ctx *, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Records an event of the step in the journal (journal.jsonl), e.g. a healed
 * byte range; takes ownership of details (may be NULL). 0, or <0 when the
 * journal cannot be written (the step goes on: the journal is a record). */
int step_journal(const struct step_ctx *, const char *event, cJSON *details);
/*
 * A completed integrity check in this plan for a file of this size: a done
 * download step whose streaming zip check passed (crc_ok: true) or a done
 * verify step with crc_ok: true and no errors, matched by the SHA-256 it
 * recorded (sha256 not NULL) or by the file's identity (file_id not NULL,
 * see file_identity: the same file, not rewritten since it was checked).
 * Returns the id of that step, or NULL; *sha_out (when not NULL) then points
 * to its recorded digest, owned by the state.
 */
const char *step_find_integrity_proof(const struct step_ctx *, int64_t size, const char *sha256,
				      const char *file_id, const char **sha_out);
/* Sleeps up to ms, waking early when asked to stop; returns MM_EINTR then. */
int step_sleep(const struct step_ctx *, int64_t ms);

#endif

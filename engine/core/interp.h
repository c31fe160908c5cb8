/*
 * interp: ${env:NAME}, ${file:PATH} and ${steps.ID.KEY} in plan strings.
 *
 *   interp_scan(s, fn, ctx, err)      syntax check; fn sees every reference (validate)
 *   interp_expand(s, &env, &out, err) the value (caller frees out with interp_free_secret
 *                                     when it may hold a secret: it wipes before freeing)
 *
 * `$${` stands for a literal `${`. ${file:PATH} drops one trailing newline;
 * a relative PATH resolves against the plan file's directory.
 * Messages name the reference, never the value it expanded to.
 */
#ifndef MM_INTERP_H
#define MM_INTERP_H

#include <cjson/cJSON.h>

#include "error.h"

enum interp_source { INTERP_ENV, INTERP_FILE, INTERP_STEP };

struct interp_env {
	const char *plan_dir;
	/* An earlier step's output, or NULL (then err explains, e.g. "step 'x' has not run"). */
	const cJSON *(*step_output)(void *ctx, const char *step, const char *key, struct mm_error *err);
	void *ctx;
};

/* arg is NAME, PATH, or "ID.KEY" split into step/key for INTERP_STEP. */
typedef void (*interp_ref_fn)(void *ctx, enum interp_source src, const char *arg, const char *key);

int interp_scan(const char *s, interp_ref_fn fn, void *ctx, struct mm_error *err);
int interp_has_refs(const char *s);
int interp_expand(const char *s, const struct interp_env *env, char **out, struct mm_error *err);
/* Overwrites then frees a string that held a secret. */
void interp_free_secret(char *s);

#endif

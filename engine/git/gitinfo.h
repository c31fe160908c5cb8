/*
 * gitinfo: where a plan came from, read with libgit2 (git's "describe what
 * you are running" for mmigrate): the commit, branch, path and blob of the
 * plan file, whether it differs from what is committed, and the plan as it
 * was at any revision, read straight from the object database.
 *
 *   struct git_provenance prov;
 *   struct mm_error err = MM_ERROR_INIT;
 *
 *   apply / plan, from the work tree:
 *     gitinfo_provenance(plan_path, &prov, &err)      → 0 (also outside a repo: prov.in_repo == 0)
 *     if (prov.dirty && !allow_dirty) refuse, naming the file
 *     cJSON *j = gitinfo_to_json(&prov);              caller frees with cJSON_Delete
 *
 *   apply --rev REV / plan --rev REV:
 *     char *text; size_t len;
 *     gitinfo_read_at_rev(plan_path, rev, &text, &len, &prov, &err)
 *                                                     → 0, MM_ENOTFOUND, MM_EINVAL; caller frees text
 *     plan_load(plan_path, text, len, ...)
 *
 *   status (drift), per step that recorded a provenance:
 *     gitinfo_provenance(plan_path, &cur, &err)       the current file, for cur.workdir
 *     gitinfo_from_json(step_prov_json, &then)        what the step ran under
 *     gitinfo_read_blob_at_commit(cur.workdir, then.commit, then.path_in_repo, &old, &n, &err)
 *                                                     → 0 or MM_ENOTFOUND; caller frees old
 *     ... parse old, compare the step's map with the current one ...
 *
 *   log / status, one line for humans:
 *     struct buf b = BUF_INIT; gitinfo_summary(&prov, &b); ... buf_release(&b);
 *
 * Every function initialises libgit2 itself (git_libgit2_init is refcounted)
 * and shuts it down before returning, so callers need no global setup and no
 * libgit2 object outlives a call. Nothing here writes to the repository, the
 * index or the work tree.
 *
 * Paths. The plan path may be relative to the working directory and may go
 * through symlinks. gitinfo_provenance resolves it with realpath, so a plan
 * reached through a symlink is described by its target (path and blob are
 * those of the bytes actually run). gitinfo_read_at_rev does not need the
 * file to exist: a plan that was moved or deleted since REV is read by its
 * old path; the repository is found from the nearest existing ancestor
 * directory, and a symlink committed at REV is followed inside REV's tree.
 *
 * Dirty. "dirty" means the bytes that will run are not exactly the bytes
 * recorded by the commit: the plan is modified in the work tree, staged but
 * not committed, untracked, or ignored (an ignored plan is not in the commit
 * either, so the commit id alone cannot reproduce the run). Only the plan
 * file counts; other changes in the repository do not make a plan dirty.
 * The check is git_status_file, which applies the repository's own
 * core.autocrlf and .gitattributes rules exactly as `git status` does. In a
 * repository with no commits every plan is dirty.
 *
 * Discovery stops at filesystem boundaries and ignores GIT_DIR and friends,
 * like a plain `git -C DIR`. A repository owned by another user is refused
 * by libgit2 unless listed in safe.directory; that is reported as an error
 * (MM_ERR), not as "outside a repository".
 */
#ifndef MM_GITINFO_H
#define MM_GITINFO_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "error.h"

struct git_provenance {
	int in_repo;             /* 0: plan is not inside a work tree; every field below is empty */
	int unborn;              /* the repository has no commits yet */
	int detached;            /* HEAD is detached; with --rev: REV is not a branch (a tag, an id) */
	int tracked;             /* the plan file is in the commit's tree */
	int dirty;               /* the plan differs from the commit (modified, staged, untracked, ignored) */
	char commit[41];         /* commit id, "" when unborn */
	char branch[256];        /* short branch name ("main", "origin/main"), "" when detached */
	char path_in_repo[4096]; /* plan path relative to the work tree root, '/' separated */
	char blob[41];           /* blob id of the plan in the commit's tree, "" if untracked */
	char workdir[4096];      /* work tree root, absolute, no trailing '/' (not in the JSON) */
	char rev[256];           /* the REV given to gitinfo_read_at_rev, "" otherwise */
};

/*
 * Describes the plan file as it is in its work tree. Returns 0 when the plan
 * is outside any repository (out->in_repo = 0); MM_ENOTFOUND when the plan
 * file does not exist; MM_ERR when the repository cannot be read.
 */
int gitinfo_provenance(const char *plan_path, struct git_provenance *out, struct mm_error *err);

/*
 * Reads PLAN as it is at REV (tag, branch, commit id, abbreviated id,
 * "HEAD~1", anything `git rev-parse` takes that peels to a commit) from the
 * repository containing plan_path, without touching the work tree. On
 * success *content (NUL-terminated, caller frees with free) and *len are
 * the blob's raw bytes, and out describes that revision: commit is the
 * peeled commit id, blob the file's blob id at REV, tracked = 1, dirty = 0,
 * branch set when REV names a local or remote-tracking branch (detached
 * otherwise), rev = REV.
 * Errors: MM_EINVAL when the plan is not in a repository or REV is malformed
 * or ambiguous; MM_ENOTFOUND when REV or the file at REV does not exist.
 */
int gitinfo_read_at_rev(const char *plan_path, const char *rev, char **content, size_t *len,
			struct git_provenance *out, struct mm_error *err);

/*
 * Reads the file at path_in_repo as of commit (a full or abbreviated id, or
 * any revision) in the repository whose work tree is workdir: what a step's
 * definition was at the revision it ran under. MM_ENOTFOUND when the commit
 * or the file is missing, MM_EINVAL for a path that is absolute or leaves
 * the repository. On success the caller frees *content (NUL-terminated).
 */
int gitinfo_read_blob_at_commit(const char *workdir, const char *commit, const char *path_in_repo,
				char **content, size_t *len, struct mm_error *err);

/*
 * The provenance as a JSON object for state.json and the journal's
 * run-start event. Outside a repository: {"in_repo": false}. Otherwise
 *   {"in_repo": true, "commit": "<40 hex>"|null, "branch": "main"|null,
 *    "detached": bool, "unborn": bool, "path": "plans/acme.yaml",
 *    "blob": "<40 hex>"|null, "dirty": bool[, "rev": "v1.2"]}
 * with null for an absent id or branch and "rev" only for --rev runs.
 * Returns NULL only when out of memory. Caller frees with cJSON_Delete.
 */
cJSON *gitinfo_to_json(const struct git_provenance *);

/*
 * The reverse, for reading back what a step or run recorded. Unknown keys
 * are ignored; a missing or non-object j gives in_repo = 0. Returns 0, or
 * MM_EINVAL when a field has the wrong type or does not fit.
 */
int gitinfo_from_json(const cJSON *j, struct git_provenance *out, struct mm_error *err);

/*
 * One line for humans, appended to b:
 *   "plans/acme.yaml at 1a2b3c4d5e6f (main)"
 *   "plans/acme.yaml at 1a2b3c4d5e6f (detached), uncommitted changes"
 *   "plans/acme.yaml at 1a2b3c4d5e6f (rev 'v1.2')"
 *   "plans/acme.yaml, no commits yet (main)"
 *   "not in a git repository"
 */
void gitinfo_summary(const struct git_provenance *, struct buf *b);

/*
 * 1 when abs_path is inside the work tree rooted at workdir and git would see
 * it (not ignored, or tracked although ignored); 0 when ignored or outside;
 * MM_ERR when the repository cannot be read.
 */
int gitinfo_path_is_tracked_or_unignored(const char *workdir, const char *abs_path, struct mm_error *err);

#endif

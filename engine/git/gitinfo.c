#include "gitinfo.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>

#include "util.h"

/* Symlinks committed in a tree are followed this many times, like ELOOP. */
#define MAX_LINK_HOPS 8

static const char *git_msg(void)
{
	const git_error *e = git_error_last();

	return e && e->message ? e->message : "unknown error";
}

static int gi_init(struct mm_error *err)
{
	if (git_libgit2_init() < 0)
		return err_set(err, MM_ERR, "cannot initialise libgit2: %s", git_msg());
	return 0;
}

static int copy_field(char *dst, size_t cap, const char *src, const char *what, struct mm_error *err)
{
	size_t n = strlen(src);

	if (n >= cap)
		return err_set(err, MM_EINVAL, "%s '%.64s...' is too long", what, src);
	memcpy(dst, src, n + 1);
	return 0;
}

/* ---- paths ---------------------------------------------------------------- */

static int is_root(const struct buf *b)
{
	return b->len == 1 && b->data[0] == '/';
}

/* Appends one component; b holds an absolute path, a relative one, or nothing. */
static void path_push(struct buf *b, const char *comp, size_t n)
{
	if (b->len && !is_root(b))
		buf_addc(b, '/');
	buf_add(b, comp, n);
}

/* Drops the last component; -1 when there is none ("" or "/"). */
static int path_pop(struct buf *b)
{
	size_t i = b->len;

	if (!b->len || is_root(b))
		return -1;
	while (i > 0 && b->data[i - 1] != '/')
		i--;
	if (i == 0)
		b->len = 0;
	else if (i == 1)
		b->len = 1;
	else
		b->len = i - 1;
	b->data[b->len] = '\0';
	return 0;
}

/*
 * Appends rel's components to b with "." and ".." handled lexically. A ".."
 * with nothing left to drop stays at "/" for an absolute b (as the kernel
 * does) and fails for a relative one (it would leave the repository).
 */
static int path_join_lexical(struct buf *b, const char *rel)
{
	const char *p = rel;

	while (*p) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);

		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (path_pop(b) < 0 && !is_root(b))
				return -1;
		} else if (n && !(n == 1 && p[0] == '.')) {
			path_push(b, p, n);
		}
		p += n;
		if (*p)
			p++;
	}
	return 0;
}

/* The directory part of an absolute path: "/a/b" → "/a", "/a" → "/". Caller frees. */
static char *dir_of(const char *abs)
{
	const char *slash = strrchr(abs, '/');

	if (!slash || slash == abs)
		return xstrdup("/");
	return xstrndup(abs, (size_t)(slash - abs));
}

static int make_absolute(const char *path, struct buf *out, struct mm_error *err)
{
	char cwd[PATH_MAX];

	if (path[0] == '/')
		return buf_adds(out, path) < 0 ? err_set(err, MM_ERR, "path '%s' is too long", path) : 0;
	if (!getcwd(cwd, sizeof(cwd)))
		return err_set(err, MM_ERR, "cannot get the current directory: %s", strerror(errno));
	buf_adds(out, cwd);
	path_push(out, path, strlen(path));
	return 0;
}

/*
 * realpath for a path whose tail may not exist (a plan moved or deleted
 * since the revision asked for): the longest existing prefix is resolved,
 * symlinks and all, and the rest appended lexically. *existing gets the
 * resolved prefix, the place to start looking for a repository (caller frees).
 */
static int resolve_lenient(const char *abs, struct buf *out, char **existing, struct mm_error *err)
{
	char *head = xstrdup(abs), *real;
	size_t cut = strlen(head);
	int rc = 0;

	while (!(real = realpath(cut ? head : "/", NULL))) {
		if (errno != ENOENT && errno != ENOTDIR) {
			rc = err_set(err, MM_ERR, "cannot resolve '%s': %s", head, strerror(errno));
			goto out;
		}
		while (cut > 0 && head[cut - 1] != '/')
			cut--;
		if (cut > 0)
			cut--;
		head[cut] = '\0';
	}
	buf_adds(out, real);
	path_join_lexical(out, abs + cut);
	*existing = real;
out:
	free(head);
	return rc;
}

/*
 * The path below root, or NULL when path is not inside the work tree (or is
 * inside its .git directory, which no commit can hold).
 */
static const char *rel_to_root(const char *path, const char *root)
{
	size_t n = strlen(root);
	const char *rel;

	if (n == 1 && root[0] == '/') {
		rel = path + 1;
	} else {
		if (strncmp(path, root, n) || path[n] != '/')
			return NULL;
		rel = path + n + 1;
	}
	if (!*rel || !strcmp(rel, ".git") || !strncmp(rel, ".git/", 5))
		return NULL;
	return rel;
}

static int is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- repository ----------------------------------------------------------- */

/*
 * Opens the repository whose work tree contains dir: 1 and *workdir (its
 * realpath) when found, 0 when dir is in no work tree (no repository, or a
 * bare one), < 0 when a repository is there but cannot be opened.
 */
static int open_repo_at(const char *dir, git_repository **repo, struct buf *workdir, struct mm_error *err)
{
	const char *wd;
	char *real;
	int rc;

	*repo = NULL;
	rc = git_repository_open_ext(repo, dir, 0, NULL);
	if (rc == GIT_ENOTFOUND) {
		git_error_clear();
		return 0;
	}
	if (rc < 0)
		return err_set(err, MM_ERR, "cannot open the git repository containing '%s': %s%s", dir,
			       git_msg(),
			       rc == GIT_EOWNER ? " (trust it with: git config --global --add safe.directory DIR)"
						: "");
	wd = git_repository_workdir(*repo);
	if (!wd)
		goto not_here;
	/* libgit2 keeps the path it was given; compare like with like. */
	real = realpath(wd, NULL);
	if (!real) {
		rc = err_set(err, MM_ERR, "cannot resolve work tree '%s': %s", wd, strerror(errno));
		git_repository_free(*repo);
		*repo = NULL;
		return rc;
	}
	buf_reset(workdir);
	buf_adds(workdir, real);
	free(real);
	return 1;
not_here:
	git_repository_free(*repo);
	*repo = NULL;
	return 0;
}

static int rev_error(int rc, const char *rev, const char *where, struct mm_error *err)
{
	switch (rc) {
	case GIT_ENOTFOUND:
		return err_set(err, MM_ENOTFOUND, "revision '%s' not found in '%s': %s", rev, where, git_msg());
	case GIT_EAMBIGUOUS:
		return err_set(err, MM_EINVAL, "revision '%s' is ambiguous in '%s': %s", rev, where, git_msg());
	case GIT_EINVALIDSPEC:
		return err_set(err, MM_EINVAL, "revision '%s' is not valid: %s", rev, git_msg());
	default:
		return err_set(err, MM_ERR, "cannot resolve revision '%s' in '%s': %s", rev, where, git_msg());
	}
}

/* Resolves rev as `git rev-parse REV^{commit}` does. Caller frees *out with git_commit_free. */
static int peel_rev(git_repository *repo, const char *rev, const char *where, git_commit **out,
		    struct mm_error *err)
{
	git_object *obj = NULL;
	int rc;

	*out = NULL;
	if (!rev || !*rev)
		return err_set(err, MM_EINVAL, "empty revision");
	rc = git_revparse_single(&obj, repo, rev);
	if (rc < 0)
		return rev_error(rc, rev, where, err);
	rc = git_object_peel((git_object **)out, obj, GIT_OBJECT_COMMIT);
	git_object_free(obj);
	if (rc < 0)
		return err_set(err, MM_EINVAL, "revision '%s' does not name a commit: %s", rev, git_msg());
	return 0;
}

/* The branch REV names, if it names one (through HEAD or another symbolic ref too). */
static void rev_branch(git_repository *repo, const char *rev, struct git_provenance *out)
{
	git_reference *ref = NULL, *resolved = NULL;

	if (git_reference_dwim(&ref, repo, rev) < 0)
		goto out;
	if (git_reference_resolve(&resolved, ref) < 0)
		goto out;
	if (git_reference_is_branch(resolved) || git_reference_is_remote(resolved))
		copy_field(out->branch, sizeof(out->branch), git_reference_shorthand(resolved), "branch", NULL);
out:
	git_error_clear();
	git_reference_free(resolved);
	git_reference_free(ref);
}

/* An unborn HEAD still names the branch the first commit will create. */
static void unborn_branch(git_repository *repo, struct git_provenance *out)
{
	git_reference *head = NULL;
	const char *target;

	if (git_reference_lookup(&head, repo, "HEAD") == 0 &&
	    git_reference_type(head) == GIT_REFERENCE_SYMBOLIC) {
		target = git_reference_symbolic_target(head);
		if (!strncmp(target, "refs/heads/", 11))
			copy_field(out->branch, sizeof(out->branch), target + 11, "branch", NULL);
	}
	git_error_clear();
	git_reference_free(head);
}

/* Fills unborn, detached, branch and commit from HEAD; *commit is NULL when unborn. */
static int read_head(git_repository *repo, const char *workdir, struct git_provenance *out,
		     git_commit **commit, struct mm_error *err)
{
	git_reference *head = NULL;
	int rc;

	*commit = NULL;
	rc = git_repository_head(&head, repo);
	if (rc == GIT_EUNBORNBRANCH || rc == GIT_ENOTFOUND) {
		git_error_clear();
		out->unborn = 1;
		unborn_branch(repo, out);
		return 0;
	}
	if (rc < 0)
		return err_set(err, MM_ERR, "cannot read HEAD in '%s': %s", workdir, git_msg());
	out->detached = git_repository_head_detached(repo) == 1;
	if (!out->detached && git_reference_is_branch(head))
		copy_field(out->branch, sizeof(out->branch), git_reference_shorthand(head), "branch", NULL);
	rc = git_reference_peel((git_object **)commit, head, GIT_OBJECT_COMMIT);
	git_reference_free(head);
	if (rc < 0)
		return err_set(err, MM_ERR, "cannot read the commit at HEAD in '%s': %s", workdir, git_msg());
	git_oid_tostr(out->commit, sizeof(out->commit), git_commit_id(*commit));
	return 0;
}

/* tracked and blob: the plan's entry in the commit's tree, as recorded (no link following). */
static int read_tracked(git_commit *commit, const char *rel, struct git_provenance *out, struct mm_error *err)
{
	git_tree *tree = NULL;
	git_tree_entry *e = NULL;
	int rc;

	rc = git_commit_tree(&tree, commit);
	if (rc < 0)
		return err_set(err, MM_ERR, "cannot read the tree of commit %s: %s", out->commit, git_msg());
	rc = git_tree_entry_bypath(&e, tree, rel);
	if (rc == GIT_ENOTFOUND) {
		git_error_clear();
		rc = 0;
		goto out;
	}
	if (rc < 0) {
		rc = err_set(err, MM_ERR, "cannot look up '%s' in commit %s: %s", rel, out->commit, git_msg());
		goto out;
	}
	if (git_tree_entry_type(e) == GIT_OBJECT_BLOB) {
		out->tracked = 1;
		git_oid_tostr(out->blob, sizeof(out->blob), git_tree_entry_id(e));
	}
out:
	git_tree_entry_free(e);
	git_tree_free(tree);
	return rc;
}

static int read_dirty(git_repository *repo, const char *rel, struct git_provenance *out, struct mm_error *err)
{
	unsigned int flags = 0;
	int rc;

	if (out->unborn) {
		out->dirty = 1;
		return 0;
	}
	/*
	 * git_status_file compares HEAD, the index and the work tree with the
	 * repository's own eol/attribute filters and re-hashes racily clean
	 * entries, so it agrees with `git status` where a size/mtime check would not.
	 */
	rc = git_status_file(&flags, repo, rel);
	if (rc == GIT_ENOTFOUND) {
		git_error_clear();
		out->dirty = 1;
		return 0;
	}
	if (rc < 0)
		return err_set(err, MM_ERR, "cannot get the git status of '%s': %s", rel, git_msg());
	out->dirty = flags != GIT_STATUS_CURRENT;
	return 0;
}

/* ---- blobs and trees ------------------------------------------------------ */

static int blob_content(git_repository *repo, const git_oid *id, char **content, size_t *len,
			struct mm_error *err)
{
	git_blob *blob = NULL;
	git_object_size_t n;

	if (git_blob_lookup(&blob, repo, id) < 0)
		return err_set(err, MM_ERR, "cannot read blob %s: %s", git_oid_tostr_s(id), git_msg());
	n = git_blob_rawsize(blob);
	if (n >= SIZE_MAX) {
		git_blob_free(blob);
		return err_set(err, MM_ERR, "blob %s is too large", git_oid_tostr_s(id));
	}
	*content = xmalloc((size_t)n + 1);
	memcpy(*content, git_blob_rawcontent(blob), (size_t)n);
	(*content)[n] = '\0';
	*len = (size_t)n;
	git_blob_free(blob);
	return 0;
}

/* Replaces path (a symlink's own path) with where the link points, inside the tree. */
static int follow_link(git_repository *repo, const git_tree_entry *e, struct buf *path, struct mm_error *err)
{
	char *target = NULL, *link = xstrdup(buf_cstr(path));
	size_t n;
	int rc;

	rc = blob_content(repo, git_tree_entry_id(e), &target, &n, err);
	if (rc < 0)
		goto out;
	path_pop(path);
	if (target[0] == '/' || strlen(target) != n || path_join_lexical(path, target) < 0 || !path->len) {
		rc = err_set(err, MM_EINVAL, "'%s' is a symbolic link to '%s', outside the repository", link,
			     target);
		goto out;
	}
out:
	free(target);
	free(link);
	return rc;
}

/*
 * The blob at path in commit's tree, following symlinks committed in that
 * tree. *final gets the path of the blob itself.
 */
static int lookup_file(git_repository *repo, git_commit *commit, const char *path, const char *rev,
		       struct buf *final, git_oid *id, struct mm_error *err)
{
	git_tree *tree = NULL;
	git_tree_entry *e = NULL;
	int hops, rc;

	rc = git_commit_tree(&tree, commit);
	if (rc < 0)
		return err_set(err, MM_ERR, "cannot read the tree at revision '%s': %s", rev, git_msg());
	buf_reset(final);
	buf_adds(final, path);
	for (hops = 0;; hops++) {
		git_tree_entry_free(e);
		e = NULL;
		rc = git_tree_entry_bypath(&e, tree, buf_cstr(final));
		if (rc == GIT_ENOTFOUND) {
			rc = err_set(err, MM_ENOTFOUND, "'%s' does not exist at revision '%s'",
				     buf_cstr(final), rev);
			goto out;
		}
		if (rc < 0) {
			rc = err_set(err, MM_ERR, "cannot look up '%s' at revision '%s': %s", buf_cstr(final),
				     rev, git_msg());
			goto out;
		}
		switch (git_tree_entry_filemode(e)) {
		case GIT_FILEMODE_BLOB:
		case GIT_FILEMODE_BLOB_EXECUTABLE:
			git_oid_cpy(id, git_tree_entry_id(e));
			rc = 0;
			goto out;
		case GIT_FILEMODE_LINK:
			if (hops == MAX_LINK_HOPS) {
				rc = err_set(err, MM_EINVAL,
					     "too many symbolic links resolving '%s' at revision '%s'", path,
					     rev);
				goto out;
			}
			rc = follow_link(repo, e, final, err);
			if (rc < 0)
				goto out;
			break;
		case GIT_FILEMODE_COMMIT:
			rc = err_set(err, MM_EINVAL, "'%s' is a submodule at revision '%s'", buf_cstr(final),
				     rev);
			goto out;
		default:
			rc = err_set(err, MM_EINVAL, "'%s' is a directory at revision '%s'", buf_cstr(final),
				     rev);
			goto out;
		}
	}
out:
	git_error_clear();
	git_tree_entry_free(e);
	git_tree_free(tree);
	return rc;
}

/* ---- public --------------------------------------------------------------- */

static int describe_work_tree(const char *real, struct git_provenance *out, struct mm_error *err)
{
	struct buf wd = BUF_INIT;
	git_repository *repo = NULL;
	git_commit *head = NULL;
	char *dir = dir_of(real);
	const char *rel;
	int rc;

	rc = open_repo_at(dir, &repo, &wd, err);
	if (rc <= 0)
		goto out;
	rel = rel_to_root(real, buf_cstr(&wd));
	if (!rel) {
		rc = 0;
		goto out;
	}
	out->in_repo = 1;
	if ((rc = copy_field(out->workdir, sizeof(out->workdir), buf_cstr(&wd), "work tree", err)) < 0 ||
	    (rc = copy_field(out->path_in_repo, sizeof(out->path_in_repo), rel, "path", err)) < 0 ||
	    (rc = read_head(repo, out->workdir, out, &head, err)) < 0)
		goto out;
	if (head && (rc = read_tracked(head, rel, out, err)) < 0)
		goto out;
	rc = read_dirty(repo, rel, out, err);
out:
	git_commit_free(head);
	git_repository_free(repo);
	buf_release(&wd);
	free(dir);
	return rc;
}

int gitinfo_provenance(const char *plan_path, struct git_provenance *out, struct mm_error *err)
{
	char *real;
	int rc;

	memset(out, 0, sizeof(*out));
	real = realpath(plan_path, NULL);
	if (!real) {
		int e = errno;

		return err_set(err, e == ENOENT ? MM_ENOTFOUND : MM_ERR, "cannot open plan '%s': %s",
			       plan_path, strerror(e));
	}
	if (is_dir(real)) {
		free(real);
		return err_set(err, MM_EINVAL, "plan '%s' is a directory", plan_path);
	}
	rc = gi_init(err);
	if (rc == 0) {
		rc = describe_work_tree(real, out, err);
		git_libgit2_shutdown();
	}
	free(real);
	if (rc < 0 || !out->in_repo)
		memset(out, 0, sizeof(*out));
	return rc < 0 ? rc : 0;
}

/*
 * Finds the repository for plan_path without needing the file to exist.
 * The directory is resolved and the file name kept, so a symlink committed
 * at REV is followed in REV's tree rather than as it is checked out now; a
 * plan reached through a symlink from outside any work tree falls back to
 * its target. *target: absolute path of the plan inside the work tree.
 */
static int locate_plan(const char *plan_path, git_repository **repo, struct buf *wd, struct buf *target,
		       struct mm_error *err)
{
	struct buf abs = BUF_INIT;
	char *existing = NULL, *dir = NULL, *real = NULL, *start;
	const char *base;
	int rc;

	if (!*plan_path) {
		rc = err_set(err, MM_EINVAL, "empty plan path");
		goto out;
	}
	if ((rc = make_absolute(plan_path, &abs, err)) < 0)
		goto out;
	base = strrchr(buf_cstr(&abs), '/') + 1;
	if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) {
		rc = err_set(err, MM_EINVAL, "plan '%s' does not name a file", plan_path);
		goto out;
	}
	dir = dir_of(buf_cstr(&abs));
	if ((rc = resolve_lenient(dir, target, &existing, err)) < 0)
		goto out;
	path_push(target, base, strlen(base));
	start = is_dir(existing) ? xstrdup(existing) : dir_of(existing);
	rc = open_repo_at(start, repo, wd, err);
	free(start);
	if (rc != 0)
		goto out;
	real = realpath(buf_cstr(&abs), NULL);
	if (real && strcmp(real, buf_cstr(target))) {
		buf_reset(target);
		buf_adds(target, real);
		start = dir_of(real);
		rc = open_repo_at(start, repo, wd, err);
		free(start);
	}
out:
	free(real);
	free(existing);
	free(dir);
	buf_release(&abs);
	return rc;
}

static int fill_rev(git_repository *repo, git_commit *commit, const char *rev, const char *final,
		    const git_oid *blob, struct git_provenance *out, struct mm_error *err)
{
	int rc;

	out->in_repo = 1;
	out->tracked = 1;
	git_oid_tostr(out->commit, sizeof(out->commit), git_commit_id(commit));
	git_oid_tostr(out->blob, sizeof(out->blob), blob);
	if ((rc = copy_field(out->path_in_repo, sizeof(out->path_in_repo), final, "path", err)) < 0 ||
	    (rc = copy_field(out->rev, sizeof(out->rev), rev, "revision", err)) < 0)
		return rc;
	rev_branch(repo, rev, out);
	out->detached = !out->branch[0];
	return 0;
}

static int read_at_rev(const char *plan_path, const char *rev, char **content, size_t *len,
		       struct git_provenance *out, struct mm_error *err)
{
	struct buf wd = BUF_INIT, target = BUF_INIT, final = BUF_INIT;
	git_repository *repo = NULL;
	git_commit *commit = NULL;
	const char *rel = NULL;
	git_oid blob;
	int rc;

	rc = locate_plan(plan_path, &repo, &wd, &target, err);
	if (rc > 0)
		rel = rel_to_root(buf_cstr(&target), buf_cstr(&wd));
	if (rc == 0 || (rc > 0 && !rel)) {
		rc = err_set(err, MM_EINVAL,
			     "cannot read plan '%s' at revision '%s': it is not inside a git work tree",
			     plan_path, rev);
		goto out;
	}
	if (rc < 0)
		goto out;
	if ((rc = copy_field(out->workdir, sizeof(out->workdir), buf_cstr(&wd), "work tree", err)) < 0 ||
	    (rc = peel_rev(repo, rev, out->workdir, &commit, err)) < 0 ||
	    (rc = lookup_file(repo, commit, rel, rev, &final, &blob, err)) < 0 ||
	    (rc = blob_content(repo, &blob, content, len, err)) < 0 ||
	    (rc = fill_rev(repo, commit, rev, buf_cstr(&final), &blob, out, err)) < 0)
		goto out;
out:
	git_commit_free(commit);
	git_repository_free(repo);
	buf_release(&final);
	buf_release(&target);
	buf_release(&wd);
	return rc;
}

int gitinfo_read_at_rev(const char *plan_path, const char *rev, char **content, size_t *len,
			struct git_provenance *out, struct mm_error *err)
{
	int rc;

	memset(out, 0, sizeof(*out));
	*content = NULL;
	*len = 0;
	if (!rev || !*rev)
		return err_set(err, MM_EINVAL, "empty revision");
	rc = gi_init(err);
	if (rc < 0)
		return rc;
	rc = read_at_rev(plan_path, rev, content, len, out, err);
	git_libgit2_shutdown();
	if (rc < 0) {
		free(*content);
		*content = NULL;
		*len = 0;
		memset(out, 0, sizeof(*out));
	}
	return rc;
}

/* Normalises a path recorded in state: relative, inside the repository. */
static int clean_repo_path(const char *path, struct buf *out, struct mm_error *err)
{
	if (!path || !*path || path[0] == '/' || path_join_lexical(out, path) < 0 || !out->len)
		return err_set(err, MM_EINVAL, "path '%s' is not inside the repository", path ? path : "");
	return 0;
}

static int read_blob_at_commit(const char *workdir, const char *commit, const char *path, char **content,
			       size_t *len, struct mm_error *err)
{
	struct buf final = BUF_INIT;
	git_repository *repo = NULL;
	git_commit *c = NULL;
	git_oid blob;
	int rc;

	rc = git_repository_open_ext(&repo, workdir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL);
	if (rc < 0) {
		rc = err_set(err, rc == GIT_ENOTFOUND ? MM_ENOTFOUND : MM_ERR,
			     "cannot open the git repository at '%s': %s", workdir, git_msg());
		goto out;
	}
	if ((rc = peel_rev(repo, commit, workdir, &c, err)) < 0 ||
	    (rc = lookup_file(repo, c, path, commit, &final, &blob, err)) < 0)
		goto out;
	rc = blob_content(repo, &blob, content, len, err);
out:
	git_commit_free(c);
	git_repository_free(repo);
	buf_release(&final);
	return rc;
}

int gitinfo_read_blob_at_commit(const char *workdir, const char *commit, const char *path_in_repo,
				char **content, size_t *len, struct mm_error *err)
{
	struct buf path = BUF_INIT;
	int rc;

	*content = NULL;
	*len = 0;
	if (!workdir || !*workdir)
		return err_set(err, MM_EINVAL, "no work tree to read '%s' from",
			       path_in_repo ? path_in_repo : "");
	if (!commit || !*commit)
		return err_set(err, MM_EINVAL, "no commit to read '%s' at", path_in_repo ? path_in_repo : "");
	rc = clean_repo_path(path_in_repo, &path, err);
	if (rc == 0 && (rc = gi_init(err)) == 0) {
		rc = read_blob_at_commit(workdir, commit, buf_cstr(&path), content, len, err);
		git_libgit2_shutdown();
	}
	buf_release(&path);
	return rc;
}

/* ---- JSON and text -------------------------------------------------------- */

static cJSON *add_str_or_null(cJSON *o, const char *key, const char *s)
{
	return *s ? cJSON_AddStringToObject(o, key, s) : cJSON_AddNullToObject(o, key);
}

cJSON *gitinfo_to_json(const struct git_provenance *p)
{
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return NULL;
	if (!cJSON_AddBoolToObject(o, "in_repo", p->in_repo))
		goto fail;
	if (!p->in_repo)
		return o;
	if (!add_str_or_null(o, "commit", p->commit) || !add_str_or_null(o, "branch", p->branch) ||
	    !cJSON_AddBoolToObject(o, "detached", p->detached) ||
	    !cJSON_AddBoolToObject(o, "unborn", p->unborn) ||
	    !cJSON_AddStringToObject(o, "path", p->path_in_repo) || !add_str_or_null(o, "blob", p->blob) ||
	    !cJSON_AddBoolToObject(o, "dirty", p->dirty))
		goto fail;
	if (p->rev[0] && !cJSON_AddStringToObject(o, "rev", p->rev))
		goto fail;
	return o;
fail:
	cJSON_Delete(o);
	return NULL;
}

static int json_bool(const cJSON *j, const char *key, int *dst, struct mm_error *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);

	*dst = 0;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsBool(v))
		return err_set(err, MM_EINVAL, "provenance field '%s' is not a boolean", key);
	*dst = cJSON_IsTrue(v);
	return 0;
}

static int json_str(const cJSON *j, const char *key, char *dst, size_t cap, struct mm_error *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);

	dst[0] = '\0';
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v))
		return err_set(err, MM_EINVAL, "provenance field '%s' is not a string", key);
	return copy_field(dst, cap, v->valuestring, key, err);
}

/* Ids read back are handed to rev-parse: accept object ids only, never a revision. */
static int json_oid(const cJSON *j, const char *key, char dst[41], struct mm_error *err)
{
	int rc = json_str(j, key, dst, 41, err);
	size_t n = strlen(dst);

	if (rc < 0)
		return rc;
	if (n && (n != 40 || strspn(dst, "0123456789abcdef") != 40))
		return err_set(err, MM_EINVAL, "provenance field '%s' is not an object id: '%s'", key, dst);
	return 0;
}

int gitinfo_from_json(const cJSON *j, struct git_provenance *out, struct mm_error *err)
{
	int rc;

	memset(out, 0, sizeof(*out));
	if (!cJSON_IsObject(j))
		return 0;
	if ((rc = json_bool(j, "in_repo", &out->in_repo, err)) < 0 || !out->in_repo)
		goto out;
	if ((rc = json_bool(j, "detached", &out->detached, err)) < 0 ||
	    (rc = json_bool(j, "unborn", &out->unborn, err)) < 0 ||
	    (rc = json_bool(j, "dirty", &out->dirty, err)) < 0 ||
	    (rc = json_oid(j, "commit", out->commit, err)) < 0 ||
	    (rc = json_oid(j, "blob", out->blob, err)) < 0 ||
	    (rc = json_str(j, "branch", out->branch, sizeof(out->branch), err)) < 0 ||
	    (rc = json_str(j, "path", out->path_in_repo, sizeof(out->path_in_repo), err)) < 0 ||
	    (rc = json_str(j, "rev", out->rev, sizeof(out->rev), err)) < 0)
		goto out;
	out->tracked = out->blob[0] != '\0';
out:
	if (rc < 0)
		memset(out, 0, sizeof(*out));
	return rc;
}

void gitinfo_summary(const struct git_provenance *p, struct buf *b)
{
	if (!p->in_repo) {
		buf_adds(b, "not in a git repository");
		return;
	}
	buf_adds(b, p->path_in_repo);
	if (p->unborn)
		buf_adds(b, ", no commits yet");
	else
		buf_addf(b, " at %.12s", p->commit);
	if (p->rev[0])
		buf_addf(b, " (rev '%s')", p->rev);
	else if (p->branch[0])
		buf_addf(b, " (%s)", p->branch);
	else if (p->detached)
		buf_adds(b, " (detached)");
	if (p->dirty && !p->unborn)
		buf_adds(b, ", uncommitted changes");
}

/*
 * validate's artefact check: an archive written inside the work tree where
 * git sees it would be committed by the next `git add -A`.
 */
int gitinfo_path_is_tracked_or_unignored(const char *workdir, const char *abs_path, struct mm_error *err)
{
	git_repository *repo = NULL;
	git_index *idx = NULL;
	size_t n = strlen(workdir);
	const char *rel;
	int ignored = 0, ret;

	if (!n || strncmp(abs_path, workdir, n) || abs_path[n] != '/')
		return 0;
	rel = abs_path + n + 1;
	git_libgit2_init();
	if (git_repository_open_ext(&repo, workdir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0) {
		ret = err_set(err, MM_ERR, "cannot open the git repository at '%s': %s", workdir, git_msg());
		goto out;
	}
	if (git_ignore_path_is_ignored(&ignored, repo, rel) < 0) {
		ret = err_set(err, MM_ERR, "cannot read git's ignore rules for '%s': %s", rel, git_msg());
		goto out;
	}
	ret = !ignored;
	/* Ignored but tracked still gets committed: the index decides. */
	if (ignored && git_repository_index(&idx, repo) == 0 && git_index_get_bypath(idx, rel, 0))
		ret = 1;
out:
	git_index_free(idx);
	git_repository_free(repo);
	git_libgit2_shutdown();
	return ret;
}

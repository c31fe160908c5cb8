/*
 * gitinfo against real repositories made with the git CLI in a temporary
 * directory; every recorded id is checked against `git rev-parse`.
 */
#define _XOPEN_SOURCE 700 /* nftw */

#include "gitinfo.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "check.h"
#include "util.h"

#define GIT "git -c init.defaultBranch=main"

/* Two versions of one step that differ in a value of the same length, so a
 * rewrite keeps size (and often mtime) and only content can tell them apart. */
static const char PLAN_V1[] = "name: acme\nsteps:\n  - id: team\n    type: team.create\n    name: eng\n";
static const char PLAN_V2[] = "name: acme\nsteps:\n  - id: team\n    type: team.create\n    name: ops\n";
static const char PLAN_V3[] = "name: acme\nsteps:\n  - id: team\n    type: team.create\n    name: release\n";

static char root[PATH_MAX]; /* realpath of the mkdtemp directory: HOME and every repo */
static char start_cwd[PATH_MAX];

static void fail_setup(const char *what)
{
	fprintf(stderr, "test setup failed: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* dir/rel into out; returns out. */
static const char *at(const char *dir, const char *rel, char out[PATH_MAX])
{
	if (snprintf(out, PATH_MAX, "%s/%s", dir, rel) >= PATH_MAX)
		fail_setup(rel);
	return out;
}

/* Runs a shell command in dir, output discarded; returns its exit status. */
static int run(const char *dir, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run(const char *dir, const char *fmt, ...)
{
	struct buf cmd = BUF_INIT;
	va_list ap;
	int rc;

	buf_addf(&cmd, "cd '%s' && (", dir);
	va_start(ap, fmt);
	buf_vaddf(&cmd, fmt, ap);
	va_end(ap);
	buf_adds(&cmd, ") >/dev/null 2>&1");
	rc = system(buf_cstr(&cmd));
	buf_release(&cmd);
	return rc != -1 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* Like run, but returns stdout with trailing whitespace dropped (caller frees). */
static char *capture(const char *dir, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *capture(const char *dir, const char *fmt, ...)
{
	struct buf cmd = BUF_INIT, out = BUF_INIT;
	char chunk[512];
	size_t n;
	va_list ap;
	FILE *p;

	buf_addf(&cmd, "cd '%s' && (", dir);
	va_start(ap, fmt);
	buf_vaddf(&cmd, fmt, ap);
	va_end(ap);
	buf_adds(&cmd, ") 2>/dev/null");
	p = popen(buf_cstr(&cmd), "r");
	if (!p)
		fail_setup("popen");
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
		buf_add(&out, chunk, n);
	pclose(p);
	buf_release(&cmd);
	buf_rtrim(&out);
	return buf_detach(&out);
}

/* `git rev-parse REV` in dir, into a fixed buffer for CHECK_STR. */
static const char *rev_parse(const char *dir, const char *rev, char out[128])
{
	char *s = capture(dir, "git rev-parse --verify -q '%s'", rev);

	snprintf(out, 128, "%s", s);
	free(s);
	return out;
}

static int git_clean(const char *dir, const char *path)
{
	char *s = capture(dir, "git status --porcelain --ignored -- '%s'", path);
	int clean = !*s;

	free(s);
	return clean;
}

static void write_file(const char *dir, const char *rel, const char *content)
{
	char path[PATH_MAX];
	FILE *f;

	at(dir, rel, path);
	f = fopen(path, "wb");
	if (!f || fputs(content, f) == EOF || fclose(f) != 0)
		fail_setup(path);
}

static char *read_file(const char *dir, const char *rel)
{
	char *s = capture(dir, "cat '%s'", rel);

	return s;
}

/* A fresh repository ROOT/name with plans/ made; path into dir. */
static void new_repo(const char *name, char dir[PATH_MAX])
{
	at(root, name, dir);
	if (mkdir(dir, 0700) < 0)
		fail_setup(dir);
	if (run(dir, GIT " init -q && mkdir plans") != 0)
		fail_setup("git init");
}

static void commit_all(const char *dir, const char *msg)
{
	if (run(dir, "git add -A && git commit -q -m '%s'", msg) != 0)
		fail_setup("git commit");
}

static void go(const char *dir)
{
	if (chdir(dir) < 0)
		fail_setup(dir);
}

/* ---- provenance ----------------------------------------------------------- */

static void test_clean(void)
{
	struct git_provenance p, q;
	struct mm_error err = MM_ERROR_INIT;
	char dir[PATH_MAX], path[PATH_MAX], link[PATH_MAX], head[128], blob[128];
	struct buf sum = BUF_INIT;
	cJSON *j;

	new_repo("clean", dir);
	write_file(dir, "plans/acme.yaml", PLAN_V1);
	write_file(dir, "top.yaml", PLAN_V2);
	commit_all(dir, "first");
	rev_parse(dir, "HEAD", head);
	rev_parse(dir, "HEAD:plans/acme.yaml", blob);
	CHECK(strlen(head) == 40 && strlen(blob) == 40);

	CHECK(gitinfo_provenance(at(dir, "plans/acme.yaml", path), &p, &err) == 0);
	CHECK(p.in_repo == 1);
	CHECK(p.unborn == 0);
	CHECK(p.detached == 0);
	CHECK(p.tracked == 1);
	CHECK(p.dirty == 0);
	CHECK_STR(p.commit, head);
	CHECK_STR(p.blob, blob);
	CHECK_STR(p.branch, "main");
	CHECK_STR(p.path_in_repo, "plans/acme.yaml");
	CHECK_STR(p.workdir, dir);
	CHECK_STR(p.rev, "");

	/* Relative to the working directory, with detours. */
	go(at(dir, "plans", path));
	CHECK(gitinfo_provenance("acme.yaml", &q, &err) == 0);
	CHECK_STR(q.path_in_repo, "plans/acme.yaml");
	CHECK_STR(q.commit, head);
	go(dir);
	CHECK(gitinfo_provenance("./plans/../plans/acme.yaml", &q, &err) == 0);
	CHECK_STR(q.path_in_repo, "plans/acme.yaml");
	CHECK_STR(q.blob, blob);
	CHECK(gitinfo_provenance("top.yaml", &q, &err) == 0);
	CHECK_STR(q.path_in_repo, "top.yaml");
	go(start_cwd);

	/* Through a symlink from outside the repository: described by its target. */
	at(root, "link.yaml", link);
	CHECK(symlink(at(dir, "plans/acme.yaml", path), link) == 0);
	CHECK(gitinfo_provenance(link, &q, &err) == 0);
	CHECK(q.in_repo == 1);
	CHECK_STR(q.path_in_repo, "plans/acme.yaml");
	CHECK_STR(q.blob, blob);

	/* Other changes in the repository do not make this plan dirty. */
	write_file(dir, "top.yaml", PLAN_V3);
	write_file(dir, "notes.txt", "untracked\n");
	CHECK(gitinfo_provenance(at(dir, "plans/acme.yaml", path), &q, &err) == 0);
	CHECK(q.dirty == 0);

	j = gitinfo_to_json(&p);
	CHECK(j != NULL);
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "in_repo")));
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "commit")), head);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "branch")), "main");
	CHECK(cJSON_IsFalse(cJSON_GetObjectItem(j, "detached")));
	CHECK(cJSON_IsFalse(cJSON_GetObjectItem(j, "unborn")));
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "path")), "plans/acme.yaml");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "blob")), blob);
	CHECK(cJSON_IsFalse(cJSON_GetObjectItem(j, "dirty")));
	CHECK(cJSON_GetObjectItem(j, "rev") == NULL);
	CHECK(cJSON_GetObjectItem(j, "workdir") == NULL);

	CHECK(gitinfo_from_json(j, &q, &err) == 0);
	CHECK(q.in_repo == 1 && q.tracked == 1 && q.dirty == 0 && q.detached == 0);
	CHECK_STR(q.commit, head);
	CHECK_STR(q.blob, blob);
	CHECK_STR(q.branch, "main");
	CHECK_STR(q.path_in_repo, "plans/acme.yaml");
	cJSON_Delete(j);

	gitinfo_summary(&p, &sum);
	CHECK_CONTAINS(buf_cstr(&sum), "plans/acme.yaml at ");
	CHECK(!strncmp(buf_cstr(&sum) + strlen("plans/acme.yaml at "), head, 12));
	CHECK_CONTAINS(buf_cstr(&sum), " (main)");
	CHECK(strstr(buf_cstr(&sum), "uncommitted") == NULL);
	buf_release(&sum);
}

static void test_dirty(void)
{
	struct git_provenance p;
	struct mm_error err = MM_ERROR_INIT;
	char dir[PATH_MAX], path[PATH_MAX], head[128], blob[128];
	struct buf sum = BUF_INIT;

	new_repo("dirty", dir);
	write_file(dir, "plans/acme.yaml", PLAN_V1);
	write_file(dir, ".gitignore", "plans/secret.yaml\n");
	commit_all(dir, "first");
	rev_parse(dir, "HEAD", head);
	rev_parse(dir, "HEAD:plans/acme.yaml", blob);
	at(dir, "plans/acme.yaml", path);

	/* Modified right after the commit, same size: only the content differs. */
	write_file(dir, "plans/acme.yaml", PLAN_V2);
	CHECK(!git_clean(dir, "plans/acme.yaml"));
	CHECK(gitinfo_provenance(path, &p, &err) == 0);
	CHECK(p.dirty == 1);
	CHECK(p.tracked == 1);
	CHECK_STR(p.commit, head);
	CHECK_STR(p.blob, blob); /* what the commit holds, not the work tree */
	gitinfo_summary(&p, &sum);
	CHECK_CONTAINS(buf_cstr(&sum), ", uncommitted changes");
	buf_release(&sum);

	/* Staged: work tree and index agree, HEAD does not. */
	CHECK(run(dir, "git add plans/acme.yaml") == 0);
	CHECK(gitinfo_provenance(path, &p, &err) == 0);
	CHECK(p.dirty == 1);

	/* Back to the commit. */
	CHECK(run(dir, "git reset -q --hard") == 0);
	CHECK(git_clean(dir, "plans/acme.yaml"));
	CHECK(gitinfo_provenance(path, &p, &err) == 0);
	CHECK(p.dirty == 0);

	/* Rewritten with identical bytes: still clean. */
	write_file(dir, "plans/acme.yaml", PLAN_V1);
	CHECK(gitinfo_provenance(path, &p, &err) == 0);
	CHECK(p.dirty == 0);

	/* Removed from the index but still on disk. */
	CHECK(run(dir, "git rm -q --cached plans/acme.yaml") == 0);
	CHECK(gitinfo_provenance(path, &p, &err) == 0);
	CHECK(p.dirty == 1);
	CHECK(p.tracked == 1);
	CHECK(run(dir, "git reset -q --hard") == 0);

	/* Untracked. */
	write_file(dir, "plans/new.yaml", PLAN_V1);
	CHECK(gitinfo_provenance(at(dir, "plans/new.yaml", path), &p, &err) == 0);
	CHECK(p.in_repo == 1);
	CHECK(p.dirty == 1);
	CHECK(p.tracked == 0);
	CHECK_STR(p.blob, "");
	CHECK_STR(p.commit, head);
	CHECK_STR(p.path_in_repo, "plans/new.yaml");

	/* Ignored: not in the commit either, so dirty too. */
	write_file(dir, "plans/secret.yaml", PLAN_V1);
	CHECK(run(dir, "git check-ignore -q plans/secret.yaml") == 0);
	CHECK(gitinfo_provenance(at(dir, "plans/secret.yaml", path), &p, &err) == 0);
	CHECK(p.dirty == 1);
	CHECK(p.tracked == 0);
	CHECK_STR(p.blob, "");
}

/* core.autocrlf left alone: dirty must agree with `git status`. */
static void test_crlf(void)
{
	struct git_provenance p;
	struct mm_error err = MM_ERROR_INIT;
	char dir[PATH_MAX], path[PATH_MAX], blob[128];
	char *s;

	new_repo("crlf", dir);
	write_file(dir, "plans/dos.yaml", "name: acme\r\nsteps: []\r\n");
	write_file(dir, ".gitattributes", "plans/eol.yaml text eol=crlf\n");
	write_file(dir, "plans/eol.yaml", "name: acme\nsteps: []\n");
	commit_all(dir, "crlf");

	/* CRLF committed as is. */
	CHECK(git_clean(dir, "plans/dos.yaml"));
	CHECK(gitinfo_provenance(at(dir, "plans/dos.yaml", path), &p, &err) == 0);
	CHECK(p.dirty == 0);
	CHECK_STR(p.blob, rev_parse(dir, "HEAD:plans/dos.yaml", blob));

	/* Stored with LF, checked out with CRLF by the attribute. */
	CHECK(run(dir, "rm plans/eol.yaml && git checkout -- plans/eol.yaml") == 0);
	s = capture(dir, "od -c plans/eol.yaml");
	CHECK_CONTAINS(s, "\\r");
	free(s);
	CHECK(git_clean(dir, "plans/eol.yaml"));
	CHECK(gitinfo_provenance(at(dir, "plans/eol.yaml", path), &p, &err) == 0);
	CHECK(p.dirty == 0);

	/* A real change under the filter. */
	write_file(dir, "plans/eol.yaml", "name: acme\r\nsteps: [x]\r\n");
	CHECK(!git_clean(dir, "plans/eol.yaml"));
	CHECK(gitinfo_provenance(path, &p, &err) == 0);
	CHECK(p.dirty == 1);
}

static void test_detached(void)
{
	struct git_provenance p;
	struct mm_error err = MM_ERROR_INIT;
	char dir[PATH_MAX], path[PATH_MAX], head[128], blob[128], first[128];
	struct buf sum = BUF_INIT;
	cJSON *j;

	new_repo("detached", dir);
	write_file(dir, "plans/acme.yaml", PLAN_V1);
	commit_all(dir, "first");
	rev_parse(dir, "HEAD", first);
	write_file(dir, "plans/acme.yaml", PLAN_V2);
	commit_all(dir, "second");
	CHECK(run(dir, "git checkout -q --detach HEAD~1") == 0);
	rev_parse(dir, "HEAD", head);
	CHECK_STR(head, first);

	CHECK(gitinfo_provenance(at(dir, "plans/acme.yaml", path), &p, &err) == 0);
	CHECK(p.detached == 1);
	CHECK_STR(p.branch, "");
	CHECK_STR(p.commit, head);
	CHECK_STR(p.blob, rev_parse(dir, "HEAD:plans/acme.yaml", blob));
	CHECK(p.dirty == 0);
	gitinfo_summary(&p, &sum);
	CHECK_CONTAINS(buf_cstr(&sum), " (detached)");
	buf_release(&sum);
	j = gitinfo_to_json(&p);
	CHECK(cJSON_IsNull(cJSON_GetObjectItem(j, "branch")));
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "detached")));
	cJSON_Delete(j);
}

static void test_outside(void)
{
	struct git_provenance p;
	struct mm_error err = MM_ERROR_INIT;
	char dir[PATH_MAX], path[PATH_MAX], repo[PATH_MAX];
	struct buf sum = BUF_INIT;
	char *content = (char *)"sentinel";
	size_t len = 99;
	cJSON *j;

	at(root, "outside", dir);
	CHECK(mkdir(dir, 0700) == 0);
	CHECK(run(dir, "git rev-parse --git-dir") != 0); /* the premise of this test */
	write_file(dir, "acme.yaml", PLAN_V1);

	CHECK(gitinfo_provenance(at(dir, "acme.yaml", path), &p, &err) == 0);
	CHECK(p.in_repo == 0);
	CHECK(p.dirty == 0 && p.tracked == 0);
	CHECK_STR(p.commit, "");
	CHECK_STR(p.path_in_repo, "");
	CHECK_STR(p.workdir, "");
	j = gitinfo_to_json(&p);
	CHECK(cJSON_IsFalse(cJSON_GetObjectItem(j, "in_repo")));
	CHECK(cJSON_GetArraySize(j) == 1);
	CHECK(gitinfo_from_json(j, &p, &err) == 0 && p.in_repo == 0);
	cJSON_Delete(j);
	gitinfo_summary(&p, &sum);
	CHECK_STR(buf_cstr(&sum), "not in a git repository");
	buf_release(&sum);

	err_clear(&err);
	CHECK(gitinfo_read_at_rev(path, "HEAD", &content, &len, &p, &err) == MM_EINVAL);
	CHECK(content == NULL && len == 0);
	CHECK_CONTAINS(err.msg, "not inside a git work tree");
	CHECK_CONTAINS(err.msg, "acme.yaml'");

	err_clear(&err);
	CHECK(gitinfo_provenance(at(dir, "missing.yaml", path), &p, &err) == MM_ENOTFOUND);
	CHECK_CONTAINS(err.msg, "missing.yaml'");
	err_clear(&err);
	CHECK(gitinfo_provenance(dir, &p, &err) == MM_EINVAL);
	CHECK_CONTAINS(err.msg, "is a directory");

	/* Inside a bare repository, or a work tree's .git: no work tree holds the plan. */
	at(root, "bare.git", repo);
	CHECK(run(root, GIT " init -q --bare bare.git") == 0);
	write_file(repo, "acme.yaml", PLAN_V1);
	CHECK(gitinfo_provenance(at(repo, "acme.yaml", path), &p, &err) == 0);
	CHECK(p.in_repo == 0);
	new_repo("dotgit", repo);
	write_file(repo, ".git/acme.yaml", PLAN_V1);
	CHECK(gitinfo_provenance(at(repo, ".git/acme.yaml", path), &p, &err) == 0);
	CHECK(p.in_repo == 0);
}

static void test_unborn(void)
{
	struct git_provenance p;
	struct mm_error err = MM_ERROR_INIT;
	char dir[PATH_MAX], path[PATH_MAX], head[128];
	struct buf sum = BUF_INIT;
	char *content = NULL;
	size_t len;
	cJSON *j;

	new_repo("unborn", dir);
	write_file(dir, "plans/acme.yaml", PLAN_V1);
	CHECK_STR(rev_parse(dir, "HEAD", head), "");

	CHECK(gitinfo_provenance(at(dir, "plans/acme.yaml", path), &p, &err) == 0);
	CHECK(p.in_repo == 1);
	CHECK(p.unborn == 1);
	CHECK(p.dirty == 1);
	CHECK(p.tracked == 0);
	CHECK(p.detached == 0);
	CHECK_STR(p.commit, "");
	CHECK_STR(p.blob, "");
	CHECK_STR(p.branch, "main");
	CHECK_STR(p.path_in_repo, "plans/acme.yaml");
	CHECK_STR(p.workdir, dir);
	j = gitinfo_to_json(&p);
	CHECK(cJSON_IsNull(cJSON_GetObjectItem(j, "commit")));
	CHECK(cJSON_IsNull(cJSON_GetObjectItem(j, "blob")));
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "unborn")));
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "dirty")));
	cJSON_Delete(j);
	gitinfo_summary(&p, &sum);
	CHECK_STR(buf_cstr(&sum), "plans/acme.yaml, no commits yet (main)");
	buf_release(&sum);

	/* Staged is still nothing committed. */
	CHECK(run(dir, "git add plans/acme.yaml") == 0);
	CHECK(gitinfo_provenance(path, &p, &err) == 0);
	CHECK(p.unborn == 1 && p.dirty == 1 && p.tracked == 0);

	CHECK(gitinfo_read_at_rev(path, "HEAD", &content, &len, &p, &err) == MM_ENOTFOUND);
	CHECK(content == NULL);
	CHECK_CONTAINS(err.msg, "revision 'HEAD' not found");
}

/* A linked work tree, a name with a space, a directory reached through a symlink. */
static void test_odd_places(void)
{
	struct git_provenance p;
	struct mm_error err = MM_ERROR_INIT;
	char dir[PATH_MAX], wt[PATH_MAX], path[PATH_MAX], link[PATH_MAX], id[128];
	char *content = NULL;
	size_t len;

	new_repo("odd place", dir);
	write_file(dir, "plans/acme.yaml", PLAN_V1);
	commit_all(dir, "first");
	CHECK(gitinfo_provenance(at(dir, "plans/acme.yaml", path), &p, &err) == 0);
	CHECK_STR(p.workdir, dir);
	CHECK_STR(p.commit, rev_parse(dir, "HEAD", id));

	at(root, "odd-wt", wt);
	CHECK(run(dir, "git worktree add -q -b feature '%s'", wt) == 0);
	write_file(wt, "plans/acme.yaml", PLAN_V2);
	commit_all(wt, "on feature");
	CHECK(gitinfo_provenance(at(wt, "plans/acme.yaml", path), &p, &err) == 0);
	CHECK(p.in_repo == 1 && p.dirty == 0);
	CHECK_STR(p.workdir, wt);
	CHECK_STR(p.branch, "feature");
	CHECK_STR(p.commit, rev_parse(wt, "HEAD", id));
	CHECK_STR(p.blob, rev_parse(wt, "HEAD:plans/acme.yaml", id));
	CHECK(gitinfo_read_blob_at_commit(p.workdir, "main", "plans/acme.yaml", &content, &len, &err) == 0);
	CHECK_STR(content, PLAN_V1);
	free(content);

	/* A missing file in a directory reached through a symlink from outside. */
	at(root, "plans-link", link);
	CHECK(symlink(at(dir, "plans", path), link) == 0);
	CHECK(gitinfo_read_at_rev(at(link, "gone.yaml", path), "HEAD", &content, &len, &p, &err) ==
	      MM_ENOTFOUND);
	CHECK_CONTAINS(err.msg, "'plans/gone.yaml'");
	CHECK(gitinfo_read_at_rev(at(link, "acme.yaml", path), "feature", &content, &len, &p, &err) == 0);
	CHECK_STR(content, PLAN_V2);
	CHECK_STR(p.workdir, dir);
	CHECK_STR(p.branch, "feature");
	free(content);
}

/* ---- reading at a revision ----------------------------------------------- */

static void test_moved(void)
{
	struct git_provenance p;
	struct mm_error err = MM_ERROR_INIT;
	char dir[PATH_MAX], path[PATH_MAX], id[128];
	char *content = NULL, *s;
	size_t len = 0;

	new_repo("moved", dir);
	write_file(dir, "plans/old.yaml", PLAN_V1);
	CHECK(run(dir, "mkdir -p legacy/sub") == 0);
	write_file(dir, "legacy/sub/x.yaml", PLAN_V3);
	commit_all(dir, "first");
	CHECK(run(dir, "git mv plans/old.yaml plans/new.yaml && git rm -q -r legacy") == 0);
	write_file(dir, "plans/new.yaml", PLAN_V2);
	commit_all(dir, "move");

	/* By the old path, which no longer exists. */
	CHECK(gitinfo_read_at_rev(at(dir, "plans/old.yaml", path), "HEAD~1", &content, &len, &p, &err) == 0);
	CHECK_STR(content, PLAN_V1);
	CHECK(len == strlen(PLAN_V1));
	CHECK(p.in_repo == 1 && p.tracked == 1 && p.dirty == 0 && p.unborn == 0);
	CHECK_STR(p.commit, rev_parse(dir, "HEAD~1", id));
	CHECK_STR(p.blob, rev_parse(dir, "HEAD~1:plans/old.yaml", id));
	CHECK_STR(p.path_in_repo, "plans/old.yaml");
	CHECK_STR(p.workdir, dir);
	CHECK_STR(p.rev, "HEAD~1");
	CHECK(p.detached == 1);
	CHECK_STR(p.branch, "");
	free(content);

	/* Relative, from inside the work tree. */
	go(dir);
	CHECK(gitinfo_read_at_rev("plans/old.yaml", "HEAD~1", &content, &len, &p, &err) == 0);
	CHECK_STR(content, PLAN_V1);
	CHECK_STR(p.path_in_repo, "plans/old.yaml");
	free(content);

	/* A whole directory gone since, and a detour through it. */
	CHECK(gitinfo_read_at_rev("legacy/gone/../sub/x.yaml", "HEAD~1", &content, &len, &p, &err) == 0);
	CHECK_STR(content, PLAN_V3);
	CHECK_STR(p.path_in_repo, "legacy/sub/x.yaml");
	CHECK_STR(p.blob, rev_parse(dir, "HEAD~1:legacy/sub/x.yaml", id));
	free(content);
	go(start_cwd);

	/* Not there at HEAD. */
	err_clear(&err);
	content = (char *)"sentinel";
	CHECK(gitinfo_read_at_rev(at(dir, "plans/old.yaml", path), "HEAD", &content, &len, &p, &err) ==
	      MM_ENOTFOUND);
	CHECK(content == NULL && len == 0 && p.in_repo == 0);
	CHECK_CONTAINS(err.msg, "'plans/old.yaml'");
	CHECK_CONTAINS(err.msg, "'HEAD'");

	/* The new path at HEAD: HEAD is on main, so that is the branch. */
	CHECK(gitinfo_read_at_rev(at(dir, "plans/new.yaml", path), "HEAD", &content, &len, &p, &err) == 0);
	CHECK_STR(content, PLAN_V2);
	CHECK_STR(p.branch, "main");
	CHECK(p.detached == 0);
	CHECK_STR(p.commit, rev_parse(dir, "HEAD", id));
	free(content);

	/* Nothing in the work tree was touched. */
	CHECK(git_clean(dir, "."));
	s = read_file(dir, "plans/new.yaml");
	CHECK(!strncmp(s, PLAN_V2, strlen(s)));
	free(s);
	CHECK(access(at(dir, "plans/old.yaml", path), F_OK) != 0);
}

static void read_rev_ok(const char *dir, const char *rev, const char *want, const char *want_commit,
			const char *want_branch)
{
	struct git_provenance p;
	struct mm_error err = MM_ERROR_INIT;
	char path[PATH_MAX], id[128];
	char *content = NULL;
	size_t len = 0;
	int rc;

	rc = gitinfo_read_at_rev(at(dir, "plans/acme.yaml", path), rev, &content, &len, &p, &err);
	CHECK(rc == 0);
	if (rc != 0) {
		fprintf(stderr, "  rev '%s': %s\n", rev, err.msg);
		return;
	}
	CHECK_STR(content, want);
	CHECK(len == strlen(want));
	CHECK_STR(p.commit, want_commit);
	snprintf(path, sizeof(path), "%s:plans/acme.yaml", want_commit);
	CHECK_STR(p.blob, rev_parse(dir, path, id));
	CHECK_STR(p.branch, want_branch);
	CHECK(p.detached == !*want_branch);
	CHECK_STR(p.rev, rev);
	CHECK(p.dirty == 0 && p.tracked == 1);
	free(content);
}

static void test_rev(void)
{
	struct git_provenance p;
	struct mm_error err = MM_ERROR_INIT;
	char dir[PATH_MAX], path[PATH_MAX], c1[128], c3[128], tag[128], abbrev[8];
	char *content = NULL, *s;
	size_t len;
	cJSON *j;

	new_repo("rev", dir);
	write_file(dir, "plans/acme.yaml", PLAN_V1);
	commit_all(dir, "v1");
	CHECK(run(dir, "git tag v1 && git tag -a v1a -m release && git branch release") == 0);
	rev_parse(dir, "HEAD", c1);
	write_file(dir, "plans/acme.yaml", PLAN_V2);
	commit_all(dir, "v2");
	CHECK(run(dir, "git checkout -q release") == 0);
	write_file(dir, "plans/acme.yaml", PLAN_V3);
	commit_all(dir, "v3");
	rev_parse(dir, "HEAD", c3);
	CHECK(run(dir, "git checkout -q main") == 0);

	read_rev_ok(dir, "v1", PLAN_V1, c1, "");
	/* An annotated tag peels to its commit, not the tag object. */
	rev_parse(dir, "v1a", tag);
	CHECK(strlen(tag) == 40 && strcmp(tag, c1) != 0);
	read_rev_ok(dir, "v1a", PLAN_V1, c1, "");
	read_rev_ok(dir, "release", PLAN_V3, c3, "release");
	read_rev_ok(dir, c1, PLAN_V1, c1, "");
	snprintf(abbrev, sizeof(abbrev), "%.7s", c1);
	read_rev_ok(dir, abbrev, PLAN_V1, c1, "");
	read_rev_ok(dir, "release~1", PLAN_V1, c1, "");

	/* The --rev provenance as recorded. */
	CHECK(gitinfo_read_at_rev(at(dir, "plans/acme.yaml", path), "v1", &content, &len, &p, &err) == 0);
	free(content);
	j = gitinfo_to_json(&p);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "rev")), "v1");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "commit")), c1);
	cJSON_Delete(j);

	/* Bad revisions name themselves. */
	err_clear(&err);
	CHECK(gitinfo_read_at_rev(path, "no-such-rev", &content, &len, &p, &err) == MM_ENOTFOUND);
	CHECK(content == NULL);
	CHECK_CONTAINS(err.msg, "revision 'no-such-rev' not found");
	err_clear(&err);
	CHECK(gitinfo_read_at_rev(path, "HEAD^{tree}", &content, &len, &p, &err) == MM_EINVAL);
	CHECK_CONTAINS(err.msg, "'HEAD^{tree}' does not name a commit");
	err_clear(&err);
	CHECK(gitinfo_read_at_rev(path, "main@{", &content, &len, &p, &err) < 0);
	CHECK_CONTAINS(err.msg, "'main@{'");
	err_clear(&err);
	CHECK(gitinfo_read_at_rev(path, "", &content, &len, &p, &err) == MM_EINVAL);
	err_clear(&err);
	CHECK(gitinfo_read_at_rev(at(dir, "plans/", path), "v1", &content, &len, &p, &err) == MM_EINVAL);
	CHECK_CONTAINS(err.msg, "does not name a file");

	/* The work tree still holds main's version. */
	CHECK(git_clean(dir, "."));
	s = read_file(dir, "plans/acme.yaml");
	CHECK(!strncmp(s, PLAN_V2, strlen(s)));
	free(s);
}

static void test_links_in_tree(void)
{
	struct git_provenance p;
	struct mm_error err = MM_ERROR_INIT;
	char dir[PATH_MAX], path[PATH_MAX], id[128];
	char *content = NULL;
	size_t len;

	new_repo("links", dir);
	write_file(dir, "plans/acme.yaml", PLAN_V1);
	CHECK(run(dir, "ln -s acme.yaml plans/current.yaml && ln -s ../../x.yaml plans/evil.yaml"
		       " && ln -s b.yaml plans/a.yaml && ln -s a.yaml plans/b.yaml") == 0);
	commit_all(dir, "links");

	/* Followed in the revision's tree. */
	CHECK(gitinfo_read_at_rev(at(dir, "plans/current.yaml", path), "HEAD", &content, &len, &p, &err) == 0);
	CHECK_STR(content, PLAN_V1);
	CHECK_STR(p.path_in_repo, "plans/acme.yaml");
	CHECK_STR(p.blob, rev_parse(dir, "HEAD:plans/acme.yaml", id));
	free(content);

	/* In the work tree, realpath does the same. */
	CHECK(gitinfo_provenance(path, &p, &err) == 0);
	CHECK_STR(p.path_in_repo, "plans/acme.yaml");
	CHECK(p.dirty == 0);

	err_clear(&err);
	CHECK(gitinfo_read_at_rev(at(dir, "plans/evil.yaml", path), "HEAD", &content, &len, &p, &err) ==
	      MM_EINVAL);
	CHECK_CONTAINS(err.msg, "outside the repository");
	err_clear(&err);
	CHECK(gitinfo_read_at_rev(at(dir, "plans/a.yaml", path), "HEAD", &content, &len, &p, &err) == MM_EINVAL);
	CHECK_CONTAINS(err.msg, "too many symbolic links");
	err_clear(&err);
	CHECK(gitinfo_read_at_rev(at(dir, "plans", path), "HEAD", &content, &len, &p, &err) == MM_EINVAL);
	CHECK_CONTAINS(err.msg, "is a directory");
}

/* ---- drift ---------------------------------------------------------------- */

static void test_drift(void)
{
	struct git_provenance then, now;
	struct mm_error err = MM_ERROR_INIT;
	char dir[PATH_MAX], path[PATH_MAX], c1[128];
	char *old = NULL, *cur;
	size_t len = 0;
	cJSON *j;

	new_repo("drift", dir);
	write_file(dir, "plans/acme.yaml", PLAN_V1);
	commit_all(dir, "v1");
	rev_parse(dir, "HEAD", c1);

	/* What a step recorded when it ran, stored and read back. */
	CHECK(gitinfo_provenance(at(dir, "plans/acme.yaml", path), &then, &err) == 0);
	j = gitinfo_to_json(&then);
	CHECK(gitinfo_from_json(j, &then, &err) == 0);
	cJSON_Delete(j);

	/* The step is edited afterwards. */
	write_file(dir, "plans/acme.yaml", PLAN_V2);
	commit_all(dir, "v2");

	CHECK(gitinfo_provenance(path, &now, &err) == 0);
	CHECK(strcmp(now.commit, then.commit) != 0);
	CHECK(gitinfo_read_blob_at_commit(now.workdir, then.commit, then.path_in_repo, &old, &len, &err) == 0);
	CHECK_STR(old, PLAN_V1);
	CHECK(len == strlen(PLAN_V1));
	cur = read_file(dir, "plans/acme.yaml");
	CHECK(strncmp(old, cur, strlen(old)) != 0);
	free(cur);
	free(old);

	/* At the current commit, and abbreviated. */
	CHECK(gitinfo_read_blob_at_commit(dir, now.commit, "plans/acme.yaml", &old, &len, &err) == 0);
	CHECK_STR(old, PLAN_V2);
	free(old);
	c1[10] = '\0';
	CHECK(gitinfo_read_blob_at_commit(dir, c1, "./plans/acme.yaml", &old, &len, &err) == 0);
	CHECK_STR(old, PLAN_V1);
	free(old);

	err_clear(&err);
	CHECK(gitinfo_read_blob_at_commit(dir, now.commit, "plans/none.yaml", &old, &len, &err) == MM_ENOTFOUND);
	CHECK(old == NULL && len == 0);
	CHECK_CONTAINS(err.msg, "'plans/none.yaml' does not exist");
	err_clear(&err);
	CHECK(gitinfo_read_blob_at_commit(dir, "0123456789abcdef0123456789abcdef01234567", "plans/acme.yaml",
					  &old, &len, &err) == MM_ENOTFOUND);
	CHECK_CONTAINS(err.msg, "'0123456789abcdef0123456789abcdef01234567'");
	err_clear(&err);
	CHECK(gitinfo_read_blob_at_commit(dir, now.commit, "../x.yaml", &old, &len, &err) == MM_EINVAL);
	CHECK(gitinfo_read_blob_at_commit(dir, now.commit, "/etc/passwd", &old, &len, &err) == MM_EINVAL);
	CHECK(gitinfo_read_blob_at_commit(dir, "", "plans/acme.yaml", &old, &len, &err) == MM_EINVAL);
	CHECK(gitinfo_read_blob_at_commit(root, now.commit, "plans/acme.yaml", &old, &len, &err) ==
	      MM_ENOTFOUND);
	CHECK(old == NULL);
}

static void test_from_json_rejects(void)
{
	struct git_provenance p;
	struct mm_error err = MM_ERROR_INIT;
	cJSON *j;

	j = cJSON_Parse("{\"in_repo\": true, \"commit\": \"HEAD\", \"path\": \"a.yaml\"}");
	CHECK(gitinfo_from_json(j, &p, &err) == MM_EINVAL);
	CHECK_CONTAINS(err.msg, "'commit'");
	cJSON_Delete(j);
	j = cJSON_Parse("{\"in_repo\": \"yes\"}");
	CHECK(gitinfo_from_json(j, &p, &err) == MM_EINVAL);
	cJSON_Delete(j);
	CHECK(gitinfo_from_json(NULL, &p, &err) == 0 && p.in_repo == 0);
}

/* ---- harness -------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* Git as the tests need it: no user or system configuration, no inherited repository. */
static void setup(void)
{
	char tmpl[PATH_MAX], xdg[PATH_MAX];
	const char *tmp = getenv("TMPDIR");

	if (!getcwd(start_cwd, sizeof(start_cwd)))
		fail_setup("getcwd");
	at(tmp && *tmp ? tmp : "/tmp", "mm-gitinfo-XXXXXX", tmpl);
	if (!mkdtemp(tmpl) || !realpath(tmpl, root))
		fail_setup("mkdtemp");
	at(root, "xdg", xdg);
	setenv("HOME", root, 1);
	setenv("XDG_CONFIG_HOME", xdg, 1);
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	setenv("GIT_AUTHOR_NAME", "Test", 1);
	setenv("GIT_AUTHOR_EMAIL", "test@example.com", 1);
	setenv("GIT_COMMITTER_NAME", "Test", 1);
	setenv("GIT_COMMITTER_EMAIL", "test@example.com", 1);
	unsetenv("GIT_CEILING_DIRECTORIES");
	unsetenv("GIT_DIR");
	unsetenv("GIT_WORK_TREE");
	unsetenv("GIT_INDEX_FILE");
	unsetenv("GIT_OBJECT_DIRECTORY");
	unsetenv("GIT_COMMON_DIR");
	unsetenv("GIT_NAMESPACE");
}

int main(void)
{
	setup();
	test_clean();
	test_dirty();
	test_crlf();
	test_detached();
	test_outside();
	test_unborn();
	test_odd_places();
	test_moved();
	test_rev();
	test_links_in_tree();
	test_drift();
	test_from_json_rejects();
	go(start_cwd);
	nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return check_done();
}

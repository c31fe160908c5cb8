/*
 * The plumbing every command shares: signals, loading a plan with its
 * provenance, setting up a run, and turning MM_E* codes into exit statuses.
 */
#include "cmds.h"

#include <errno.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "interp.h"
#include "event.h"
#include "steps.h"
#include "termsafe.h"
#include "util.h"

/* The one piece of process-wide mutable state besides curl's: a signal
 * handler can only talk through a sig_atomic_t. */
static volatile sig_atomic_t stop_signal;
/* Signals so far: `always` steps that wind a stopped run down stop only at the next one. */
static volatile sig_atomic_t stop_count;

static void on_signal(int sig)
{
	stop_signal = sig;
	stop_count++;
}

void cli_install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

void cli_json_event(const char *event, cJSON *fields, const char *fmt, ...)
{
	cJSON *o = fields ? fields : cJSON_CreateObject();
	struct buf msg = BUF_INIT, line = BUF_INIT;
	char when[32], *text;
	va_list ap;

	va_start(ap, fmt);
	buf_vaddf(&msg, fmt, ap);
	va_end(ap);
	iso8601_utc(now_ms(), when, sizeof(when));
	cJSON_AddStringToObject(o, "time", when);
	cJSON_AddStringToObject(o, "event", event);
	cJSON_AddStringToObject(o, "message", buf_cstr(&msg));
	text = cJSON_PrintUnformatted(o);
	term_json_line(&line, text);
	printf("%s\n", buf_cstr(&line));
	fflush(stdout);
	free(text);
	cJSON_Delete(o);
	buf_release(&msg);
	buf_release(&line);
}

const char *cli_jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

void cli_json_count(cJSON *counts, const char *key)
{
	cJSON *n = cJSON_GetObjectItemCaseSensitive(counts, key);

	if (n)
		cJSON_SetNumberValue(n, n->valuedouble + 1);
	else
		cJSON_AddNumberToObject(counts, key, 1);
}

/* --output json: one "diagnostic" event per problem in the plan, in order. */
static void json_diagnostics(struct diags *d)
{
	diags_sort(d);
	for (size_t i = 0; i < d->n; i++) {
		cJSON *f = cJSON_CreateObject();

		cJSON_AddStringToObject(f, "file", d->file ? d->file : "plan");
		if (d->v[i].line > 0) {
			cJSON_AddNumberToObject(f, "line", d->v[i].line);
			cJSON_AddNumberToObject(f, "col", d->v[i].col);
		}
		cli_json_event("diagnostic", f, "%s", d->v[i].msg);
	}
}

int cli_load_plan_quiet(const struct cli_opts *o, const char *path, struct plan **plan,
			struct git_provenance *prov, struct diags *d, struct mm_error *err)
{
	char *text = NULL;
	size_t len = 0;
	int ret;

	memset(prov, 0, sizeof(*prov));
	if (o->rev) {
		if (gitinfo_read_at_rev(path, o->rev, &text, &len, prov, err) < 0)
			return -1;
	} else if (gitinfo_provenance(path, prov, err) < 0 && err->code != MM_ENOTFOUND) {
		/* Provenance is a record, not a precondition: say why it is missing and go on. */
		term_printf(stderr, "mmigrate: warning: %s\n", err->msg);
		memset(prov, 0, sizeof(*prov));
	}
	ret = plan_load(path, text, len, step_types_all(), plan, d);
	free(text);
	if (ret < 0)
		return -2;
	if (o->state_dir) {
		char cwd[4096];
		struct buf b = BUF_INIT;

		if (o->state_dir[0] != '/' && getcwd(cwd, sizeof(cwd)))
			buf_addf(&b, "%s/%s", cwd, o->state_dir);
		else
			buf_adds(&b, o->state_dir);
		free((*plan)->state_dir);
		(*plan)->state_dir = buf_detach(&b);
	}
	return 0;
}

int cli_load_plan(const struct cli_opts *o, struct plan **plan, struct git_provenance *prov)
{
	struct diags d = DIAGS_INIT;
	struct mm_error err = MM_ERROR_INIT;
	struct stat sb;
	int ret;

	if (stat(o->plan_path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		term_printf(stderr,
			    "mmigrate: '%s' is a directory; %s takes one plan file "
			    "(validate, plan and status take directories)\n",
			    o->plan_path, o->cmd ? o->cmd : "this command");
		return EXIT_USAGE;
	}
	ret = cli_load_plan_quiet(o, o->plan_path, plan, prov, &d, &err);

	if (ret == -1)
		term_printf(stderr, "mmigrate: %s\n", err.msg);
	if (ret == -2) {
		if (o->json)
			json_diagnostics(&d);
		else
			diags_print(&d, stderr);
		if (d.n > 1 && !o->json)
			fprintf(stderr, "%zu errors in %s\n", d.n, o->plan_path);
	}
	diags_release(&d);
	return ret ? EXIT_USAGE : EXIT_OK;
}

void cli_run_init(struct run *r, const struct cli_opts *o, struct plan *p, struct state *st)
{
	memset(r, 0, sizeof(*r));
	r->plan = p;
	r->state = st;
	r->offline = o->offline;
	r->json = o->json;
	r->quiet = o->quiet;
	r->verbose = o->verbose;
	r->stop = &stop_signal;
	r->stop_count = &stop_count;
	r->out = stdout;
	r->term = run_term_new(fileno(stdout), o->json, o->quiet);
}

int cli_exit_for(int code)
{
	switch (code) {
	case 0: return EXIT_OK;
	case MM_ELOCKED: return EXIT_LOCKED;
	case MM_EINVAL: return EXIT_USAGE;
	case MM_EINTR: return stop_signal == SIGTERM ? 143 : 130;
	default: return EXIT_FAILED;
	}
}

int cli_interrupted(void)
{
	return stop_signal != 0;
}

int cli_stop_signal(void)
{
	return stop_signal;
}

const volatile sig_atomic_t *cli_stop_flag(void)
{
	return &stop_signal;
}

static int is_plan_name(const char *name)
{
	size_t n = strlen(name);

	return name[0] != '.' &&
	       ((n > 5 && !strcmp(name + n - 5, ".yaml")) || (n > 4 && !strcmp(name + n - 4, ".yml")));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends the plan files of dir (and, when recursive, of its subdirectories that are
 * not hidden nor symbolic links) to list; -1 when dir is unreadable. */
static int collect_plans(const char *dir, int recursive, char ***list, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int ret = 0;

	if (!d) {
		fprintf(stderr, "mmigrate: cannot read directory '%s': %s\n", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d))) {
		struct buf b = BUF_INIT;
		struct stat sb;

		if (e->d_name[0] == '.')
			continue;
		buf_addf(&b, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", e->d_name);
		if (is_plan_name(e->d_name) && (stat(b.data, &sb) < 0 || !S_ISDIR(sb.st_mode))) {
			*list = xrealloc(*list, (*n + 1) * sizeof(**list));
			(*list)[(*n)++] = buf_detach(&b);
			continue;
		}
		if (recursive && lstat(b.data, &sb) == 0 && S_ISDIR(sb.st_mode) &&
		    collect_plans(b.data, recursive, list, n) < 0)
			ret = -1;
		buf_release(&b);
	}
	closedir(d);
	return ret;
}

int cli_plans_in_dir(const char *dir, int recursive, char ***list, size_t *n)
{
	size_t first = *n;

	if (collect_plans(dir, recursive, list, n) < 0)
		return -1;
	if (*n == first) {
		fprintf(stderr, "mmigrate: no plans (*.yaml, *.yml) in directory '%s'%s\n", dir,
			recursive ? " or below" : "");
		return -1;
	}
	qsort(*list + first, *n - first, sizeof(**list), cmp_str);
	return 0;
}

/* Exit statuses by how bad: a usage error hides nothing else. */
static int worse(int a, int b)
{
	static const int rank[] = {
		[EXIT_OK] = 0, [EXIT_CHANGES] = 1, [EXIT_FAILED] = 2, [EXIT_LOCKED] = 3, [EXIT_USAGE] = 4
	};
	int ra = a >= 0 && a <= 4 ? rank[a] : 5, rb = b >= 0 && b <= 4 ? rank[b] : 5;

	return rb > ra ? b : a;
}

int cli_each_plan(struct cli_opts *o, int (*fn)(struct cli_opts *), int header)
{
	char **list = NULL;
	size_t n = 0;
	int ret = EXIT_OK;
	struct stat sb;

	for (int i = 0; i < o->nargs; i++) {
		if (stat(o->args[i], &sb) == 0 && S_ISDIR(sb.st_mode)) {
			if (cli_plans_in_dir(o->args[i], 0, &list, &n) < 0)
				ret = EXIT_USAGE;
			continue;
		}
		list = xrealloc(list, (n + 1) * sizeof(*list));
		list[n++] = xstrdup(o->args[i]);
	}
	if (n > 1 && o->state_dir) {
		fprintf(stderr, "mmigrate: --state-dir names the state of one plan; %zu plans were given\n", n);
		ret = EXIT_USAGE;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (header && n > 1 && !o->json)
			printf("%s==> %s <==\n", i ? "\n" : "", list[i]);
		fflush(stdout);
		o->plan_path = list[i];
		ret = worse(ret, fn(o));
	}
out:
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
	o->plan_path = o->nargs ? o->args[0] : NULL;
	return ret;
}

/* An artefact parameter's path as written (no ${...}), absolute; NULL when not literal. */
static char *literal_artefact(const struct plan *p, const struct pnode *v)
{
	struct buf b = BUF_INIT;

	if (!v || v->kind != PN_SCALAR || interp_has_refs(v->scalar))
		return NULL;
	buf_addf(&b, "%s%s%s", v->scalar[0] == '/' ? "" : p->state_dir, v->scalar[0] == '/' ? "" : "/",
		 v->scalar);
	return buf_detach(&b);
}

int cli_check_artefacts(const struct cli_opts *o, const struct plan *p)
{
	struct git_provenance prov;
	struct mm_error err = MM_ERROR_INIT;
	int bad = 0;

	if (gitinfo_provenance(o->plan_path, &prov, &err) < 0 || !prov.in_repo)
		return 0; /* outside git (or unreadable: apply says why) */
	for (size_t i = 0; i < p->nsteps; i++) {
		const struct plan_step *st = &p->steps[i];

		for (const struct param_spec *ps = st->type->params; ps && ps->name; ps++) {
			const struct pnode *v = pnode_get(st->node, ps->name);
			char *path = ps->artefact ? literal_artefact(p, v) : NULL;
			int rc;

			if (!path)
				continue;
			rc = gitinfo_path_is_tracked_or_unignored(prov.workdir, path, &err);
			if (rc != 0) {
				fprintf(stderr,
					"%s:%d:%d: step '%s': '%s' would write %s inside the git work tree "
					"'%s'%s; archives belong in the state directory (leave '%s' relative, "
					"or add the path to .gitignore)\n",
					o->plan_path, v->line, v->col, st->id, ps->name, path, prov.workdir,
					rc < 0 ? " (cannot tell whether git ignores it)"
					       : ", where git would commit it",
					ps->name);
				bad++;
			}
			free(path);
		}
	}
	return bad ? -1 : 0;
}

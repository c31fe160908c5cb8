/*
 * archive: checks a Mattermost export archive (mattermost-api.md §8) before it
 * is imported: the core of the `verify` step in archive mode and of
 * `mmigrate verify ARCHIVE.zip`. It does what `mmctl import validate` does,
 * and more: every entry's CRC, reply users and attachments, blank and over-long
 * lines, the archive's size and SHA-256.
 *
 *   struct archive_opts opts = ARCHIVE_OPTS_INIT;
 *   struct archive_report *rep;
 *   if (archive_verify(path, &opts, &rep, &err) < 0)
 *           the archive cannot be checked at all (missing, not a zip): err says why
 *   archive_report_print(rep, stdout);  or  cJSON *j = archive_report_json(rep);
 *   rep->error_count > 0: the archive has problems (the step fails, exit non-zero)
 *   archive_report_foreach_team/_channel/_user(rep, cb, ctx): target-mode reconciliation
 *   archive_report_free(rep);
 *
 * One streaming pass: the JSONL entry is inflated by one thread and split and
 * validated by the caller's; a second thread reads the file once, hashing it
 * and feeding the zip check (zipstream.h: every entry's CRC, the headers, the
 * central directory), the same checker the download step runs as it streams.
 * Memory is constant (blocks, the longest line up to 16 MiB, one cJSON tree)
 * apart from the name sets and one byte per zip entry.
 *
 * Error messages, each counted, the first max_shown kept:
 *   ARCHIVE->JSONL:LINE: field "F": message     a problem with field F of a line
 *   ARCHIVE->JSONL:LINE: message                the line itself (blank, bad JSON, too long)
 *   ARCHIVE->JSONL: message                     the JSONL as a whole (empty)
 *   ARCHIVE->ENTRY: message                     a zip entry (CRC mismatch, unreadable)
 *   ARCHIVE: message                            the archive (truncated, no .jsonl)
 * Zip-level problems are listed before line problems.
 */
#ifndef MM_ARCHIVE_H
#define MM_ARCHIVE_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>

#include "bulkline.h"
#include "error.h"

struct archive_opts {
	int max_shown;         /* errors kept for display; default 50; < 0: all */
	int check_attachments; /* default 1: paths must be in the zip; unused data/ files listed */
	int target_version;    /* major * 100 + minor of the target server; 0: newest rules */
	/*
	 * Polled between blocks, possibly from several threads at once (reading a
	 * flag a signal handler sets is fine). Non-zero stops the check, which
	 * then returns MM_EINTR. NULL: never stop.
	 */
	int (*should_stop)(void *ctx);
	void *stop_ctx;
};

#define ARCHIVE_OPTS_INIT            \
	{                            \
		50, 1, 0, NULL, NULL \
	}

/* Read-only for callers. */
struct archive_report {
	char *archive;         /* the path as given */
	char *jsonl;           /* the JSONL entry validated, NULL if none was found */
	uint64_t size;         /* bytes of the archive file */
	char sha256[65];       /* of the archive file, lowercase hex */
	unsigned long entries; /* zip entries */
	unsigned long lines;   /* JSONL lines, blank ones included */
	struct bulk_counts counts;
	unsigned long error_count;     /* every error found */
	unsigned long zip_error_count; /* of which zip-level: CRCs, headers, central directory */
	char **errors;                 /* the first max_shown, formatted as above */
	size_t nerrors;
	char **unused; /* data/ entries no line references (check_attachments) */
	size_t nunused;
	unsigned long export_warnings; /* lines in warnings.txt: attachments the export could not read */
	unsigned long root_jsonls;     /* *.jsonl at the root; the import reads only the first */
	int64_t elapsed_ms;
	int max_shown;
	struct bulk_state *names; /* private: use the foreach helpers */
};

/*
 * Checks the zip at zip_path (opts NULL: defaults). On 0, *out is a report
 * the caller frees with archive_report_free, also when it lists errors.
 * Returns < 0 with err set and *out NULL only when the archive cannot be
 * checked at all: it cannot be opened, is not a zip (a zip cut short is
 * reported as an error instead), or should_stop asked to stop (MM_EINTR).
 */
int archive_verify(const char *zip_path, const struct archive_opts *opts, struct archive_report **out,
		   struct mm_error *err);

/*
 * The same checks on a bare JSONL file (no attachments; messages read
 * FILE:LINE: ...). Used by the benchmark against `jq empty`.
 */
int archive_verify_jsonl(const char *jsonl_path, const struct archive_opts *opts, struct archive_report **out,
			 struct mm_error *err);

void archive_report_free(struct archive_report *rep);

/* mmctl-like text: errors, counts per type, unused attachments, a summary. */
void archive_report_print(const struct archive_report *rep, FILE *out);

/*
 * The same as one object: archive, jsonl, size, sha256, entries, lines,
 * counts{roles, schemes, teams, channels, users, bots, emojis, posts, replies,
 * direct_channels, direct_posts, attachments}, error_count, errors[],
 * unused_attachments[], export_warnings, elapsed_ms. Caller frees with cJSON_Delete.
 */
cJSON *archive_report_json(const struct archive_report *rep);

/*
 * Adds a verify step's outputs to `outputs` (an object the caller owns):
 * size, sha256, lines, errors (the total), crc_ok (no zip-level error),
 * unused_attachments (a count) and
 * counts{...} with the keys of archive_report_json.
 */
void archive_report_outputs(const struct archive_report *rep, cJSON *outputs);

/* Name sets in file order, for reconciling against the target server; see
 * bulk_state_foreach_* for the callbacks. Return the callback's non-zero stop value. */
int archive_report_foreach_team(const struct archive_report *rep, int (*cb)(void *ctx, const char *team),
				void *ctx);
int archive_report_foreach_channel(const struct archive_report *rep,
				   int (*cb)(void *ctx, const char *team, const char *channel,
					     unsigned long posts, unsigned long replies),
				   void *ctx);
int archive_report_foreach_user(const struct archive_report *rep,
				int (*cb)(void *ctx, const char *username, int is_bot), void *ctx);

#endif

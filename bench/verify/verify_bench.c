/*
 * The benchmark's driver: runs archive_verify (zip) or archive_verify_jsonl
 * (a bare JSONL) once and prints one JSON object with the outcome, for run.py
 * to time against `unzip -tq` and `jq empty`.
 *
 *   verify_bench zip ARCHIVE.zip | verify_bench jsonl FILE.jsonl
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "archive.h"
#include "util.h"

int main(int argc, char **argv)
{
	struct archive_report *rep = NULL;
	struct mm_error err = MM_ERROR_INIT;
	struct rusage ru;
	int64_t t0;
	int rc;

	if (argc != 3 || (strcmp(argv[1], "zip") && strcmp(argv[1], "jsonl"))) {
		fprintf(stderr, "usage: verify_bench zip|jsonl PATH\n");
		return 2;
	}
	t0 = mono_ms();
	if (!strcmp(argv[1], "zip"))
		rc = archive_verify(argv[2], NULL, &rep, &err);
	else
		rc = archive_verify_jsonl(argv[2], NULL, &rep, &err);
	if (rc < 0) {
		fprintf(stderr, "verify_bench: %s\n", err.msg);
		return 1;
	}
	getrusage(RUSAGE_SELF, &ru);
	for (size_t i = 0; i < rep->nerrors && i < 5; i++)
		fprintf(stderr, "%s\n", rep->errors[i]);
	printf("{\"seconds\":%.3f,\"lines\":%lu,\"errors\":%lu,\"unused\":%zu,\"attachments\":%lu,"
	       "\"size\":%llu,\"sha256\":\"%s\",\"maxrss_kb\":%ld}\n",
	       (double)(mono_ms() - t0) / 1000, rep->lines, rep->error_count, rep->nunused,
	       rep->counts.attachments, (unsigned long long)rep->size, rep->sha256, ru.ru_maxrss);
	rc = rep->error_count ? 1 : 0;
	archive_report_free(rep);
	return rc;
}

#include "httpparse.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>

#include "util.h"

/* Content-Range: "bytes 10-99/100"; a 416 has "bytes *" then "/100"; the total may be "*". */
/* A non-negative decimal number: strtoll alone would take "-3" or " +3". */
static int parse_count(const char **v, int64_t *out)
{
	char *p;

	if (**v < '0' || **v > '9')
		return -1;
	*out = strtoll(*v, &p, 10);
	*v = p;
	return 0;
}

int http_parse_content_range(const char *v, int64_t *start, int64_t *end, int64_t *total)
{
	*start = *end = *total = -1;
	if (strncasecmp(v, "bytes", 5))
		return -1;
	v += 5;
	while (*v == ' ')
		v++;
	if (*v == '*') {
		v++;
	} else {
		if (parse_count(&v, start) < 0 || *v++ != '-' || parse_count(&v, end) < 0 || *end < *start)
			goto bad;
	}
	if (*v++ != '/')
		goto bad;
	if (*v != '*' && (parse_count(&v, total) < 0 || (*end >= 0 && *end >= *total)))
		goto bad;
	return 0;
bad:
	*start = *end = *total = -1;
	return -1;
}

long http_parse_retry_after(const char *v)
{
	int64_t secs;
	time_t when;

	if (parse_i64(v, &secs) == 0)
		return secs < 0 ? -1 : secs > 86400 ? 86400 : (long)secs;
	when = curl_getdate(v, NULL);
	if (when < 0)
		return -1;
	return when > time(NULL) ? (long)(when - time(NULL)) : 0;
}

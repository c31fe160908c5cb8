#include "httpparse.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>

#include "util.h"

/* Content-Range: "bytes 10-99/100"; a 416 has "bytes *" then "/100"; the total may be "*". */
int http_parse_content_range(const char *v, int64_t *start, int64_t *end, int64_t *total)
{
	char *p;

	*start = *end = *total = -1;
	if (strncasecmp(v, "bytes", 5))
		return -1;
	v += 5;
	while (*v == ' ')
		v++;
	if (*v == '*') {
		v++;
	} else {
		*start = strtoll(v, &p, 10);
		if (p == v || *p != '-')
			return -1;
		v = p + 1;
		*end = strtoll(v, &p, 10);
		if (p == v)
			return -1;
		v = p;
	}
	if (*v++ != '/')
		return -1;
	if (*v != '*') {
		*total = strtoll(v, &p, 10);
		if (p == v)
			return -1;
	}
	return 0;
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


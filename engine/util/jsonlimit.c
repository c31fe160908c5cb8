#include "jsonlimit.h"

int json_within_limits(const char *s, size_t len, int max_depth, size_t max_values, struct mm_error *err)
{
	int depth = 0, in_string = 0, in_scalar = 0;
	size_t values = 0;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = 0;
			continue;
		}
		if (c == '"' || c == '[' || c == '{' ||
		    (!in_scalar && ((c >= '0' && c <= '9') || c == '-' || c == 't' || c == 'f' || c == 'n'))) {
			/* Object keys are strings and are counted too: they cost a node's name. */
			if (++values > max_values)
				return err_set(err, MM_ERR, "JSON holds more than %zu values", max_values);
		}
		if (c == '"') {
			in_string = 1;
			in_scalar = 0;
		} else if (c == '[' || c == '{') {
			if (++depth > max_depth)
				return err_set(err, MM_ERR, "JSON nests deeper than %d levels", max_depth);
			in_scalar = 0;
		} else if (c == ']' || c == '}') {
			depth--;
			in_scalar = 0;
		} else if (c == ',' || c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			in_scalar = 0;
		} else {
			in_scalar = 1;
		}
	}
	return 0;
}

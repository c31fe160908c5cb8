#include "canon.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "hash.h"
#include "util.h"

static int key_cmp(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;

	return strcmp(x->string, y->string);
}

static void canon_into(const cJSON *v, struct buf *out)
{
	if (cJSON_IsObject(v)) {
		size_t n = (size_t)cJSON_GetArraySize(v), i = 0;
		const cJSON **kids = xcalloc(n ? n : 1, sizeof(*kids));
		const cJSON *c;

		cJSON_ArrayForEach(c, v)
			kids[i++] = c;
		qsort(kids, n, sizeof(*kids), key_cmp);
		buf_addc(out, '{');
		for (i = 0; i < n; i++) {
			cJSON *k = cJSON_CreateString(kids[i]->string);
			char *ks = cJSON_PrintUnformatted(k);

			if (i)
				buf_addc(out, ',');
			buf_adds(out, ks);
			buf_addc(out, ':');
			canon_into(kids[i], out);
			free(ks);
			cJSON_Delete(k);
		}
		buf_addc(out, '}');
		free(kids);
	} else if (cJSON_IsArray(v)) {
		const cJSON *c;
		int first = 1;

		buf_addc(out, '[');
		cJSON_ArrayForEach(c, v) {
			if (!first)
				buf_addc(out, ',');
			first = 0;
			canon_into(c, out);
		}
		buf_addc(out, ']');
	} else {
		char *s = cJSON_PrintUnformatted(v);

		buf_adds(out, s ? s : "null");
		free(s);
	}
}

char *json_canonical(const cJSON *v)
{
	struct buf b = BUF_INIT;

	canon_into(v, &b);
	return buf_detach(&b);
}

void json_fingerprint(const cJSON *v, char hex[65])
{
	char *s = json_canonical(v);

	sha256_hex(s, strlen(s), hex);
	free(s);
}

static void add_if_changed(struct buf *out, const char *key, const cJSON *a, const cJSON *b)
{
	char *x = a ? json_canonical(a) : NULL, *y = b ? json_canonical(b) : NULL;

	if (!x || !y || strcmp(x, y)) {
		if (out->len)
			buf_adds(out, ", ");
		buf_adds(out, key);
	}
	free(x);
	free(y);
}

char *json_changed_keys(const cJSON *a, const cJSON *b)
{
	struct buf out = BUF_INIT;
	const cJSON *c;

	cJSON_ArrayForEach(c, a)
		add_if_changed(&out, c->string, c, cJSON_GetObjectItemCaseSensitive(b, c->string));
	cJSON_ArrayForEach(c, b)
		if (!cJSON_GetObjectItemCaseSensitive(a, c->string))
			add_if_changed(&out, c->string, NULL, c);
	return buf_detach(&out);
}

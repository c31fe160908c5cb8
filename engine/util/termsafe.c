#include "termsafe.h"

#include <stdarg.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. Overlongs and surrogates are invalid. */
static size_t utf8_len(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t len;
	uint32_t c, min;

	if (s[0] < 0x80)
		return *cp = s[0], 1;
	if ((s[0] & 0xE0) == 0xC0)
		len = 2, c = s[0] & 0x1F, min = 0x80;
	else if ((s[0] & 0xF0) == 0xE0)
		len = 3, c = s[0] & 0x0F, min = 0x800;
	else if ((s[0] & 0xF8) == 0xF0)
		len = 4, c = s[0] & 0x07, min = 0x10000;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return len;
}

static void add_c0(struct buf *out, unsigned char c)
{
	switch (c) {
	case '\n': buf_adds(out, "\\n"); break;
	case '\r': buf_adds(out, "\\r"); break;
	case 0x1b: buf_adds(out, "\\e"); break;
	default: buf_addf(out, "\\x%02x", c); break;
	}
}

void term_escape(struct buf *out, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < len) {
		uint32_t cp;
		size_t n = utf8_len(s + i, len - i, &cp);

		if (!n) {
			buf_addf(out, "\\x%02x", s[i]);
			i++;
		} else if (cp == '\t') {
			buf_addc(out, '\t');
			i++;
		} else if (cp < 0x20) {
			add_c0(out, s[i]);
			i++;
		} else if (cp == 0x7f) {
			buf_adds(out, "\\x7f");
			i++;
		} else if (cp >= 0x80 && cp <= 0x9f) {
			buf_addf(out, "\\u%04x", (unsigned)cp);
			i += n;
		} else {
			buf_add(out, s + i, n);
			i += n;
		}
	}
}

void term_printf(FILE *f, const char *fmt, ...)
{
	struct buf raw = BUF_INIT, safe = BUF_INIT;
	int newline;
	va_list ap;

	va_start(ap, fmt);
	buf_vaddf(&raw, fmt, ap);
	va_end(ap);
	newline = raw.len && raw.data[raw.len - 1] == '\n';
	term_escape(&safe, buf_cstr(&raw), raw.len - (size_t)newline);
	if (newline)
		buf_addc(&safe, '\n');
	fputs(buf_cstr(&safe), f);
	buf_release(&raw);
	buf_release(&safe);
}

void term_json_line(struct buf *out, const char *json)
{
	for (const unsigned char *p = (const unsigned char *)json; *p; p++) {
		if (p[0] == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F) {
			buf_addf(out, "\\u%04x", p[1]);
			p++;
		} else {
			buf_addc(out, (char)*p);
		}
	}
}

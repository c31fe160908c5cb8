#include "totp.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

static int b32_value(int ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a';
	if (ch >= '2' && ch <= '7')
		return ch - '2' + 26;
	return -1;
}

int totp_base32_decode(const char *s, uint8_t *out, size_t outlen, size_t *n)
{
	uint32_t acc = 0;
	int bits = 0;

	*n = 0;
	for (; *s; s++) {
		int v;

		/* Authenticator apps show secrets in groups; padding carries nothing. */
		if (*s == ' ' || *s == '-' || *s == '=')
			continue;
		if ((v = b32_value((unsigned char)*s)) < 0)
			return -1;
		acc = (acc << 5) | (uint32_t)v;
		bits += 5;
		if (bits >= 8) {
			if (*n >= outlen)
				return -1;
			out[(*n)++] = (uint8_t)(acc >> (bits - 8));
			bits -= 8;
		}
	}
	return *n ? 0 : -1;
}

int64_t totp_step(time_t t)
{
	return (int64_t)t / TOTP_STEP_S;
}

int totp_code(const uint8_t *key, size_t keylen, int64_t step, char code[7])
{
	uint8_t msg[8], mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	uint32_t bin;
	int off;

	for (int i = 7; i >= 0; i--, step >>= 8)
		msg[i] = (uint8_t)(step & 0xff);
	if (!HMAC(EVP_sha1(), key, (int)keylen, msg, sizeof(msg), mac, &maclen) || maclen < 20)
		return -1;
	/* RFC 4226 dynamic truncation. */
	off = mac[maclen - 1] & 0x0f;
	bin = ((uint32_t)(mac[off] & 0x7f) << 24) | ((uint32_t)mac[off + 1] << 16) |
	      ((uint32_t)mac[off + 2] << 8) | mac[off + 3];
	snprintf(code, 7, "%06u", (unsigned)(bin % 1000000u));
	memset(mac, 0, sizeof(mac));
	return 0;
}

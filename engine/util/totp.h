/*
 * totp: RFC 6238 one-time codes (HMAC-SHA-1, 30 s steps, 6 digits), the
 * kind Mattermost's MFA accepts (dgoogauth, mfa.ValidateToken).
 *
 *   uint8_t key[64]; size_t n;
 *   totp_base32_decode(secret, key, sizeof(key), &n)  → 0, or -1 when not base32
 *   totp_code(key, n, totp_step(time(NULL)), code)    code: "123456"
 *   explicit_bzero(key, n)                            the caller wipes the key
 *
 * The server refuses a code whose time step it has already accepted for the
 * user, so a caller that logs in twice within 30 s must move to the next step.
 */
#ifndef MM_TOTP_H
#define MM_TOTP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define TOTP_STEP_S 30

/* RFC 4648 base32, case-insensitive; spaces, dashes and '=' padding are ignored. */
int totp_base32_decode(const char *s, uint8_t *out, size_t outlen, size_t *n);
int64_t totp_step(time_t t);
/* The 6-digit code for time step `step`; 0, or -1 when HMAC fails. */
int totp_code(const uint8_t *key, size_t keylen, int64_t step, char code[7]);

#endif

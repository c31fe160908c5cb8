/*
 * human: numbers as people read them on a terminal: 1.5 GiB, 48.2 MiB/s,
 * 1h02m. Each writes a NUL-terminated string into out (truncated to len).
 */
#ifndef MM_HUMAN_H
#define MM_HUMAN_H

#include <stddef.h>
#include <stdint.h>

/* "512 B", "1.5 KiB", "3.42 GiB" (binary units, three significant digits). */
void human_bytes(int64_t n, char *out, size_t len);
/* human_bytes + "/s". */
void human_rate(double bytes_per_s, char *out, size_t len);
/* "42s", "3m05s", "1h02m", "2d03h"; "?" when negative. */
void human_duration(int64_t seconds, char *out, size_t len);

#endif

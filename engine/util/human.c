#include "human.h"

#include <stdio.h>

void human_bytes(int64_t n, char *out, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)n;
	int u = 0;

	if (n < 1024) {
		snprintf(out, len, "%lld B", (long long)n);
		return;
	}
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	snprintf(out, len, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, units[u]);
}

void human_rate(double bytes_per_s, char *out, size_t len)
{
	char b[32];

	human_bytes(bytes_per_s < 0 ? 0 : (int64_t)bytes_per_s, b, sizeof(b));
	snprintf(out, len, "%s/s", b);
}

void human_duration(int64_t s, char *out, size_t len)
{
	if (s < 0)
		snprintf(out, len, "?");
	else if (s < 60)
		snprintf(out, len, "%llds", (long long)s);
	else if (s < 3600)
		snprintf(out, len, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
	else if (s < 86400)
		snprintf(out, len, "%lldh%02lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
	else
		snprintf(out, len, "%lldd%02lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
}

/*
 * units.c — value parsers for the configuration, and the time format they share with the
 * log. See units.h.
 */
#include <string.h>
#include <strings.h>

#include "err.h"
#include "units.h"

/* Parse the leading decimal digits of s into *v (no overflow); returns chars consumed,
 * or -1 on overflow, 0 when no digit. */
static int
digits(const char *s, uint64_t *v)
{
	int n = 0;

	*v = 0;
	while (s[n] >= '0' && s[n] <= '9') {
		unsigned d = (unsigned)(s[n] - '0');
		if (*v > (UINT64_MAX - d) / 10)
			return -1;
		*v = *v * 10 + d;
		n++;
	}
	return n;
}

struct unit {
	const char *name;
	uint64_t mult;
};

static int
scaled(const char *s, const struct unit *units, uint64_t *out)
{
	uint64_t v;
	int n = digits(s, &v);
	const struct unit *u;

	if (n < 0)
		return ERR_RANGE;
	if (n == 0)
		return ERR_INVAL;
	for (u = units; u->name; u++) {
		if (strcasecmp(s + n, u->name) != 0)
			continue;
		if (u->mult != 0 && v > UINT64_MAX / u->mult)
			return ERR_RANGE;
		*out = v * u->mult;
		return ERR_OK;
	}
	return ERR_INVAL;
}

/* see units.h */
int
units_size(const char *s, uint64_t *out)
{
	static const struct unit u[] = {
		{ "", 1 }, { "B", 1 },
		{ "KB", 1000ULL }, { "MB", 1000000ULL }, { "GB", 1000000000ULL },
		{ "TB", 1000000000000ULL },
		{ "K", 1ULL << 10 }, { "KiB", 1ULL << 10 }, { "M", 1ULL << 20 }, { "MiB", 1ULL << 20 },
		{ "G", 1ULL << 30 }, { "GiB", 1ULL << 30 }, { "T", 1ULL << 40 }, { "TiB", 1ULL << 40 },
		{ 0, 0 }
	};
	return scaled(s, u, out);
}

/* see units.h */
int
units_duration(const char *s, uint64_t *seconds)
{
	static const struct unit u[] = {
		{ "", 1 }, { "s", 1 }, { "m", 60 }, { "h", 3600 }, { "d", 86400 },
		{ "w", 604800 }, { "week", 604800 }, { "weeks", 604800 },
		{ 0, 0 }
	};
	return scaled(s, u, seconds);
}

/* see units.h */
int
units_bool(const char *s, int *out)
{
	static const char *yes[] = { "true", "yes", "on", "1" }, *no[] = { "false", "no", "off", "0" };
	unsigned i;

	for (i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return ERR_OK;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return ERR_OK;
		}
	}
	return ERR_INVAL;
}

/* see units.h */
int
units_int(const char *s, int64_t *out)
{
	int neg = s[0] == '-', n;
	uint64_t v;

	n = digits(s + neg, &v);
	if (n < 0)
		return ERR_RANGE;
	if (n == 0 || s[neg + n] != 0 || (s[neg] == '0' && n > 1) || (neg && v == 0))
		return ERR_INVAL;
	if (v > (uint64_t)INT64_MAX + (uint64_t)neg)
		return ERR_RANGE;
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return ERR_OK;
}

/* see units.h */
int64_t
units_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	/* The classic era-based algorithm: March-based years make leap days fall last. */
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* Write v as exactly n decimal digits. */
static void
put_digits(char *out, unsigned v, int n)
{
	while (n-- > 0) {
		out[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

/* see units.h — civil_from_days, the inverse of units_days_from_civil: arithmetic only
 * (no gmtime, no time zone, no lock), cheap enough for every log record. */
void
units_format_time(char out[25], int64_t ms)
{
	int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000, days, z, era, sod, y;
	unsigned doe, yoe, doy, mp, d, m;

	days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
	sod = secs - days * 86400;
	z = days + 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = (int64_t)yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;
	memcpy(out, "0000-00-00T00:00:00.000Z", 25);
	put_digits(out, (unsigned)(((y % 10000) + 10000) % 10000), 4);
	put_digits(out + 5, m, 2);
	put_digits(out + 8, d, 2);
	put_digits(out + 11, (unsigned)(sod / 3600), 2);
	put_digits(out + 14, (unsigned)(sod / 60 % 60), 2);
	put_digits(out + 17, (unsigned)(sod % 60), 2);
	put_digits(out + 20, (unsigned)(ms - secs * 1000), 3);
}

/* Exactly n digits at s into *v. */
static int
fixed(const char *s, int n, unsigned *v)
{
	int i;

	*v = 0;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		*v = *v * 10 + (unsigned)(s[i] - '0');
	}
	return 1;
}

/* see units.h */
int
units_rfc3339(const char *s, int64_t *out)
{
	static const unsigned mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	unsigned y, mo, d, h, mi, sec, oh, om;
	const char *p = s + 19;
	int64_t t;
	int leap;

	if (!fixed(s, 4, &y) || s[4] != '-' || !fixed(s + 5, 2, &mo) || s[7] != '-' ||
	    !fixed(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || !fixed(s + 11, 2, &h) ||
	    s[13] != ':' || !fixed(s + 14, 2, &mi) || s[16] != ':' || !fixed(s + 17, 2, &sec))
		return ERR_INVAL;
	leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) ||
	    h > 23 || mi > 59 || sec > 60)
		return ERR_RANGE;
	if (*p == '.') {
		if (p[1] < '0' || p[1] > '9')
			return ERR_INVAL;
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	}
	t = units_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + (sec == 60 ? 59 : sec);
	if ((*p == 'Z' || *p == 'z') && p[1] == 0) {
		*out = t;
		return ERR_OK;
	}
	if ((*p != '+' && *p != '-') || !fixed(p + 1, 2, &oh) || p[3] != ':' ||
	    !fixed(p + 4, 2, &om) || p[6] != 0)
		return ERR_INVAL;
	if (oh > 23 || om > 59)
		return ERR_RANGE;
	t += (*p == '+' ? -1 : 1) * (int64_t)(oh * 3600 + om * 60);
	*out = t;
	return ERR_OK;
}

/* t_units.c — sizes, durations, booleans, integers, RFC 3339 times: good and bad; the
 * RFC 3339 formatter the log uses. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "test.h"
#include "units.h"

/* units_format_time: known instants, then a sweep against gmtime_r (every day of 1900 to
 * 2200 at a changing time of day) and a round trip through units_rfc3339. */
static void
format_time_cases(void)
{
	static const struct {
		int64_t ms;
		const char *want;
	} known[] = {
		{ 0, "1970-01-01T00:00:00.000Z" },
		{ 1795428000123LL, "2026-11-23T10:00:00.123Z" },
		{ 1709251199999LL, "2024-02-29T23:59:59.999Z" },
		{ 951782400000LL, "2000-02-29T00:00:00.000Z" },
		{ -1, "1969-12-31T23:59:59.999Z" },
		{ 253402300799999LL, "9999-12-31T23:59:59.999Z" },
	};
	char out[25], want[96];
	int64_t ms, back, d;
	struct tm tm;
	time_t t;
	size_t i;
	int bad = 0;

	for (i = 0; i < sizeof known / sizeof known[0]; i++) {
		units_format_time(out, known[i].ms);
		CHECK_STR(out, known[i].want, known[i].want);
	}
	for (d = -25567; d < 84000 && bad < 3; d++) { /* 1900-01-01 .. 2199 */
		ms = d * 86400000 + (d * 7919 % 86400000 + 86400000) % 86400000;
		t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000); /* floor */
		gmtime_r(&t, &tm);
		snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		    (int)(ms - (int64_t)t * 1000));
		units_format_time(out, ms);
		if (strcmp(out, want) != 0 || units_rfc3339(out, &back) != ERR_OK || back != (int64_t)t) {
			if (!bad)
				fprintf(stderr, "     format_time %lld: %s, want %s\n", (long long)ms, out, want);
			bad++;
		}
	}
	CHECK_INT(bad, 0, "format_time: 110,000 days agree with gmtime_r and parse back");
}

void
t_units(void)
{
	static const struct { const char *in; int rc; uint64_t v; } sizes[] = {
		{ "512", ERR_OK, 512 }, { "64KiB", ERR_OK, 65536 }, { "1MB", ERR_OK, 1000000 },
		{ "5GiB", ERR_OK, 5ULL << 30 }, { "1kb", ERR_OK, 1000 }, { "2K", ERR_OK, 2048 },
		{ "0", ERR_OK, 0 }, { "10B", ERR_OK, 10 }, { "1TiB", ERR_OK, 1ULL << 40 },
		{ "", ERR_INVAL, 0 }, { "KiB", ERR_INVAL, 0 }, { "-1", ERR_INVAL, 0 },
		{ "1.5MB", ERR_INVAL, 0 }, { "1 MB", ERR_INVAL, 0 }, { "1MBx", ERR_INVAL, 0 },
		{ "99999999999999999999", ERR_RANGE, 0 }, { "20000000TiB", ERR_RANGE, 0 },
	};
	static const struct { const char *in; int rc; uint64_t v; } durs[] = {
		{ "30s", ERR_OK, 30 }, { "15m", ERR_OK, 900 }, { "1h", ERR_OK, 3600 },
		{ "3d", ERR_OK, 259200 }, { "1week", ERR_OK, 604800 }, { "2weeks", ERR_OK, 1209600 },
		{ "1w", ERR_OK, 604800 }, { "45", ERR_OK, 45 },
		{ "", ERR_INVAL, 0 }, { "s", ERR_INVAL, 0 }, { "1x", ERR_INVAL, 0 },
		{ "1h30m", ERR_INVAL, 0 }, { "-5s", ERR_INVAL, 0 }, { "1.5h", ERR_INVAL, 0 },
		{ "99999999999999999999d", ERR_RANGE, 0 },
	};
	static const struct { const char *in; int rc; int64_t v; } ints[] = {
		{ "0", ERR_OK, 0 }, { "42", ERR_OK, 42 }, { "-7", ERR_OK, -7 },
		{ "9223372036854775807", ERR_OK, INT64_MAX }, { "-9223372036854775808", ERR_OK, INT64_MIN },
		{ "9223372036854775808", ERR_RANGE, 0 }, { "007", ERR_INVAL, 0 }, { "-0", ERR_INVAL, 0 },
		{ "+5", ERR_INVAL, 0 }, { "5 ", ERR_INVAL, 0 }, { "", ERR_INVAL, 0 }, { "0x10", ERR_INVAL, 0 },
	};
	static const struct { const char *in; int rc; int64_t v; } times[] = {
		{ "1970-01-01T00:00:00Z", ERR_OK, 0 },
		{ "2026-11-23T10:00:00Z", ERR_OK, 1795428000 },
		{ "2026-11-23T10:00:00.123Z", ERR_OK, 1795428000 },
		{ "2026-11-23T12:00:00+02:00", ERR_OK, 1795428000 },
		{ "2026-11-23T05:30:00-04:30", ERR_OK, 1795428000 },
		{ "2024-02-29T00:00:00Z", ERR_OK, 1709164800 },
		{ "2023-02-29T00:00:00Z", ERR_RANGE, 0 }, { "2026-13-01T00:00:00Z", ERR_RANGE, 0 },
		{ "2026-11-23 10:00:00Z", ERR_INVAL, 0 }, { "2026-11-23T10:00:00", ERR_INVAL, 0 },
		{ "2026-11-23", ERR_INVAL, 0 }, { "2026-11-23T10:00:00Zjunk", ERR_INVAL, 0 },
		{ "2026-11-23T24:00:00Z", ERR_RANGE, 0 }, { "", ERR_INVAL, 0 },
		{ "2026-11-23T10:00:00.Z", ERR_INVAL, 0 }, { "2026-11-23T10:00:00+2:00", ERR_INVAL, 0 },
	};
	size_t i;
	uint64_t u;
	int64_t s;
	int b;

	for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		u = 0;
		CHECK_INT(units_size(sizes[i].in, &u), sizes[i].rc, sizes[i].in);
		if (sizes[i].rc == ERR_OK)
			CHECK_INT(u, sizes[i].v, sizes[i].in);
	}
	for (i = 0; i < sizeof durs / sizeof durs[0]; i++) {
		u = 0;
		CHECK_INT(units_duration(durs[i].in, &u), durs[i].rc, durs[i].in);
		if (durs[i].rc == ERR_OK)
			CHECK_INT(u, durs[i].v, durs[i].in);
	}
	for (i = 0; i < sizeof ints / sizeof ints[0]; i++) {
		s = 0;
		CHECK_INT(units_int(ints[i].in, &s), ints[i].rc, ints[i].in);
		if (ints[i].rc == ERR_OK)
			CHECK(s == ints[i].v, ints[i].in);
	}
	for (i = 0; i < sizeof times / sizeof times[0]; i++) {
		s = -1;
		CHECK_INT(units_rfc3339(times[i].in, &s), times[i].rc, times[i].in);
		if (times[i].rc == ERR_OK)
			CHECK_INT(s, times[i].v, times[i].in);
	}
	CHECK(units_bool("true", &b) == ERR_OK && b == 1, "bool true");
	CHECK(units_bool("No", &b) == ERR_OK && b == 0, "bool No");
	CHECK(units_bool("on", &b) == ERR_OK && b == 1, "bool on");
	CHECK(units_bool("0", &b) == ERR_OK && b == 0, "bool 0");
	CHECK_INT(units_bool("maybe", &b), ERR_INVAL, "bool maybe");
	CHECK_INT(units_bool("", &b), ERR_INVAL, "bool empty");
	format_time_cases();
}

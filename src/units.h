/*
 * units.h — parsers for the value syntaxes of the configuration (docs/configuration.md).
 *
 * All take a NUL-terminated string, accept nothing but the exact grammar (no leading
 * or trailing junk, no sign unless stated), and return ERR_OK, ERR_INVAL or ERR_RANGE.
 *   sizes      "512", "64KiB", "1MB", "5GiB": B, KB/MB/GB/TB (powers of 1000) and
 *              KiB/MiB/GiB/TiB (powers of 1024); K, M, G, T alone mean KiB, MiB, GiB, TiB.
 *   durations  "30s", "15m", "1h", "3d", "1week" (also "2weeks", "1w"); a bare number is
 *              seconds. Result in seconds.
 *   booleans   true/false, yes/no, on/off, 1/0 (ASCII case-insensitive)
 *   integers   decimal, optional leading '-', no leading zeros beyond "0", within int64
 *   times      RFC 3339 "2026-12-01T00:00:00Z", with optional fraction and a Z or ±hh:mm
 *              offset; result in seconds since the epoch (UTC)
 */
#ifndef RELAYPRO_UNITS_H
#define RELAYPRO_UNITS_H

#include <stdint.h>

int units_size(const char *s, uint64_t *out);
int units_duration(const char *s, uint64_t *seconds);
int units_bool(const char *s, int *out);
int units_int(const char *s, int64_t *out);
int units_rfc3339(const char *s, int64_t *out);

/* Days since 1970-01-01 for a proleptic Gregorian date (month 1..12). */
int64_t units_days_from_civil(int64_t y, unsigned m, unsigned d);

/* The inverse for a time: ms since the epoch as RFC 3339 UTC with milliseconds,
 * "2026-11-23T10:00:00.123Z", into out[25] (NUL-terminated). Years outside 0..9999 are
 * written modulo 10000. */
void units_format_time(char out[25], int64_t ms);

#endif

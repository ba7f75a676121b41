/*
 * limit.h — the brute-force limiter (SPEC §3.5).
 *
 * Per client IP: more than authFailLimit failed authentications within LIMIT_WINDOW_S
 * seconds bans that address for authFailBan seconds (answers 429). "Within 60 s" is a
 * sliding window with one-second resolution: each address keeps a count per second for
 * the last 60 seconds (a ring of LIMIT_WINDOW_S counters), so a burst around any boundary
 * is seen whole and old failures age out second by second. The table has a fixed
 * number of entries (LIMIT_BUCKETS x LIMIT_WAYS); a new address evicts the entry of its
 * bucket seen least recently, so a flood of addresses costs memory O(1) and can at worst
 * shorten someone's record, never grow the table.
 */
#ifndef RELAYPRO_LIMIT_H
#define RELAYPRO_LIMIT_H

#include <stdint.h>

#include "net.h"

#define LIMIT_BUCKETS 1024
#define LIMIT_WAYS 4
#define LIMIT_WINDOW_S 60

/* 1 when addr is banned at now_ms (monotonic milliseconds). */
int limit_banned(const struct net_addr *addr, int64_t now_ms);

/* Record one failure; returns 1 when this failure started a ban of ban_s seconds. */
int limit_fail(const struct net_addr *addr, int64_t now_ms, int64_t max_fails, int64_t ban_s);

/* Forget everything (tests). */
void limit_reset(void);

#endif

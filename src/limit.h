/*
 * limit.h — the brute-force limiter (docs/security.md).
 *
 * Per client IP: more than authFailLimit failed authentications within LIMIT_WINDOW_S
 * seconds bans that address for authFailBan seconds (answers 429). "Within 60 s" is a
 * sliding window with one-second resolution: each address keeps a count per second for
 * the last 60 seconds (a ring of LIMIT_WINDOW_S counters), so a burst around any boundary
 * is seen whole and old failures age out second by second.
 *
 * The table is fixed: LIMIT_BUCKETS buckets of LIMIT_WAYS entries (4096 addresses of 168
 * bytes: 672 KiB of static memory, touched only as addresses arrive), so a flood of
 * addresses costs O(1) memory and never grows it.
 * An address's bucket is SipHash-2-4 of the address under a random key drawn (rand.h) the
 * first time this process uses the table: nobody outside the process can choose addresses
 * that share a bucket. A new address takes a free entry of its bucket, else the entry seen
 * least recently among those NOT under a ban. An entry under a ban is never evicted, so
 * failures spread over many addresses cannot lift a ban. When every entry of the bucket is
 * banned, the new address's failure is not recorded (it is judged as an address with no
 * history: the relay stays available to it) and a "limit.full" warning is logged, at most
 * once a minute. Filling a bucket with bans takes LIMIT_WAYS banned addresses landing in
 * it by chance; filling the table takes about LIMIT_BUCKETS x LIMIT_WAYS of them.
 *
 * The table belongs to the event loop's thread (no locking); each worker has its own.
 */
#ifndef RELAYPRO_LIMIT_H
#define RELAYPRO_LIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "net.h"

#define LIMIT_BUCKETS 256   /* a power of two */
#define LIMIT_WAYS 16
#define LIMIT_WINDOW_S 60

/* 1 when addr is banned at now_ms (monotonic milliseconds). */
int limit_banned(const struct net_addr *addr, int64_t now_ms);

/* Record one failure; returns 1 when this failure started a ban of ban_s seconds. */
int limit_fail(const struct net_addr *addr, int64_t now_ms, int64_t max_fails, int64_t ban_s);

/* The address without its port as 16 bytes (IPv4 mapped into ::ffff:0:0/96): the key
 * this table, and pending.c's, hash. */
void limit_addr_key(const struct net_addr *a, unsigned char out[16]);

/* Forget everything and draw a new key (tests). */
void limit_reset(void);

/* SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012) of
 * data[0..len) under the 16-byte key; the 64-bit result is the little-endian reading of
 * the 8 output bytes, as in the paper's test vectors. */
uint64_t limit_siphash24(const unsigned char key[16], const void *data, size_t len);

#endif

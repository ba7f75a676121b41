/*
 * limit.c — fixed-size failure table, keyed buckets, bans never evicted. See limit.h.
 */
#include <netinet/in.h>
#include <string.h>

#include "limit.h"
#include "log.h"
#include "rand.h"
#include "secret.h"

#define FULL_WARN_MS 60000 /* at most one "limit.full" warning a minute */

struct slot {
	unsigned char ip[16];
	int used;
	int64_t banned_until, last_seen;    /* ms */
	int64_t last_s;                     /* the second cnt[] was last advanced to */
	uint16_t cnt[LIMIT_WINDOW_S];       /* failures in second s at cnt[s % 60] */
};

static struct slot table[LIMIT_BUCKETS][LIMIT_WAYS];
static unsigned char key[16];
static int keyed;
static int64_t full_warned_at;
static int full_warned;

_Static_assert((LIMIT_BUCKETS & (LIMIT_BUCKETS - 1)) == 0, "LIMIT_BUCKETS is a power of two");

/* ---- SipHash-2-4 ------------------------------------------------------------------- */

static uint64_t
rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

static uint64_t
le64(const unsigned char *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
	    (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
	    (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

/* One SipRound on the state v[0..3]. */
static void
sipround(uint64_t v[4])
{
	v[0] += v[1]; v[1] = rotl(v[1], 13); v[1] ^= v[0]; v[0] = rotl(v[0], 32);
	v[2] += v[3]; v[3] = rotl(v[3], 16); v[3] ^= v[2];
	v[0] += v[3]; v[3] = rotl(v[3], 21); v[3] ^= v[0];
	v[2] += v[1]; v[1] = rotl(v[1], 17); v[1] ^= v[2]; v[2] = rotl(v[2], 32);
}

/* see limit.h */
uint64_t
limit_siphash24(const unsigned char k[16], const void *data, size_t len)
{
	const unsigned char *in = data;
	uint64_t k0 = le64(k), k1 = le64(k + 8), m, v[4];
	size_t i, full = len - len % 8;

	/* "somepseudorandomlygeneratedbytes", as the paper initialises the state */
	v[0] = k0 ^ 0x736f6d6570736575ULL;
	v[1] = k1 ^ 0x646f72616e646f6dULL;
	v[2] = k0 ^ 0x6c7967656e657261ULL;
	v[3] = k1 ^ 0x7465646279746573ULL;
	for (i = 0; i < full; i += 8) {
		m = le64(in + i);
		v[3] ^= m;
		sipround(v);
		sipround(v);
		v[0] ^= m;
	}
	/* The last block: the 0..7 bytes left, and the length mod 256 in the top byte. */
	m = (uint64_t)(len & 0xff) << 56;
	for (i = 0; i < len % 8; i++)
		m |= (uint64_t)in[full + i] << (8 * i);
	v[3] ^= m;
	sipround(v);
	sipround(v);
	v[0] ^= m;
	v[2] ^= 0xff;
	for (i = 0; i < 4; i++)
		sipround(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* ---- the table --------------------------------------------------------------------- */

/* see limit.h */
void
limit_addr_key(const struct net_addr *a, unsigned char out[16])
{
	memset(out, 0, 16);
	if (a->ss.ss_family == AF_INET6) {
		memcpy(out, &((const struct sockaddr_in6 *)&a->ss)->sin6_addr, 16);
	} else {
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &((const struct sockaddr_in *)&a->ss)->sin_addr, 4);
	}
}

static struct slot *
bucket_of(const unsigned char ip[16])
{
	if (!keyed) {
		rand_bytes(key, sizeof key);
		keyed = 1;
	}
	return table[limit_siphash24(key, ip, 16) & (LIMIT_BUCKETS - 1)];
}

/* A bucket full of bans turned a new address away: say so, at most once a minute. */
static void
warn_full(int64_t now)
{
	struct log_rec r;

	if (full_warned && now - full_warned_at < FULL_WARN_MS)
		return;
	full_warned = 1;
	full_warned_at = now;
	if (log_begin(&r, LOG_WARN, "limit.full")) {
		log_str(&r, "reason", "every entry of a brute-force table bucket holds a banned "
		    "address: failures from a new address in it are not counted until a ban ends");
		log_int(&r, "entries", (int64_t)LIMIT_BUCKETS * LIMIT_WAYS);
		log_end(&r);
	}
}

/* The entry of ip, or with create a new one: a free entry of its bucket, else the one
 * seen least recently among those not banned at now. NULL when there is none (not found,
 * or every entry of the bucket is banned). */
static struct slot *
find(const unsigned char ip[16], int create, int64_t now)
{
	struct slot *b = bucket_of(ip), *victim = NULL;
	int i;

	for (i = 0; i < LIMIT_WAYS; i++) {
		if (b[i].used && memcmp(b[i].ip, ip, 16) == 0)
			return &b[i];
		if (!b[i].used) {
			if (victim == NULL || victim->used)
				victim = &b[i];
		} else if (b[i].banned_until <= now &&
		    (victim == NULL || (victim->used && b[i].last_seen < victim->last_seen))) {
			victim = &b[i];
		}
	}
	if (!create)
		return NULL;
	if (victim == NULL) {
		warn_full(now);
		return NULL;
	}
	memset(victim, 0, sizeof *victim);
	memcpy(victim->ip, ip, 16);
	victim->used = 1;
	victim->last_s = now / 1000;
	return victim;
}

/* see limit.h */
int
limit_banned(const struct net_addr *addr, int64_t now)
{
	unsigned char ip[16];
	struct slot *s;

	limit_addr_key(addr, ip);
	s = find(ip, 0, now);
	return s && s->banned_until > now;
}

/* see limit.h */
int
limit_fail(const struct net_addr *addr, int64_t now, int64_t max_fails, int64_t ban_s)
{
	unsigned char ip[16];
	struct slot *s;
	int64_t sec = now / 1000, t, total = 0;
	int i;

	limit_addr_key(addr, ip);
	s = find(ip, 1, now);
	if (s == NULL)
		return 0;
	s->last_seen = now;
	/* Age out the seconds that left the window (at most all 60 of them). */
	for (t = s->last_s + 1; t <= sec && t <= s->last_s + LIMIT_WINDOW_S; t++)
		s->cnt[t % LIMIT_WINDOW_S] = 0;
	if (sec > s->last_s)
		s->last_s = sec;
	if (s->cnt[sec % LIMIT_WINDOW_S] < UINT16_MAX)
		s->cnt[sec % LIMIT_WINDOW_S]++;
	for (i = 0; i < LIMIT_WINDOW_S; i++)
		total += s->cnt[i];
	if (total > max_fails && s->banned_until <= now) {
		s->banned_until = now + ban_s * 1000;
		memset(s->cnt, 0, sizeof s->cnt);
		return 1;
	}
	return 0;
}

/* see limit.h */
void
limit_reset(void)
{
	memset(table, 0, sizeof table);
	secret_wipe(key, sizeof key);
	keyed = 0;
	full_warned = 0;
	full_warned_at = 0;
}

/*
 * limit.c — fixed-size failure table. See limit.h.
 */
#include <netinet/in.h>
#include <string.h>

#include "limit.h"

struct slot {
	unsigned char ip[16];
	int used;
	int64_t banned_until, last_seen;    /* ms */
	int64_t last_s;                     /* the second cnt[] was last advanced to */
	uint16_t cnt[LIMIT_WINDOW_S];       /* failures in second s at cnt[s % 60] */
};

static struct slot table[LIMIT_BUCKETS][LIMIT_WAYS];

/* The address as 16 bytes (IPv4 mapped), without the port. */
static void
key_of(const struct net_addr *a, unsigned char out[16])
{
	memset(out, 0, 16);
	if (a->ss.ss_family == AF_INET6) {
		memcpy(out, &((const struct sockaddr_in6 *)&a->ss)->sin6_addr, 16);
	} else {
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &((const struct sockaddr_in *)&a->ss)->sin_addr, 4);
	}
}

static unsigned
bucket_of(const unsigned char ip[16])
{
	uint32_t h = 2166136261u; /* FNV-1a */
	int i;

	for (i = 0; i < 16; i++)
		h = (h ^ ip[i]) * 16777619u;
	return h % LIMIT_BUCKETS;
}

static struct slot *
find(const unsigned char ip[16], int create, int64_t now)
{
	struct slot *b = table[bucket_of(ip)], *victim = &b[0];
	int i;

	for (i = 0; i < LIMIT_WAYS; i++) {
		if (b[i].used && memcmp(b[i].ip, ip, 16) == 0)
			return &b[i];
		if (!b[i].used || (victim->used && b[i].last_seen < victim->last_seen))
			victim = &b[i];
	}
	if (!create)
		return NULL;
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

	key_of(addr, ip);
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

	key_of(addr, ip);
	s = find(ip, 1, now);
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
}

/*
 * limit.c — fixed-size failure table. See limit.h.
 */
#include <netinet/in.h>
#include <string.h>

#include "limit.h"

#define WINDOW_MS ((int64_t)LIMIT_WINDOW_S * 1000)

struct slot {
	unsigned char ip[16];
	int used;
	int64_t window_start, banned_until, last_seen; /* ms */
	int64_t cur, prev;                             /* failures this / last window */
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
	victim->window_start = now;
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
	int64_t elapsed;

	key_of(addr, ip);
	s = find(ip, 1, now);
	s->last_seen = now;
	if (now - s->window_start >= 2 * WINDOW_MS) {
		s->prev = s->cur = 0;
		s->window_start = now;
	} else if (now - s->window_start >= WINDOW_MS) {
		s->prev = s->cur;
		s->cur = 0;
		s->window_start += WINDOW_MS;
	}
	s->cur++;
	elapsed = now - s->window_start;
	/* cur + prev * (W - elapsed) / W > max, without division. */
	if (s->cur * WINDOW_MS + s->prev * (WINDOW_MS - elapsed) > max_fails * WINDOW_MS &&
	    s->banned_until <= now) {
		s->banned_until = now + ban_s * 1000;
		s->prev = s->cur = 0;
		s->window_start = now;
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

/* t_limit.c — the brute-force limiter: SipHash-2-4 known answers, ban after the limit,
 * window reset, ban expiry, other addresses unaffected, a flood of addresses keeps the
 * table bounded and never evicts a ban, a table full of bans turns newcomers away. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <unistd.h>

#include "limit.h"
#include "log.h"
#include "net.h"
#include "test.h"

static struct net_addr v4(const char *ip, unsigned port);

static struct net_addr
v4_num(uint32_t ip)
{
	struct net_addr a = v4("0.0.0.0", 1);

	((struct sockaddr_in *)&a.ss)->sin_addr.s_addr = htonl(ip);
	return a;
}

static struct net_addr
v4(const char *ip, unsigned port)
{
	struct net_addr a;
	struct sockaddr_in *s = (struct sockaddr_in *)&a.ss;

	memset(&a, 0, sizeof a);
	s->sin_family = AF_INET;
	s->sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, ip, &s->sin_addr);
	a.len = sizeof *s;
	return a;
}

/* SipHash-2-4 known answers: the reference implementation's test vectors (key 00 01 ..
 * 0f, message 00 01 .. of each length), a selection covering every tail length 0..7 and
 * one to seven whole blocks. */
static const struct {
	size_t len;
	uint64_t want;
} sip_kat[] = {
	{ 0, 0x726fdb47dd0e0e31ULL }, { 1, 0x74f839c593dc67fdULL },
	{ 2, 0x0d6c8009d9a94f5aULL }, { 3, 0x85676696d7fb7e2dULL },
	{ 4, 0xcf2794e0277187b7ULL }, { 5, 0x18765564cd99a68dULL },
	{ 6, 0xcbc9466e58fee3ceULL }, { 7, 0xab0200f58b01d137ULL },
	{ 8, 0x93f5f5799a932462ULL }, { 9, 0x9e0082df0ba9e4b0ULL },
	{ 15, 0xa129ca6149be45e5ULL }, { 16, 0x3f2acc7f57c29bdbULL },
	{ 17, 0x699ae9f52cbe4794ULL }, { 31, 0x32d892fad841c342ULL },
	{ 32, 0x7127512f72f27cceULL }, { 40, 0x0e3ea96b5304a7d0ULL },
	{ 55, 0x245731c13ca42499ULL }, { 63, 0x958a324ceb064572ULL },
};

static void
siphash_vectors(void)
{
	unsigned char key[16], msg[64], other[16];
	char name[64];
	size_t i;

	for (i = 0; i < sizeof key; i++)
		key[i] = (unsigned char)i;
	for (i = 0; i < sizeof msg; i++)
		msg[i] = (unsigned char)i;
	for (i = 0; i < sizeof sip_kat / sizeof sip_kat[0]; i++) {
		snprintf(name, sizeof name, "siphash-2-4 reference vector, %zu bytes", sip_kat[i].len);
		CHECK(limit_siphash24(key, msg, sip_kat[i].len) == sip_kat[i].want, name);
	}
	/* The key matters: one bit of it changes the result. */
	memcpy(other, key, sizeof key);
	other[15] ^= 0x80;
	CHECK(limit_siphash24(other, msg, 16) != sip_kat[11].want, "siphash: another key, another hash");
	/* Input is read only within len: a byte after it changes nothing. */
	msg[16] ^= 0xff;
	CHECK(limit_siphash24(key, msg, 16) == sip_kat[11].want, "siphash: reads len bytes only");
}

void
t_limit(void)
{
	struct net_addr a = v4("192.0.2.1", 1000), a2 = v4("192.0.2.1", 2000), b = v4("192.0.2.2", 1);
	int i, started = 0, logp[2];
	unsigned k;
	static char logbuf[65536];
	ssize_t got;

	siphash_vectors();

	/* Times in milliseconds. */
	limit_reset();
	for (i = 0; i < 20; i++)
		started |= limit_fail(&a, 100000, 20, 60);
	CHECK(!started && !limit_banned(&a, 100000), "20 failures: not banned (limit is more than 20)");
	CHECK(limit_fail(&a, 100000, 20, 60), "21st failure starts a ban");
	CHECK(limit_banned(&a, 100000), "banned");
	CHECK(limit_banned(&a2, 130000), "same address, other port: banned");
	CHECK(!limit_banned(&b, 130000), "other address unaffected");
	CHECK(limit_banned(&a, 159999), "still banned 1 ms before the ban ends");
	CHECK(!limit_banned(&a, 160000), "ban over after authFailBan");

	limit_reset();
	for (i = 0; i < 20; i++)
		limit_fail(&a, 100000, 20, 60);
	CHECK(!limit_fail(&a, 220000, 20, 60), "failures more than 60 s old are forgotten");
	CHECK(!limit_banned(&a, 220000), "not banned after the window passed");

	/* A burst across a window boundary is still a burst (limit 3): one failure at 0 s,
	 * two at 57.5 s, two at 61.5 s. At 61.5 s the one at 0 s has aged out, so the third
	 * in 60 s does not ban and the fourth does. */
	limit_reset();
	limit_fail(&a, 1000000, 3, 3);
	limit_fail(&a, 1057500, 3, 3);
	CHECK(!limit_fail(&a, 1057500, 3, 3), "3 failures in 60 s: no ban");
	CHECK(!limit_fail(&a, 1061500, 3, 3), "the failure at 0 s aged out at 61.5 s");
	CHECK(limit_fail(&a, 1061500, 3, 3), "4th failure within 60 s across the boundary bans");
	CHECK(limit_banned(&a, 1061500), "banned across the window boundary");
	CHECK(!limit_banned(&a, 1064500), "3 s ban over");

	/* A flood of 100,000 addresses that each fail once (limit 20): the table does not grow,
	 * and the banned address a keeps its ban however many addresses come after it. */
	limit_reset();
	for (i = 0; i < 21; i++)
		limit_fail(&a, 200000, 20, 60);
	CHECK(limit_banned(&a, 200000), "flood: a is banned before the flood");
	for (k = 0; k < 100000; k++) {
		struct net_addr x = v4_num(0x0a000000u + k);
		started |= limit_fail(&x, 200000 + k / 100, 20, 60);
	}
	CHECK(!started, "flood: one failure each bans none of the 100,000");
	CHECK(limit_banned(&a, 259999), "flood: a ban is never evicted by addresses that are not banned");
	CHECK(!limit_banned(&b, 200000), "flood: an innocent address is not banned by a flood");
	for (i = 0; i < 20; i++)
		started |= limit_fail(&b, 201000, 20, 60);
	CHECK(!started && limit_fail(&b, 201000, 20, 60) && limit_banned(&b, 201000),
	    "flood: a fresh address after the flood is judged normally (21st failure bans)");

	/* Every address banned: 20,000 addresses fail twice each with limit 1. The first to
	 * reach each entry are banned and keep their bans; once a bucket holds nothing but bans,
	 * a newcomer in it is not recorded (never banned, never banning anyone out). */
	limit_reset();
	if (pipe(logp) == 0)
		log_use_fd(logp[1]);
	{
		static unsigned char was_banned[20000];
		unsigned nbanned = 0, kept = 0, later = 0;

		for (k = 0; k < 20000; k++) {
			struct net_addr x = v4_num(0x0b000000u + k);
			limit_fail(&x, 300000, 1, 60);
			was_banned[k] = (unsigned char)limit_fail(&x, 300000, 1, 60);
			nbanned += was_banned[k];
		}
		for (k = 0; k < 20000; k++) {
			struct net_addr x = v4_num(0x0b000000u + k);
			if (was_banned[k])
				kept += limit_banned(&x, 300000);
			else
				later += limit_banned(&x, 300000);
		}
		CHECK_INT(nbanned, LIMIT_BUCKETS * LIMIT_WAYS, "saturation: exactly the table's entries get banned");
		CHECK_INT(kept, nbanned, "saturation: every ban is still there after 20,000 addresses");
		CHECK_INT(later, 0, "saturation: addresses turned away were not banned");
		log_use_fd(2);
		close(logp[1]);
		got = read(logp[0], logbuf, sizeof logbuf - 1);
		close(logp[0]);
		logbuf[got > 0 ? got : 0] = 0;
		CHECK(strstr(logbuf, "\"event\":\"limit.full\"") != NULL &&
		    strstr(strstr(logbuf, "limit.full") + 1, "limit.full") == NULL,
		    "saturation: one limit.full warning (at most one a minute)");
		CHECK(!limit_fail(&b, 300000, 1, 60) && !limit_fail(&b, 300000, 1, 60) &&
		    !limit_banned(&b, 300000),
		    "saturation: a newcomer in a bucket of bans is not recorded (the relay stays open to it)");
		/* Once the bans end, the entries are free for others again. */
		limit_fail(&b, 360000, 1, 60);
		CHECK(limit_fail(&b, 360000, 1, 60) && limit_banned(&b, 360000),
		    "saturation: after the bans ended a new address is recorded and banned again");
	}
}

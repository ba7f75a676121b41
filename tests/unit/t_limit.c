/* t_limit.c — the brute-force limiter: ban after the limit, window reset, ban expiry,
 * other addresses unaffected, a flood of addresses keeps the table bounded. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "limit.h"
#include "net.h"
#include "test.h"

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

void
t_limit(void)
{
	struct net_addr a = v4("192.0.2.1", 1000), a2 = v4("192.0.2.1", 2000), b = v4("192.0.2.2", 1);
	int i, started = 0;
	unsigned k;

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

	/* A flood of 100,000 addresses: the table does not grow, and each lookup still works. */
	limit_reset();
	for (k = 0; k < 100000; k++) {
		struct net_addr x = v4("10.0.0.0", 1);
		((struct sockaddr_in *)&x.ss)->sin_addr.s_addr = htonl(0x0a000000u + k);
		limit_fail(&x, 200000, 1, 60);
		limit_fail(&x, 200000, 1, 60);
	}
	{
		struct net_addr last = v4("10.0.0.0", 1);
		((struct sockaddr_in *)&last.ss)->sin_addr.s_addr = htonl(0x0a000000u + 99999);
		CHECK(limit_banned(&last, 200000), "the newest flooding address is banned");
	}
	CHECK(!limit_banned(&b, 200000), "an innocent address is not banned by a flood");
}

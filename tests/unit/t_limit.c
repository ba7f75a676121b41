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

	limit_reset();
	for (i = 0; i < 20; i++)
		started |= limit_fail(&a, 100, 20, 60);
	CHECK(!started && !limit_banned(&a, 100), "20 failures: not banned (limit is more than 20)");
	CHECK(limit_fail(&a, 100, 20, 60), "21st failure starts a ban");
	CHECK(limit_banned(&a, 100), "banned");
	CHECK(limit_banned(&a2, 130), "same address, other port: banned");
	CHECK(!limit_banned(&b, 130), "other address unaffected");
	CHECK(limit_banned(&a, 159), "still banned before the ban ends");
	CHECK(!limit_banned(&a, 160), "ban over after authFailBan");

	limit_reset();
	for (i = 0; i < 20; i++)
		limit_fail(&a, 100, 20, 60);
	CHECK(!limit_fail(&a, 161, 20, 60), "failures older than the window are forgotten");
	CHECK(!limit_banned(&a, 161), "not banned after the window reset");

	/* A flood of 100,000 addresses: the table does not grow, and each lookup still works. */
	limit_reset();
	for (k = 0; k < 100000; k++) {
		struct net_addr x = v4("10.0.0.0", 1);
		((struct sockaddr_in *)&x.ss)->sin_addr.s_addr = htonl(0x0a000000u + k);
		limit_fail(&x, 200, 1, 60);
		limit_fail(&x, 200, 1, 60);
	}
	{
		struct net_addr last = v4("10.0.0.0", 1);
		((struct sockaddr_in *)&last.ss)->sin_addr.s_addr = htonl(0x0a000000u + 99999);
		CHECK(limit_banned(&last, 200), "the newest flooding address is banned");
	}
	CHECK(!limit_banned(&b, 200), "an innocent address is not banned by a flood");
}

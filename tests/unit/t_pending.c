/*
 * t_pending.c — the pending connections' queue and per-address counts (pending.h): the
 * oldest first, removal from anywhere (and twice), counts per address across IPv4 and
 * IPv6, an address counted once, a thousand addresses sharing the table, and the total.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "pending.h"
#include "test.h"

static void
addr4(struct net_addr *a, const char *ip, unsigned port)
{
	struct sockaddr_in *s = (struct sockaddr_in *)&a->ss;

	memset(a, 0, sizeof *a);
	s->sin_family = AF_INET;
	s->sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, ip, &s->sin_addr);
	a->len = sizeof *s;
}

static void
addr6(struct net_addr *a, const char *ip)
{
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)&a->ss;

	memset(a, 0, sizeof *a);
	s->sin6_family = AF_INET6;
	inet_pton(AF_INET6, ip, &s->sin6_addr);
	a->len = sizeof *s;
}

void
t_pending(void)
{
	static struct pending_entry e[1200];
	static int owner[1200];
	struct net_addr a, b, c6;
	char ip[32];
	int i, n, bad;

	CHECK_INT(pending_init(100), ERR_OK, "init");
	CHECK(pending_oldest() == NULL && pending_total() == 0, "empty");
	memset(e, 0, sizeof e);
	addr4(&a, "10.0.0.1", 1000);
	addr4(&b, "10.0.0.2", 1000);
	addr6(&c6, "2001:db8::1");
	for (i = 0; i < 5; i++)
		pending_add(&e[i], &owner[i]);
	CHECK_INT(pending_total(), 5, "five queued");
	CHECK(pending_oldest() == &owner[0], "the oldest is the first added");
	CHECK_INT(pending_count_addr(&e[0], &a), 1, "first of address a");
	addr4(&a, "10.0.0.1", 2000); /* another port: the same address */
	CHECK_INT(pending_count_addr(&e[1], &a), 2, "second of address a (port ignored)");
	CHECK_INT(pending_count_addr(&e[2], &b), 1, "first of address b");
	CHECK_INT(pending_count_addr(&e[3], &a), 3, "third of address a");
	CHECK_INT(pending_count_addr(&e[3], &a), 3, "counted once: asking again does not add");
	CHECK_INT(pending_count_addr(&e[4], &c6), 1, "an IPv6 address apart");
	pending_remove(&e[1]);
	CHECK_INT(pending_count_addr(&e[0], &a), 2, "removed from the middle: a has two");
	CHECK_INT(pending_total(), 4, "four queued");
	pending_remove(&e[1]);
	CHECK_INT(pending_total(), 4, "removing twice changes nothing");
	pending_remove(&e[0]);
	CHECK(pending_oldest() == &owner[2], "the oldest removed: the next one is");
	pending_remove(&e[4]);
	pending_remove(&e[2]);
	pending_remove(&e[3]);
	CHECK(pending_oldest() == NULL && pending_total() == 0, "all removed: empty");

	/* A thousand addresses, two connections each, in a table sized for 100 slots (64
	 * chains minimum, so chains are shared): each address counts exactly its own. */
	memset(e, 0, sizeof e);
	for (i = 0; i < 1200; i++) {
		pending_add(&e[i], &owner[i]);
		snprintf(ip, sizeof ip, "10.%d.%d.1", (i % 600) / 256, (i % 600) % 256);
		addr4(&a, ip, (unsigned)(i + 1));
		n = pending_count_addr(&e[i], &a);
		if (n != (i < 600 ? 1 : 2))
			break;
	}
	CHECK_INT(i, 1200, "600 addresses x 2: every count right through shared chains");
	for (i = 0, bad = 0; i < 600; i++)
		pending_remove(&e[i]);
	for (i = 600; i < 1200 && !bad; i++) {
		snprintf(ip, sizeof ip, "10.%d.%d.1", (i % 600) / 256, (i % 600) % 256);
		addr4(&a, ip, 1);
		if (pending_count_addr(&e[i], &a) != 1)
			bad = 1;
	}
	CHECK(!bad && pending_total() == 600, "the first 600 removed: each address has one left");
	CHECK(pending_oldest() == &owner[600], "the oldest left is the 601st added");
	for (i = 600; i < 1200; i++)
		pending_remove(&e[i]);
	CHECK_INT(pending_total(), 0, "empty again");
}

/*
 * fuzz_proxyproto.c — fuzz target for proxyproto.c: the input is what a load balancer
 * (or anyone) sends first on a proxyProtocol listener.
 *
 * pp_parse is run on every prefix of the input (each copied into a buffer of exactly
 * that size, so a read past len is an ASan finding), the way conn.c feeds it as bytes
 * arrive. Properties: the answers are ERR_TRUNC up to one point and then never change
 * (ERR_OK with the same length and addresses, or ERR_INVAL), so a header parses the same
 * however it is split and the bytes after it are never looked at; an accepted header is
 * at most PP_MAX bytes (107 for v1) and parses alone to the same result; a refusal has a
 * reason. The input's start also goes through pp_cidr_parse / pp_cidr_match.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "proxyproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PP_FUZZ_MAX (PP_MAX + 64) /* prefixes past this change nothing */

#define PP_ASSERT(c) do { \
	if (!(c)) { \
		fprintf(stderr, "%s:%d: fuzz property failed: %s\n", __FILE__, __LINE__, #c); \
		abort(); \
	} \
} while (0)

static int
parse_exact(const uint8_t *data, size_t k, struct pp_header *h)
{
	unsigned char *b = malloc(k ? k : 1);
	int rc;

	PP_ASSERT(b != NULL);
	if (k)
		memcpy(b, data, k);
	rc = pp_parse(b, k, h);
	free(b);
	return rc;
}

static int
same_header(const struct pp_header *a, const struct pp_header *b)
{
	return a->len == b->len && a->version == b->version && a->has_addr == b->has_addr &&
	    (!a->has_addr || (a->src.len == b->src.len && a->dst.len == b->dst.len &&
	    memcmp(&a->src.ss, &b->src.ss, a->src.len) == 0 &&
	    memcmp(&a->dst.ss, &b->dst.ss, a->dst.len) == 0));
}

/* The input's start as a trustedProxies entry: when it parses, its prefix length is in
 * range and the address it names lies inside it. */
static void
cidr(const uint8_t *data, size_t size)
{
	char text[80];
	size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
	struct pp_cidr c;
	struct net_addr a;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a.ss;

	memcpy(text, data, n);
	text[n] = 0;
	if (pp_cidr_parse(text, &c) != ERR_OK)
		return;
	PP_ASSERT(c.bits <= 128);
	memset(&a, 0, sizeof a);
	s6->sin6_family = AF_INET6;
	memcpy(&s6->sin6_addr, c.ip, 16);
	a.len = sizeof *s6;
	PP_ASSERT(pp_cidr_match(&c, 1, &a) == 1);
	PP_ASSERT(pp_cidr_match(&c, 0, &a) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pp_header first, h;
	size_t n = size < PP_FUZZ_MAX ? size : PP_FUZZ_MAX, k, stop = 0;
	int rc, final = ERR_TRUNC;

	memset(&first, 0, sizeof first);
	for (k = 0; k <= n; k++) {
		rc = parse_exact(data, k, &h);
		PP_ASSERT(rc == ERR_OK || rc == ERR_TRUNC || rc == ERR_INVAL);
		if (final == ERR_TRUNC) {
			if (rc == ERR_TRUNC) {
				PP_ASSERT(k < PP_MAX); /* a header never needs more than PP_MAX bytes */
				continue;
			}
			final = rc;
			stop = k;
			first = h;
			if (rc == ERR_INVAL)
				PP_ASSERT(h.reason != NULL);
			if (rc == ERR_OK) {
				PP_ASSERT(h.len == k && h.len >= 15 && h.len <= PP_MAX);
				PP_ASSERT(h.version == 1 || h.version == 2);
				PP_ASSERT(h.version == 2 || h.len <= PP_V1_MAX);
				PP_ASSERT(!h.has_addr || h.src.ss.ss_family == h.dst.ss.ss_family);
			}
			continue;
		}
		/* After the decision, more bytes change nothing. */
		PP_ASSERT(rc == final);
		if (rc == ERR_OK)
			PP_ASSERT(same_header(&h, &first));
	}
	if (final == ERR_OK) {
		PP_ASSERT(parse_exact(data, stop, &h) == ERR_OK && same_header(&h, &first));
	}
	cidr(data, size);
	return 0;
}

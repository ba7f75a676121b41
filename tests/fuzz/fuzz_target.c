/*
 * fuzz_target.c — hosts, ports and authorities (target.c) and the allowlist check.
 *
 * Byte 0 picks the entry point; the rest is the text (not NUL-terminated: target.c
 * takes (buf, len)). Properties: a host in normal form parses to itself (same kind,
 * same address bytes); a parsed authority's host, once allowed, is allowed by
 * target_check on the port allowed with it.
 */
#include <string.h>

#include "err.h"
#include "fuzz.h"
#include "target.h"

static struct target_policy pol;

static void
host_sane(const struct target_host *h)
{
	struct target_host again;

	FUZZ_ASSERT(h->len == strlen(h->name) && h->len >= 1 && h->len <= TARGET_HOST_MAX);
	FUZZ_ASSERT(h->kind == TARGET_NAME || h->kind == TARGET_IPV4 || h->kind == TARGET_IPV6);
	FUZZ_ASSERT(target_parse_host(h->name, h->len, &again) == TARGET_OK);
	FUZZ_ASSERT(again.len == h->len && strcmp(again.name, h->name) == 0);
	FUZZ_ASSERT(again.kind == h->kind);
	if (h->kind == TARGET_IPV4)
		FUZZ_ASSERT(memcmp(again.ip, h->ip, 4) == 0);
	if (h->kind == TARGET_IPV6)
		FUZZ_ASSERT(memcmp(again.ip, h->ip, 16) == 0);
}

static void
allowed(const struct target_addr *a)
{
	memset(&pol, 0, sizeof pol);
	FUZZ_ASSERT(target_policy_add_host(&pol, a->host.name, a->host.len) == TARGET_OK);
	FUZZ_ASSERT(target_policy_add_port(&pol, a->port) == TARGET_OK);
	FUZZ_ASSERT(target_check(&pol, a->host.name, a->host.len, a->port, 0) == TARGET_OK);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s;
	size_t n;
	struct target_addr a;
	struct target_host h;
	unsigned port;
	int rc;

	if (size < 1)
		return 0;
	s = (const char *)data + 1;
	n = size - 1;
	switch (data[0] % 6) {
	case 0:
		if (target_parse_host(s, n, &h) == TARGET_OK)
			host_sane(&h);
		break;
	case 1:
		if (target_parse_port(s, n, &port) == TARGET_OK)
			FUZZ_ASSERT(port >= 1 && port <= 65535);
		break;
	case 2:
	case 3:
		rc = target_parse_authority(s, n, data[0] % 6 == 2 ? 0 : 80, &a);
		FUZZ_ASSERT(target_str(rc) != NULL);
		if (rc == TARGET_OK) {
			FUZZ_ASSERT(a.port >= 1 && a.port <= 65535);
			host_sane(&a.host);
			allowed(&a);
		}
		break;
	case 4:
		if (target_parse_console(s, n, &a) == TARGET_OK) {
			host_sane(&a.host);
			memset(&pol, 0, sizeof pol);
			FUZZ_ASSERT(target_policy_set_console(&pol, s, n) == TARGET_OK);
			/* The console host is allowed; its ports are allowedPorts like any other. */
			FUZZ_ASSERT(target_check(&pol, a.host.name, a.host.len, a.port, 0) ==
			    TARGET_FORBIDDEN_PORT);
			FUZZ_ASSERT(target_policy_add_port(&pol, a.port) == TARGET_OK);
			FUZZ_ASSERT(target_check(&pol, a.host.name, a.host.len, a.port, 0) == TARGET_OK);
		}
		break;
	default: {
		/* A policy from a comma list, then a check of the last entry's host. */
		size_t at = 0;
		memset(&pol, 0, sizeof pol);
		(void)target_policy_add_port(&pol, 443);
		while (at <= n) {
			const char *c = memchr(s + at, ',', n - at);
			size_t e = c ? (size_t)(c - s) : n;
			rc = target_policy_add_host(&pol, s + at, e - at);
			FUZZ_ASSERT(rc == TARGET_OK || rc == ERR_NOSPACE || rc <= TARGET_E_USERINFO);
			FUZZ_ASSERT(pol.nhosts <= TARGET_MAX_HOSTS);
			{
				int added = rc == TARGET_OK;
				rc = target_check(&pol, s + at, e - at, 443, 0);
				FUZZ_ASSERT(rc == TARGET_OK || rc == TARGET_FORBIDDEN_HOST);
				if (added) /* a host just allowed is allowed */
					FUZZ_ASSERT(rc == TARGET_OK);
			}
			at = e + 1;
		}
		break;
	}
	}
	return 0;
}

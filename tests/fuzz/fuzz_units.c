/*
 * fuzz_units.c — the value syntaxes of the configuration: sizes, durations, booleans,
 * integers and RFC 3339 times (units.c), listen addresses (net.c) and consoleAddress
 * splitting (register.c).
 *
 * Byte 0 picks the parser; the rest, up to its first NUL, is the value.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <string.h>

#include "err.h"
#include "fuzz.h"
#include "net.h"
#include "register.h"
#include "units.h"

static void
ok_code(int rc)
{
	FUZZ_ASSERT(rc == ERR_OK || rc == ERR_INVAL || rc == ERR_RANGE);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[512];
	size_t n;
	uint64_t u;
	int64_t i;
	int b, rc;

	if (size < 1)
		return 0;
	n = size - 1;
	if (memchr(data + 1, 0, n))
		n = (size_t)((const uint8_t *)memchr(data + 1, 0, n) - (data + 1));
	if (n >= sizeof s)
		return 0;
	memcpy(s, data + 1, n);
	s[n] = 0;

	switch (data[0] % 8) {
	case 0:
		ok_code(units_size(s, &u));
		break;
	case 1:
		ok_code(units_duration(s, &u));
		break;
	case 2:
		rc = units_bool(s, &b);
		ok_code(rc);
		if (rc == ERR_OK)
			FUZZ_ASSERT(b == 0 || b == 1);
		break;
	case 3:
		rc = units_int(s, &i);
		ok_code(rc);
		if (rc == ERR_OK && strcmp(s, "-0") != 0) {
			/* Exact grammar, no leading zeros: the number prints back as given. */
			char back[32];
			snprintf(back, sizeof back, "%" PRId64, i);
			FUZZ_ASSERT(strcmp(back, s) == 0);
		}
		break;
	case 4:
		ok_code(units_rfc3339(s, &i));
		break;
	case 5: {
		struct net_addr a;
		char text[NET_ADDR_TEXT];
		rc = net_parse_listen(s, &a);
		if (rc == ERR_OK) {
			struct net_addr again;
			const char *port = strrchr(s, ':') + 1;
			size_t k;
			/* The port is 1..65535 in digits only, no sign, space or leading zero. */
			FUZZ_ASSERT(port[0] >= '1' && port[0] <= '9');
			for (k = 1; port[k]; k++)
				FUZZ_ASSERT(port[k] >= '0' && port[k] <= '9');
			FUZZ_ASSERT(a.len <= sizeof a.ss);
			net_addr_text(&a, text, 1);
			FUZZ_ASSERT(memchr(text, 0, sizeof text) != NULL);
			/* The text form of a parsed address parses to the same address. */
			FUZZ_ASSERT(net_parse_listen(text, &again) == ERR_OK);
			FUZZ_ASSERT(again.len == a.len);
			net_addr_text(&a, text, 0);
		}
		break;
	}
	case 6: {
		char host[256], port[16];
		rc = register_split_address(s, host, sizeof host, port, sizeof port);
		if (rc == ERR_OK) {
			FUZZ_ASSERT(memchr(host, 0, sizeof host) && memchr(port, 0, sizeof port));
			FUZZ_ASSERT(strlen(host) <= n && strlen(port) >= 1);
		}
		break;
	}
	default: {
		/* days_from_civil over the whole input as numbers: no overflow, no UB. */
		int64_t y = 0;
		unsigned m = 1, d = 1;
		if (n >= 8)
			memcpy(&y, s, 8);
		y %= 100000000;
		if (n >= 9)
			m = (unsigned char)s[8] % 12 + 1;
		if (n >= 10)
			d = (unsigned char)s[9] % 31 + 1;
		(void)units_days_from_civil(y, m, d);
		break;
	}
	}
	return 0;
}

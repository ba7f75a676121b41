/* t_proxyproto.c — PROXY protocol headers (haproxy's spec, v1 and v2): a table of good and
 * hostile headers, each fed whole, one byte at a time and in odd chunks, as a reader
 * that calls pp_parse() on what it has so far would; plus bytes after a header left
 * alone, and the trustedProxies CIDR matcher. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>

#include "err.h"
#include "net.h"
#include "proxyproto.h"
#include "test.h"

#define SIG "0d0a0d0a000d0a515549540a"

struct ppcase {
	const char *name;
	const char *text;     /* the header as text (v1), or NULL */
	const char *hex;      /* the header as hex (v2), when text is NULL */
	int want;             /* ERR_OK, ERR_TRUNC or ERR_INVAL */
	size_t want_len;      /* ERR_OK: header length */
	const char *src;      /* ERR_OK: client address "ip:port", or NULL = no address */
	size_t stop;          /* ERR_INVAL: refused once this many bytes arrived (0: any) */
};

static const struct ppcase cases[] = {
	/* v1, good */
	{ "v1 TCP4", "PROXY TCP4 203.0.113.7 192.0.2.1 40001 443\r\n", NULL, ERR_OK, 44,
	  "203.0.113.7:40001", 0 },
	{ "v1 TCP6", "PROXY TCP6 2001:db8::7 2001:db8::1 40002 443\r\n", NULL, ERR_OK, 46,
	  "[2001:db8::7]:40002", 0 },
	{ "v1 TCP6 IPv4-mapped", "PROXY TCP6 ::ffff:203.0.113.9 ::1 1 2\r\n", NULL, ERR_OK, 39,
	  "[::ffff:203.0.113.9]:1", 0 },
	{ "v1 TCP4 ports 0 and 65535", "PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n", NULL,
	  ERR_OK, 44, "0.0.0.0:0", 0 },
	{ "v1 TCP6 longest addresses",
	  "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
	  " 65535 65535\r\n", NULL, ERR_OK, 104, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", 0 },
	{ "v1 UNKNOWN", "PROXY UNKNOWN\r\n", NULL, ERR_OK, 15, NULL, 0 },
	{ "v1 UNKNOWN with ignored fields", "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", NULL, ERR_OK, 35,
	  NULL, 0 },
	{ "v1 UNKNOWN of exactly 107 bytes",
	  "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
	  " 65535 65535\r\n", NULL, ERR_OK, 107, NULL, 0 },

	/* v1, hostile */
	{ "TLS ClientHello", NULL, "160301020001000200", ERR_INVAL, 0, NULL, 1 },
	{ "HTTP request", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", NULL, ERR_INVAL, 0, NULL, 1 },
	{ "CONNECT request", "CONNECT a:443 HTTP/1.1\r\n\r\n", NULL, ERR_INVAL, 0, NULL, 1 },
	{ "lower-case proxy", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", NULL, ERR_INVAL, 0, NULL, 1 },
	{ "PROXY without space", "PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n", NULL, ERR_INVAL, 0, NULL, 6 },
	{ "PROXY then CRLF", "PROXY\r\n", NULL, ERR_INVAL, 0, NULL, 6 },
	{ "PROXY with empty protocol", "PROXY \r\n", NULL, ERR_INVAL, 0, NULL, 8 },
	{ "protocol TCP5", "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", NULL, ERR_INVAL, 0, NULL, 0 },
	{ "protocol UDP4", "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", NULL, ERR_INVAL, 0, NULL, 0 },
	{ "UNKNOWNX", "PROXY UNKNOWNX\r\n", NULL, ERR_INVAL, 0, NULL, 0 },
	{ "port with a leading zero", "PROXY TCP4 1.2.3.4 5.6.7.8 080 443\r\n", NULL, ERR_INVAL, 0,
	  NULL, 0 },
	{ "destination port 65536", "PROXY TCP4 1.2.3.4 5.6.7.8 80 65536\r\n", NULL, ERR_INVAL, 0,
	  NULL, 0 },
	{ "port 999999", "PROXY TCP4 1.2.3.4 5.6.7.8 999999 1\r\n", NULL, ERR_INVAL, 0, NULL, 0 },
	{ "negative port", "PROXY TCP4 1.2.3.4 5.6.7.8 -1 443\r\n", NULL, ERR_INVAL, 0, NULL, 0 },
	{ "port with a plus sign", "PROXY TCP4 1.2.3.4 5.6.7.8 +1 443\r\n", NULL, ERR_INVAL, 0,
	  NULL, 0 },
	{ "hex port", "PROXY TCP4 1.2.3.4 5.6.7.8 0x50 443\r\n", NULL, ERR_INVAL, 0, NULL, 0 },
	{ "octet with a leading zero", "PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n", NULL, ERR_INVAL, 0,
	  NULL, 0 },
	{ "octet 256", "PROXY TCP4 256.2.3.4 5.6.7.8 1 2\r\n", NULL, ERR_INVAL, 0, NULL, 0 },
	{ "three octets", "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", NULL, ERR_INVAL, 0, NULL, 0 },
	{ "five octets", "PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n", NULL, ERR_INVAL, 0, NULL, 0 },
	{ "empty octet", "PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n", NULL, ERR_INVAL, 0, NULL, 0 },
	{ "trailing dot", "PROXY TCP4 1.2.3.4. 5.6.7.8 1 2\r\n", NULL, ERR_INVAL, 0, NULL, 0 },
	{ "decimal IPv4", "PROXY TCP4 167772165 5.6.7.8 1 2\r\n", NULL, ERR_INVAL, 0, NULL, 0 },
	{ "IPv6 under TCP4", "PROXY TCP4 2001:db8::1 5.6.7.8 1 2\r\n", NULL, ERR_INVAL, 0, NULL, 0 },
	{ "IPv4 under TCP6", "PROXY TCP6 1.2.3.4 ::1 1 2\r\n", NULL, ERR_INVAL, 0, NULL, 0 },
	{ "IPv6 with a zone", "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", NULL, ERR_INVAL, 0, NULL, 0 },
	{ "IPv6 in brackets", "PROXY TCP6 [::1] ::1 1 2\r\n", NULL, ERR_INVAL, 0, NULL, 0 },
	{ "IPv6 with three colons", "PROXY TCP6 1:::2 ::1 1 2\r\n", NULL, ERR_INVAL, 0, NULL, 0 },
	{ "double space", "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", NULL, ERR_INVAL, 0, NULL, 0 },
	{ "tab separator", "PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n", NULL, ERR_INVAL, 0, NULL, 11 },
	{ "trailing space", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", NULL, ERR_INVAL, 0, NULL, 0 },
	{ "too many fields", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", NULL, ERR_INVAL, 0, NULL, 0 },
	{ "too few fields", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", NULL, ERR_INVAL, 0, NULL, 0 },
	{ "bare LF", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", NULL, ERR_INVAL, 0, NULL, 31 },
	{ "CR without LF", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", NULL, ERR_INVAL, 0, NULL, 32 },
	{ "NUL in the line", NULL, "50524f5859205443503400", ERR_INVAL, 0, NULL, 11 },
	{ "UTF-8 in the line", "PROXY UNKNOWN \xc3\xa9\r\n", NULL, ERR_INVAL, 0, NULL, 15 },
	{ "UNKNOWN of 108 bytes",
	  "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
	  " 65535 655350\r\n", NULL, ERR_INVAL, 0, NULL, 107 },
	{ "no CRLF in 200 bytes",
	  "PROXY UNKNOWN xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", NULL, ERR_INVAL, 0, NULL, 107 },

	/* v1, truncated: a valid beginning, more bytes needed */
	{ "v1 truncated before CRLF", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2", NULL, ERR_TRUNC, 0, NULL, 0 },
	{ "v1 truncated between CR and LF", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r", NULL, ERR_TRUNC, 0,
	  NULL, 0 },
	{ "v1 signature only", "PROX", NULL, ERR_TRUNC, 0, NULL, 0 },

	/* v2, good */
	{ "v2 PROXY TCP4", NULL, SIG "2111000c" "cb007107" "c0000201" "9c41" "01bb", ERR_OK, 28,
	  "203.0.113.7:40001", 0 },
	{ "v2 PROXY TCP6", NULL, SIG "21210024" "20010db8000000000000000000000007"
	  "20010db8000000000000000000000001" "9c42" "01bb", ERR_OK, 52, "[2001:db8::7]:40002", 0 },
	{ "v2 LOCAL", NULL, SIG "20000000", ERR_OK, 16, NULL, 0 },
	{ "v2 LOCAL with an address block", NULL, SIG "2011000c" "7f000001" "7f000001" "0001" "0002",
	  ERR_OK, 28, NULL, 0 },
	{ "v2 LOCAL with an unknown family byte", NULL, SIG "20ff0000", ERR_OK, 16, NULL, 0 },
	{ "v2 PROXY UNSPEC", NULL, SIG "21000000", ERR_OK, 16, NULL, 0 },
	{ "v2 PROXY UNSPEC with a block", NULL, SIG "21000003" "aabbcc", ERR_OK, 19, NULL, 0 },
	{ "v2 PROXY TCP4 with TLVs", NULL, SIG "2111001c" "cb007107" "c0000201" "9c41" "01bb"
	  "0400050000000000" "ea0005" "0176706365", ERR_OK, 44, "203.0.113.7:40001", 0 },
	{ "v2 PROXY TCP4 with an empty TLV", NULL, SIG "2111000f" "0a000001" "0a000002" "0050" "01bb"
	  "040000", ERR_OK, 31, "10.0.0.1:80", 0 },
	{ "v2 PROXY UNIX stream", NULL, SIG "213100d8"
	  "2f746d702f736f636b000000000000000000000000000000000000000000000000000000"
	  "000000000000000000000000000000000000000000000000000000000000000000000000"
	  "000000000000000000000000000000000000000000000000000000000000000000000000"
	  "2f746d702f736f636b000000000000000000000000000000000000000000000000000000"
	  "000000000000000000000000000000000000000000000000000000000000000000000000"
	  "000000000000000000000000000000000000000000000000000000000000000000000000", ERR_OK, 232, NULL, 0 },

	/* v2, hostile */
	{ "v2 bad last signature byte", NULL, "0d0a0d0a000d0a515549540b" "2111000c", ERR_INVAL, 0,
	  NULL, 12 },
	{ "v2 bad fifth signature byte", NULL, "0d0a0d0a010d0a515549540a" "2111000c", ERR_INVAL, 0,
	  NULL, 5 },
	{ "v2 version 1", NULL, SIG "1111000c", ERR_INVAL, 0, NULL, 13 },
	{ "v2 version 3", NULL, SIG "3111000c", ERR_INVAL, 0, NULL, 13 },
	{ "v2 command 2", NULL, SIG "2211000c", ERR_INVAL, 0, NULL, 13 },
	{ "v2 command 15", NULL, SIG "2f11000c", ERR_INVAL, 0, NULL, 13 },
	{ "v2 family 4", NULL, SIG "2141000c", ERR_INVAL, 0, NULL, 14 },
	{ "v2 TCP4 with transport 3", NULL, SIG "2113000c", ERR_INVAL, 0, NULL, 14 },
	{ "v2 INET with transport UNSPEC", NULL, SIG "2110000c", ERR_INVAL, 0, NULL, 14 },
	{ "v2 UDP over IPv4", NULL, SIG "2112000c" "7f000001" "7f000001" "0001" "0002", ERR_INVAL, 0,
	  NULL, 14 },
	{ "v2 UDP over IPv6", NULL, SIG "21220024", ERR_INVAL, 0, NULL, 14 },
	{ "v2 TCP4 length 11", NULL, SIG "2111000b" "7f000001" "7f000001" "000100", ERR_INVAL, 0,
	  NULL, 16 },
	{ "v2 TCP6 length 12", NULL, SIG "2121000c" "7f000001" "7f000001" "0001" "0002", ERR_INVAL, 0,
	  NULL, 16 },
	{ "v2 UNIX length 12", NULL, SIG "2131000c", ERR_INVAL, 0, NULL, 16 },
	{ "v2 length 1009", NULL, SIG "200003f1", ERR_INVAL, 0, NULL, 16 },
	{ "v2 length 65535", NULL, SIG "2111ffff", ERR_INVAL, 0, NULL, 16 },
	{ "v2 TLV longer than the block", NULL, SIG "21110011" "0a000001" "0a000002" "0050" "01bb"
	  "040009" "aabb", ERR_INVAL, 0, NULL, 33 },
	{ "v2 two stray bytes after the addresses", NULL, SIG "2111000e" "0a000001" "0a000002" "0050"
	  "01bb" "0400", ERR_INVAL, 0, NULL, 30 },

	/* v2, truncated */
	{ "v2 truncated signature", NULL, "0d0a0d0a000d0a", ERR_TRUNC, 0, NULL, 0 },
	{ "v2 truncated fixed part", NULL, SIG "2111", ERR_TRUNC, 0, NULL, 0 },
	{ "v2 truncated addresses", NULL, SIG "2111000c" "cb007107" "c000", ERR_TRUNC, 0, NULL, 0 },
	{ "v2 truncated TLVs", NULL, SIG "2111001f" "cb007107" "c0000201" "9c41" "01bb" "040005",
	  ERR_TRUNC, 0, NULL, 0 },
	{ "nothing yet", "", NULL, ERR_TRUNC, 0, NULL, 0 },
};

/* A reader that gets the bytes in pieces (sizes cycled from pieces[]) and calls pp_parse
 * on everything so far after each, stopping at the first answer other than ERR_TRUNC.
 * *seen: bytes it had when it stopped. */
static int
feed(const unsigned char *b, size_t n, const size_t *pieces, size_t npieces,
    struct pp_header *h, size_t *seen)
{
	size_t have = 0, k = 0;
	int rc = ERR_TRUNC;

	memset(h, 0, sizeof *h);
	do {
		have += pieces[k++ % npieces];
		if (have > n)
			have = n;
		rc = pp_parse(b, have, h);
	} while (rc == ERR_TRUNC && have < n);
	*seen = have;
	return rc;
}

/* bytewise: the reader got one byte at a time, so a refusal must come at tc->stop. */
static int
outcome_ok(const struct ppcase *tc, int rc, const struct pp_header *h, size_t seen, int bytewise)
{
	char txt[NET_ADDR_TEXT];

	if (rc != tc->want)
		return 0;
	if (rc == ERR_INVAL)
		return h->reason != NULL && (!bytewise || tc->stop == 0 || seen == tc->stop);
	if (rc != ERR_OK)
		return 1;
	if (h->len != tc->want_len || seen != tc->want_len || h->version != (tc->text ? 1 : 2))
		return 0;
	if (tc->src == NULL)
		return !h->has_addr;
	if (!h->has_addr)
		return 0;
	net_addr_text(&h->src, txt, 1);
	return strcmp(txt, tc->src) == 0;
}

static void
table(void)
{
	static const size_t whole[] = { 4096 }, bytewise[] = { 1 }, odd[] = { 3, 1, 7, 2, 11, 5 };
	static const struct {
		const char *how;
		const size_t *p;
		size_t n;
	} modes[] = { { "whole", whole, 1 }, { "byte by byte", bytewise, 1 }, { "odd chunks", odd, 6 } };
	unsigned char buf[1200];
	struct pp_header h;
	char name[160];
	size_t i, m, n, seen;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct ppcase *tc = &cases[i];
		if (tc->text) {
			n = strlen(tc->text);
			memcpy(buf, tc->text, n);
		} else {
			n = t_unhex(tc->hex, buf, sizeof buf);
		}
		for (m = 0; m < sizeof modes / sizeof modes[0]; m++) {
			int rc = feed(buf, n, modes[m].p, modes[m].n, &h, &seen);
			int ok = outcome_ok(tc, rc, &h, seen, modes[m].p == bytewise);
			snprintf(name, sizeof name, "%s (%s)", tc->name, modes[m].how);
			CHECK(ok, name);
			if (!ok)
				printf("     rc %d, len %zu, seen %zu, reason %s\n", rc, h.len, seen,
				    h.reason ? h.reason : "-");
		}
	}
}

/* Bytes after the header (TLS, an HTTP head) are neither read nor judged. */
static void
after_header(void)
{
	static const char v1[] = "PROXY TCP4 198.51.100.1 192.0.2.1 5000 443\r\nGET / HTTP/1.1\r\n";
	unsigned char b[256];
	struct pp_header h;
	char txt[NET_ADDR_TEXT];
	size_t n;

	CHECK(pp_parse((const unsigned char *)v1, sizeof v1 - 1, &h) == ERR_OK && h.len == 44,
	    "v1 followed by an HTTP head: header of 44 bytes");
	n = t_unhex(SIG "2111000c" "c6336401" "c0000201" "1388" "01bb" "16030100a5010000a103",
	    b, sizeof b);
	CHECK(pp_parse(b, n, &h) == ERR_OK && h.len == 28, "v2 followed by a ClientHello: 28 bytes");
	net_addr_text(&h.dst, txt, 1);
	CHECK_STR(txt, "192.0.2.1:443", "v2 destination address and port");
	n = t_unhex(SIG "20000000" "ffffffff", b, sizeof b);
	CHECK(pp_parse(b, n, &h) == ERR_OK && h.len == 16, "v2 LOCAL followed by junk: 16 bytes");
}

static void
cidrs(void)
{
	static const struct {
		const char *cidr, *addr;
		int match;
	} m[] = {
		{ "10.0.0.0/8", "10.200.3.4", 1 },
		{ "10.0.0.0/8", "11.0.0.1", 0 },
		{ "10.0.0.0/8", "::ffff:10.1.2.3", 1 },     /* IPv4 client on a [::] listener */
		{ "10.0.0.0/8", "::ffff:11.1.2.3", 0 },
		{ "10.0.0.0/8", "::a01:203", 0 },           /* IPv4-compatible is not IPv4 */
		{ "127.0.0.1", "127.0.0.1", 1 },            /* bare address: all 32 bits */
		{ "127.0.0.1", "127.0.0.2", 0 },
		{ "127.0.0.1/32", "127.0.0.1", 1 },
		{ "192.168.1.0/25", "192.168.1.127", 1 },
		{ "192.168.1.0/25", "192.168.1.128", 0 },
		{ "192.168.1.77/24", "192.168.1.1", 1 },    /* host bits are ignored */
		{ "0.0.0.0/0", "203.0.113.1", 1 },
		{ "0.0.0.0/0", "2001:db8::1", 0 },
		{ "2001:db8::/32", "2001:db8:ffff::1", 1 },
		{ "2001:db8::/32", "2001:db9::1", 0 },
		{ "2001:db8::/33", "2001:db8:8000::1", 0 },
		{ "2001:db8::/33", "2001:db8:7fff::1", 1 },
		{ "::1", "::1", 1 },
		{ "::1/128", "::2", 0 },
		{ "::ffff:10.0.0.0/104", "10.9.9.9", 1 },   /* a mapped CIDR matches IPv4 */
		{ "::/0", "10.9.9.9", 1 },
	};
	static const char *const badc[] = { "", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/08",
		"10.0.0.0/-1", "10.0.0.0/8x", "::/129", "10.0.0", "host.example/8", "10.0.0.0 /8",
		"fe80::1%eth0/64", "10.0.0.0/+8" };
	struct pp_cidr c;
	struct net_addr a;
	char name[160];
	size_t i;

	for (i = 0; i < sizeof m / sizeof m[0]; i++) {
		int ok = pp_cidr_parse(m[i].cidr, &c) == ERR_OK;
		memset(&a, 0, sizeof a);
		if (strchr(m[i].addr, ':')) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a.ss;
			s6->sin6_family = AF_INET6;
			ok = ok && inet_pton(AF_INET6, m[i].addr, &s6->sin6_addr) == 1;
			a.len = sizeof *s6;
		} else {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&a.ss;
			s4->sin_family = AF_INET;
			ok = ok && inet_pton(AF_INET, m[i].addr, &s4->sin_addr) == 1;
			a.len = sizeof *s4;
		}
		snprintf(name, sizeof name, "%s %s %s", m[i].addr, m[i].match ? "in" : "not in", m[i].cidr);
		CHECK(ok && pp_cidr_match(&c, 1, &a) == m[i].match, name);
	}
	for (i = 0; i < sizeof badc / sizeof badc[0]; i++) {
		snprintf(name, sizeof name, "CIDR \"%s\" refused", badc[i]);
		CHECK(pp_cidr_parse(badc[i], &c) == ERR_INVAL, name);
	}
	{
		struct pp_cidr set[2];
		struct sockaddr_in *s4 = (struct sockaddr_in *)&a.ss;
		pp_cidr_parse("192.0.2.0/24", &set[0]);
		pp_cidr_parse("198.51.100.7", &set[1]);
		memset(&a, 0, sizeof a);
		s4->sin_family = AF_INET;
		inet_pton(AF_INET, "198.51.100.7", &s4->sin_addr);
		a.len = sizeof *s4;
		CHECK(pp_cidr_match(set, 2, &a), "second entry of a list matches");
		CHECK(!pp_cidr_match(set, 0, &a), "empty list matches nothing");
	}
}

void
t_proxyproto(void)
{
	table();
	after_header();
	cidrs();
}

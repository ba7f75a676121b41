/*
 * proxyproto.c — PROXY protocol v1/v2 headers and trustedProxies CIDRs. See proxyproto.h.
 *
 * The parser re-reads the buffer from its start on every call (at most PP_MAX bytes, so
 * feeding a header one byte at a time costs O(PP_MAX^2) byte looks at worst) and checks
 * every index against len before reading it. It rejects as early as the bytes allow: a
 * TLS ClientHello or an HTTP request fails on its first byte, a bad signature on the
 * first byte that differs, so a client that is not a balancer is closed at once instead
 * of at headerTimeout.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "err.h"
#include "proxyproto.h"

static const unsigned char v1_sig[6] = { 'P', 'R', 'O', 'X', 'Y', ' ' };
static const unsigned char v2_sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55,
	0x49, 0x54, 0x0a };

#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1
#define V2_TCP4 0x11
#define V2_UDP4 0x12
#define V2_TCP6 0x21
#define V2_UDP6 0x22
#define V2_UNIX_STREAM 0x31
#define V2_UNIX_DGRAM 0x32
#define V2_UNSPEC 0x00

static int
bad(struct pp_header *out, const char *why)
{
	out->reason = why;
	return ERR_INVAL;
}

static void
set_v4(struct net_addr *a, const unsigned char ip[4], unsigned port)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&a->ss;

	memset(a, 0, sizeof *a);
	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)port);
	memcpy(&s4->sin_addr, ip, 4);
	a->len = sizeof *s4;
}

static void
set_v6(struct net_addr *a, const unsigned char ip[16], unsigned port)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;

	memset(a, 0, sizeof *a);
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons((uint16_t)port);
	memcpy(&s6->sin6_addr, ip, 16);
	a->len = sizeof *s6;
}

/* ---- v1 --------------------------------------------------------------------------- */

/* Decimal 0..max in 1-5 digits, no leading zero (but "0" itself), nothing else. */
static int
dec(const unsigned char *p, size_t n, unsigned max, unsigned *out)
{
	unsigned v = 0;
	size_t i;

	if (n == 0 || n > 5 || (p[0] == '0' && n > 1))
		return ERR_INVAL;
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return ERR_INVAL;
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	if (v > max)
		return ERR_INVAL;
	*out = v;
	return ERR_OK;
}

/* Four decimal octets 0-255 separated by dots, no leading zeros. */
static int
ipv4(const unsigned char *p, size_t n, unsigned char ip[4])
{
	size_t i = 0, start;
	unsigned v;
	int k;

	for (k = 0; k < 4; k++) {
		start = i;
		while (i < n && p[i] != '.')
			i++;
		if (i - start > 3 || dec(p + start, i - start, 255, &v) != ERR_OK)
			return ERR_INVAL;
		ip[k] = (unsigned char)v;
		if (k < 3) {
			if (i >= n) /* p[i] == '.' */
				return ERR_INVAL;
			i++;
		}
	}
	return i == n ? ERR_OK : ERR_INVAL;
}

/* An IPv6 address in text (no brackets, no zone): inet_pton on a bounded copy. */
static int
ipv6(const unsigned char *p, size_t n, unsigned char ip[16])
{
	char tmp[INET6_ADDRSTRLEN];
	size_t i;

	if (n == 0 || n >= sizeof tmp)
		return ERR_INVAL;
	for (i = 0; i < n; i++) {
		unsigned char ch = p[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') ||
		    ch == ':' || ch == '.'))
			return ERR_INVAL;
	}
	memcpy(tmp, p, n);
	tmp[n] = 0;
	return inet_pton(AF_INET6, tmp, ip) == 1 ? ERR_OK : ERR_INVAL;
}

/* The fields after "PROXY ": line[0..n), without the CRLF. */
static int
v1_fields(const unsigned char *line, size_t n, struct pp_header *out)
{
	const unsigned char *f[4];
	size_t fl[4], i = 5, start;
	unsigned char sip[16], dip[16];
	unsigned sport, dport;
	int k, six;

	if (n >= 7 && memcmp(line, "UNKNOWN", 7) == 0 && (n == 7 || line[7] == ' '))
		return ERR_OK; /* the rest of the line is ignored, as the spec says */
	if (n < 5 || (memcmp(line, "TCP4 ", 5) != 0 && memcmp(line, "TCP6 ", 5) != 0))
		return bad(out, "v1: protocol is not TCP4, TCP6 or UNKNOWN");
	six = line[3] == '6';
	for (k = 0; k < 4; k++) {
		start = i;
		while (i < n && line[i] != ' ')
			i++;
		if (i == start)
			return bad(out, "v1: empty field");
		f[k] = line + start;
		fl[k] = i - start;
		if (k < 3) {
			if (i >= n)
				return bad(out, "v1: too few fields");
			i++; /* the single space */
		}
	}
	if (i != n)
		return bad(out, "v1: too many fields");
	if (six ? ipv6(f[0], fl[0], sip) != ERR_OK : ipv4(f[0], fl[0], sip) != ERR_OK)
		return bad(out, "v1: bad source address");
	if (six ? ipv6(f[1], fl[1], dip) != ERR_OK : ipv4(f[1], fl[1], dip) != ERR_OK)
		return bad(out, "v1: bad destination address");
	if (dec(f[2], fl[2], 65535, &sport) != ERR_OK)
		return bad(out, "v1: bad source port");
	if (dec(f[3], fl[3], 65535, &dport) != ERR_OK)
		return bad(out, "v1: bad destination port");
	if (six) {
		set_v6(&out->src, sip, sport);
		set_v6(&out->dst, dip, dport);
	} else {
		set_v4(&out->src, sip, sport);
		set_v4(&out->dst, dip, dport);
	}
	out->has_addr = 1;
	return ERR_OK;
}

static int
parse_v1(const unsigned char *buf, size_t len, struct pp_header *out)
{
	size_t n = len < PP_V1_MAX ? len : PP_V1_MAX, i;
	int rc;

	for (i = 0; i < sizeof v1_sig && i < n; i++)
		if (buf[i] != v1_sig[i])
			return bad(out, "not a PROXY protocol header");
	/* The line: printable ASCII up to CRLF, within PP_V1_MAX bytes. */
	for (i = 0; i < n; i++) {
		if (buf[i] == '\r') {
			if (i + 1 >= n)
				break;
			if (buf[i + 1] != '\n')
				return bad(out, "v1: CR without LF");
			rc = v1_fields(buf + sizeof v1_sig, i - sizeof v1_sig, out);
			if (rc != ERR_OK)
				return rc;
			out->len = i + 2;
			out->version = 1;
			return ERR_OK;
		}
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			return bad(out, "v1: a byte that is not printable ASCII");
	}
	if (n == PP_V1_MAX)
		return bad(out, "v1: no CRLF within 107 bytes");
	return ERR_TRUNC;
}

/* ---- v2 --------------------------------------------------------------------------- */

/* type (1), length (2, big-endian), value: exactly filling p[0..n). */
static int
tlvs_ok(const unsigned char *p, size_t n)
{
	size_t off = 0, l;

	while (off < n) {
		if (n - off < 3)
			return 0;
		l = (size_t)p[off + 1] << 8 | p[off + 2];
		if (l > n - off - 3)
			return 0;
		off += 3 + l;
	}
	return 1;
}

static int
parse_v2(const unsigned char *buf, size_t len, struct pp_header *out)
{
	size_t i, plen, need = 0;
	unsigned cmd = 0, fam = 0;

	for (i = 0; i < sizeof v2_sig && i < len; i++)
		if (buf[i] != v2_sig[i])
			return bad(out, "v2: bad signature");
	if (len > 12) {
		if (buf[12] >> 4 != 2)
			return bad(out, "v2: version is not 2");
		cmd = buf[12] & 0x0f;
		if (cmd != V2_CMD_LOCAL && cmd != V2_CMD_PROXY)
			return bad(out, "v2: command is neither LOCAL nor PROXY");
	}
	if (len > 13 && cmd == V2_CMD_PROXY) {
		/* LOCAL discards the address block, family included (spec 2.2). */
		fam = buf[13];
		switch (fam) {
		case V2_UNSPEC:
			break;
		case V2_TCP4:
			need = 12;
			break;
		case V2_TCP6:
			need = 36;
			break;
		case V2_UNIX_STREAM:
		case V2_UNIX_DGRAM:
			need = 216;
			break;
		case V2_UDP4:
		case V2_UDP6:
			return bad(out, "v2: UDP addresses on a TCP listener");
		default:
			return bad(out, "v2: unknown address family or transport");
		}
	}
	if (len < 16)
		return ERR_TRUNC;
	plen = (size_t)buf[14] << 8 | buf[15];
	if (plen > PP_V2_MAX_LEN)
		return bad(out, "v2: header longer than 1024 bytes");
	if (plen < need)
		return bad(out, "v2: length too short for the addresses");
	if (len < 16 + plen)
		return ERR_TRUNC;
	if (cmd == V2_CMD_PROXY && fam != V2_UNSPEC && !tlvs_ok(buf + 16 + need, plen - need))
		return bad(out, "v2: malformed TLV");
	if (cmd == V2_CMD_PROXY && fam == V2_TCP4) {
		set_v4(&out->src, buf + 16, (unsigned)buf[24] << 8 | buf[25]);
		set_v4(&out->dst, buf + 20, (unsigned)buf[26] << 8 | buf[27]);
		out->has_addr = 1;
	} else if (cmd == V2_CMD_PROXY && fam == V2_TCP6) {
		set_v6(&out->src, buf + 16, (unsigned)buf[48] << 8 | buf[49]);
		set_v6(&out->dst, buf + 32, (unsigned)buf[50] << 8 | buf[51]);
		out->has_addr = 1;
	}
	out->len = 16 + plen;
	out->version = 2;
	return ERR_OK;
}

/* see proxyproto.h */
int
pp_parse(const unsigned char *buf, size_t len, struct pp_header *out)
{
	memset(out, 0, sizeof *out);
	if (len == 0)
		return ERR_TRUNC;
	if (buf[0] == v1_sig[0])
		return parse_v1(buf, len, out);
	if (buf[0] == v2_sig[0])
		return parse_v2(buf, len, out);
	return bad(out, "not a PROXY protocol header");
}

/* ---- trustedProxies --------------------------------------------------------------- */

/* see proxyproto.h */
int
pp_cidr_parse(const char *text, struct pp_cidr *out)
{
	char tmp[INET6_ADDRSTRLEN];
	const char *slash = strchr(text, '/');
	size_t hl = slash ? (size_t)(slash - text) : strlen(text);
	unsigned bits, max;

	memset(out, 0, sizeof *out);
	if (hl == 0 || hl >= sizeof tmp)
		return ERR_INVAL;
	memcpy(tmp, text, hl);
	tmp[hl] = 0;
	if (inet_pton(AF_INET, tmp, out->ip + 12) == 1) {
		out->ip[10] = out->ip[11] = 0xff;
		max = 32;
	} else if (inet_pton(AF_INET6, tmp, out->ip) == 1) {
		max = 128;
	} else {
		return ERR_INVAL;
	}
	bits = max;
	if (slash && dec((const unsigned char *)slash + 1, strlen(slash + 1), max, &bits) != ERR_OK)
		return ERR_INVAL;
	out->bits = bits + (128 - max);
	return ERR_OK;
}

/* see proxyproto.h */
int
pp_cidr_match(const struct pp_cidr *set, int n, const struct net_addr *a)
{
	unsigned char ip[16];
	int k;

	memset(ip, 0, sizeof ip);
	if (a->ss.ss_family == AF_INET) {
		ip[10] = ip[11] = 0xff;
		memcpy(ip + 12, &((const struct sockaddr_in *)&a->ss)->sin_addr, 4);
	} else if (a->ss.ss_family == AF_INET6) {
		memcpy(ip, &((const struct sockaddr_in6 *)&a->ss)->sin6_addr, 16);
	} else {
		return 0;
	}
	for (k = 0; k < n; k++) {
		unsigned full = set[k].bits / 8, rest = set[k].bits % 8;
		if (memcmp(ip, set[k].ip, full) != 0)
			continue;
		if (rest && ((ip[full] ^ set[k].ip[full]) & (0xff00u >> rest) & 0xff))
			continue;
		return 1;
	}
	return 0;
}

/*
 * proxyproto.h — the PROXY protocol header an L4 load balancer puts in front of a
 * connection (haproxy's "The PROXY protocol, Versions 1 & 2"), and the trustedProxies
 * address matcher (docs/configuration.md).
 *
 * pp_parse() is a pure parser: it looks at the bytes received so far, never past len and
 * never past the header's own end, and says whether they are a whole header, the start of
 * one, or not a header at all. It keeps no state: the caller feeds the same buffer again,
 * longer, until the answer is not ERR_TRUNC, so a header split into any pieces parses the
 * same as a whole one. The caller consumes exactly out->len bytes; what follows belongs to
 * TLS or the HTTP head.
 *
 * Accepted (everything else is ERR_INVAL):
 *   v1  "PROXY TCP4 <a.b.c.d> <a.b.c.d> <sport> <dport>\r\n"
 *       "PROXY TCP6 <ipv6> <ipv6> <sport> <dport>\r\n"
 *       "PROXY UNKNOWN[ <anything printable>]\r\n"
 *       at most PP_V1_MAX (107) bytes with the CRLF; single spaces; IPv4 as four decimal
 *       octets without leading zeros; IPv6 as inet_pton reads it (no zone, no brackets);
 *       ports 0-65535 in decimal without leading zeros (sign, "080", "65536": refused).
 *   v2  the 12-byte signature, version 2, command LOCAL or PROXY, a known family/transport
 *       byte, a 16-bit length of at most PP_V2_MAX_LEN, then that many bytes: the addresses
 *       (12 bytes for TCP over IPv4, 36 for TCP over IPv6) and TLVs, which are skipped.
 *       Families UNSPEC and UNIX (and any family under LOCAL) carry no usable address.
 *       TCP addresses whose length field is too short for them are refused; UDP over a
 *       TCP listener is refused as a lie.
 *
 * Headers without a usable address (v1 UNKNOWN, v2 LOCAL, v2 UNSPEC/UNIX) are valid:
 * out->has_addr is 0 and the connection keeps the balancer's own address.
 */
#ifndef RELAYPRO_PROXYPROTO_H
#define RELAYPRO_PROXYPROTO_H

#include <stddef.h>
#include <stdint.h>

#include "net.h"

#define PP_V1_MAX 107        /* the v1 line with its CRLF, per the spec */
#define PP_V2_MAX_LEN 1008   /* v2 address + TLV bytes we accept (UNIX needs 216) */
#define PP_MAX (16 + PP_V2_MAX_LEN) /* the longest header accepted: 1024 bytes */

struct pp_header {
	size_t len;            /* ERR_OK: bytes the header takes, <= PP_MAX */
	int version;           /* 1 or 2 (ERR_OK) */
	int has_addr;          /* src and dst hold the client's and the balancer's addresses */
	struct net_addr src, dst;
	const char *reason;    /* ERR_INVAL: why, a short static English phrase for the log */
};

/* Parse buf[0..len). ERR_OK: a whole header of out->len bytes (bytes after it are not
 * looked at). ERR_TRUNC: every byte so far can start a valid header; read more (at most
 * PP_MAX bytes in all). ERR_INVAL: not a PROXY header, out->reason says why. */
int pp_parse(const unsigned char *buf, size_t len, struct pp_header *out);

/* One trustedProxies entry. Addresses are kept as 16 bytes with IPv4 as IPv4-mapped IPv6
 * (::ffff:a.b.c.d) and an IPv4 prefix length shifted by 96, so an IPv4 CIDR also matches
 * an IPv4 client seen on a dual-stack [::] listener as ::ffff:a.b.c.d, and an IPv6 CIDR
 * covering ::ffff:0:0/96 (::/0 included) matches IPv4 clients too. */
struct pp_cidr {
	unsigned char ip[16];
	unsigned bits;         /* 0-128 */
};

/* "10.0.0.0/8", "2001:db8::/32", or a bare address (all bits). Prefix lengths in decimal
 * without leading zeros, at most 32 (IPv4) or 128 (IPv6). Host bits may be set; they are
 * ignored. ERR_OK or ERR_INVAL. */
int pp_cidr_parse(const char *text, struct pp_cidr *out);

/* 1 when a (AF_INET or AF_INET6) lies inside one of set[0..n), else 0. */
int pp_cidr_match(const struct pp_cidr *set, int n, const struct net_addr *a);

#endif

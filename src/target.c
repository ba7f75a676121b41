/*
 * target.c — allowed-target parsing and matching. See target.h.
 *
 * Nothing here resolves a name. inet_pton/inet_ntop are used on IPv6 literals only:
 * both sides of such a comparison are literals, so comparing their 16 bytes compares
 * what was written, up to spelling variants of the very same IPv6 literal ("::1" and
 * "0:0::1"). IPv4 literals are accepted only in canonical dotted decimal, so comparing
 * their normal-form text is comparing their value.
 */
#include <arpa/inet.h>
#include <string.h>

#include "err.h"
#include "target.h"

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int
is_hex(int c)
{
	return is_digit(c) || (lower(c) >= 'a' && lower(c) <= 'f');
}

/* The host characters we accept: a subset of RFC 3986 reg-name (no sub-delims, no '~',
 * no '%'), the characters DNS names are made of. */
static int
is_host_char(int c)
{
	return is_digit(c) || (lower(c) >= 'a' && lower(c) <= 'z') || c == '-' || c == '.' ||
	    c == '_';
}

/* 1 if s[0..len) is canonical dotted decimal (4 parts, 0-255, no leading zeros). */
static int
ipv4_canonical(const char *s, size_t len, unsigned char ip[4])
{
	size_t i = 0, start;
	unsigned v;
	int part;

	for (part = 0; part < 4; part++) {
		if (part > 0) {
			if (i >= len || s[i] != '.')
				return 0;
			i++;
		}
		start = i;
		v = 0;
		while (i < len && i - start < 3 && is_digit(s[i]))
			v = v * 10 + (unsigned)(s[i++] - '0');
		if (i == start || v > 255 || (s[start] == '0' && i - start > 1))
			return 0;
		ip[part] = (unsigned char)v;
	}
	return i == len;
}

/* 1 if the last label of s[0..len) is a number (all digits, or 0x + hex digits): the
 * WHATWG "ends in a number" rule, under which resolvers treat the host as IPv4. */
static int
ends_in_number(const char *s, size_t len)
{
	size_t i = len;
	int hex = 0;

	while (i > 0 && s[i - 1] != '.')
		i--;
	if (i == len)
		return 0;
	if (len - i >= 2 && s[i] == '0' && lower(s[i + 1]) == 'x') {
		hex = 1;
		i += 2;
	}
	for (; i < len; i++)
		if (!(hex ? is_hex(s[i]) : is_digit(s[i])))
			return 0;
	return 1;
}

/* An IPv6 literal without brackets. */
static int
parse_v6(const char *s, size_t len, struct target_host *out)
{
	char tmp[INET6_ADDRSTRLEN];
	size_t i;

	if (len == 0)
		return TARGET_E_EMPTY_HOST;
	if (len >= sizeof tmp)
		return TARGET_E_IPV6;
	for (i = 0; i < len; i++)
		if (!is_hex(s[i]) && s[i] != ':' && s[i] != '.')
			return TARGET_E_IPV6;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	if (inet_pton(AF_INET6, tmp, out->ip) != 1 ||
	    inet_ntop(AF_INET6, out->ip, out->name, sizeof out->name) == NULL)
		return TARGET_E_IPV6;
	out->len = strlen(out->name);
	out->kind = TARGET_IPV6;
	return TARGET_OK;
}

/* Parse and normalise a host; bare6: an IPv6 literal may come without brackets. */
/* Refusals every authority and host share: empty, userinfo, percent-escapes. */
static int
precheck(const char *s, size_t len)
{
	if (len == 0)
		return TARGET_E_EMPTY_HOST;
	if (memchr(s, '@', len) != NULL)
		return TARGET_E_USERINFO;
	if (memchr(s, '%', len) != NULL)
		return TARGET_E_PERCENT;
	return TARGET_OK;
}

static int
parse_host(const char *s, size_t len, int bare6, struct target_host *out)
{
	size_t i, label = 0;
	int rc;

	memset(out, 0, sizeof *out);
	if ((rc = precheck(s, len)) != TARGET_OK)
		return rc;
	if (s[0] == '[') {
		if (len < 2 || s[len - 1] != ']')
			return TARGET_E_IPV6;
		return parse_v6(s + 1, len - 2, out);
	}
	if (bare6 && memchr(s, ':', len) != NULL)
		return parse_v6(s, len, out);
	if (s[len - 1] == '.')
		len--; /* one trailing dot: the same name */
	if (len == 0)
		return TARGET_E_EMPTY_HOST;
	if (len > TARGET_HOST_MAX)
		return TARGET_E_HOST_LONG;
	for (i = 0; i < len; i++) {
		if (!is_host_char(s[i]))
			return TARGET_E_HOST_CHARS;
		if (s[i] == '.') {
			if (label == 0)
				return TARGET_E_HOST_CHARS; /* empty label */
			label = 0;
		} else if (++label > TARGET_LABEL_MAX) {
			return TARGET_E_HOST_LONG;
		}
		out->name[i] = (char)lower(s[i]);
	}
	if (label == 0)
		return TARGET_E_HOST_CHARS; /* "name.." */
	out->len = len;
	if (ipv4_canonical(out->name, len, out->ip))
		out->kind = TARGET_IPV4;
	else if (ends_in_number(out->name, len))
		return TARGET_E_NUMERIC;
	else
		out->kind = TARGET_NAME;
	return TARGET_OK;
}

/* see target.h */
int
target_parse_host(const char *s, size_t len, struct target_host *out)
{
	int rc = parse_host(s, len, 1, out);

	if (rc != TARGET_OK)
		memset(out, 0, sizeof *out);
	return rc;
}

/* see target.h */
int
target_parse_port(const char *s, size_t len, unsigned *port)
{
	unsigned v = 0;
	size_t i;

	if (len == 0)
		return TARGET_E_NO_PORT;
	for (i = 0; i < len; i++)
		if (!is_digit(s[i]))
			return TARGET_E_PORT_CHARS;
	if (s[0] == '0')
		return len == 1 ? TARGET_E_PORT_ZERO : TARGET_E_PORT_ZEROS;
	if (len > 5)
		return TARGET_E_PORT_RANGE;
	for (i = 0; i < len; i++)
		v = v * 10 + (unsigned)(s[i] - '0');
	if (v > 65535)
		return TARGET_E_PORT_RANGE;
	*port = v;
	return TARGET_OK;
}

/* see target.h */
int
target_parse_authority(const char *s, size_t len, unsigned default_port,
    struct target_addr *out)
{
	const char *p;
	size_t hlen;
	int rc;

	memset(out, 0, sizeof *out);
	if ((rc = precheck(s, len)) != TARGET_OK)
		return rc;
	if (s[0] == '[') {
		if ((p = memchr(s, ']', len)) == NULL)
			return TARGET_E_IPV6;
		hlen = (size_t)(p - s) + 1;
		if (hlen < len && s[hlen] != ':')
			return TARGET_E_IPV6;
	} else {
		p = memchr(s, ':', len);
		hlen = p ? (size_t)(p - s) : len;
	}
	rc = parse_host(s, hlen, 0, &out->host);
	if (rc == TARGET_OK) {
		if (hlen < len)
			rc = target_parse_port(s + hlen + 1, len - hlen - 1, &out->port);
		else if (default_port == 0)
			rc = TARGET_E_NO_PORT;
		else
			out->port = default_port;
	}
	if (rc != TARGET_OK)
		memset(out, 0, sizeof *out);
	return rc;
}

/* see target.h */
int
target_parse_console(const char *s, size_t len, struct target_addr *out)
{
	return target_parse_authority(s, len, TARGET_CONSOLE_PORT, out);
}

/* see target.h */
int
target_policy_set_console(struct target_policy *p, const char *s, size_t len)
{
	struct target_addr a;
	int rc = target_parse_console(s, len, &a);

	if (rc == TARGET_OK)
		p->console = a.host;
	return rc;
}

/* see target.h */
int
target_policy_set_migration(struct target_policy *p, const char *s, size_t len,
    time_t valid_until)
{
	struct target_addr a;
	int rc = target_parse_console(s, len, &a);

	if (rc == TARGET_OK) {
		p->migration = a.host;
		p->migration_until = valid_until;
	}
	return rc;
}

/* see target.h */
int
target_policy_add_host(struct target_policy *p, const char *s, size_t len)
{
	int rc;

	if (p->nhosts >= TARGET_MAX_HOSTS)
		return ERR_NOSPACE;
	rc = target_parse_host(s, len, &p->hosts[p->nhosts]);
	if (rc == TARGET_OK)
		p->nhosts++;
	return rc;
}

/* see target.h */
int
target_policy_add_port(struct target_policy *p, unsigned port)
{
	if (port == 0)
		return TARGET_E_PORT_ZERO;
	if (port > 65535)
		return TARGET_E_PORT_RANGE;
	if (p->nports >= TARGET_MAX_PORTS)
		return ERR_NOSPACE;
	p->ports[p->nports++] = port;
	return TARGET_OK;
}

/* 1 if a and b are set and are the same written host. */
static int
host_eq(const struct target_host *a, const struct target_host *b)
{
	if (a->kind == TARGET_NONE || a->kind != b->kind)
		return 0;
	if (a->kind == TARGET_IPV6)
		return memcmp(a->ip, b->ip, sizeof a->ip) == 0;
	return a->len == b->len && memcmp(a->name, b->name, a->len) == 0;
}

/* see target.h */
int
target_check(const struct target_policy *p, const char *host, size_t hostlen,
    unsigned port, time_t now)
{
	struct target_host h;
	size_t i;
	int ok;

	if (parse_host(host, hostlen, 1, &h) != TARGET_OK)
		return TARGET_FORBIDDEN_HOST;
	ok = host_eq(&h, &p->console) ||
	    (now < p->migration_until && host_eq(&h, &p->migration));
	for (i = 0; !ok && i < p->nhosts && i < TARGET_MAX_HOSTS; i++)
		ok = host_eq(&h, &p->hosts[i]);
	if (!ok)
		return TARGET_FORBIDDEN_HOST;
	for (i = 0; i < p->nports && i < TARGET_MAX_PORTS; i++)
		if (p->ports[i] == port)
			return TARGET_OK;
	return TARGET_FORBIDDEN_PORT;
}

/* see target.h */
const char *
target_str(int code)
{
	switch (code) {
	case TARGET_OK: return "ok";
	case TARGET_FORBIDDEN_HOST: return "target host not allowed";
	case TARGET_FORBIDDEN_PORT: return "target port not allowed";
	case TARGET_E_USERINFO: return "userinfo in target";
	case TARGET_E_PERCENT: return "percent-escape in target";
	case TARGET_E_EMPTY_HOST: return "empty target host";
	case TARGET_E_NO_PORT: return "target port missing";
	case TARGET_E_PORT_ZERO: return "target port 0";
	case TARGET_E_PORT_RANGE: return "target port out of range";
	case TARGET_E_PORT_ZEROS: return "leading zeros in target port";
	case TARGET_E_PORT_CHARS: return "target port not a number";
	case TARGET_E_HOST_CHARS: return "bad character in target host";
	case TARGET_E_HOST_LONG: return "target host too long";
	case TARGET_E_IPV6: return "bad IPv6 literal";
	case TARGET_E_NUMERIC: return "IPv4 literal not in dotted-decimal form";
	default: return "bad target";
	}
}

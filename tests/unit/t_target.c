/*
 * t_target.c — target parsing and the allowlist (docs/protocol.md): tables of good and hostile
 * authorities, one assertion per case, and a matching table over one policy.
 */
#include <string.h>

#include "err.h"
#include "target.h"
#include "test.h"

/* target_parse_authority: input, default port, expected code, normal host, port. */
static const struct {
	const char *in;
	unsigned dport;
	int rc;
	const char *host;
	unsigned port;
} auth[] = {
	{ "console.example.com:443", 0, TARGET_OK, "console.example.com", 443 },
	{ "Console.EXAMPLE.com:443", 0, TARGET_OK, "console.example.com", 443 },
	{ "console.example.com.:443", 0, TARGET_OK, "console.example.com", 443 },
	{ "console.example.com..:443", 0, TARGET_E_HOST_CHARS, NULL, 0 },
	{ ".example.com:443", 0, TARGET_E_HOST_CHARS, NULL, 0 },
	{ "a..b:443", 0, TARGET_E_HOST_CHARS, NULL, 0 },
	{ "my_host-1.example:1", 0, TARGET_OK, "my_host-1.example", 1 },
	{ "h:65535", 0, TARGET_OK, "h", 65535 },
	{ "10.0.0.5:443", 0, TARGET_OK, "10.0.0.5", 443 },
	{ "10.0.0.5.:443", 0, TARGET_OK, "10.0.0.5", 443 },
	{ "0.0.0.0:80", 0, TARGET_OK, "0.0.0.0", 80 },
	{ "255.255.255.255:80", 0, TARGET_OK, "255.255.255.255", 80 },
	{ "[::1]:443", 0, TARGET_OK, "::1", 443 },
	{ "[2001:DB8:0:0::1]:443", 0, TARGET_OK, "2001:db8::1", 443 },
	{ "[::ffff:10.0.0.5]:443", 0, TARGET_OK, "::ffff:10.0.0.5", 443 },
	{ "example.com", 80, TARGET_OK, "example.com", 80 },
	{ "[::1]", 443, TARGET_OK, "::1", 443 },
	{ "example.com:8080", 80, TARGET_OK, "example.com", 8080 },
	/* hostile */
	{ "user@console.example.com:443", 0, TARGET_E_USERINFO, NULL, 0 },
	{ "user:pw@console.example.com:443", 0, TARGET_E_USERINFO, NULL, 0 },
	{ "console.example.com:443@evil.com:443", 0, TARGET_E_USERINFO, NULL, 0 },
	{ "console%2eexample.com:443", 0, TARGET_E_PERCENT, NULL, 0 },
	{ "console.example.com:%34%34%33", 0, TARGET_E_PERCENT, NULL, 0 },
	{ "[fe80::1%25eth0]:443", 0, TARGET_E_PERCENT, NULL, 0 },
	{ "", 0, TARGET_E_EMPTY_HOST, NULL, 0 },
	{ ":443", 0, TARGET_E_EMPTY_HOST, NULL, 0 },
	{ ".:443", 0, TARGET_E_EMPTY_HOST, NULL, 0 },
	{ "[]:443", 0, TARGET_E_EMPTY_HOST, NULL, 0 },
	{ "console.example.com", 0, TARGET_E_NO_PORT, NULL, 0 },
	{ "console.example.com:", 0, TARGET_E_NO_PORT, NULL, 0 },
	{ "console.example.com:", 80, TARGET_E_NO_PORT, NULL, 0 },
	{ "[::1]", 0, TARGET_E_NO_PORT, NULL, 0 },
	{ "console.example.com:0", 0, TARGET_E_PORT_ZERO, NULL, 0 },
	{ "console.example.com:65536", 0, TARGET_E_PORT_RANGE, NULL, 0 },
	{ "console.example.com:99999", 0, TARGET_E_PORT_RANGE, NULL, 0 },
	{ "console.example.com:4294967739", 0, TARGET_E_PORT_RANGE, NULL, 0 },
	{ "console.example.com:0443", 0, TARGET_E_PORT_ZEROS, NULL, 0 },
	{ "console.example.com:00", 0, TARGET_E_PORT_ZEROS, NULL, 0 },
	{ "console.example.com:+443", 0, TARGET_E_PORT_CHARS, NULL, 0 },
	{ "console.example.com:-1", 0, TARGET_E_PORT_CHARS, NULL, 0 },
	{ "console.example.com: 443", 0, TARGET_E_PORT_CHARS, NULL, 0 },
	{ "console.example.com:443 ", 0, TARGET_E_PORT_CHARS, NULL, 0 },
	{ "console.example.com:0x1bb", 0, TARGET_E_PORT_CHARS, NULL, 0 },
	{ "console.example.com:443:443", 0, TARGET_E_PORT_CHARS, NULL, 0 },
	{ "console.example.com:https", 0, TARGET_E_PORT_CHARS, NULL, 0 },
	{ "console example.com:443", 0, TARGET_E_HOST_CHARS, NULL, 0 },
	{ "console.example.com/x:443", 0, TARGET_E_HOST_CHARS, NULL, 0 },
	{ "console!.example.com:443", 0, TARGET_E_HOST_CHARS, NULL, 0 },
	{ "con\x01sole:443", 0, TARGET_E_HOST_CHARS, NULL, 0 },
	{ "consol\xc3\xa9.example:443", 0, TARGET_E_HOST_CHARS, NULL, 0 },
	{ "::1:443", 0, TARGET_E_EMPTY_HOST, NULL, 0 },
	{ "[::1:443", 0, TARGET_E_IPV6, NULL, 0 },
	{ "[::1]443", 0, TARGET_E_IPV6, NULL, 0 },
	{ "[::g]:443", 0, TARGET_E_IPV6, NULL, 0 },
	{ "[1:2:3:4:5:6:7:8:9]:443", 0, TARGET_E_IPV6, NULL, 0 },
	{ "[10.0.0.5]:443", 0, TARGET_E_IPV6, NULL, 0 },
	{ "167772165:443", 0, TARGET_E_NUMERIC, NULL, 0 },
	{ "012.0.0.5:443", 0, TARGET_E_NUMERIC, NULL, 0 },
	{ "0x0a.0.0.5:443", 0, TARGET_E_NUMERIC, NULL, 0 },
	{ "0xa000005:443", 0, TARGET_E_NUMERIC, NULL, 0 },
	{ "10.5:443", 0, TARGET_E_NUMERIC, NULL, 0 },
	{ "10.0.5:443", 0, TARGET_E_NUMERIC, NULL, 0 },
	{ "10.0.0.5.6:443", 0, TARGET_E_NUMERIC, NULL, 0 },
	{ "10.0.0.256:443", 0, TARGET_E_NUMERIC, NULL, 0 },
	{ "10.0.0.05:443", 0, TARGET_E_NUMERIC, NULL, 0 },
	{ "10.0.0.0x5:443", 0, TARGET_E_NUMERIC, NULL, 0 },
	{ "example.0x:443", 0, TARGET_E_NUMERIC, NULL, 0 },
};

/* The policy used by the matching table below. */
static const char *const allowed_hosts[] = {
	"cdn.example.net.", "10.0.0.5", "[2001:db8::1]", "fd00::7", "Upper.Example.ORG"
};
static const unsigned allowed_ports[] = { 443, 80, 4222 };
#define T_UNTIL 1000

static const struct {
	const char *host;
	unsigned port;
	time_t now;
	int rc;
} match[] = {
	{ "console.example.com", 443, 0, TARGET_OK },
	{ "console.example.com", 80, 0, TARGET_OK },
	{ "console.example.com", 4222, 0, TARGET_OK },
	{ "console.example.com", 8443, 0, TARGET_FORBIDDEN_PORT }, /* console's own port */
	{ "console.example.com", 22, 0, TARGET_FORBIDDEN_PORT },
	{ "console.example.com", 0, 0, TARGET_FORBIDDEN_PORT },
	{ "CONSOLE.Example.Com", 443, 0, TARGET_OK },
	{ "console.example.com.", 443, 0, TARGET_OK },
	{ "console.example.com..", 443, 0, TARGET_FORBIDDEN_HOST },
	{ "console.example.co", 443, 0, TARGET_FORBIDDEN_HOST },
	{ "xconsole.example.com", 443, 0, TARGET_FORBIDDEN_HOST },
	{ "sub.console.example.com", 443, 0, TARGET_FORBIDDEN_HOST },
	{ "console.example.com.evil.com", 443, 0, TARGET_FORBIDDEN_HOST },
	{ "example.com", 443, 0, TARGET_FORBIDDEN_HOST },
	{ "", 443, 0, TARGET_FORBIDDEN_HOST },
	{ "old.example.com", 443, 0, TARGET_OK },          /* migration, before */
	{ "old.example.com", 443, T_UNTIL - 1, TARGET_OK },
	{ "OLD.example.com.", 443, T_UNTIL - 1, TARGET_OK },
	{ "old.example.com", 443, T_UNTIL, TARGET_FORBIDDEN_HOST }, /* at validUntilAt */
	{ "old.example.com", 443, T_UNTIL + 1, TARGET_FORBIDDEN_HOST },
	{ "old.example.com", 22, 0, TARGET_FORBIDDEN_PORT },
	{ "cdn.example.net", 443, 0, TARGET_OK },          /* allowedHosts */
	{ "CDN.example.NET.", 80, 0, TARGET_OK },
	{ "cdn.example.net", 8080, 0, TARGET_FORBIDDEN_PORT },
	{ "upper.example.org", 443, 0, TARGET_OK },
	{ "10.0.0.5", 443, 0, TARGET_OK },                 /* configured IPv4 literal */
	{ "10.0.0.5.", 443, 0, TARGET_OK },
	{ "10.0.0.5", 22, 0, TARGET_FORBIDDEN_PORT },
	{ "167772165", 443, 0, TARGET_FORBIDDEN_HOST },    /* other spellings of it */
	{ "012.0.0.5", 443, 0, TARGET_FORBIDDEN_HOST },
	{ "0x0a.0.0.5", 443, 0, TARGET_FORBIDDEN_HOST },
	{ "0xa000005", 443, 0, TARGET_FORBIDDEN_HOST },
	{ "10.5", 443, 0, TARGET_FORBIDDEN_HOST },
	{ "10.0.5", 443, 0, TARGET_FORBIDDEN_HOST },
	{ "10.0.0.05", 443, 0, TARGET_FORBIDDEN_HOST },
	{ "::ffff:10.0.0.5", 443, 0, TARGET_FORBIDDEN_HOST },
	{ "[::ffff:10.0.0.5]", 443, 0, TARGET_FORBIDDEN_HOST },
	{ "::ffff:a00:5", 443, 0, TARGET_FORBIDDEN_HOST },
	{ "::10.0.0.5", 443, 0, TARGET_FORBIDDEN_HOST },
	{ "10.0.0.6", 443, 0, TARGET_FORBIDDEN_HOST },
	{ "[2001:db8::1]", 443, 0, TARGET_OK },            /* configured IPv6 literal */
	{ "2001:db8::1", 443, 0, TARGET_OK },
	{ "[2001:DB8:0::0:1]", 443, 0, TARGET_OK },
	{ "[2001:db8::2]", 443, 0, TARGET_FORBIDDEN_HOST },
	{ "[fd00::7]", 4222, 0, TARGET_OK },
	{ "[fd00::7]", 4223, 0, TARGET_FORBIDDEN_PORT },
	{ "[fe80::1%eth0]", 443, 0, TARGET_FORBIDDEN_HOST },
	{ "192.0.2.1", 443, 0, TARGET_FORBIDDEN_HOST },    /* console resolves to it: no */
	{ "user@console.example.com", 443, 0, TARGET_FORBIDDEN_HOST },
	{ "console%2eexample.com", 443, 0, TARGET_FORBIDDEN_HOST },
	{ "console.example.com:443", 443, 0, TARGET_FORBIDDEN_HOST },
};

static void
parse_table(void)
{
	struct target_addr a;
	size_t i;
	int rc;

	for (i = 0; i < sizeof auth / sizeof auth[0]; i++) {
		rc = target_parse_authority(auth[i].in, strlen(auth[i].in), auth[i].dport, &a);
		CHECK_INT(rc, auth[i].rc, auth[i].in);
		if (auth[i].rc != TARGET_OK || rc != TARGET_OK)
			continue;
		CHECK_STR(a.host.name, auth[i].host, auth[i].in);
		CHECK_INT(a.host.len, strlen(auth[i].host), auth[i].in);
		CHECK_INT(a.port, auth[i].port, auth[i].in);
	}
}

static void
parse_misc(void)
{
	struct target_host h;
	struct target_addr a;
	char longname[300];
	unsigned port = 7;
	int rc;

	/* length limits: 253 in normal form (254 with the trailing dot), labels 63 */
	memset(longname, 'a', sizeof longname);
	for (rc = 63; rc < 253; rc += 64)
		longname[rc] = '.';
	CHECK_INT(target_parse_host(longname, 253, &h), TARGET_OK, "host of 253");
	CHECK_INT(h.kind, TARGET_NAME, "host of 253: name");
	longname[253] = '.';
	CHECK_INT(target_parse_host(longname, 254, &h), TARGET_OK, "host of 253 + dot");
	CHECK_INT(h.len, 253, "host of 253 + dot: len");
	longname[253] = 'a';
	CHECK_INT(target_parse_host(longname, 254, &h), TARGET_E_HOST_LONG, "host of 254");
	CHECK_INT(target_parse_host(longname + 192, 64, &h), TARGET_E_HOST_LONG, "label of 64");
	CHECK_INT(target_parse_host(longname + 192, 63, &h), TARGET_OK, "label of 63");
	CHECK_INT(target_parse_host(longname, 300, &h), TARGET_E_HOST_LONG, "host of 300");
	memcpy(longname + 253, ":443", 4);
	CHECK_INT(target_parse_authority(longname, 257, 0, &a), TARGET_OK, "authority 253");
	CHECK_INT(target_parse_authority(longname, 254, 0, &a), TARGET_E_NO_PORT,
	    "authority 253 + colon");

	/* kinds and bare IPv6 for target_parse_host */
	CHECK_INT(target_parse_host("10.0.0.5", 8, &h), TARGET_OK, "ipv4 host");
	CHECK_INT(h.kind, TARGET_IPV4, "ipv4 kind");
	CHECK_MEM(h.ip, "\x0a\x00\x00\x05", 4, "ipv4 bytes");
	CHECK_INT(target_parse_host("::1", 3, &h), TARGET_OK, "bare ipv6 host");
	CHECK_INT(h.kind, TARGET_IPV6, "ipv6 kind");
	CHECK_INT(target_parse_host("[::1]", 5, &h), TARGET_OK, "bracketed ipv6 host");
	CHECK_STR(h.name, "::1", "bracketed ipv6 name");
	CHECK_INT(target_parse_host("a:b", 3, &h), TARGET_E_IPV6, "colon name");
	CHECK_INT(target_parse_host("a.b", 3, &h), TARGET_OK, "name host");
	CHECK_INT(h.kind, TARGET_NAME, "name kind");
	CHECK_INT(target_parse_host("a.b", 0, &h), TARGET_E_EMPTY_HOST, "empty host");
	CHECK_INT(h.kind, TARGET_NONE, "failed parse leaves kind none");

	/* ports alone */
	CHECK_INT(target_parse_port("1", 1, &port), TARGET_OK, "port 1");
	CHECK_INT(port, 1, "port 1 value");
	CHECK_INT(target_parse_port("65535", 5, &port), TARGET_OK, "port 65535");
	CHECK_INT(port, 65535, "port 65535 value");
	CHECK_INT(target_parse_port("", 0, &port), TARGET_E_NO_PORT, "port empty");
	CHECK_INT(target_parse_port("000443", 6, &port), TARGET_E_PORT_ZEROS, "port 000443");
	CHECK_INT(target_parse_port("100000", 6, &port), TARGET_E_PORT_RANGE, "port 100000");
	CHECK_INT(port, 65535, "failed port parse leaves port");

	/* consoleAddress */
	CHECK_INT(target_parse_console("console.example.com", 19, &a), TARGET_OK, "console");
	CHECK_INT(a.port, 443, "console default port");
	CHECK_INT(target_parse_console("Console.example.com.:8443", 25, &a), TARGET_OK,
	    "console with port");
	CHECK_STR(a.host.name, "console.example.com", "console with port: host");
	CHECK_INT(a.port, 8443, "console with port: port");
	CHECK_INT(target_parse_console("[2001:db8::1]:9443", 18, &a), TARGET_OK, "console v6");
	CHECK_INT(a.port, 9443, "console v6 port");
	CHECK_INT(target_parse_console("https://console", 15, &a), TARGET_E_PORT_CHARS,
	    "console with scheme");
	CHECK_INT(target_parse_console("console:0", 9, &a), TARGET_E_PORT_ZERO, "console port 0");
	CHECK_INT(target_parse_console("", 0, &a), TARGET_E_EMPTY_HOST, "console empty");

	/* every code has its own text */
	CHECK(strcmp(target_str(TARGET_E_USERINFO), target_str(TARGET_E_PERCENT)) != 0,
	    "target_str distinct");
	CHECK_STR(target_str(TARGET_FORBIDDEN_PORT), "target port not allowed", "target_str");
}

static struct target_policy pol; /* ~10 KiB: static, not on the stack */

static void
match_table(void)
{
	size_t i;
	int rc;

	memset(&pol, 0, sizeof pol);
	CHECK_INT(target_check(&pol, "console.example.com", 19, 443, 0), TARGET_FORBIDDEN_HOST,
	    "empty policy allows nothing");
	CHECK_INT(target_policy_set_console(&pol, "Console.Example.com:8443", 24), TARGET_OK,
	    "set console");
	CHECK_INT(target_policy_set_migration(&pol, "old.example.com.", 16, T_UNTIL), TARGET_OK,
	    "set migration");
	for (i = 0; i < sizeof allowed_hosts / sizeof allowed_hosts[0]; i++)
		CHECK_INT(target_policy_add_host(&pol, allowed_hosts[i], strlen(allowed_hosts[i])),
		    TARGET_OK, allowed_hosts[i]);
	for (i = 0; i < sizeof allowed_ports / sizeof allowed_ports[0]; i++)
		CHECK_INT(target_policy_add_port(&pol, allowed_ports[i]), TARGET_OK, "add port");
	for (i = 0; i < sizeof match / sizeof match[0]; i++) {
		rc = target_check(&pol, match[i].host, strlen(match[i].host), match[i].port,
		    match[i].now);
		CHECK_INT(rc, match[i].rc, match[i].host);
	}
	/* a normal-form name from target_parse_authority checks the same way */
	{
		struct target_addr a;
		CHECK_INT(target_parse_authority("[2001:db8:0::1]:443", 19, 0, &a), TARGET_OK,
		    "parse then check: parse");
		CHECK_INT(target_check(&pol, a.host.name, a.host.len, a.port, 0), TARGET_OK,
		    "parse then check: check");
	}

	/* config-time refusals */
	CHECK_INT(target_policy_add_host(&pol, "012.0.0.5", 9), TARGET_E_NUMERIC,
	    "allowedHosts octal");
	CHECK_INT(target_policy_add_host(&pol, "a@b", 3), TARGET_E_USERINFO, "allowedHosts @");
	CHECK_INT(target_policy_add_host(&pol, "cdn:443", 7), TARGET_E_IPV6,
	    "allowedHosts with port");
	CHECK_INT(pol.nhosts, 5, "refused hosts not added");
	CHECK_INT(target_policy_add_port(&pol, 0), TARGET_E_PORT_ZERO, "allowedPorts 0");
	CHECK_INT(target_policy_add_port(&pol, 65536), TARGET_E_PORT_RANGE, "allowedPorts 65536");
	CHECK_INT(target_policy_set_console(&pol, "user@console", 12), TARGET_E_USERINFO,
	    "console userinfo");
	CHECK_STR(pol.console.name, "console.example.com", "refused console keeps old one");
	while (pol.nhosts < TARGET_MAX_HOSTS)
		CHECK_INT(target_policy_add_host(&pol, "x.example", 9), TARGET_OK, "fill hosts");
	CHECK_INT(target_policy_add_host(&pol, "y.example", 9), ERR_NOSPACE, "hosts full");
	while (pol.nports < TARGET_MAX_PORTS)
		CHECK_INT(target_policy_add_port(&pol, 1), TARGET_OK, "fill ports");
	CHECK_INT(target_policy_add_port(&pol, 2), ERR_NOSPACE, "ports full");

	/* no migration configured: a zero time never opens anything */
	memset(&pol, 0, sizeof pol);
	target_policy_set_console(&pol, "console.example.com", 19);
	target_policy_add_port(&pol, 443);
	CHECK_INT(target_check(&pol, "old.example.com", 15, 443, -5), TARGET_FORBIDDEN_HOST,
	    "no migration");
	CHECK_INT(target_check(&pol, "console.example.com", 19, 443, 0), TARGET_OK,
	    "console only");
}

void
t_target(void)
{
	parse_table();
	parse_misc();
	match_table();
}

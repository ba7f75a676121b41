/*
 * target.h — which tunnel targets the relay may open (docs/protocol.md).
 *
 * Parsing: an authority `host:port` (a CONNECT target, a `?target=` value, the host and
 * port of an absolute-form URI, consoleAddress) becomes a struct target_addr. The host is
 * a DNS-style name, an IPv4 literal in canonical dotted decimal, or an IPv6 literal in
 * brackets. Anything else is refused with one of the TARGET_E_* codes (each means 400):
 * userinfo, percent-escapes, an empty host, a missing port, port 0, a port over 65535 or
 * with leading zeros or non-digits, characters outside [A-Za-z0-9._-], empty labels,
 * over-long hosts (> 253) or labels (> 63). A host whose last label is a number (all
 * digits, or 0x + hex) must be a canonical IPv4 literal: `167772165`, `012.0.0.5`,
 * `0x0a.0.0.5`, `10.5`, `1.2.3.4.5` are refused (TARGET_E_NUMERIC), because a resolver
 * would read them as IP addresses that the written string does not show.
 *
 * Normal form: ASCII lowercase, one trailing dot removed, IPv6 without brackets in
 * inet_ntop's canonical text. Matching compares these written forms (IPv6 by its 16
 * bytes), never resolved addresses: a name never equals an IP literal, and an IPv4
 * literal never equals an IPv6 one (`::ffff:10.0.0.5` is not `10.0.0.5`).
 *
 * Codes: 0 is OK; the codes below are negative and distinct from err.h's. target_check
 * returns only TARGET_OK / TARGET_FORBIDDEN_HOST / TARGET_FORBIDDEN_PORT (403); the
 * parsers return only TARGET_OK or TARGET_E_* (400). No allocation; the policy is a
 * fixed-size struct the caller owns (about 10 KiB).
 */
#ifndef RELAYPRO_TARGET_H
#define RELAYPRO_TARGET_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define TARGET_HOST_MAX 253  /* longest host, in normal form */
#define TARGET_LABEL_MAX 63  /* longest dot-separated label */
#define TARGET_MAX_HOSTS 32  /* allowedHosts entries */
#define TARGET_MAX_PORTS 32  /* allowedPorts entries */
#define TARGET_CONSOLE_PORT 443

enum {
	TARGET_OK = 0,
	TARGET_FORBIDDEN_HOST = -30,  /* 403: host is not an allowed target */
	TARGET_FORBIDDEN_PORT = -31,  /* 403: host allowed, port is not */
	TARGET_E_USERINFO = -40,      /* '@' in the authority */
	TARGET_E_PERCENT = -41,       /* '%' anywhere (percent-escape, IPv6 zone id) */
	TARGET_E_EMPTY_HOST = -42,
	TARGET_E_NO_PORT = -43,       /* port missing or empty where one is required */
	TARGET_E_PORT_ZERO = -44,
	TARGET_E_PORT_RANGE = -45,    /* > 65535 */
	TARGET_E_PORT_ZEROS = -46,    /* leading zeros ("0443") */
	TARGET_E_PORT_CHARS = -47,    /* not only digits */
	TARGET_E_HOST_CHARS = -48,    /* bad character or empty label */
	TARGET_E_HOST_LONG = -49,     /* host > 253 or a label > 63 */
	TARGET_E_IPV6 = -50,          /* bad bracketed literal */
	TARGET_E_NUMERIC = -51        /* numeric host that is not canonical dotted IPv4 */
};

enum { TARGET_NONE = 0, TARGET_NAME, TARGET_IPV4, TARGET_IPV6 };

/* A host in normal form. kind TARGET_NONE means "unset". */
struct target_host {
	char name[TARGET_HOST_MAX + 1]; /* normal form, NUL-terminated */
	size_t len;                     /* strlen(name) */
	int kind;                       /* TARGET_NAME, TARGET_IPV4, TARGET_IPV6 */
	unsigned char ip[16];           /* IPV4: ip[0..4), IPV6: ip[0..16) */
};

struct target_addr {
	struct target_host host;
	unsigned port; /* 1..65535 */
};

/* What may be reached. Zero-initialised: nothing. Filled by config (see the setters). */
struct target_policy {
	struct target_host console;         /* host of consoleAddress */
	struct target_host migration;       /* host of migration.consoleAddress, or unset */
	time_t migration_until;             /* migration host allowed while now < this */
	struct target_host hosts[TARGET_MAX_HOSTS]; /* allowedHosts */
	size_t nhosts;
	unsigned ports[TARGET_MAX_PORTS];   /* allowedPorts */
	size_t nports;
};

/* Parse a host alone (allowedHosts entry, or a host to check): a name, a canonical IPv4
 * literal, or an IPv6 literal with or without brackets. TARGET_OK or TARGET_E_*. */
int target_parse_host(const char *s, size_t len, struct target_host *out);

/* Parse a port: 1..65535, digits only, no leading zeros. TARGET_OK or TARGET_E_*. */
int target_parse_port(const char *s, size_t len, unsigned *port);

/* Parse an authority `host:port`, `[v6]:port`; when default_port is non-zero the
 * `:port` part may be absent (absolute-form: 80; consoleAddress: 443), when it is 0 the
 * port is required (CONNECT, ?target=). IPv6 must be bracketed here. TARGET_OK or
 * TARGET_E_*. */
int target_parse_authority(const char *s, size_t len, unsigned default_port,
    struct target_addr *out);

/* Parse a consoleAddress value: `host` or `host:port`, port 443 by default. */
int target_parse_console(const char *s, size_t len, struct target_addr *out);

/* Setters for config. set_console / set_migration take a consoleAddress value (the port
 * is ignored for matching); add_host an allowedHosts entry; add_port an allowedPorts
 * entry (1..65535). TARGET_OK, TARGET_E_* for a bad value, ERR_NOSPACE (err.h)
 * when a list is full. */
int target_policy_set_console(struct target_policy *p, const char *s, size_t len);
int target_policy_set_migration(struct target_policy *p, const char *s, size_t len,
    time_t valid_until);
int target_policy_add_host(struct target_policy *p, const char *s, size_t len);
int target_policy_add_port(struct target_policy *p, unsigned port);

/* May the relay open host:port at time now? host is as parsed (raw or normal form;
 * it is normalised again here, IPv6 with or without brackets). Returns TARGET_OK,
 * TARGET_FORBIDDEN_HOST (also for a host that does not parse) or TARGET_FORBIDDEN_PORT
 * (the host is allowed, the port is not). */
int target_check(const struct target_policy *p, const char *host, size_t hostlen,
    unsigned port, time_t now);

/* A short English text for a TARGET_* code, for logs and JSON messages. */
const char *target_str(int code);

#endif

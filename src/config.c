/*
 * config.c — defaults, INI file, AIR_* and RELAYPRO_* environment. See config.h.
 *
 * One table (keys[]) describes every key: section, name, type, where it lives in struct
 * config, its limits and whether it is a secret. The file reader, the environment
 * overlay, validation and config_dump all walk that table, so a key is added in one place.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <ini.h>

#include "config.h"
#include "err.h"
#include "net.h"
#include "priv_user.h"
#include "secret.h"
#include "target.h"
#include "units.h"

extern char **environ;

enum ktype {
	K_STR,     /* plain string */
	K_PATH,    /* file path, resolved against cfg->dir */
	K_PEM,     /* inline PEM or a path */
	K_INT,     /* integer within [min, max] */
	K_BOOL,
	K_SIZE,    /* bytes within [min, max] */
	K_DUR,     /* seconds within [max(min,1), max] */
	K_LIST,    /* comma-separated strings */
	K_HOSTS,   /* comma-separated host names / IP literals */
	K_PORTS,   /* comma-separated ports */
	K_CIDRS,   /* comma-separated CIDRs */
	K_TIME,    /* RFC 3339 */
	K_WORKERS, /* "auto" or 1..max */
	K_KEYTYPE, /* "ec" or "rsa" */
	K_CABITS,  /* 2048, 3072, 4096 */
	K_UUID,    /* 8-4-4-4-12 hex */
	K_LISTEN,  /* "ip:port", "[ip6]:port"; "" disables */
	K_ADDR,    /* "host" or "host:port" */
	K_USER     /* NAME, UID:GID or root (priv.h) */
};

#define F_SECRET 1u

struct key {
	const char *section;
	const char *name;
	enum ktype type;
	size_t off;
	size_t size;
	int64_t min, max;
	unsigned flags;
};

#define O(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)
#define DAY 86400
static const struct key keys[] = {
	{ "", "consoleAddress", K_ADDR, O(console_address), 0, 0, 0 },
	{ "", "registeredTo", K_STR, O(registered_to), 0, 0, 0 },
	{ "", "organizationId", K_INT, O(organization_id), 0, INT64_MAX, 0 },
	{ "", "relayProId", K_UUID, O(relay_pro_id), 0, 0, 0 },
	{ "", "relayId", K_INT, O(relay_id), 0, INT64_MAX, 0 },
	{ "", "securityToken", K_STR, O(security_token), 0, 0, F_SECRET },
	{ "", "consoleCACert", K_PEM, O(console_ca_cert), 0, 0, 0 },
	{ "", "proxyEnabled", K_BOOL, O(proxy_enabled), 0, 0, 0 },
	{ "", "debugLogging", K_BOOL, O(debug_logging), 0, 0, 0 },
	{ "", "deploymentToken", K_STR, O(deployment_token), 0, 0, F_SECRET },
	{ "", "serverName", K_STR, O(server_name), 0, 0, 0 },
	{ "", "serverAltNames", K_HOSTS, O(server_alt_names), 0, 0, 0 },
	{ "", "serverKeyType", K_KEYTYPE, O(server_key_type), 0, 0, 0 },
	{ "", "privateFolder", K_PATH, O(private_folder), 0, 0, 0 },
	{ "", "passwordFile", K_PATH, O(password_file), 0, 0, 0 },
	{ "", "allowedHosts", K_HOSTS, O(allowed_hosts), 0, 0, 0 },
	{ "", "allowedPorts", K_PORTS, O(allowed_ports), 0, 0, 0 },
	{ "", "allowedUdpPorts", K_PORTS, O(allowed_udp_ports), 0, 0, 0 },
	{ "", "caKeyBits", K_CABITS, O(ca_key_bits), 0, 0, 0 },
	{ "", "workers", K_WORKERS, O(workers), 1, 64, 0 },
	{ "", "proxyProtocol", K_BOOL, O(proxy_protocol), 0, 0, 0 },
	{ "", "trustedProxies", K_CIDRS, O(trusted_proxies), 0, 0, 0 },
	{ "", "user", K_USER, O(user), 0, 0, 0 },
	{ "", "certFile", K_PATH, O(cert_file), 0, 0, 0 },
	{ "", "keyFile", K_PATH, O(key_file), 0, 0, 0 },
	{ "httpsProxy", "listen", K_LISTEN, O(https_listen), 0, 0, 0 },
	{ "httpProxy", "listen", K_LISTEN, O(http_listen), 0, 0, 0 },
	{ "admin", "listen", K_LISTEN, O(admin_listen), 0, 0, 0 },
	{ "clientAuthToken", "duration", K_DUR, O(token_duration), 1, DAY, 0 },
	{ "clientAuthToken", "epoch", K_INT, O(token_epoch), 0, UINT32_MAX, 0 },
	{ "migration", "consoleAddress", K_ADDR, O(migration_console_address), 0, 0, 0 },
	{ "migration", "validUntilAt", K_TIME, O(migration_valid_until), 0, 0, 0 },
	{ "logger", "fileName", K_PATH, O(log_file), 0, 0, 0 },
	{ "logger", "maxSize", K_SIZE, O(log_max_size), 1024, INT64_MAX, 0 },
	{ "logger", "maxAge", K_DUR, O(log_max_age), 1, 3650LL * DAY, 0 },
	{ "logger", "maxBackups", K_INT, O(log_max_backups), 0, 1000, 0 },
	{ "logger", "noCompress", K_BOOL, O(log_no_compress), 0, 0, 0 },
	{ "limits", "maxConnections", K_INT, O(max_connections), 1, 1000000, 0 },
	{ "limits", "maxPendingPerAddress", K_INT, O(max_pending_per_address), 1, 1000000, 0 },
	{ "limits", "maxHeaderBytes", K_SIZE, O(max_header_bytes), 1024, 65536, 0 },
	{ "limits", "headerTimeout", K_DUR, O(header_timeout), 1, 3600, 0 },
	{ "limits", "connectTimeout", K_DUR, O(connect_timeout), 1, 3600, 0 },
	{ "limits", "idleTimeout", K_DUR, O(idle_timeout), 1, 30LL * DAY, 0 },
	{ "limits", "shutdownTimeout", K_DUR, O(shutdown_timeout), 1, DAY, 0 },
	{ "limits", "clockSkew", K_DUR, O(clock_skew), 1, 3600, 0 },
	{ "limits", "authFailLimit", K_INT, O(auth_fail_limit), 1, 1000000, 0 },
	{ "limits", "authFailBan", K_DUR, O(auth_fail_ban), 1, DAY, 0 },
};
#undef O
#define NKEYS (sizeof keys / sizeof keys[0])

/* Extra RELAYPRO_* variables that are not keys (docs/configuration.md). */
static const char *const env_alias[][2] = {
	{ "RELAYPRO_HTTPS_LISTEN", "RELAYPRO_HTTPS_PROXY_LISTEN" },
	{ "RELAYPRO_HTTP_LISTEN", "RELAYPRO_HTTP_PROXY_LISTEN" },
};
static const char *const env_other[] = {
	"RELAYPRO_CONFIG", "RELAYPRO_CA_BUNDLE_FILE", "RELAYPRO_CONSOLE_CA_FILE",
	"RELAYPRO_LOGGER_CONF",
	"RELAYPRO_PROXY_CA_FILE",    /* extra trust anchors for an https:// upstream proxy */
	"RELAYPRO_UPGRADE_READY_FD", /* set by a running relay for the binary replacing it */
	"RELAYPRO_WORKER",           /* set by the supervisor for its workers */
	"RELAYPRO_POLL_BACKEND",     /* the loop's readiness backend: poll or epoll (pollset.h) */
};

/* Install-time variables that seed keys (docs/configuration.md): lower precedence than the file. */
static const char *const air_vars[][2] = {
	{ "AIR_CONSOLE_ADDRESS", "consoleAddress" },
	{ "AIR_ORGANIZATION_ID", "organizationId" },
	{ "AIR_DEPLOYMENT_TOKEN", "deploymentToken" },
};

/* Where each key's value came from, for error messages. */
enum origin { FROM_DEFAULT, FROM_AIR, FROM_FILE, FROM_REG, FROM_LOGGER_CONF, FROM_ENV };

struct loader {
	struct config *cfg;
	char *err;
	size_t errlen;
	int failed;
	enum origin origin[NKEYS];
	int line[NKEYS];
	char envname[NKEYS][64];
	/* inih reading state */
	const char *src;        /* the file being read: the config file or registration.ini */
	enum origin src_origin; /* FROM_FILE or FROM_REG */
	const char *text;
	size_t textlen, pos;
	int lineno;
};

static void
fail(struct loader *ld, const char *fmt, ...)
{
	va_list ap;

	if (ld->failed)
		return; /* the first error is the one reported */
	ld->failed = 1;
	va_start(ap, fmt);
	vsnprintf(ld->err, ld->errlen, fmt, ap);
	va_end(ap);
}

/* The place a key was set, as "FILE:LINE: section.key" or "environment VAR". */
static void
place(const struct loader *ld, size_t k, char *out, size_t cap)
{
	char full[96];

	snprintf(full, sizeof full, "%s%s%s", keys[k].section, *keys[k].section ? "." : "",
	    keys[k].name);
	switch (ld->origin[k]) {
	case FROM_FILE:
		snprintf(out, cap, "%s:%d: %s", ld->cfg->file, ld->line[k], full);
		break;
	case FROM_REG:
		snprintf(out, cap, "%s:%d: %s", ld->cfg->reg_file, ld->line[k], full);
		break;
	case FROM_ENV:
		snprintf(out, cap, "environment %s: %s", ld->envname[k], full);
		break;
	case FROM_LOGGER_CONF:
		snprintf(out, cap, "environment RELAYPRO_LOGGER_CONF: %s", full);
		break;
	case FROM_AIR:
		snprintf(out, cap, "environment %s: %s", ld->envname[k], full);
		break;
	default:
		snprintf(out, cap, "%s: %s", *ld->cfg->file ? ld->cfg->file : "environment", full);
	}
}

/* see config.h */
void
config_env_name(char *out, size_t cap, const char *section, const char *key)
{
	size_t o = 0;
	int part;

	if (cap == 0)
		return;
	o = (size_t)snprintf(out, cap, "RELAYPRO_");
	for (part = 0; part < 2; part++) {
		const char *s = part == 0 ? section : key;
		size_t i, n = strlen(s);
		if (n == 0)
			continue;
		if (part == 1 && *section && o + 1 < cap)
			out[o++] = '_';
		for (i = 0; i < n && o + 2 < cap; i++) {
			int up = isupper((unsigned char)s[i]);
			/* A word starts at an upper-case letter after a lower-case one or a digit, or
			 * at the last capital of an acronym followed by lower case: CACert -> CA_CERT. */
			if (i > 0 && up &&
			    (islower((unsigned char)s[i - 1]) || isdigit((unsigned char)s[i - 1]) ||
			    (isupper((unsigned char)s[i - 1]) && i + 1 < n && islower((unsigned char)s[i + 1]))))
				out[o++] = '_';
			out[o++] = (char)toupper((unsigned char)s[i]);
		}
	}
	out[o < cap ? o : cap - 1] = 0;
}

static int
has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* Resolve a relative path against dir into out. */
static int
resolve_path(const char *dir, const char *v, char *out, size_t cap)
{
	int n;

	if (v[0] == '/' || strcmp(v, "-") == 0 || v[0] == 0 || dir[0] == 0)
		n = snprintf(out, cap, "%s", v);
	else
		n = snprintf(out, cap, "%s/%s", dir, v);
	return n >= 0 && (size_t)n < cap ? ERR_OK : ERR_NOSPACE;
}

/* Host, port and address syntax are target.c's and net.c's: the configuration accepts
 * exactly what the relay will match and bind. */
static int
host_ok(const char *h, size_t n)
{
	struct target_host tmp;

	return target_parse_host(h, n, &tmp) == TARGET_OK;
}

/* The count that goes with a K_PORTS field (allowedPorts, allowedUdpPorts). */
static int *
ports_count(struct config *cfg, const uint16_t *ports)
{
	return ports == cfg->allowed_udp_ports ? &cfg->n_allowed_udp_ports : &cfg->n_allowed_ports;
}

static int
port_ok(const char *p, size_t n, uint16_t *out)
{
	unsigned v;

	if (target_parse_port(p, n, &v) != TARGET_OK)
		return 0;
	if (out)
		*out = (uint16_t)v;
	return 1;
}

static int
cidr_ok(const char *v)
{
	char tmp[64];
	unsigned char bin[16];
	const char *slash = strchr(v, '/');
	size_t hl = slash ? (size_t)(slash - v) : strlen(v);
	int af, maxbits;
	int64_t bits;

	if (hl == 0 || hl >= sizeof tmp)
		return 0;
	memcpy(tmp, v, hl);
	tmp[hl] = 0;
	if (inet_pton(AF_INET, tmp, bin) == 1) {
		af = AF_INET;
		maxbits = 32;
	} else if (inet_pton(AF_INET6, tmp, bin) == 1) {
		af = AF_INET6;
		maxbits = 128;
	} else {
		return 0;
	}
	(void)af;
	if (slash == NULL)
		return 1;
	return units_int(slash + 1, &bits) == ERR_OK && bits >= 0 && bits <= maxbits;
}

static int
uuid_ok(const char *v)
{
	size_t i;

	if (strlen(v) != 36)
		return 0;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (v[i] != '-')
				return 0;
		} else if (!isxdigit((unsigned char)v[i])) {
			return 0;
		}
	}
	return 1;
}

/* Split a comma list into trimmed items; each passes check (NULL: any non-empty). */
static int
split_list(const char *v, struct cfg_list *out, int (*check)(const char *), const char **why)
{
	const char *p = v;

	out->n = 0;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		const char *s = p;

		while (n && isspace((unsigned char)*s)) {
			s++;
			n--;
		}
		while (n && isspace((unsigned char)s[n - 1]))
			n--;
		if (n == 0) {
			*why = "empty list entry";
			return ERR_INVAL;
		}
		if (out->n == CFG_LIST_MAX) {
			*why = "too many entries (at most 32)";
			return ERR_RANGE;
		}
		if (n >= CFG_STR) {
			*why = "entry too long";
			return ERR_RANGE;
		}
		memcpy(out->item[out->n], s, n);
		out->item[out->n][n] = 0;
		if (check && !check(out->item[out->n])) {
			*why = "invalid entry";
			return ERR_INVAL;
		}
		out->n++;
		if (!e)
			break;
		p = e + 1;
		if (*p == 0) {
			*why = "empty list entry";
			return ERR_INVAL;
		}
	}
	return ERR_OK;
}

static int
host_item_ok(const char *s)
{
	return host_ok(s, strlen(s));
}

/* Parse value v for key k into cfg. Returns ERR_OK or sets *why. */
static int
set_value(struct loader *ld, size_t k, const char *v, const char **why)
{
	const struct key *key = &keys[k];
	char *field = (char *)ld->cfg + key->off;
	struct target_addr addr;
	struct net_addr listen;
	int64_t i;
	uint64_t u;
	int b, rc;

	if (has_ctl(v)) {
		*why = "control characters are not allowed";
		return ERR_INVAL;
	}
	switch (key->type) {
	case K_STR:
	case K_UUID:
	case K_KEYTYPE:
	case K_ADDR:
	case K_LISTEN:
		if (strlen(v) >= key->size) {
			*why = "value too long";
			return ERR_RANGE;
		}
		if (key->type == K_UUID && *v && !uuid_ok(v)) {
			*why = "not a UUID (8-4-4-4-12 hexadecimal digits)";
			return ERR_INVAL;
		}
		if (key->type == K_KEYTYPE && strcmp(v, "ec") != 0 && strcmp(v, "rsa") != 0) {
			*why = "must be ec or rsa";
			return ERR_INVAL;
		}
		if (key->type == K_ADDR && *v && target_parse_console(v, strlen(v), &addr) != TARGET_OK) {
			*why = "must be host or host:port (port 1-65535)";
			return ERR_INVAL;
		}
		if (key->type == K_LISTEN && *v && net_parse_listen(v, &listen) != ERR_OK) {
			*why = "must be IP:port or [IPv6]:port (port 1-65535)";
			return ERR_INVAL;
		}
		strcpy(field, v);
		return ERR_OK;
	case K_USER: {
		struct priv_user pu;
		if (*v && priv_parse(v, &pu, why) < 0)
			return ERR_INVAL;
		if (strlen(v) >= key->size) {
			*why = "value too long";
			return ERR_RANGE;
		}
		strcpy(field, v);
		return ERR_OK;
	}
	case K_PEM:
		if (strstr(v, "-----BEGIN") == NULL) {
			rc = resolve_path(ld->cfg->dir, v, field, key->size);
		} else {
			rc = strlen(v) < key->size ? ERR_OK : ERR_NOSPACE;
			if (rc == ERR_OK)
				strcpy(field, v);
		}
		if (rc != ERR_OK)
			*why = "value too long";
		return rc;
	case K_PATH:
		if (resolve_path(ld->cfg->dir, v, field, key->size) != ERR_OK) {
			*why = "path too long";
			return ERR_RANGE;
		}
		return ERR_OK;
	case K_INT:
		rc = units_int(v, &i);
		if (rc != ERR_OK || i < key->min || i > key->max) {
			*why = rc == ERR_INVAL ? "not an integer" : "out of range";
			return rc == ERR_INVAL ? ERR_INVAL : ERR_RANGE;
		}
		*(int64_t *)(void *)field = i;
		return ERR_OK;
	case K_CABITS:
		if (units_int(v, &i) != ERR_OK || (i != 2048 && i != 3072 && i != 4096)) {
			*why = "must be 2048, 3072 or 4096";
			return ERR_INVAL;
		}
		*(int64_t *)(void *)field = i;
		return ERR_OK;
	case K_WORKERS:
		if (strcasecmp(v, "auto") == 0) {
			*(int64_t *)(void *)field = 0;
			return ERR_OK;
		}
		if (units_int(v, &i) != ERR_OK || i < key->min || i > key->max) {
			*why = "must be auto or 1-64";
			return ERR_INVAL;
		}
		*(int64_t *)(void *)field = i;
		return ERR_OK;
	case K_BOOL:
		if (units_bool(v, &b) != ERR_OK) {
			*why = "must be true or false";
			return ERR_INVAL;
		}
		*(int *)(void *)field = b;
		return ERR_OK;
	case K_SIZE:
		rc = units_size(v, &u);
		if (rc != ERR_OK) {
			*why = rc == ERR_RANGE ? "out of range" : "not a size (512, 64KiB, 1MB, 5GiB)";
			return rc;
		}
		if ((int64_t)u < key->min || u > (uint64_t)key->max) {
			*why = "out of range";
			return ERR_RANGE;
		}
		*(uint64_t *)(void *)field = u;
		return ERR_OK;
	case K_DUR:
		rc = units_duration(v, &u);
		if (rc != ERR_OK) {
			*why = rc == ERR_RANGE ? "out of range" : "not a duration (30s, 15m, 1h, 3d, 1week)";
			return rc;
		}
		if (u < 1 || (int64_t)u < key->min || u > (uint64_t)key->max) {
			*why = "out of range";
			return ERR_RANGE;
		}
		*(uint64_t *)(void *)field = u;
		return ERR_OK;
	case K_TIME:
		if (units_rfc3339(v, &i) != ERR_OK) {
			*why = "not an RFC 3339 time (2026-12-01T00:00:00Z)";
			return ERR_INVAL;
		}
		*(int64_t *)(void *)field = i;
		return ERR_OK;
	case K_LIST:
		return split_list(v, (struct cfg_list *)(void *)field, NULL, why);
	case K_HOSTS:
		return split_list(v, (struct cfg_list *)(void *)field, host_item_ok, why);
	case K_CIDRS:
		return split_list(v, (struct cfg_list *)(void *)field, cidr_ok, why);
	case K_PORTS: {
		struct cfg_list tmp;
		uint16_t *ports = (uint16_t *)(void *)field;
		int n, *np = ports_count(ld->cfg, ports);
		rc = split_list(v, &tmp, NULL, why);
		if (rc != ERR_OK)
			return rc;
		for (n = 0; n < tmp.n; n++) {
			if (!port_ok(tmp.item[n], strlen(tmp.item[n]), &ports[n])) {
				*why = "ports must be 1-65535, digits only, no leading zeros";
				return ERR_INVAL;
			}
		}
		*np = tmp.n;
		return ERR_OK;
	}
	}
	*why = "unsupported";
	return ERR_INVAL;
}

static long
find_key(const char *section, const char *name)
{
	size_t k;

	for (k = 0; k < NKEYS; k++)
		if (strcasecmp(keys[k].section, section) == 0 && strcasecmp(keys[k].name, name) == 0)
			return (long)k;
	return -1;
}

static int
known_section(const char *section)
{
	size_t k;

	for (k = 0; k < NKEYS; k++)
		if (strcasecmp(keys[k].section, section) == 0)
			return 1;
	return 0;
}

/* Apply one value from a source; reports errors through fail(). */
static void
apply(struct loader *ld, size_t k, const char *v, enum origin o, int line, const char *envname)
{
	const char *why = "invalid value";
	char where[CFG_PATH + 128];

	ld->origin[k] = o;
	ld->line[k] = line;
	snprintf(ld->envname[k], sizeof ld->envname[k], "%s", envname ? envname : "");
	if (set_value(ld, k, v, &why) != ERR_OK) {
		place(ld, k, where, sizeof where);
		fail(ld, "%s: %s", where, why);
	}
}

/* inih reader over the in-memory file: hands out one line at a time and counts lines so
 * the handler knows where it is. */
static char *
ini_reader_fn(char *str, int num, void *stream)
{
	struct loader *ld = stream;
	size_t n = 0;

	if (ld->pos >= ld->textlen)
		return NULL;
	while (ld->pos < ld->textlen && n + 1 < (size_t)num) {
		char c = ld->text[ld->pos++];
		str[n++] = c;
		if (c == '\n')
			break;
	}
	str[n] = 0;
	ld->lineno++;
	return str;
}

/* The keys registration.ini may hold (docs/configuration.md): what a registration writes. */
static int
reg_key(const char *section, long k)
{
	static const char *const allowed[] = { "relayId", "registeredTo", "securityToken",
		"relayProId" };
	size_t i;

	for (i = 0; k >= 0 && !*section && i < sizeof allowed / sizeof allowed[0]; i++)
		if (strcmp(keys[k].name, allowed[i]) == 0)
			return 1;
	return 0;
}

static int
ini_handler_fn(void *user, const char *section, const char *name, const char *value)
{
	struct loader *ld = user;
	long k;

	if (ld->failed)
		return 0;
	if (!known_section(section)) {
		fail(ld, "%s:%d: [%s]: unknown section", ld->src, ld->lineno, section);
		return 0;
	}
	k = find_key(section, name);
	if (k < 0) {
		fail(ld, "%s:%d: %s%s%s: unknown key", ld->src, ld->lineno, section,
		    *section ? "." : "", name);
		return 0;
	}
	if (ld->src_origin == FROM_REG && !reg_key(section, k)) {
		fail(ld, "%s:%d: %s%s%s: not a registration key (only relayId, registeredTo, "
		    "securityToken, relayProId)", ld->src, ld->lineno, section, *section ? "." : "",
		    name);
		return 0;
	}
	if (ld->origin[k] == ld->src_origin) {
		fail(ld, "%s:%d: %s: set twice (first on line %d)", ld->src, ld->lineno, name,
		    ld->line[k]);
		return 0;
	}
	apply(ld, (size_t)k, value, ld->src_origin, ld->lineno, NULL);
	return !ld->failed;
}

/* Read the file whole, check what inih cannot (NUL bytes, over-long lines), parse; its
 * values count as origin o (FROM_FILE, or FROM_REG for registration.ini). */
static int
read_file(struct loader *ld, const char *path, enum origin o)
{
	char *buf;
	struct stat st;
	ssize_t got;
	size_t off = 0, i, linestart = 0;
	int fd, line = 1, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fail(ld, "%s: cannot open: %s", path, strerror(errno));
		return ERR_IO;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > CFG_FILE_MAX) {
		fail(ld, "%s: not a regular file of at most 1 MiB", path);
		close(fd);
		return ERR_INVAL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		close(fd);
		fail(ld, "%s: out of memory", path);
		return ERR_IO;
	}
	while (off < (size_t)st.st_size) {
		got = read(fd, buf + off, (size_t)st.st_size - off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		off += (size_t)got;
	}
	close(fd);
	buf[off] = 0;
	for (i = 0; i <= off; i++) {
		if (i < off && buf[i] == 0) {
			fail(ld, "%s:%d: NUL byte in file", path, line);
			goto out;
		}
		if (i == off || buf[i] == '\n') {
			size_t len = i - linestart;
			if (len && buf[i - 1] == '\r')
				len--;
			if (len > CFG_LINE_MAX) {
				fail(ld, "%s:%d: line longer than %d characters", path, line, CFG_LINE_MAX);
				goto out;
			}
			line++;
			linestart = i + 1;
		}
	}
	ld->text = buf;
	ld->textlen = off;
	ld->pos = 0;
	ld->lineno = 0;
	ld->src = path;
	ld->src_origin = o;
	/* Debian's libinih exposes its options as variables: one error stops the parse,
	 * no inline comments (a ';' may be part of a value), no continuation lines. */
	ini_stop_on_first_error = 1;
	ini_allow_inline_comments = 0;
	ini_allow_multiline = 0;
	rc = ini_parse_stream(ini_reader_fn, ld, ini_handler_fn, ld);
	if (rc > 0 && !ld->failed)
		fail(ld, "%s:%d: syntax error (expected key = value, [section] or a comment)", path, rc);
out:
	secret_wipe(buf, off);
	free(buf);
	return ld->failed ? ERR_INVAL : ERR_OK;
}

/* RELAYPRO_LOGGER_CONF=fileName=...,maxSize=...,... */
static void
apply_logger_conf(struct loader *ld, const char *v)
{
	char item[CFG_PATH + 64];
	const char *p = v;

	while (*p && !ld->failed) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		char *eq;
		long k;

		if (n >= sizeof item) {
			fail(ld, "environment RELAYPRO_LOGGER_CONF: entry too long");
			return;
		}
		memcpy(item, p, n);
		item[n] = 0;
		eq = strchr(item, '=');
		if (eq == NULL) {
			fail(ld, "environment RELAYPRO_LOGGER_CONF: \"%s\": expected name=value", item);
			return;
		}
		*eq = 0;
		k = find_key("logger", item);
		if (k < 0) {
			fail(ld, "environment RELAYPRO_LOGGER_CONF: %s: unknown key", item);
			return;
		}
		apply(ld, (size_t)k, eq + 1, FROM_LOGGER_CONF, 0, NULL);
		p = e ? e + 1 : p + n;
	}
}

static void
apply_env(struct loader *ld)
{
	char name[64];
	char **e;
	size_t k, a;

	/* AIR_* first: they only seed what the file does not set. */
	for (a = 0; a < sizeof air_vars / sizeof air_vars[0]; a++) {
		const char *v = getenv(air_vars[a][0]);
		long kk = find_key("", air_vars[a][1]);
		if (v && *v && kk >= 0 && ld->origin[kk] == FROM_DEFAULT)
			apply(ld, (size_t)kk, v, FROM_AIR, 0, air_vars[a][0]);
	}
	if (getenv("RELAYPRO_LOGGER_CONF"))
		apply_logger_conf(ld, getenv("RELAYPRO_LOGGER_CONF"));

	for (e = environ; *e && !ld->failed; e++) {
		const char *eq = strchr(*e, '=');
		size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
		int known = 0;

		if (strncmp(*e, "RELAYPRO_", 9) != 0 || eq == NULL)
			continue;
		if (n >= sizeof name) {
			fail(ld, "environment: %.60s...: unknown variable", *e);
			break;
		}
		memcpy(name, *e, n);
		name[n] = 0;
		for (a = 0; a < sizeof env_other / sizeof env_other[0]; a++)
			known |= strcmp(name, env_other[a]) == 0;
		for (a = 0; a < sizeof env_alias / sizeof env_alias[0]; a++)
			known |= strcmp(name, env_alias[a][0]) == 0;
		for (k = 0; k < NKEYS && !known; k++) {
			char want[64];
			config_env_name(want, sizeof want, keys[k].section, keys[k].name);
			known = strcmp(name, want) == 0;
		}
		if (!known)
			fail(ld, "environment %s: unknown variable (see docs/configuration.md)", name);
	}
	/* Aliases first, so the canonical name wins when both are set. */
	for (a = 0; a < sizeof env_alias / sizeof env_alias[0] && !ld->failed; a++) {
		const char *v = getenv(env_alias[a][0]);
		if (v == NULL)
			continue;
		for (k = 0; k < NKEYS; k++) {
			char want[64];
			config_env_name(want, sizeof want, keys[k].section, keys[k].name);
			if (strcmp(want, env_alias[a][1]) == 0)
				apply(ld, k, v, FROM_ENV, 0, env_alias[a][0]);
		}
	}
	for (k = 0; k < NKEYS && !ld->failed; k++) {
		const char *v;
		config_env_name(name, sizeof name, keys[k].section, keys[k].name);
		v = getenv(name);
		if (v)
			apply(ld, k, v, FROM_ENV, 0, name);
	}
}

static void
set_defaults(struct config *cfg)
{
	static const uint16_t ports[] = { 443, 80, 4222 };

	strcpy(cfg->https_listen, "0.0.0.0:9443");
	strcpy(cfg->server_key_type, "ec");
	cfg->ca_key_bits = 2048;
	cfg->workers = 1;
	memcpy(cfg->allowed_ports, ports, sizeof ports);
	cfg->n_allowed_ports = 3;
	cfg->token_duration = 3600;
	/* Standard output by default: a foreground run, systemd's journal and containers all
	 * read it; a file (with rotation) only when logger.fileName names one. */
	strcpy(cfg->log_file, "-");
	cfg->log_max_size = 10u << 20;
	cfg->log_max_age = 7 * DAY;
	cfg->log_max_backups = 5;
	cfg->max_connections = 10000;
	cfg->max_pending_per_address = 64;
	cfg->max_header_bytes = 8192;
	cfg->header_timeout = 10;
	cfg->connect_timeout = 10;
	cfg->idle_timeout = 15 * 60;
	cfg->shutdown_timeout = 30;
	cfg->clock_skew = 60;
	cfg->auth_fail_limit = 20;
	cfg->auth_fail_ban = 60;
	if (gethostname(cfg->server_name, sizeof cfg->server_name - 1) != 0 || !cfg->server_name[0])
		strcpy(cfg->server_name, "localhost");
}

/* Defaults that depend on the folder (set before the file so the file can override). */
static void
set_path_defaults(struct config *cfg)
{
	resolve_path(cfg->dir, "private", cfg->private_folder, sizeof cfg->private_folder);
}

static int
key_index(const char *section, const char *name)
{
	return (int)find_key(section, name);
}

/* Combinations no single value can show wrong. */
/* 1 when two listen values would take the same port: equal ports and equal addresses, or
 * equal ports and one a wildcard (0.0.0.0, [::]). With workers > 1 the listeners set
 * SO_REUSEPORT, and then the kernel would share one port between two listeners. */
static int
listen_clash(const char *a, const char *b)
{
	struct net_addr x, y;
	const struct sockaddr_in *x4 = (const struct sockaddr_in *)(const void *)&x.ss;
	const struct sockaddr_in *y4 = (const struct sockaddr_in *)(const void *)&y.ss;
	const struct sockaddr_in6 *x6 = (const struct sockaddr_in6 *)(const void *)&x.ss;
	const struct sockaddr_in6 *y6 = (const struct sockaddr_in6 *)(const void *)&y.ss;
	int xany, yany;

	if (!a[0] || !b[0] || net_parse_listen(a, &x) != ERR_OK || net_parse_listen(b, &y) != ERR_OK)
		return 0;
	if ((x.ss.ss_family == AF_INET ? x4->sin_port : x6->sin6_port) !=
	    (y.ss.ss_family == AF_INET ? y4->sin_port : y6->sin6_port))
		return 0;
	xany = x.ss.ss_family == AF_INET ? x4->sin_addr.s_addr == INADDR_ANY :
	    IN6_IS_ADDR_UNSPECIFIED(&x6->sin6_addr);
	yany = y.ss.ss_family == AF_INET ? y4->sin_addr.s_addr == INADDR_ANY :
	    IN6_IS_ADDR_UNSPECIFIED(&y6->sin6_addr);
	if (xany || yany)
		return 1;
	if (x.ss.ss_family != y.ss.ss_family)
		return 0;
	return x.ss.ss_family == AF_INET ? x4->sin_addr.s_addr == y4->sin_addr.s_addr :
	    memcmp(&x6->sin6_addr, &y6->sin6_addr, 16) == 0;
}

static void
check_combinations(struct loader *ld)
{
	struct config *c = ld->cfg;
	char where[CFG_PATH + 128];
	int k;
	const char *v;

	if (c->proxy_protocol && c->trusted_proxies.n == 0) {
		place(ld, (size_t)key_index("", "proxyProtocol"), where, sizeof where);
		fail(ld, "%s: proxyProtocol = true needs trustedProxies", where);
	}
	if ((c->migration_console_address[0] != 0) != (c->migration_valid_until != 0)) {
		k = key_index("migration", c->migration_console_address[0] ? "consoleAddress" : "validUntilAt");
		place(ld, (size_t)k, where, sizeof where);
		fail(ld, "%s: [migration] needs both consoleAddress and validUntilAt", where);
	}
	if (!c->https_listen[0] && !c->http_listen[0]) {
		k = key_index("httpsProxy", "listen");
		place(ld, (size_t)k, where, sizeof where);
		fail(ld, "%s: no listener enabled (httpsProxy and httpProxy both empty)", where);
	}
	if (listen_clash(c->admin_listen, c->https_listen) || listen_clash(c->admin_listen, c->http_listen)) {
		place(ld, (size_t)key_index("admin", "listen"), where, sizeof where);
		fail(ld, "%s: the admin listener needs a port of its own (it is a proxy listener's)", where);
	}
	if (c->server_name[0] && !host_ok(c->server_name, strlen(c->server_name))) {
		place(ld, (size_t)key_index("", "serverName"), where, sizeof where);
		fail(ld, "%s: not a host name or IP address", where);
	}
	if (strlen(c->server_name) > 64) {
		/* It becomes the certificate's CN, which X.509 limits to 64 (ub-common-name). */
		place(ld, (size_t)key_index("", "serverName"), where, sizeof where);
		fail(ld, "%s: longer than 64 characters (use serverAltNames for long names)", where);
	}
	if ((c->cert_file[0] != 0) != (c->key_file[0] != 0)) {
		place(ld, (size_t)key_index("", c->cert_file[0] ? "certFile" : "keyFile"), where,
		    sizeof where);
		fail(ld, "%s: certFile and keyFile go together (the chain and its private key)", where);
	}
	if (c->server_alt_names.n > 15) {
		place(ld, (size_t)key_index("", "serverAltNames"), where, sizeof where);
		fail(ld, "%s: at most 15 entries (the certificate holds 16 names with serverName)", where);
	}
	if (!c->log_file[0]) /* fileName = (empty): standard output, like "-" */
		strcpy(c->log_file, "-");
	v = getenv("RELAYPRO_CA_BUNDLE_FILE");
	if (v && *v) {
		if (resolve_path(c->dir, v, c->ca_bundle_file, sizeof c->ca_bundle_file) != ERR_OK)
			fail(ld, "environment RELAYPRO_CA_BUNDLE_FILE: path too long");
	} else if (snprintf(c->ca_bundle_file, sizeof c->ca_bundle_file, "%s/ca-bundle.pem",
	    c->private_folder) >= (int)sizeof c->ca_bundle_file) {
		fail(ld, "privateFolder: path too long");
	}
	v = getenv("RELAYPRO_CONSOLE_CA_FILE");
	if (v && *v && resolve_path(c->dir, v, c->console_ca_file, sizeof c->console_ca_file) != ERR_OK)
		fail(ld, "environment RELAYPRO_CONSOLE_CA_FILE: path too long");
	v = getenv("RELAYPRO_PROXY_CA_FILE");
	if (v && *v && resolve_path(c->dir, v, c->proxy_ca_file, sizeof c->proxy_ca_file) != ERR_OK)
		fail(ld, "environment RELAYPRO_PROXY_CA_FILE: path too long");
	v = getenv("RELAYPRO_POLL_BACKEND");
	if (v && *v && strcmp(v, "poll") != 0 && strcmp(v, "epoll") != 0)
		fail(ld, "environment RELAYPRO_POLL_BACKEND: %.40s: expected poll or epoll", v);
}

/* <privateFolder>/registration.ini (docs/configuration.md): where the relay saves a registration when
 * the config file cannot take it. Read after the file and before the environment, so it
 * sits between them; the privateFolder in force is the environment's when it sets one. A
 * missing file is normal; one that cannot be read is an error. */
static void
read_registration(struct loader *ld)
{
	struct config *c = ld->cfg;
	const char *v = getenv("RELAYPRO_PRIVATE_FOLDER");
	char folder[CFG_PATH];
	struct stat st;

	if (v != NULL) {
		if (resolve_path(c->dir, v, folder, sizeof folder) != ERR_OK) {
			fail(ld, "environment RELAYPRO_PRIVATE_FOLDER: path too long");
			return;
		}
	} else {
		memcpy(folder, c->private_folder, sizeof folder);
	}
	if (snprintf(c->reg_file, sizeof c->reg_file, "%s/%s", folder, CFG_REG_FILE) >=
	    (int)sizeof c->reg_file) {
		fail(ld, "privateFolder: path too long");
		return;
	}
	/* Absent, or in a folder this user cannot search (so it cannot have written it
	 * either): nothing saved. A file that exists but cannot be read is an error. */
	if (stat(c->reg_file, &st) != 0 && (errno == ENOENT || errno == ENOTDIR || errno == EACCES))
		return;
	read_file(ld, c->reg_file, FROM_REG);
}

/* see config.h */
const char *
config_pick_file(const char *cli_path)
{
	const char *v;

	if (cli_path)
		return cli_path;
	v = getenv("RELAYPRO_CONFIG");
	if (v && *v)
		return v;
	if (access("/opt/relaypro/config.ini", F_OK) == 0)
		return "/opt/relaypro/config.ini";
	return "";
}

/* see config.h */
int
config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
	static struct loader ld; /* large (per-key names); one load at a time */
	char *slash;

	memset(cfg, 0, sizeof *cfg);
	memset(&ld, 0, sizeof ld);
	ld.cfg = cfg;
	ld.err = err;
	ld.errlen = errlen;
	if (errlen)
		err[0] = 0;

	if (snprintf(cfg->file, sizeof cfg->file, "%s", path) >= (int)sizeof cfg->file) {
		fail(&ld, "config path too long");
		return ERR_INVAL;
	}
	if (path[0]) {
		snprintf(cfg->dir, sizeof cfg->dir, "%s", path);
		slash = strrchr(cfg->dir, '/');
		if (slash == NULL)
			strcpy(cfg->dir, ".");
		else if (slash == cfg->dir)
			slash[1] = 0;
		else
			*slash = 0;
	} else {
		strcpy(cfg->dir, ".");
	}
	set_defaults(cfg);
	set_path_defaults(cfg);

	if (path[0])
		read_file(&ld, path, FROM_FILE);
	if (!ld.failed)
		read_registration(&ld);
	if (!ld.failed)
		apply_env(&ld);
	if (!ld.failed)
		check_combinations(&ld);
	if (ld.failed) {
		config_wipe(cfg);
		return ERR_INVAL;
	}
	return ERR_OK;
}

static void
dump_line(int fd, const char *section, const char *name, const char *value)
{
	dprintf(fd, "%s%s%s = %s\n", section, *section ? "." : "", name, value);
}

/* see config.h */
void
config_dump(const struct config *cfg, int fd)
{
	size_t k;

	dprintf(fd, "# config file: %s\n", cfg->file[0] ? cfg->file : "(none: environment only)");
	for (k = 0; k < NKEYS; k++) {
		const struct key *key = &keys[k];
		const char *field = (const char *)cfg + key->off;
		char buf[CFG_STR * 4];
		int i, o = 0;

		buf[0] = 0;
		switch (key->type) {
		case K_STR: case K_PATH: case K_UUID: case K_KEYTYPE: case K_ADDR: case K_LISTEN:
		case K_USER:
			if (key->flags & F_SECRET)
				snprintf(buf, sizeof buf, "%s", *field ? "<set>" : "");
			else
				snprintf(buf, sizeof buf, "%s", field);
			break;
		case K_PEM:
			snprintf(buf, sizeof buf, "%s",
			    strstr(field, "-----BEGIN") ? "<inline PEM>" : field);
			break;
		case K_INT: case K_CABITS:
			snprintf(buf, sizeof buf, "%lld", (long long)*(const int64_t *)(const void *)field);
			break;
		case K_WORKERS:
			if (*(const int64_t *)(const void *)field == 0)
				snprintf(buf, sizeof buf, "auto");
			else
				snprintf(buf, sizeof buf, "%lld", (long long)*(const int64_t *)(const void *)field);
			break;
		case K_BOOL:
			snprintf(buf, sizeof buf, "%s", *(const int *)(const void *)field ? "true" : "false");
			break;
		case K_SIZE:
			snprintf(buf, sizeof buf, "%llu", (unsigned long long)*(const uint64_t *)(const void *)field);
			break;
		case K_DUR:
			snprintf(buf, sizeof buf, "%llus", (unsigned long long)*(const uint64_t *)(const void *)field);
			break;
		case K_TIME: {
			int64_t t = *(const int64_t *)(const void *)field;
			if (t) {
				time_t tt = (time_t)t;
				struct tm tm;
				gmtime_r(&tt, &tm);
				strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
			}
			break;
		}
		case K_LIST: case K_HOSTS: case K_CIDRS: {
			const struct cfg_list *l = (const void *)field;
			for (i = 0; i < l->n && o < (int)sizeof buf; i++)
				o += snprintf(buf + o, sizeof buf - (size_t)o, "%s%s", i ? "," : "", l->item[i]);
			break;
		}
		case K_PORTS: {
			const uint16_t *ports = (const uint16_t *)(const void *)field;
			int np = ports == cfg->allowed_udp_ports ? cfg->n_allowed_udp_ports :
			    cfg->n_allowed_ports;
			for (i = 0; i < np && o < (int)sizeof buf; i++)
				o += snprintf(buf + o, sizeof buf - (size_t)o, "%s%u", i ? "," : "", ports[i]);
			break;
		}
		}
		dump_line(fd, key->section, key->name, buf);
	}
	dprintf(fd, "# CA bundle: %s\n", cfg->ca_bundle_file);
}

/* see config.h */
void
config_wipe(struct config *cfg)
{
	secret_wipe(cfg->security_token, sizeof cfg->security_token);
	secret_wipe(cfg->deployment_token, sizeof cfg->deployment_token);
}

/*
 * config_keys.c — the one key table (every key of docs/configuration.md: section, name, type, place in
 * struct config, limits, secrecy) and each key's parser and validator. See config_int.h.
 *
 * It owns what one value means: syntax, ranges, lists, paths resolved against the config
 * file's folder. It must not know where a value came from (file, registration.ini,
 * environment: config.c and config_env.c), combinations of keys (config.c) or output
 * (config_dump.c). Host, port, address and user syntax are target.c's, net.c's and
 * priv_user.c's, so the configuration accepts exactly what the relay will match and bind.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "config_int.h"
#include "err.h"
#include "net.h"
#include "priv_user.h"
#include "target.h"
#include "units.h"

#define O(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)
#define DAY CFG_DAY
/* see config_int.h */
const struct cfg_key config_keys[] = {
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
#undef DAY
_Static_assert(sizeof config_keys / sizeof config_keys[0] == CFG_NKEYS,
    "CFG_NKEYS (config_int.h) must be the number of keys in the table");

static int
has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* see config_int.h */
int
config_keys_path(const char *dir, const char *v, char *out, size_t cap)
{
	int n;

	if (v[0] == '/' || strcmp(v, "-") == 0 || v[0] == 0 || dir[0] == 0)
		n = snprintf(out, cap, "%s", v);
	else
		n = snprintf(out, cap, "%s/%s", dir, v);
	return n >= 0 && (size_t)n < cap ? ERR_OK : ERR_NOSPACE;
}

/* see config_int.h */
int
config_keys_host_ok(const char *h, size_t n)
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
	return config_keys_host_ok(s, strlen(s));
}

/* see config_int.h */
int
config_keys_set(struct config *cfg, size_t k, const char *v, const char **why)
{
	const struct cfg_key *key = &config_keys[k];
	char *field = (char *)cfg + key->off;
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
			rc = config_keys_path(cfg->dir, v, field, key->size);
		} else {
			rc = strlen(v) < key->size ? ERR_OK : ERR_NOSPACE;
			if (rc == ERR_OK)
				strcpy(field, v);
		}
		if (rc != ERR_OK)
			*why = "value too long";
		return rc;
	case K_PATH:
		if (config_keys_path(cfg->dir, v, field, key->size) != ERR_OK) {
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
		int n, *np = ports_count(cfg, ports);
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

/* see config_int.h */
long
config_keys_find(const char *section, const char *name)
{
	size_t k;

	for (k = 0; k < CFG_NKEYS; k++)
		if (strcasecmp(config_keys[k].section, section) == 0 &&
		    strcasecmp(config_keys[k].name, name) == 0)
			return (long)k;
	return -1;
}

/* see config_int.h */
int
config_keys_section(const char *section)
{
	size_t k;

	for (k = 0; k < CFG_NKEYS; k++)
		if (strcasecmp(config_keys[k].section, section) == 0)
			return 1;
	return 0;
}

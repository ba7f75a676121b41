/*
 * config.h — relaypro's configuration (docs/configuration.md): defaults, the INI file (inih),
 * the install-time AIR_* variables and the RELAYPRO_* environment, in that order of
 * increasing precedence (RELAYPRO_LOGGER_CONF sits between the file and RELAYPRO_<KEY>).
 *
 * Between the file and the environment sits <privateFolder>/registration.ini (docs/configuration.md),
 * when it exists: what a registration saved because the config file could not take it
 * (relayId, registeredTo, securityToken, relayProId; any other key is an error).
 *
 * config_load() fills a struct config completely or fails with one line naming the file,
 * line and key (or the environment variable) and what is wrong; main exits 2 on it.
 * Every key of docs/configuration.md is known; an unknown key, section or RELAYPRO_* variable is an error,
 * as are duplicate keys, lines longer than inih's limit (never silently cut) and
 * impossible combinations. Relative paths are resolved against the config file's folder
 * (the working folder without a file). The struct has fixed size: no pointers into
 * anything, so a reload can build a new one and swap it whole.
 */
#ifndef RELAYPRO_CONFIG_H
#define RELAYPRO_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CFG_STR 256         /* host names, addresses, ids */
#define CFG_PATH 1024       /* file paths after resolution */
#define CFG_SECRET 1024     /* securityToken, deploymentToken */
#define CFG_PEM 16384       /* consoleCACert given inline */
#define CFG_LIST_MAX 32     /* entries in one comma-separated list */
#define CFG_FILE_MAX (1 << 20)
#define CFG_LINE_MAX 197    /* inih's INI_MAX_LINE (200) less CR, LF and NUL */
#define CFG_REG_FILE "registration.ini" /* in the private folder */

struct cfg_list {
	int n;
	char item[CFG_LIST_MAX][CFG_STR];
};

struct config {
	char file[CFG_PATH];       /* the config file, "" when environment only */
	char dir[CFG_PATH];        /* folder relative paths resolve against */

	char console_address[CFG_STR];
	char registered_to[CFG_STR];
	int64_t organization_id;
	char relay_pro_id[CFG_STR];
	int64_t relay_id;
	char security_token[CFG_SECRET];
	char console_ca_cert[CFG_PEM];
	int proxy_enabled;
	int debug_logging;
	char deployment_token[CFG_SECRET];
	char server_name[CFG_STR];
	struct cfg_list server_alt_names;
	char server_key_type[8];    /* "ec" or "rsa" */
	char private_folder[CFG_PATH];
	char password_file[CFG_PATH];
	struct cfg_list allowed_hosts;
	int n_allowed_ports;
	uint16_t allowed_ports[CFG_LIST_MAX];
	int n_allowed_udp_ports;    /* allowedUdpPorts: what GET /v1/udp may reach (default none) */
	uint16_t allowed_udp_ports[CFG_LIST_MAX];
	int64_t ca_key_bits;
	int64_t workers;            /* 0 = auto (one per CPU) */
	int proxy_protocol;
	struct cfg_list trusted_proxies;
	char user[CFG_STR];         /* NAME, UID:GID or root; "" = relaypro when started as root */
	char cert_file[CFG_PATH];   /* the operator's chain, PEM, leaf first; "" = mint one */
	char key_file[CFG_PATH];    /* its private key, PEM */

	char https_listen[CFG_STR]; /* "" = disabled */
	char http_listen[CFG_STR];
	char admin_listen[CFG_STR];

	uint64_t token_duration;    /* seconds */
	int64_t token_epoch;

	char migration_console_address[CFG_STR];
	int64_t migration_valid_until; /* seconds since the epoch; 0 = none */

	char log_file[CFG_PATH];    /* "-" = standard output */
	uint64_t log_max_size;
	uint64_t log_max_age;
	int64_t log_max_backups;
	int log_no_compress;

	int64_t max_connections;
	int64_t max_pending_per_address; /* connections not yet admitted, per client address */
	uint64_t max_header_bytes;
	uint64_t header_timeout, connect_timeout, idle_timeout, shutdown_timeout;
	uint64_t clock_skew;
	int64_t auth_fail_limit;
	uint64_t auth_fail_ban;

	char ca_bundle_file[CFG_PATH];   /* RELAYPRO_CA_BUNDLE_FILE or <privateFolder>/ca-bundle.pem */
	char reg_file[CFG_PATH];         /* <privateFolder>/registration.ini, read when present */
	char console_ca_file[CFG_PATH];  /* RELAYPRO_CONSOLE_CA_FILE */
	char proxy_ca_file[CFG_PATH];    /* RELAYPRO_PROXY_CA_FILE (https:// upstream proxy) */
};

/* Which file to read (docs/configuration.md): cli_path (-c) if given, else RELAYPRO_CONFIG, else
 * /opt/relaypro/config.ini when it exists, else none (returns ""). */
const char *config_pick_file(const char *cli_path);

/* Load from path ("" = environment only) and the environment. On failure returns
 * ERR_INVAL with a one-line message in err. Secrets never appear in err. */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen);

/* Print the effective configuration, secrets shown as <set>, to fd. */
void config_dump(const struct config *cfg, int fd);

/* Wipe the secrets held in cfg. */
void config_wipe(struct config *cfg);

/* The environment variable name for a key: "consoleCACert" in section "" gives
 * RELAYPRO_CONSOLE_CA_CERT; "listen" in "httpsProxy" gives RELAYPRO_HTTPS_PROXY_LISTEN. */
void config_env_name(char *out, size_t cap, const char *section, const char *key);

#endif

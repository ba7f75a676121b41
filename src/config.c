/*
 * config.c — one load (docs/configuration.md): defaults, the INI file through inih, registration.ini,
 * the environment (config_env.c) and the checks of key combinations, in that order; the
 * error that names file, line and key. See config.h.
 *
 * It owns the order of the sources, where each value came from (struct cfg_loader), the
 * first error, the rules that span keys (and the paths derived from RELAYPRO_CA_BUNDLE_FILE,
 * RELAYPRO_CONSOLE_CA_FILE, RELAYPRO_PROXY_CA_FILE), config_pick_file and config_wipe.
 * What one value means is config_keys.c's (the key table, each key's parser), which
 * variables exist is config_env.c's, the printed form is config_dump.c's: every key's value
 * goes through config_apply, never parsed here.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "config.h"
#include "config_int.h"
#include "err.h"
#include "net.h"
#include "secret.h"

/* see config_int.h */
void
config_fail(struct cfg_loader *ld, const char *fmt, ...)
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
place(const struct cfg_loader *ld, size_t k, char *out, size_t cap)
{
	const struct cfg_key *key = &config_keys[k];
	char full[96];

	snprintf(full, sizeof full, "%s%s%s", key->section, *key->section ? "." : "", key->name);
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

/* see config_int.h */
void
config_apply(struct cfg_loader *ld, size_t k, const char *v, enum origin o, int line,
    const char *envname)
{
	const char *why = "invalid value";
	char where[CFG_PATH + 128];

	ld->origin[k] = o;
	ld->line[k] = line;
	snprintf(ld->envname[k], sizeof ld->envname[k], "%s", envname ? envname : "");
	if (config_keys_set(ld->cfg, k, v, &why) != ERR_OK) {
		place(ld, k, where, sizeof where);
		config_fail(ld, "%s: %s", where, why);
	}
}

/* inih reader over the in-memory file: hands out one line at a time and counts lines so
 * the handler knows where it is. */
static char *
ini_reader_fn(char *str, int num, void *stream)
{
	struct cfg_loader *ld = stream;
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
		if (strcmp(config_keys[k].name, allowed[i]) == 0)
			return 1;
	return 0;
}

static int
ini_handler_fn(void *user, const char *section, const char *name, const char *value)
{
	struct cfg_loader *ld = user;
	long k;

	if (ld->failed)
		return 0;
	if (!config_keys_section(section)) {
		config_fail(ld, "%s:%d: [%s]: unknown section", ld->src, ld->lineno, section);
		return 0;
	}
	k = config_keys_find(section, name);
	if (k < 0) {
		config_fail(ld, "%s:%d: %s%s%s: unknown key", ld->src, ld->lineno, section,
		    *section ? "." : "", name);
		return 0;
	}
	if (ld->src_origin == FROM_REG && !reg_key(section, k)) {
		config_fail(ld, "%s:%d: %s%s%s: not a registration key (only relayId, registeredTo, "
		    "securityToken, relayProId)", ld->src, ld->lineno, section, *section ? "." : "",
		    name);
		return 0;
	}
	if (ld->origin[k] == ld->src_origin) {
		config_fail(ld, "%s:%d: %s: set twice (first on line %d)", ld->src, ld->lineno, name,
		    ld->line[k]);
		return 0;
	}
	config_apply(ld, (size_t)k, value, ld->src_origin, ld->lineno, NULL);
	return !ld->failed;
}

/* Read the file whole, check what inih cannot (NUL bytes, over-long lines), parse; its
 * values count as origin o (FROM_FILE, or FROM_REG for registration.ini). */
static int
read_file(struct cfg_loader *ld, const char *path, enum origin o)
{
	char *buf;
	struct stat st;
	ssize_t got;
	size_t off = 0, i, linestart = 0;
	int fd, line = 1, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		config_fail(ld, "%s: cannot open: %s", path, strerror(errno));
		return ERR_IO;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > CFG_FILE_MAX) {
		config_fail(ld, "%s: not a regular file of at most 1 MiB", path);
		close(fd);
		return ERR_INVAL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		close(fd);
		config_fail(ld, "%s: out of memory", path);
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
			config_fail(ld, "%s:%d: NUL byte in file", path, line);
			goto out;
		}
		if (i == off || buf[i] == '\n') {
			size_t len = i - linestart;
			if (len && buf[i - 1] == '\r')
				len--;
			if (len > CFG_LINE_MAX) {
				config_fail(ld, "%s:%d: line longer than %d characters", path, line, CFG_LINE_MAX);
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
		config_fail(ld, "%s:%d: syntax error (expected key = value, [section] or a comment)", path, rc);
out:
	secret_wipe(buf, off);
	free(buf);
	return ld->failed ? ERR_INVAL : ERR_OK;
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
	cfg->log_max_age = 7 * CFG_DAY;
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
	config_keys_path(cfg->dir, "private", cfg->private_folder, sizeof cfg->private_folder);
}

static int
key_index(const char *section, const char *name)
{
	return (int)config_keys_find(section, name);
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
check_combinations(struct cfg_loader *ld)
{
	struct config *c = ld->cfg;
	char where[CFG_PATH + 128];
	int k;
	const char *v;

	if (c->proxy_protocol && c->trusted_proxies.n == 0) {
		place(ld, (size_t)key_index("", "proxyProtocol"), where, sizeof where);
		config_fail(ld, "%s: proxyProtocol = true needs trustedProxies", where);
	}
	if ((c->migration_console_address[0] != 0) != (c->migration_valid_until != 0)) {
		k = key_index("migration", c->migration_console_address[0] ? "consoleAddress" : "validUntilAt");
		place(ld, (size_t)k, where, sizeof where);
		config_fail(ld, "%s: [migration] needs both consoleAddress and validUntilAt", where);
	}
	if (!c->https_listen[0] && !c->http_listen[0]) {
		k = key_index("httpsProxy", "listen");
		place(ld, (size_t)k, where, sizeof where);
		config_fail(ld, "%s: no listener enabled (httpsProxy and httpProxy both empty)", where);
	}
	if (listen_clash(c->admin_listen, c->https_listen) || listen_clash(c->admin_listen, c->http_listen)) {
		place(ld, (size_t)key_index("admin", "listen"), where, sizeof where);
		config_fail(ld, "%s: the admin listener needs a port of its own (it is a proxy listener's)", where);
	}
	if (c->server_name[0] && !config_keys_host_ok(c->server_name, strlen(c->server_name))) {
		place(ld, (size_t)key_index("", "serverName"), where, sizeof where);
		config_fail(ld, "%s: not a host name or IP address", where);
	}
	if (strlen(c->server_name) > 64) {
		/* It becomes the certificate's CN, which X.509 limits to 64 (ub-common-name). */
		place(ld, (size_t)key_index("", "serverName"), where, sizeof where);
		config_fail(ld, "%s: longer than 64 characters (use serverAltNames for long names)", where);
	}
	if ((c->cert_file[0] != 0) != (c->key_file[0] != 0)) {
		place(ld, (size_t)key_index("", c->cert_file[0] ? "certFile" : "keyFile"), where,
		    sizeof where);
		config_fail(ld, "%s: certFile and keyFile go together (the chain and its private key)", where);
	}
	if (c->server_alt_names.n > 15) {
		place(ld, (size_t)key_index("", "serverAltNames"), where, sizeof where);
		config_fail(ld, "%s: at most 15 entries (the certificate holds 16 names with serverName)", where);
	}
	if (!c->log_file[0]) /* fileName = (empty): standard output, like "-" */
		strcpy(c->log_file, "-");
	v = getenv("RELAYPRO_CA_BUNDLE_FILE");
	if (v && *v) {
		if (config_keys_path(c->dir, v, c->ca_bundle_file, sizeof c->ca_bundle_file) != ERR_OK)
			config_fail(ld, "environment RELAYPRO_CA_BUNDLE_FILE: path too long");
	} else if (snprintf(c->ca_bundle_file, sizeof c->ca_bundle_file, "%s/ca-bundle.pem",
	    c->private_folder) >= (int)sizeof c->ca_bundle_file) {
		config_fail(ld, "privateFolder: path too long");
	}
	v = getenv("RELAYPRO_CONSOLE_CA_FILE");
	if (v && *v && config_keys_path(c->dir, v, c->console_ca_file, sizeof c->console_ca_file) != ERR_OK)
		config_fail(ld, "environment RELAYPRO_CONSOLE_CA_FILE: path too long");
	v = getenv("RELAYPRO_PROXY_CA_FILE");
	if (v && *v && config_keys_path(c->dir, v, c->proxy_ca_file, sizeof c->proxy_ca_file) != ERR_OK)
		config_fail(ld, "environment RELAYPRO_PROXY_CA_FILE: path too long");
	v = getenv("RELAYPRO_POLL_BACKEND");
	if (v && *v && strcmp(v, "poll") != 0 && strcmp(v, "epoll") != 0)
		config_fail(ld, "environment RELAYPRO_POLL_BACKEND: %.40s: expected poll or epoll", v);
}

/* <privateFolder>/registration.ini (docs/configuration.md): where the relay saves a registration when
 * the config file cannot take it. Read after the file and before the environment, so it
 * sits between them; the privateFolder in force is the environment's when it sets one. A
 * missing file is normal; one that cannot be read is an error. */
static void
read_registration(struct cfg_loader *ld)
{
	struct config *c = ld->cfg;
	const char *v = getenv("RELAYPRO_PRIVATE_FOLDER");
	char folder[CFG_PATH];
	struct stat st;

	if (v != NULL) {
		if (config_keys_path(c->dir, v, folder, sizeof folder) != ERR_OK) {
			config_fail(ld, "environment RELAYPRO_PRIVATE_FOLDER: path too long");
			return;
		}
	} else {
		memcpy(folder, c->private_folder, sizeof folder);
	}
	if (snprintf(c->reg_file, sizeof c->reg_file, "%s/%s", folder, CFG_REG_FILE) >=
	    (int)sizeof c->reg_file) {
		config_fail(ld, "privateFolder: path too long");
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
	static struct cfg_loader ld; /* large (per-key names); one load at a time */
	char *slash;

	memset(cfg, 0, sizeof *cfg);
	memset(&ld, 0, sizeof ld);
	ld.cfg = cfg;
	ld.err = err;
	ld.errlen = errlen;
	if (errlen)
		err[0] = 0;

	if (snprintf(cfg->file, sizeof cfg->file, "%s", path) >= (int)sizeof cfg->file) {
		config_fail(&ld, "config path too long");
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
		config_env_apply(&ld);
	if (!ld.failed)
		check_combinations(&ld);
	if (ld.failed) {
		config_wipe(cfg);
		return ERR_INVAL;
	}
	return ERR_OK;
}


/* see config.h */
void
config_wipe(struct config *cfg)
{
	secret_wipe(cfg->security_token, sizeof cfg->security_token);
	secret_wipe(cfg->deployment_token, sizeof cfg->deployment_token);
}

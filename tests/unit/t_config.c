/* t_config.c — the configuration: a good file read back, every kind of bad line named by
 * file, line and key, environment precedence, AIR_* seeding, RELAYPRO_LOGGER_CONF,
 * environment names, relative paths. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "err.h"
#include "test.h"

extern char **environ;
static struct config cfg;
static char dir[64], path[128], err[2048];

static void
clear_env(void)
{
	char **e;
	char name[128];

	for (;;) {
		for (e = environ; *e; e++)
			if (strncmp(*e, "RELAYPRO_", 9) == 0 || strncmp(*e, "AIR_", 4) == 0)
				break;
		if (!*e)
			return;
		snprintf(name, sizeof name, "%.*s", (int)(strchr(*e, '=') - *e), *e);
		unsetenv(name);
	}
}

static int
load_text(const char *text)
{
	FILE *f = fopen(path, "w");

	fputs(text, f);
	fclose(f);
	return config_load(&cfg, path, err, sizeof err);
}

/* The error for text must start with "<path>:<line>: " and contain want. */
static void
bad(const char *text, int line, const char *want, const char *name)
{
	char prefix[160];
	int rc = load_text(text);

	snprintf(prefix, sizeof prefix, "%s:%d: ", path, line);
	CHECK_INT(rc, ERR_INVAL, name);
	CHECK(strncmp(err, prefix, strlen(prefix)) == 0 && strstr(err, want) != NULL, name);
	if (!(strncmp(err, prefix, strlen(prefix)) == 0 && strstr(err, want) != NULL))
		printf("     error was: %s\n", err);
}

void
t_config(void)
{
	static const struct { const char *sec, *key, *env; } names[] = {
		{ "", "consoleAddress", "RELAYPRO_CONSOLE_ADDRESS" },
		{ "", "relayProId", "RELAYPRO_RELAY_PRO_ID" },
		{ "", "consoleCACert", "RELAYPRO_CONSOLE_CA_CERT" },
		{ "", "caKeyBits", "RELAYPRO_CA_KEY_BITS" },
		{ "httpsProxy", "listen", "RELAYPRO_HTTPS_PROXY_LISTEN" },
		{ "limits", "idleTimeout", "RELAYPRO_LIMITS_IDLE_TIMEOUT" },
		{ "clientAuthToken", "duration", "RELAYPRO_CLIENT_AUTH_TOKEN_DURATION" },
		{ "migration", "validUntilAt", "RELAYPRO_MIGRATION_VALID_UNTIL_AT" },
		{ "logger", "noCompress", "RELAYPRO_LOGGER_NO_COMPRESS" },
		{ "", "certFile", "RELAYPRO_CERT_FILE" },
		{ "", "keyFile", "RELAYPRO_KEY_FILE" },
	};
	char name[64], line[400];
	size_t i;

	clear_env();
	snprintf(dir, sizeof dir, "/tmp/relaypro-t-config-%d", (int)getpid());
	snprintf(path, sizeof path, "%s/config.ini", dir);
	snprintf(line, sizeof line, "mkdir -p %s", dir);
	CHECK(system(line) == 0, "temp dir");

	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		config_env_name(name, sizeof name, names[i].sec, names[i].key);
		CHECK_STR(name, names[i].env, names[i].env);
	}

	/* Defaults alone. */
	CHECK_INT(config_load(&cfg, "", err, sizeof err), ERR_OK, "environment only loads");
	CHECK_STR(cfg.https_listen, "0.0.0.0:9443", "default https listen");
	CHECK_INT(cfg.max_header_bytes, 8192, "default maxHeaderBytes");
	CHECK_INT(cfg.n_allowed_ports, 3, "default allowedPorts count");
	CHECK(cfg.allowed_ports[0] == 443 && cfg.allowed_ports[1] == 80 && cfg.allowed_ports[2] == 4222,
	    "default allowedPorts");
	CHECK_INT(cfg.n_allowed_udp_ports, 0, "default allowedUdpPorts: none");
	CHECK_STR(cfg.ca_bundle_file, "./private/ca-bundle.pem", "default CA bundle path");
	CHECK_INT(cfg.clock_skew, 60, "default clockSkew");

	/* A complete, good file. */
	CHECK_INT(load_text(
	    "# comment\n"
	    "; another comment\n"
	    "consoleAddress = Console.Example:8443\n"
	    "organizationId = 42\n"
	    "relayProId = 123e4567-e89b-12d3-a456-426614174000\n"
	    "relayId = 7\n"
	    "securityToken = s3cr;t\n"
	    "proxyEnabled = yes\r\n"
	    "allowedHosts = cdn.example, 10.0.0.5 ,[::1]\n"
	    "allowedPorts = 443,8443\n"
	    "allowedUdpPorts = 10500\n"
	    "serverAltNames = relay.example,127.0.0.1\n"
	    "caKeyBits = 3072\n"
	    "workers = auto\n"
	    "passwordFile = users.txt\n"
	    "proxyProtocol = true\n"
	    "trustedProxies = 10.0.0.0/8, ::1/128\n"
	    "[httpsProxy]\nlisten = [::]:9443\n"
	    "[admin]\nlisten = 127.0.0.1:9090\n"
	    "[clientAuthToken]\nduration = 2h\nepoch = 3\n"
	    "[migration]\nconsoleAddress = new.example\nvalidUntilAt = 2027-01-01T00:00:00Z\n"
	    "[logger]\nfileName = -\nmaxSize = 5MiB\nmaxBackups = 2\n"
	    "[limits]\nidleTimeout = 1week\nmaxHeaderBytes = 16KiB\n"), ERR_OK, "good file loads");
	if (err[0])
		printf("     error was: %s\n", err);
	CHECK_STR(cfg.console_address, "Console.Example:8443", "consoleAddress");
	CHECK_INT(cfg.organization_id, 42, "organizationId");
	CHECK_STR(cfg.security_token, "s3cr;t", "';' kept inside a value (no inline comments)");
	CHECK_INT(cfg.proxy_enabled, 1, "bool with CRLF line end");
	CHECK(cfg.allowed_hosts.n == 3 && strcmp(cfg.allowed_hosts.item[1], "10.0.0.5") == 0,
	    "list trimmed");
	CHECK(cfg.n_allowed_ports == 2 && cfg.allowed_ports[1] == 8443, "allowedPorts");
	CHECK(cfg.n_allowed_udp_ports == 1 && cfg.allowed_udp_ports[0] == 10500,
	    "allowedUdpPorts, apart from allowedPorts");
	CHECK_INT(cfg.workers, 0, "workers auto");
	CHECK_INT(cfg.ca_key_bits, 3072, "caKeyBits");
	CHECK_STR(cfg.https_listen, "[::]:9443", "IPv6 listen");
	CHECK_INT(cfg.token_duration, 7200, "duration 2h");
	CHECK_INT(cfg.token_epoch, 3, "epoch");
	CHECK_INT(cfg.migration_valid_until, 1798761600, "validUntilAt");
	CHECK_STR(cfg.log_file, "-", "logger stdout");
	CHECK_INT(cfg.log_max_size, 5 << 20, "maxSize");
	CHECK_INT(cfg.idle_timeout, 604800, "idleTimeout 1week");
	CHECK_INT(cfg.max_header_bytes, 16384, "maxHeaderBytes");
	snprintf(line, sizeof line, "%s/users.txt", dir);
	CHECK_STR(cfg.password_file, line, "relative path resolved against the file's folder");
	snprintf(line, sizeof line, "%s/private/ca-bundle.pem", dir);
	CHECK_STR(cfg.ca_bundle_file, line, "CA bundle under the file's folder");

	/* Bad lines: named by file, line and key. */
	bad("consoleAddress = a\nbogusKey = 1\n", 2, "bogusKey: unknown key", "unknown key");
	bad("\n[nosuch]\nlisten = 1\n", 3, "unknown section", "unknown section");
	bad("relayId = 1\nrelayId = 2\n", 2, "set twice (first on line 1)", "duplicate key");
	bad("organizationId = forty\n", 1, "organizationId: not an integer", "bad integer");
	bad("organizationId = -1\n", 1, "out of range", "negative org");
	bad("proxyEnabled = maybe\n", 1, "must be true or false", "bad bool");
	bad("caKeyBits = 1024\n", 1, "2048, 3072 or 4096", "bad key bits");
	bad("serverKeyType = dsa\n", 1, "ec or rsa", "bad key type");
	bad("workers = 0\n", 1, "auto or 1-64", "workers 0");
	bad("allowedPorts = 443,,80\n", 1, "empty list entry", "empty port entry");
	bad("allowedPorts = 0443\n", 1, "leading zeros", "port leading zero");
	bad("allowedPorts = 65536\n", 1, "1-65535", "port too big");
	bad("allowedPorts = 443,\n", 1, "empty list entry", "trailing comma");
	bad("allowedUdpPorts = 10500,0\n", 1, "1-65535", "UDP port 0");
	bad("allowedHosts = a b\n", 1, "invalid entry", "host with space");
	bad("trustedProxies = 10.0.0.0/33\n", 1, "invalid entry", "bad CIDR");
	bad("allowedHosts = 167772165\n", 1, "invalid entry", "decimal IPv4 spelling refused");
	bad("allowedHosts = 012.0.0.5\n", 1, "invalid entry", "octal IPv4 spelling refused");
	bad("consoleAddress = console..example\n", 1, "host or host:port", "empty label refused");
	bad("relayProId = not-a-uuid\n", 1, "not a UUID", "bad UUID");
	bad("consoleAddress = host:0\n", 1, "host or host:port", "console port 0");
	bad("consoleAddress = user@host\n", 1, "host or host:port", "console userinfo");
	bad("[httpsProxy]\nlisten = example.com:9443\n", 2, "IP:port", "listen on a name");
	bad("[httpsProxy]\nlisten = 127.0.0.1\n", 2, "IP:port", "listen without port");
	/* digits only, as allowedPorts (net_parse_listen's strtoul took these; fuzz_units) */
	bad("[httpsProxy]\nlisten = 127.0.0.1:+9443\n", 2, "IP:port", "listen port with a sign");
	bad("[httpsProxy]\nlisten = 127.0.0.1: 9443\n", 2, "IP:port", "listen port after a space");
	bad("[httpsProxy]\nlisten = [::1]:09443\n", 2, "IP:port", "listen port with a leading zero");
	bad("[clientAuthToken]\nduration = 25h\n", 2, "out of range", "token duration over 24h");
	bad("[limits]\nheaderTimeout = 0s\n", 2, "out of range", "zero duration");
	bad("[limits]\nidleTimeout = 10 minutes\n", 2, "not a duration", "bad duration");
	bad("[limits]\nmaxHeaderBytes = 100\n", 2, "out of range", "maxHeaderBytes too small");
	bad("[logger]\nmaxSize = 512\n", 2, "out of range", "log maxSize under 1 KiB");
	bad("[migration]\nvalidUntilAt = tomorrow\n", 2, "RFC 3339", "bad time");
	bad("[migration]\nconsoleAddress = new.example\n", 2, "needs both", "migration without time");
	bad("proxyProtocol = true\n", 1, "needs trustedProxies", "proxyProtocol without CIDRs");
	bad("certFile = tls/chain.pem\n", 1, "certFile: certFile and keyFile go together",
	    "certFile without keyFile");
	bad("consoleAddress = a.example\nkeyFile = tls.key\n", 2,
	    "keyFile: certFile and keyFile go together", "keyFile without certFile");
	CHECK_INT(load_text("certFile = tls/chain.pem\nkeyFile = /keys/tls.key\n"), ERR_OK,
	    "certFile and keyFile together");
	{
		char want[200];
		snprintf(want, sizeof want, "%s/tls/chain.pem", dir);
		CHECK_STR(cfg.cert_file, want, "certFile resolved against the config folder");
		CHECK_STR(cfg.key_file, "/keys/tls.key", "keyFile absolute kept");
	}
	setenv("RELAYPRO_CERT_FILE", "/run/secrets/tls.crt", 1);
	CHECK_INT(config_load(&cfg, "", err, sizeof err), ERR_INVAL, "RELAYPRO_CERT_FILE alone");
	CHECK(strstr(err, "environment RELAYPRO_CERT_FILE: certFile: certFile and keyFile go together")
	    != NULL, "RELAYPRO_CERT_FILE alone: the variable named");
	setenv("RELAYPRO_KEY_FILE", "/run/secrets/tls.key", 1);
	CHECK(config_load(&cfg, "", err, sizeof err) == ERR_OK &&
	    strcmp(cfg.cert_file, "/run/secrets/tls.crt") == 0 &&
	    strcmp(cfg.key_file, "/run/secrets/tls.key") == 0, "RELAYPRO_CERT_FILE and RELAYPRO_KEY_FILE");
	unsetenv("RELAYPRO_CERT_FILE");
	unsetenv("RELAYPRO_KEY_FILE");
	bad("just some words\n", 1, "syntax error", "line without =");
	bad("a = 1\n  indented = 2\n", 1, "unknown key", "unknown key before indented line");
	bad("[httpsProxy]\nlisten =\n", 2, "no listener enabled", "no listener at all");
	bad("[admin]\nlisten = 127.0.0.1:9443\n", 2, "port of its own", "admin on the https port (wildcard)");
	bad("[httpProxy]\nlisten = [::1]:8080\n[admin]\nlisten = [::1]:8080\n", 4, "port of its own",
	    "admin on the http listener's address");
	bad("[httpsProxy]\nlisten = 127.0.0.1:9000\n[admin]\nlisten = [::]:9000\n", 4, "port of its own",
	    "admin on [::] with the https port");
	CHECK_INT(load_text("[httpsProxy]\nlisten = 127.0.0.1:9000\n[admin]\nlisten = 127.0.0.2:9000\n"),
	    ERR_OK, "admin: same port, other address");
	CHECK_INT(load_text("[admin]\nlisten = 127.0.0.1:9100\n"), ERR_OK, "admin: own port");
	CHECK_STR(cfg.admin_listen, "127.0.0.1:9100", "admin.listen read");
	memset(line, 'x', sizeof line);
	memcpy(line, "securityToken = ", 16);
	line[16 + 190] = '\n';
	line[16 + 191] = 0;
	bad(line, 1, "line longer than 197 characters", "over-long line refused, not cut");
	{
		/* exactly at the limit: accepted */
		char ok[300];
		memset(ok, 'y', sizeof ok);
		memcpy(ok, "securityToken = ", 16);
		ok[197] = '\n';
		ok[198] = 0;
		CHECK_INT(load_text(ok), ERR_OK, "line of 197 characters accepted");
		CHECK_INT(strlen(cfg.security_token), 197 - 16, "value of the longest line kept whole");
	}
	CHECK_INT(config_load(&cfg, "/nonexistent/relaypro.ini", err, sizeof err), ERR_INVAL,
	    "missing file");
	CHECK(strstr(err, "/nonexistent/relaypro.ini: cannot open") != NULL, "missing file named");

	/* Secrets never in errors. */
	bad("securityToken = topsecretvalue\nrelayId = x\n", 2, "not an integer", "error after secret");
	CHECK(strstr(err, "topsecretvalue") == NULL, "secret not in the error");
	load_text("securityToken = topsecret\x01value\n");
	CHECK(strstr(err, "topsecret") == NULL, "bad secret value not echoed");

	/* Environment: precedence, names, unknown variables. */
	load_text("consoleAddress = file.example\norganizationId = 5\n");
	setenv("RELAYPRO_CONSOLE_ADDRESS", "env.example", 1);
	setenv("AIR_ORGANIZATION_ID", "9", 1);
	setenv("AIR_DEPLOYMENT_TOKEN", "dep-token", 1);
	CHECK_INT(load_text("consoleAddress = file.example\norganizationId = 5\n"), ERR_OK, "env loads");
	CHECK_STR(cfg.console_address, "env.example", "RELAYPRO_ env beats the file");
	CHECK_INT(cfg.organization_id, 5, "file beats AIR_");
	CHECK_STR(cfg.deployment_token, "dep-token", "AIR_ seeds what the file lacks");
	unsetenv("RELAYPRO_CONSOLE_ADDRESS");
	unsetenv("AIR_ORGANIZATION_ID");
	unsetenv("AIR_DEPLOYMENT_TOKEN");

	setenv("RELAYPRO_LIMITS_IDLE_TIMEOUT", "20m", 1);
	setenv("RELAYPRO_HTTPS_LISTEN", "127.0.0.1:19443", 1);
	CHECK_INT(config_load(&cfg, "", err, sizeof err), ERR_OK, "env-only config");
	CHECK_INT(cfg.idle_timeout, 1200, "RELAYPRO_LIMITS_IDLE_TIMEOUT");
	CHECK_STR(cfg.https_listen, "127.0.0.1:19443", "RELAYPRO_HTTPS_LISTEN alias");
	setenv("RELAYPRO_HTTPS_PROXY_LISTEN", "127.0.0.1:29443", 1);
	CHECK_INT(config_load(&cfg, "", err, sizeof err), ERR_OK, "alias and canonical");
	CHECK_STR(cfg.https_listen, "127.0.0.1:29443", "canonical name wins over the alias");
	unsetenv("RELAYPRO_HTTPS_PROXY_LISTEN");
	unsetenv("RELAYPRO_HTTPS_LISTEN");
	setenv("RELAYPRO_LIMITS_IDLE_TIMEOUT", "soon", 1);
	CHECK_INT(config_load(&cfg, "", err, sizeof err), ERR_INVAL, "bad env value");
	CHECK(strstr(err, "environment RELAYPRO_LIMITS_IDLE_TIMEOUT: limits.idleTimeout") != NULL,
	    "bad env value names the variable");
	unsetenv("RELAYPRO_LIMITS_IDLE_TIMEOUT");
	setenv("RELAYPRO_CONSOLE_ADRESS", "typo", 1);
	CHECK_INT(config_load(&cfg, "", err, sizeof err), ERR_INVAL, "unknown RELAYPRO_ variable");
	CHECK(strstr(err, "RELAYPRO_CONSOLE_ADRESS: unknown variable") != NULL, "typo named");
	unsetenv("RELAYPRO_CONSOLE_ADRESS");

	setenv("RELAYPRO_LOGGER_CONF", "fileName=/tmp/x.log,maxSize=2MiB,maxBackups=9,noCompress=true", 1);
	CHECK_INT(load_text("[logger]\nmaxSize = 1MiB\n"), ERR_OK, "RELAYPRO_LOGGER_CONF");
	CHECK(strcmp(cfg.log_file, "/tmp/x.log") == 0 && cfg.log_max_size == 2 << 20 &&
	    cfg.log_max_backups == 9 && cfg.log_no_compress == 1, "RELAYPRO_LOGGER_CONF overrides [logger]");
	setenv("RELAYPRO_LOGGER_CONF", "fileName=/tmp/x.log,colour=blue", 1);
	CHECK_INT(config_load(&cfg, "", err, sizeof err), ERR_INVAL, "bad RELAYPRO_LOGGER_CONF");
	CHECK(strstr(err, "RELAYPRO_LOGGER_CONF: colour: unknown key") != NULL, "bad logger key named");
	unsetenv("RELAYPRO_LOGGER_CONF");

	setenv("RELAYPRO_CA_BUNDLE_FILE", "/secrets/ca.pem", 1);
	CHECK_INT(config_load(&cfg, "", err, sizeof err), ERR_OK, "RELAYPRO_CA_BUNDLE_FILE");
	CHECK_STR(cfg.ca_bundle_file, "/secrets/ca.pem", "CA bundle from the environment");
	unsetenv("RELAYPRO_CA_BUNDLE_FILE");

	snprintf(line, sizeof line, "rm -rf %s", dir);
	CHECK(system(line) == 0, "temp dir removed");
}

/*
 * fuzz_config.c — the configuration (config*.c): the INI file and the RELAYPRO_*
 * environment, which reach the same value parsers (units.c, net.c, target.c, CIDRs,
 * UUIDs, lists).
 *
 * Byte 0 selects:
 *   0..127: the rest is the config file (written to a temporary file; config_load reads
 *           files only);
 *   128..253: the rest, up to its first NUL, is the value of one RELAYPRO_<KEY> variable
 *           (the key chosen by byte 0), loaded without a file;
 *   254..255: the rest is RELAYPRO_LOGGER_CONF.
 * A successful load is dumped to /dev/null (the dump path formats every value).
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "err.h"
#include "fuzz.h"

extern char **environ;

static const char *const keys[][2] = {
	{ "", "consoleAddress" }, { "", "registeredTo" }, { "", "organizationId" },
	{ "", "relayProId" }, { "", "relayId" }, { "", "securityToken" },
	{ "", "consoleCACert" }, { "", "proxyEnabled" }, { "", "debugLogging" },
	{ "", "deploymentToken" }, { "", "serverName" }, { "", "serverAltNames" },
	{ "", "serverKeyType" }, { "", "privateFolder" }, { "", "passwordFile" },
	{ "", "allowedHosts" }, { "", "allowedPorts" }, { "", "caKeyBits" }, { "", "workers" },
	{ "", "proxyProtocol" }, { "", "trustedProxies" }, { "httpsProxy", "listen" },
	{ "httpProxy", "listen" }, { "admin", "listen" }, { "clientAuthToken", "duration" },
	{ "clientAuthToken", "epoch" }, { "migration", "consoleAddress" },
	{ "migration", "validUntilAt" }, { "logger", "fileName" }, { "logger", "maxSize" },
	{ "logger", "maxAge" }, { "logger", "maxBackups" }, { "logger", "noCompress" },
	{ "limits", "maxConnections" }, { "limits", "maxHeaderBytes" },
	{ "limits", "headerTimeout" }, { "limits", "connectTimeout" },
	{ "limits", "idleTimeout" }, { "limits", "shutdownTimeout" }, { "limits", "clockSkew" },
	{ "limits", "authFailLimit" }, { "limits", "authFailBan" },
};
#define NKEYS (sizeof keys / sizeof keys[0])

static struct config cfg;
static int devnull = -1;

/* Drop every RELAYPRO_* and AIR_* variable the fuzzer was started with. */
static void
clean_env(void)
{
	char name[256];
	int again = 1;

	while (again) {
		char **e;
		again = 0;
		for (e = environ; e && *e; e++) {
			size_t n = strcspn(*e, "=");
			if ((strncmp(*e, "RELAYPRO_", 9) == 0 || strncmp(*e, "AIR_", 4) == 0) &&
			    n < sizeof name) {
				memcpy(name, *e, n);
				name[n] = 0;
				unsetenv(name);
				again = 1;
				break;
			}
		}
	}
}

static void
load(const char *path)
{
	char err[512];
	int rc;

	err[0] = 'x';
	rc = config_load(&cfg, path, err, sizeof err);
	FUZZ_ASSERT(rc == ERR_OK || rc == ERR_INVAL);
	if (rc == ERR_OK) {
		FUZZ_ASSERT(cfg.allowed_hosts.n >= 0 && cfg.allowed_hosts.n <= CFG_LIST_MAX);
		FUZZ_ASSERT(cfg.n_allowed_ports >= 0 && cfg.n_allowed_ports <= CFG_LIST_MAX);
		config_dump(&cfg, devnull);
		config_wipe(&cfg);
	} else {
		FUZZ_ASSERT(memchr(err, 0, sizeof err) != NULL && err[0] != 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[64], value[4096];
	size_t n;

	if (devnull < 0) {
		clean_env();
		devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	}
	if (size < 1)
		return 0;
	if (data[0] < 128) {
		const char *path = fuzz_tmpfile(data + 1, size - 1);
		if (path == NULL)
			return 0;
		load(path);
		unlink(path);
		return 0;
	}
	n = size - 1;
	if (memchr(data + 1, 0, n))
		n = (size_t)((const uint8_t *)memchr(data + 1, 0, n) - (data + 1));
	if (n >= sizeof value)
		return 0;
	memcpy(value, data + 1, n);
	value[n] = 0;
	if (data[0] >= 254)
		strcpy(name, "RELAYPRO_LOGGER_CONF");
	else
		config_env_name(name, sizeof name, keys[(data[0] - 128) % NKEYS][0],
		    keys[(data[0] - 128) % NKEYS][1]);
	if (setenv(name, value, 1) != 0)
		return 0;
	load("");
	unsetenv(name);
	return 0;
}

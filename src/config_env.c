/*
 * config_env.c — the environment's part of a load (docs/configuration.md): the install-time AIR_*
 * variables, RELAYPRO_LOGGER_CONF and RELAYPRO_<KEY> (with its two aliases), over what
 * the files set; and the name of each key's variable (config_env_name). See config.h.
 *
 * It owns which variables exist and their precedence among themselves; every value goes
 * through config.c's config_apply, so it must not parse values itself or touch struct
 * config directly. A RELAYPRO_* variable that is neither a key nor listed here fails the
 * load (a typo must not pass silently). Of the listed ones that are not keys, only
 * RELAYPRO_LOGGER_CONF is read here; the others where they are used (config.c, server.c,
 * spawn.c, workers.c).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_int.h"

extern char **environ;

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

/* RELAYPRO_LOGGER_CONF=fileName=...,maxSize=...,... */
static void
apply_logger_conf(struct cfg_loader *ld, const char *v)
{
	char item[CFG_PATH + 64];
	const char *p = v;

	while (*p && !ld->failed) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		char *eq;
		long k;

		if (n >= sizeof item) {
			config_fail(ld, "environment RELAYPRO_LOGGER_CONF: entry too long");
			return;
		}
		memcpy(item, p, n);
		item[n] = 0;
		eq = strchr(item, '=');
		if (eq == NULL) {
			config_fail(ld, "environment RELAYPRO_LOGGER_CONF: \"%s\": expected name=value", item);
			return;
		}
		*eq = 0;
		k = config_keys_find("logger", item);
		if (k < 0) {
			config_fail(ld, "environment RELAYPRO_LOGGER_CONF: %s: unknown key", item);
			return;
		}
		config_apply(ld, (size_t)k, eq + 1, FROM_LOGGER_CONF, 0, NULL);
		p = e ? e + 1 : p + n;
	}
}

/* see config_int.h */
void
config_env_apply(struct cfg_loader *ld)
{
	char name[64];
	char **e;
	size_t k, a;

	/* AIR_* first: they only seed what the file does not set. */
	for (a = 0; a < sizeof air_vars / sizeof air_vars[0]; a++) {
		const char *v = getenv(air_vars[a][0]);
		long kk = config_keys_find("", air_vars[a][1]);
		if (v && *v && kk >= 0 && ld->origin[kk] == FROM_DEFAULT)
			config_apply(ld, (size_t)kk, v, FROM_AIR, 0, air_vars[a][0]);
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
			config_fail(ld, "environment: %.60s...: unknown variable", *e);
			break;
		}
		memcpy(name, *e, n);
		name[n] = 0;
		for (a = 0; a < sizeof env_other / sizeof env_other[0]; a++)
			known |= strcmp(name, env_other[a]) == 0;
		for (a = 0; a < sizeof env_alias / sizeof env_alias[0]; a++)
			known |= strcmp(name, env_alias[a][0]) == 0;
		for (k = 0; k < CFG_NKEYS && !known; k++) {
			char want[64];
			config_env_name(want, sizeof want, config_keys[k].section, config_keys[k].name);
			known = strcmp(name, want) == 0;
		}
		if (!known)
			config_fail(ld, "environment %s: unknown variable (see docs/configuration.md)", name);
	}
	/* Aliases first, so the canonical name wins when both are set. */
	for (a = 0; a < sizeof env_alias / sizeof env_alias[0] && !ld->failed; a++) {
		const char *v = getenv(env_alias[a][0]);
		if (v == NULL)
			continue;
		for (k = 0; k < CFG_NKEYS; k++) {
			char want[64];
			config_env_name(want, sizeof want, config_keys[k].section, config_keys[k].name);
			if (strcmp(want, env_alias[a][1]) == 0)
				config_apply(ld, k, v, FROM_ENV, 0, env_alias[a][0]);
		}
	}
	for (k = 0; k < CFG_NKEYS && !ld->failed; k++) {
		const char *v;
		config_env_name(name, sizeof name, config_keys[k].section, config_keys[k].name);
		v = getenv(name);
		if (v)
			config_apply(ld, k, v, FROM_ENV, 0, name);
	}
}

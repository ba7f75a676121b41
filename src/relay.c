/*
 * relay.c — the shared state's policy and readiness. See relay.h.
 */
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "relay.h"
#include "resolve.h"
#include "tls.h"

/* see relay.h */
int
relay_set_policy(struct relay *rl, const struct config *cfg, char *err, size_t errlen)
{
	struct target_policy *p = &rl->policy;
	const char *names[RESOLVE_MAX_HOSTS];
	int n = 0, i;

	memset(p, 0, sizeof *p);
	if (cfg->console_address[0] &&
	    target_policy_set_console(p, cfg->console_address, strlen(cfg->console_address)) != ERR_OK) {
		snprintf(err, errlen, "consoleAddress: not a valid host");
		return ERR_INVAL;
	}
	if (cfg->migration_console_address[0] &&
	    target_policy_set_migration(p, cfg->migration_console_address,
	    strlen(cfg->migration_console_address), (time_t)cfg->migration_valid_until) != ERR_OK) {
		snprintf(err, errlen, "migration.consoleAddress: not a valid host");
		return ERR_INVAL;
	}
	for (i = 0; i < cfg->allowed_hosts.n; i++) {
		if (target_policy_add_host(p, cfg->allowed_hosts.item[i],
		    strlen(cfg->allowed_hosts.item[i])) != ERR_OK) {
			snprintf(err, errlen, "allowedHosts: %s: not a valid host", cfg->allowed_hosts.item[i]);
			return ERR_INVAL;
		}
	}
	for (i = 0; i < cfg->n_allowed_ports; i++)
		target_policy_add_port(p, cfg->allowed_ports[i]);
	/* The routes come from the environment, which cannot change in a running process:
	 * they are parsed once, at start, and a reload only switches proxyEnabled. Connections
	 * point into rl->routes (c->via) for their whole life, so it is never rewritten. */
	{
		static int routes_loaded;
		static char routes_err[160];
		if (!routes_loaded) {
			if (upstream_load_with(&rl->routes, 1, UPSTREAM_WITH_SOCKS5, routes_err,
			    sizeof routes_err) != ERR_OK)
				upstream_wipe(&rl->routes);
			else
				routes_err[0] = 0;
			routes_loaded = 1;
		}
		if (cfg->proxy_enabled && routes_err[0]) {
			snprintf(err, errlen, "%s", routes_err);
			return ERR_INVAL;
		}
		rl->routes.enabled = cfg->proxy_enabled;
	}

	/* Names (not IP literals) the resolver keeps fresh. */
	if (p->console.kind == TARGET_NAME)
		names[n++] = p->console.name;
	if (p->migration.kind == TARGET_NAME)
		names[n++] = p->migration.name;
	for (i = 0; i < (int)p->nhosts && n < RESOLVE_MAX_HOSTS; i++)
		if (p->hosts[i].kind == TARGET_NAME)
			names[n++] = p->hosts[i].name;
	if (rl->routes.https.set && rl->routes.https.host.kind == TARGET_NAME && n < RESOLVE_MAX_HOSTS)
		names[n++] = rl->routes.https.host.name;
	if (rl->routes.http.set && rl->routes.http.host.kind == TARGET_NAME && n < RESOLVE_MAX_HOSTS)
		names[n++] = rl->routes.http.host.name;
	resolve_set_hosts(names, n);
	return ERR_OK;
}

/* see relay.h */
int
relay_ready(const struct relay *rl, const char **reason)
{
	if (!rl->ca_loaded) {
		*reason = "ca_not_loaded";
		return 0;
	}
	if (rl->listening == 0) {
		*reason = "no_listener";
		return 0;
	}
	if (!rl->cfg->security_token[0] && rl->users == NULL) {
		*reason = "no_security_token";
		return 0;
	}
	if (rl->draining) {
		*reason = "shutting_down";
		return 0;
	}
	if (rl->cfg->https_listen[0] && tls_cert_expired(rl->now)) {
		*reason = "certificate_expired";
		return 0;
	}
	return 1;
}

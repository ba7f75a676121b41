/*
 * register_cmd.c — `relaypro register [-c FILE] [--env] [--timeout DURATION]` (register.h:
 * register_main): one registration in the foreground through register_once, then either
 * the RELAYPRO_RELAY_ID= / RELAYPRO_SECURITY_TOKEN= lines on stdout (--env) or the
 * write-back (cfgwrite_save). Its log lines go to stderr; it wipes the token it printed.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cfgwrite.h"
#include "config.h"
#include "err.h"
#include "log.h"
#include "probe.h"
#include "rand.h"
#include "register.h"
#include "secret.h"
#include "units.h"

/* see register.h */
int
register_main(int argc, char **argv)
{
	static struct config c; /* large: kept off the stack */
	char err[2 * CFG_PATH + 512], where[CFG_PATH], token[REG_TOKEN_MAX + 1];
	const char *cli = NULL, *cmd = NULL, *timeout_text = NULL;
	uint64_t timeout_s = 60;
	int64_t id = 0;
	int i, env = 0, rc, generated;

	cmd = probe_command(argc, argv);
	if (cmd == NULL || strcmp(cmd, "register") != 0)
		return REGISTER_NOT_MINE;
	if (probe_asks_usage(argc, argv)) /* main prints the usage (its table) and the version */
		return REGISTER_NOT_MINE;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a == cmd) {
			continue;
		} else if ((strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) && i + 1 < argc) {
			cli = argv[++i];
		} else if (strcmp(a, "--timeout") == 0 && i + 1 < argc) {
			timeout_text = argv[++i];
		} else if (strcmp(a, "--env") == 0) {
			env = 1;
		} else {
			fprintf(stderr, "relaypro register: unexpected argument %s "
			    "(relaypro register --help)\n", a);
			return 2;
		}
	}
	if (timeout_text && (units_duration(timeout_text, &timeout_s) != ERR_OK || timeout_s < 1 ||
	    timeout_s > 86400)) {
		fprintf(stderr, "relaypro register: --timeout: not a duration between 1s and 24h\n");
		return 2;
	}
	if (rand_init() != ERR_OK) {
		fprintf(stderr, "relaypro: getrandom() failed: %s\n", strerror(errno));
		return 1;
	}
	if (config_load(&c, config_pick_file(cli), err, sizeof err) != ERR_OK) {
		fprintf(stderr, "relaypro: config error: %s\n", err);
		return 2;
	}
	log_set_debug(c.debug_logging); /* the log stays on stderr */
	if (!c.console_address[0] || !c.deployment_token[0]) {
		fprintf(stderr, "relaypro register: needs consoleAddress and deploymentToken "
		    "(RELAYPRO_CONSOLE_ADDRESS, RELAYPRO_DEPLOYMENT_TOKEN)\n");
		config_wipe(&c);
		return 2;
	}
	generated = !c.relay_pro_id[0];
	if (generated) /* this registration's, when none is configured */
		rand_uuid4(c.relay_pro_id, sizeof c.relay_pro_id);
	rc = register_once(&c, (uint32_t)timeout_s * 1000, &id, token, sizeof token);
	if (rc != ERR_OK) {
		config_wipe(&c);
		return rc == ERR_CRYPTO ? 1 : rc == ERR_NOTFOUND ? 2 : 3;
	}
	if (env) {
		rc = printf("RELAYPRO_RELAY_ID=%lld\nRELAYPRO_SECURITY_TOKEN=%s\n", (long long)id,
		    token) < 0 || fflush(stdout) != 0;
		if (generated)
			fprintf(stderr, "relaypro register: relayProId %s was generated for this "
			    "registration; set RELAYPRO_RELAY_PRO_ID=%s where the relay runs to keep it\n",
			    c.relay_pro_id, c.relay_pro_id);
	} else {
		rc = cfgwrite_save(&c, id, token, where, sizeof where, err, sizeof err) != ERR_OK;
		if (rc)
			fprintf(stderr, "relaypro register: registered as relayId %lld but cannot save "
			    "it: %s (use --env)\n", (long long)id, err);
		else
			printf("registered as relayId %lld; saved in %s\n", (long long)id, where);
	}
	secret_wipe(token, sizeof token);
	config_wipe(&c);
	return rc ? 1 : 0;
}

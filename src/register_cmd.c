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
#include "rand.h"
#include "register.h"
#include "secret.h"
#include "units.h"

/* A relayProId for this registration when none is configured (UUID v4, as main does). */
static void
reg_pro_id(struct config *c)
{
	unsigned char u[16];

	if (c->relay_pro_id[0])
		return;
	rand_bytes(u, sizeof u);
	u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);
	u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
	snprintf(c->relay_pro_id, sizeof c->relay_pro_id,
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2],
	    u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

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

	for (i = 1; i < argc && cmd == NULL; i++) { /* the command word, past -c FILE */
		if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0)
			i++;
		else if (argv[i][0] != '-')
			cmd = argv[i];
	}
	if (cmd == NULL || strcmp(cmd, "register") != 0)
		return REGISTER_NOT_MINE;
	for (i = 1; i < argc; i++) /* main prints the usage (its table) and the version */
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "--version") == 0)
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
	reg_pro_id(&c);
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

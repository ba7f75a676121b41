/*
 * cfgwrite_tool.c — cfgwrite_update() from the command line, for the crash test in
 * tests/integration/test_register.py (kill -9 at random moments must leave the old or
 * the new file, never a torn one).
 *
 *   cfgwrite_tool once PATH RELAY_ID TOKEN   one update (registeredTo = console.test)
 *   cfgwrite_tool loop PATH                  updates forever, alternating relayId 1 /
 *                                            token-one and relayId 2 / token-two
 *   cfgwrite_tool check PATH                 config_load; prints "relayId=N"
 * Exit 0 on success, 1 with the error on standard error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfgwrite.h"
#include "config.h"
#include "err.h"

int
main(int argc, char **argv)
{
	static struct config cfg;
	char err[2048];
	unsigned long n;

	if (argc == 5 && strcmp(argv[1], "once") == 0) {
		if (cfgwrite_update(argv[2], atoll(argv[3]), "console.test", argv[4], NULL, err,
		    sizeof err) == ERR_OK)
			return 0;
	} else if (argc == 3 && strcmp(argv[1], "loop") == 0) {
		for (n = 0;; n++)
			if (cfgwrite_update(argv[2], n % 2 ? 2 : 1, "console.test",
			    n % 2 ? "token-two" : "token-one", NULL, err, sizeof err) != ERR_OK)
				break;
	} else if (argc == 3 && strcmp(argv[1], "check") == 0) {
		if (config_load(&cfg, argv[2], err, sizeof err) == ERR_OK) {
			printf("relayId=%lld\n", (long long)cfg.relay_id);
			return 0;
		}
	} else {
		snprintf(err, sizeof err, "usage: cfgwrite_tool once PATH ID TOKEN | loop PATH | check PATH");
	}
	fprintf(stderr, "cfgwrite_tool: %s\n", err);
	return 1;
}

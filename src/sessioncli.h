/*
 * sessioncli.h — `relaypro sessions [-c FILE]`: GET /sessions on the configured admin
 * listener (as `relaypro health` finds it: probe.h) and the open tunnels printed as a
 * table, one line per tunnel under a header line:
 *
 *   ID  TRANSPORT  CLIENT  SUB  TARGET  OPENED  UP  DOWN  IDLE
 *
 * (SUB: the token's sub or the password user, "-" when none; UP/DOWN: bytes; IDLE:
 * seconds since bytes last moved; a space or control byte in a text shows as '?').
 * Exit 0 once the whole table is printed, 1 when the relay does not answer (or not
 * 200, or the answer ends early: the reason on stderr), 2 on a bad configuration or
 * without an admin listener.
 */
#ifndef RELAYPRO_SESSIONCLI_H
#define RELAYPRO_SESSIONCLI_H

#define SESSIONCLI_NOT_MINE (-1)

/* Given main's whole argv: SESSIONCLI_NOT_MINE when the command word is not "sessions", or
 * -h, --help or --version is given (main prints the usage from its table), else the exit
 * status above. */
int sessioncli_main(int argc, char **argv);

#endif

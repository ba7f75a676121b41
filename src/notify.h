/*
 * notify.h — systemd's readiness protocol (sd_notify), written by hand: one datagram of
 * "KEY=value" lines to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or "@name" for
 * the abstract namespace). Without $NOTIFY_SOCKET every call does nothing, so the same
 * binary runs under systemd, in a container or by hand. Failures are ignored: readiness
 * reporting never stops the relay.
 */
#ifndef RELAYPRO_NOTIFY_H
#define RELAYPRO_NOTIFY_H

/* Send state (e.g. "READY=1\nSTATUS=relaying"). ERR_OK, or ERR_IO when it could not be
 * sent (including no $NOTIFY_SOCKET). */
int notify_send(const char *state);

/* RELOADING=1 with MONOTONIC_USEC (what systemd 253+ wants for Type=notify-reload). */
void notify_reloading(void);

#endif

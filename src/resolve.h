/*
 * resolve.h — DNS off the event loop (docs/protocol.md).
 *
 * The set of names the relay may connect to is known from the configuration (console,
 * migration console, allowedHosts), so one resolver thread keeps all of them resolved:
 * each name is looked up with getaddrinfo() when it enters the set and again every
 * RESOLVE_TTL_MS; a failed refresh keeps the last good answer. The loop only reads the
 * cache (resolve_lookup never blocks) and is woken through resolve_wake_fd() whenever an
 * answer changes, so connections waiting for a first answer can go on.
 * IP literals never reach this module: they are used as written.
 */
#ifndef RELAYPRO_RESOLVE_H
#define RELAYPRO_RESOLVE_H

#include "net.h"

#define RESOLVE_MAX_HOSTS 40
#define RESOLVE_MAX_ADDRS 8
#define RESOLVE_TTL_MS 60000
#define RESOLVE_RETRY_MS 2000  /* after a failure with no good answer yet */

/* Start the thread. ERR_IO on failure. */
int resolve_start(void);

/* Replace the set of names to keep resolved (answers for names kept are kept). */
void resolve_set_hosts(const char *const *names, int n);

/* The read end to poll; call resolve_drain() when it is readable. */
int resolve_wake_fd(void);
void resolve_drain(void);

/* Addresses for name with port set: ERR_OK (*n > 0), ERR_TRUNC (no answer yet: wait for
 * a wake-up) or ERR_NOTFOUND (resolution failed, or the name is not in the set). */
int resolve_lookup(const char *name, unsigned port, struct net_addr *out, int max, int *n);

#endif

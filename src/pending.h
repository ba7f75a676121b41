/*
 * pending.h — connections not yet admitted (docs/configuration.md): counted per client address and all
 * together, oldest first, so that one address, or a slowloris crowd spread over many, cannot
 * take the slots that Responders' tunnels need.
 *
 * A connection on a proxy listener is pending from accept until a tunnel request on it is
 * admitted (its TLS handshake, its head, its refusals and the relay's own answers are all
 * pending); admin connections never are, nor those accepted over maxConnections (they
 * get their 503 and end, within the loop's reserve of slots, and must not push a real
 * client out). The caller enforces the two caps with what this
 * module reports: maxPendingPerAddress per client address (the new connection over it is
 * closed), and half of maxConnections all together (the oldest pending connection is
 * closed to make room). With proxyProtocol a connection is counted per address only once
 * its PROXY header named the client (the balancer's own address is never capped); it is in
 * the queue, and so in the total, from accept.
 *
 * Owns: the per-address counts — chains of entries in a table of heads whose bucket is
 * SipHash-2-4 of the address (limit.h) under a random key drawn by this process at
 * pending_init, so nobody outside can choose addresses that share a chain — the queue in
 * accept order, and the limit.pending line. Must not touch: the connections themselves (the
 * caller closes the one named), the configuration (caps are arguments).
 *
 * Memory: the entries live in the connections (struct pending_entry, fixed size); the
 * table of heads is one block sized at start (a power of two, at least the connection
 * table's size), its pages untouched until used. Adding, removing and finding the oldest
 * are O(1); counting an address walks its chain: that address's pending connections (at
 * most the cap plus one) and the few others that hash there. The loop's thread only.
 */
#ifndef RELAYPRO_PENDING_H
#define RELAYPRO_PENDING_H

#include <stdint.h>

#include "net.h"

struct pending_entry {
	struct pending_entry *prev, *next;   /* the queue, oldest first */
	struct pending_entry *aprev, *anext; /* the chain of its bucket (counted only) */
	void *owner;                         /* the connection */
	unsigned char ip[16];                /* the address counted (IPv4 mapped) */
	uint32_t bucket;
	unsigned queued : 1, counted : 1;
};

/* The table for a connection table of nslots. ERR_OK, or ERR_IO when out of memory. */
int pending_init(int nslots);

/* A new pending connection (zeroed entry): into the queue, after every other. */
void pending_add(struct pending_entry *e, void *owner);

/* Count e under its client address a (once: later calls only return the count). Returns
 * how many pending connections that address has now, e included. */
int pending_count_addr(struct pending_entry *e, const struct net_addr *a);

/* e is no longer pending (admitted, or closed): out of the queue and its address's count.
 * Any number of times. */
void pending_remove(struct pending_entry *e);

/* The owner of the oldest pending connection, or NULL. */
void *pending_oldest(void);

/* How many connections are pending. */
int pending_total(void);

enum { PENDING_PER_ADDRESS = 0, PENDING_OLDEST = 1 };

/* The limit.pending line for a connection closed by a cap (why: PENDING_*; client: its
 * address as text; count and cap: the figures that tripped it). At most one line a second
 * per cause; lines held back are counted in the next one ("suppressed"). */
void pending_log(int why, const char *client, int count, int64_t cap, int64_t now_ms);

#endif

/*
 * tlscache.h — the TLS session cache every worker shares (docs/design.md: a session resumes
 * whichever worker receives it), as BearSSL's br_ssl_session_cache_class over a fixed
 * table in the shared region (shm.h, part SHM_TLSCACHE).
 *
 * Owns: the table's layout, where a session goes and how long it stays. Must not touch:
 * the engines (tls.c installs the cache on each one) or the region itself (shm.c).
 *
 * TLSCACHE_SESSIONS entries of 128 bytes, in sets of TLSCACHE_WAYS: a session ID picks its
 * set (the IDs the server saves are 32 random bytes BearSSL made, so a client cannot aim
 * at a set; one it sends is only looked up), a save takes the entry with the same ID, else
 * an empty one, else the oldest of the set. A session resumes for TLSCACHE_LIFETIME_S
 * after its full handshake (RFC 5246 advises at most a day).
 *
 * Lock-free, across processes: each entry has a sequence count, odd while a writer holds
 * it. A writer takes an entry by moving its count from even to odd (compare-and-swap; an
 * entry another worker is writing is left to it and the save is skipped: that session
 * only resumes less), copies the session in and makes the count even again (release). A
 * reader copies the entry out and keeps the copy only if the count was even and unchanged
 * around it, so it never uses half of a session. Nothing waits on anything.
 *
 * The master secrets live in the shared region, which only the supervisor and its
 * workers map; without a region (unit tests, the one-shot commands) the cache is empty
 * and never resumes.
 */
#ifndef RELAYPRO_TLSCACHE_H
#define RELAYPRO_TLSCACHE_H

#include <bearssl.h>

#define TLSCACHE_SESSIONS 4096      /* 512 KiB of the shared region, touched as used */
#define TLSCACHE_WAYS 4
#define TLSCACHE_LIFETIME_S 86400

/* Plan the cache's part of the shared region (before shm_create). */
void tlscache_plan(void);

/* The cache, to install on a server engine (br_ssl_server_set_cache). */
const br_ssl_session_cache_class **tlscache(void);

#endif

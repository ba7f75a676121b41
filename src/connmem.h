/*
 * connmem.h — the memory of connection blocks: page-aligned slots carved from mapped
 * chunks, a few freed ones kept for the next accepts.
 *
 * Owns: the chunks (anonymous mappings of CONNMEM_SLOTS slots of one size each), which
 * slots are free, the spares (freed slots whose pages are kept for reuse) and giving pages
 * back to the kernel. Must not touch: what a block holds (conn.c lays it out).
 *
 * Why not malloc: what an idle tunnel costs is the pages it has touched, and musl's
 * allocator writes a header just before a block and a footer at the end of its slot, so
 * each ~50 KiB block had two pages resident that held nothing but those words, and blocks
 * started at an arbitrary offset in a page. Here a block starts CONNMEM_OFFSET bytes into a
 * page, the slot's bookkeeping lives outside the mapping, and conn.c can place each buffer
 * so that the bytes an idle tunnel touched share pages (docs/design.md, "Memory per
 * connection").
 *
 * Freed blocks: the CONNMEM_SPARE_MAX most recently freed are kept with their pages for the
 * next get of the same size (a new mapping or fresh pages cost page faults, and giving pages
 * back costs a TLB shoot-down on the other CPU); an older one gives its pages back at once
 * (MADV_DONTNEED), and a chunk whose slots are all free and clean is unmapped. The spares
 * give theirs back once gets have paused for CONNMEM_SPARE_IDLE_MS (connmem_trim).
 * Chunks keep the number of mappings low (vm.max_map_count): one per CONNMEM_SLOTS blocks,
 * each marked MADV_NOHUGEPAGE (a huge page would make a sparse block wholly resident).
 *
 * Under AddressSanitizer blocks come from aligned_alloc and go back to free at once, so a
 * use after connmem_put is still caught.
 *
 * One set of chunks per process, used by its loop only: not thread-safe.
 */
#ifndef RELAYPRO_CONNMEM_H
#define RELAYPRO_CONNMEM_H

#include <stddef.h>
#include <stdint.h>

#define CONNMEM_PAGE 4096        /* the alignment conn.c lays buffers out against */
#define CONNMEM_OFFSET 64        /* a block starts this far into its first page */
#define CONNMEM_SLOTS 32         /* slots per chunk */
#define CONNMEM_SPARE_MAX 32     /* freed blocks kept with their pages */
#define CONNMEM_SPARE_IDLE_MS 5000 /* no get for this long: the spares give their pages back */

/* A block of at least size bytes, at CONNMEM_OFFSET bytes past a CONNMEM_PAGE boundary,
 * or NULL when memory or mappings run out. A block fresh from the kernel reads as zeros;
 * a spare holds what its last user left: the caller initialises what it reads. now (ms)
 * is the loop's clock (for connmem_trim). */
void *connmem_get(size_t size, int64_t now);

/* Give back a block from connmem_get. The caller wiped what must not stay in memory
 * (keys, credentials) before. */
void connmem_put(void *block);

/* Give the spares' pages back once no get came for CONNMEM_SPARE_IDLE_MS; cheap when
 * there are none (called every loop pass). */
void connmem_trim(int64_t now);

/* For tests: slots in use, spares, chunks mapped. */
void connmem_counts(size_t *used, size_t *spares, size_t *chunks);

#endif

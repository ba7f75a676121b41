/*
 * shm.h — the memory the relay's processes share: one region, laid out once at start and
 * fixed in size for the life of the process that made it.
 *
 * Owns: the region (making it, handing it to a worker, mapping it), its layout (where each
 * part lies, for how many workers), and the per-worker records any worker can read. Must
 * not touch: what the parts hold (metrics.c, tlscache.c, the modules that publish records).
 *
 * Who makes it: the first process — the supervisor with `workers` > 1, else the relay
 * itself — after the configuration is read and before any worker starts (run.c). With
 * workers it is a memfd: each worker is handed the descriptor at exec (spawn.c), maps it
 * and closes it, so the supervisor and every worker see the same bytes. Without workers
 * it is an anonymous mapping of the one process, so the users of the region have one code
 * path either way. An upgraded binary makes a region of its own (its layout may differ):
 * nothing in a region outlives the supervisor that made it.
 *
 * Layout: a header, then the parts in enum order. A part is planned before the region is
 * made (shm_plan, shm_plan_records: run.c's start order) with what it needs in each
 * worker's row and once for all. The header records every part's offsets and sizes, and
 * a worker takes the layout from the header, never from its own configuration (which may
 * have changed on disk since the supervisor read it): every process agrees on it. The
 * region holds no pointers (each process maps it at its own address), only offsets.
 *
 * Rows: each worker writes only its own row of a per-worker part (row shm_self()) and may
 * read every row (rows 0 .. shm_workers() - 1). The one process without workers is row 0
 * of 1. The supervisor clears the records of a worker that died (shm_rec_forget) before
 * its replacement starts. Shared parts (the TLS session cache) have their own rules, in
 * the module that owns them.
 *
 * Records: a per-worker part planned with shm_plan_records holds, in every row, `count`
 * records of one fixed size, each behind a sequence count, so that a reader in another
 * process copies a record whole or not at all, never half of one being written. The owner
 * publishes record i by writing it in place between shm_rec_begin and shm_rec_end, and
 * withdraws it with shm_rec_clear; any worker copies it out with
 * shm_rec_get. Nothing is locked: a writer never waits; a reader that meets a record in
 * the middle of a write tries a few times, then reports it busy. A record holds plain data
 * of its module's own fixed layout (no pointers), written by one process only.
 *
 * Before shm_create or shm_attach (unit tests, the one-shot commands) there is no region:
 * shm_workers() is 1, shm_self() 0, shm_row/shm_shared return NULL and the record
 * functions do nothing (shm_rec_get finds nothing).
 */
#ifndef RELAYPRO_SHM_H
#define RELAYPRO_SHM_H

#include <stddef.h>

/* The parts, in the order they lie in the region. */
enum shm_part {
	SHM_METRICS,   /* each row: one worker's counters and gauges (metrics.c) */
	SHM_TLSCACHE,  /* shared: the TLS session cache (tlscache.c) */
	SHM_SESSIONS,  /* records: each worker's open tunnels, for GET /sessions */
	SHM_PARTS
};

#define SHM_WORKERS_MAX 64   /* rows at most (the supervisor's limit on workers) */

/* Plan part p: `each` bytes in every worker's row and `shared` bytes once (either may be
 * 0). Only before shm_create; a later call for the same part replaces the earlier one. */
void shm_plan(enum shm_part p, size_t each, size_t shared);

/* Plan part p as records: in every worker's row, `count` records of `size` bytes each. */
void shm_plan_records(enum shm_part p, size_t size, unsigned count);

/* Make the region with `workers` rows (1 .. SHM_WORKERS_MAX) for what was planned; this
 * process is row 0 until shm_attach. share: a memfd others can map (shm_fd), else an
 * anonymous mapping of this process. ERR_OK, or ERR_IO / ERR_RANGE with a message. */
int shm_create(int workers, int share, char *err, size_t errlen);

/* The region's descriptor (close-on-exec), to hand to a worker; -1 when there is none. */
int shm_fd(void);

/* A worker: map the region behind fd (handed over by the supervisor, closed here whatever
 * happens), take its layout from its header and become row `self`. A record part this
 * process planned with another record size is refused (two binaries that disagree).
 * ERR_OK, or ERR_INVAL / ERR_IO with a message. */
int shm_attach(int fd, int self, char *err, size_t errlen);

/* Rows in the region (1 without one) and this process's row (0 without one). */
int shm_workers(void);
int shm_self(void);

/* Part p's bytes in worker w's row / its shared bytes; NULL when p was not planned (or
 * planned with 0 bytes there), w is out of range, or there is no region. 8-byte aligned,
 * zero-filled when the region is made. */
void *shm_row(enum shm_part p, int w);
void *shm_shared(enum shm_part p);

/* The bytes each row of part p has, and its shared bytes (0: none, or no region): a user
 * checks them against its own layout before using the part. */
size_t shm_row_size(enum shm_part p);
size_t shm_shared_size(enum shm_part p);

/* ---- records ----------------------------------------------------------------------- */

/* Records per row in part p (0 when p holds no records), and their size. In a worker this
 * is the supervisor's plan, which may differ from what the worker itself would plan. */
unsigned shm_rec_count(enum shm_part p);
size_t shm_rec_size(enum shm_part p);

/* One past the highest record index worker w has ever published in part p: readers scan
 * [0, shm_rec_used) of each row, not the whole row. */
unsigned shm_rec_used(enum shm_part p, int w);

/* This process's record i of part p, written in place: shm_rec_begin returns the record's
 * bytes (shm_rec_size of them, 8-byte aligned; NULL when i is out of range or there is no
 * region) and readers see "busy" until shm_rec_end publishes them. Between the two, write
 * that record only, and do not call other shm functions. */
void *shm_rec_begin(enum shm_part p, unsigned i);
void shm_rec_end(enum shm_part p, unsigned i);

/* Withdraw this process's record i (a reader then finds it empty). */
void shm_rec_clear(enum shm_part p, unsigned i);

/* Copy worker w's record i of part p into out (shm_rec_size bytes): 1 copied, 0 empty
 * (or out of range), -1 when it was being written at every try (it exists; a reader that
 * lists records skips it this time). */
int shm_rec_get(enum shm_part p, int w, unsigned i, void *out);

/* Back to no region and nothing planned (unit tests): unmapped, the descriptor closed. */
void shm_reset(void);

/* The supervisor, for a worker that has exited: withdraw every record of row w (its
 * connections are gone) before a replacement takes the row. */
void shm_rec_forget(int w);

#endif

/*
 * shm.c — the shared region: layout, memfd or anonymous mapping, records. See shm.h.
 *
 * The region starts with struct layout (offsets, never pointers), then every part in enum
 * order, each 64-byte aligned, and within a part the rows one after the other, each
 * 64-byte aligned, so two workers' counters never share a cache line. A record part's
 * row is a word (one past the highest index published), then the records, each two words
 * (sequence count, present) and the record's bytes rounded up to 8.
 *
 * The sequence count of a record is odd while its owner writes it. A reader loads it
 * (acquire), copies the record word by word, and loads it again after an acquire fence:
 * equal and even means the copy is whole. The writer makes it odd, fences (release),
 * writes, and makes it even again with a release store.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "shm.h"

#define SHM_MAGIC 0x316d7379616c6572ULL /* "relaysm1" */
#define ALIGN64(n) (((n) + 63) & ~(size_t)63)
#define ALIGN8(n) (((n) + 7) & ~(size_t)7)
#define REC_TRIES 8

struct part {
	uint64_t rows_off, each;        /* row w at rows_off + w * each (each: aligned) */
	uint64_t shared_off, shared;
	uint64_t rec_size, rec_count;   /* record parts only */
};

struct layout {
	uint64_t magic, size;
	uint32_t workers, nparts;
	struct part part[SHM_PARTS];
};

/* What this process planned, and the region it made or mapped. */
static struct {
	size_t each, shared, rec_size;
	unsigned rec_count;
} plan[SHM_PARTS];
static unsigned char *base;
static const struct layout *lay;
static int fd = -1, self;

/* see shm.h */
void
shm_plan(enum shm_part p, size_t each, size_t shared)
{
	plan[p].each = each;
	plan[p].shared = shared;
	plan[p].rec_size = 0;
	plan[p].rec_count = 0;
}

static size_t
rec_stride(size_t size)
{
	return 16 + ALIGN8(size);
}

/* see shm.h */
void
shm_plan_records(enum shm_part p, size_t size, unsigned count)
{
	plan[p].each = size && count ? 8 + (size_t)count * rec_stride(size) : 0;
	plan[p].shared = 0;
	plan[p].rec_size = size;
	plan[p].rec_count = size ? count : 0;
}

/* see shm.h */
int
shm_create(int workers, int share, char *err, size_t errlen)
{
	struct layout l;
	size_t off;
	void *m;
	int p;

	if (workers < 1 || workers > SHM_WORKERS_MAX) {
		snprintf(err, errlen, "shared memory: %d workers (1 to %d)", workers, SHM_WORKERS_MAX);
		return ERR_RANGE;
	}
	memset(&l, 0, sizeof l);
	l.magic = SHM_MAGIC;
	l.workers = (uint32_t)workers;
	l.nparts = SHM_PARTS;
	off = ALIGN64(sizeof l);
	for (p = 0; p < SHM_PARTS; p++) {
		l.part[p].each = ALIGN64(plan[p].each);
		l.part[p].rows_off = off;
		off += (size_t)workers * l.part[p].each;
		l.part[p].shared = plan[p].shared;
		l.part[p].shared_off = off;
		off += ALIGN64(plan[p].shared);
		l.part[p].rec_size = plan[p].rec_size;
		l.part[p].rec_count = plan[p].rec_count;
	}
	l.size = off;
	if (fd >= 0)
		close(fd);
	fd = -1;
	if (share) {
		fd = memfd_create("relaypro-shared", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (fd < 0 || ftruncate(fd, (off_t)off) != 0) {
			snprintf(err, errlen, "shared memory for the workers (memfd, %zu bytes): %s", off,
			    strerror(errno));
			if (fd >= 0)
				close(fd);
			fd = -1;
			return ERR_IO;
		}
		/* Its size is final: no process holding it can make another's mapping fault. */
		(void)fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
		m = mmap(NULL, off, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	} else {
		m = mmap(NULL, off, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	}
	if (m == MAP_FAILED) {
		snprintf(err, errlen, "shared memory (%zu bytes): %s", off, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
		return ERR_IO;
	}
	memcpy(m, &l, sizeof l);
	base = m;
	lay = m;
	self = 0;
	return ERR_OK;
}

/* see shm.h */
void
shm_reset(void)
{
	if (lay != NULL)
		munmap(base, (size_t)lay->size);
	if (fd >= 0)
		close(fd);
	fd = -1;
	base = NULL;
	lay = NULL;
	self = 0;
	memset(plan, 0, sizeof plan);
}

/* see shm.h */
int
shm_fd(void)
{
	return fd;
}

/* see shm.h */
int
shm_attach(int rfd, int me, char *err, size_t errlen)
{
	struct layout l;
	struct stat st;
	void *m;
	int p;

	if (fstat(rfd, &st) != 0 || (size_t)st.st_size < sizeof l ||
	    pread(rfd, &l, sizeof l, 0) != (ssize_t)sizeof l) {
		snprintf(err, errlen, "shared memory: descriptor %d is not the region", rfd);
		close(rfd);
		return ERR_INVAL;
	}
	if (l.magic != SHM_MAGIC || l.size != (uint64_t)st.st_size || l.nparts != SHM_PARTS ||
	    l.workers < 1 || l.workers > SHM_WORKERS_MAX || me < 0 || (uint32_t)me >= l.workers) {
		snprintf(err, errlen, "shared memory: not a region of this binary (or row %d of %u)",
		    me, l.workers);
		close(rfd);
		return ERR_INVAL;
	}
	for (p = 0; p < SHM_PARTS; p++) {
		if (plan[p].rec_size && l.part[p].rec_size && plan[p].rec_size != l.part[p].rec_size) {
			snprintf(err, errlen, "shared memory: records of part %d are %llu bytes, not %zu",
			    p, (unsigned long long)l.part[p].rec_size, plan[p].rec_size);
			close(rfd);
			return ERR_INVAL;
		}
	}
	m = mmap(NULL, (size_t)l.size, PROT_READ | PROT_WRITE, MAP_SHARED, rfd, 0);
	close(rfd);
	if (m == MAP_FAILED) {
		snprintf(err, errlen, "shared memory: %s", strerror(errno));
		return ERR_IO;
	}
	base = m;
	lay = m;
	self = me;
	return ERR_OK;
}

/* see shm.h */
int
shm_workers(void)
{
	return lay ? (int)lay->workers : 1;
}

/* see shm.h */
int
shm_self(void)
{
	return self;
}

/* see shm.h */
void *
shm_row(enum shm_part p, int w)
{
	if (!lay || (unsigned)p >= SHM_PARTS || w < 0 || (uint32_t)w >= lay->workers ||
	    lay->part[p].each == 0)
		return NULL;
	return base + lay->part[p].rows_off + (size_t)w * lay->part[p].each;
}

/* see shm.h */
void *
shm_shared(enum shm_part p)
{
	if (!lay || (unsigned)p >= SHM_PARTS || lay->part[p].shared == 0)
		return NULL;
	return base + lay->part[p].shared_off;
}

/* see shm.h */
size_t
shm_row_size(enum shm_part p)
{
	return lay && (unsigned)p < SHM_PARTS ? (size_t)lay->part[p].each : 0;
}

/* see shm.h */
size_t
shm_shared_size(enum shm_part p)
{
	return lay && (unsigned)p < SHM_PARTS ? (size_t)lay->part[p].shared : 0;
}

/* ---- records ----------------------------------------------------------------------- */

/* see shm.h */
unsigned
shm_rec_count(enum shm_part p)
{
	return lay && (unsigned)p < SHM_PARTS ? (unsigned)lay->part[p].rec_count : 0;
}

/* see shm.h */
size_t
shm_rec_size(enum shm_part p)
{
	return lay && (unsigned)p < SHM_PARTS ? (size_t)lay->part[p].rec_size : 0;
}

/* The row's high-water mark and record i (its sequence count first), or NULL. */
static uint64_t *
rec(enum shm_part p, int w, unsigned i, uint64_t **used)
{
	unsigned char *row = shm_row(p, w);

	if (row == NULL || i >= shm_rec_count(p))
		return NULL;
	*used = (uint64_t *)(void *)row;
	return (uint64_t *)(void *)(row + 8 + (size_t)i * rec_stride(lay->part[p].rec_size));
}

/* see shm.h */
unsigned
shm_rec_used(enum shm_part p, int w)
{
	uint64_t *used, *r = rec(p, w, 0, &used);

	return r ? (unsigned)__atomic_load_n(used, __ATOMIC_ACQUIRE) : 0;
}

/* see shm.h */
void *
shm_rec_begin(enum shm_part p, unsigned i)
{
	uint64_t *used, *r = rec(p, self, i, &used);

	if (r == NULL)
		return NULL;
	__atomic_store_n(&r[0], __atomic_load_n(&r[0], __ATOMIC_RELAXED) | 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	return r + 2;
}

/* Make record r even again, present or not; raise the row's mark past index i. */
static void
rec_publish(uint64_t *r, uint64_t *used, unsigned i, int present)
{
	__atomic_store_n(&r[1], (uint64_t)present, __ATOMIC_RELAXED);
	__atomic_store_n(&r[0], (__atomic_load_n(&r[0], __ATOMIC_RELAXED) | 1) + 1, __ATOMIC_RELEASE);
	if (present && __atomic_load_n(used, __ATOMIC_RELAXED) < (uint64_t)i + 1)
		__atomic_store_n(used, (uint64_t)i + 1, __ATOMIC_RELEASE);
}

/* see shm.h */
void
shm_rec_end(enum shm_part p, unsigned i)
{
	uint64_t *used, *r = rec(p, self, i, &used);

	if (r != NULL)
		rec_publish(r, used, i, 1);
}

/* see shm.h */
void
shm_rec_clear(enum shm_part p, unsigned i)
{
	uint64_t *used, *r = rec(p, self, i, &used);

	if (r == NULL)
		return;
	__atomic_store_n(&r[0], __atomic_load_n(&r[0], __ATOMIC_RELAXED) | 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	rec_publish(r, used, i, 0);
}

/* see shm.h */
int
shm_rec_get(enum shm_part p, int w, unsigned i, void *out)
{
	uint64_t *used, *r = rec(p, w, i, &used);
	size_t size = shm_rec_size(p), k;
	int t;

	if (r == NULL)
		return 0;
	for (t = 0; t < REC_TRIES; t++) {
		uint64_t s1 = __atomic_load_n(&r[0], __ATOMIC_ACQUIRE), s2, present;
		if (s1 & 1)
			continue;
		present = __atomic_load_n(&r[1], __ATOMIC_RELAXED);
		for (k = 0; present && k < size; k += 8) {
			uint64_t word = __atomic_load_n(&r[2 + k / 8], __ATOMIC_RELAXED);
			memcpy((unsigned char *)out + k, &word, size - k < 8 ? size - k : 8);
		}
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		s2 = __atomic_load_n(&r[0], __ATOMIC_RELAXED);
		if (s1 == s2)
			return present ? 1 : 0;
	}
	return -1;
}

/* see shm.h */
void
shm_rec_forget(int w)
{
	int p;

	for (p = 0; p < SHM_PARTS; p++) {
		unsigned i, n = shm_rec_used((enum shm_part)p, w);
		uint64_t *used, *r;
		for (i = 0; i < n; i++) {
			if ((r = rec((enum shm_part)p, w, i, &used)) == NULL)
				break;
			__atomic_store_n(&r[0], __atomic_load_n(&r[0], __ATOMIC_RELAXED) | 1,
			    __ATOMIC_RELAXED);
			__atomic_thread_fence(__ATOMIC_RELEASE);
			rec_publish(r, used, i, 0);
		}
		if (rec((enum shm_part)p, w, 0, &used) != NULL)
			__atomic_store_n(used, 0, __ATOMIC_RELEASE);
	}
}

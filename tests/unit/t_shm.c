/*
 * t_shm.c — the shared region (shm.h): layout and alignment, records written whole and
 * withdrawn, the high-water mark, a worker that maps the region through the descriptor in
 * another process and publishes a record its supervisor reads, forgetting a dead
 * worker's records, and descriptors that are not a region refused.
 */
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "shm.h"
#include "test.h"

struct rec {
	char name[13];   /* an odd size: records are rounded up inside the region */
	uint32_t n;
};

/* Publish *r as this process's record i the way the modules do (sessions.c): in place,
 * between shm_rec_begin and shm_rec_end. ERR_RANGE when begin finds no record. */
static int
put(unsigned i, const struct rec *r)
{
	void *dst = shm_rec_begin(SHM_SESSIONS, i);

	if (dst == NULL)
		return ERR_RANGE;
	memcpy(dst, r, sizeof *r);
	shm_rec_end(SHM_SESSIONS, i);
	return ERR_OK;
}

void
t_shm(void)
{
	char err[160];
	struct rec r, out;
	unsigned char *row0, *row1;
	int st, fd;
	pid_t pid;

	/* Without a region: one row, nothing stored, nothing found. */
	CHECK(shm_row(SHM_METRICS, 0) == NULL, "no region: no rows");
	memset(&r, 0, sizeof r);
	CHECK_INT(put(0, &r), ERR_RANGE, "no region: put refused");
	CHECK_INT(shm_rec_get(SHM_SESSIONS, 0, 0, &out), 0, "no region: get finds nothing");

	shm_plan(SHM_METRICS, 100, 0);
	shm_plan(SHM_TLSCACHE, 0, 1000);
	shm_plan_records(SHM_SESSIONS, sizeof r, 5);
	CHECK_INT(shm_create(0, 1, err, sizeof err), ERR_RANGE, "0 workers refused");
	CHECK_INT(shm_create(SHM_WORKERS_MAX + 1, 1, err, sizeof err), ERR_RANGE, "too many refused");
	CHECK_INT(shm_create(3, 1, err, sizeof err), ERR_OK, "created for 3 workers");
	CHECK(shm_fd() > 2, "a descriptor to hand over");
	CHECK(fcntl(shm_fd(), F_GETFD) & FD_CLOEXEC, "the descriptor is close-on-exec");
	CHECK_INT(shm_workers(), 3, "3 rows");
	CHECK_INT(shm_self(), 0, "the maker is row 0");
	row0 = shm_row(SHM_METRICS, 0);
	row1 = shm_row(SHM_METRICS, 1);
	CHECK(row0 && row1 && row1 - row0 == 128, "rows 64-byte aligned, one after the other");
	CHECK(((uintptr_t)row0 & 63) == 0, "row aligned");
	CHECK(shm_row(SHM_METRICS, 3) == NULL, "row out of range");
	CHECK(shm_row(SHM_TLSCACHE, 0) == NULL, "a shared-only part has no rows");
	CHECK(shm_shared(SHM_TLSCACHE) != NULL && shm_shared(SHM_METRICS) == NULL, "shared part");
	CHECK(((unsigned char *)shm_shared(SHM_TLSCACHE))[999] == 0, "zero-filled");
	CHECK_INT(shm_rec_count(SHM_SESSIONS), 5, "records per row");
	CHECK_INT(shm_rec_size(SHM_SESSIONS), sizeof r, "record size");

	/* Records: empty, put, read back, withdrawn; the mark stays a scan bound. */
	CHECK_INT(shm_rec_used(SHM_SESSIONS, 0), 0, "nothing published yet");
	CHECK_INT(shm_rec_get(SHM_SESSIONS, 0, 2, &out), 0, "empty record");
	memcpy(r.name, "tunnel-two..", 13);
	r.n = 7;
	CHECK_INT(put(2, &r), ERR_OK, "put record 2");
	CHECK_INT(put(5, &r), ERR_RANGE, "index past the row refused");
	CHECK_INT(shm_rec_used(SHM_SESSIONS, 0), 3, "mark past record 2");
	memset(&out, 0, sizeof out);
	CHECK_INT(shm_rec_get(SHM_SESSIONS, 0, 2, &out), 1, "record 2 read");
	CHECK_MEM(&out, &r, sizeof r, "record 2 whole");
	{
		struct rec *w = shm_rec_begin(SHM_SESSIONS, 1);
		CHECK(w != NULL, "begin in place");
		CHECK_INT(shm_rec_get(SHM_SESSIONS, 0, 1, &out), -1, "a record being written is busy");
		if (w) {
			w->n = 11;
			shm_rec_end(SHM_SESSIONS, 1);
		}
		CHECK_INT(shm_rec_get(SHM_SESSIONS, 0, 1, &out), 1, "published in place");
		CHECK_INT(out.n, 11, "in-place value");
	}
	shm_rec_clear(SHM_SESSIONS, 2);
	CHECK_INT(shm_rec_get(SHM_SESSIONS, 0, 2, &out), 0, "withdrawn");
	CHECK_INT(shm_rec_used(SHM_SESSIONS, 0), 3, "the mark does not move back on clear");

	/* Another process maps it as worker 1 and publishes; this one reads. */
	pid = fork();
	if (pid == 0) {
		char e2[160];
		int cfd = fcntl(shm_fd(), F_DUPFD_CLOEXEC, 3);
		struct rec c;
		memset(&c, 0, sizeof c);
		memcpy(c.name, "from-worker1", 13);
		c.n = 42;
		if (shm_attach(cfd, 1, e2, sizeof e2) != ERR_OK || shm_self() != 1 ||
		    put(4, &c) != ERR_OK)
			_exit(1);
		((unsigned char *)shm_row(SHM_METRICS, 1))[0] = 0x5a;
		_exit(fcntl(cfd, F_GETFD) == -1 ? 0 : 2); /* attach closed it */
	}
	CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "a worker attached in another process, and its descriptor was closed");
	CHECK_INT(shm_rec_get(SHM_SESSIONS, 1, 4, &out), 1, "the worker's record is visible");
	CHECK(memcmp(out.name, "from-worker1", 13) == 0 && out.n == 42, "... whole");
	CHECK_INT(shm_rec_used(SHM_SESSIONS, 1), 5, "... with its mark");
	CHECK_INT(row1[0], 0x5a, "the worker's row is the same memory");
	CHECK_INT(shm_rec_get(SHM_SESSIONS, 2, 4, &out), 0, "row 2 is empty");

	shm_rec_forget(1);
	CHECK_INT(shm_rec_get(SHM_SESSIONS, 1, 4, &out), 0, "a dead worker's records are forgotten");
	CHECK_INT(shm_rec_used(SHM_SESSIONS, 1), 0, "... and its mark reset");
	CHECK_INT(shm_rec_get(SHM_SESSIONS, 0, 1, &out), 1, "another row untouched");

	/* Not a region: refused, and closed. */
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	CHECK_INT(shm_attach(fd, 0, err, sizeof err), ERR_INVAL, "/dev/null is not a region");
	CHECK(fcntl(fd, F_GETFD) == -1, "... and was closed");
	fd = fcntl(shm_fd(), F_DUPFD_CLOEXEC, 3);
	CHECK_INT(shm_attach(fd, 3, err, sizeof err), ERR_INVAL, "row past the region refused");
	CHECK_INT(shm_self(), 0, "a refused attach changes nothing");

	/* Without sharing: an anonymous mapping, no descriptor. */
	CHECK_INT(shm_create(1, 0, err, sizeof err), ERR_OK, "a private region");
	CHECK_INT(shm_workers(), 1, "one row");
	CHECK(shm_row(SHM_METRICS, 0) != NULL, "with its row");
	shm_reset();
	CHECK(shm_row(SHM_METRICS, 0) == NULL && shm_fd() < 0 && shm_workers() == 1,
	    "reset: no region again");
}

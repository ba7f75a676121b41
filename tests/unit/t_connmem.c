/*
 * t_connmem.c — connection blocks (connmem.h): where a block starts in its page, blocks
 * that never overlap (a pattern written to each survives the others' use), spares reused
 * for the same size only, a chunk per 32 blocks, pages given back (mincore) for a block
 * freed past the spares and for the spares once gets pause, chunks unmapped when empty.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "connmem.h"
#include "test.h"

#define N 100
#define SIZE 53269 /* a TLS listener's block today */

static void
fill(unsigned char *p, size_t n, unsigned tag)
{
	size_t i;

	for (i = 0; i < n; i += 509)
		p[i] = (unsigned char)(tag + i);
	p[n - 1] = (unsigned char)tag;
}

static int
intact(const unsigned char *p, size_t n, unsigned tag)
{
	size_t i;

	for (i = 0; i < n; i += 509)
		if (p[i] != (unsigned char)(tag + i))
			return 0;
	return p[n - 1] == (unsigned char)tag;
}

#ifndef __SANITIZE_ADDRESS__
/* Whether the mapping holding p is marked "no huge pages" (VmFlags nh in smaps); -1 when
 * smaps cannot be read. */
static int
no_huge_pages(const void *p)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	unsigned long lo, hi, a = (unsigned long)(uintptr_t)p;
	int in = 0, r = 0;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) /* a mapping's first line */
			in = a >= lo && a < hi;
		else if (in && strncmp(line, "VmFlags:", 8) == 0) {
			r = strstr(line, " nh") != NULL;
			break;
		}
	}
	fclose(f);
	return r;
}

/* Resident pages of [p, p + n) (p anywhere in a page). */
static size_t
resident(const void *p, size_t n)
{
	uintptr_t a = (uintptr_t)p / CONNMEM_PAGE * CONNMEM_PAGE;
	size_t pages = ((uintptr_t)p + n - a + CONNMEM_PAGE - 1) / CONNMEM_PAGE, i, r = 0;
	unsigned char vec[64];

	if (pages > sizeof vec || mincore((void *)a, pages * CONNMEM_PAGE, vec) != 0)
		return (size_t)-1;
	for (i = 0; i < pages; i++)
		r += vec[i] & 1;
	return r;
}
#endif

void
t_connmem(void)
{
	unsigned char *b[N], *again, *other;
	size_t used, spares, chunks, i;
	int ok = 1, aligned = 1;

	for (i = 0; i < N; i++) {
		b[i] = connmem_get(SIZE, 1000);
		if (b[i] == NULL) {
			ok = 0;
			break;
		}
		aligned &= (uintptr_t)b[i] % CONNMEM_PAGE == CONNMEM_OFFSET;
		fill(b[i], SIZE, (unsigned)i);
	}
	CHECK(ok, "connmem: 100 blocks");
	if (!ok)
		return;
	CHECK(aligned, "connmem: every block starts CONNMEM_OFFSET into a page");
	for (i = 0; i < N && ok; i++)
		ok = intact(b[i], SIZE, (unsigned)i);
	CHECK(ok, "connmem: no block overlaps another");
	connmem_counts(&used, &spares, &chunks);
	CHECK_INT(used, N, "connmem: 100 in use");
#ifndef __SANITIZE_ADDRESS__
	CHECK_INT(chunks, (N + CONNMEM_SLOTS - 1) / CONNMEM_SLOTS, "connmem: a chunk per 32 blocks");
	/* qemu-user (make test's arm64 unit run) shows the host's smaps but applies no madvise
	 * hint but MADV_DONTNEED: there the check cannot be made, and says so. */
	if (t_emulated != NULL)
		printf("SKIP connmem: chunks marked no huge pages: %s applies no madvise hint\n",
		    t_emulated);
	else
		CHECK_INT(no_huge_pages(b[0]), 1, "connmem: chunks are marked no huge pages (VmFlags nh)");
#endif

	/* The last one freed comes back for the same size, its bytes as they were. */
	connmem_put(b[7]);
	again = connmem_get(SIZE, 1000);
#ifndef __SANITIZE_ADDRESS__
	CHECK(again == b[7], "connmem: a spare serves the next get of its size");
	CHECK(intact(again, SIZE, 7), "connmem: a spare keeps its pages");
#endif
	b[7] = again;
	fill(b[7], SIZE, 7);
	/* A spare of another size is not handed out. */
	connmem_put(b[8]);
	other = connmem_get(SIZE + 2 * CONNMEM_PAGE, 1000);
	CHECK(other != NULL && other != b[8], "connmem: a spare of another size is not reused");
	if (other) {
		fill(other, SIZE + 2 * CONNMEM_PAGE, 200);
		ok = 1;
		for (i = 0; i < N && ok; i++)
			ok = i == 8 || intact(b[i], SIZE, (unsigned)i);
		CHECK(ok, "connmem: a block of another size overlaps none");
		connmem_put(other);
	}
#ifndef __SANITIZE_ADDRESS__
	connmem_trim(1000 + CONNMEM_SPARE_IDLE_MS); /* both spares go: b[8]'s slot, other's chunk */
	connmem_counts(&used, &spares, &chunks);
	CHECK_INT(spares, 0, "connmem: spares given back once gets pause");
	CHECK_INT(chunks, (N + CONNMEM_SLOTS - 1) / CONNMEM_SLOTS,
	    "connmem: a chunk with nothing in use unmapped");
	CHECK_INT(resident(b[8], SIZE), 0, "connmem: a spare given back has no page resident");
#endif
	b[8] = connmem_get(SIZE, 1000);
	CHECK(b[8] != NULL, "connmem: get after a spare of another size");
	if (b[8] == NULL)
		return;
	fill(b[8], SIZE, 8);

	/* Freed past the spares: the newest are kept with their pages, the oldest gives its
	 * pages back at once. */
	for (i = 0; i < CONNMEM_SPARE_MAX; i++)
		connmem_put(b[i]);
	connmem_put(b[N - 1]); /* the 33rd: b[0], the oldest, goes (its chunk holds spares) */
#ifndef __SANITIZE_ADDRESS__
	CHECK(resident(b[N - 1], SIZE) > 0, "connmem: the newest spare's pages stay resident");
	CHECK_INT(resident(b[0], SIZE), 0, "connmem: the oldest spare past the limit gives its pages back");
#endif
	for (i = CONNMEM_SPARE_MAX; i < N - 1; i++)
		connmem_put(b[i]);
	connmem_counts(&used, &spares, &chunks);
	CHECK_INT(used, 0, "connmem: none in use after all put");
#ifndef __SANITIZE_ADDRESS__
	CHECK_INT(spares, CONNMEM_SPARE_MAX, "connmem: CONNMEM_SPARE_MAX spares kept");
	/* the last 32 put, b[67..98], lie in the third and fourth chunks */
	CHECK_INT(chunks, 2, "connmem: only the chunks holding spares stay mapped");
	/* A size nobody asked for lately does not hold the places: a block of another size,
	 * freed now, is kept (its bytes come back) and the oldest spare makes room. */
	other = connmem_get(SIZE + 2 * CONNMEM_PAGE, 1000);
	CHECK(other != NULL, "connmem: a block of another size");
	if (other) {
		fill(other, SIZE + 2 * CONNMEM_PAGE, 201);
		connmem_put(other);
		again = connmem_get(SIZE + 2 * CONNMEM_PAGE, 1000);
		CHECK(again == other && intact(again, SIZE + 2 * CONNMEM_PAGE, 201),
		    "connmem: the newest spare is kept whatever its size");
		if (again)
			connmem_put(again);
	}
	connmem_trim(1000 + CONNMEM_SPARE_IDLE_MS - 1);
	connmem_counts(&used, &spares, &chunks);
	CHECK_INT(spares, CONNMEM_SPARE_MAX, "connmem: spares kept while gets are recent");
	connmem_trim(1000 + CONNMEM_SPARE_IDLE_MS);
	connmem_counts(&used, &spares, &chunks);
	CHECK_INT(spares + chunks, 0, "connmem: spares and their chunks given back once gets pause");
#endif

	/* A fresh block reads as zeros (a new mapping), and churn keeps the counts straight. */
	for (i = 0; i < N; i++) {
		b[i] = connmem_get(SIZE, 9000);
		if (b[i] == NULL)
			return;
	}
#ifndef __SANITIZE_ADDRESS__
	CHECK(b[N - 1][SIZE - 1] == 0 && b[N - 1][0] == 0, "connmem: a fresh block reads as zeros");
#endif
	for (i = 0; i < N; i += 2)
		connmem_put(b[i]);
	for (i = 0; i < N; i += 2) {
		b[i] = connmem_get(SIZE, 9000);
		if (b[i] == NULL)
			return;
		fill(b[i], SIZE, (unsigned)i + 1);
	}
	ok = 1;
	for (i = 0; i < N && ok; i += 2)
		ok = intact(b[i], SIZE, (unsigned)i + 1);
	CHECK(ok, "connmem: blocks handed out again never overlap");
	for (i = 0; i < N; i++)
		connmem_put(b[i]);
	connmem_trim(9000 + CONNMEM_SPARE_IDLE_MS);
	connmem_counts(&used, &spares, &chunks);
	CHECK_INT(used + spares + chunks, 0, "connmem: everything given back in the end");
}

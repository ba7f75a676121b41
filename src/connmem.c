/*
 * connmem.c — connection blocks in page-aligned slots of mapped chunks. See connmem.h.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "connmem.h"

#define ALL_SLOTS ((uint32_t)((1ull << CONNMEM_SLOTS) - 1))

#ifdef __SANITIZE_ADDRESS__

static size_t asan_used;

void *
connmem_get(size_t size, int64_t now)
{
	size_t n = (size + CONNMEM_OFFSET + CONNMEM_PAGE - 1) / CONNMEM_PAGE * CONNMEM_PAGE;
	unsigned char *p = aligned_alloc(CONNMEM_PAGE, n);

	(void)now;
	if (p == NULL)
		return NULL;
	asan_used++;
	return p + CONNMEM_OFFSET;
}

void
connmem_put(void *block)
{
	asan_used--;
	free((unsigned char *)block - CONNMEM_OFFSET);
}

void
connmem_trim(int64_t now)
{
	(void)now;
}

void
connmem_counts(size_t *used, size_t *spares, size_t *chunks)
{
	*used = asan_used;
	*spares = 0;
	*chunks = 0;
}

#else

/* One mapping of CONNMEM_SLOTS slots of one stride. The struct is allocated apart, so
 * the bookkeeping never keeps a page of the mapping resident. */
struct chunk {
	unsigned char *base;
	size_t stride;               /* bytes per slot: a multiple of the page size */
	uint32_t freed;              /* bit i: slot i is not in use (clean or a spare) */
	uint32_t spare;              /* bit i: slot i is a spare: free, its pages kept */
	struct chunk *prev, *next;   /* the chunks with a clean free slot (avail) */
	int listed;                  /* on the avail list */
};

/* What the first CONNMEM_OFFSET bytes of a slot hold, before the caller's block. */
struct slot_head {
	struct chunk *ch;
	unsigned idx;
};

static struct chunk *avail;      /* chunks with freed & ~spare != 0 */
static size_t nchunks, nused;
static struct {
	struct chunk *ch;
	unsigned idx;
} spares[CONNMEM_SPARE_MAX];
static int nspare;
static int64_t last_get_ms;
static size_t page_size;

static void
avail_add(struct chunk *ch)
{
	if (ch->listed)
		return;
	ch->prev = NULL;
	ch->next = avail;
	if (avail)
		avail->prev = ch;
	avail = ch;
	ch->listed = 1;
}

static void
avail_remove(struct chunk *ch)
{
	if (!ch->listed)
		return;
	if (ch->prev)
		ch->prev->next = ch->next;
	else
		avail = ch->next;
	if (ch->next)
		ch->next->prev = ch->prev;
	ch->listed = 0;
}

static unsigned char *
slot_at(const struct chunk *ch, unsigned idx)
{
	return ch->base + (size_t)idx * ch->stride;
}

static void *
hand_out(struct chunk *ch, unsigned idx)
{
	struct slot_head *h = (struct slot_head *)(void *)slot_at(ch, idx);

	ch->freed &= ~(1u << idx);
	ch->spare &= ~(1u << idx);
	if ((ch->freed & ~ch->spare) == 0)
		avail_remove(ch);
	h->ch = ch;
	h->idx = idx;
	nused++;
	return (unsigned char *)h + CONNMEM_OFFSET;
}

/* A free slot's pages go back to the kernel; a chunk with nothing in use and no spare
 * goes back whole. */
static void
release(struct chunk *ch, unsigned idx)
{
	ch->freed |= 1u << idx;
	ch->spare &= ~(1u << idx);
	if (ch->freed == ALL_SLOTS && ch->spare == 0) {
		avail_remove(ch);
		munmap(ch->base, CONNMEM_SLOTS * ch->stride);
		free(ch);
		nchunks--;
		return;
	}
	/* Should it fail, the pages stay resident and are reused as they are. */
	(void)madvise(slot_at(ch, idx), ch->stride, MADV_DONTNEED);
	avail_add(ch);
}

/* see connmem.h */
void *
connmem_get(size_t size, int64_t now)
{
	size_t stride;
	struct chunk *ch;
	int i;

	if (page_size == 0) {
		long ps = sysconf(_SC_PAGESIZE);
		page_size = ps > CONNMEM_PAGE ? (size_t)ps : CONNMEM_PAGE;
	}
	if (size > SIZE_MAX / CONNMEM_SLOTS - CONNMEM_OFFSET - page_size)
		return NULL;
	stride = (size + CONNMEM_OFFSET + page_size - 1) / page_size * page_size;
	last_get_ms = now;
	for (i = nspare - 1; i >= 0; i--) { /* the newest first; the rest keep their age order */
		if (spares[i].ch->stride == stride) {
			ch = spares[i].ch;
			unsigned idx = spares[i].idx;
			memmove(&spares[i], &spares[i + 1], (size_t)(nspare - 1 - i) * sizeof spares[0]);
			nspare--;
			return hand_out(ch, idx);
		}
	}
	for (ch = avail; ch; ch = ch->next) {
		if (ch->stride == stride)
			return hand_out(ch, (unsigned)__builtin_ctz(ch->freed & ~ch->spare));
	}
	ch = calloc(1, sizeof *ch);
	if (ch == NULL)
		return NULL;
	ch->base = mmap(NULL, CONNMEM_SLOTS * stride, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ch->base == MAP_FAILED) {
		free(ch);
		return NULL;
	}
	/* Never huge pages: with transparent huge pages "always" (some distributions' default)
	 * a fault here, or khugepaged later, would make 2 MiB resident where an idle block
	 * keeps four small pages. Should it fail, the kernel's default stays. */
	(void)madvise(ch->base, CONNMEM_SLOTS * stride, MADV_NOHUGEPAGE);
	ch->stride = stride;
	ch->freed = ALL_SLOTS;
	nchunks++;
	avail_add(ch);
	return hand_out(ch, 0);
}

/* see connmem.h */
void
connmem_put(void *block)
{
	struct slot_head *h = (struct slot_head *)(void *)((unsigned char *)block - CONNMEM_OFFSET);
	struct chunk *ch = h->ch;
	unsigned idx = h->idx;

	nused--;
	/* The newest block is kept and, when the spares are full, the oldest gives its pages
	 * back: spares of a size nobody asks for any more (another listener's, or the size
	 * before a reload changed maxHeaderBytes) age out under load instead of holding
	 * every place while each close of the busy size pays for its pages. */
	if (nspare == CONNMEM_SPARE_MAX) {
		struct chunk *old = spares[0].ch;
		unsigned oidx = spares[0].idx;

		memmove(&spares[0], &spares[1], (CONNMEM_SPARE_MAX - 1) * sizeof spares[0]);
		nspare--;
		release(old, oidx);
	}
	ch->freed |= 1u << idx;
	ch->spare |= 1u << idx;
	spares[nspare].ch = ch;
	spares[nspare++].idx = idx;
}

/* see connmem.h */
void
connmem_trim(int64_t now)
{
	if (nspare == 0 || now - last_get_ms < CONNMEM_SPARE_IDLE_MS)
		return;
	while (nspare > 0) {
		nspare--;
		release(spares[nspare].ch, spares[nspare].idx);
	}
}

/* see connmem.h */
void
connmem_counts(size_t *used, size_t *nspares, size_t *chunks)
{
	*used = nused;
	*nspares = (size_t)nspare;
	*chunks = nchunks;
}

#endif

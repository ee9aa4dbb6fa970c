/*
 * SPSC ring in shared memory: byte positions head (consumer) and tail
 * (producer) grow monotonically; a record is { u32 len, u16 type, u16 0,
 * payload } padded to 8 bytes and never wraps (a pad record fills the end
 * instead).  The capacity comes from the caller (struct ring_ref), never
 * from shared memory, and the consumer validates head, tail and each
 * record header from one local snapshot.  The producer publishes a record by a release store of tail
 * after writing it; the consumer reads tail with acquire, so a process
 * that dies mid-push leaves nothing half-visible.  One producer and one
 * consumer at a time: a respawned worker simply continues from the
 * positions in shared memory.
 *
 * Doorbells: the consumer raises `waiting` (and re-checks the ring)
 * before it may sleep; a producer signals only when it finds the flag
 * up, clearing it, so a busy consumer is never woken and a sleeping one
 * is woken once however many records arrive.  Both sides order the flag
 * and the position with seq_cst fences (a store then a load each, as in
 * Dekker's protocol), so either the consumer sees the record or the
 * producer sees the flag.  A consumer that died with the flag down
 * costs nothing: its successor checks the ring on its first round.
 */
#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/ring.h"

#define REC_HDR		8
#define PAD_TYPE	0xffff

struct ring {
	alignas(64) _Atomic uint64_t	head;
	alignas(64) _Atomic uint64_t	tail;
	alignas(64) _Atomic uint64_t	drops;
	_Atomic uint64_t		pushed;
	alignas(64) _Atomic uint32_t	waiting;	/* consumer may sleep */
	alignas(64) uint8_t		data[];
};

static size_t
ring_bytes(size_t capacity)
{
	return (sizeof(struct ring) + capacity + 63) & ~(size_t)63;
}

size_t
ring_set_size(int n, size_t capacity)
{
	return (size_t)n * (size_t)n * ring_bytes(capacity);
}

void *
ring_set_create(int n, size_t capacity)
{
	size_t	len = ring_set_size(n, capacity);
	void	*mem;
	int	fd, i, j;

	if (n < 1 || capacity < 4096 || (capacity & (capacity - 1)) != 0) {
		errno = EINVAL;
		return NULL;
	}
	if ((fd = memfd_create("derpd-rings", MFD_CLOEXEC)) == -1)
		return NULL;
	if (ftruncate(fd, (off_t)len) == -1) {
		close(fd);
		return NULL;
	}
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (mem == MAP_FAILED)
		return NULL;
	for (i = 0; i < n; i++)
		for (j = 0; j < n; j++) {
			struct ring	*r = ring_set_get(mem, n, capacity, i,
					    j).r;

			atomic_init(&r->head, 0);
			atomic_init(&r->tail, 0);
			atomic_init(&r->drops, 0);
			atomic_init(&r->pushed, 0);
			atomic_init(&r->waiting, 1);
		}
	return mem;
}

void
ring_set_destroy(void *set, int n, size_t capacity)
{
	if (set != NULL)
		munmap(set, ring_set_size(n, capacity));
}

struct ring_ref
ring_set_get(void *set, int n, size_t capacity, int from, int to)
{
	struct ring_ref	rr;

	rr.r = (struct ring *)((uint8_t *)set + ((size_t)from * (size_t)n +
	    (size_t)to) * ring_bytes(capacity));
	rr.cap = capacity;
	return rr;
}

static size_t
rec_size(size_t payload)
{
	return (REC_HDR + payload + 7) & ~(size_t)7;
}

static void
put_hdr(uint8_t *p, uint32_t len, uint16_t type)
{
	memcpy(p, &len, 4);
	memcpy(p + 4, &type, 2);
	memset(p + 6, 0, 2);
}

int
ring_push(struct ring_ref rr, uint16_t type, const void *a, size_t alen,
    const void *b, size_t blen)
{
	struct ring	*r = rr.r;
	uint64_t	 head, tail, off, room_end, cap = rr.cap;
	size_t		 need = rec_size(alen + blen);

	if (need > cap / 4 || type == PAD_TYPE)
		return -EMSGSIZE;
	tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	head = atomic_load_explicit(&r->head, memory_order_acquire);
	off = tail & (cap - 1);
	room_end = cap - off;
	if (room_end < need) {
		/* Pad to the end, then start at offset 0. */
		if (cap - (tail - head) < room_end + need)
			goto full;
		put_hdr(r->data + off, (uint32_t)(room_end - REC_HDR),
		    PAD_TYPE);
		tail += room_end;
		off = 0;
	} else if (cap - (tail - head) < need) {
		goto full;
	}
	put_hdr(r->data + off, (uint32_t)(alen + blen), type);
	if (alen > 0)
		memcpy(r->data + off + REC_HDR, a, alen);
	if (blen > 0)
		memcpy(r->data + off + REC_HDR + alen, b, blen);
	atomic_store_explicit(&r->tail, tail + need, memory_order_release);
	atomic_fetch_add_explicit(&r->pushed, 1, memory_order_relaxed);
	return 0;
full:
	atomic_fetch_add_explicit(&r->drops, 1, memory_order_relaxed);
	return -ENOSPC;
}

/*
 * Every value read from the ring is read once into a local and checked
 * before use: positions within one capacity of each other, a header and
 * its payload inside both the queued bytes and the end of the buffer.
 * A pad record fills exactly the rest of the buffer, so one per peek at
 * most; anything else is -EPROTO.
 */
int
ring_peek(struct ring_ref rr, uint16_t *type, const uint8_t **data,
    size_t *len)
{
	struct ring	*r = rr.r;
	uint64_t	 head, tail, off, cap = rr.cap;
	uint32_t	 l;
	uint16_t	 t;
	int		 pads = 0;

	for (;;) {
		head = atomic_load_explicit(&r->head, memory_order_relaxed);
		tail = atomic_load_explicit(&r->tail, memory_order_acquire);
		if (head == tail)
			return -EAGAIN;
		off = head & (cap - 1);
		if (tail - head < REC_HDR || tail - head > cap ||
		    cap - off < REC_HDR)
			return -EPROTO;
		memcpy(&l, r->data + off, 4);
		memcpy(&t, r->data + off + 4, 2);
		if (rec_size(l) > cap - off || rec_size(l) > tail - head)
			return -EPROTO;
		if (t == PAD_TYPE) {
			if (pads++ > 0 || rec_size(l) != cap - off)
				return -EPROTO;
			atomic_store_explicit(&r->head, head + rec_size(l),
			    memory_order_release);
			continue;
		}
		*type = t;
		*data = r->data + off + REC_HDR;
		*len = l;
		return 0;
	}
}

void
ring_pop(struct ring_ref rr, size_t len)
{
	uint64_t	head = atomic_load_explicit(&rr.r->head,
			    memory_order_relaxed);

	/* The length peek checked, not the header again: it may have
	 * changed since. */
	atomic_store_explicit(&rr.r->head, head + rec_size(len),
	    memory_order_release);
}

void
ring_reset(struct ring_ref rr)
{
	atomic_store_explicit(&rr.r->head, atomic_load_explicit(&rr.r->tail,
	    memory_order_acquire), memory_order_release);
}

bool
ring_sleep(struct ring_ref rr)
{
	struct ring	*r = rr.r;
	uint64_t	 head, tail;

	atomic_store_explicit(&r->waiting, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	head = atomic_load_explicit(&r->head, memory_order_relaxed);
	tail = atomic_load_explicit(&r->tail, memory_order_acquire);
	return head == tail;
}

void
ring_awake(struct ring_ref rr)
{
	struct ring	*r = rr.r;

	if (atomic_load_explicit(&r->waiting, memory_order_relaxed) != 0)
		atomic_store_explicit(&r->waiting, 0, memory_order_relaxed);
}

bool
ring_need_signal(struct ring_ref rr)
{
	struct ring	*r = rr.r;

	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&r->waiting, memory_order_relaxed) == 0)
		return false;
	return atomic_exchange_explicit(&r->waiting, 0,
	    memory_order_acq_rel) != 0;
}

uint64_t
ring_drops(struct ring_ref rr)
{
	return atomic_load_explicit(&rr.r->drops, memory_order_relaxed);
}

uint64_t
ring_pushed(struct ring_ref rr)
{
	return atomic_load_explicit(&rr.r->pushed, memory_order_relaxed);
}

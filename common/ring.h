/*
 * Shared-memory single-producer / single-consumer rings that carry
 * packets between worker processes.  The supervisor maps one region for
 * all N x N rings before fork; worker i produces into ring (i -> j) and
 * worker j consumes it.  Push never blocks: a full ring is an error the
 * caller counts as a drop.
 */
#ifndef COMMON_RING_H
#define COMMON_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ring;

/*
 * A ring and its capacity as this process knows it.  Everything in the
 * shared mapping may have been overwritten by a sibling that crashed
 * mid-write or is compromised, so the capacity is never read back from
 * it, and the consumer checks every position and length it reads before
 * using it.
 */
struct ring_ref {
	struct ring	*r;
	size_t		 cap;
};

/* Bytes of shared memory for n x n rings of capacity bytes each
 * (capacity: a power of two, at least 4 KiB). */
size_t	ring_set_size(int n, size_t capacity);
/* Map and initialise the set (memfd + MAP_SHARED).  Returns the mapping
 * or NULL with errno set. */
void	*ring_set_create(int n, size_t capacity);
void	 ring_set_destroy(void *set, int n, size_t capacity);
/* The ring carrying records from worker `from` to worker `to`. */
struct ring_ref ring_set_get(void *set, int n, size_t capacity, int from,
	    int to);

/*
 * Append one record made of two segments (a header and a packet, so the
 * caller needs no staging copy).  0, -ENOSPC when full (counted in the
 * ring's drop counter), -EMSGSIZE when larger than a quarter of the ring.
 */
int	ring_push(struct ring_ref r, uint16_t type, const void *a, size_t alen,
	    const void *b, size_t blen);
/* Look at the oldest record: 0, -EAGAIN when empty, -EPROTO when the
 * ring's contents are inconsistent (the caller resets it).  On 0,
 * data[0..len) lies inside the ring (its bytes may still change under a
 * misbehaving producer: copy what must not). */
int	ring_peek(struct ring_ref r, uint16_t *type, const uint8_t **data,
	    size_t *len);
/* Release the record ring_peek returned, of payload length len. */
void	ring_pop(struct ring_ref r, size_t len);
/* Consumer side: drop everything queued (after -EPROTO). */
void	ring_reset(struct ring_ref r);

/*
 * Wakeups (see ring.c).  Consumer, before it may sleep: ring_sleep()
 * raises the ring's waiting flag and returns true when the ring is
 * empty (sleep; a producer will signal), false when records arrived
 * meanwhile (drain again first).  Consumer, awake and about to drain:
 * ring_awake() lowers the flag so producers skip the doorbell.
 * Producer, after its pushes: ring_need_signal() is true exactly once
 * per raised flag (it lowers it): then write the consumer's doorbell.
 */
bool	ring_sleep(struct ring_ref r);
void	ring_awake(struct ring_ref r);
bool	ring_need_signal(struct ring_ref r);

uint64_t ring_drops(struct ring_ref r);
uint64_t ring_pushed(struct ring_ref r);

#endif

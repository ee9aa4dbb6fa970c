/*
 * Fuzz the consumer side of the shared-memory packet rings as a sibling
 * that crashed mid-write or is compromised leaves them: the input is
 * the raw image of one ring (head, tail and counters, then the record
 * buffer; bytes past the input are zero), copied over a 256 KiB ring,
 * which node_ring_drain() then
 * drains exactly as a worker does, delivering to a registered local
 * client of key 0x07...  The ring lives in a heap block of its exact
 * size (one for every input, cleared each time), so any read outside
 * it is an ASan report.  Bad records must be
 * counted (ring_bad / ring_resets), never delivered oversize.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "common/log.h"
#include "common/ring.h"
#include "derp/frame.h"
#include "tests/fuzz/fake_worker.h"

#define CAP	(1u << 18)	/* room for a record past DERP_MAX_PACKET */
/* Budgets to drain the most records a ring can hold. */
#define ROUNDS	((int)(CAP / 8 / NODE_RING_BUDGET) + 2)

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct conn *
client(struct worker *w)
{
	struct conn	*c = fake_conn_new(w, -1);

	if (c == NULL)
		return NULL;
	http_end(c);
	memset(c->key, 0x07, sizeof(c->key));
	c->state = ST_DERP;
	if (registry_add(w, c) < 0)
		c->state = ST_HELLO;
	else
		w->m->current_connections++;
	return c;
}

/* Nothing queued for the client is larger than a DERP packet. */
static void
check_queues(const struct conn *c)
{
	const struct pkt	*p;
	int			 k;

	if (c->closing)
		return;
	for (k = 0; k < 2; k++)
		for (p = c->q[k].head; p != NULL; p = p->next)
			assert(p->len <= DERP_RECV_HDR_LEN + DERP_MAX_PACKET);
}

static uint8_t	*ring_mem;

static void
free_mem(void)
{
	free(ring_mem);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t		 bytes = ring_set_size(1, CAP);
	struct worker	*w;
	struct ring_ref	 r;
	struct conn	*c;
	int		 round;

	if (ring_mem == NULL) {
		log_init("fuzz", LOG_EMERG);
		if (derp_crypto_init() < 0 ||
		    (ring_mem = aligned_alloc(64, bytes)) == NULL)
			abort();
		atexit(free_mem);
	}
	memset(ring_mem, 0, bytes);
	memcpy(ring_mem, data, size < bytes ? size : bytes);
	r = ring_set_get(ring_mem, 1, CAP, 0, 0);
	w = fake_worker();
	if ((c = client(w)) == NULL)
		goto done;
	w->nworkers = 2;
	for (round = 0; round < ROUNDS; round++) {
		bool	more = node_ring_drain(w, r, 1);

		check_queues(c);
		if (!more)
			break;
	}
	/* Drained: every record takes 8 bytes or more of one ring's worth
	 * (a reset ends it), and each is counted once. */
	assert(round < ROUNDS);
	assert(w->m->ring_in + w->m->ring_bad <= CAP / 8);
	fake_worker_drain(w);
done:
	fake_worker_reset(w);
	return 0;
}

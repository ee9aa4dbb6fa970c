/*
 * Admission limits (PROTOCOL.md 5.13, 15 U3): a token bucket on accepts
 * (a rejected connection is closed and counted; the listener keeps
 * serving), a cap on connections per source IP, and a per-client receive
 * rate enforced by back-pressure: when a client's bucket is empty its
 * socket is simply not read until enough tokens have accrued, so TCP
 * slows the sender and nothing is dropped.  Settings come from the live
 * config, so SIGHUP changes them.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "worker/wk.h"

#define MIN_BURST	65568.0		/* one maximal frame (5.13) */
#define IPC_BUCKETS	4096

struct ipent {
	struct ipent	*next;
	uint8_t		 ip[16];
	uint32_t	 n;
};

struct ipcount {
	uint8_t		 key[crypto_shorthash_KEYBYTES];
	struct ipent	*b[IPC_BUCKETS];
};

bool
limits_accept(struct worker *w)
{
	double		rate = w->cfg.accept_rate / (w->nworkers > 0 ?
			    w->nworkers : 1);
	double		burst;
	uint64_t	now = loop_now(w->loop);

	if (w->cfg.accept_rate <= 0)
		return true;
	burst = w->cfg.accept_burst > 0 ? (double)w->cfg.accept_burst /
	    w->nworkers : fmax(1.0, rate);
	if (burst < 1.0)
		burst = 1.0;
	if (w->accept_ms == 0)
		w->accept_tokens = burst;	/* starts full */
	else
		w->accept_tokens += (double)(now - w->accept_ms) / 1000.0 *
		    rate;
	w->accept_ms = now;
	if (w->accept_tokens > burst)
		w->accept_tokens = burst;
	if (w->accept_tokens < 1.0)
		return false;
	w->accept_tokens -= 1.0;
	return true;
}

static struct ipent **
ip_slot(struct ipcount *t, const uint8_t ip[16])
{
	uint64_t	h;

	crypto_shorthash((unsigned char *)&h, ip, 16, t->key);
	return &t->b[h % IPC_BUCKETS];
}

int
limits_ip_acquire(struct worker *w, const uint8_t ip16[16])
{
	struct ipent	**pp, *e;

	if (w->cfg.max_per_ip <= 0)
		return 0;
	if (w->ipc == NULL) {
		if ((w->ipc = calloc(1, sizeof(*w->ipc))) == NULL)
			return -ENOMEM;
		randombytes_buf(w->ipc->key, sizeof(w->ipc->key));
	}
	pp = ip_slot(w->ipc, ip16);
	for (e = *pp; e != NULL; e = e->next)
		if (memcmp(e->ip, ip16, 16) == 0)
			break;
	if (e != NULL && e->n >= (uint32_t)w->cfg.max_per_ip)
		return -EUSERS;
	if (e == NULL) {
		if ((e = calloc(1, sizeof(*e))) == NULL)
			return -ENOMEM;
		memcpy(e->ip, ip16, 16);
		e->next = *pp;
		*pp = e;
	}
	e->n++;
	return 1;
}

void
limits_ip_release(struct worker *w, const uint8_t ip16[16])
{
	struct ipent	**pp, *e;

	if (w->ipc == NULL)
		return;
	for (pp = ip_slot(w->ipc, ip16); (e = *pp) != NULL; pp = &e->next)
		if (memcmp(e->ip, ip16, 16) == 0) {
			if (--e->n == 0) {
				*pp = e->next;
				free(e);
			}
			return;
		}
}

void
limits_fini(struct worker *w)
{
	struct ipent	*e;
	size_t		 i;

	if (w->ipc == NULL)
		return;
	for (i = 0; i < IPC_BUCKETS; i++)
		while ((e = w->ipc->b[i]) != NULL) {
			w->ipc->b[i] = e->next;
			free(e);
		}
	free(w->ipc);
	w->ipc = NULL;
}

static void
resume(struct loop_timer *t)
{
	struct conn	*c = t->arg;

	if (c->closing || !c->throttled)
		return;
	c->throttled = false;
	(void)loop_io_mod(c->w->loop, &c->io, LOOP_IN);
	/* Frames already buffered first, then the socket again. */
	session_input(c);
	if (!c->closing && !c->throttled)
		conn_on_readable(c);
}

bool
limits_charge(struct conn *c, size_t cost)
{
	struct worker	*w = c->w;
	double		 rate = (double)w->cfg.client_rate_bytes;
	double		 burst = fmax((double)w->cfg.client_burst_bytes,
			    MIN_BURST);
	uint64_t	 now = loop_now(w->loop), wait;

	if (rate <= 0 || c->can_mesh)
		return true;
	if (cost > MIN_BURST)
		cost = (size_t)MIN_BURST;
	if (c->rate_ms == 0)
		c->rate_tokens = burst;		/* starts full */
	else
		c->rate_tokens += (double)(now - c->rate_ms) / 1000.0 * rate;
	c->rate_ms = now;
	if (c->rate_tokens > burst)
		c->rate_tokens = burst;
	if (c->rate_tokens >= (double)cost) {
		c->rate_tokens -= (double)cost;
		return true;
	}
	/* Stop reading until the bucket holds this frame's cost. */
	wait = (uint64_t)ceil(((double)cost - c->rate_tokens) * 1000.0 / rate);
	c->throttled = true;
	w->m->rate_limit_waits++;
	(void)loop_io_mod(w->loop, &c->io, c->io.events & ~(unsigned)LOOP_IN);
	loop_timer_init(&c->rate_timer, resume, c);
	(void)loop_timer_set(w->loop, &c->rate_timer, wait ? wait : 1);
	return false;
}

/*
 * What idle connections hold: once a second each worker counts its
 * DERP connections that keep a read, write or control buffer, a large
 * frame in flight or the HTTP request state.  Buffers are taken while
 * bytes wait and freed when they are gone (conn.c), so an idle
 * connection counts nowhere; the gauges show when one does.  The walk
 * over w->conns touches every connection's memory (about 0.3 us each,
 * cache misses), so it goes MEMBUF_STEP connections per loop turn, not
 * all of them at once: 100,000 connections in one turn would hold
 * every client of the worker for tens of milliseconds.
 */
#include "worker/tlsrec.h"
#include "worker/wk.h"

#define STEP_DELAY_MS	1	/* 0 would run again in the same turn */

static void
step_timer(struct loop_timer *t)
{
	struct worker	*w = t->arg;

	if (!membuf_step(w, MEMBUF_STEP) &&
	    loop_timer_set(w->loop, &w->mb.step, STEP_DELAY_MS) < 0)
		(void)membuf_step(w, SIZE_MAX);	/* no memory: finish */
}

void
membuf_scan(struct worker *w)
{
	struct membuf	*mb = &w->mb;

	if (mb->active)
		return;
	mb->active = true;
	mb->cursor = w->conns;
	mb->in = mb->out = mb->ctrl = mb->http = 0;
	loop_timer_init(&mb->step, step_timer, w);
	step_timer(&mb->step);
}

bool
membuf_step(struct worker *w, size_t budget)
{
	struct membuf		*mb = &w->mb;
	const struct conn	*c;
	size_t			 rrx, rtx;

	if (!mb->active)
		return true;
	for (c = mb->cursor; c != NULL && budget > 0; c = c->next,
	    budget--) {
		if (c->state != ST_DERP || c->closing)
			continue;
		/* The worker's scratch buffer is lent while reading, never
		 * held. */
		rrx = rtx = 0;
		if (c->rec != NULL)	/* tlsrec's partial records */
			tlsrec_held(c->rec, &rrx, &rtx);
		mb->in += (c->in.cap > 0 && c->in.p != w->scratch) || rrx > 0;
		mb->out += c->out.cap > 0 || c->cur != NULL || rtx > 0;
		mb->ctrl += c->ctrl.cap > 0;
		mb->http += c->req != NULL;
	}
	mb->cursor = c;
	if (c != NULL)
		return false;
	mb->active = false;
	w->m->conn_buf_in = mb->in;
	w->m->conn_buf_out = mb->out;
	w->m->conn_buf_ctrl = mb->ctrl;
	w->m->conn_buf_http = mb->http;
	w->m->conn_buf_scans++;
	return true;
}

void
membuf_forget(struct worker *w, const struct conn *c)
{
	if (w->mb.cursor == c)
		w->mb.cursor = c->next;
}

void
membuf_stop(struct worker *w)
{
	if (w->loop != NULL)
		loop_timer_cancel(w->loop, &w->mb.step);
	w->mb.active = false;
	w->mb.cursor = NULL;
}

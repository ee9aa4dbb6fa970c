/*
 * What idle connections hold: once a second each worker counts its
 * DERP connections that keep a read, write or control buffer, a large
 * frame in flight or the HTTP request state.  Buffers are taken while
 * bytes wait and freed when they are gone (conn.c), so an idle
 * connection counts nowhere; the gauges show when one does.
 */
#include "worker/tlsrec.h"
#include "worker/wk.h"

void
membuf_scan(struct worker *w)
{
	const struct conn	*c;
	uint64_t		 in = 0, out = 0, ctrl = 0, http = 0;
	size_t			 rrx, rtx;

	for (c = w->conns; c != NULL; c = c->next) {
		if (c->state != ST_DERP || c->closing)
			continue;
		/* The worker's scratch buffer is lent while reading, never
		 * held. */
		rrx = rtx = 0;
		if (c->rec != NULL)	/* tlsrec's partial records */
			tlsrec_held(c->rec, &rrx, &rtx);
		in += (c->in.cap > 0 && c->in.p != w->scratch) || rrx > 0;
		out += c->out.cap > 0 || c->cur != NULL || rtx > 0;
		ctrl += c->ctrl.cap > 0;
		http += c->req != NULL;
	}
	w->m->conn_buf_in = in;
	w->m->conn_buf_out = out;
	w->m->conn_buf_ctrl = ctrl;
	w->m->conn_buf_http = http;
	w->m->conn_buf_scans++;
}

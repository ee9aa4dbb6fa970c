/*
 * A worker with no sockets of its own for the fuzz targets that drive
 * the server's connection code in memory (fuzz_conn, fuzz_ws): the
 * node key is 0x42 repeated, the mesh key 0x33; admission is set up as
 * the real worker's (no lists, no URL), /bootstrap-dns with no names,
 * /debug/traffic state (no dump file).  Test code only: static, in a
 * header, so each target stays one .c file.
 */
#ifndef TESTS_FUZZ_FAKE_WORKER_H
#define TESTS_FUZZ_FAKE_WORKER_H

#include <stdlib.h>
#include <string.h>

#include "derp/key.h"
#include "worker/admit.h"
#include "worker/bootdns.h"
#include "worker/wk.h"

/* NULL, or a worker whose loop is NULL when part of it failed (the
 * caller skips the input and frees it with fake_worker_free). */
static struct worker *
fake_worker(void)
{
	struct worker	*w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	conf_defaults(&w->cfg);
	w->m = &w->m_local;
	w->nworkers = 1;
	w->loop = loop_new();
	w->reg = registry_new();
	w->scratch = malloc(WK_IN_CAP);
	memset(w->priv, 0x42, sizeof(w->priv));
	w->has_mesh_key = true;
	memset(w->mesh_key, 0x33, sizeof(w->mesh_key));
	if (w->loop == NULL || w->reg == NULL || w->scratch == NULL ||
	    derp_key_public(w->pub, w->priv) < 0 || admit_init(w) < 0 ||
	    (w->bootdns = bootdns_new(w)) == NULL || traffic_init(w) < 0) {
		loop_free(w->loop);
		w->loop = NULL;
		return w;
	}
	derp_key_format_hex(w->pub_hex, w->pub);
	return w;
}

/* A connection in the HTTP state on fd (-1: none, fed in memory; else
 * watched by the loop, as an accepted socket is), linked into w. */
static struct conn *
fake_conn_new(struct worker *w, int fd)
{
	struct conn	*c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->w = w;
	c->fd = fd;
	c->id = ++w->next_conn_id;
	c->role = ROLE_DERP;
	c->state = ST_HTTP;
	loop_io_init(&c->io, fd, NULL, c);
	loop_timer_init(&c->deadline, NULL, c);
	loop_timer_init(&c->rate_timer, NULL, c);
	loop_timer_init(&c->keepalive, session_keepalive, c);
	if (http_begin(c) < 0 ||
	    (fd >= 0 && loop_io_add(w->loop, &c->io, LOOP_IN) < 0)) {
		http_end(c);
		free(c);
		return NULL;
	}
	c->next = w->conns;
	if (w->conns != NULL)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	return c;
}

/* What the loop does after a dispatch round: flushes, read-again, frees. */
static void
fake_worker_drain(struct worker *w)
{
	struct conn	*c;

	while ((c = w->flush_list) != NULL) {
		w->flush_list = c->flush_next;
		c->flush_pending = false;
		conn_flush(c);
	}
	while ((c = w->again_list) != NULL) {
		w->again_list = c->again_next;
		c->in_again = false;
		if (!c->closing)
			conn_on_readable(c);
	}
	while ((c = w->close_list) != NULL) {
		w->close_list = c->close_next;
		conn_free(c);
	}
}

static void
fake_worker_free(struct worker *w)
{
	struct conn	*c;
	struct pkt	*p;

	while ((c = w->conns) != NULL) {
		conn_close(c, "fuzz_done");
		fake_worker_drain(w);
	}
	while ((p = w->pool) != NULL) {
		w->pool = p->next;
		free(p);
	}
	traffic_fini(w);
	bootdns_free(w->bootdns);
	admit_fini(w);
	registry_free(w->reg);
	loop_free(w->loop);
	free(w->scratch);
	free(w);
}

#endif

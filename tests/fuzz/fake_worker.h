/*
 * One worker with no sockets of its own, shared by all the inputs of a
 * fuzz target that drives the server's connection code in memory
 * (fuzz_conn, fuzz_http, fuzz_ws, fuzz_ring): the node key is 0x42
 * repeated, the mesh key 0x33; admission is set up as the real
 * worker's (no lists, no URL), /bootstrap-dns with no names,
 * /debug/traffic state (no dump file).  It is built once, since the key
 * derivation, the loop and /bootstrap-dns cost more than most inputs;
 * fake_worker_reset() after each input closes what the input left,
 * aborts if anything outlives it, and restores what an input may
 * change, so no input sees another's state.  Test code only: static, in
 * a header, so each target stays one .c file.
 */
#ifndef TESTS_FUZZ_FAKE_WORKER_H
#define TESTS_FUZZ_FAKE_WORKER_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "derp/key.h"
#include "worker/admit.h"
#include "worker/bootdns.h"
#include "worker/wk.h"

static struct worker	*fake_w;

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
fake_worker_abort(const char *what)
{
	fprintf(stderr, "fake_worker: %s\n", what);
	abort();
}

/* Close every connection; then nothing of the input may remain. */
static void
fake_worker_close_all(struct worker *w)
{
	struct conn	*c;

	fake_worker_drain(w);
	while ((c = w->conns) != NULL) {
		conn_close(c, "fuzz_done");
		fake_worker_drain(w);
	}
	traffic_fini(w);
	admit_fini(w);
	membuf_stop(w);
	if (w->nconns != 0 || w->close_list != NULL ||
	    w->again_list != NULL || w->flush_list != NULL)
		fake_worker_abort("a connection outlived the input");
	if (w->watchers != NULL || w->m->watchers != 0)
		fake_worker_abort("a watcher outlived the input");
	if (registry_count(w->reg) != 0)
		fake_worker_abort("a registry entry outlived the input");
	if (w->m->current_connections != 0 ||
	    w->m->current_notideal_connections != 0 ||
	    w->m->current_home_connections != 0)
		fake_worker_abort("a connection count is not back to 0");
	if (loop_timers_armed(w->loop) != 0)
		fake_worker_abort("a timer outlived the input");
}

static void
fake_worker_free(void)
{
	struct worker	*w = fake_w;
	struct pkt	*p;

	if (w == NULL)
		return;
	fake_worker_close_all(w);
	while ((p = w->pool) != NULL) {
		w->pool = p->next;
		free(p);
	}
	bootdns_free(w->bootdns);
	registry_free(w->reg);
	loop_free(w->loop);
	free(w->scratch);
	free(w);
	fake_w = NULL;
}

/* The parts an input may change, as in a new worker. */
static void
fake_worker_fresh(struct worker *w)
{
	struct pkt	*p;

	while ((p = w->pool) != NULL) {
		w->pool = p->next;
		free(p);
	}
	w->npool = 0;
	conf_defaults(&w->cfg);
	memset(&w->m_local, 0, sizeof(w->m_local));
	w->m = &w->m_local;
	w->m_all = NULL;
	w->nworkers = 1;
	w->next_conn_id = 0;
	w->spoke_clock = 0;
	if (admit_init(w) < 0 || traffic_init(w) < 0)
		fake_worker_abort("admission or traffic state failed");
}

/* The worker, built on the first call.  Aborts if it cannot be built:
 * a target that runs nothing must not look like one that passes. */
static struct worker *
fake_worker(void)
{
	struct worker	*w;

	if (fake_w != NULL)
		return fake_w;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		fake_worker_abort("out of memory");
	w->loop = loop_new();
	w->reg = registry_new();
	w->scratch = malloc(WK_IN_CAP);
	memset(w->priv, 0x42, sizeof(w->priv));
	w->has_mesh_key = true;
	memset(w->mesh_key, 0x33, sizeof(w->mesh_key));
	conf_defaults(&w->cfg);
	if (w->loop == NULL || w->reg == NULL || w->scratch == NULL ||
	    derp_key_public(w->pub, w->priv) < 0 ||
	    (w->bootdns = bootdns_new(w)) == NULL)
		fake_worker_abort("cannot build the worker");
	derp_key_format_hex(w->pub_hex, w->pub);
	fake_worker_fresh(w);
	fake_w = w;
	atexit(fake_worker_free);
	return w;
}

/* After an input: close what it left, check, and make w as new. */
static void
fake_worker_reset(struct worker *w)
{
	fake_worker_close_all(w);
	fake_worker_fresh(w);
}

/* A connection in the HTTP state on fd (-1: none, fed in memory; else
 * watched by the loop, as an accepted socket is), linked into w. */
static struct conn *
fake_conn_new(struct worker *w, int fd)
{
	struct conn	*c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	if (conn_init(c, w, fd, ROLE_DERP) < 0 ||
	    (fd >= 0 && loop_io_add(w->loop, &c->io, LOOP_IN) < 0)) {
		http_end(c);
		free(c);
		return NULL;
	}
	conn_link(c);
	return c;
}

#endif

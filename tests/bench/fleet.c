/*
 * The benchmarks' fake worker (fleet.h).  Client i has key (i, tag),
 * lives on worker i % FLEET_WORKERS and has connection id (tag, i).
 */
#include <stdlib.h>
#include <string.h>

#include "tests/bench/fleet.h"

static struct conn	*locals[FLEET_KEYS];

double
fleet_now_ms(void)
{
	return (double)loop_clock_ns() / 1e6;
}

void
fleet_key(uint8_t key[DERP_KEY_LEN], uint32_t i, uint8_t tag)
{
	memset(key, 0, DERP_KEY_LEN);
	memcpy(key, &i, sizeof(i));
	key[31] = tag;
}

void
fleet_client(struct bus_client *bc, uint32_t i, uint8_t tag)
{
	memset(bc, 0, sizeof(*bc));
	fleet_key(bc->key, i, tag);
	bc->worker = (uint16_t)(i % FLEET_WORKERS);
	bc->conn_id = (uint64_t)tag << 32 | i;
}

struct worker *
fleet_new(void)
{
	struct worker		*w = calloc(1, sizeof(*w));
	struct conn		*watcher;
	struct bus_client	 bc;
	uint32_t		 i;

	if (w == NULL || (w->loop = loop_new()) == NULL ||
	    (w->reg = registry_new()) == NULL)
		abort();
	w->m = &w->m_local;
	w->nworkers = FLEET_WORKERS;
	w->cfg.queue_packets = 32;
	w->cfg.queue_bytes = 98304;
	if ((watcher = calloc(1, sizeof(*watcher))) == NULL)
		abort();
	watcher->w = w;
	watcher->fd = -1;
	watcher->state = ST_DERP;
	watcher->watcher = true;
	w->watchers = watcher;
	for (i = 0; i < FLEET_KEYS; i++) {
		fleet_client(&bc, i, 0);
		if (bc.worker == 0) {
			if ((locals[i] = calloc(1, sizeof(**locals))) == NULL)
				abort();
			locals[i]->w = w;
			locals[i]->state = ST_DERP;
			memcpy(locals[i]->key, bc.key, DERP_KEY_LEN);
			if (registry_add(w, locals[i]) < 0)
				abort();
		} else if (registry_remote_add(w, &bc) < 0)
			abort();
	}
	return w;
}

void
fleet_free(struct worker *w)
{
	uint32_t	i;

	for (i = 0; i < FLEET_KEYS; i++)
		if (locals[i] != NULL) {
			registry_remove(w, locals[i]);
			free(locals[i]);
			locals[i] = NULL;
		}
	bbuf_free(&w->watchers->ctrl);
	free(w->watchers);
	registry_free(w->reg);
	loop_free(w->loop);
	free(w);
}

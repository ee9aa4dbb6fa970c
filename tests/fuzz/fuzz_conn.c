/*
 * Fuzz the server's connection input path end to end, in memory: the
 * HTTP front (http-parser + our routing and upgrade) and the DERP session
 * (handshake and every frame type), on a worker with no sockets.  The
 * first input byte picks the starting state: HTTP request, or an
 * established session (to reach frame handling past the ClientInfo box).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "common/log.h"
#include "tests/fuzz/fake_worker.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* derp: an established session of key 0x07.. with the mesh key. */
static struct conn *
fake_conn(struct worker *w, bool derp)
{
	struct conn	*c = fake_conn_new(w, -1);

	if (c != NULL && derp) {
		http_end(c);
		memset(c->key, 0x07, sizeof(c->key));
		c->can_mesh = true;
		c->state = ST_DERP;
		if (registry_add(w, c) < 0)
			c->state = ST_HELLO;
		else
			w->m->current_connections++;
	}
	return c;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int	 init;
	struct worker	*w;
	struct conn	*c, *peer;

	if (!init) {
		log_init("fuzz", LOG_EMERG);
		if (derp_crypto_init() < 0)
			return 0;
		init = 1;
	}
	if (size < 1)
		return 0;
	w = fake_worker();
	peer = fake_conn(w, true);		/* a second, registered key */
	if (peer != NULL)
		peer->key[0] = 0x08;
	if ((c = fake_conn(w, data[0] & 1)) == NULL)
		goto out;
	if (bbuf_append(&c->in, data + 1, size - 1, size) == 0) {
		if (c->state == ST_HTTP)
			http_input(c);
		else
			session_input(c);
	}
	fake_worker_drain(w);
out:
	fake_worker_reset(w);
	return 0;
}

/*
 * Fuzz the server's WebSocket input path (worker/ws.c over wslay): a
 * connection on a socketpair is upgraded by a fixed WebSocket request,
 * then the input is what the client sends as WebSocket frames.  The first
 * byte's low bit prepends a valid masked message holding a real
 * ClientInfo, so the rest reaches DERP frames of a registered session.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "common/log.h"
#include "derp/info.h"
#include "tests/fuzz/fake_worker.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char UPGRADE[] = "GET /derp HTTP/1.1\r\nHost: x\r\n"
    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Protocol: derp\r\n\r\n";

/* A masked binary message carrying p (what a browser would send). */
static size_t
ws_message(uint8_t *out, const uint8_t *p, size_t n)
{
	static const uint8_t	mask[4] = { 0x11, 0x22, 0x33, 0x44 };
	size_t			h = 2, i;

	out[0] = 0x82;
	if (n < 126) {
		out[1] = (uint8_t)(0x80 | n);
	} else {
		out[1] = 0x80 | 126;
		out[2] = (uint8_t)(n >> 8);
		out[3] = (uint8_t)n;
		h = 4;
	}
	memcpy(out + h, mask, 4);
	for (i = 0; i < n; i++)
		out[h + 4 + i] = p[i] ^ mask[i % 4];
	return h + 4 + n;
}

/* Feed bytes to the server side, letting it read and answer; the
 * client side's incoming bytes are dropped. */
static void
feed(struct worker *w, int peer, const uint8_t *p, size_t n)
{
	uint8_t	sink[65536];
	ssize_t	r;
	int	rounds = 0;

	while (w->conns != NULL && rounds++ < 4096) {
		r = n > 0 ? send(peer, p, n, MSG_DONTWAIT | MSG_NOSIGNAL) : 0;
		if (r > 0) {
			p += r;
			n -= (size_t)r;
		}
		conn_on_readable(w->conns);
		fake_worker_drain(w);
		while (recv(peer, sink, sizeof(sink), MSG_DONTWAIT) > 0)
			;
		if (n == 0)
			break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t	 msg[1100];
	static size_t	 msg_len;
	struct worker	*w;
	struct derp_client_info ci = { .version = 2 };
	uint8_t		 cpriv[DERP_KEY_LEN], cif[1024];
	ssize_t		 cil;
	int		 sv[2];

	if (size < 1)
		return 0;
	if (msg_len == 0) {
		/* The ClientInfo message, sealed once for every input. */
		log_init("fuzz", LOG_EMERG);
		if (derp_crypto_init() < 0)
			abort();
		w = fake_worker();
		memset(cpriv, 0x24, sizeof(cpriv));
		cil = derp_client_info_frame(cif, sizeof(cif), &ci, cpriv,
		    w->pub);
		if (cil <= 0)
			abort();
		msg_len = ws_message(msg, cif, (size_t)cil);
	}
	w = fake_worker();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) < 0)
		return 0;
	if (fake_conn_new(w, sv[0]) == NULL) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	feed(w, sv[1], (const uint8_t *)UPGRADE, sizeof(UPGRADE) - 1);
	if ((data[0] & 1) && w->conns != NULL)
		feed(w, sv[1], msg, msg_len);
	feed(w, sv[1], data + 1, size - 1);
	/* And the peer's EOF. */
	(void)shutdown(sv[1], SHUT_WR);
	feed(w, sv[1], NULL, 0);
	fake_worker_reset(w);
	close(sv[1]);
	return 0;
}

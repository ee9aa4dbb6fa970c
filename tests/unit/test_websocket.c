/*
 * Unit tests for mesh/websocket.c (the RFC 6455 accept key, client keys,
 * subprotocol tokens) and worker/ws.c's framing on a socketpair: the 101
 * and ServerKey message, masked fragments into one stream, ping/pong,
 * unmasked binary output with a message cap, text closing with 1003.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "derp/key.h"
#include "mesh/websocket.h"
#include "worker/wk.h"

static void
test_websocket_accept_key_rfc6455(void **state)
{
	char	out[WEBSOCKET_ACCEPT_LEN + 1];

	(void)state;
	/* RFC 6455 1.3. */
	assert_int_equal(websocket_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out),
	    0);
	assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	assert_int_equal(websocket_accept_key("dGhlIHNhbXBsZSBub25jZQ== \t",
	    out), 0);
	assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void
test_websocket_accept_key_rejects(void **state)
{
	char	out[WEBSOCKET_ACCEPT_LEN + 1];

	(void)state;
	assert_int_equal(websocket_accept_key("", out), -EINVAL);
	assert_int_equal(websocket_accept_key("short", out), -EINVAL);
	/* 24 characters but 18 bytes, or not base64 at all. */
	assert_int_equal(websocket_accept_key("dGhlIHNhbXBsZSBub25jZQxx", out),
	    -EINVAL);
	assert_int_equal(websocket_accept_key("!!!!!!!!!!!!!!!!!!!!!!==", out),
	    -EINVAL);
	assert_int_equal(websocket_accept_key("dGhlIHNhbXBsZSBub25jZQ===",
	    out), -EINVAL);
}

static void
test_websocket_new_key(void **state)
{
	char	a[WEBSOCKET_KEY_LEN + 1], b[WEBSOCKET_KEY_LEN + 1];
	char	out[WEBSOCKET_ACCEPT_LEN + 1];

	(void)state;
	websocket_new_key(a);
	websocket_new_key(b);
	assert_int_equal(strlen(a), WEBSOCKET_KEY_LEN);
	assert_string_not_equal(a, b);
	assert_int_equal(websocket_accept_key(a, out), 0);
	assert_int_equal(strlen(out), WEBSOCKET_ACCEPT_LEN);
}

static void
test_websocket_has_token(void **state)
{
	(void)state;
	assert_true(websocket_has_token("derp", "derp"));
	assert_true(websocket_has_token("chat, derp", "derp"));
	assert_true(websocket_has_token(" derp ,chat", "derp"));
	assert_true(websocket_has_token("x,,DERP,", "derp"));
	assert_false(websocket_has_token("derpx", "derp"));
	assert_false(websocket_has_token("notderpish", "derp"));
	assert_false(websocket_has_token("der p", "derp"));
	assert_false(websocket_has_token("", "derp"));
	assert_false(websocket_has_token(" , ", "derp"));
}

/* ---- worker/ws.c on a socketpair ---- */

struct fx {
	struct worker	*w;
	struct conn	*c;
	int		 peer;
};

static int
ws_setup(void **state)
{
	struct fx	*f = calloc(1, sizeof(*f));
	struct worker	*w;
	struct conn	*c;
	int		 sv[2];

	log_init("test", LOG_EMERG);
	assert_int_equal(derp_crypto_init(), 0);
	assert_non_null(f);
	f->w = w = calloc(1, sizeof(*w));
	assert_non_null(w);
	conf_defaults(&w->cfg);
	w->m = &w->m_local;
	w->nworkers = 1;
	assert_non_null(w->loop = loop_new());
	assert_non_null(w->reg = registry_new());
	memset(w->priv, 0x42, sizeof(w->priv));
	assert_int_equal(derp_key_public(w->pub, w->priv), 0);
	derp_key_format_hex(w->pub_hex, w->pub);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    sv), 0);
	f->peer = sv[1];
	f->c = c = calloc(1, sizeof(*c));
	assert_non_null(c);
	c->w = w;
	c->fd = sv[0];
	c->state = ST_HTTP;
	loop_io_init(&c->io, sv[0], NULL, c);
	loop_timer_init(&c->deadline, NULL, c);
	loop_timer_init(&c->rate_timer, NULL, c);
	loop_timer_init(&c->keepalive, session_keepalive, c);
	assert_int_equal(loop_io_add(w->loop, &c->io, LOOP_IN), 0);
	assert_int_equal(http_begin(c), 0);
	w->conns = c;
	w->nconns = 1;
	*state = f;
	return 0;
}

static void
drain(struct worker *w)
{
	struct conn	*c;

	while ((c = w->flush_list) != NULL) {
		w->flush_list = c->flush_next;
		c->flush_pending = false;
		conn_flush(c);
	}
	while ((c = w->close_list) != NULL) {
		w->close_list = c->close_next;
		conn_free(c);
	}
}

static int
ws_teardown(void **state)
{
	struct fx	*f = *state;

	if (f->w->conns != NULL)
		conn_close(f->w->conns, "done");
	drain(f->w);
	registry_free(f->w->reg);
	loop_free(f->w->loop);
	free(f->w);
	close(f->peer);
	free(f);
	return 0;
}

static size_t
peer_read(struct fx *f, uint8_t *buf, size_t cap)
{
	ssize_t	r = recv(f->peer, buf, cap, MSG_DONTWAIT);

	return r > 0 ? (size_t)r : 0;
}

static void
peer_frame(struct fx *f, uint8_t b0, const void *p, size_t n)
{
	uint8_t	 fr[256];
	uint8_t	 mask[4] = { 0xa1, 0xb2, 0xc3, 0xd4 };
	size_t	 i;

	assert_true(n < 126);
	fr[0] = b0;
	fr[1] = (uint8_t)(0x80 | n);
	memcpy(fr + 2, mask, 4);
	for (i = 0; i < n; i++)
		fr[6 + i] = ((const uint8_t *)p)[i] ^ mask[i % 4];
	assert_int_equal(send(f->peer, fr, 6 + n, 0), (ssize_t)(6 + n));
}

static void
start(struct fx *f)
{
	uint8_t	 buf[512];
	size_t	 n;
	char	*end;

	assert_int_equal(ws_start(f->c, "dGhlIHNhbXBsZSBub25jZQ==",
	    "chat, derp", false), 0);
	assert_int_equal(f->c->state, ST_HELLO);
	assert_int_equal(f->w->m->websocket_accepts, 1);
	conn_flush(f->c);
	n = peer_read(f, buf, sizeof(buf) - 1);
	buf[n] = '\0';
	assert_non_null(strstr((char *)buf, "HTTP/1.1 101 Switching "
	    "Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
	    "Sec-WebSocket-Protocol: derp\r\n\r\n"));
	end = strstr((char *)buf, "\r\n\r\n") + 4;
	/* ServerKey in one unmasked binary message, nothing else. */
	assert_int_equal(n - (size_t)(end - (char *)buf), 2 + 45);
	assert_int_equal((uint8_t)end[0], 0x82);
	assert_int_equal((uint8_t)end[1], 45);
	assert_int_equal((uint8_t)end[2], 0x01);
	assert_memory_equal(end + 2 + 5 + 8, f->w->pub, 32);
}

static void
test_ws_read_joins_fragments(void **state)
{
	struct fx	*f = *state;
	uint8_t		 out[64], buf[64];

	start(f);
	/* "abc" + "de" (continuation) + "fgh" (a second message): one
	 * stream, boundaries gone. */
	peer_frame(f, 0x02, "abc", 3);
	peer_frame(f, 0x80, "de", 2);
	peer_frame(f, 0x82, "fgh", 3);
	assert_int_equal(ws_read(f->c, out, sizeof(out)), 8);
	assert_memory_equal(out, "abcdefgh", 8);
	/* A read never delivers more than asked; the rest follows. */
	peer_frame(f, 0x82, "0123456789", 10);
	assert_int_equal(ws_read(f->c, out, 4), 4);
	assert_memory_equal(out, "0123", 4);
	assert_int_equal(ws_read(f->c, out, sizeof(out)), 6);
	assert_memory_equal(out, "456789", 6);
	assert_int_equal(ws_read(f->c, out, sizeof(out)), -EAGAIN);
	/* Ping: no data, a pong with the same payload. */
	peer_frame(f, 0x89, "pi", 2);
	assert_int_equal(ws_read(f->c, out, sizeof(out)), -EAGAIN);
	assert_int_equal(peer_read(f, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "\x8a\x02pi", 4);
}

static void
test_ws_write_binary_unmasked(void **state)
{
	struct fx	*f = *state;
	static uint8_t	 big[40000], buf[20000];

	start(f);
	/* Small messages wait for the end of the flush (n == 0). */
	assert_int_equal(ws_write(f->c, (const uint8_t *)"xyz", 3), 3);
	assert_int_equal(ws_write(f->c, (const uint8_t *)"uv", 2), 2);
	assert_true(ws_want_write(f->c));
	assert_int_equal(peer_read(f, buf, sizeof(buf)), 0);
	assert_int_equal(ws_write(f->c, NULL, 0), 0);
	assert_int_equal(peer_read(f, buf, sizeof(buf)), 9);
	assert_memory_equal(buf, "\x82\x03xyz\x82\x02uv", 9);
	assert_false(ws_want_write(f->c));
	/* A message holds at most one coalesced write (16 KiB); whole
	 * 16 KiB records leave at once, the tail with the flush. */
	memset(big, 0x5a, sizeof(big));
	assert_int_equal(ws_write(f->c, big, sizeof(big)), WK_OUT_CAP);
	assert_int_equal(peer_read(f, buf, sizeof(buf)), 16384);
	assert_int_equal(buf[0], 0x82);
	assert_int_equal(buf[1], 126);
	assert_int_equal(buf[2] << 8 | buf[3], WK_OUT_CAP);
	assert_int_equal(buf[16383], 0x5a);
	assert_int_equal(ws_write(f->c, NULL, 0), 0);
	assert_int_equal(peer_read(f, buf, sizeof(buf)), 4);
	assert_false(ws_want_write(f->c));
}

static void
test_ws_text_closes_1003(void **state)
{
	struct fx	*f = *state;
	uint8_t		 out[64], buf[64];

	start(f);
	peer_frame(f, 0x81, "hi", 2);
	assert_true(ws_read(f->c, out, sizeof(out)) < 0);
	assert_true(f->c->closing);
	assert_int_equal(peer_read(f, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "\x88\x02\x03\xeb", 4);	/* 1003 */
}

static void
test_ws_session_end_closes_1000(void **state)
{
	struct fx	*f = *state;
	uint8_t		 buf[64];

	start(f);
	conn_close(f->c, "done");
	assert_int_equal(peer_read(f, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "\x88\x02\x03\xe8", 4);	/* 1000 */
}

static void
test_ws_no_derp_token_closes_1008(void **state)
{
	struct fx	*f = *state;
	uint8_t		 buf[512];
	size_t		 n;
	char		*end;

	assert_int_equal(ws_start(f->c, "dGhlIHNhbXBsZSBub25jZQ==", "derpy",
	    false), 0);
	assert_int_equal(f->c->state, ST_HTTP);
	assert_int_equal(f->w->m->websocket_accepts, 0);
	drain(f->w);
	n = peer_read(f, buf, sizeof(buf) - 1);
	buf[n] = '\0';
	assert_null(strstr((char *)buf, "Sec-WebSocket-Protocol"));
	end = strstr((char *)buf, "\r\n\r\n") + 4;
	assert_int_equal((uint8_t)end[0], 0x88);
	assert_int_equal((uint8_t)end[2] << 8 | (uint8_t)end[3], 1008);
	assert_null(f->w->conns);	/* closed once written */
}

/* Frames pipelined behind the request head are WebSocket input too. */
static void
test_ws_pipelined_frames(void **state)
{
	static const char	req[] = "GET /derp HTTP/1.1\r\nHost: x\r\n"
	    "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Protocol: derp\r\n\r\n";
	struct fx		*f = *state;
	uint8_t			 buf[1024];
	size_t			 n;
	char			*end;

	f->w->scratch = malloc(WK_IN_CAP);
	assert_non_null(f->w->scratch);
	assert_int_equal(send(f->peer, req, sizeof(req) - 1, 0),
	    (ssize_t)sizeof(req) - 1);
	peer_frame(f, 0x89, "p", 1);
	conn_on_readable(f->c);
	drain(f->w);
	assert_non_null(f->c->ws);
	n = peer_read(f, buf, sizeof(buf) - 1);
	buf[n] = '\0';
	assert_non_null(end = strstr((char *)buf, "\r\n\r\n"));
	end += 4;
	/* The pong (control frames may come between messages; it was
	 * answered while reading), then the ServerKey message. */
	assert_int_equal(n - (size_t)(end - (char *)buf), 3 + 2 + 45);
	assert_memory_equal(end, "\x8a\x01p", 3);
	assert_memory_equal(end + 3, "\x82\x2d\x01", 3);
	free(f->w->scratch);
	f->w->scratch = NULL;
}

static void
test_ws_bad_key(void **state)
{
	struct fx	*f = *state;

	assert_int_equal(ws_start(f->c, "nope", "derp", false), -EINVAL);
	assert_null(f->c->ws);
	assert_int_equal(f->c->state, ST_HTTP);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_websocket_accept_key_rfc6455),
		cmocka_unit_test(test_websocket_accept_key_rejects),
		cmocka_unit_test(test_websocket_new_key),
		cmocka_unit_test(test_websocket_has_token),
		cmocka_unit_test_setup_teardown(test_ws_read_joins_fragments,
		    ws_setup, ws_teardown),
		cmocka_unit_test_setup_teardown(test_ws_write_binary_unmasked,
		    ws_setup, ws_teardown),
		cmocka_unit_test_setup_teardown(test_ws_text_closes_1003,
		    ws_setup, ws_teardown),
		cmocka_unit_test_setup_teardown(test_ws_session_end_closes_1000,
		    ws_setup, ws_teardown),
		cmocka_unit_test_setup_teardown(
		    test_ws_no_derp_token_closes_1008, ws_setup, ws_teardown),
		cmocka_unit_test_setup_teardown(test_ws_pipelined_frames,
		    ws_setup, ws_teardown),
		cmocka_unit_test_setup_teardown(test_ws_bad_key, ws_setup,
		    ws_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

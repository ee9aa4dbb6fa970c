/*
 * WebSocket DERP (PROTOCOL.md 2.3, 2.7): the project's client in WebSocket
 * mode against the real derpd over plain HTTP and TLS, exchanging packets
 * with raw DERP clients; close codes for text, oversize and garbage
 * input; the decision table's WebSocket rows; derp_websocket_accepts.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "derp/key.h"
#include "harness.h"

#define BIG	65536	/* DERP_MAX_PACKET: one SendPacket of 65,536+37 */

/* Wait for the server's close frame; returns its code. */
static int
wait_close(struct client *c)
{
	struct client_msg	m;
	uint64_t		deadline = now_ms() + 5000;
	int			rc;

	do {
		rc = client_recv(c, &m, 200);
	} while ((rc == 0 || rc == -ETIMEDOUT) && now_ms() < deadline);
	assert_int_equal(rc, -ECONNRESET);
	return client_ws_close_code(c);
}

static void
exchange(struct client *ws, struct client *raw)
{
	struct client_msg	 m;
	uint8_t			*big = malloc(BIG);
	size_t			 i;

	assert_non_null(big);
	reach(ws, raw);
	reach(raw, ws);
	for (i = 0; i < BIG; i++)
		big[i] = (uint8_t)(i * 7 + 3);
	/* Largest packet, ws -> raw (one 65,573-byte message) and back. */
	assert_int_equal(client_send_packet(ws, client_public_key(raw), big,
	    BIG), 0);
	assert_int_equal(recv_type(raw, DERP_FRAME_RECV_PACKET, &m, 5000), 0);
	assert_int_equal(m.len, BIG);
	assert_memory_equal(m.data, big, BIG);
	assert_memory_equal(m.key, client_public_key(ws), 32);
	big[0] ^= 0xff;
	assert_int_equal(client_send_packet(raw, client_public_key(ws), big,
	    BIG), 0);
	assert_int_equal(recv_type(ws, DERP_FRAME_RECV_PACKET, &m, 5000), 0);
	assert_int_equal(m.len, BIG);
	assert_memory_equal(m.data, big, BIG);
	assert_memory_equal(m.key, client_public_key(raw), 32);
	free(big);
}

static void
test_ws_plain_exchange(void **state)
{
	struct node	*n = node_start(false, NULL);
	struct client	*ws, *raw, *ws2;

	(void)state;
	assert_int_equal(node_metric(n, "derp_websocket_accepts"), 0);
	ws = node_ws_client(n);
	raw = node_client(n);
	assert_false(client_fast_started(ws));
	assert_memory_not_equal(client_server_key(ws), "\0\0\0\0", 4);
	exchange(ws, raw);
	/* Two WebSocket clients talk to each other too. */
	ws2 = node_ws_client(n);
	reach(ws2, ws);
	reach(ws, ws2);
	assert_int_equal(node_metric(n, "derp_websocket_accepts"), 2);
	assert_int_equal(node_metric(n, "derp_accepts"), 3);
	client_free(ws2);
	client_free(raw);
	client_free(ws);
	node_stop(n);
	node_free(n);
}

static void
test_ws_tls_exchange(void **state)
{
	struct node	*n = node_start(true, NULL);
	struct client	*ws, *raw;

	(void)state;
	ws = node_ws_client(n);
	raw = node_client(n);
	assert_false(client_fast_started(ws));	/* even with the meta-cert */
	assert_true(client_fast_started(raw));
	exchange(ws, raw);
	assert_int_equal(node_metric(n, "derp_websocket_accepts"), 1);
	client_free(raw);
	client_free(ws);
	node_stop(n);
	node_free(n);
}

/* Across workers: WebSocket connections are ordinary sessions there. */
static void
test_ws_two_workers(void **state)
{
	struct node	*n = node_start(false, "workers = 2;\n");
	struct client	*ws[3], *raw[3];
	int		 i;

	(void)state;
	for (i = 0; i < 3; i++) {
		ws[i] = node_ws_client(n);
		raw[i] = node_client(n);
	}
	for (i = 0; i < 3; i++) {
		reach(ws[i], raw[(i + 1) % 3]);
		reach(raw[i], ws[(i + 2) % 3]);
	}
	assert_int_equal(node_metric(n, "derp_websocket_accepts"), 3);
	for (i = 0; i < 3; i++) {
		client_free(ws[i]);
		client_free(raw[i]);
	}
	node_stop(n);
	node_free(n);
}

/* Fragmented binary messages and messages split mid-frame carry the
 * stream; ping gets pong. */
static void
test_ws_stream_and_ping(void **state)
{
	struct node		*n = node_start(false, NULL);
	struct client		*ws = node_ws_client(n), *raw = node_client(n);
	struct client_msg	 m;
	uint8_t			 fr[5 + 32 + 5];
	uint64_t		 deadline;

	(void)state;
	reach(raw, ws);
	/* One SendPacket in three messages: 2 bytes, 30 bytes, the rest. */
	fr[0] = 0x04;
	fr[1] = fr[2] = fr[3] = 0;
	fr[4] = 32 + 5;
	memcpy(fr + 5, client_public_key(raw), 32);
	memcpy(fr + 37, "hello", 5);
	assert_int_equal(client_ws_send(ws, 2, fr, 2), 0);
	assert_int_equal(client_ws_send(ws, 2, fr + 2, 30), 0);
	assert_int_equal(client_ws_send(ws, 2, fr + 32, sizeof(fr) - 32), 0);
	assert_int_equal(recv_type(raw, DERP_FRAME_RECV_PACKET, &m, 5000), 0);
	assert_int_equal(m.len, 5);
	assert_memory_equal(m.data, "hello", 5);
	assert_int_equal(client_ws_send(ws, 9, "pp", 2), 0);
	deadline = now_ms() + 5000;
	while (client_ws_pongs(ws) == 0 && now_ms() < deadline)
		(void)client_recv(ws, &m, 100);
	assert_int_equal(client_ws_pongs(ws), 1);
	client_free(raw);
	client_free(ws);
	node_stop(n);
	node_free(n);
}

static void
test_ws_text_closes_1003(void **state)
{
	struct node	*n = node_start(false, NULL);
	struct client	*ws = node_ws_client(n), *a = node_client(n);
	struct client	*b = node_ws_client(n);

	(void)state;
	assert_int_equal(client_ws_send(ws, 1, "hello", 5), 0);
	assert_int_equal(wait_close(ws), 1003);
	assert_true(node_log_wait(n, "reason=ws_text_message", 5000));
	/* Nobody else noticed. */
	reach(a, b);
	reach(b, a);
	client_free(b);
	client_free(a);
	client_free(ws);
	node_stop(n);
	node_free(n);
}

static void
test_ws_message_too_big_closes_1009(void **state)
{
	struct node	*n = node_start(false, NULL);
	struct client	*ws = node_ws_client(n);
	size_t		 len = 128 * 1024 + 1;
	uint8_t		*p = calloc(1, len);

	(void)state;
	assert_non_null(p);
	/* The close may arrive while we still write: ignore that error. */
	(void)client_ws_send(ws, 2, p, len);
	assert_int_equal(wait_close(ws), 1009);
	free(p);
	client_free(ws);
	node_stop(n);
	node_free(n);
}

static void
test_ws_garbage_closes_only_that_conn(void **state)
{
	static const uint8_t	unmasked[] = { 0x82, 0x03, 1, 2, 3 };
	static const uint8_t	reserved[] = { 0x83, 0x80, 1, 2, 3, 4 };
	struct node		*n = node_start(true, NULL);
	struct client		*g1 = node_ws_client(n), *g2 = node_ws_client(n);
	struct client		*a = node_ws_client(n), *b = node_client(n);

	(void)state;
	reach(a, b);
	/* A client frame without a mask, and a reserved opcode. */
	assert_int_equal(client_write_wire(g1, unmasked, sizeof(unmasked)), 0);
	assert_int_equal(wait_close(g1), 1002);
	assert_int_equal(client_write_wire(g2, reserved, sizeof(reserved)), 0);
	assert_int_equal(wait_close(g2), 1002);
	assert_int_equal(node_log_count(n, "reason=ws_protocol_error"), 2);
	reach(a, b);
	reach(b, a);
	client_free(b);
	client_free(a);
	client_free(g2);
	client_free(g1);
	node_stop(n);
	node_free(n);
}

/* Close 1000 from the client is EOF; a DERP session the server ends
 * (here a malformed frame) closes with 1000. */
static void
test_ws_close_codes(void **state)
{
	static const uint8_t	close1000[] = { 0x03, 0xe8 };
	static const uint8_t	bad_pref[] = { 0x07, 0, 0, 0, 2, 1, 1 };
	struct node		*n = node_start(false, NULL);
	struct client		*a = node_ws_client(n), *b = node_ws_client(n);

	(void)state;
	assert_int_equal(client_ws_send(a, 8, close1000, 2), 0);
	assert_int_equal(wait_close(a), 1000);	/* the server's reply */
	assert_true(node_log_wait(n, "reason=eof", 5000));
	assert_int_equal(client_queue_raw(b, bad_pref, sizeof(bad_pref)), 0);
	assert_int_equal(client_flush(b, 5000), 0);
	assert_int_equal(wait_close(b), 1000);
	assert_true(node_log_wait(n, "reason=frame_invalid", 5000));
	client_free(b);
	client_free(a);
	node_stop(n);
	node_free(n);
}

/* Send req on a raw socket; collect the answer until EOF, or until
 * want bytes past the response head (a session then waits for us). */
static ssize_t
raw_request(const struct node *n, const char *req, uint8_t *buf, size_t cap,
    size_t want)
{
	int		 fd = raw_connect(n->port);
	uint64_t	 deadline = now_ms() + 5000;
	struct pollfd	 p = { .fd = fd, .events = POLLIN };
	size_t		 len = 0;
	ssize_t		 r;
	char		*end;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	while (len < cap - 1 && now_ms() < deadline) {
		buf[len] = '\0';
		if ((end = strstr((char *)buf, "\r\n\r\n")) != NULL &&
		    len - (size_t)(end + 4 - (char *)buf) >= want && want > 0)
			break;
		if (poll(&p, 1, 100) <= 0)
			continue;
		if ((r = read(fd, buf + len, cap - 1 - len)) <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	assert_true(now_ms() < deadline);
	buf[len] = '\0';
	return (ssize_t)len;
}

static void
test_ws_decision_table(void **state)
{
	struct node	*n = node_start(false, NULL);
	uint8_t		 buf[4096];
	const uint8_t	*cl;
	ssize_t		 r;
	char		 req[512];
	const char	*key = "dGhlIHNhbXBsZSBub25jZQ==";

	(void)state;
	/* "derp" only inside another token: upgraded, then 1008. */
	snprintf(req, sizeof(req), "GET /derp HTTP/1.1\r\nHost: x\r\n"
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n"
	    "Sec-WebSocket-Protocol: notderpish\r\n\r\n", key);
	r = raw_request(n, req, buf, sizeof(buf), 0);
	assert_non_null(strstr((char *)buf, "HTTP/1.1 101 "));
	assert_non_null(strstr((char *)buf,
	    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
	assert_null(strstr((char *)buf, "Sec-WebSocket-Protocol"));
	cl = (const uint8_t *)strstr((char *)buf, "\r\n\r\n") + 4;
	assert_true(r - (cl - buf) >= 4);
	assert_int_equal(cl[0], 0x88);		/* FIN + close, unmasked */
	assert_int_equal(cl[1], 2 + 38);
	assert_int_equal(cl[2] << 8 | cl[3], 1008);
	assert_memory_equal(cl + 4, "client must speak the derp subprotocol",
	    38);
	/* The chosen subprotocol, no extensions, even when offered. */
	snprintf(req, sizeof(req), "GET /derp HTTP/1.1\r\nHost: x\r\n"
	    "Upgrade: WebSocket\r\nOrigin: http://evil.example\r\n"
	    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n"
	    "Sec-WebSocket-Extensions: permessage-deflate\r\n"
	    "Sec-WebSocket-Protocol: chat, derp\r\n\r\n", key);
	(void)raw_request(n, req, buf, sizeof(buf), 2 + 45);
	/* ServerKey in one unmasked binary message. */
	cl = (const uint8_t *)strstr((char *)buf, "\r\n\r\n") + 4;
	assert_int_equal(cl[0], 0x82);
	assert_int_equal(cl[1], 45);
	assert_int_equal(cl[2], 0x01);
	assert_non_null(strstr((char *)buf, "HTTP/1.1 101 "));
	assert_non_null(strstr((char *)buf,
	    "Sec-WebSocket-Protocol: derp\r\n"));
	assert_null(strstr((char *)buf, "Extensions"));
	/* Upgrade: websocket without the derp subprotocol is raw DERP. */
	(void)raw_request(n, "GET /derp HTTP/1.1\r\nHost: x\r\n"
	    "Upgrade: websocket\r\n\r\n", buf, sizeof(buf), 45);
	assert_non_null(strstr((char *)buf, "HTTP/1.1 101 "));
	assert_non_null(strstr((char *)buf, "Upgrade: DERP\r\n"));
	/* Bad key, bad version. */
	(void)raw_request(n, "GET /derp HTTP/1.1\r\nHost: x\r\n"
	    "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
	    "Sec-WebSocket-Key: short\r\nSec-WebSocket-Protocol: derp\r\n"
	    "Connection: close\r\n\r\n", buf, sizeof(buf), 0);
	assert_non_null(strstr((char *)buf, "HTTP/1.1 400 "));
	snprintf(req, sizeof(req), "GET /derp HTTP/1.1\r\nHost: x\r\n"
	    "Upgrade: websocket\r\nSec-WebSocket-Version: 8\r\n"
	    "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Protocol: derp\r\n"
	    "Connection: close\r\n\r\n", key);
	(void)raw_request(n, req, buf, sizeof(buf), 0);
	assert_non_null(strstr((char *)buf, "HTTP/1.1 400 "));
	assert_non_null(strstr((char *)buf, "Sec-WebSocket-Version: 13\r\n"));
	assert_int_equal(node_metric(n, "derp_websocket_accepts"), 1);
	node_stop(n);
	node_free(n);
}

/* A silent WebSocket client hits the handshake deadline. */
static void
test_ws_silent_client_times_out(void **state)
{
	struct node	*n = node_start(false,
			    "derp = { handshake_timeout_ms = 300; };\n");
	uint8_t		 buf[4096];
	char		 req[512];

	(void)state;
	snprintf(req, sizeof(req), "GET /derp HTTP/1.1\r\nHost: x\r\n"
	    "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Protocol: derp\r\n\r\n");
	(void)raw_request(n, req, buf, sizeof(buf), 0);
	assert_non_null(strstr((char *)buf, "HTTP/1.1 101 "));
	assert_true(node_log_wait(n, "reason=handshake_timeout", 5000));
	node_stop(n);
	node_free(n);
}

/* A WebSocket client that stops reading hits the write-stall deadline;
 * its queue drops, the others go on. */
static void
test_ws_slow_reader_write_timeout(void **state)
{
	struct node	*n = node_start(true,
			    "derp = { write_timeout_ms = 500; };\n");
	struct client	*slow = node_ws_client(n), *a = node_client(n);
	struct client	*b = node_ws_client(n);
	uint8_t		 pkt[1200];
	uint64_t	 deadline = now_ms() + 15000;
	int		 i, rc;

	(void)state;
	memset(pkt, 0x5a, sizeof(pkt));
	reach(a, slow);
	while (node_log_count(n, "reason=write_timeout") == 0 &&
	    now_ms() < deadline) {
		for (i = 0; i < 1000; i++) {
			rc = client_queue_packet(a, client_public_key(slow),
			    pkt, sizeof(pkt));
			if (rc == -ENOBUFS)
				break;
		}
		assert_int_equal(client_flush(a, 10000), 0);
	}
	assert_int_equal(node_log_count(n, "reason=write_timeout"), 1);
	assert_true(node_metric(n, "derp_packets_dropped{reason=\"queue_head\","
	    "kind=\"other\"}") + node_metric(n, "derp_packets_dropped{reason="
	    "\"queue_tail\",kind=\"other\"}") > 0);
	reach(a, b);
	reach(b, a);
	client_free(b);
	client_free(a);
	client_free(slow);
	node_stop(n);
	node_free(n);
}

/* derpcat --ws sends over WebSocket DERP. */
static void
test_ws_derpcat(void **state)
{
	const char		*bin = getenv("DERPCAT_BIN");
	struct node		*n = node_start(false, NULL);
	struct client		*raw = node_client(n);
	struct client_msg	 m;
	char			 k[DERP_KEY_TEXT_MAX], cmd[512];

	(void)state;
	derp_key_format_public(k, client_public_key(raw));
	snprintf(cmd, sizeof(cmd), "%s --ws 127.0.0.1:%u send %s via-ws",
	    bin ? bin : "build/derpcat", n->port, k);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(recv_type(raw, DERP_FRAME_RECV_PACKET, &m, 5000), 0);
	assert_int_equal(m.len, 6);
	assert_memory_equal(m.data, "via-ws", 6);
	assert_int_equal(node_metric(n, "derp_websocket_accepts"), 1);
	client_free(raw);
	node_stop(n);
	node_free(n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ws_plain_exchange),
		cmocka_unit_test(test_ws_tls_exchange),
		cmocka_unit_test(test_ws_two_workers),
		cmocka_unit_test(test_ws_stream_and_ping),
		cmocka_unit_test(test_ws_text_closes_1003),
		cmocka_unit_test(test_ws_message_too_big_closes_1009),
		cmocka_unit_test(test_ws_garbage_closes_only_that_conn),
		cmocka_unit_test(test_ws_close_codes),
		cmocka_unit_test(test_ws_decision_table),
		cmocka_unit_test(test_ws_silent_client_times_out),
		cmocka_unit_test(test_ws_slow_reader_write_timeout),
		cmocka_unit_test(test_ws_derpcat),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Misbehaving clients cost only their own connection: malformed
 * ClientInfo, a box that does not open, oversized and malformed frames,
 * mesh-only frames without the key, garbage instead of HTTP, silence.
 * Each is closed with a logged reason while a pair connected before keeps
 * relaying.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

#include <cmocka.h>

#include "derp/frame.h"
#include "derp/info.h"
#include "derp/key.h"
#include "harness.h"

struct fixture {
	struct node	*n;
	struct client	*a, *b;
	pid_t		 worker;	/* must survive every test */
};

static int
setup(void **state)
{
	struct fixture	*f = calloc(1, sizeof(*f));

	f->n = node_start(false, "derp = { http_timeout_ms = 300; "
	    "handshake_timeout_ms = 300; };\n");
	f->a = node_client(f->n);
	f->b = node_client(f->n);
	f->worker = node_worker_pid(f->n, 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;

	client_free(f->a);
	client_free(f->b);
	node_stop(f->n);
	node_free(f->n);
	free(f);
	return 0;
}

/* The well-behaved pair still relays. */
static void
pair_ok(struct fixture *f)
{
	struct client_msg	m;

	assert_int_equal(client_send_packet(f->a, client_public_key(f->b),
	    "still here", 10), 0);
	assert_int_equal(recv_type(f->b, DERP_FRAME_RECV_PACKET, &m, 5000), 0);
	assert_memory_equal(m.data, "still here", 10);
	assert_int_equal(node_worker_pid(f->n, 0), f->worker);
	assert_int_equal(kill(f->worker, 0), 0);
}

static void
expect_closed(struct fixture *f, int fd, const char *reason)
{
	uint8_t	buf[4096];
	char	needle[64];

	assert_true(raw_read_until_eof(fd, buf, sizeof(buf), 5000) >= 0);
	close(fd);
	snprintf(needle, sizeof(needle), "reason=%s", reason);
	assert_true(node_log_wait(f->n, needle, 5000));
	pair_ok(f);
}

/* A raw connection past the upgrade (plain HTTP, normal 101 path). */
static int
upgraded(const struct fixture *f, uint8_t server_key[32])
{
	const char	req[] = "GET /derp HTTP/1.1\r\nHost: x\r\n"
			    "Upgrade: DERP\r\nConnection: Upgrade\r\n\r\n";
	uint8_t		buf[512];
	size_t		n = 0;
	ssize_t		r;
	char		*end;
	int		fd = raw_connect(f->n->port);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, req, sizeof(req) - 1), sizeof(req) - 1);
	for (;;) {
		r = read(fd, buf + n, sizeof(buf) - n);
		assert_true(r > 0);
		n += (size_t)r;
		if ((end = memmem(buf, n, "\r\n\r\n", 4)) != NULL &&
		    n >= (size_t)((uint8_t *)end - buf) + 4 + 45)
			break;
	}
	memcpy(server_key, (uint8_t *)end + 4 + 13, 32);
	return fd;
}

static void
send_client_info_json(int fd, const uint8_t server_key[32], const char *js)
{
	uint8_t	priv[32], pub[32], frame[512];
	ssize_t	bl;

	derp_key_generate(priv);
	assert_int_equal(derp_key_public(pub, priv), 0);
	memcpy(frame + 5, pub, 32);
	bl = derp_box_seal(frame + 37, sizeof(frame) - 37,
	    (const uint8_t *)js, strlen(js), server_key, priv);
	assert_true(bl > 0);
	derp_frame_header(frame, DERP_FRAME_CLIENT_INFO,
	    (uint32_t)(32 + bl));
	assert_int_equal(write(fd, frame, (size_t)(37 + bl)), 37 + bl);
}

static void
test_hostile_malformed_client_info_json(void **state)
{
	struct fixture	*f = *state;
	uint8_t		 sk[32];
	int		 fd = upgraded(f, sk);

	send_client_info_json(fd, sk, "{\"version\":\"two\"");
	expect_closed(f, fd, "client_info_invalid");
}

static void
test_hostile_box_does_not_open(void **state)
{
	struct fixture	*f = *state;
	uint8_t		 sk[32], wrong[32];
	int		 fd = upgraded(f, sk);

	memcpy(wrong, sk, 32);
	wrong[0] ^= 1;		/* sealed to the wrong key */
	send_client_info_json(fd, wrong, "{\"version\":2}");
	expect_closed(f, fd, "client_info_invalid");
}

static void
test_hostile_first_frame_not_client_info(void **state)
{
	struct fixture	*f = *state;
	uint8_t		 sk[32], ka[5];
	int		 fd = upgraded(f, sk);

	derp_enc_keep_alive(ka);
	assert_int_equal(write(fd, ka, 5), 5);
	expect_closed(f, fd, "client_info_invalid");
}

static void
test_hostile_handshake_timeout(void **state)
{
	struct fixture	*f = *state;
	uint8_t		 sk[32];
	int		 fd = upgraded(f, sk);

	expect_closed(f, fd, "handshake_timeout");
}

static void
test_hostile_garbage_instead_of_http(void **state)
{
	struct fixture	*f = *state;
	int		 fd = raw_connect(f->n->port);
	const char	 junk[] = "\x16\x03\x01\x02\x00garbage\r\n\r\n";

	assert_int_equal(write(fd, junk, sizeof(junk) - 1), sizeof(junk) - 1);
	expect_closed(f, fd, "http_bad_request");
}

static void
test_hostile_silent_connection(void **state)
{
	struct fixture	*f = *state;
	int		 fd = raw_connect(f->n->port);

	expect_closed(f, fd, "http_timeout");
}

static void
test_hostile_huge_header(void **state)
{
	struct fixture	*f = *state;
	int		 fd = raw_connect(f->n->port);
	char		 big[10000];

	memset(big, 'a', sizeof(big));
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	assert_int_equal(write(fd, big, sizeof(big)), sizeof(big));
	expect_closed(f, fd, "http_header_too_large");	/* after a 431 */
}

/* Frames sent by a registered client (raw bytes after the handshake). */
static void
frame_after_handshake(struct fixture *f, const void *bytes, size_t len,
    const char *reason)
{
	struct client		*c = node_client(f->n);
	struct client_msg	 m;
	int			 rc;

	assert_int_equal(client_queue_raw(c, bytes, len), 0);
	(void)client_flush(c, 5000);	/* may fail once the server closes */
	do {
		rc = client_recv(c, &m, 5000);
	} while (rc == 0);
	assert_true(rc == -ECONNRESET || rc == -EPROTO || rc == -EPIPE);
	client_free(c);
	{
		char	needle[64];

		snprintf(needle, sizeof(needle), "reason=%s", reason);
		assert_true(node_log_wait(f->n, needle, 5000));
	}
	pair_ok(f);
}

static void
test_hostile_oversized_frame(void **state)
{
	uint8_t	h[5];

	derp_frame_header(h, DERP_FRAME_SEND_PACKET, 70000);
	frame_after_handshake(*state, h, sizeof(h), "frame_too_large");
}

static void
test_hostile_unknown_frame_too_large(void **state)
{
	uint8_t	h[5];

	derp_frame_header(h, 0x77, 2 * 1024 * 1024);
	frame_after_handshake(*state, h, sizeof(h), "frame_too_large");
}

static void
test_hostile_bad_note_preferred_length(void **state)
{
	const uint8_t	f[] = { 0x07, 0, 0, 0, 2, 1, 1 };

	frame_after_handshake(*state, f, sizeof(f), "frame_invalid");
}

static void
test_hostile_short_ping(void **state)
{
	const uint8_t	f[] = { 0x12, 0, 0, 0, 4, 1, 2, 3, 4 };

	frame_after_handshake(*state, f, sizeof(f), "frame_invalid");
}

static void
test_hostile_mesh_frames_without_key(void **state)
{
	uint8_t	f[5 + 64 + 4];

	derp_enc_watch_conns(f);
	frame_after_handshake(*state, f, 5, "not_mesh");
	memset(f, 1, sizeof(f));
	derp_frame_header(f, DERP_FRAME_FORWARD_PACKET, 68);
	frame_after_handshake(*state, f, sizeof(f), "not_mesh");
	derp_frame_header(f, DERP_FRAME_CLOSE_PEER, 32);
	frame_after_handshake(*state, f, 37, "not_mesh");
}

static void
test_hostile_unknown_small_frames_are_skipped(void **state)
{
	struct fixture		*f = *state;
	struct client		*c = node_client(f->n);
	struct client_msg	 m;
	uint8_t			 junk[5 + 100];

	memset(junk, 0xcc, sizeof(junk));
	derp_frame_header(junk, 0x42, 100);
	assert_int_equal(client_queue_raw(c, junk, sizeof(junk)), 0);
	assert_int_equal(client_queue_frame(c, DERP_FRAME_PONG, "12345678",
	    8), 0);
	assert_int_equal(client_flush(c, 5000), 0);
	assert_int_equal(client_ping(c, (const uint8_t *)"stillok!"), 0);
	assert_int_equal(recv_type(c, DERP_FRAME_PONG, &m, 5000), 0);
	assert_memory_equal(m.data, "stillok!", 8);
	client_free(c);
}

static void
test_hostile_send_packet_before_client_info(void **state)
{
	struct fixture	*f = *state;
	uint8_t		 sk[32], fr[5 + 32 + 4];
	int		 fd = upgraded(f, sk);

	memset(fr, 0, sizeof(fr));
	memcpy(fr + 5, client_public_key(f->b), 32);
	derp_frame_header(fr, DERP_FRAME_SEND_PACKET, 36);
	assert_int_equal(write(fd, fr, sizeof(fr)), sizeof(fr));
	expect_closed(f, fd, "client_info_invalid");
}

static void
test_hostile_oversized_client_info(void **state)
{
	struct fixture	*f = *state;
	uint8_t		 sk[32], h[5];
	int		 fd = upgraded(f, sk);

	/* A length past the ClientInfo cap is refused from the header,
	 * before any of it is buffered. */
	derp_frame_header(h, DERP_FRAME_CLIENT_INFO, 16 * 1024 * 1024);
	assert_int_equal(write(fd, h, 5), 5);
	expect_closed(f, fd, "client_info_invalid");
}

static void
test_hostile_second_client_info(void **state)
{
	struct fixture		*f = *state;
	struct client		*c = node_client(f->n);
	struct client_msg	 m;
	uint8_t			 fr[5 + 100];
	int			 rc;

	/* After the handshake a ClientInfo is just an unexpected frame:
	 * skipped (as Go's unknown-frame rule), the session goes on. */
	memset(fr, 0xab, sizeof(fr));
	derp_frame_header(fr, DERP_FRAME_CLIENT_INFO, 100);
	assert_int_equal(client_queue_raw(c, fr, sizeof(fr)), 0);
	assert_int_equal(client_flush(c, 5000), 0);
	assert_int_equal(client_ping(c, (const uint8_t *)"again?!!"), 0);
	rc = recv_type(c, DERP_FRAME_PONG, &m, 5000);
	assert_int_equal(rc, 0);
	assert_memory_equal(m.data, "again?!!", 8);
	client_free(c);
	pair_ok(f);
}

static void
test_hostile_client_info_flood(void **state)
{
	enum { FLOOD = 400 };
	struct fixture	*f = *state;
	uint8_t		 sk[32];
	int		 i, fd, before;
	uint64_t	 deadline;

	before = node_log_count(f->n, "event=conn_closed");
	for (i = 0; i < FLOOD; i++) {
		fd = upgraded(f, sk);
		switch (i % 3) {
		case 0:		/* valid, then gone at once */
			send_client_info_json(fd, sk, "{\"version\":2}");
			break;
		case 1:		/* garbage JSON */
			send_client_info_json(fd, sk, "\x01\x02{]");
			break;
		default:	/* a box for someone else */
			sk[3] ^= 0x40;
			send_client_info_json(fd, sk, "{\"version\":2}");
			break;
		}
		close(fd);
		if (i % 100 == 0)
			pair_ok(f);
	}
	/* Every one is closed and forgotten; the worker is the same. */
	deadline = now_ms() + 10000;
	while (node_log_count(f->n, "event=conn_closed") - before < FLOOD &&
	    now_ms() < deadline)
		(void)node_log_wait(f->n, "\x01never", 50);
	assert_true(node_log_count(f->n, "event=conn_closed") - before >=
	    FLOOD);
	assert_int_equal(node_metric(f->n, "derp_clients_total"), 2);
	assert_int_equal(node_metric(f->n, "derp_current_connections"), 2);
	pair_ok(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostile_malformed_client_info_json),
		cmocka_unit_test(test_hostile_box_does_not_open),
		cmocka_unit_test(test_hostile_first_frame_not_client_info),
		cmocka_unit_test(test_hostile_handshake_timeout),
		cmocka_unit_test(test_hostile_garbage_instead_of_http),
		cmocka_unit_test(test_hostile_silent_connection),
		cmocka_unit_test(test_hostile_huge_header),
		cmocka_unit_test(test_hostile_oversized_frame),
		cmocka_unit_test(test_hostile_unknown_frame_too_large),
		cmocka_unit_test(test_hostile_bad_note_preferred_length),
		cmocka_unit_test(test_hostile_short_ping),
		cmocka_unit_test(test_hostile_mesh_frames_without_key),
		cmocka_unit_test(test_hostile_unknown_small_frames_are_skipped),
		cmocka_unit_test(test_hostile_send_packet_before_client_info),
		cmocka_unit_test(test_hostile_oversized_client_info),
		cmocka_unit_test(test_hostile_second_client_info),
		cmocka_unit_test(test_hostile_client_info_flood),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

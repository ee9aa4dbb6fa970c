/*
 * Relay behaviour of the real derpd over TLS and plain HTTP: packets both
 * ways with the right source, fast start, ping, keepalive, PeerGone,
 * duplicate keys, unknown destinations, a slow reader, 1,000 clients,
 * graceful stop (PROTOCOL.md 4, 5).
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
#include <sys/types.h>

#include <cmocka.h>

#include "derp/disco.h"
#include "derp/key.h"
#include "harness.h"

static void
exchange(struct node *n)
{
	struct client		*a = node_client(n), *b = node_client(n);
	struct client_msg	 m;

	assert_int_equal(client_send_packet(a, client_public_key(b), "to b", 4),
	    0);
	assert_int_equal(recv_type(b, DERP_FRAME_RECV_PACKET, &m, 5000), 0);
	assert_memory_equal(m.key, client_public_key(a), 32);
	assert_int_equal(m.len, 4);
	assert_memory_equal(m.data, "to b", 4);
	assert_int_equal(client_send_packet(b, client_public_key(a), "to a!",
	    5), 0);
	assert_int_equal(recv_type(a, DERP_FRAME_RECV_PACKET, &m, 5000), 0);
	assert_memory_equal(m.key, client_public_key(b), 32);
	assert_memory_equal(m.data, "to a!", 5);
	/* Zero-length packets are legal and relayed. */
	assert_int_equal(client_send_packet(a, client_public_key(b), "", 0), 0);
	assert_int_equal(recv_type(b, DERP_FRAME_RECV_PACKET, &m, 5000), 0);
	assert_int_equal(m.len, 0);
	client_free(a);
	client_free(b);
}

static void
test_relay_plain_http(void **state)
{
	struct node	*n = node_start(false, NULL);

	(void)state;
	exchange(n);
	assert_true(node_metric(n, "derp_packets_sent") >= 3);
	node_stop(n);
	node_free(n);
}

static void
test_relay_tls_fast_start_and_101(void **state)
{
	struct node		*n = node_start(true, NULL);
	struct client_opts	 o;
	struct client		*c;
	int			 err;

	(void)state;
	exchange(n);
	c = node_client(n);
	assert_true(client_fast_started(c));	/* meta-cert seen, TLS 1.3 */
	client_free(c);
	node_opts(n, &o);
	o.no_fast_start = true;
	c = client_connect(&o, &err);
	assert_non_null(c);
	assert_false(client_fast_started(c));
	assert_int_equal(client_server_info(c)->version, 2);
	client_free(c);
	node_stop(n);
	node_free(n);
}

static void
test_relay_ping_pong_and_keepalive(void **state)
{
	struct node		*n = node_start(false,
				    "derp = { keepalive_ms = 200; };\n");
	struct client		*c = node_client(n);
	struct client_msg	 m;
	const uint8_t		 data[8] = "pingpong";

	(void)state;
	assert_int_equal(client_ping(c, data), 0);
	assert_int_equal(recv_type(c, DERP_FRAME_PONG, &m, 3000), 0);
	assert_int_equal(m.len, 8);
	assert_memory_equal(m.data, data, 8);
	assert_int_equal(recv_type(c, DERP_FRAME_KEEP_ALIVE, &m, 3000), 0);
	assert_int_equal(recv_type(c, DERP_FRAME_KEEP_ALIVE, &m, 3000), 0);
	assert_int_equal(node_metric(n, "derp_got_ping"), 1);
	assert_int_equal(node_metric(n, "derp_sent_pong"), 1);
	client_free(c);
	node_stop(n);
	node_free(n);
}

static void
test_relay_peer_gone_when_sender_leaves(void **state)
{
	struct node		*n = node_start(false, NULL);
	struct client		*a = node_client(n), *b = node_client(n);
	struct client		*bystander = node_client(n);
	struct client_msg	 m;
	uint8_t			 akey[32];

	(void)state;
	memcpy(akey, client_public_key(a), 32);
	assert_int_equal(client_send_packet(a, client_public_key(b), "x", 1), 0);
	assert_int_equal(recv_type(b, DERP_FRAME_RECV_PACKET, &m, 5000), 0);
	client_free(a);
	assert_int_equal(recv_type(b, DERP_FRAME_PEER_GONE, &m, 5000), 0);
	assert_memory_equal(m.key, akey, 32);
	assert_int_equal(m.reason, DERP_PEER_GONE_DISCONNECTED);
	/* Only receivers of A hear about it: a ping round trip on the
	 * bystander proves nothing else is queued for it. */
	assert_int_equal(client_ping(bystander, (const uint8_t *)"barrier!"),
	    0);
	assert_int_equal(client_recv(bystander, &m, 5000), 0);
	assert_int_equal(m.type, DERP_FRAME_PONG);
	client_free(b);
	client_free(bystander);
	node_stop(n);
	node_free(n);
}

static void
test_relay_duplicate_keys_last_writer_wins(void **state)
{
	struct node		*n = node_start(false, NULL);
	uint8_t			 k[32];
	struct client		*old, *young, *s = NULL;
	struct client_msg	 m;

	(void)state;
	derp_key_generate(k);
	old = node_client_key(n, k);
	young = node_client_key(n, k);
	s = node_client(n);
	/* The newest connection receives. */
	assert_int_equal(client_send_packet(s, client_public_key(old), "1", 1),
	    0);
	assert_int_equal(recv_type(young, DERP_FRAME_RECV_PACKET, &m, 5000), 0);
	assert_memory_equal(m.data, "1", 1);
	/* The old one speaks: it becomes active.  Its pong proves the
	 * server processed the frame before the next packet is sent. */
	assert_int_equal(client_ping(old, (const uint8_t *)"speak!!!"), 0);
	assert_int_equal(recv_type(old, DERP_FRAME_PONG, &m, 5000), 0);
	assert_int_equal(client_send_packet(s, client_public_key(old), "2", 1),
	    0);
	assert_int_equal(recv_type(old, DERP_FRAME_RECV_PACKET, &m, 5000), 0);
	assert_memory_equal(m.data, "2", 1);
	assert_int_equal(node_metric(n, "derp_current_dup_client_keys"), 1);
	/* The active one leaves: the other gets traffic again. */
	client_free(old);
	assert_true(node_log_wait(n, "reason=eof", 5000));
	assert_int_equal(client_send_packet(s, client_public_key(young), "3",
	    1), 0);
	assert_int_equal(recv_type(young, DERP_FRAME_RECV_PACKET, &m, 5000), 0);
	assert_memory_equal(m.data, "3", 1);
	assert_int_equal(node_metric(n, "derp_current_dup_client_keys"), 0);
	client_free(young);
	client_free(s);
	node_stop(n);
	node_free(n);
}

static void
test_relay_unknown_dest_dropped_and_disco_peer_gone_limited(void **state)
{
	struct node		*n = node_start(false, NULL);
	struct client		*a = node_client(n);
	struct client_msg	 m;
	uint8_t			 absent[32], disco[80];
	int			 i, gone = 0;

	(void)state;
	derp_key_generate(absent);
	assert_int_equal(client_send_packet(a, absent, "plain", 5), 0);
	memset(disco, 0, sizeof(disco));
	memcpy(disco, DERP_DISCO_MAGIC, DERP_DISCO_MAGIC_LEN);
	for (i = 0; i < 10; i++)
		assert_int_equal(client_queue_packet(a, absent, disco,
		    sizeof(disco)), 0);
	assert_int_equal(client_flush(a, 5000), 0);
	/* The pong marks the end of what the server answered. */
	assert_int_equal(client_ping(a, (const uint8_t *)"barrier!"), 0);
	for (;;) {
		assert_int_equal(client_recv(a, &m, 5000), 0);
		if (m.type == DERP_FRAME_PONG)
			break;
		if (m.type == DERP_FRAME_PEER_GONE) {
			assert_memory_equal(m.key, absent, 32);
			assert_int_equal(m.reason, DERP_PEER_GONE_NOT_HERE);
			gone++;
		}
	}
	assert_int_equal(gone, 3);	/* burst 3, then 1/s */
	assert_int_equal(node_metric(n,
	    "derp_packets_dropped{reason=\"unknown_dest\",kind=\"other\"}"), 1);
	assert_int_equal(node_metric(n,
	    "derp_packets_dropped{reason=\"unknown_dest\",kind=\"disco\"}"),
	    10);
	assert_int_equal(node_metric(n, "derp_peer_gone_not_here_frames"), 3);
	client_free(a);
	node_stop(n);
	node_free(n);
}

static long
rss_kib(pid_t pid)
{
	char	path[64], line[256];
	long	v = -1;
	FILE	*f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld", &v) == 1)
			break;
	fclose(f);
	return v;
}

static void
test_relay_slow_reader_drops_only_its_own(void **state)
{
	struct node		*n = node_start(true,
				    "derp = { write_timeout_ms = 0; };\n");
	struct client		*a = node_client(n), *slow = node_client(n);
	struct client		*c = node_client(n), *d = node_client(n);
	struct client_msg	 m;
	uint8_t			 pkt[1200];
	long			 rss0, rss1, dropped;
	int			 i, rc;

	(void)state;
	memset(pkt, 0x5a, sizeof(pkt));
	rss0 = rss_kib(node_worker_pid(n, 0));
	for (i = 0; i < 20000; i++) {
		rc = client_queue_packet(a, client_public_key(slow), pkt,
		    sizeof(pkt));
		if (rc == -ENOBUFS) {
			assert_int_equal(client_flush(a, 10000), 0);
			i--;
		}
	}
	assert_int_equal(client_flush(a, 10000), 0);
	/* Meanwhile the others relay, round trip by round trip. */
	for (i = 0; i < 100; i++) {
		assert_int_equal(client_send_packet(c, client_public_key(d),
		    pkt, 100), 0);
		assert_int_equal(recv_type(d, DERP_FRAME_RECV_PACKET, &m, 5000),
		    0);
		assert_memory_equal(m.key, client_public_key(c), 32);
	}
	dropped = node_metric(n, "derp_packets_dropped{reason=\"queue_head\","
	    "kind=\"other\"}") + node_metric(n, "derp_packets_dropped{reason="
	    "\"queue_tail\",kind=\"other\"}");
	assert_true(dropped > 0);
	rss1 = rss_kib(node_worker_pid(n, 0));
	assert_true(rss1 - rss0 < 64 * 1024);
	client_free(a);
	client_free(slow);
	client_free(c);
	client_free(d);
	node_stop(n);
	node_free(n);
}

/* Maximum-size packets arrive in pieces (16 KiB TLS records): a partial
 * frame near the limit must not be mistaken for an oversized one. */
static void
test_relay_max_size_packets_tls(void **state)
{
	struct node		*n = node_start(true, NULL);
	struct client		*a = node_client(n), *b = node_client(n);
	struct client_msg	 m;
	static uint8_t		 pkt[65536];
	int			 i;

	(void)state;
	for (i = 0; i < 200; i++) {
		pkt[0] = (uint8_t)i;
		pkt[65535] = (uint8_t)~i;
		assert_int_equal(client_send_packet(a, client_public_key(b),
		    pkt, sizeof(pkt)), 0);
		assert_int_equal(recv_type(b, DERP_FRAME_RECV_PACKET, &m, 5000),
		    0);
		assert_int_equal(m.len, sizeof(pkt));
		assert_int_equal(m.data[0], (uint8_t)i);
		assert_int_equal(m.data[65535], (uint8_t)~i);
	}
	client_free(a);
	client_free(b);
	node_stop(n);
	node_free(n);
}

static void
test_relay_thousand_clients(void **state)
{
	enum { N = 1000 };
	struct node		*n = node_start(true, NULL);
	struct client		**cs = calloc(N, sizeof(*cs));
	struct client_msg	 m;
	int			 i, got = 0;

	(void)state;
	for (i = 0; i < N; i++)
		cs[i] = node_client(n);
	assert_int_equal(node_metric(n, "derp_current_connections"), N);
	for (i = 0; i < N; i++)
		assert_int_equal(client_send_packet(cs[i],
		    client_public_key(cs[(i + 1) % N]), &i, sizeof(i)), 0);
	for (i = 0; i < N; i++) {
		int	from = (i + N - 1) % N;

		assert_int_equal(recv_type(cs[i], DERP_FRAME_RECV_PACKET, &m,
		    5000), 0);
		assert_memory_equal(m.key, client_public_key(cs[from]), 32);
		assert_memory_equal(m.data, &from, sizeof(from));
		got++;
	}
	assert_int_equal(got, N);
	for (i = 0; i < N; i++)
		client_free(cs[i]);
	free(cs);
	node_stop(n);
	node_free(n);
}

static void
test_relay_sigterm_sends_restarting(void **state)
{
	struct node		*n = node_start(false,
				    "derp = { restart_reconnect_ms = 1500; "
				    "restart_try_for_ms = 20000; };\n");
	struct client		*c = node_client(n);
	struct client_msg	 m;

	(void)state;
	kill(n->pid, SIGTERM);
	assert_int_equal(recv_type(c, DERP_FRAME_RESTARTING, &m, 5000), 0);
	assert_int_equal(m.reconnect_in_ms, 1500);
	assert_int_equal(m.try_for_ms, 20000);
	assert_int_equal(client_recv(c, &m, 5000), -ECONNRESET);
	client_free(c);
	n->stopped = false;
	node_stop(n);	/* already signalled: checks exit status 0 */
	node_free(n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_relay_plain_http),
		cmocka_unit_test(test_relay_tls_fast_start_and_101),
		cmocka_unit_test(test_relay_ping_pong_and_keepalive),
		cmocka_unit_test(test_relay_peer_gone_when_sender_leaves),
		cmocka_unit_test(test_relay_duplicate_keys_last_writer_wins),
		cmocka_unit_test(
		    test_relay_unknown_dest_dropped_and_disco_peer_gone_limited),
		cmocka_unit_test(test_relay_slow_reader_drops_only_its_own),
		cmocka_unit_test(test_relay_max_size_packets_tls),
		cmocka_unit_test(test_relay_thousand_clients),
		cmocka_unit_test(test_relay_sigterm_sends_restarting),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * One node, several worker processes (issue 3): clients spread over four
 * workers all reach each other with the right source key, a mesh-key
 * watcher sees node-wide presence whichever worker serves it, and a
 * worker killed with SIGKILL is respawned while the others' clients keep
 * relaying and its stale presence disappears node-wide.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "derp/key.h"
#include "harness.h"

#define N	200

static struct node *
start4(void)
{
	char	more[96];

	snprintf(more, sizeof(more), "log = { level = \"%s\"; "
	    "conn_rate = 0; };\n",
	    getenv("DERPD_LOG_LEVEL") ? getenv("DERPD_LOG_LEVEL") : "info");
	return node_start_psk(4, more);
}

/* Every worker's own node-wide view holds exactly want keys (or, for
 * converged_conns, connections). */
static bool
converged_what(const struct node *n, const char *what, long want,
    int timeout_ms)
{
	return node_converged(n, 4, what, want, timeout_ms);
}

static bool
converged(const struct node *n, long want, int timeout_ms)
{
	return converged_what(n, "keys", want, timeout_ms);
}

static struct client *
mesh_client(const struct node *n, bool watch, const char *psk)
{
	return node_mesh_client(n, psk, watch);
}

static struct client *
watcher(const struct node *n)
{
	return mesh_client(n, true, REGION_PSK);
}

static void
test_workers_every_pair_and_watcher(void **state)
{
	struct node		*n = start4();
	struct client		**cs = calloc(N, sizeof(*cs)), *w;
	struct client_msg	 m;
	uint8_t			(*seen)[N] = calloc(N, N);
	int			 used[4] = { 0 }, i, j, k, workers = 0, present;

	(void)state;
	for (i = 0; i < N; i++)
		cs[i] = node_client(n);
	for (i = 0; i < N; i++) {
		k = node_client_worker(n, cs[i]);
		assert_true(k >= 0 && k < 4);
		used[k]++;
	}
	for (k = 0; k < 4; k++)
		workers += used[k] > 0;
	print_message("accepts per worker: %d %d %d %d\n", used[0], used[1],
	    used[2], used[3]);
	assert_true(workers >= 2);
	assert_true(converged(n, N, 10000));
	/* Every ordered pair. */
	for (i = 0; i < N; i++) {
		for (j = 0; j < N; j++)
			if (j != i)
				assert_int_equal(client_queue_packet(cs[i],
				    client_public_key(cs[j]), &i, sizeof(i)),
				    0);
		assert_int_equal(client_flush(cs[i], 5000), 0);
	}
	for (j = 0; j < N; j++)
		for (k = 0; k < N - 1; k++) {
			assert_int_equal(recv_type(cs[j], DERP_FRAME_RECV_PACKET,
			    &m, 5000), 0);
			memcpy(&i, m.data, sizeof(i));
			assert_true(i >= 0 && i < N && i != j);
			assert_memory_equal(m.key, client_public_key(cs[i]),
			    32);
			assert_int_equal(seen[j][i], 0);
			seen[j][i] = 1;
		}
	assert_true(node_metric(n, "derpd_ring_packets_in") > 0);
	/* A watcher sees every client node-wide, then deltas. */
	w = watcher(n);
	present = 0;
	while (present < N) {
		assert_int_equal(client_recv(w, &m, 5000), 0);
		if (m.type != DERP_FRAME_PEER_PRESENT)
			continue;
		for (i = 0; i < N; i++)
			if (memcmp(m.key, client_public_key(cs[i]), 32) == 0)
				present++;
	}
	client_free(cs[0]);
	assert_int_equal(recv_type(w, DERP_FRAME_PEER_GONE, &m, 5000), 0);
	assert_memory_equal(m.key, client_public_key(cs[0]), 32);
	cs[0] = node_client(n);
	do {
		assert_int_equal(recv_type(w, DERP_FRAME_PEER_PRESENT, &m,
		    5000), 0);
	} while (memcmp(m.key, client_public_key(cs[0]), 32) != 0);
	client_free(w);
	for (i = 0; i < N; i++)
		client_free(cs[i]);
	free(cs);
	free(seen);
	node_stop(n);
	node_free(n);
}

static void
test_workers_kill9_one_worker(void **state)
{
	enum { M = 40 };
	struct node		*n = start4();
	struct client		*cs[M];
	struct client_msg	 m;
	int			 wk[M], victim, i, j, alive = 0, sent;
	char			 needle[64];
	uint64_t		 t0;

	(void)state;
	for (i = 0; i < M; i++) {
		cs[i] = node_client(n);
		wk[i] = node_client_worker(n, cs[i]);
	}
	assert_true(converged(n, M, 10000));
	victim = wk[0];
	for (i = 0; i < M; i++)
		alive += wk[i] != victim;
	assert_int_equal(kill(node_worker_pid(n, victim), SIGKILL), 0);
	t0 = now_ms();
	snprintf(needle, sizeof(needle), "event=worker_ready worker=%d",
	    victim);
	/* Stale presence is gone node-wide within a second. */
	assert_true(converged(n, alive, 1000));
	print_message("stale presence gone after %llu ms\n",
	    (unsigned long long)(now_ms() - t0));
	/* Respawned. */
	assert_true(node_log_wait(n, "signal=9", 5000));
	while (node_log_count(n, needle) < 2 && now_ms() - t0 < 10000)
		(void)node_log_wait(n, "worker_ready", 10);
	assert_int_equal(node_log_count(n, needle), 2);
	/* Survivors on other workers lose nothing. */
	sent = 0;
	for (i = 0; i < M; i++) {
		if (wk[i] == victim)
			continue;
		for (j = 0; j < M; j++)
			if (j != i && wk[j] != victim) {
				assert_int_equal(client_queue_packet(cs[i],
				    client_public_key(cs[j]), &i, sizeof(i)),
				    0);
				sent++;
			}
		assert_int_equal(client_flush(cs[i], 5000), 0);
	}
	for (j = 0; j < M; j++) {
		if (wk[j] == victim)
			continue;
		for (i = 0; i < alive - 1; i++) {
			if (recv_type(cs[j], DERP_FRAME_RECV_PACKET, &m, 5000)
			    != 0) {
				fail_msg("client %d (worker %d) got %d of %d; "
				    "victim %d; log %s", j, wk[j], i, alive - 1,
				    victim, n->log);
			}
			sent--;
		}
	}
	assert_int_equal(sent, 0);
	/* The victim's clients can reconnect. */
	client_free(cs[0]);
	cs[0] = node_client(n);
	for (i = 0; i < M; i++)
		client_free(cs[i]);
	/* The intended SIGKILL, and no other death. */
	node_stop_killed(n, 1);
	node_free(n);
}

/* A client on a different worker than other (or the same, want_same). */
static struct client *
client_on(const struct node *n, struct client *other, bool want_same,
    const uint8_t *priv)
{
	int		 wo = node_client_worker(n, other), attempt;
	struct client	*c;

	for (attempt = 0; attempt < 100; attempt++) {
		c = node_client_key(n, priv);
		if ((node_client_worker(n, c) == wo) == want_same)
			return c;
		client_free(c);
	}
	fail_msg("could not land a client on the wanted worker");
	return NULL;
}

static void
test_workers_peer_gone_across_workers(void **state)
{
	struct node		*n = start4();
	struct client		*a = node_client(n), *b;
	struct client_msg	 m;
	uint8_t			 akey[32];

	(void)state;
	b = client_on(n, a, false, NULL);
	assert_true(converged(n, 2, 10000));
	memcpy(akey, client_public_key(a), 32);
	assert_int_equal(client_send_packet(a, client_public_key(b), "x", 1), 0);
	assert_int_equal(recv_type(b, DERP_FRAME_RECV_PACKET, &m, 5000), 0);
	client_free(a);
	assert_int_equal(recv_type(b, DERP_FRAME_PEER_GONE, &m, 5000), 0);
	assert_memory_equal(m.key, akey, 32);
	assert_int_equal(m.reason, DERP_PEER_GONE_DISCONNECTED);
	client_free(b);
	node_stop(n);
	node_free(n);
}

static void
test_workers_duplicate_key_across_workers(void **state)
{
	struct node		*n = start4();
	struct client		*old, *young, *s;
	struct client_msg	 m;
	uint8_t			 k[32];

	(void)state;
	derp_key_generate(k);
	old = node_client_key(n, k);
	young = client_on(n, old, false, k);	/* same key, other worker */
	s = node_client(n);
	assert_true(converged_what(n, "conns", 3, 10000));
	/* The newest connection receives, wherever the sender is. */
	assert_int_equal(client_send_packet(s, client_public_key(old), "1", 1),
	    0);
	assert_int_equal(recv_type(young, DERP_FRAME_RECV_PACKET, &m, 5000), 0);
	assert_memory_equal(m.data, "1", 1);
	/* The old one speaks (its pong proves the frame was handled, and
	 * the bus carries the news to the sender's worker). */
	assert_int_equal(client_ping(old, (const uint8_t *)"speak!!!"), 0);
	assert_int_equal(recv_type(old, DERP_FRAME_PONG, &m, 5000), 0);
	{
		uint64_t	deadline = now_ms() + 5000;
		int		rc;

		/* Retry until the sender's worker has applied BUS_ACTIVE:
		 * packets that still went to the younger one are fine. */
		do {
			assert_int_equal(client_send_packet(s,
			    client_public_key(old), "2", 1), 0);
			rc = recv_type(old, DERP_FRAME_RECV_PACKET, &m, 200);
		} while (rc == -ETIMEDOUT && now_ms() < deadline);
		assert_int_equal(rc, 0);
		assert_memory_equal(m.data, "2", 1);
	}
	client_free(old);
	client_free(young);
	client_free(s);
	node_stop(n);
	node_free(n);
}

static void
test_workers_mesh_peer_server_side(void **state)
{
	struct node		*n = start4();
	struct client		*a = node_client(n), *b, *m = NULL, *bad;
	struct client_msg	 msg;
	uint8_t			 fake[32];
	int			 present = 0, attempt;

	(void)state;
	b = client_on(n, a, false, NULL);
	/* The mesh peer lands on a worker other than A's. */
	for (attempt = 0; attempt < 100; attempt++) {
		m = mesh_client(n, true, REGION_PSK);
		if (node_client_worker(n, m) != node_client_worker(n, a))
			break;
		client_free(m);
		m = NULL;
	}
	assert_non_null(m);
	assert_true(converged_what(n, "conns", 3, 10000));
	/* Node-wide presence, flagged for the mesh peer itself. */
	while (present < 2) {
		assert_int_equal(recv_type(m, DERP_FRAME_PEER_PRESENT, &msg,
		    5000), 0);
		if (memcmp(msg.key, client_public_key(a), 32) == 0 ||
		    memcmp(msg.key, client_public_key(b), 32) == 0) {
			assert_int_equal(msg.present.flags, DERP_PEER_IS_REGULAR);
			present++;
		}
	}
	/* ForwardPacket reaches B wherever it is, with the given source. */
	derp_key_generate(fake);
	assert_int_equal(client_forward_packet(m, fake, client_public_key(b),
	    "fwd", 3), 0);
	assert_int_equal(recv_type(b, DERP_FRAME_RECV_PACKET, &msg, 5000), 0);
	assert_memory_equal(msg.key, fake, 32);
	assert_memory_equal(msg.data, "fwd", 3);
	assert_int_equal(node_metric(n, "derp_packets_forwarded_in"), 1);
	assert_int_equal(node_metric(n, "derp_packets_forwarded_out"), 0);
	/* ClosePeer closes A on its own worker. */
	assert_int_equal(client_close_peer(m, client_public_key(a)), 0);
	do {
		attempt = client_recv(a, &msg, 5000);
	} while (attempt == 0);
	assert_int_equal(attempt, -ECONNRESET);
	assert_true(node_log_wait(n, "reason=closed_by_mesh", 5000));
	/* A wrong mesh key is no key: WatchConns then closes. */
	bad = mesh_client(n, false,
	    "0000000000000000000000000000000000000000000000000000000000000001");
	assert_int_equal(client_watch_conns(bad), 0);
	do {
		attempt = client_recv(bad, &msg, 5000);
	} while (attempt == 0);
	assert_int_equal(attempt, -ECONNRESET);
	assert_true(node_log_wait(n, "reason=not_mesh", 5000));
	client_free(bad);
	client_free(a);
	client_free(b);
	client_free(m);
	node_stop(n);
	node_free(n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_workers_every_pair_and_watcher),
		cmocka_unit_test(test_workers_kill9_one_worker),
		cmocka_unit_test(test_workers_peer_gone_across_workers),
		cmocka_unit_test(test_workers_duplicate_key_across_workers),
		cmocka_unit_test(test_workers_mesh_peer_server_side),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

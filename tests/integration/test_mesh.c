/*
 * A region of three derpd nodes, two workers each, meshed over TLS with
 * certificate verification against a CA file and the "host/dialhost"
 * form; every node lists all three, itself included (self-dial is
 * detected by key).  Clients on every node reach clients on every other
 * node; a node restarted while traffic flows rejoins, and packets between
 * the other two are never lost (PROTOCOL.md 6).  A watcher hears
 * PeerGone only for keys the node itself had, not those it learned
 * through the mesh.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "derp/key.h"
#include "harness.h"

#define NN	3

static struct node	*nodes[NN];

static void
region_start(void)
{
	node_region_start(nodes, NN, 2, REGION_PSK);
}

static void
region_stop(void)
{
	int	i;

	for (i = 0; i < NN; i++) {
		node_stop(nodes[i]);
		node_free(nodes[i]);
		nodes[i] = NULL;
	}
}

static void
test_mesh_every_node_to_every_node(void **state)
{
	struct client		*c[NN][2];
	struct client_msg	 m;
	int			 i, j, k, l, v;
	long			 in0, out0, in1, out1;

	(void)state;
	region_start();
	for (i = 0; i < NN; i++)
		for (k = 0; k < 2; k++)
			c[i][k] = node_client(nodes[i]);
	for (i = 0; i < NN; i++)
		for (j = 0; j < NN; j++)
			if (i != j)
				reach(c[i][0], c[j][0]);
	/* Every client to every client on the other nodes, counted. */
	for (i = 0, in0 = out0 = 0; i < NN; i++) {
		in0 += node_metric(nodes[i], "derp_packets_forwarded_in");
		out0 += node_metric(nodes[i], "derp_packets_forwarded_out");
	}
	for (i = 0; i < NN; i++)
		for (k = 0; k < 2; k++)
			for (j = 0; j < NN; j++)
				for (l = 0; l < 2; l++) {
					if (i == j)
						continue;
					v = i * 10 + k;
					assert_int_equal(client_send_packet(
					    c[i][k], client_public_key(c[j][l]),
					    &v, sizeof(v)), 0);
				}
	for (j = 0; j < NN; j++)
		for (l = 0; l < 2; l++)
			for (k = 0; k < (NN - 1) * 2; k++) {
				assert_int_equal(recv_type(c[j][l],
				    DERP_FRAME_RECV_PACKET, &m, 5000), 0);
				memcpy(&v, m.data, sizeof(v));
				assert_memory_equal(m.key,
				    client_public_key(c[v / 10][v % 10]), 32);
			}
	/* One hop: each of the NN*2 * (NN-1)*2 cross-node packets was
	 * forwarded out exactly once and in exactly once. */
	for (i = 0, in1 = out1 = 0; i < NN; i++) {
		in1 += node_metric(nodes[i], "derp_packets_forwarded_in");
		out1 += node_metric(nodes[i], "derp_packets_forwarded_out");
	}
	assert_int_equal(in1 - in0, NN * 2 * (NN - 1) * 2);
	assert_int_equal(out1 - out0, NN * 2 * (NN - 1) * 2);
	for (i = 0; i < NN; i++) {
		assert_true(node_metric(nodes[i], "derp_packets_forwarded_out")
		    > 0);
		assert_true(node_metric(nodes[i], "derp_packets_forwarded_in")
		    > 0);
		assert_true(node_log_count(nodes[i], "event=mesh_self") >= 2);
	}
	for (i = 0; i < NN; i++)
		for (k = 0; k < 2; k++)
			client_free(c[i][k]);
	region_stop();
}

static void
test_mesh_node_restart_others_lose_nothing(void **state)
{
	struct client		*a, *b, *c;
	struct client_msg	 m;
	int			 i, st;

	(void)state;
	region_start();
	a = node_client(nodes[0]);
	b = node_client(nodes[1]);
	c = node_client(nodes[2]);
	reach(a, b);
	reach(a, c);
	/* Node 2 goes away and comes back while 0 and 1 keep talking. */
	kill(nodes[2]->pid, SIGTERM);
	for (i = 0; i < 50; i++) {
		assert_int_equal(client_send_packet(a, client_public_key(b), &i,
		    sizeof(i)), 0);
		assert_int_equal(recv_type(b, DERP_FRAME_RECV_PACKET, &m, 5000),
		    0);
		assert_memory_equal(m.data, &i, sizeof(i));
	}
	assert_int_equal(waitpid(nodes[2]->pid, &st, 0), nodes[2]->pid);
	assert_int_equal(WEXITSTATUS(st), 0);
	client_free(c);
	node_start_in(nodes[2], true, nodes[2]->extra);
	c = node_client(nodes[2]);
	reach(a, c);
	reach(c, b);
	for (i = 0; i < 50; i++) {
		assert_int_equal(client_send_packet(a, client_public_key(b), &i,
		    sizeof(i)), 0);
		assert_int_equal(recv_type(b, DERP_FRAME_RECV_PACKET, &m, 5000),
		    0);
	}
	client_free(a);
	client_free(b);
	client_free(c);
	region_stop();
}

static void
test_mesh_wrong_psk_is_refused(void **state)
{
	struct node	*intruder;
	char		 path[400], ex[2048];
	FILE		*f;
	int		 i;

	(void)state;
	region_start();
	/* A fourth node that knows the peers but not the key. */
	intruder = node_new();
	snprintf(path, sizeof(path), "%s/mesh.psk", intruder->dir);
	assert_non_null(f = fopen(path, "w"));
	fputs("1111111111111111111111111111111111111111111111111111111111111111"
	    "\n", f);
	fclose(f);
	snprintf(ex, sizeof(ex), "workers = 1;\nmesh = { psk_file = \"%s\"; "
	    "peers = ( \"localhost:%u/127.0.0.1:%u\" ); ca_file = \"%s\"; };"
	    "\n", path, nodes[0]->port, nodes[0]->port, nodes[0]->cert);
	node_start_in(intruder, true, ex);
	/* Its WatchConns is refused: the peer closes it as not_mesh. */
	assert_true(node_log_wait(nodes[0], "reason=not_mesh", 10000));
	/* It is closed with its WatchConns, before any ServerInfo. */
	assert_int_equal(node_log_count(intruder, "event=mesh_link_up"), 0);
	for (i = 0; i < NN; i++)
		assert_int_equal(node_metric(nodes[i],
		    "derp_packets_forwarded_in"), 0);
	node_stop(intruder);
	node_free(intruder);
	region_stop();
}

/* Frames on the watcher until PeerGone for key (within ms): how many
 * PeerGone frames for other named it; -1 if key's never came. */
static int
gones_until(struct client *wt, const uint8_t *key, const uint8_t *other,
    int ms)
{
	struct client_msg	m;
	uint64_t		deadline = now_ms() + (uint64_t)time_scaled(ms);
	int			n = 0;

	while (now_ms() < deadline) {
		if (recv_type(wt, DERP_FRAME_PEER_GONE, &m,
		    (int)(deadline - now_ms())) < 0)
			break;
		if (memcmp(m.key, other, 32) == 0)
			n++;
		if (memcmp(m.key, key, 32) == 0)
			return n;
	}
	return -1;
}

/* A watcher on node 0 (a mesh peer's WatchConns) is told of node 0's
 * own clients only: when a client of node 1, which node 0's workers
 * learned through their links to node 1, leaves, the watcher gets no
 * PeerGone for it; when node 0's own client leaves, it gets one. */
static void
test_mesh_watcher_no_gone_for_mesh_keys(void **state)
{
	struct client	*wt, *a[2] = { NULL, NULL }, *b, *x;
	uint8_t		 bk[32], ak[32];
	uint64_t	 deadline;
	long		 gone0;
	int		 k, tries;

	(void)state;
	region_start();
	wt = node_mesh_client(nodes[0], REGION_PSK, true);
	b = node_client(nodes[1]);
	memcpy(bk, client_public_key(b), 32);
	/* A client on each of node 0's workers reaches b: both workers'
	 * tables have b's key, through their links to node 1. */
	for (tries = 0; tries < 64 && (a[0] == NULL || a[1] == NULL);
	    tries++) {
		x = node_client(nodes[0]);
		k = node_client_worker(nodes[0], x);
		assert_true(k == 0 || k == 1);
		if (a[k] == NULL) {
			a[k] = x;
			reach(x, b);
		} else
			client_free(x);
	}
	assert_non_null(a[0]);
	assert_non_null(a[1]);
	memcpy(ak, client_public_key(a[0]), 32);
	gone0 = node_metric(nodes[0], "derpd_registry_mesh_gone");
	client_free(b);
	/* Both workers of node 0 dropped b's key (its only forwarder). */
	deadline = now_ms() + (uint64_t)time_scaled(10000);
	while (node_metric(nodes[0], "derpd_registry_mesh_gone") < gone0 + 2)
		assert_true(now_ms() < deadline);
	/* Anything queued for b's key on the watcher precedes a's. */
	client_free(a[0]);
	assert_int_equal(gones_until(wt, ak, bk, 10000), 0);
	client_free(a[1]);
	client_free(wt);
	region_stop();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mesh_every_node_to_every_node),
		cmocka_unit_test(test_mesh_node_restart_others_lose_nothing),
		cmocka_unit_test(test_mesh_wrong_psk_is_refused),
		cmocka_unit_test(test_mesh_watcher_no_gone_for_mesh_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

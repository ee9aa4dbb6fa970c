/*
 * Packets between workers (the shared-memory rings and their doorbells)
 * over TLS: a client on each of two workers, both sending at once, in
 * windows from one packet (the consumer asleep: a doorbell each time)
 * to hundreds (the consumer busy: producers skip the doorbell), and
 * every packet must arrive, in order, intact; nothing is dropped.  The
 * clients share one TLS context (client_tls_ctx_new) that outlives them.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define SIZE	1200

static void
fill(uint8_t *p, uint32_t seq, int dir)
{
	size_t	i;

	memcpy(p, &seq, sizeof(seq));
	for (i = sizeof(seq); i < SIZE; i++)
		p[i] = (uint8_t)(seq * 7 + i + (size_t)dir * 13);
}

static void
expect(struct client *c, const uint8_t *from, uint32_t seq, int dir)
{
	struct client_msg	m;
	uint8_t			want[SIZE];

	assert_int_equal(recv_type(c, DERP_FRAME_RECV_PACKET, &m,
	    time_scaled(10000)), 0);
	assert_memory_equal(m.key, from, 32);
	assert_int_equal(m.len, SIZE);
	fill(want, seq, dir);
	if (memcmp(m.data, want, SIZE) != 0) {
		uint32_t	got;

		memcpy(&got, m.data, sizeof(got));
		fail_msg("dir %d: packet %u where %u was due", dir, got, seq);
	}
}

/* Clients until one is on worker 0 and one on worker 1; returns how
 * many were connected in all. */
static int
two_workers(const struct node *n, struct client_opts *o,
    struct client *c[2], struct client **spare, int nspare)
{
	struct client	*x;
	int		 i, k, err = 0;

	c[0] = c[1] = NULL;
	for (i = 0; i < nspare && (c[0] == NULL || c[1] == NULL); i++) {
		if ((x = client_connect(o, &err)) == NULL)
			fail_msg("client_connect: %s", strerror(-err));
		k = node_client_worker(n, x);
		if ((k == 0 || k == 1) && c[k] == NULL)
			c[k] = x;
		else
			spare[i] = x;
	}
	if (c[0] == NULL || c[1] == NULL)
		fail_msg("no client on each worker after %d tries", nspare);
	return i;
}

static void
test_rings_cross_worker_windows(void **state)
{
	struct node	*n = node_start(true, "workers = 2;\nderp = { "
			    "queue_packets = 4096; queue_bytes = 8388608; };\n");
	struct client_opts o;
	struct client	*c[2], *spare[64] = { NULL };
	uint8_t		 p[SIZE];
	uint32_t	 seq[2] = { 0, 0 }, first[2];
	long		 in0, out0;
	int		 win, rep, i, d, total, err = 0;
	const int	 wins[] = { 1, 1, 1, 1, 1, 1, 1, 1, 2, 3, 5, 8, 16,
			    32, 64, 128, 256, 512 };

	(void)state;
	node_opts(n, &o);
	assert_non_null(o.tls_ctx = client_tls_ctx_new(&o));
	total = two_workers(n, &o, c, spare, 64);
	assert_true(node_converged(n, 2, "keys", total, time_scaled(10000)));
	reach(c[0], c[1]);
	reach(c[1], c[0]);
	in0 = node_metric(n, "derpd_ring_packets_in");
	out0 = node_metric(n, "derpd_ring_packets_out");
	for (rep = 0; rep < (int)(sizeof(wins) / sizeof(wins[0])); rep++) {
		win = wins[rep];
		/* Both directions at once: each worker produces and
		 * consumes. */
		for (d = 0; d < 2; d++) {
			first[d] = seq[d];
			for (i = 0; i < win; i++) {
				fill(p, seq[d]++, d);
				assert_int_equal(client_queue_packet(c[d],
				    client_public_key(c[1 - d]), p, SIZE), 0);
			}
			assert_int_equal(client_flush(c[d],
			    time_scaled(10000)), 0);
		}
		for (d = 0; d < 2; d++)
			for (i = 0; i < win; i++)
				expect(c[1 - d], client_public_key(c[d]),
				    first[d] + (uint32_t)i, d);
	}
	/* Every packet crossed a ring, none was dropped on the way. */
	assert_int_equal(node_metric(n, "derpd_ring_packets_in") - in0,
	    (long)(seq[0] + seq[1]));
	assert_int_equal(node_metric(n, "derpd_ring_packets_out") - out0,
	    (long)(seq[0] + seq[1]));
	assert_int_equal(node_metric(n, "derpd_ring_drops"), 0);
	/* Doorbells were rung (sleeping consumers), at most one per
	 * packet, and each woke its sibling at most once. */
	assert_true(node_metric(n, "derpd_ring_doorbells") > 0);
	assert_true(node_metric(n, "derpd_ring_doorbells") <=
	    node_metric(n, "derpd_ring_packets_out"));
	assert_true(node_metric(n, "derpd_ring_wakeups") <=
	    node_metric(n, "derpd_ring_doorbells"));
	client_free(c[0]);
	client_free(c[1]);
	for (i = 0; i < 64; i++)
		client_free(spare[i]);
	/* The shared context outlives its clients and still serves. */
	if ((c[0] = client_connect(&o, &err)) == NULL)
		fail_msg("client_connect: %s", strerror(-err));
	client_free(c[0]);
	SSL_CTX_free(o.tls_ctx);
	node_stop(n);
	node_free(n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rings_cross_worker_windows),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

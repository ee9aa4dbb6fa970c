/*
 * Idle memory (performance issue 8): a registered DERP connection that
 * has nothing to read or write holds no read, write or control buffer
 * and no HTTP request state (the derpd_conn_buffers_* gauges stay 0),
 * while one holding a partial frame is counted until the frame is
 * whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define NCLIENTS	16
#define NWORKERS	2

/* Wait for two fresh scans by every worker, then read a gauge. */
static long
scanned(struct node *n, const char *name)
{
	long		s0 = node_metric(n, "derpd_conn_buffer_scans");
	uint64_t	deadline = now_ms() + 10000;

	while (node_metric(n, "derpd_conn_buffer_scans") < s0 + 2 * NWORKERS
	    && now_ms() < deadline)
		;
	assert_true(node_metric(n, "derpd_conn_buffer_scans") >=
	    s0 + 2 * NWORKERS);
	return node_metric(n, name);
}

static void
ping_pong(struct client *c, uint8_t tag)
{
	struct client_msg	m;
	uint8_t			data[DERP_PING_LEN] = { tag };

	assert_int_equal(client_ping(c, data), 0);
	assert_int_equal(recv_type(c, DERP_FRAME_PONG, &m, 5000), 0);
	assert_int_equal(m.len, DERP_PING_LEN);
	assert_int_equal(m.data[0], tag);
}

static void
test_idle_conns_hold_no_buffers(void **state)
{
	struct node	*n = node_start(true, "workers = 2;\n");
	struct client	*c[NCLIENTS];
	uint8_t		 frame[5 + DERP_PING_LEN] = {
			    DERP_FRAME_PING, 0, 0, 0, DERP_PING_LEN, 7 };
	uint64_t	 deadline;
	int		 i;

	(void)state;
	for (i = 0; i < NCLIENTS; i++) {
		assert_non_null(c[i] = node_client(n));
		ping_pong(c[i], (uint8_t)i);
	}
	assert_int_equal(node_metric(n, "derp_current_connections"),
	    NCLIENTS);
	assert_int_equal(scanned(n, "derpd_conn_buffers_in"), 0);
	assert_int_equal(node_metric(n, "derpd_conn_buffers_out"), 0);
	assert_int_equal(node_metric(n, "derpd_conn_buffers_ctrl"), 0);
	assert_int_equal(node_metric(n, "derpd_conn_buffers_http"), 0);

	/* Three bytes of a Ping's header: the server must keep them. */
	assert_int_equal(client_queue_raw(c[0], frame, 3), 0);
	assert_int_equal(client_flush(c[0], 5000), 0);
	deadline = now_ms() + 10000;
	while (node_metric(n, "derpd_conn_buffers_in") != 1 &&
	    now_ms() < deadline)
		;
	assert_int_equal(node_metric(n, "derpd_conn_buffers_in"), 1);

	/* The rest: answered, and the buffer is gone again. */
	assert_int_equal(client_queue_raw(c[0], frame + 3, sizeof(frame) - 3),
	    0);
	assert_int_equal(client_flush(c[0], 5000), 0);
	{
		struct client_msg	m;

		assert_int_equal(recv_type(c[0], DERP_FRAME_PONG, &m, 5000),
		    0);
		assert_int_equal(m.data[0], 7);
	}
	assert_int_equal(scanned(n, "derpd_conn_buffers_in"), 0);
	assert_int_equal(node_metric(n, "derpd_conn_buffers_out"), 0);
	for (i = 0; i < NCLIENTS; i++)
		client_free(c[i]);
	node_stop(n);
	node_free(n);
}

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test(test_idle_conns_hold_no_buffers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Admission limits (issue 5, item 5): the accept-rate bucket closes what
 * exceeds it and keeps serving (15 U3), the per-IP cap refuses one more
 * connection from a busy address but not from another, and a client over
 * its receive rate is slowed by back-pressure while others are not.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static void
test_limits_accept_rate(void **state)
{
	struct node	*n = node_new();
	struct client	*c = NULL;
	char		 extra[256];
	int		 fds[20], i;
	uint64_t	 deadline;

	(void)state;
	/* Metrics on their own listener: the limited one would refuse the
	 * test's own queries. */
	n->metrics_port = free_tcp_port();
	snprintf(extra, sizeof(extra), "limits = { accept_rate = 5.0; "
	    "accept_burst = 5; };\nmetrics = { listen = \"127.0.0.1:%u\"; };"
	    "\n", n->metrics_port);
	node_start_in(n, false, extra);
	for (i = 0; i < 20; i++)
		assert_true((fds[i] = raw_connect(n->port)) >= 0);
	/* At most burst + a second's refill were admitted. */
	deadline = now_ms() + 5000;
	while (node_metric(n, "tls_listener_rejected_connections") < 10 &&
	    now_ms() < deadline)
		;
	assert_true(node_metric(n, "tls_listener_rejected_connections") >= 10);
	for (i = 0; i < 20; i++)
		close(fds[i]);
	/* The listener is still serving once tokens accrue. */
	deadline = now_ms() + 5000;
	while (c == NULL && now_ms() < deadline) {
		struct client_opts	o;
		int			err;

		node_opts(n, &o);
		c = client_connect(&o, &err);
	}
	assert_non_null(c);
	client_free(c);
	node_stop(n);
	node_free(n);
}

static void
test_limits_per_ip_cap(void **state)
{
	struct node		*n = node_start(false,
				    "limits = { max_per_ip = 3; };\n");
	struct client		*c[3], *other, *again;
	struct client_opts	 o;
	int			 i, err;

	(void)state;
	for (i = 0; i < 3; i++)
		c[i] = node_client(n);
	node_opts(n, &o);
	assert_null(client_connect(&o, &err));		/* the fourth */
	assert_true(node_log_wait(n, "reason=too_many_per_ip", 5000));
	o.bind_addr = "127.0.0.2";			/* another address */
	assert_non_null(other = client_connect(&o, &err));
	client_free(c[0]);				/* a slot frees up */
	o.bind_addr = NULL;
	again = NULL;
	{
		uint64_t	deadline = now_ms() + 5000;

		while (again == NULL && now_ms() < deadline)
			again = client_connect(&o, &err);
	}
	assert_non_null(again);
	client_free(again);
	client_free(other);
	client_free(c[1]);
	client_free(c[2]);
	node_stop(n);
	node_free(n);
}

struct sender {
	struct client	*a;
	const uint8_t	*dst;
	int		 npkts;
	int		 rc;
};

static void *
send_all(void *arg)
{
	struct sender	*s = arg;
	static uint8_t	 pkt[65536];
	int		 i;

	for (i = 0; i < s->npkts && s->rc == 0; i++)
		s->rc = client_send_packet(s->a, s->dst, pkt, sizeof(pkt));
	return NULL;
}

static void
test_limits_client_rate_slows_only_itself(void **state)
{
	struct node		*n = node_start(false, "limits = { "
				    "client_rate_bytes = 1000000; "
				    "client_burst_bytes = 65568; };\n"
				    "derp = { write_timeout_ms = 0; };\n");
	struct client		*a = node_client(n), *b = node_client(n);
	struct client		*c = node_client(n), *d = node_client(n);
	struct client_msg	 m;
	struct sender		 s = { a, NULL, 40, 0 };
	pthread_t		 t;
	uint64_t		 t0, fast_done = 0;
	int			 got = 0, rt = 0;

	(void)state;
	s.dst = client_public_key(b);
	t0 = now_ms();
	assert_int_equal(pthread_create(&t, NULL, send_all, &s), 0);
	/* B drains what A manages to send; C and D trade round trips. */
	while (got < 40 && now_ms() - t0 < 20000) {
		if (rt < 50) {
			assert_int_equal(client_send_packet(c,
			    client_public_key(d), "rt", 2), 0);
			assert_int_equal(recv_type(d, DERP_FRAME_RECV_PACKET,
			    &m, 5000), 0);
			if (++rt == 50)
				fast_done = now_ms() - t0;
		}
		if (client_recv(b, &m, rt < 50 ? 0 : 1000) == 0 &&
		    m.type == DERP_FRAME_RECV_PACKET)
			got++;
	}
	pthread_join(t, NULL);
	assert_int_equal(s.rc, 0);
	assert_int_equal(got, 40);
	assert_int_equal(rt, 50);
	/* 40 x 64 KiB at 1 MB/s after a 64 KiB burst: at least ~2.5 s,
	 * and the other pair was done long before. */
	print_message("throttled 2.6 MB: %llu ms; 50 round trips: %llu ms\n",
	    (unsigned long long)(now_ms() - t0),
	    (unsigned long long)fast_done);
	assert_true(now_ms() - t0 >= 2000);
	assert_true(fast_done < now_ms() - t0);
	assert_true(node_metric(n, "derp_rate_limit_per_client_waited") > 0);
	client_free(a);
	client_free(b);
	client_free(c);
	client_free(d);
	node_stop(n);
	node_free(n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limits_accept_rate),
		cmocka_unit_test(test_limits_per_ip_cap),
		cmocka_unit_test(test_limits_client_rate_slows_only_itself),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

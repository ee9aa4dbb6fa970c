/*
 * tls.record_layer = "kernel" in the real daemon.  Each worker probes
 * kernel TLS at start; where this kernel has it, connections are framed
 * by the kernel (derpd_tls_record_offload{result="kernel"}), and where
 * it does not, the worker says why and derpd's own record layer takes
 * them.  Either way DERP relays, over TLS and WebSocket, at every size,
 * and the verdict matches what the kernel itself answers to TCP_ULP.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/ssl.h>

#include "harness.h"
#include "tests/kernel_tls.h"

#define KERNEL		"derpd_tls_record_offload{result=\"kernel\"}"
#define OFFLOADED	"derpd_tls_record_offload{result=\"offloaded\"}"
#define OTHER		"derpd_tls_record_offload{result=\"other\"}"

static const size_t sizes[] = { 1, 1200, 16384, 16385, 65536 };

static void
relay_both(struct client *a, struct client *b, int salt)
{
	relay_sizes(a, b, sizes, sizeof(sizes) / sizeof(sizes[0]), salt);
}

static void
test_ktls_relays_or_falls_back(void **state)
{
	struct node	*n;
	struct client	*a, *b, *w;
	bool		 kernel = kernel_has_tls_ulp();

	(void)state;
	n = node_start_layer("kernel", "workers = 2;\n");
	/* Both workers probed before they were ready. */
	if (kernel) {
		assert_int_equal(node_log_count(n, "event=ktls_ready"), 2);
		assert_int_equal(node_log_count(n, "event=ktls_partial"), 0);
	} else {
		assert_int_equal(node_log_count(n, "event=ktls_unavailable "
		    "reason=\"TCP_ULP tls"), 2);
	}
	a = node_client(n);
	b = node_client(n);
	w = node_ws_client(n);
	reach(a, b);
	reach(w, b);
	relay_both(a, b, 1);
	relay_both(w, a, 2);
	/* Three clients and this scrape's connection. */
	if (kernel) {
		assert_true(node_metric(n, KERNEL) >= 4);
		assert_int_equal(node_metric(n, OFFLOADED), 0);
	} else {
		assert_int_equal(node_metric(n, KERNEL), 0);
		assert_true(node_metric(n, OFFLOADED) >= 4);
	}
	assert_int_equal(node_metric(n, OTHER), 0);
	client_free(w);
	client_free(b);
	client_free(a);
	node_stop(n);
	node_free(n);
}

/* A client's KeyUpdate: derpd's record layer follows it; over kTLS the
 * connection is closed (no kernel re-key asked for) and only that
 * client notices. */
static void
test_ktls_key_update(void **state)
{
	struct node		*n;
	struct client		*a, *b, *c;
	struct client_msg	 m;
	bool			 kernel = kernel_has_tls_ulp();
	int			 rc;

	(void)state;
	n = node_start_layer("kernel", "workers = 2;\n");
	a = node_client(n);
	b = node_client(n);
	c = node_client(n);
	reach(a, b);
	reach(c, b);
	assert_int_equal(SSL_key_update(client_ssl(a),
	    SSL_KEY_UPDATE_NOT_REQUESTED), 1);
	if (kernel) {
		(void)client_send_packet(a, client_public_key(b), "x", 1);
		do {
			rc = recv_type(a, DERP_FRAME_RECV_PACKET, &m, 10000);
		} while (rc == 0);
		assert_true(rc != -ETIMEDOUT);
	} else {
		relay_both(a, b, 3);
		assert_int_equal(node_metric(n,
		    "derpd_tls_key_updates_received"), 1);
	}
	relay_both(c, b, 4);	/* the others relay on */
	client_free(c);
	client_free(b);
	client_free(a);
	node_stop(n);
	node_free(n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ktls_relays_or_falls_back),
		cmocka_unit_test(test_ktls_key_update),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

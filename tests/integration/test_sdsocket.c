/*
 * Socket activation with systemd's own launcher: systemd-socket-activate
 * binds the listeners and execs derpd with them, named (FileDescriptorName
 * "https" / "http") or, as one derpd.socket unit passes them, unnamed and
 * told apart by port.  derpd must serve DERP over TLS on the https socket
 * and the port-80 endpoints on the http one, and close a socket that is
 * none of its listeners.
 */
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
serve_activated(const char *fdname, bool foreign)
{
	struct node		*n = node_new();
	struct client		*a, *b;
	struct client_opts	 o;
	char			 l1[64], l2[64], l3[64], buf[4096];
	const char		*argv[10];
	int			 i = 0, err;
	uint16_t		 other = free_tcp_port();

	n->fixed = true;
	n->port = free_tcp_port();
	n->http_port = free_tcp_port();
	snprintf(l1, sizeof(l1), "--listen=127.0.0.1:%u", n->port);
	snprintf(l2, sizeof(l2), "--listen=127.0.0.1:%u", n->http_port);
	snprintf(l3, sizeof(l3), "--listen=127.0.0.1:%u", other);
	argv[i++] = "systemd-socket-activate";
	argv[i++] = l1;
	argv[i++] = l2;
	if (foreign)
		argv[i++] = l3;
	if (fdname != NULL)
		argv[i++] = fdname;
	argv[i] = NULL;
	n->launcher = argv;
	node_start_in(n, true, NULL);
	assert_true(node_log_wait(n, "event=socket_activation", 5000));

	/* DERP over TLS on the passed https socket. */
	assert_non_null(a = node_client(n));
	assert_non_null(b = node_client(n));
	reach(a, b);
	client_free(a);
	client_free(b);

	/* The passed http socket is derper's port 80. */
	memset(&o, 0, sizeof(o));
	o.host = "127.0.0.1";
	o.port = n->http_port;
	err = client_http_get(&o, "GET", "/generate_204",
	    "X-Tailscale-Challenge: ts_act\r\n", buf, sizeof(buf));
	assert_int_equal(err, 204);
	assert_non_null(strstr(buf, "X-Tailscale-Response: response ts_act"));
	node_stop(n);
	node_free(n);
}

static void
test_sdsocket_named(void **state)
{
	(void)state;
	serve_activated("--fdname=https:http", false);
}

static void
test_sdsocket_by_port(void **state)
{
	(void)state;
	/* One socket unit: every fd carries the unit's name. */
	serve_activated(NULL, true);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sdsocket_named),
		cmocka_unit_test(test_sdsocket_by_port),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

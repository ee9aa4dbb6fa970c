/*
 * The TLS record layer hand-off (worker/tlsrec.c) in the real daemon:
 * DERP relayed both ways over offloaded connections, KeyUpdate in the
 * middle of a session, tls.record_layer = "openssl" and its reload, a
 * TLS 1.2 client that stays with OpenSSL, and GnuTLS (gnutls-cli, an
 * independent TLS stack) through the offload.
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

#include <cmocka.h>
#include <openssl/ssl.h>

#include "derp/key.h"
#include "harness.h"

#define GNUTLS_CLI	"/usr/bin/gnutls-cli"
#define OFFLOADED	"derpd_tls_record_offload{result=\"offloaded\"}"
#define TLS12		"derpd_tls_record_offload{result=\"tls12\"}"
#define OTHER		"derpd_tls_record_offload{result=\"other\"}"

static const size_t sizes[] = { 1, 37, 1200, 1500, 9000, 16384, 16385,
	40000, 65536 };

static void
relay_both(struct client *a, struct client *b, int salt)
{
	relay_sizes(a, b, sizes, sizeof(sizes) / sizeof(sizes[0]), salt);
}

static void
test_tlsrec_offload_relays(void **state)
{
	struct node	*n;
	struct client	*a, *b, *w;

	(void)state;
	n = node_start(true, NULL);
	a = node_client(n);
	b = node_client(n);
	w = node_ws_client(n);		/* WebSocket over the offload */
	reach(a, b);
	reach(a, w);
	relay_both(a, b, 1);
	relay_both(w, b, 2);
	assert_true(node_metric(n, OFFLOADED) >= 3);
	assert_int_equal(node_metric(n, OTHER), 0);
	assert_int_equal(node_metric(n, TLS12), 0);
	client_free(w);
	client_free(b);
	client_free(a);
	node_stop(n);
	node_free(n);
}

/* The client updates its keys, asking derpd to update too, and both
 * keep relaying; then again without the request. */
static void
test_tlsrec_key_update_mid_session(void **state)
{
	struct node	*n;
	struct client	*a, *b;
	int		 i;

	(void)state;
	n = node_start(true, NULL);
	a = node_client(n);
	b = node_client(n);
	assert_non_null(client_ssl(a));
	reach(a, b);
	for (i = 0; i < 3; i++) {
		assert_int_equal(SSL_key_update(client_ssl(a),
		    SSL_KEY_UPDATE_REQUESTED), 1);
		relay_both(a, b, 10 + i);
		assert_int_equal(SSL_key_update(client_ssl(b),
		    SSL_KEY_UPDATE_NOT_REQUESTED), 1);
		relay_both(a, b, 20 + i);
	}
	assert_int_equal(node_metric(n, "derpd_tls_key_updates_received"),
	    6);
	client_free(b);
	client_free(a);
	node_stop(n);
	node_free(n);
}

static void
conf_swap(const struct node *n, const char *from, const char *to)
{
	char	 buf[8192], *p;
	FILE	*f;
	size_t	 len;

	assert_non_null(f = fopen(n->conf, "r"));
	len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	assert_non_null(p = strstr(buf, from));
	assert_non_null(f = fopen(n->conf, "w"));
	fwrite(buf, 1, (size_t)(p - buf), f);
	fputs(to, f);
	fputs(p + strlen(from), f);
	fclose(f);
}

/* "openssl": nothing is offloaded; a reload to "derpd" applies to the
 * connections made after it, and old and new relay to each other. */
static void
test_tlsrec_openssl_setting_and_reload(void **state)
{
	struct node	*n;
	struct client	*a, *b, *c;
	long		 before;

	(void)state;
	n = node_start_layer("openssl", NULL);
	a = node_client(n);
	b = node_client(n);
	reach(a, b);
	relay_both(a, b, 3);
	assert_int_equal(node_metric(n, OFFLOADED), 0);
	assert_true(node_metric(n, OTHER) >= 2);
	conf_swap(n, "record_layer = \"openssl\"", "record_layer = \"derpd\"");
	assert_int_equal(kill(n->pid, SIGHUP), 0);
	assert_true(node_log_wait(n, "event=reloaded", 10000));
	before = node_metric(n, OFFLOADED);	/* this scrape's own */
	assert_true(before >= 1);
	c = node_client(n);
	reach(a, c);
	relay_both(a, c, 4);
	relay_both(b, a, 5);
	assert_true(node_metric(n, OFFLOADED) >= before + 2);
	client_free(c);
	client_free(b);
	client_free(a);
	node_stop(n);
	node_free(n);
}

/* TLS 1.2 stays with OpenSSL and relays with an offloaded TLS 1.3
 * client. */
static void
test_tlsrec_tls12_client_falls_back(void **state)
{
	struct node		*n;
	struct client_opts	 o;
	struct client		*a, *b;
	int			 err = 0;

	(void)state;
	n = node_start(true, NULL);
	node_opts(n, &o);
	o.tls_max_version = TLS1_2_VERSION;
	a = client_connect(&o, &err);
	if (a == NULL)
		fail_msg("TLS 1.2 client: %s", strerror(-err));
	assert_int_equal(SSL_version(client_ssl(a)), TLS1_2_VERSION);
	b = node_client(n);
	reach(a, b);
	relay_both(a, b, 6);
	assert_int_equal(node_metric(n, TLS12), 1);
	assert_true(node_metric(n, OFFLOADED) >= 1);
	assert_int_equal(node_metric(n, OTHER), 0);
	client_free(b);
	client_free(a);
	node_stop(n);
	node_free(n);
}

/* Run gnutls-cli with a request on stdin; its stdout in out. */
static void
gnutls_get(const struct node *n, const char *prio, const char *req,
    const char *extra_args, char *out, size_t cap)
{
	char	 cmd[2048];
	FILE	*p;
	size_t	 len;

	snprintf(cmd, sizeof(cmd), "printf '%s' | timeout 30 %s --priority "
	    "'%s' --x509cafile '%s' --sni-hostname localhost "
	    "--verify-hostname localhost -p %u %s 127.0.0.1 2>&1",
	    req, GNUTLS_CLI, prio, n->cert, n->port, extra_args);
	assert_non_null(p = popen(cmd, "r"));
	len = fread(out, 1, cap - 1, p);
	out[len] = '\0';
	(void)pclose(p);
}

static void
test_tlsrec_gnutls_client(void **state)
{
	static char	 out[65536];
	struct node	*n;
	const char	*prio[] = {
		"NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM",
		"NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-256-GCM",
		"NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+CHACHA20-POLY1305",
	};
	size_t		 i;
	long		 before;

	(void)state;
	if (access(GNUTLS_CLI, X_OK) != 0)
		fail_msg("%s is missing: install gnutls-bin", GNUTLS_CLI);
	n = node_start(true, NULL);
	for (i = 0; i < sizeof(prio) / sizeof(prio[0]); i++) {
		before = node_metric(n, OFFLOADED);
		gnutls_get(n, prio[i], "GET /derp/probe HTTP/1.1\\r\\nHost: "
		    "localhost\\r\\n\\r\\nGET /derp/latency-check "
		    "HTTP/1.1\\r\\n"
		    "Host: localhost\\r\\nConnection: close\\r\\n\\r\\n", "",
		    out, sizeof(out));
		if (strstr(out, "HTTP/1.1 200") == NULL ||
		    strstr(strstr(out, "HTTP/1.1 200") + 1, "HTTP/1.1 200")
		    == NULL)
			fail_msg("gnutls-cli (%s):\n%s", prio[i], out);
		/* Its connection and this scrape's. */
		assert_true(node_metric(n, OFFLOADED) >= before + 2);
	}
	/* GnuTLS's KeyUpdate (update_requested) between two requests: the
	 * second answer comes under derpd's next key. */
	gnutls_get(n, prio[0], "GET /derp/probe HTTP/1.1\\r\\nHost: "
	    "localhost\\r\\n\\r\\n^rekey^\\nGET /derp/probe HTTP/1.1\\r\\n"
	    "Host: localhost\\r\\nConnection: close\\r\\n\\r\\n",
	    "--inline-commands", out, sizeof(out));
	if (strstr(out, "Rekey was completed") == NULL ||
	    strstr(out, "HTTP/1.1 200") == NULL ||
	    strstr(strstr(out, "HTTP/1.1 200") + 1, "HTTP/1.1 200") == NULL)
		fail_msg("gnutls-cli ^rekey^:\n%s", out);
	assert_int_equal(node_metric(n, "derpd_tls_key_updates_received"),
	    1);
	assert_int_equal(node_metric(n, OTHER), 0);
	node_stop(n);
	node_free(n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tlsrec_offload_relays),
		cmocka_unit_test(test_tlsrec_key_update_mid_session),
		cmocka_unit_test(test_tlsrec_openssl_setting_and_reload),
		cmocka_unit_test(test_tlsrec_tls12_client_falls_back),
		cmocka_unit_test(test_tlsrec_gnutls_client),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * sandbox.seccomp (issue 9): with the filter on, every worker of two
 * meshed TLS nodes shows Seccomp: 2 with a filter in /proc (the
 * supervisor none), and a representative session works under it: DERP
 * over TLS and WebSocket, relay across workers and over the mesh, a
 * mesh-key watcher, the debug and bootstrap-dns pages, the traffic
 * dump, a reload, a certificate replaced on disk (certwatch) and a
 * clean stop, with no worker killed (node_stop fails on any signal=).
 * With the filter off (the default) no worker is filtered.
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

#include "derp/key.h"
#include "harness.h"

#define PSK	"8fb454e8a4747af1bbc2f421ad3c8aca9e0416cc60a7102983692f34dc153b2a"

static long
status_num(pid_t pid, const char *name)
{
	char	path[64], line[512];
	size_t	nl = strlen(name);
	long	v = -1;
	FILE	*f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	assert_non_null(f = fopen(path, "r"));
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, name, nl) == 0 && line[nl] == ':')
			v = strtol(line + nl + 1, NULL, 10);
	fclose(f);
	if (v < 0)
		fail_msg("pid %d: no %s in status", (int)pid, name);
	return v;
}

static void
assert_filtered(const struct node *n, int nworkers, bool on)
{
	int	i;
	pid_t	p;

	for (i = 0; i < nworkers; i++) {
		assert_true((p = node_worker_pid(n, i)) > 0);
		assert_int_equal(status_num(p, "Seccomp"), on ? 2 : 0);
		if (on)
			assert_true(status_num(p, "Seccomp_filters") >= 1);
		else
			assert_int_equal(status_num(p, "Seccomp_filters"), 0);
	}
	assert_int_equal(status_num(n->pid, "Seccomp"), 0);
}

static void
get_ok(const struct node *n, const char *path)
{
	struct client_opts	 o;
	static char		 buf[1 << 18];
	int			 st;

	node_opts(n, &o);
	st = client_http_get(&o, "GET", path, NULL, buf, sizeof(buf));
	if (st != 200)
		fail_msg("GET %s: %d", path, st);
}

static void
test_sandbox_session(void **state)
{
	struct node		*a = node_new(), *b = node_new(), *nodes[2];
	struct client		*c[4], *w;
	struct client_msg	 m;
	char			 cmd[2048], peers[256], extra[2][2048];
	int			 i, j;

	(void)state;
	nodes[0] = a;
	nodes[1] = b;
	for (i = 0; i < 2; i++) {
		nodes[i]->port = free_tcp_port();
		nodes[i]->http_port = free_tcp_port();
		nodes[i]->fixed = true;
	}
	node_make_cert(a);
	snprintf(cmd, sizeof(cmd), "cp %s/cert.pem %s/key.pem %s/", a->dir,
	    a->dir, b->dir);
	assert_int_equal(system(cmd), 0);
	snprintf(b->cert, sizeof(b->cert), "%s/cert.pem", b->dir);
	snprintf(peers, sizeof(peers), "\"localhost:%u/127.0.0.1:%u\", "
	    "\"localhost:%u/127.0.0.1:%u\"", a->port, a->port, b->port,
	    b->port);
	for (i = 0; i < 2; i++) {
		snprintf(cmd, sizeof(cmd), "echo %s > %s/mesh.psk", PSK,
		    nodes[i]->dir);
		assert_int_equal(system(cmd), 0);
		snprintf(extra[i], sizeof(extra[i]), "workers = 2;\n"
		    "sandbox = { seccomp = true; };\n"
		    "mesh = { psk_file = \"%s/mesh.psk\"; peers = ( %s ); "
		    "ca_file = \"%s\"; };\ntraffic = { dump_file = "
		    "\"%s/traffic.jsonl\"; interval_s = 1; };\n"
		    "bootstrap_dns = { names = ( \"localhost\" ); };\n",
		    nodes[i]->dir, peers, nodes[i]->cert, nodes[i]->dir);
		node_start_in(nodes[i], true, extra[i]);
		assert_filtered(nodes[i], 2, true);
		assert_int_equal(node_log_count(nodes[i],
		    "event=seccomp_enabled"), 2);
	}
	/* TLS on both nodes, WebSocket on A; every pair, so across
	 * workers and over the mesh. */
	c[0] = node_client(a);
	c[1] = node_ws_client(a);
	c[2] = node_client(b);
	c[3] = node_client(b);
	for (i = 0; i < 4; i++)
		for (j = 0; j < 4; j++)
			if (i != j)
				reach(c[i], c[j]);
	w = node_mesh_client(a, PSK, true);
	assert_int_equal(recv_type(w, DERP_FRAME_PEER_PRESENT, &m, 5000), 0);
	client_free(w);
	for (i = 0; i < 2; i++) {
		get_ok(nodes[i], "/debug/varz");
		get_ok(nodes[i], "/debug/traffic");
		get_ok(nodes[i], "/bootstrap-dns");
		get_ok(nodes[i], "/derp/probe");
	}
	/* The traffic dump (every second) is written under the filter. */
	snprintf(cmd, sizeof(cmd), "%s/traffic.jsonl", a->dir);
	for (i = 0; i < 300 && access(cmd, F_OK) != 0; i++)
		(void)node_log_wait(a, "event=__none__", 10);
	assert_int_equal(access(cmd, F_OK), 0);
	/* Reload: config, TLS pair and mesh peers re-read under it. */
	for (i = 0; i < 2; i++) {
		assert_int_equal(kill(nodes[i]->pid, SIGHUP), 0);
		assert_true(node_log_wait(nodes[i], "worker=1 event=reloaded",
		    5000));
	}
	/* A new certificate installed the way uacme and certbot do. */
	snprintf(cmd, sizeof(cmd), "cd %s && openssl req -x509 -newkey ec "
	    "-pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout k.tmp "
	    "-out c.tmp -days 2 -subj /CN=renewed -addext "
	    "subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null && "
	    "cp cert.pem ca-old.pem && mv k.tmp key.pem && mv c.tmp cert.pem",
	    a->dir);
	assert_int_equal(system(cmd), 0);
	/* Both workers: a client below may land on either. */
	assert_true(node_log_wait(a, "worker=0 event=tls_cert_reloaded",
	    10000));
	assert_true(node_log_wait(a, "worker=1 event=tls_cert_reloaded",
	    10000));
	for (i = 0; i < 4; i++)
		client_free(c[i]);
	c[0] = node_client(a);	/* trusts the new cert.pem */
	c[1] = node_client(a);
	reach(c[0], c[1]);
	client_free(c[0]);
	client_free(c[1]);
	for (i = 0; i < 2; i++) {
		assert_filtered(nodes[i], 2, true);
		assert_int_equal(node_log_count(nodes[i], "seccomp_denied"), 0);
		node_stop(nodes[i]);
		node_free(nodes[i]);
	}
}

static void
test_sandbox_off_by_default(void **state)
{
	struct node	*n;

	(void)state;
	if (getenv("DERPD_TEST_SECCOMP") != NULL)
		skip();
	n = node_start(false, "workers = 2;\n");
	assert_filtered(n, 2, false);
	assert_int_equal(node_log_count(n, "seccomp_enabled"), 0);
	node_stop(n);
	node_free(n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sandbox_session),
		cmocka_unit_test(test_sandbox_off_by_default),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

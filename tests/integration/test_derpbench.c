/*
 * The built derpbench binary (DERPBENCH_BIN) against a real derpd: a
 * short closed-loop relay run whose JSON adds up with the server's own
 * counters, the idle mode holding clients from several source addresses,
 * the mesh topology across a 2-node region, the paced (latency) mode's
 * schedule and report, and usage errors.  Function,
 * not speed: no assertion depends on how fast anything ran.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <jansson.h>

#include "harness.h"

#define PSK	"3b1f0c4e5d6a7980a1b2c3d4e5f60718" \
		"293a4b5c6d7e8f90a1b2c3d4e5f60718\n"

static const char *
bench_bin(void)
{
	const char	*b = getenv("DERPBENCH_BIN");

	return b != NULL ? b : "build/derpbench";
}

/* Run derpbench with args; its stdout into out; the exit status. */
static int
run_bench(const char *args, char *out, size_t cap)
{
	char	cmd[2048];
	FILE	*p;
	size_t	n;
	int	st;

	snprintf(cmd, sizeof(cmd), "%s %s", bench_bin(), args);
	assert_non_null(p = popen(cmd, "r"));
	n = fread(out, 1, cap - 1, p);
	out[n] = '\0';
	st = pclose(p);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static json_t *
parse(const char *out)
{
	json_error_t	 e;
	json_t		*j = json_loads(out, 0, &e);

	if (j == NULL)
		fail_msg("derpbench JSON: %s in \"%.200s\"", e.text, out);
	assert_true(json_is_object(j));
	return j;
}

static long long
jint(const json_t *j, const char *k)
{
	const json_t	*v = json_object_get(j, k);

	if (!json_is_integer(v))
		fail_msg("JSON field %s missing or not an integer", k);
	return json_integer_value(v);
}

static double
jnum(const json_t *j, const char *k)
{
	const json_t	*v = json_object_get(j, k);

	if (!json_is_number(v))
		fail_msg("JSON field %s missing or not a number", k);
	return json_number_value(v);
}

static void
tls_args(const struct node *n, char *buf, size_t cap)
{
	snprintf(buf, cap, "--tls --ca-file %s --server-name localhost",
	    n->cert);
}

static void
test_derpbench_closed_loop_json(void **state)
{
	struct node	*n = node_start(true, NULL);
	static char	 out[8192];
	char		 args[1024], tls[512];
	json_t		*j, *lat;
	long		 sent0;

	(void)state;
	tls_args(n, tls, sizeof(tls));
	sent0 = node_metric(n, "derp_packets_sent");
	/* A window below the server's per-client queue: nothing may be
	 * dropped, so any loss is a bug in the relay or in the counting. */
	snprintf(args, sizeof(args), "%s --pairs 2 --size 200 --seconds 1 "
	    "--window 16 --json --server-pid %d,%d 127.0.0.1:%u", tls,
	    n->pid, node_worker_pid(n, 0), n->port);
	assert_int_equal(run_bench(args, out, sizeof(out)), 0);
	j = parse(out);
	assert_string_equal(json_string_value(json_object_get(j, "mode")),
	    "relay");
	assert_true(jint(j, "received") > 0);
	assert_true(jint(j, "sent") > 0);
	assert_int_equal(jint(j, "delivered"), jint(j, "sent"));
	assert_int_equal(jint(j, "lost"), 0);
	assert_true(jnum(j, "loss_pct") == 0);
	assert_true(jnum(j, "pps") > 0 && jnum(j, "gbps") > 0);
	assert_true(jnum(j, "server_cpu_s") >= 0);
	lat = json_object_get(j, "lat_ms");
	assert_true(jnum(lat, "p50") <= jnum(lat, "p90"));
	assert_true(jnum(lat, "p90") <= jnum(lat, "p99"));
	assert_true(jnum(lat, "p99") <= jnum(lat, "max"));
	assert_true(jnum(lat, "max") > 0);
	/* The server relayed at least what derpbench says arrived. */
	assert_true(node_metric(n, "derp_packets_sent") - sent0 >=
	    jint(j, "delivered"));
	json_decref(j);
	node_stop(n);
	node_free(n);
}

static void
test_derpbench_idle_holds_clients(void **state)
{
	struct node	*n = node_start(true, "workers = 2;\n"
			    "derp = { keepalive_ms = 200; };\n");
	static char	 out[8192];
	char		 args[1024], tls[512];
	json_t		*j;

	(void)state;
	tls_args(n, tls, sizeof(tls));
	snprintf(args, sizeof(args), "%s --idle 200 --hold 1 --threads 4 "
	    "--sources 127.0.0.2-127.0.0.9 --json --server-pid %d,%d,%d "
	    "127.0.0.1:%u", tls, n->pid, node_worker_pid(n, 0),
	    node_worker_pid(n, 1), n->port);
	assert_int_equal(run_bench(args, out, sizeof(out)), 0);
	j = parse(out);
	assert_string_equal(json_string_value(json_object_get(j, "mode")),
	    "idle");
	assert_int_equal(jint(j, "connected"), 200);
	assert_int_equal(jint(j, "failed"), 0);
	assert_int_equal(jint(j, "alive"), 200);
	/* A 1 s hold against 200 ms keepalives: each client saw one. */
	assert_int_equal(jint(j, "clients_with_keepalive"), 200);
	assert_true(jint(j, "server_rss_kib_before") > 0);
	assert_true(jint(j, "server_rss_kib_after") > 0);
	assert_true(json_is_number(json_object_get(j, "rss_kib_per_conn")));
	assert_true(jnum(j, "connects_per_s") > 0);
	json_decref(j);
	/* The sources were spread: both ends of the range connected. */
	assert_true(node_log_count(n, "peer=127.0.0.2:") > 0);
	assert_true(node_log_count(n, "peer=127.0.0.9:") > 0);
	assert_int_equal(node_log_count(n, "peer=127.0.0.10:"), 0);
	node_stop(n);
	node_free(n);
}

static void
test_derpbench_storm(void **state)
{
	struct node	*n = node_start(true, "workers = 2;\n");
	static char	 out[8192];
	char		 args[1024], tls[512];
	json_t		*j;
	long		 acc0;

	(void)state;
	tls_args(n, tls, sizeof(tls));
	acc0 = node_metric(n, "derp_accepts");
	snprintf(args, sizeof(args), "%s --storm 60 --concurrency 4 "
	    "--sources 127.0.0.2-127.0.0.5 --json --server-pid %d,%d,%d "
	    "127.0.0.1:%u", tls, n->pid, node_worker_pid(n, 0),
	    node_worker_pid(n, 1), n->port);
	assert_int_equal(run_bench(args, out, sizeof(out)), 0);
	j = parse(out);
	assert_string_equal(json_string_value(json_object_get(j, "mode")),
	    "storm");
	assert_int_equal(jint(j, "ok"), 60);
	assert_int_equal(jint(j, "failed"), 0);
	assert_true(jnum(j, "handshakes_per_s") > 0);
	assert_true(jnum(j, "latency_ms_p50") > 0);
	assert_true(jnum(j, "latency_ms_p50") <= jnum(j, "latency_ms_p99"));
	assert_true(jnum(j, "latency_ms_p99") <= jnum(j, "latency_ms_max"));
	assert_true(jnum(j, "server_cpu_ms_per_handshake") > 0);
	assert_true(jnum(j, "handshakes_per_server_core_s") > 0);
	json_decref(j);
	/* Every handshake was a new connection that registered. */
	assert_true(node_metric(n, "derp_accepts") - acc0 >= 60);
	assert_true(node_log_count(n, "peer=127.0.0.5:") > 0);
	node_stop(n);
	node_free(n);
	/* Nobody listens on port 1: every handshake fails, status 1. */
	assert_int_equal(run_bench("--storm 3 --concurrency 2 --json "
	    "127.0.0.1:1", out, sizeof(out)), 1);
	j = parse(out);
	assert_int_equal(jint(j, "ok"), 0);
	assert_int_equal(jint(j, "failed"), 3);
	json_decref(j);
}

static void
region_start(struct node *nodes[2])
{
	char	cmd[2048], path[400], peers[512], extra[2048];
	FILE	*f;
	int	i;

	for (i = 0; i < 2; i++) {
		nodes[i] = node_new();
		nodes[i]->port = free_tcp_port();
		nodes[i]->http_port = free_tcp_port();
		nodes[i]->fixed = true;
	}
	snprintf(peers, sizeof(peers), "\"localhost:%u/127.0.0.1:%u\", "
	    "\"localhost:%u/127.0.0.1:%u\"", nodes[0]->port, nodes[0]->port,
	    nodes[1]->port, nodes[1]->port);
	/* One certificate for both nodes, which also serves as the CA. */
	snprintf(cmd, sizeof(cmd), "openssl req -x509 -newkey ec -pkeyopt "
	    "ec_paramgen_curve:prime256v1 -nodes -keyout %s/key.pem -out "
	    "%s/cert.pem -days 2 -subj /CN=localhost -addext "
	    "subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null && "
	    "cp %s/cert.pem %s/key.pem %s/", nodes[0]->dir, nodes[0]->dir,
	    nodes[0]->dir, nodes[0]->dir, nodes[1]->dir);
	assert_int_equal(system(cmd), 0);
	for (i = 0; i < 2; i++) {
		snprintf(nodes[i]->cert, sizeof(nodes[i]->cert), "%s/cert.pem",
		    nodes[i]->dir);
		snprintf(path, sizeof(path), "%s/mesh.psk", nodes[i]->dir);
		assert_non_null(f = fopen(path, "w"));
		fputs(PSK, f);
		fclose(f);
		snprintf(extra, sizeof(extra), "mesh = { psk_file = \"%s\"; "
		    "peers = ( %s ); ca_file = \"%s\"; };\n", path, peers,
		    nodes[i]->cert);
		node_start_in(nodes[i], true, extra);
	}
}

static void
test_derpbench_mesh_topology(void **state)
{
	struct node	*nodes[2];
	static char	 out[8192];
	char		 args[1024], tls[512];
	json_t		*j;
	long		 fwd0;
	int		 i;

	(void)state;
	region_start(nodes);
	tls_args(nodes[0], tls, sizeof(tls));
	fwd0 = node_metric(nodes[0], "derp_packets_forwarded_out");
	snprintf(args, sizeof(args), "%s --pairs 2 --seconds 1 --window 16 "
	    "--json --topology mesh --peer 127.0.0.1:%u 127.0.0.1:%u", tls,
	    nodes[1]->port, nodes[0]->port);
	assert_int_equal(run_bench(args, out, sizeof(out)), 0);
	j = parse(out);
	assert_string_equal(json_string_value(json_object_get(j,
	    "topology")), "mesh");
	assert_true(jint(j, "received") > 0);
	/* Everything that arrived crossed the mesh link from A to B. */
	assert_true(node_metric(nodes[0], "derp_packets_forwarded_out") -
	    fwd0 >= jint(j, "delivered"));
	assert_true(node_metric(nodes[1], "derp_packets_forwarded_in") >=
	    jint(j, "delivered"));
	json_decref(j);
	for (i = 0; i < 2; i++) {
		node_stop(nodes[i]);
		node_free(nodes[i]);
	}
}

/* Paced mode: the schedule is exact (every packet due inside the window
 * is sent, late or not), nothing is lost at a rate far below the
 * server's queues, and the report is self-consistent. */
static void
test_derpbench_paced_json(void **state)
{
	struct node	*n = node_start(true, "workers = 2;\n");
	static char	 out[16384];
	char		 args[1024], tls[512];
	json_t		*j, *lat, *gen, *list;
	long		 sent0;

	(void)state;
	tls_args(n, tls, sizeof(tls));
	sent0 = node_metric(n, "derp_packets_sent");
	/* 2 senders of one pair each: 200 packets/s, every 5 ms, for 1 s. */
	snprintf(args, sizeof(args), "%s --pairs 2 --size 100 --seconds 1 "
	    "--rate 400 --senders 2 --json --server-pid %d,%d,%d "
	    "127.0.0.1:%u", tls, n->pid, node_worker_pid(n, 0),
	    node_worker_pid(n, 1), n->port);
	assert_int_equal(run_bench(args, out, sizeof(out)), 0);
	j = parse(out);
	assert_string_equal(json_string_value(json_object_get(j, "mode")),
	    "latency");
	assert_int_equal(jint(j, "senders"), 2);
	assert_int_equal(jint(j, "scheduled"), 400);
	assert_int_equal(jint(j, "sent"), 400);
	assert_int_equal(jint(j, "delivered"), 400);
	assert_int_equal(jint(j, "lost"), 0);
	assert_true(jint(j, "received") <= 400);
	lat = json_object_get(j, "lat_ms");
	assert_true(jnum(lat, "p50") > 0);
	assert_true(jnum(lat, "p50") <= jnum(lat, "p90"));
	assert_true(jnum(lat, "p90") <= jnum(lat, "p99"));
	assert_true(jnum(lat, "p99") <= jnum(lat, "p999"));
	assert_true(jnum(lat, "p999") <= jnum(lat, "max"));
	assert_true(jnum(j, "p99_over_p50") >= 1);
	assert_true(jnum(j, "stall_ms") == 10);
	assert_int_equal(jint(j, "stalls"), jint(j, "stalls_server") +
	    jint(j, "stalls_generator"));
	list = json_object_get(j, "stall_list");
	assert_true(json_is_array(list));
	assert_true((long long)json_array_size(list) <= jint(j, "stalls"));
	list = json_object_get(j, "slow_list");
	assert_true(json_is_array(list));
	assert_true((long long)json_array_size(list) <= jint(j, "slow"));
	gen = json_object_get(j, "generator");
	assert_true(json_is_object(gen));
	assert_true(json_is_boolean(json_object_get(gen, "fell_behind")));
	assert_true(jnum(json_object_get(gen, "late_ms"), "max") >= 0);
	assert_true(jnum(j, "server_cpu_s") >= 0);
	assert_true(node_metric(n, "derp_packets_sent") - sent0 >= 400);
	json_decref(j);
	/* Packets too small for the two stamps: a usage error. */
	snprintf(args, sizeof(args), "%s --size 8 --rate 10 127.0.0.1:%u "
	    "2>&1", tls, n->port);
	assert_int_equal(run_bench(args, out, sizeof(out)), 2);
	assert_non_null(strstr(out, "--size >= 16"));
	node_stop(n);
	node_free(n);
}

static void
test_derpbench_usage_errors(void **state)
{
	static char	out[8192];

	(void)state;
	assert_int_equal(run_bench("--topology sideways 127.0.0.1:1 2>&1",
	    out, sizeof(out)), 2);
	assert_non_null(strstr(out, "bad --topology"));
	assert_int_equal(run_bench("--topology same 127.0.0.1:1 2>&1", out,
	    sizeof(out)), 2);
	assert_non_null(strstr(out, "--server-log"));
	assert_int_equal(run_bench("--topology mesh 127.0.0.1:1 2>&1", out,
	    sizeof(out)), 2);
	assert_int_equal(run_bench("--idle 10 --sources 127.0.0.9-127.0.0.2 "
	    "127.0.0.1:1 2>&1", out, sizeof(out)), 2);
	assert_non_null(strstr(out, "--sources"));
	assert_int_equal(run_bench("--storm 5 --idle 5 127.0.0.1:1 2>&1", out,
	    sizeof(out)), 2);
	assert_int_equal(run_bench("--size 70000 127.0.0.1:1 2>&1", out,
	    sizeof(out)), 2);
	assert_int_equal(run_bench("nonsense 2>&1", out, sizeof(out)), 2);
	assert_int_equal(run_bench("--rate 0 127.0.0.1:1 2>&1", out,
	    sizeof(out)), 2);
	assert_non_null(strstr(out, "bad --rate"));
	assert_int_equal(run_bench("--help", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "--idle N"));
	/* Nothing listens on port 1: a clear error, status 1. */
	assert_int_equal(run_bench("--seconds 1 127.0.0.1:1 2>&1", out,
	    sizeof(out)), 1);
	assert_non_null(strstr(out, "derpbench: connect:"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_derpbench_closed_loop_json),
		cmocka_unit_test(test_derpbench_idle_holds_clients),
		cmocka_unit_test(test_derpbench_storm),
		cmocka_unit_test(test_derpbench_mesh_topology),
		cmocka_unit_test(test_derpbench_paced_json),
		cmocka_unit_test(test_derpbench_usage_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

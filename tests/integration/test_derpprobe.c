/*
 * derpprobe against real derpd nodes on loopback: a healthy three-node
 * TLS mesh region with STUN (every probe ok, all 6 ordered pairs and the
 * self pairs), certificate warning, a node with the wrong mesh PSK (mesh
 * fails, connect works), the derpd-config source, netcheck with the
 * captive-portal check, the daemon's /metrics and its HTTP (pipelining,
 * refusals, limits, deadlines, out of fds), and a stopped node.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "harness.h"

#define NN	3
#define OUT_MAX	(512 * 1024)

static struct node	*nodes[NN];
static struct node	*intruder;
static char		 map_path[400], bad_path[400], insecure_path[400];
static char		*out;
static pid_t		 daemon_pid;	/* killed by teardown if a test fails */
static pid_t		 web_pid;

static void
write_file(const char *path, const char *text)
{
	FILE	*f;

	assert_non_null(f = fopen(path, "w"));
	fputs(text, f);
	fclose(f);
}

static void
node_json(char *buf, size_t cap, const char *name, int region,
    const struct node *n, const char *extra)
{
	size_t	l = strlen(buf);

	snprintf(buf + l, cap - l, "%s{\"Name\":\"%s\",\"RegionID\":%d,"
	    "\"HostName\":\"localhost\",\"IPv4\":\"127.0.0.1\",\"IPv6\":"
	    "\"none\",\"STUNPort\":%d,\"DERPPort\":%u%s}", l &&
	    buf[l - 1] != '[' ? "," : "", name, region, n->stun_port ?
	    (int)n->stun_port : -1, n->port, extra);
}

static void
write_maps(void)
{
	char	buf[8192], ins[8192];
	int	i;

	snprintf(buf, sizeof(buf), "{\"Regions\":{\"900\":{\"RegionID\":900,"
	    "\"RegionCode\":\"r900\",\"RegionName\":\"test\",\"Nodes\":[");
	snprintf(ins, sizeof(ins), "%s", buf);
	for (i = 0; i < NN; i++) {
		char	name[8];

		snprintf(name, sizeof(name), "900%c", 'a' + i);
		node_json(buf, sizeof(buf), name, 900, nodes[i], i == 0 ?
		    ",\"CanPort80\":true" : "");
		node_json(ins, sizeof(ins), name, 900, nodes[i],
		    ",\"InsecureForTests\":true");
	}
	/* Region 901: node 0 again and a node with another mesh key. */
	strcat(buf, "]},\"901\":{\"RegionCode\":\"r901\",\"Nodes\":[");
	node_json(buf, sizeof(buf), "901a", 901, nodes[0], "");
	node_json(buf, sizeof(buf), "901b", 901, intruder,
	    ",\"InsecureForTests\":true");
	strcat(buf, "]}},\"omitDefaultRegions\":true}\n");
	strcat(ins, "]}}}\n");
	snprintf(map_path, sizeof(map_path), "%s/derpmap.json", nodes[0]->dir);
	snprintf(insecure_path, sizeof(insecure_path), "%s/insecure.json",
	    nodes[0]->dir);
	snprintf(bad_path, sizeof(bad_path), "%s/bad.json", nodes[0]->dir);
	write_file(map_path, buf);
	write_file(insecure_path, ins);
	write_file(bad_path, "{\"Regions\":{\"900\":{\"Nodes\":[{\"Name\":"
	    "\"x\",\"HostName\":\"h\",\"DERPPort\":70000}]}}}");
}

static int
setup(void **state)
{
	char	path[400], one[2048];
	int	i, j;

	(void)state;
	assert_non_null(out = malloc(OUT_MAX));
	region_prepare(nodes, NN, REGION_PSK, 2);
	for (i = 0; i < NN; i++) {
		nodes[i]->stun_port = free_tcp_port();	/* free for UDP too */
		node_start_in(nodes[i], true, nodes[i]->extra);
	}
	/* The intruder: meshes with node 0, but with another key. */
	intruder = node_new();
	snprintf(path, sizeof(path), "%s/mesh.psk", intruder->dir);
	write_file(path, "1111111111111111111111111111111111111111111111111111"
	    "111111111111\n");
	snprintf(one, sizeof(one), "mesh = { psk_file = \"%s\"; peers = ( "
	    "\"localhost:%u/127.0.0.1:%u\" ); ca_file = \"%s\"; };\n", path,
	    nodes[0]->port, nodes[0]->port, nodes[0]->cert);
	node_start_in(intruder, true, one);
	/* Wait until the mesh carries packets everywhere. */
	for (i = 0; i < NN; i++)
		for (j = 0; j < NN; j++) {
			struct client	*a, *b;

			if (i == j)
				continue;
			a = node_client(nodes[i]);
			b = node_client(nodes[j]);
			reach(a, b);
			client_free(a);
			client_free(b);
		}
	write_maps();
	return 0;
}

static int
teardown(void **state)
{
	int	i;

	(void)state;
	if (daemon_pid > 0) {
		kill(daemon_pid, SIGKILL);
		waitpid(daemon_pid, NULL, 0);
	}
	if (web_pid > 0) {
		kill(web_pid, SIGKILL);
		waitpid(web_pid, NULL, 0);
	}
	for (i = 0; i < NN; i++) {
		node_stop(nodes[i]);
		node_free(nodes[i]);
	}
	node_stop(intruder);
	node_free(intruder);
	free(out);
	return 0;
}

/* Run derpprobe with args (NULL-terminated); stdout into out.  Returns
 * the exit status; fails the test after 90 s. */
static int
probe(const char *first, ...)
{
	const char	*argv[40], *bin = getenv("DERPPROBE_BIN");
	struct pollfd	 pf;
	va_list		 ap;
	uint64_t	 deadline = now_ms() + 90000;
	size_t		 len = 0;
	ssize_t		 n;
	pid_t		 pid;
	int		 p[2], argc = 0, st;

	argv[argc++] = "derpprobe";
	/* Verdicts here are about function: a loaded machine's latency must
	 * not add warnings (a test may still pass --warn-latency itself). */
	if (strcmp(first, "--help") != 0) {
		argv[argc++] = "--warn-latency";
		argv[argc++] = "0";
	}
	va_start(ap, first);
	for (argv[argc] = first; argv[argc] != NULL && argc < 38;)
		argv[++argc] = va_arg(ap, const char *);
	va_end(ap);
	assert_int_equal(pipe(p), 0);
	if ((pid = fork()) == 0) {
		char	*av[40];
		int	 i;

		for (i = 0; i <= argc; i++)
			av[i] = argv[i] ? strdup(argv[i]) : NULL;
		dup2(p[1], 1);
		close(p[0]);
		execv(bin ? bin : "build/derpprobe", av);
		_exit(127);
	}
	close(p[1]);
	pf.fd = p[0];
	pf.events = POLLIN;
	while (now_ms() < deadline) {
		if (poll(&pf, 1, 1000) <= 0)
			continue;
		n = read(p[0], out + len, OUT_MAX - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	out[len] = '\0';
	close(p[0]);
	if (now_ms() >= deadline) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		fail_msg("derpprobe did not finish within 90 s");
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static json_t *
report(void)
{
	json_error_t	 e;
	json_t		*j = json_loads(out, 0, &e);

	if (j == NULL)
		fail_msg("not JSON (%s): %.300s", e.text, out);
	return j;
}

static json_t *
find(json_t *rep, const char *name)
{
	json_t	*p;
	size_t	 i;

	json_array_foreach(json_object_get(rep, "probes"), i, p)
		if (strcmp(json_string_value(json_object_get(p, "name")),
		    name) == 0)
			return p;
	fail_msg("probe %s not in the report", name);
	return NULL;
}

static const char *
result(json_t *rep, const char *name)
{
	return json_string_value(json_object_get(find(rep, name), "result"));
}

static int
count_class(json_t *rep, const char *cls, const char *res)
{
	json_t	*p;
	size_t	 i;
	int	 c = 0;

	json_array_foreach(json_object_get(rep, "probes"), i, p)
		if (strcmp(json_string_value(json_object_get(p, "class")),
		    cls) == 0 && (res == NULL || strcmp(json_string_value(
		    json_object_get(p, "result")), res) == 0))
			c++;
	return c;
}

static void
test_derpprobe_healthy_region_all_ok(void **state)
{
	json_t	*r;
	char	 name[64];
	int	 i, j;

	(void)state;
	assert_int_equal(probe("--derp-map", map_path, "--region", "r900",
	    "--ca", nodes[0]->cert, "--cert-warn-days", "1", "--json", NULL),
	    0);
	r = report();
	assert_string_equal(json_string_value(json_object_get(r, "status")),
	    "ok");
	for (i = 0; i < NN; i++) {
		snprintf(name, sizeof(name), "derp/r900/900%c/tls", 'a' + i);
		assert_string_equal(result(r, name), "ok");
		assert_true(json_real_value(json_object_get(find(r, name),
		    "cert_days_left")) > 1.0);
		assert_true(json_real_value(json_object_get(find(r, name),
		    "cert_days_left")) <= 2.0);
		snprintf(name, sizeof(name), "derp/r900/900%c/udp", 'a' + i);
		assert_string_equal(result(r, name), "ok");
		snprintf(name, sizeof(name), "derp/r900/900%c/connect",
		    'a' + i);
		assert_string_equal(result(r, name), "ok");
		for (j = 0; j < NN; j++) {
			snprintf(name, sizeof(name), "derp/r900/900%c/900%c/"
			    "mesh", 'a' + i, 'a' + j);
			assert_string_equal(result(r, name), "ok");
			assert_non_null(json_object_get(find(r, name),
			    "latency_ms"));
		}
	}
	/* IPv6 is "none": no udp6 probe; 6 pairs + 3 self pairs. */
	assert_int_equal(count_class(r, "derp_udp", NULL), NN);
	assert_int_equal(count_class(r, "derp_mesh", "ok"), NN * NN);
	assert_int_equal(count_class(r, "derp_mesh", NULL), NN * NN);
	assert_int_equal(json_array_size(json_object_get(r, "failed")), 0);
	json_decref(r);
	/* The table mode agrees. */
	assert_int_equal(probe("--derp-map", map_path, "--region", "900",
	    "--ca", nodes[0]->cert, "--cert-warn-days", "1", NULL), 0);
	assert_non_null(strstr(out, "derp/r900/900b/900c/mesh"));
	assert_non_null(strstr(out, "\nok: "));
}

static void
test_derpprobe_certificate_expiry_warns(void **state)
{
	json_t	*r;

	(void)state;
	/* The harness certificates are valid for 2 days: under 14. */
	assert_int_equal(probe("--derp-map", insecure_path, "--json", NULL),
	    1);
	r = report();
	assert_string_equal(json_string_value(json_object_get(r, "status")),
	    "warning");
	assert_string_equal(result(r, "derp/r900/900a/tls"), "warning");
	assert_non_null(strstr(json_string_value(json_object_get(find(r,
	    "derp/r900/900a/tls"), "detail")), "expires in"));
	assert_string_equal(result(r, "derp/r900/900c/900a/mesh"), "ok");
	json_decref(r);
	/* Verified against the wrong trust store: critical. */
	assert_int_equal(probe("--derp-map", map_path, "--region", "r900",
	    "--node", "900b", "--ca", "/dev/null", "--json", NULL), 2);
	r = report();
	assert_string_equal(result(r, "derp/r900/900b/tls"), "critical");
	assert_int_equal(count_class(r, "tls", NULL), 1);
	json_decref(r);
}

static void
test_derpprobe_wrong_psk_fails_mesh_not_connect(void **state)
{
	json_t	*r, *failed;
	size_t	 i;
	bool	 ab = false, ba = false;
	json_t	*v;

	(void)state;
	assert_int_equal(probe("--derp-map", map_path, "--region", "r901",
	    "--ca", nodes[0]->cert, "--cert-warn-days", "0", "--timeout",
	    "2000", "--json", NULL), 2);
	r = report();
	assert_string_equal(json_string_value(json_object_get(r, "status")),
	    "critical");
	assert_string_equal(result(r, "derp/r901/901b/connect"), "ok");
	assert_string_equal(result(r, "derp/r901/901a/connect"), "ok");
	assert_string_equal(result(r, "derp/r901/901b/901b/mesh"), "ok");
	assert_string_equal(result(r, "derp/r901/901a/901b/mesh"),
	    "critical");
	assert_string_equal(result(r, "derp/r901/901b/901a/mesh"),
	    "critical");
	failed = json_object_get(r, "failed");
	assert_int_equal(json_array_size(failed), 2);
	json_array_foreach(failed, i, v) {
		ab |= strcmp(json_string_value(v), "derp/r901/901a/901b/mesh")
		    == 0;
		ba |= strcmp(json_string_value(v), "derp/r901/901b/901a/mesh")
		    == 0;
	}
	assert_true(ab && ba);
	json_decref(r);
}

static void
test_derpprobe_config_source(void **state)
{
	json_t	*r;
	char	 name[64];

	(void)state;
	/* Node 0's own config: itself plus its two peers, its CA and PSK. */
	assert_int_equal(probe("--config", nodes[0]->conf, "--cert-warn-days",
	    "1", "--bandwidth", "200000", "--json", NULL), 0);
	r = report();
	assert_int_equal(count_class(r, "derp_connect", "ok"), NN);
	assert_int_equal(count_class(r, "derp_mesh", "ok"), NN * NN);
	assert_int_equal(count_class(r, "derp_bw", "ok"), NN * NN);
	/* Its own STUN listener (peers are assumed to use the same port,
	 * which these test nodes do not). */
	snprintf(name, sizeof(name), "derp/derpd/localhost:%u/udp",
	    nodes[0]->port);
	assert_string_equal(result(r, name), "ok");
	snprintf(name, sizeof(name), "derp/derpd/localhost:%u/localhost:%u/"
	    "mesh", nodes[1]->port, nodes[2]->port);
	assert_string_equal(result(r, name), "ok");
	json_decref(r);
	/* netcheck from the config: its plain listener is the port-80 role
	 * that answers the captive-portal challenge. */
	assert_int_equal(probe("--config", nodes[0]->conf, "--netcheck",
	    "--json", NULL), 0);
	r = report();
	assert_true(json_is_false(json_object_get(r, "captive_portal")));
	assert_int_equal(json_integer_value(json_object_get(r,
	    "preferred_region")), 900);
	json_decref(r);
}

static void
test_derpprobe_netcheck(void **state)
{
	json_t	*r, *v;
	char	 port[8];

	(void)state;
	snprintf(port, sizeof(port), "%u", nodes[0]->http_port);
	assert_int_equal(probe("--derp-map", map_path, "--region", "r900",
	    "--ca", nodes[0]->cert, "--netcheck", "--captive-port", port,
	    "--json", NULL), 0);
	r = report();
	assert_true(json_is_true(json_object_get(r, "udp")));
	assert_true(json_is_true(json_object_get(r, "ipv4")));
	assert_false(json_is_true(json_object_get(r, "ipv6")));
	assert_int_equal(strncmp(json_string_value(json_object_get(r,
	    "global_v4")), "127.0.0.1:", 10), 0);
	/* Three servers, one socket, no NAT: the mapping does not vary. */
	assert_true(json_is_false(json_object_get(r,
	    "mapping_varies_by_dest_ip")));
	assert_true(json_is_false(json_object_get(r, "captive_portal")));
	assert_int_equal(json_integer_value(json_object_get(r,
	    "preferred_region")), 900);
	v = json_array_get(json_object_get(r, "regions"), 0);
	assert_true(json_real_value(json_object_get(v, "stun_v4_ms")) > 0);
	assert_true(json_real_value(json_object_get(v, "https_ms")) > 0);
	json_decref(r);
	/* Nothing on the port-80 role: the check cannot tell. */
	snprintf(port, sizeof(port), "%u", free_tcp_port());
	assert_int_equal(probe("--derp-map", map_path, "--region", "r900",
	    "--ca", nodes[0]->cert, "--netcheck", "--captive-port", port,
	    NULL), 0);
	assert_non_null(strstr(out, "* UDP: true"));
	assert_non_null(strstr(out, "* CaptivePortal: unknown"));
	assert_non_null(strstr(out, "Nearest DERP: region 900"));
}

/* The map over HTTPS (python3's http.server with the region's cert), so
 * the libcurl fetch is exercised with --ca; and a 404 is a map error. */
static void
test_derpprobe_map_over_https(void **state)
{
	static const char	 py[] = "import http.server, ssl, sys, os\n"
	    "os.chdir(sys.argv[1])\n"
	    "s = http.server.HTTPServer(('127.0.0.1', int(sys.argv[2])), "
	    "http.server.SimpleHTTPRequestHandler)\n"
	    "c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
	    "c.load_cert_chain(sys.argv[3], sys.argv[4])\n"
	    "s.socket = c.wrap_socket(s.socket, server_side=True)\n"
	    "s.serve_forever()\n";
	char		 url[128], key[400], ps[8];
	uint16_t	 port = free_tcp_port();
	uint64_t	 deadline = now_ms() + 10000;
	int		 fd = -1, devnull;
	json_t		*r;

	(void)state;
	snprintf(key, sizeof(key), "%s/key.pem", nodes[0]->dir);
	snprintf(ps, sizeof(ps), "%u", port);
	if ((web_pid = fork()) == 0) {
		devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, 2);
		execlp("python3", "python3", "-c", py, nodes[0]->dir, ps,
		    nodes[0]->cert, key, (char *)NULL);
		_exit(127);
	}
	while (now_ms() < deadline && (fd = raw_connect(port)) < 0)
		poll(NULL, 0, 20);	/* readiness poll, not a sync sleep */
	assert_true(fd >= 0);
	close(fd);
	snprintf(url, sizeof(url), "https://localhost:%u/derpmap.json", port);
	assert_int_equal(probe("--derp-map", url, "--region", "r900", "--ca",
	    nodes[0]->cert, "--cert-warn-days", "1", "--json", NULL), 0);
	r = report();
	assert_int_equal(count_class(r, "derp_mesh", "ok"), NN * NN);
	json_decref(r);
	snprintf(url, sizeof(url), "https://localhost:%u/missing.json", port);
	assert_int_equal(probe("--derp-map", url, "--ca", nodes[0]->cert,
	    NULL), 3);
	/* Without the CA the fetch itself fails verification. */
	snprintf(url, sizeof(url), "https://localhost:%u/derpmap.json", port);
	assert_int_equal(probe("--derp-map", url, NULL), 3);
	kill(web_pid, SIGTERM);
	waitpid(web_pid, NULL, 0);
	web_pid = 0;
}

static void
test_derpprobe_bad_map_is_usage_error(void **state)
{
	(void)state;
	assert_int_equal(probe("--derp-map", bad_path, NULL), 3);
	assert_int_equal(probe("--derp-map", "/nonexistent/map.json", NULL),
	    3);
	assert_int_equal(probe("--derp-map", map_path, "--region", "999",
	    NULL), 3);
	assert_int_equal(probe("--help", NULL), 0);
	assert_non_null(strstr(out, "--derp-map"));
}

/* A socket bound on loopback (listening if TCP) that never answers. */
static int
silent_socket(int type, uint16_t *port)
{
	struct sockaddr_in	sa = { .sin_family = AF_INET };
	socklen_t		sl = sizeof(sa);
	int			fd = socket(AF_INET, type, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (type == SOCK_STREAM)
		assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

static void
test_derpprobe_silent_node_times_out(void **state)
{
	char		 path[400], map[1024];
	uint16_t	 tport, uport;
	int		 tfd = silent_socket(SOCK_STREAM, &tport);
	int		 ufd = silent_socket(SOCK_DGRAM, &uport);
	uint64_t	 t0;
	json_t		*r;

	(void)state;
	/* TCP connects (the backlog accepts) but nothing ever answers. */
	snprintf(map, sizeof(map), "{\"Regions\":{\"902\":{\"RegionCode\":"
	    "\"r902\",\"Nodes\":[{\"Name\":\"902a\",\"HostName\":"
	    "\"localhost\",\"IPv4\":\"127.0.0.1\",\"STUNPort\":%u,"
	    "\"DERPPort\":%u}]}}}", uport, tport);
	snprintf(path, sizeof(path), "%s/silent.json", nodes[0]->dir);
	write_file(path, map);
	t0 = now_ms();
	assert_int_equal(probe("--derp-map", path, "--timeout", "700",
	    "--json", NULL), 2);
	/* udp, tls, connect: each bounded by the timeout, so the run ends;
	 * the bound is generous (a loaded CI machine), not a benchmark. */
	assert_true(now_ms() - t0 < 30000);
	r = report();
	assert_string_equal(result(r, "derp/r902/902a/udp"), "critical");
	assert_non_null(strstr(json_string_value(json_object_get(find(r,
	    "derp/r902/902a/udp"), "detail")), "no response"));
	assert_string_equal(result(r, "derp/r902/902a/tls"), "critical");
	assert_non_null(strstr(json_string_value(json_object_get(find(r,
	    "derp/r902/902a/tls"), "detail")), "timed out"));
	assert_string_equal(result(r, "derp/r902/902a/connect"), "critical");
	assert_string_equal(result(r, "derp/r902/902a/902a/mesh"),
	    "critical");
	json_decref(r);
	close(tfd);
	close(ufd);
}

static long
metric(const char *text, const char *needle)
{
	const char	*p = strstr(text, needle);

	return p == NULL ? -1 : strtol(p + strlen(needle), NULL, 10);
}

/* derpprobe --daemon on 127.0.0.1:port probing region r900 every
 * interval, its output in log.  Killed by teardown if the test fails. */
static pid_t
daemon_start_every(uint16_t port, const char *log, const char *interval)
{
	const char	*bin = getenv("DERPPROBE_BIN");
	char		 listen[32];
	pid_t		 pid;

	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	if ((pid = fork()) == 0) {
		int	fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(fd, 1);
		dup2(fd, 2);
		execl(bin ? bin : "build/derpprobe", "derpprobe", "--derp-map",
		    map_path, "--region", "r900", "--ca", nodes[0]->cert,
		    "--cert-warn-days", "1", "--daemon", "--listen", listen,
		    "--interval", interval, (char *)NULL);
		_exit(127);
	}
	assert_true(pid > 0);
	daemon_pid = pid;
	return pid;
}

static pid_t
daemon_start(uint16_t port, const char *log)
{
	return daemon_start_every(port, log, "1");
}

/* SIGTERM: a clean exit, no error or sanitizer line in the log. */
static void
daemon_stop(pid_t pid, const char *log)
{
	char	line[4096];
	FILE	*f;
	int	st;

	kill(pid, SIGTERM);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	daemon_pid = 0;
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_non_null(f = fopen(log, "r"));
	while (fgets(line, sizeof(line), f) != NULL) {
		assert_null(strstr(line, "Sanitizer"));
		assert_null(strstr(line, "runtime error"));
		assert_null(strstr(line, " err "));
	}
	fclose(f);
}

/* A request with a 9000-byte header field, in buf. */
static const char *
big_header(char *buf)
{
	size_t	n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\nX-Big: ");

	memset(buf + n, 'x', 9000);
	strcpy(buf + n + 9000, "\r\n\r\n");
	return buf;
}

/* Send req on a new connection, read until the daemon closes it; the
 * answers in buf.  Returns the first answer's status. */
static int
exchange_n(uint16_t port, const char *req, size_t len, char *buf,
    size_t cap)
{
	int	fd = raw_connect(port);
	ssize_t	n;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, req, len), (ssize_t)len);
	n = raw_read_until_eof(fd, (uint8_t *)buf, cap - 1, 15000);
	close(fd);
	if (n < 0)
		fail_msg("no EOF after %.60s", req);
	buf[n] = '\0';
	if (n < 12 || strncmp(buf, "HTTP/1.1 ", 9) != 0)
		fail_msg("no answer to %.60s: %.100s", req, buf);
	return atoi(buf + 9);
}

static int
exchange(uint16_t port, const char *req, char *buf, size_t cap)
{
	return exchange_n(port, req, strlen(req), buf, cap);
}

static void
test_derpprobe_daemon_metrics(void **state)
{
	struct client_opts	 o;
	static char		 buf[256 * 1024];
	char			 log[400];
	uint16_t		 port = free_tcp_port();
	uint64_t		 deadline;
	pid_t			 pid;
	FILE			*f;
	int			 st = -1;

	(void)state;
	snprintf(log, sizeof(log), "%s/derpprobe.log", nodes[0]->dir);
	pid = daemon_start(port, log);
	memset(&o, 0, sizeof(o));
	o.host = "127.0.0.1";
	o.port = port;
	o.timeout_ms = 2000;
	deadline = now_ms() + 30000;
	while (now_ms() < deadline) {
		st = client_http_get(&o, "GET", "/metrics", NULL, buf,
		    sizeof(buf));
		if (st == 200 && strstr(buf, "derpprobe_result{name=\"derp/"
		    "r900/900a/900b/mesh\""))
			break;
		poll(NULL, 0, 50);	/* poll interval, not a sync sleep */
	}
	assert_int_equal(st, 200);
	assert_non_null(strstr(buf, "Content-Type: text/plain; version=0.0.4"));
	assert_int_equal(metric(buf, "derpprobe_result{name=\"derp/r900/900a/"
	    "900b/mesh\",class=\"derp_mesh\",region=\"r900\",region_id=\"900\","
	    "hostname=\"localhost\",node=\"900a\",to=\"900b\",derp_path=\"mesh"
	    "\"} "), 1);
	assert_int_equal(metric(buf, "derpprobe_verdict{name=\"derp/r900/900c/"
	    "udp\",class=\"derp_udp\",region=\"r900\",region_id=\"900\","
	    "hostname=\"localhost\",node=\"900c\",address_family=\"ipv4\"} "),
	    0);
	assert_true(metric(buf, "derpprobe_cert_expiry_seconds{name=\"derp/"
	    "r900/900b/tls\",class=\"tls\",region=\"r900\",region_id=\"900\","
	    "hostname=\"localhost\",node=\"900b\"} ") > 86400);
	assert_non_null(strstr(buf, "derpprobe_latency_millis{name=\"derp/"
	    "r900/900c/900a/mesh\""));
	assert_true(metric(buf, "\nderpprobe_rounds_total ") >= 1);
	/* The exposition parses, if promtool is installed. */
	if (system("command -v promtool >/dev/null 2>&1") == 0) {
		char	path[400], cmd[900];

		snprintf(path, sizeof(path), "%s/metrics.txt", nodes[0]->dir);
		assert_non_null(f = fopen(path, "w"));
		fputs(strstr(buf, "\r\n\r\n") + 4, f);
		fclose(f);
		snprintf(cmd, sizeof(cmd), "promtool check metrics < %s >&2",
		    path);
		assert_int_equal(system(cmd), 0);
	}
	assert_int_equal(client_http_get(&o, "GET", "/", NULL, buf,
	    sizeof(buf)), 200);
	assert_non_null(strstr(buf, "<table>"));
	assert_non_null(strstr(buf, "derp/r900/900b/900a/mesh"));
	assert_int_equal(client_http_get(&o, "GET", "/healthz", NULL, buf,
	    sizeof(buf)), 200);
	assert_non_null(strstr(buf, "\r\n\r\nok\n"));
	assert_int_equal(client_http_get(&o, "POST", "/metrics", NULL, buf,
	    sizeof(buf)), 405);
	assert_int_equal(client_http_get(&o, "GET", "/nope", NULL, buf,
	    sizeof(buf)), 404);
	/* An idle connection does not block others; an oversized header
	 * section is refused with 431 and closed. */
	{
		int	idle = raw_connect(port);

		assert_true(idle >= 0);
		assert_int_equal(client_http_get(&o, "GET", "/healthz", NULL,
		    buf, sizeof(buf)), 200);
		close(idle);
	}
	assert_int_equal(exchange(port, big_header(buf), buf, sizeof(buf)),
	    431);
	daemon_stop(pid, log);
}

/* The position of needle in hay at or after from, or fail. */
static const char *
after(const char *hay, const char *from, const char *needle)
{
	const char	*p = strstr(from, needle);

	if (p == NULL)
		fail_msg("no %s in %.300s", needle, hay);
	return p + strlen(needle);
}

/* The daemon's HTTP as a client sees it: pipelined keep-alive requests,
 * a request sent a byte at a time, each refusal with its status and a
 * close, a full house answered 503, and slots held by silent or slow
 * clients freed by the request deadline. */
static void
test_derpprobe_daemon_http(void **state)
{
	static const char	 pipelined[] =
	    "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
	    "HEAD /metrics HTTP/1.1\r\nHost: a\r\n\r\n"
	    "GET /nope HTTP/1.1\r\nHost: a\r\n\r\n"
	    "GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
	static const char	 bytewise[] =
	    "GET /healthz?x=1 HTTP/1.1\r\nConnection: close\r\n\r\n";
	static char		 buf[256 * 1024];
	struct client_opts	 o;
	const char		*p;
	char			 log[400], req[2048];
	uint16_t		 port = free_tcp_port();
	uint64_t		 deadline;
	pid_t			 pid;
	size_t			 i;
	int			 fd, conns[16], st = -1, one = 1;
	ssize_t			 n;

	(void)state;
	snprintf(log, sizeof(log), "%s/derpprobe-http.log", nodes[0]->dir);
	pid = daemon_start(port, log);
	memset(&o, 0, sizeof(o));
	o.host = "127.0.0.1";
	o.port = port;
	o.timeout_ms = 2000;
	deadline = now_ms() + 30000;
	while (now_ms() < deadline && (st = client_http_get(&o, "GET",
	    "/healthz", NULL, buf, sizeof(buf))) != 200)
		poll(NULL, 0, 50);	/* poll interval, not a sync sleep */
	assert_int_equal(st, 200);

	/* Four requests in one write: four answers in order, then EOF. */
	assert_int_equal(exchange(port, pipelined, buf, sizeof(buf)), 200);
	p = after(buf, buf, "Connection: keep-alive\r\n\r\nok\n");
	/* HEAD: a length, and no body before the next answer. */
	assert_int_equal(strncmp(p, "HTTP/1.1 200 OK\r\n", 17), 0);
	p = after(buf, p, "Content-Type: text/plain; version=0.0.4\r\n");
	assert_true(strtol(after(buf, p, "Content-Length: "), NULL, 10) >
	    100);
	p = after(buf, p, "Connection: keep-alive\r\n\r\n");
	assert_int_equal(strncmp(p, "HTTP/1.1 404 Not Found\r\n", 24), 0);
	p = after(buf, p, "Connection: keep-alive\r\n\r\nNot Found\n");
	assert_int_equal(strncmp(p, "HTTP/1.1 200 OK\r\n", 17), 0);
	p = after(buf, p, "Connection: close\r\n\r\nok\n");
	assert_int_equal(*p, '\0');

	/* One byte per segment. */
	assert_true((fd = raw_connect(port)) >= 0);
	assert_int_equal(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
	    sizeof(one)), 0);
	for (i = 0; i < sizeof(bytewise) - 1; i++)
		assert_int_equal(write(fd, bytewise + i, 1), 1);
	n = raw_read_until_eof(fd, (uint8_t *)buf, sizeof(buf) - 1, 15000);
	close(fd);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_int_equal(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17), 0);
	after(buf, buf, "\r\n\r\nok\n");

	/* Refusals: the status, Connection: close, and a close. */
	assert_int_equal(exchange_n(port, "\x16\x03\x01\x02\x00\x01\x00\x01"
	    "\xfc\x03\x03", 11, buf, sizeof(buf)), 400);
	after(buf, buf, "Connection: close\r\n\r\nBad Request\n");
	assert_int_equal(exchange(port, "GET /\r\n\r\n", buf, sizeof(buf)),
	    400);
	assert_int_equal(exchange(port, "DELETE /metrics HTTP/1.1\r\n\r\n",
	    buf, sizeof(buf)), 405);
	after(buf, buf, "\r\nAllow: GET, HEAD\r\n");
	assert_int_equal(exchange(port, "GET /metrics HTTP/1.1\r\n"
	    "Content-Length: 10\r\n\r\n0123456789", buf, sizeof(buf)), 413);
	assert_int_equal(exchange(port, "GET / HTTP/1.1\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", buf, sizeof(buf)),
	    413);
	i = (size_t)snprintf(req, sizeof(req), "GET /");
	memset(req + i, 'a', 1100);
	strcpy(req + i + 1100, " HTTP/1.1\r\n\r\n");
	assert_int_equal(exchange(port, req, buf, sizeof(buf)), 414);
	assert_int_equal(exchange(port, big_header(buf), buf, sizeof(buf)),
	    431);
	after(buf, buf, "Connection: close\r\n");

	/* Sixteen connections fill the daemon: silent ones and one that
	 * stops mid-request.  The next is answered 503 at once. */
	for (i = 0; i < 16; i++) {
		assert_true((conns[i] = raw_connect(port)) >= 0);
		if (i == 0)
			assert_int_equal(write(conns[i], "GET /metr", 9), 9);
	}
	deadline = now_ms() + 5000;
	do {
		/* The daemon accepts in turn: retry until it is full. */
		assert_true((fd = raw_connect(port)) >= 0);
		n = raw_read_until_eof(fd, (uint8_t *)buf, sizeof(buf) - 1,
		    15000);
		close(fd);
		assert_true(n >= 0);
		buf[n] = '\0';
	} while (strncmp(buf, "HTTP/1.1 503 ", 13) != 0 &&
	    now_ms() < deadline);
	assert_int_equal(strncmp(buf, "HTTP/1.1 503 Service Unavailable\r\n",
	    34), 0);
	/* The request deadline (5 s) closes every one of them, the slow
	 * one unanswered (a connection of the exchanges above still
	 * draining may have left one of the others a 503). */
	for (i = 0; i < 16; i++) {
		n = raw_read_until_eof(conns[i], (uint8_t *)buf,
		    sizeof(buf) - 1, 15000);
		if (i == 0)
			assert_int_equal(n, 0);
		assert_true(n >= 0);
		close(conns[i]);
	}
	assert_int_equal(client_http_get(&o, "GET", "/healthz", NULL, buf,
	    sizeof(buf)), 200);
	daemon_stop(pid, log);
}

/* Lines of the file at path containing needle. */
static int
log_count(const char *path, const char *needle)
{
	char	 line[4096];
	FILE	*f = fopen(path, "r");
	int	 c = 0;

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		c += strstr(line, needle) != NULL;
	if (f != NULL)
		fclose(f);
	return c;
}

/* How many of a process's fds are numbered below lim (RLIMIT_NOFILE
 * bounds the numbers, not the count: inherited high fds do not count). */
static long
fds_below(pid_t pid, long lim)
{
	char		 path[64];
	DIR		*d;
	struct dirent	*e;
	long		 c = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	assert_non_null(d = opendir(path));
	while ((e = readdir(d)) != NULL)
		c += e->d_name[0] != '.' && atol(e->d_name) < lim;
	closedir(d);
	return c;
}

/* The lowest fd number a process has free. */
static long
lowest_free_fd(pid_t pid)
{
	long	n;

	for (n = 0; fds_below(pid, n + 1) == n + 1; n++)
		;
	return n;
}

/* CPU time (utime + stime, clock ticks) of a process, all threads. */
static long
proc_cpu_ticks(pid_t pid)
{
	char		 path[64], buf[1024];
	const char	*p;
	long		 ut, st;
	FILE		*f;
	size_t		 n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	assert_non_null(f = fopen(path, "r"));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* After the command's ")": state, then fields 4-13, then utime
	 * and stime (proc(5)). */
	assert_non_null(p = strrchr(buf, ')'));
	assert_int_equal(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u "
	    "%*u %*u %ld %ld", &ut, &st), 2);
	return ut + st;
}

/*
 * Out of fds, the daemon stops polling its listener for a while instead
 * of finding it readable again at once: with RLIMIT_NOFILE four above
 * what it holds (set once its first round is done, so the round has
 * what it needs), twelve connections leave eight in the backlog that
 * accept4 cannot take (EMFILE).  Over a second of that it uses next to
 * no CPU (it spun at 100 % before), says so once (not per retry), and
 * serves again once the connections go.
 */
#define NOFILE_HEADROOM	4
#define NOFILE_CONNS	12
#define SPIN_WINDOW_MS	1000

static void
test_derpprobe_daemon_out_of_fds_no_spin(void **state)
{
	static char		 buf[16384];
	struct client_opts	 o;
	struct rlimit		 rl;
	char			 log[400];
	uint16_t		 port = free_tcp_port();
	uint64_t		 deadline, t0, t1;
	pid_t			 pid;
	long			 lim, cpu0, cpu1, hz = sysconf(_SC_CLK_TCK);
	int			 conns[NOFILE_CONNS], i, st = -1, pauses;

	(void)state;
	snprintf(log, sizeof(log), "%s/derpprobe-nofile.log", nodes[0]->dir);
	pid = daemon_start_every(port, log, "3600");
	memset(&o, 0, sizeof(o));
	o.host = "127.0.0.1";
	o.port = port;
	o.timeout_ms = 2000;
	deadline = now_ms() + 30000;
	while (now_ms() < deadline && (log_count(log,
	    "event=probe_round ") == 0 || (st = client_http_get(&o, "GET",
	    "/healthz", NULL, buf, sizeof(buf))) != 200))
		poll(NULL, 0, 50);	/* poll interval, not a sync sleep */
	assert_int_equal(st, 200);
	/* At most NOFILE_HEADROOM fd numbers left (fewer if it holds some
	 * above its lowest free one; the answer's connection may be one). */
	lim = lowest_free_fd(pid) + NOFILE_HEADROOM;
	rl.rlim_cur = rl.rlim_max = (rlim_t)lim;
	assert_int_equal(prlimit(pid, RLIMIT_NOFILE, &rl, NULL), 0);
	for (i = 0; i < NOFILE_CONNS; i++)
		assert_true((conns[i] = raw_connect(port)) >= 0);
	deadline = now_ms() + 5000;
	while (fds_below(pid, lim) < lim && now_ms() < deadline)
		poll(NULL, 0, 5);	/* poll interval, not a sync sleep */
	assert_int_equal(fds_below(pid, lim), lim);
	/* A measurement window: the assertion is on CPU time used in it. */
	cpu0 = proc_cpu_ticks(pid);
	t0 = now_ms();
	poll(NULL, 0, SPIN_WINDOW_MS);
	cpu1 = proc_cpu_ticks(pid);
	t1 = now_ms();
	print_message("out of fds: %ld ms CPU in %" PRIu64 " ms (%ld ticks)\n",
	    (cpu1 - cpu0) * 1000 / hz, t1 - t0, cpu1 - cpu0);
	assert_true((cpu1 - cpu0) * 1000 / hz <= (long)(t1 - t0) / 10);
	pauses = log_count(log, "event=accept_paused ");
	assert_int_equal(pauses, 1);	/* once, not per retry */
	for (i = 0; i < NOFILE_CONNS; i++)
		close(conns[i]);
	/* Accepting again: the fds are back. */
	deadline = now_ms() + 10000;
	while (now_ms() < deadline && (st = client_http_get(&o, "GET",
	    "/healthz", NULL, buf, sizeof(buf))) != 200)
		poll(NULL, 0, 50);	/* poll interval, not a sync sleep */
	assert_int_equal(st, 200);
	daemon_stop(pid, log);
}

static void
test_derpprobe_stopped_node_is_critical(void **state)
{
	json_t	*r, *failed, *v;
	size_t	 i;
	int	 with_c = 0;

	(void)state;
	node_stop(nodes[2]);
	assert_int_equal(probe("--derp-map", map_path, "--region", "r900",
	    "--ca", nodes[0]->cert, "--cert-warn-days", "1", "--timeout",
	    "1500", "--json", NULL), 2);
	r = report();
	assert_string_equal(json_string_value(json_object_get(r, "status")),
	    "critical");
	assert_string_equal(result(r, "derp/r900/900c/connect"), "critical");
	assert_string_equal(result(r, "derp/r900/900c/tls"), "critical");
	assert_string_equal(result(r, "derp/r900/900c/udp"), "critical");
	assert_string_equal(result(r, "derp/r900/900a/900c/mesh"),
	    "critical");
	assert_string_equal(result(r, "derp/r900/900a/900b/mesh"), "ok");
	assert_string_equal(result(r, "derp/r900/900b/connect"), "ok");
	/* Every failure names the stopped node. */
	failed = json_object_get(r, "failed");
	json_array_foreach(failed, i, v)
		with_c += strstr(json_string_value(v), "900c") != NULL;
	assert_int_equal((size_t)with_c, json_array_size(failed));
	/* tls, udp, connect, and 5 pairs involving 900c. */
	assert_int_equal(with_c, 3 + 2 * NN - 1);
	json_decref(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_derpprobe_healthy_region_all_ok),
		cmocka_unit_test(test_derpprobe_certificate_expiry_warns),
		cmocka_unit_test(test_derpprobe_wrong_psk_fails_mesh_not_connect),
		cmocka_unit_test(test_derpprobe_config_source),
		cmocka_unit_test(test_derpprobe_netcheck),
		cmocka_unit_test(test_derpprobe_map_over_https),
		cmocka_unit_test(test_derpprobe_bad_map_is_usage_error),
		cmocka_unit_test(test_derpprobe_silent_node_times_out),
		cmocka_unit_test(test_derpprobe_daemon_metrics),
		cmocka_unit_test(test_derpprobe_daemon_http),
		cmocka_unit_test(test_derpprobe_daemon_out_of_fds_no_spin),
		cmocka_unit_test(test_derpprobe_stopped_node_is_critical),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

/*
 * The HTTP surface (PROTOCOL.md 8) of the real derpd, the port-80 role,
 * a replay of a real Tailscale client's captured bytes, and `derpd -t`.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "derp/frame.h"
#include "derp/info.h"
#include "derp/key.h"
#include "harness.h"
#include "../unit/hex.h"

static char	buf[65536];

static int
get(const struct node *n, bool port80, const char *method, const char *path,
    const char *hdrs)
{
	struct client_opts	o;

	node_opts(n, &o);
	if (port80) {
		o.port = n->http_port;
		o.tls = false;
	}
	return client_http_get(&o, method, path, hdrs, buf, sizeof(buf));
}

static void
test_http_endpoints_tls(void **state)
{
	struct node	*n = node_start(true, NULL);

	(void)state;
	assert_int_equal(get(n, false, "GET", "/derp/probe", NULL), 200);
	assert_non_null(strstr(buf, "Access-Control-Allow-Origin: *\r\n"));
	assert_int_equal(get(n, false, "HEAD", "/derp/latency-check", NULL),
	    200);
	assert_int_equal(get(n, false, "POST", "/derp/probe", NULL), 405);
	assert_non_null(strstr(buf, "bogus probe method\n"));
	assert_null(strstr(buf, "Access-Control-Allow-Origin"));
	assert_int_equal(get(n, false, "GET", "/derp", NULL), 426);
	assert_non_null(strstr(buf, "DERP requires connection upgrade\n"));
	assert_int_equal(get(n, false, "GET", "/generate_204",
	    "X-Tailscale-Challenge: ts_127.0.0.1\r\n"), 204);
	assert_non_null(strstr(buf,
	    "X-Tailscale-Response: response ts_127.0.0.1\r\n"));
	assert_int_equal(get(n, false, "GET", "/generate_204",
	    "X-Tailscale-Challenge: bad challenge!\r\n"), 204);
	assert_null(strstr(buf, "X-Tailscale-Response"));
	assert_int_equal(get(n, false, "GET", "/robots.txt", NULL), 200);
	assert_non_null(strstr(buf, "\r\n\r\nUser-agent: *\nDisallow: /\n"));
	assert_non_null(strstr(buf, "X-Frame-Options: DENY\r\n"));
	assert_int_equal(get(n, false, "GET", "/", NULL), 200);
	assert_non_null(strstr(buf, "Strict-Transport-Security: max-age="
	    "63072000; includeSubDomains\r\n"));
	assert_non_null(strstr(buf, "DERP"));
	assert_int_equal(get(n, false, "GET", "/debug/varz", NULL), 200);
	assert_non_null(strstr(buf, "derp_packets_dropped{reason=\"dup_client\""
	    ",kind=\"disco\"} 0\n"));
	assert_int_equal(get(n, false, "GET", "/debug/varz",
	    "X-Forwarded-For: 1.2.3.4\r\n"), 403);
	/* Port 80: captive-portal check and redirects, never DERP. */
	assert_int_equal(get(n, true, "GET", "/generate_204",
	    "X-Tailscale-Challenge: ts_1.2.3.4\r\n"), 204);
	assert_non_null(strstr(buf, "X-Tailscale-Response: response ts_1.2.3.4"));
	assert_int_equal(get(n, true, "GET", "/derp?x=1", NULL), 302);
	assert_non_null(strstr(buf, "Location: https://localhost/derp?x=1\r\n"));
	assert_int_equal(get(n, true, "POST", "/", NULL), 400);
	assert_non_null(strstr(buf, "\r\n\r\nUse HTTPS\n"));
	node_stop(n);
	node_free(n);
}

/* PROTOCOL.md 8.8, row by row: 204, the debug redirect for "/" from
 * debug-allowed clients, /debug served by the main table with its
 * access rules, 400 for other methods, 302 to https://<Host><URI>. */
static void
test_http_port80_table(void **state)
{
	struct node	*n = node_start(true, NULL);
	const char	*xff = "X-Forwarded-For: 192.0.2.1\r\n";

	(void)state;
	assert_int_equal(get(n, true, "GET", "/generate_204", NULL), 204);
	assert_null(strstr(buf, "X-Tailscale-Response"));
	assert_int_equal(get(n, true, "POST", "/generate_204", NULL), 204);
	/* "/" from loopback (debug-allowed) goes to the debug index. */
	assert_int_equal(get(n, true, "GET", "/", NULL), 302);
	assert_non_null(strstr(buf, "Location: https://localhost/debug/\r\n"));
	assert_int_equal(get(n, true, "HEAD", "/", NULL), 302);
	assert_non_null(strstr(buf, "Location: https://localhost/debug/\r\n"));
	/* Not debug-allowed (forwarded): the plain redirect. */
	assert_int_equal(get(n, true, "GET", "/", xff), 302);
	assert_non_null(strstr(buf, "Location: https://localhost/\r\n"));
	/* Only the exact request-URI "/" is redirected to /debug/. */
	assert_int_equal(get(n, true, "GET", "/?a=b", NULL), 302);
	assert_non_null(strstr(buf, "Location: https://localhost/?a=b\r\n"));
	assert_int_equal(get(n, true, "GET", "/some/path?x=%20y", NULL), 302);
	assert_non_null(strstr(buf,
	    "Location: https://localhost/some/path?x=%20y\r\n"));
	assert_int_equal(get(n, true, "HEAD", "/derp/probe", NULL), 302);
	assert_non_null(strstr(buf, "Location: https://localhost/derp/probe"
	    "\r\n"));
	/* /debug is the main handler: served to allowed clients, 403 to
	 * others, whatever the method. */
	assert_int_equal(get(n, true, "GET", "/debug/varz", NULL), 200);
	assert_non_null(strstr(buf, "\nderp_accepts "));
	assert_int_equal(get(n, true, "GET", "/debug/", NULL), 200);
	assert_non_null(strstr(buf, "X-Frame-Options: DENY\r\n"));
	assert_int_equal(get(n, true, "GET", "/debug/varz", xff), 403);
	assert_non_null(strstr(buf, "debug access denied\n"));
	assert_int_equal(get(n, true, "POST", "/debug/", xff), 403);
	/* Other methods: 400 "Use HTTPS". */
	assert_int_equal(get(n, true, "PUT", "/x", NULL), 400);
	assert_non_null(strstr(buf, "\r\n\r\nUse HTTPS\n"));
	assert_int_equal(get(n, true, "DELETE", "/", xff), 400);
	node_stop(n);
	node_free(n);
}

static void
test_http_home_redirect_and_keepalive(void **state)
{
	struct node	*n = node_start(false,
			    "home = \"https://example.net/\";\n");
	const char	 two[] = "HEAD /derp/probe HTTP/1.1\r\nHost: x\r\n\r\n"
			    "GET / HTTP/1.1\r\nHost: x\r\nConnection: close"
			    "\r\n\r\n";
	uint8_t		 out[4096];
	ssize_t		 r;
	int		 fd;

	(void)state;
	assert_int_equal(get(n, false, "GET", "/anything", NULL), 302);
	assert_non_null(strstr(buf, "Location: https://example.net/\r\n"));
	/* Two pipelined requests on one connection (netcheck's HEAD
	 * probes rely on keep-alive). */
	fd = raw_connect(n->port);
	assert_int_equal(write(fd, two, sizeof(two) - 1), sizeof(two) - 1);
	r = raw_read_until_eof(fd, out, sizeof(out) - 1, 5000);
	assert_true(r > 0);
	out[r] = '\0';
	assert_int_equal(strncmp((char *)out, "HTTP/1.1 200 OK", 15), 0);
	assert_non_null(strstr((char *)out, "HTTP/1.1 302 Found"));
	close(fd);
	node_stop(n);
	node_free(n);
}

/* Replay the C->S bytes a real Tailscale client (v1.80.3) sent, against
 * derpd holding the captured server's key. */
static void
test_http_replay_real_client_bytes(void **state)
{
	const char	*vec = getenv("VECTORS");
	char		 path[512], *text;
	json_t		*root, *keys;
	struct node	*n = node_new();
	uint8_t		*in, out[8192], apriv[32], spub[32], k[32];
	size_t		 inl, off;
	ssize_t		 r;
	char		*end;
	struct derp_frame fr;
	struct derp_server_info si;
	int		 fd, saw_info = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/http_mesh.json",
	    vec ? vec : "../shared/vectors");
	if ((root = json_load_file(path, 0, NULL)) == NULL) {
		node_free(n);
		skip();
	}
	snprintf(path, sizeof(path), "cp %s/server1.key.json %s/derpd.key",
	    vec ? vec : "../shared/vectors", n->dir);
	assert_int_equal(system(path), 0);
	node_start_in(n, false, NULL);
	keys = json_object_get(root, "keys");
	unhex(json_string_value(json_object_get(keys, "A.private")), apriv, 32);
	unhex(json_string_value(json_object_get(root, "server_public_key")),
	    spub, 32);
	text = strdup(json_string_value(json_object_get(json_object_get(root,
	    "streams_hex"), "A C->S")));
	in = malloc(strlen(text) / 2);
	inl = unhex(text, in, strlen(text) / 2);
	fd = raw_connect(n->port);
	assert_int_equal(write(fd, in, inl), (ssize_t)inl);
	shutdown(fd, SHUT_WR);
	r = raw_read_until_eof(fd, out, sizeof(out), 5000);
	assert_true(r > 0);
	assert_int_equal(strncmp((char *)out, "HTTP/1.1 101 Switching "
	    "Protocols\r\n", 34), 0);
	end = memmem(out, (size_t)r, "\r\n\r\n", 4);
	assert_non_null(end);
	off = (size_t)((uint8_t *)end - out) + 4;
	assert_int_equal(derp_frame_parse(out + off, (size_t)r - off, 1 << 20,
	    &fr), 45);
	assert_int_equal(derp_dec_server_key(fr.payload, fr.len, k), 0);
	assert_memory_equal(k, spub, 32);
	off += 45;
	while (derp_frame_parse(out + off, (size_t)r - off, 1 << 20, &fr) > 0) {
		if (fr.type == DERP_FRAME_SERVER_INFO) {
			assert_int_equal(saw_info, 0);	/* first and once */
			assert_int_equal(derp_server_info_open(fr.payload,
			    fr.len, apriv, spub, &si), 0);
			assert_int_equal(si.version, 2);
			saw_info = 1;
		}
		off += DERP_FRAME_HDR_LEN + fr.len;
	}
	assert_int_equal(saw_info, 1);
	close(fd);
	free(in);
	free(text);
	json_decref(root);
	node_stop(n);
	node_free(n);
}

static int
check_config(const char *text, char *msg, size_t cap)
{
	char	dir[] = "/tmp/derpd-check-XXXXXX", path[128], cmd[512];
	FILE	*f;
	int	st;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/c.conf", dir);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "%s -t -c %s > %s/out 2>&1",
	    getenv("DERPD_BIN") ? getenv("DERPD_BIN") : "build/derpd", path,
	    dir);
	st = system(cmd);
	snprintf(path, sizeof(path), "%s/out", dir);
	f = fopen(path, "r");
	msg[fread(msg, 1, cap - 1, f)] = '\0';
	fclose(f);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	return WEXITSTATUS(st);
}

static void
test_http_config_check(void **state)
{
	char	msg[1024];

	(void)state;
	assert_int_equal(check_config("listen = { https = \"\"; http = "
	    "\"127.0.0.1:1\"; };\n", msg, sizeof(msg)), 0);
	assert_int_equal(check_config("bogus = 1;\n", msg, sizeof(msg)), 1);
	assert_non_null(strstr(msg, "c.conf:1: unknown setting \"bogus\""));
	assert_int_equal(check_config("tls = { certificate = \"/nonexistent/"
	    "cert.pem\"; };\n", msg, sizeof(msg)), 1);
	assert_non_null(strstr(msg, "cannot load certificate /nonexistent/"
	    "cert.pem"));
}

static void
test_http_metrics_listener(void **state)
{
	uint16_t		 mport = free_tcp_port();
	char			 extra[128];
	struct node		*n;
	struct client_opts	 o;
	struct client		*a, *b;

	(void)state;
	snprintf(extra, sizeof(extra), "workers = 2;\nmetrics = { listen = "
	    "\"127.0.0.1:%u\"; };\n", mport);
	n = node_start(false, extra);
	a = node_client(n);
	b = node_client(n);
	reach(a, b);	/* B may sit on the other worker */
	node_opts(n, &o);
	o.port = mport;
	/* Summed over both workers, whichever one answers. */
	assert_int_equal(client_http_get(&o, "GET", "/metrics", NULL, buf,
	    sizeof(buf)), 200);
	assert_null(strstr(buf, "\nderp_packets_sent 0\n"));
	assert_non_null(strstr(buf, "\nderp_current_connections 2\n"));
	assert_non_null(strstr(buf, "derpd_worker_connections{worker=\"1\"}"));
	assert_int_equal(client_http_get(&o, "GET", "/", NULL, buf,
	    sizeof(buf)), 404);
	client_free(a);
	client_free(b);
	node_stop(n);
	node_free(n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_endpoints_tls),
		cmocka_unit_test(test_http_port80_table),
		cmocka_unit_test(test_http_home_redirect_and_keepalive),
		cmocka_unit_test(test_http_replay_real_client_bytes),
		cmocka_unit_test(test_http_config_check),
		cmocka_unit_test(test_http_metrics_listener),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Admission control (PROTOCOL.md 5.14) against a real HTTP controller,
 * tests/integration/admission_server.py, started per test on a free
 * loopback port: allow relays; deny, HTTP 500 and a body that is not JSON
 * refuse (500 even with fail_open); a hanging controller admits after
 * timeout_ms with fail_open and refuses without; while one client waits,
 * others relay; a client leaving mid-request cancels it.  Also the key
 * lists (deny, allow, SIGHUP reload, a bad line), the mesh exemption and
 * the node-wide derp.max_clients cap.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "derp/key.h"
#include "harness.h"

#define HEX_PSK	"5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a" \
		"5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"

struct srv {
	pid_t		 pid;
	uint16_t	 port;
	char		 map[300];
	char		 reqlog[310];
};

static struct srv	S;
static struct node	*cur;	/* the test's node, freed by teardown */

static void
srv_start(struct node *n)
{
	uint64_t	deadline;
	char		port[16];
	int		fd = -1;

	S.port = free_tcp_port();
	snprintf(S.map, sizeof(S.map), "%s/admit.map", n->dir);
	snprintf(S.reqlog, sizeof(S.reqlog), "%s.log", S.map);
	snprintf(port, sizeof(port), "%u", S.port);
	if ((S.pid = fork()) == 0) {
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		execlp("python3", "python3",
		    "tests/integration/admission_server.py", port, S.map,
		    (char *)NULL);
		_exit(127);
	}
	assert_true(S.pid > 0);
	/* Listening once a connect succeeds. */
	deadline = now_ms() + 10000;
	while (now_ms() < deadline && (fd = raw_connect(S.port)) < 0)
		assert_int_equal(waitpid(S.pid, NULL, WNOHANG), 0);
	assert_true(fd >= 0);
	close(fd);
}

static void
srv_stop(void)
{
	if (S.pid > 0) {
		kill(S.pid, SIGKILL);
		waitpid(S.pid, NULL, 0);
	}
	S.pid = 0;
}

static struct node	*new_node(void);

static void
priv_of(uint8_t priv[DERP_KEY_LEN], uint8_t pub[DERP_KEY_LEN], int i)
{
	memset(priv, 0x40 + i, DERP_KEY_LEN);
	assert_int_equal(derp_key_public(pub, priv), 0);
}

static void
write_file(const char *path, const char *text)
{
	char	 tmp[400];
	FILE	*f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	assert_non_null(f = fopen(tmp, "w"));
	fputs(text, f);
	fclose(f);
	assert_int_equal(rename(tmp, path), 0);
}

/* "nodekey:<hex> <what>\n" for key index i, appended to buf. */
static void
line_for(char *buf, size_t cap, int i, const char *what)
{
	uint8_t	priv[DERP_KEY_LEN], pub[DERP_KEY_LEN];
	char	nk[DERP_KEY_TEXT_MAX];
	size_t	len = strlen(buf);

	priv_of(priv, pub, i);
	derp_key_format_public(nk, pub);
	snprintf(buf + len, cap - len, "%s%s%s\n", nk, what[0] ? " " : "",
	    what);
}

static struct node *
start(const char *path, const char *admission_extra, const char *extra)
{
	struct node	*n = new_node();
	char		 ex[2048];

	srv_start(n);
	snprintf(ex, sizeof(ex), "admission = { url = \"http://127.0.0.1:%u/%s"
	    "\"; %s };\n%s", S.port, path, admission_extra,
	    extra != NULL ? extra : "");
	return node_start_in(n, false, ex);
}

static struct node *
new_node(void)
{
	return cur = node_new();
}

static void
finish(struct node *n)
{
	node_stop(n);
	srv_stop();
	node_free(n);
	cur = NULL;
}

/* Also after a failed assertion: nothing the test started outlives it. */
static int
teardown(void **state)
{
	(void)state;
	srv_stop();
	node_free(cur);		/* kills a node still running */
	cur = NULL;
	return 0;
}

/* Connect with key index i; NULL when refused (*err set). */
static struct client *
try_client(const struct node *n, int i, int *err)
{
	struct client_opts	o;
	uint8_t			priv[DERP_KEY_LEN], pub[DERP_KEY_LEN];

	node_opts(n, &o);
	priv_of(priv, pub, i);
	o.priv = priv;
	return client_connect(&o, err);
}

static struct client *
must_client(const struct node *n, int i)
{
	struct client	*c;
	int		 err = 0;

	if ((c = try_client(n, i, &err)) == NULL)
		fail_msg("client %d refused: %s", i, strerror(-err));
	return c;
}

static void
must_refuse(const struct node *n, int i, const char *reason)
{
	char	 needle[128];
	int	 err = 0;

	assert_null(try_client(n, i, &err));
	assert_int_equal(err, -ECONNRESET);	/* closed, no timeout */
	snprintf(needle, sizeof(needle), "event=client_refused");
	assert_true(node_log_wait(n, needle, 5000));
	snprintf(needle, sizeof(needle), "reason=%s", reason);
	assert_true(node_log_wait(n, needle, 5000));
}

/* Closed before ServerInfo, whatever the reason. */
static void
must_refuse_closed(const struct node *n, int i)
{
	int	err = 0;

	assert_null(try_client(n, i, &err));
	assert_int_equal(err, -ECONNRESET);
}

static void
test_admission_allowed_client_relays(void **state)
{
	struct node	*n = start("allow", "", NULL);
	struct client	*a = must_client(n, 1), *b = must_client(n, 2);
	FILE		*f;
	char		 line[256];
	int		 lines = 0;

	(void)state;
	reach(a, b);
	assert_int_equal(node_metric(n, "derpd_admission_requests"), 2);
	assert_int_equal(node_metric(n, "derpd_admission_allowed"), 2);
	assert_int_equal(node_metric(n, "derpd_admission_in_flight"), 0);
	/* The controller saw each key once, with the source address. */
	assert_non_null(f = fopen(S.reqlog, "r"));
	while (fgets(line, sizeof(line), f) != NULL) {
		assert_non_null(strstr(line, " 127.0.0.1\n"));
		lines++;
	}
	fclose(f);
	assert_int_equal(lines, 2);
	client_free(a);
	client_free(b);
	finish(n);
}

static void
test_admission_denied_never_registered(void **state)
{
	struct node	*n = new_node();
	struct client	*a;
	char		 map[1024] = "", ex[256];
	uint8_t		 priv[DERP_KEY_LEN], dpub[DERP_KEY_LEN];

	(void)state;
	srv_start(n);
	line_for(map, sizeof(map), 1, "allow");
	line_for(map, sizeof(map), 3, "deny");
	write_file(S.map, map);
	snprintf(ex, sizeof(ex), "admission = { url = \"http://127.0.0.1:%u/"
	    "bykey\"; };\n", S.port);
	node_start_in(n, false, ex);
	a = must_client(n, 1);
	must_refuse(n, 3, "admission_denied");
	assert_int_equal(node_metric(n, "derpd_admission_denied"), 1);
	assert_int_equal(node_log_count(n, "event=client_registered"), 1);
	/* To everyone else the refused key is unknown. */
	priv_of(priv, dpub, 3);
	assert_int_equal(client_send_packet(a, dpub, "x", 1), 0);
	{
		uint64_t	deadline = now_ms() + 5000;

		while (node_metric(n, "derp_packets_dropped{reason=\""
		    "unknown_dest\",kind=\"other\"}") < 1 &&
		    now_ms() < deadline)
			;
	}
	assert_int_equal(node_metric(n, "derp_packets_dropped{reason=\""
	    "unknown_dest\",kind=\"other\"}"), 1);
	client_free(a);
	finish(n);
}

static void
test_admission_500_refuses_even_fail_open(void **state)
{
	struct node	*n = start("500", "fail_open = true;", NULL);

	(void)state;
	must_refuse(n, 1, "admission_error");
	assert_true(node_log_wait(n, "status=500", 5000));
	assert_int_equal(node_metric(n, "derpd_admission_errors"), 1);
	assert_int_equal(node_metric(n, "derpd_admission_fail_open"), 0);
	finish(n);
}

static void
test_admission_bad_json_refuses(void **state)
{
	struct node	*n = start("badjson", "fail_open = true;", NULL);

	(void)state;
	must_refuse(n, 1, "admission_error");
	assert_true(node_log_wait(n, "err=bad_response", 5000));
	assert_int_equal(node_metric(n, "derpd_admission_fail_open"), 0);
	finish(n);
}

static void
test_admission_hang_fail_open_admits_after_timeout(void **state)
{
	struct node	*n = start("hang",
			    "timeout_ms = 400; fail_open = true;", NULL);
	struct client	*a, *b;
	uint64_t	 t0 = now_ms();

	(void)state;
	a = must_client(n, 1);
	assert_true(now_ms() - t0 >= 400);
	b = must_client(n, 2);
	reach(a, b);
	assert_int_equal(node_metric(n, "derpd_admission_timeouts"), 2);
	assert_int_equal(node_metric(n, "derpd_admission_fail_open"), 2);
	client_free(a);
	client_free(b);
	finish(n);
}

static void
test_admission_hang_fail_closed_refuses(void **state)
{
	struct node	*n = start("hang",
			    "timeout_ms = 400; fail_open = false;", NULL);

	(void)state;
	must_refuse(n, 1, "admission_error");
	assert_int_equal(node_metric(n, "derpd_admission_timeouts"), 1);
	assert_int_equal(node_log_count(n, "event=client_registered"), 0);
	finish(n);
}

struct waiter {
	const struct node	*n;
	struct client		*c;
	int			 err;
};

static void *
connect_hung(void *arg)
{
	struct waiter	*wt = arg;

	wt->c = try_client(wt->n, 9, &wt->err);
	return NULL;
}

static void
test_admission_waiting_client_blocks_no_one(void **state)
{
	struct node	*n = new_node();
	struct client	*a, *b;
	struct waiter	 wt = { n, NULL, 0 };
	pthread_t	 t;
	char		 map[1024] = "", ex[256];
	uint64_t	 deadline;

	(void)state;
	srv_start(n);
	line_for(map, sizeof(map), 1, "allow");
	line_for(map, sizeof(map), 2, "allow");
	line_for(map, sizeof(map), 9, "hang");
	write_file(S.map, map);
	snprintf(ex, sizeof(ex), "admission = { url = \"http://127.0.0.1:%u/"
	    "bykey\"; timeout_ms = 4000; fail_open = false; };\n", S.port);
	node_start_in(n, false, ex);
	assert_int_equal(pthread_create(&t, NULL, connect_hung, &wt), 0);
	deadline = now_ms() + 5000;
	while (node_metric(n, "derpd_admission_in_flight") < 1 &&
	    now_ms() < deadline)
		;
	assert_int_equal(node_metric(n, "derpd_admission_in_flight"), 1);
	/* Meanwhile two others are admitted and relay. */
	a = must_client(n, 1);
	b = must_client(n, 2);
	reach(a, b);
	reach(b, a);
	assert_int_equal(node_metric(n, "derpd_admission_in_flight"), 1);
	assert_int_equal(node_metric(n, "derpd_admission_timeouts"), 0);
	pthread_join(t, NULL);
	assert_null(wt.c);
	assert_true(node_log_wait(n, "reason=admission_error", 5000));
	assert_int_equal(node_metric(n, "derpd_admission_timeouts"), 1);
	client_free(a);
	client_free(b);
	finish(n);
}

static void
test_admission_client_leaving_cancels_request(void **state)
{
	struct node		*n = start("hang", "timeout_ms = 20000;",
				    "derp = { handshake_timeout_ms = 30000; "
				    "};\n");
	struct client_opts	 o;
	uint8_t			 priv[DERP_KEY_LEN], pub[DERP_KEY_LEN];
	uint64_t		 deadline;
	int			 err = 0;

	(void)state;
	node_opts(n, &o);
	priv_of(priv, pub, 1);
	o.priv = priv;
	o.timeout_ms = 500;	/* gives up and closes mid-request */
	assert_null(client_connect(&o, &err));
	assert_int_equal(err, -ETIMEDOUT);
	deadline = now_ms() + 5000;
	while (node_metric(n, "derpd_admission_in_flight") != 0 &&
	    now_ms() < deadline)
		;
	assert_int_equal(node_metric(n, "derpd_admission_in_flight"), 0);
	assert_true(node_log_wait(n, "reason=eof", 5000));
	assert_int_equal(node_metric(n, "derpd_admission_timeouts"), 0);
	finish(n);
}

/* The handshake deadline still runs while the controller is asked. */
static void
test_admission_handshake_deadline_applies(void **state)
{
	struct node	*n = start("hang", "timeout_ms = 20000;",
			    "derp = { handshake_timeout_ms = 300; };\n");
	uint64_t	 t0 = now_ms();

	(void)state;
	must_refuse_closed(n, 1);
	assert_true(now_ms() - t0 < 5000);
	assert_true(node_log_wait(n, "reason=handshake_timeout", 5000));
	assert_int_equal(node_metric(n, "derpd_admission_in_flight"), 0);
	assert_int_equal(node_metric(n, "derpd_admission_timeouts"), 0);
	finish(n);
}

/* Beyond max_in_flight the fail_open policy answers at once. */
static void
test_admission_in_flight_cap(void **state)
{
	struct node	*n = start("hang", "timeout_ms = 2500; "
			    "fail_open = true; max_in_flight = 1;", NULL);
	struct waiter	 wt = { n, NULL, 0 };
	struct client	*a;
	pthread_t	 t;
	uint64_t	 deadline, t0;

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, connect_hung, &wt), 0);
	deadline = now_ms() + 5000;
	while (node_metric(n, "derpd_admission_in_flight") < 1 &&
	    now_ms() < deadline)
		;
	assert_int_equal(node_metric(n, "derpd_admission_in_flight"), 1);
	t0 = now_ms();
	a = must_client(n, 1);		/* not asked: admitted by policy */
	assert_true(now_ms() - t0 < 2000);
	assert_int_equal(node_metric(n, "derpd_admission_overflow"), 1);
	assert_int_equal(node_metric(n, "derpd_admission_requests"), 1);
	pthread_join(t, NULL);
	assert_non_null(wt.c);		/* the hung one, after timeout_ms */
	assert_int_equal(node_metric(n, "derpd_admission_fail_open"), 2);
	client_free(wt.c);
	client_free(a);
	finish(n);
}

static void
test_admission_deny_and_allow_files(void **state)
{
	struct node	*n = new_node();
	struct client	*a, *b;
	char		 deny[300], allow[300], ex[1024];
	char		 text[1024] = "# ops\n";

	(void)state;
	snprintf(deny, sizeof(deny), "%s/deny.keys", n->dir);
	snprintf(allow, sizeof(allow), "%s/allow.keys", n->dir);
	line_for(text, sizeof(text), 3, "");
	write_file(deny, text);
	/* 1 and 2 allowed (bare hex for 2), 3 allowed too but denied. */
	text[0] = '\0';
	line_for(text, sizeof(text), 1, "");
	line_for(text, sizeof(text), 3, "");
	{
		uint8_t	priv[DERP_KEY_LEN], pub[DERP_KEY_LEN];
		char	hex[DERP_KEY_HEX_LEN + 1];

		priv_of(priv, pub, 2);
		derp_key_format_hex(hex, pub);
		strcat(text, "\n  ");
		strcat(text, hex);
		strcat(text, "   # bare\n");
	}
	write_file(allow, text);
	snprintf(ex, sizeof(ex), "admission = { deny_keys_file = \"%s\"; "
	    "allow_keys_file = \"%s\"; };\n", deny, allow);
	node_start_in(n, false, ex);
	a = must_client(n, 1);
	b = must_client(n, 2);
	reach(a, b);
	must_refuse(n, 3, "deny_list");		/* deny wins */
	must_refuse(n, 4, "not_allowed");
	assert_int_equal(node_metric(n, "derpd_admission_list_refused"), 2);
	assert_int_equal(node_metric(n, "derpd_admission_requests"), 0);
	client_free(a);
	client_free(b);
	finish(n);
}

static void
test_admission_lists_reload_on_sighup(void **state)
{
	struct node	*n = new_node();
	struct client	*a, *c;
	char		 deny[300], text[1024] = "# nobody yet\n", ex[512];

	(void)state;
	snprintf(deny, sizeof(deny), "%s/deny.keys", n->dir);
	write_file(deny, text);
	snprintf(ex, sizeof(ex), "admission = { deny_keys_file = \"%s\"; };\n",
	    deny);
	node_start_in(n, false, ex);
	a = must_client(n, 1);
	line_for(text, sizeof(text), 2, "");
	write_file(deny, text);
	kill(n->pid, SIGHUP);
	assert_true(node_log_wait(n, "allow=0 deny=1", 5000));
	must_refuse(n, 2, "deny_list");
	/* Connected clients stay; others still come in. */
	c = must_client(n, 3);
	reach(a, c);
	/* A bad line refuses the reload, naming file and line; the old
	 * lists stay. */
	strcat(text, "nodekey:nothex\n");
	write_file(deny, text);
	kill(n->pid, SIGHUP);
	assert_true(node_log_wait(n, "event=reload_refused", 5000));
	assert_true(node_log_wait(n, "deny.keys:3:", 5000));
	client_free(c);
	must_refuse(n, 2, "deny_list");
	c = must_client(n, 4);
	client_free(c);
	client_free(a);
	finish(n);
}

static void
test_admission_bad_list_refuses_start(void **state)
{
	const char	*bin = getenv("DERPD_BIN");
	struct node	*n = new_node();
	char		 deny[300], conf[300], cmd[1024], out[1024];
	FILE		*p;
	size_t		 len;
	int		 status;

	(void)state;
	snprintf(deny, sizeof(deny), "%s/deny.keys", n->dir);
	write_file(deny, "# fine\n\nnot a key\n");
	snprintf(conf, sizeof(conf), "%s/bad.conf", n->dir);
	snprintf(cmd, sizeof(cmd), "listen = { https = \"\"; };\n"
	    "admission = { deny_keys_file = \"%s\"; };\n", deny);
	write_file(conf, cmd);
	snprintf(cmd, sizeof(cmd), "%s -t -c %s 2>&1", bin ? bin :
	    "build/derpd", conf);
	assert_non_null(p = popen(cmd, "r"));
	len = fread(out, 1, sizeof(out) - 1, p);
	out[len] = '\0';
	status = pclose(p);
	assert_true(WIFEXITED(status));
	assert_int_not_equal(WEXITSTATUS(status), 0);
	assert_non_null(strstr(out, "deny.keys:3:"));
	node_free(n);
	cur = NULL;
}

static void
test_admission_mesh_key_exempt(void **state)
{
	struct node		*n = new_node();
	struct client_opts	 o;
	struct client		*m;
	char			 psk[300], ex[1024];
	int			 err = 0;

	(void)state;
	snprintf(psk, sizeof(psk), "%s/mesh.psk", n->dir);
	write_file(psk, HEX_PSK "\n");
	srv_start(n);
	snprintf(ex, sizeof(ex), "mesh = { psk_file = \"%s\"; };\n"
	    "admission = { url = \"http://127.0.0.1:%u/deny\"; };\n", psk,
	    S.port);
	node_start_in(n, false, ex);
	must_refuse(n, 1, "admission_denied");
	node_opts(n, &o);
	o.info.has_mesh_key = true;
	memset(o.info.mesh_key, 0x5a, sizeof(o.info.mesh_key));
	assert_non_null(m = client_connect(&o, &err));
	assert_true(node_log_wait(n, "mesh=1", 5000));
	assert_int_equal(node_metric(n, "derpd_admission_requests"), 1);
	client_free(m);
	finish(n);
}

static void
test_admission_max_clients_node_wide(void **state)
{
	struct node	*n = node_start_in(new_node(), false, "workers = 2;\n"
			    "derp = { max_clients = 3; };\n");
	struct client	*c[3], *late = NULL;
	uint64_t	 deadline;
	int		 i, err;

	(void)state;
	/* Spread over both workers; the cap counts the node. */
	for (i = 0; i < 3; i++) {
		c[i] = must_client(n, i + 1);
		deadline = now_ms() + 5000;
		while (node_metric(n, "derp_current_connections") < i + 1 &&
		    now_ms() < deadline)
			;
	}
	/* Presence between workers is eventual: wait for both views. */
	deadline = now_ms() + 5000;
	while (now_ms() < deadline && (node_log_count(n, "reason=max_clients")
	    == 0)) {
		struct client	*x = try_client(n, 7, &err);

		if (x != NULL)
			client_free(x);
	}
	assert_true(node_log_count(n, "reason=max_clients") > 0);
	assert_true(node_metric(n, "derpd_clients_refused_max") > 0);
	client_free(c[0]);
	deadline = now_ms() + 5000;
	while (late == NULL && now_ms() < deadline)
		late = try_client(n, 8, &err);
	assert_non_null(late);
	client_free(late);
	client_free(c[1]);
	client_free(c[2]);
	finish(n);
}

#define T(f)	cmocka_unit_test_teardown(f, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_admission_allowed_client_relays),
		T(test_admission_denied_never_registered),
		T(test_admission_500_refuses_even_fail_open),
		T(test_admission_bad_json_refuses),
		T(test_admission_hang_fail_open_admits_after_timeout),
		T(test_admission_hang_fail_closed_refuses),
		T(test_admission_waiting_client_blocks_no_one),
		T(test_admission_client_leaving_cancels_request),
		T(test_admission_handshake_deadline_applies),
		T(test_admission_in_flight_cap),
		T(test_admission_deny_and_allow_files),
		T(test_admission_lists_reload_on_sighup),
		T(test_admission_bad_list_refuses_start),
		T(test_admission_mesh_key_exempt),
		T(test_admission_max_clients_node_wide),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

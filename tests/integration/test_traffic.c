/*
 * Traffic statistics (issue 5 item 6): /debug/traffic reports exactly
 * the packets and bytes two clients exchanged, node-wide with the
 * clients on different workers, and refuses forwarded requests; the
 * periodic dump gets lines whose deltas add up to the totals; a small
 * max_entries flushes early and counts it; a walk over more connections
 * than one step covers dumps each once; a mesh link and the peer's
 * inbound mesh connection show the forwarded packets.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "derp/key.h"
#include "harness.h"

#define NPKT	50
#define PSIZE	300

static char	resp[4 << 20];

struct ctr {
	json_int_t	rp, rb, sp, sb, rw, sw, drops;
};

static void
keytext(char out[80], const uint8_t *key)
{
	char	hex[DERP_KEY_HEX_LEN + 1];

	derp_key_format_hex(hex, key);
	snprintf(out, 80, "nodekey:%s", hex);
}

static json_int_t
num(json_t *o, const char *k)
{
	json_t	*v = json_object_get(o, k);

	if (!json_is_integer(v))
		fail_msg("%s missing", k);
	return json_integer_value(v);
}

static void
ctr_of(json_t *o, struct ctr *c)
{
	c->rp = num(o, "RecvPackets");
	c->rb = num(o, "RecvBytes");
	c->sp = num(o, "SentPackets");
	c->sb = num(o, "SentBytes");
	c->rw = num(o, "RecvWireBytes");
	c->sw = num(o, "SentWireBytes");
	c->drops = num(o, "Drops");
}

/* GET /debug/traffic; returns the status, the body in *body. */
static int
traffic_get(const struct node *n, const char *hdrs, const char **body)
{
	struct client_opts	 o;
	int			 st;
	char			*p;

	node_opts(n, &o);
	st = client_http_get(&o, "GET", "/debug/traffic", hdrs, resp,
	    sizeof(resp));
	p = strstr(resp, "\r\n\r\n");
	*body = p != NULL ? p + 4 : "";
	return st;
}

/* Every line of the body, parsed: a JSON array of objects. */
static json_t *
parse_lines(const char *body)
{
	json_t		*arr = json_array(), *j;
	json_error_t	 e;
	const char	*nl;

	while (*body != '\0') {
		assert_non_null(nl = strchr(body, '\n'));
		if ((j = json_loadb(body, (size_t)(nl - body), 0, &e)) == NULL)
			fail_msg("bad line (%s): %.*s", e.text,
			    (int)(nl - body), body);
		json_array_append_new(arr, j);
		body = nl + 1;
	}
	return arr;
}

/* The line of a client connection with this key, or NULL. */
static json_t *
find_conn(json_t *arr, const uint8_t *key)
{
	char	 kt[80];
	size_t	 i;
	json_t	*j, *k;

	keytext(kt, key);
	json_array_foreach(arr, i, j) {
		k = json_object_get(j, "Key");
		if (json_object_get(j, "Conn") != NULL && k != NULL &&
		    strcmp(json_string_value(k), kt) == 0)
			return j;
	}
	return NULL;
}

static json_t *
snapshot(const struct node *n)
{
	const char	*body;
	int		 st = traffic_get(n, NULL, &body);

	if (st != 200)
		fail_msg("GET /debug/traffic: %d", st);
	return parse_lines(body);
}

static void
conn_ctr(const struct node *n, const uint8_t *key, struct ctr *c, int *worker)
{
	json_t	*arr = snapshot(n), *j;

	if ((j = find_conn(arr, key)) == NULL)
		fail_msg("no /debug/traffic line for the client");
	ctr_of(j, c);
	if (worker != NULL)
		*worker = (int)num(j, "Worker");
	json_decref(arr);
}

/* a and b on different workers (extra clients are returned in spare). */
static void
split_pair(const struct node *n, struct client **a, struct client **b,
    struct client **spare, int nspare)
{
	int	i, wa;

	*a = node_client(n);
	wa = node_client_worker(n, *a);
	assert_true(wa >= 0);
	for (i = 0; i < nspare; i++) {
		*b = node_client(n);
		if (node_client_worker(n, *b) != wa)
			return;
		spare[i] = *b;
	}
	fail_msg("no client landed on a second worker");
}

static void
exchange(struct client *a, struct client *b, int npkt)
{
	struct client_msg	m;
	uint8_t			pkt[PSIZE];
	int			i;

	memset(pkt, 0x5a, sizeof(pkt));
	for (i = 0; i < npkt; i++) {
		assert_int_equal(client_queue_packet(a, client_public_key(b),
		    pkt, sizeof(pkt)), 0);
		assert_int_equal(client_queue_packet(b, client_public_key(a),
		    pkt, sizeof(pkt)), 0);
	}
	assert_int_equal(client_flush(a, 5000), 0);
	assert_int_equal(client_flush(b, 5000), 0);
	for (i = 0; i < npkt; i++) {
		assert_int_equal(recv_type(a, DERP_FRAME_RECV_PACKET, &m,
		    5000), 0);
		assert_int_equal(m.len, PSIZE);
		assert_int_equal(recv_type(b, DERP_FRAME_RECV_PACKET, &m,
		    5000), 0);
		assert_int_equal(m.len, PSIZE);
	}
}

static void
assert_exchanged(const struct ctr *before, const struct ctr *after)
{
	assert_int_equal(after->rp - before->rp, NPKT);
	assert_int_equal(after->rb - before->rb, NPKT * PSIZE);
	assert_int_equal(after->sp - before->sp, NPKT);
	assert_int_equal(after->sb - before->sb, NPKT * PSIZE);
	/* Frame headers and the destination key ride along on the wire. */
	assert_true(after->rw - before->rw >= NPKT * (PSIZE + 5 + 32));
	assert_true(after->sw - before->sw >= NPKT * (PSIZE + 5 + 32));
	assert_int_equal(after->drops - before->drops, 0);
}

static void
test_traffic_debug_two_workers(void **state)
{
	struct node	*n = node_start(false, "workers = 2;\n");
	struct client	*a, *b, *spare[30] = { 0 };
	struct ctr	 a0, b0, a1, b1;
	struct sockaddr_in sa;
	socklen_t	 sl = sizeof(sa);
	json_t		*arr, *j;
	const char	*body;
	char		 addr[64];
	int		 wa, wb, i;

	(void)state;
	split_pair(n, &a, &b, spare, 30);
	reach(a, b);
	reach(b, a);
	conn_ctr(n, client_public_key(a), &a0, &wa);
	conn_ctr(n, client_public_key(b), &b0, &wb);
	/* Node-wide: each worker answers for its own connections. */
	assert_int_equal(wa, node_client_worker(n, a));
	assert_int_equal(wb, node_client_worker(n, b));
	assert_int_not_equal(wa, wb);
	exchange(a, b, NPKT);
	conn_ctr(n, client_public_key(a), &a1, NULL);
	conn_ctr(n, client_public_key(b), &b1, NULL);
	assert_exchanged(&a0, &a1);
	assert_exchanged(&b0, &b1);
	/* The other fields of a line. */
	assert_int_equal(traffic_get(n, NULL, &body), 200);
	assert_non_null(strstr(resp, "X-Derpd-Workers: 2/2\r\n"));
	assert_non_null(strstr(resp, "X-Frame-Options: DENY\r\n"));
	arr = parse_lines(body);
	assert_non_null(j = find_conn(arr, client_public_key(a)));
	assert_int_equal(getsockname(client_fd(a), (struct sockaddr *)&sa,
	    &sl), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(sa.sin_port));
	assert_string_equal(json_string_value(json_object_get(j, "Addr")),
	    addr);
	assert_true(json_is_false(json_object_get(j, "Mesh")));
	assert_true(num(j, "ConnectedSec") >= 0);
	assert_int_equal(num(j, "Sent"), num(j, "SentWireBytes"));
	assert_int_equal(num(j, "Recv"), num(j, "RecvWireBytes"));
	assert_int_equal(num(j, "UniqueSenders"), 1);
	json_decref(arr);
	/* Behind a proxy: refused, as every debug page. */
	assert_int_equal(traffic_get(n, "X-Forwarded-For: 1.2.3.4\r\n",
	    &body), 403);
	assert_non_null(strstr(body, "debug access denied"));
	client_free(a);
	client_free(b);
	for (i = 0; i < 30; i++)
		if (spare[i] != NULL)
			client_free(spare[i]);
	node_stop(n);
	node_free(n);
}

/* Sum of every dump line's delta for key, and its newest totals. */
static int
dump_sum(const char *path, const uint8_t *key, struct ctr *sum,
    struct ctr *last, int *workers_seen)
{
	char		 kt[80], line[8192];
	FILE		*f;
	json_t		*j, *d;
	json_error_t	 e;
	struct ctr	 c;
	int		 n = 0;

	keytext(kt, key);
	memset(sum, 0, sizeof(*sum));
	memset(last, 0, sizeof(*last));
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if ((j = json_loads(line, 0, &e)) == NULL)
			fail_msg("bad dump line (%s): %s", e.text, line);
		assert_true(json_is_string(json_object_get(j, "Time")));
		if (workers_seen != NULL)
			*workers_seen |= 1 << num(j, "Worker");
		if (json_object_get(j, "Conn") != NULL &&
		    strcmp(json_string_value(json_object_get(j, "Key")), kt)
		    == 0) {
			assert_non_null(d = json_object_get(j, "Delta"));
			ctr_of(d, &c);
			sum->rp += c.rp;
			sum->rb += c.rb;
			sum->sp += c.sp;
			sum->sb += c.sb;
			sum->rw += c.rw;
			sum->sw += c.sw;
			ctr_of(j, last);
			n++;
		}
		json_decref(j);
	}
	fclose(f);
	return n;
}

static bool
dump_caught_up(const char *path, const uint8_t *key, const struct ctr *tot,
    int *workers_seen)
{
	struct ctr	sum, last;

	if (dump_sum(path, key, &sum, &last, workers_seen) == 0)
		return false;
	return sum.rp == tot->rp && sum.rb == tot->rb && sum.sp == tot->sp &&
	    sum.sb == tot->sb && last.rp == tot->rp && last.sp == tot->sp &&
	    sum.rw == last.rw && sum.sw == last.sw;
}

static void
test_traffic_dump_interval(void **state)
{
	struct node	*n = node_new();
	struct client	*a, *b, *spare[30] = { 0 };
	struct ctr	 a1, b1;
	char		 path[400], extra[800];
	uint64_t	 deadline;
	int		 i, seen = 0;
	bool		 ok = false;

	(void)state;
	snprintf(path, sizeof(path), "%s/traffic.jsonl", n->dir);
	snprintf(extra, sizeof(extra), "workers = 2;\ntraffic = { dump_file "
	    "= \"%s\"; interval_s = 1; };\n", path);
	node_start_in(n, false, extra);
	split_pair(n, &a, &b, spare, 30);
	reach(a, b);
	reach(b, a);
	exchange(a, b, NPKT);
	conn_ctr(n, client_public_key(a), &a1, NULL);
	conn_ctr(n, client_public_key(b), &b1, NULL);
	assert_true(a1.rp >= NPKT && b1.rp >= NPKT);
	assert_true(a1.sp >= NPKT && b1.sp >= NPKT);
	/* Within a few intervals the deltas add up to the totals, for
	 * clients of both workers, appending to the one file. */
	deadline = now_ms() + 10000;
	while (!ok && now_ms() < deadline) {
		seen = 0;
		ok = dump_caught_up(path, client_public_key(a), &a1, &seen) &&
		    dump_caught_up(path, client_public_key(b), &b1, &seen);
		if (!ok)
			usleep(50 * 1000);	/* polling the file */
	}
	assert_true(ok);
	assert_int_equal(seen, 3);	/* lines from worker 0 and 1 */
	assert_true(node_metric(n, "derpd_traffic_dump_lines") >= 2);
	client_free(a);
	client_free(b);
	for (i = 0; i < 30; i++)
		if (spare[i] != NULL)
			client_free(spare[i]);
	node_stop(n);
	node_free(n);
}

/* The dump walks the connections a bounded step per loop turn: more of
 * them than several steps take still get one line each per period. */
#define WALK_CONNS	600
static void
test_traffic_dump_walks_every_conn(void **state)
{
	static struct client	*c[WALK_CONNS];
	struct node		*n = node_new();
	char			 path[400], extra[800], kt[80], line[8192];
	json_t			*keys, *j, *k;
	json_error_t		 e;
	uint64_t		 deadline;
	FILE			*f;
	int			 i, lines = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/traffic.jsonl", n->dir);
	snprintf(extra, sizeof(extra), "traffic = { dump_file = \"%s\"; "
	    "interval_s = 1; max_entries = 100000; };\n", path);
	node_start_in(n, false, extra);
	for (i = 0; i < WALK_CONNS; i++)
		assert_non_null(c[i] = node_client(n));
	/* Idle after the handshake: each is dumped once, in the first
	 * period that finds it. */
	deadline = now_ms() + 20000;
	while (now_ms() < deadline &&
	    node_metric(n, "derpd_traffic_dump_lines") < WALK_CONNS)
		usleep(50 * 1000);	/* polling the metric */
	assert_non_null(keys = json_object());
	assert_non_null(f = fopen(path, "r"));
	while (fgets(line, sizeof(line), f) != NULL) {
		if ((j = json_loads(line, 0, &e)) == NULL)
			fail_msg("bad dump line (%s): %s", e.text, line);
		k = json_object_get(j, "Key");
		if (json_object_get(j, "Conn") != NULL && k != NULL) {
			lines++;
			assert_int_equal(json_object_set_new(keys,
			    json_string_value(k), json_true()), 0);
		}
		json_decref(j);
	}
	fclose(f);
	for (i = 0; i < WALK_CONNS; i++) {
		keytext(kt, client_public_key(c[i]));
		if (json_object_get(keys, kt) == NULL)
			fail_msg("client %d never dumped", i);
	}
	assert_int_equal(lines, WALK_CONNS);
	assert_int_equal(json_object_size(keys), WALK_CONNS);
	json_decref(keys);
	for (i = 0; i < WALK_CONNS; i++)
		client_free(c[i]);
	node_stop(n);
	node_free(n);
}

static int
count_lines(const char *path, int *closed)
{
	char	 line[8192];
	FILE	*f;
	int	 n = 0;

	*closed = 0;
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		n++;
		*closed += strstr(line, "\"Closed\":true") != NULL;
	}
	fclose(f);
	return n;
}

static void
test_traffic_dump_early_flush(void **state)
{
	struct node		*n = node_new();
	struct client		*c[10];
	struct client_msg	 m;
	char			 path[400], extra[800];
	uint64_t		 deadline;
	int			 i, closed = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/traffic.jsonl", n->dir);
	/* One worker: the flush points are exact.  The interval never
	 * comes: only closes produce lines. */
	snprintf(extra, sizeof(extra), "traffic = { dump_file = \"%s\"; "
	    "interval_s = 3600; max_entries = 3; };\n", path);
	node_start_in(n, false, extra);
	for (i = 0; i < 10; i++)
		c[i] = node_client(n);
	for (i = 0; i < 10; i++)
		assert_int_equal(client_send_packet(c[i],
		    client_public_key(c[(i + 1) % 10]), "x", 1), 0);
	for (i = 0; i < 10; i++)
		assert_int_equal(recv_type(c[i], DERP_FRAME_RECV_PACKET, &m,
		    5000), 0);
	assert_int_equal(count_lines(path, &closed), 0);
	for (i = 0; i < 10; i++)
		client_free(c[i]);
	/* Ten final lines, three per period: written at 3, 6 and 9. */
	deadline = now_ms() + 10000;
	while (now_ms() < deadline &&
	    node_metric(n, "derpd_traffic_dump_early_flushes") < 3)
		usleep(20 * 1000);
	assert_int_equal(node_metric(n, "derpd_traffic_dump_early_flushes"),
	    3);
	assert_int_equal(count_lines(path, &closed), 9);
	assert_int_equal(closed, 9);
	/* The tenth is written when the worker stops. */
	node_stop(n);
	assert_int_equal(count_lines(path, &closed), 10);
	assert_int_equal(closed, 10);
	node_free(n);
}

static void
test_traffic_dump_reload(void **state)
{
	struct node	*n = node_start(false, "traffic = { dump_file = \"\"; "
			    "interval_s = 1; };\n");
	struct client	*a = node_client(n), *b = node_client(n);
	struct ctr	 a1, sum, last;
	char		 path[400], cmd[1200];
	uint64_t	 deadline;

	(void)state;
	snprintf(path, sizeof(path), "%s/later.jsonl", n->dir);
	exchange(a, b, NPKT);
	conn_ctr(n, client_public_key(a), &a1, NULL);
	assert_int_equal(access(path, F_OK), -1);	/* off: no file */
	/* SIGHUP turns it on: the first lines carry everything so far. */
	snprintf(cmd, sizeof(cmd), "sed -i 's|dump_file = \"\"|dump_file = "
	    "\"%s\"|' %s", path, n->conf);
	assert_int_equal(system(cmd), 0);
	kill(n->pid, SIGHUP);
	deadline = now_ms() + 10000;
	while (now_ms() < deadline && dump_sum(path, client_public_key(a),
	    &sum, &last, NULL) == 0)
		usleep(50 * 1000);	/* polling the file */
	assert_int_equal(sum.rp, a1.rp);
	assert_int_equal(sum.sp, a1.sp);
	assert_int_equal(sum.rb, NPKT * PSIZE);
	client_free(a);
	client_free(b);
	node_stop(n);
	node_free(n);
}

/* Sum of a counter over lines matching link index / mesh conns. */
static json_int_t
sum_where(json_t *arr, const char *what, int link, const char *field,
    const uint8_t *key)
{
	json_int_t	 s = 0;
	size_t		 i;
	json_t		*j, *k;
	char		 kt[80];

	if (key != NULL)
		keytext(kt, key);
	json_array_foreach(arr, i, j) {
		if (strcmp(what, "link") == 0) {
			if (json_object_get(j, "Link") == NULL ||
			    num(j, "Link") != link)
				continue;
			assert_true(json_is_true(json_object_get(j, "Up")));
			k = json_object_get(j, "Key");
			assert_non_null(k);
			assert_string_equal(json_string_value(k), kt);
		} else if (json_object_get(j, "Conn") == NULL ||
		    !json_is_true(json_object_get(j, "Mesh"))) {
			continue;
		}
		s += num(j, field);
	}
	return s;
}

/* Every worker's link number link is up (each worker dials each peer;
 * a client's reach() proves only its own worker's link). */
static void
wait_links_up(const struct node *n, int link, size_t workers)
{
	uint64_t	 deadline = now_ms() + 10000;
	size_t		 i, up;
	json_t		*arr, *j;

	do {
		arr = snapshot(n);
		up = 0;
		json_array_foreach(arr, i, j)
			up += json_object_get(j, "Link") != NULL &&
			    num(j, "Link") == link &&
			    json_is_true(json_object_get(j, "Up"));
		json_decref(arr);
		if (up == workers)
			return;
		(void)node_log_wait(n, "\x01never", 20);	/* poll interval */
	} while (now_ms() < deadline);
	fail_msg("%zu of %zu mesh links up", up, workers);
}

static void
test_traffic_mesh_link(void **state)
{
	struct node	*nodes[2];
	struct client	*a, *b;
	json_t		*s0, *s1, *t0, *t1;
	const uint8_t	*key1;
	int		 i;

	(void)state;
	node_region_start(nodes, 2, 2, REGION_PSK);
	a = node_client(nodes[0]);
	b = node_client(nodes[1]);
	key1 = client_server_key(b);
	reach(a, b);
	wait_links_up(nodes[0], 1, 2);
	s0 = snapshot(nodes[0]);
	s1 = snapshot(nodes[1]);
	for (i = 0; i < NPKT; i++)
		assert_int_equal(client_queue_packet(a, client_public_key(b),
		    "0123456789", 10), 0);
	assert_int_equal(client_flush(a, 5000), 0);
	for (i = 0; i < NPKT; i++) {
		struct client_msg	m;

		assert_int_equal(recv_type(b, DERP_FRAME_RECV_PACKET, &m,
		    5000), 0);
		assert_int_equal(m.len, 10);
	}
	t0 = snapshot(nodes[0]);
	t1 = snapshot(nodes[1]);
	/* Node 0's links to node 1 (index 1, one per worker) carried
	 * them as ForwardPackets ... */
	assert_int_equal(sum_where(t0, "link", 1, "SentPackets", key1) -
	    sum_where(s0, "link", 1, "SentPackets", key1), NPKT);
	assert_int_equal(sum_where(t0, "link", 1, "SentBytes", key1) -
	    sum_where(s0, "link", 1, "SentBytes", key1), NPKT * 10);
	assert_true(sum_where(t0, "link", 1, "SentWireBytes", key1) -
	    sum_where(s0, "link", 1, "SentWireBytes", key1) >=
	    NPKT * (10 + 5 + 64));
	/* ... and node 1 saw them arrive on its inbound mesh peers. */
	assert_int_equal(sum_where(t1, "mesh", 0, "RecvPackets", NULL) -
	    sum_where(s1, "mesh", 0, "RecvPackets", NULL), NPKT);
	assert_int_equal(sum_where(t1, "mesh", 0, "RecvBytes", NULL) -
	    sum_where(s1, "mesh", 0, "RecvBytes", NULL), NPKT * 10);
	/* The self link (index 0) is listed, down, without a key. */
	assert_true(json_array_size(t0) >= 4);
	json_decref(s0);
	json_decref(s1);
	json_decref(t0);
	json_decref(t1);
	client_free(a);
	client_free(b);
	for (i = 0; i < 2; i++) {
		node_stop(nodes[i]);
		node_free(nodes[i]);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_traffic_debug_two_workers),
		cmocka_unit_test(test_traffic_dump_interval),
		cmocka_unit_test(test_traffic_dump_walks_every_conn),
		cmocka_unit_test(test_traffic_dump_early_flush),
		cmocka_unit_test(test_traffic_dump_reload),
		cmocka_unit_test(test_traffic_mesh_link),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

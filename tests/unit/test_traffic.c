/*
 * Unit tests for common/traffic.c: the JSON line of a connection and of
 * a mesh link (parsed back with jansson), dump deltas, escaping of the
 * one configured string, and the size bound.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/traffic.h"

static const uint8_t KEY[32] = {
	0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
	[31] = 0xff,
};

static json_t *
parse_line(const char *line, ssize_t n)
{
	json_error_t	 e;
	json_t		*j;

	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(line));
	assert_int_equal(line[n - 1], '\n');
	/* Exactly one line: no newline before the end. */
	assert_ptr_equal(strchr(line, '\n'), line + n - 1);
	j = json_loadb(line, (size_t)n, 0, &e);
	if (j == NULL)
		fail_msg("bad JSON (%s): %s", e.text, line);
	return j;
}

static json_int_t
num(json_t *o, const char *k)
{
	json_t	*v = json_object_get(o, k);

	if (!json_is_integer(v))
		fail_msg("%s missing or not an integer", k);
	return json_integer_value(v);
}

static void
test_traffic_conn_line(void **state)
{
	struct traffic_rec	r = { 0 };
	char			line[TRAFFIC_LINE_MAX];
	ssize_t			n;
	json_t			*j;

	(void)state;
	r.key = KEY;
	r.conn = 42;
	r.worker = 1;
	r.link = -1;
	r.addr = "127.0.0.1:5555";
	r.mesh = false;
	r.connected_s = 7;
	r.unique_senders = 2;
	r.tot = (struct traffic_ctr){ .recv_packets = 10, .recv_bytes = 1000,
	    .recv_wire = 1500, .sent_packets = 20, .sent_bytes = 2000,
	    .sent_wire = 2600, .drops = 3 };
	r.time_ms = -1;
	n = traffic_format(line, sizeof(line), &r);
	j = parse_line(line, n);
	assert_string_equal(json_string_value(json_object_get(j, "Key")),
	    "nodekey:0123456789abcdef00000000000000000000000000000000000000"
	    "00000000ff");
	assert_int_equal(num(j, "Conn"), 42);
	assert_int_equal(num(j, "Worker"), 1);
	assert_string_equal(json_string_value(json_object_get(j, "Addr")),
	    "127.0.0.1:5555");
	assert_true(json_is_false(json_object_get(j, "Mesh")));
	assert_int_equal(num(j, "RecvPackets"), 10);
	assert_int_equal(num(j, "RecvBytes"), 1000);
	assert_int_equal(num(j, "RecvWireBytes"), 1500);
	assert_int_equal(num(j, "SentPackets"), 20);
	assert_int_equal(num(j, "SentBytes"), 2000);
	assert_int_equal(num(j, "SentWireBytes"), 2600);
	assert_int_equal(num(j, "Drops"), 3);
	/* Go's field names: wire bytes, as its ss(8)-based page. */
	assert_int_equal(num(j, "Sent"), 2600);
	assert_int_equal(num(j, "Recv"), 1500);
	assert_int_equal(num(j, "UniqueSenders"), 2);
	assert_int_equal(num(j, "ConnectedSec"), 7);
	/* Live view: no time, no delta, no link fields. */
	assert_null(json_object_get(j, "Time"));
	assert_null(json_object_get(j, "Delta"));
	assert_null(json_object_get(j, "Link"));
	json_decref(j);
}

static void
test_traffic_dump_delta_and_time(void **state)
{
	struct traffic_rec	r = { 0 };
	struct traffic_ctr	then = { .recv_packets = 4, .recv_bytes = 400,
				    .recv_wire = 500, .sent_packets = 5,
				    .sent_bytes = 600, .sent_wire = 700 };
	struct traffic_ctr	d;
	char			line[TRAFFIC_LINE_MAX];
	json_t			*j, *dj;

	(void)state;
	r.key = KEY;
	r.conn = 3;
	r.link = -1;
	r.addr = "[::1]:80";
	r.mesh = true;
	r.closed = true;
	r.tot = (struct traffic_ctr){ .recv_packets = 10, .recv_bytes = 1000,
	    .recv_wire = 1500, .sent_packets = 20, .sent_bytes = 2000,
	    .sent_wire = 2600, .drops = 1 };
	assert_false(traffic_equal(&r.tot, &then));
	traffic_sub(&d, &r.tot, &then);
	assert_true(traffic_equal(&r.tot, &r.tot));
	r.delta = &d;
	r.time_ms = 1764614562123LL;	/* 2025-12-01T18:42:42.123Z */
	j = parse_line(line, traffic_format(line, sizeof(line), &r));
	assert_string_equal(json_string_value(json_object_get(j, "Time")),
	    "2025-12-01T18:42:42.123Z");
	assert_true(json_is_true(json_object_get(j, "Closed")));
	assert_true(json_is_true(json_object_get(j, "Mesh")));
	assert_int_equal(num(j, "RecvPackets"), 10);
	dj = json_object_get(j, "Delta");
	assert_true(json_is_object(dj));
	assert_int_equal(num(dj, "RecvPackets"), 6);
	assert_int_equal(num(dj, "RecvBytes"), 600);
	assert_int_equal(num(dj, "RecvWireBytes"), 1000);
	assert_int_equal(num(dj, "SentPackets"), 15);
	assert_int_equal(num(dj, "SentBytes"), 1400);
	assert_int_equal(num(dj, "SentWireBytes"), 1900);
	assert_int_equal(num(dj, "Drops"), 1);
	json_decref(j);
}

static void
test_traffic_link_line_escapes_peer(void **state)
{
	struct traffic_rec	r = { 0 };
	char			line[TRAFFIC_LINE_MAX];
	json_t			*j;

	(void)state;
	r.key = NULL;		/* not connected yet: no key */
	r.link = 2;
	r.worker = 0;
	r.addr = "";
	r.peer = "evil\"host\\\x01\"}";
	r.mesh = true;
	r.up = false;
	r.tot.sent_packets = 9;
	r.tot.sent_bytes = 900;
	r.tot.drops = 4;
	r.time_ms = -1;
	j = parse_line(line, traffic_format(line, sizeof(line), &r));
	assert_null(json_object_get(j, "Key"));
	assert_null(json_object_get(j, "Conn"));
	assert_null(json_object_get(j, "UniqueSenders"));
	assert_int_equal(num(j, "Link"), 2);
	assert_true(json_is_false(json_object_get(j, "Up")));
	assert_string_equal(json_string_value(json_object_get(j, "Peer")),
	    "evil\"host\\\x01\"}");
	assert_int_equal(num(j, "SentPackets"), 9);
	assert_int_equal(num(j, "Drops"), 4);
	json_decref(j);
	/* Not UTF-8: replaced, never copied raw. */
	r.peer = "bad\xff\xfe";
	j = parse_line(line, traffic_format(line, sizeof(line), &r));
	assert_string_equal(json_string_value(json_object_get(j, "Peer")),
	    "?");
	json_decref(j);
}

static void
test_traffic_line_bounded(void **state)
{
	struct traffic_rec	r = { 0 };
	struct traffic_ctr	d;
	char			line[TRAFFIC_LINE_MAX];
	char			small[40];
	char			peer[256];

	(void)state;
	/* The worst name: 255 control bytes, 6 bytes each escaped. */
	memset(peer, 0x01, sizeof(peer) - 1);
	peer[sizeof(peer) - 1] = '\0';
	/* The largest line there is: every number at its maximum. */
	r.key = KEY;
	r.conn = UINT64_MAX;
	r.worker = 255;
	r.link = 15;
	r.addr = "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535";
	r.peer = peer;
	r.connected_s = UINT64_MAX;
	memset(&r.tot, 0xff, sizeof(r.tot));
	memset(&d, 0xff, sizeof(d));
	r.delta = &d;
	r.closed = true;
	r.time_ms = 253402300799999LL;	/* 9999-12-31T23:59:59.999 */
	assert_true(traffic_format(line, sizeof(line), &r) > 0);
	assert_int_equal(traffic_format(small, sizeof(small), &r), -ENOSPC);
	assert_int_equal(traffic_format(small, 0, &r), -ENOSPC);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_traffic_conn_line),
		cmocka_unit_test(test_traffic_dump_delta_and_time),
		cmocka_unit_test(test_traffic_link_line_escapes_peer),
		cmocka_unit_test(test_traffic_line_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

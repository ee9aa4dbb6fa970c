/*
 * Unit tests for conf/conf.c: defaults, the shipped example, every error
 * class with its file:line, dev mode, host:port parsing, restart rules.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include <cmocka.h>

#include "conf/conf.h"

static void
expect_error(const char *text, const char *needle)
{
	struct config	c;
	char		err[512] = "";

	assert_int_equal(conf_parse_string(text, "t.conf", &c, err,
	    sizeof(err)), -EINVAL);
	if (strstr(err, needle) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", err, needle);
}

static void
test_conf_defaults(void **state)
{
	struct config	c;
	char		err[256];

	(void)state;
	assert_int_equal(conf_parse_string("", "t.conf", &c, err, sizeof(err)),
	    0);
	assert_string_equal(c.listen_https, "[::]:443");
	assert_int_equal(c.keepalive_ms, 60000);
	assert_int_equal(c.queue_packets, 32);
	assert_int_equal(c.log_level, LOG_INFO);
	assert_int_equal(c.log_conn_burst, 50);
	assert_int_equal(c.log_conn_rate, 10);
	assert_int_equal(c.workers, 0);
	assert_false(c.dev);
}

static void
test_conf_example_file_loads(void **state)
{
	struct config	c;
	char		err[256] = "";

	(void)state;
	if (conf_load("conf/derpd.conf", &c, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_string_equal(c.hostname, "derp.example.net");
	assert_int_equal(c.mesh_npeers, 0);
}

static void
test_conf_full_values(void **state)
{
	struct config	c;
	char		err[256] = "";
	const char	*t =
	    "hostname = \"a.b\";\nworkers = 4;\n"
	    "listen = { https = \"127.0.0.1:8443\"; http = \"\"; "
	    "stun = \"[::1]:3478\"; };\n"
	    "log = { level = \"debug\"; conn_burst = 7; conn_rate = 0; };\n"
	    "derp = { keepalive_ms = 200; queue_packets = 8; };\n"
	    "mesh = { psk_file = \"/x\"; peers = (\"b.c\", \"d.e:8443/10.0.0.3\")"
	    "; insecure_skip_verify = true; };\n"
	    "stun = { any_client = true; };\nhome = \"blank\";\n";

	(void)state;
	if (conf_parse_string(t, "t.conf", &c, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(c.workers, 4);
	assert_string_equal(c.listen_http, "");
	assert_int_equal(c.log_level, LOG_DEBUG);
	assert_int_equal(c.log_conn_burst, 7);
	assert_int_equal(c.log_conn_rate, 0);
	assert_int_equal(c.keepalive_ms, 200);
	assert_int_equal(c.mesh_npeers, 2);
	assert_string_equal(c.mesh_peers[1], "d.e:8443/10.0.0.3");
	assert_true(c.mesh_insecure);
	assert_true(c.stun_any_client);
	assert_string_equal(c.tls_record_layer, "derpd");	/* default */
	if (conf_parse_string("tls = { record_layer = \"kernel\"; };\n",
	    "t.conf", &c, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_string_equal(c.tls_record_layer, "kernel");
	assert_int_equal(c.tls_key_update_records, 1 << 24);	/* default */
	if (conf_parse_string("tls = { key_update_records = 64; };\n",
	    "t.conf", &c, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(c.tls_key_update_records, 64);
}

static void
test_conf_errors_have_lines(void **state)
{
	(void)state;
	expect_error("\n\nbogus = 1;\n", "t.conf:3: unknown setting \"bogus\"");
	expect_error("derp = {\n  nope = 1;\n};\n",
	    "t.conf:2: unknown setting \"derp.nope\"");
	expect_error("workers = \"4\";\n", "t.conf:1: \"workers\" must be an "
	    "integer");
	expect_error("\nworkers = 999;\n", "t.conf:2: \"workers\" is out of "
	    "range (0..256)");
	expect_error("derp = { queue_bytes = 10; };\n", "out of range");
	expect_error("home = \"ftp://x\";\n", "t.conf:1: \"home\" must be");
	expect_error("listen = { https = \"nope\"; };\n",
	    "t.conf:1: \"listen.https\": bad address");
	expect_error("listen = { https = \"1.2.3.4:0\"; };\n", "bad address");
	expect_error("mesh = { psk_file = \"/p\"; peers = (\"a/b/c\"); };\n",
	    "\"mesh.peers\": bad entry \"a/b/c\" (host[:port]");
	expect_error("mesh = {\n peers = (\"a\"); };\n",
	    "t.conf:2: \"mesh.peers\" requires \"mesh.psk_file\"");
	expect_error("mesh = { psk_file = \"/p\"; peers = (\"a\",\"b\",\"c\","
	    "\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\",\"l\",\"m\",\"n\","
	    "\"o\",\"p\",\"q\"); };\n", "too many");
	expect_error("stun = { any_client = 1; };\n", "true or false");
	expect_error("log = { level = \"loud\"; };\n", "unknown level");
	expect_error("log = { conn_burst = 0; };\n", "t.conf:1: "
	    "\"log.conn_burst\" is out of range (1..100000)");
	expect_error("log = { conn_rate = -1; };\n", "out of range");
	expect_error("tls = { record_layer = \"ktls\"; };\n",
	    "t.conf:1: \"tls.record_layer\" must be \"derpd\", "
	    "\"kernel\" or \"openssl\", not \"ktls\"");
	expect_error("tls = { key_update_records = 63; };\n",
	    "t.conf:1: \"tls.key_update_records\" is out of range "
	    "(64..16777216)");
	expect_error("tls = { key_update_records = 16777217; };\n",
	    "out of range");
	expect_error("workers = ;\n", "t.conf:1:");
	expect_error("listen = 5;\n", "must be a group");
	expect_error("listen = { https = \"\"; http = \"\"; };\n",
	    "no listener");
}

/* bootstrap_dns uses the generic string-list type: entries checked one
 * by one with their own line, a cap, and a count field. */
static void
test_conf_bootstrap_dns_lists(void **state)
{
	struct config	c;
	char		err[256] = "";
	const char	*t =
	    "bootstrap_dns = {\n names = ( \"controlplane.example.com\", "
	    "\"login.example.com\" );\n"
	    " unpublished = ( \"log.example.com\", \"x.example.com/"
	    "_rollout.example.com\" );\n refresh_s = 30;\n"
	    " txt_resolver = \"127.0.0.1:5353\";\n};\n";

	(void)state;
	if (conf_parse_string(t, "t.conf", &c, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(c.bootdns_nnames, 2);
	assert_string_equal(c.bootdns_names[1], "login.example.com");
	assert_int_equal(c.bootdns_nunpub, 2);
	assert_string_equal(c.bootdns_unpublished[1],
	    "x.example.com/_rollout.example.com");
	assert_int_equal(c.bootdns_refresh_s, 30);
	assert_string_equal(c.bootdns_txt_resolver, "127.0.0.1:5353");
	assert_int_equal(conf_parse_string("", "t.conf", &c, err, sizeof(err)),
	    0);
	assert_int_equal(c.bootdns_nnames, 0);
	assert_int_equal(c.bootdns_refresh_s, 600);
	expect_error("bootstrap_dns = {\n names = ( \"ok.example\",\n"
	    " \"bad name\" ); };\n", "t.conf:3: \"bootstrap_dns.names\": bad "
	    "entry \"bad name\" (a DNS name)");
	expect_error("bootstrap_dns = { names = ( \"a/b\" ); };\n",
	    "bad entry");
	expect_error("bootstrap_dns = { unpublished = ( \"a/b/c\" ); };\n",
	    "(name or name/txtname)");
	expect_error("bootstrap_dns = { unpublished = ( \"a/\" ); };\n",
	    "bad entry");
	expect_error("bootstrap_dns = { names = ( 1 ); };\n",
	    "must be a list of strings");
	expect_error("bootstrap_dns = { names = \"a\"; };\n",
	    "must be a list of strings");
	expect_error("bootstrap_dns = { names = (\"a\",\"b\",\"c\",\"d\","
	    "\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\",\"l\",\"m\",\"n\","
	    "\"o\",\"p\",\"q\"); };\n", "too many");
	expect_error("bootstrap_dns = { txt_resolver = \"dns.example:53\"; "
	    "};\n", "\"bootstrap_dns.txt_resolver\": bad address");
	expect_error("bootstrap_dns = { refresh_s = 0; };\n", "out of range");
}

static void
test_conf_missing_file(void **state)
{
	struct config	c;
	char		err[256];

	(void)state;
	assert_int_equal(conf_load("/nonexistent/derpd.conf", &c, err,
	    sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/derpd.conf"));
}

static void
test_conf_dev(void **state)
{
	struct config	c;

	(void)state;
	conf_dev(&c);
	assert_true(c.dev);
	assert_string_equal(c.listen_https, "");
	assert_string_equal(c.listen_http, "127.0.0.1:3340");
	assert_string_equal(c.listen_stun, "127.0.0.1:3478");
	assert_string_equal(c.node_key_file, "");
	assert_int_equal(c.workers, 1);
}

static void
test_conf_split_hostport(void **state)
{
	char		h[64];
	uint16_t	p;

	(void)state;
	assert_int_equal(conf_split_hostport("[::]:443", h, sizeof(h), &p), 0);
	assert_string_equal(h, "::");
	assert_int_equal(p, 443);
	assert_int_equal(conf_split_hostport(":80", h, sizeof(h), &p), 0);
	assert_string_equal(h, "");
	assert_int_equal(conf_split_hostport("127.0.0.1:3340", h, sizeof(h),
	    &p), 0);
	assert_int_equal(p, 3340);
	assert_int_equal(conf_split_hostport("x", h, sizeof(h), &p), -EINVAL);
	assert_int_equal(conf_split_hostport("::1:5", h, sizeof(h), &p),
	    -EINVAL);
	assert_int_equal(conf_split_hostport("[zz]:5", h, sizeof(h), &p),
	    -EINVAL);
	assert_int_equal(conf_split_hostport("a:65536", h, sizeof(h), &p),
	    -EINVAL);
	assert_int_equal(conf_split_hostport("a:5x", h, sizeof(h), &p),
	    -EINVAL);
	assert_int_equal(conf_split_hostport("a:", h, sizeof(h), &p), -EINVAL);
}

static void
test_conf_restart_needed(void **state)
{
	struct config	a, b;
	char		err[256];

	(void)state;
	assert_int_equal(conf_parse_string("listen = { https = \":443\"; };",
	    "a", &a, err, sizeof(err)), 0);
	b = a;
	assert_null(conf_restart_needed(&a, &b));
	b.keepalive_ms = 1000;
	snprintf(b.tls_certificate, sizeof(b.tls_certificate), "/new.pem");
	assert_null(conf_restart_needed(&a, &b));
	assert_int_equal(conf_parse_string("listen = { https = \":8443\"; };",
	    "b", &b, err, sizeof(err)), 0);
	assert_string_equal(conf_restart_needed(&a, &b), "listen.https");
}

static void
test_conf_traffic(void **state)
{
	struct config	a, b;
	char		err[256];

	(void)state;
	conf_defaults(&a);
	assert_string_equal(a.traffic_dump_file, "");
	assert_int_equal(a.traffic_interval_s, 60);
	assert_int_equal(a.traffic_max_entries, 10000);
	assert_int_equal(conf_parse_string("listen = { https = \":443\"; };\n"
	    "traffic = { dump_file = \"/var/log/t.jsonl\"; interval_s = 1; "
	    "max_entries = 3; };", "t", &b, err, sizeof(err)), 0);
	assert_string_equal(b.traffic_dump_file, "/var/log/t.jsonl");
	assert_int_equal(b.traffic_interval_s, 1);
	assert_int_equal(b.traffic_max_entries, 3);
	assert_int_equal(conf_parse_string("listen = { https = \":443\"; };",
	    "a", &a, err, sizeof(err)), 0);
	assert_null(conf_restart_needed(&a, &b));	/* all reloadable */
	assert_int_equal(conf_parse_string("traffic = { interval_s = 0; };",
	    "t", &b, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "t:1: \"traffic.interval_s\" is out of "
	    "range"));
	assert_int_equal(conf_parse_string("traffic = { max_entries = 0; };",
	    "t", &b, err, sizeof(err)), -EINVAL);
	assert_int_equal(conf_parse_string("traffic = { dump = \"x\"; };",
	    "t", &b, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown setting"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conf_defaults),
		cmocka_unit_test(test_conf_example_file_loads),
		cmocka_unit_test(test_conf_full_values),
		cmocka_unit_test(test_conf_errors_have_lines),
		cmocka_unit_test(test_conf_bootstrap_dns_lists),
		cmocka_unit_test(test_conf_missing_file),
		cmocka_unit_test(test_conf_dev),
		cmocka_unit_test(test_conf_split_hostport),
		cmocka_unit_test(test_conf_restart_needed),
		cmocka_unit_test(test_conf_traffic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

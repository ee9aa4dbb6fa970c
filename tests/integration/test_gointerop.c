/*
 * derpd against Go's crypto/tls and net/http, the stacks Tailscale's
 * clients are built on: tests/interop/go/derpgo (built by make tests
 * with Debian's Go) relays through the real daemon, fast start from
 * the meta-certificate as parsed by Go's x509, the 101 path and TLS
 * 1.2, pings and PeerGone, and fetches the probe and captive-portal
 * endpoints; with derpd's record layer (its own KeyUpdates brought
 * early by tls.key_update_records), "openssl" and "kernel".
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
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "derp/key.h"
#include "harness.h"
#include "tests/kernel_tls.h"

#define OFFLOADED	"derpd_tls_record_offload{result=\"offloaded\"}"
#define KERNEL		"derpd_tls_record_offload{result=\"kernel\"}"
#define TLS12		"derpd_tls_record_offload{result=\"tls12\"}"
#define OTHER		"derpd_tls_record_offload{result=\"other\"}"
#define KU_SENT		"derpd_tls_key_updates_sent"
#define KU_RECEIVED	"derpd_tls_key_updates_received"
/* What derpgo's relay mode sends: one packet A to B before A read
 * ServerInfo, 10 sizes between A and B both ways and between A and C,
 * then -bulk 64 KiB packets each way. */
#define RELAY_SIZES	10
#define RELAY_PACKETS(bulk)	(1 + 4 * RELAY_SIZES + 2 * (bulk))

static const char *
derpgo_bin(void)
{
	const char	*bin = getenv("DERPGO_BIN");

	bin = bin != NULL ? bin : "build/derpgo";
	if (access(bin, X_OK) != 0)
		fail_msg("%s is missing: make tests (needs golang-go and "
		    "golang-golang-x-crypto-dev)", bin);
	return bin;
}

static FILE *
derpgo_open(const struct node *n, const char *args)
{
	char	 cmd[2048];
	FILE	*p;

	assert_true((size_t)snprintf(cmd, sizeof(cmd), "timeout %d %s -addr "
	    "127.0.0.1:%u -ca '%s' -timescale %d %s 2>&1",
	    time_scaled(120), derpgo_bin(), n->port, n->cert,
	    time_scaled(1000) / 1000, args) < sizeof(cmd));
	assert_non_null(p = popen(cmd, "r"));
	return p;
}

/* The rest of derpgo's output: its exit status, and the JSON object of
 * its last line (the caller frees it). */
static int
derpgo_close(FILE *p, const char *args, json_t **res)
{
	static char	 out[65536];
	char		*line;
	json_error_t	 jerr;
	size_t		 len;
	int		 st;

	len = fread(out, 1, sizeof(out) - 1, p);
	out[len] = '\0';
	st = pclose(p);
	while (len > 0 && out[len - 1] == '\n')
		out[--len] = '\0';
	line = strrchr(out, '\n');
	line = line != NULL ? line + 1 : out;
	*res = json_loads(line, 0, &jerr);
	if (*res == NULL || !json_is_object(*res))
		fail_msg("derpgo %s: no JSON line:\n%s", args, out);
	if (!WIFEXITED(st))
		fail_msg("derpgo %s: killed:\n%s", args, out);
	return WEXITSTATUS(st);
}

static int
derpgo(const struct node *n, const char *args, json_t **res)
{
	return derpgo_close(derpgo_open(n, args), args, res);
}

static void
expect_ok(const struct node *n, const char *args, json_t **res)
{
	if (derpgo(n, args, res) != 0 ||
	    !json_is_true(json_object_get(*res, "ok")))
		fail_msg("derpgo %s: %s", args, json_string_value(
		    json_object_get(*res, "error")));
}

static long
jint(const json_t *o, const char *k)
{
	const json_t	*v = json_object_get(o, k);

	if (!json_is_integer(v))
		fail_msg("\"%s\" is not an integer", k);
	return (long)json_integer_value(v);
}

static const char *
jstr(const json_t *o, const char *k)
{
	const json_t	*v = json_object_get(o, k);

	if (!json_is_string(v))
		fail_msg("\"%s\" is not a string", k);
	return json_string_value(v);
}

/* The node's public key as 64 hex, from its key file. */
static void
node_key_hex(const struct node *n, char out[DERP_KEY_HEX_LEN + 1])
{
	uint8_t	priv[DERP_KEY_LEN], pub[DERP_KEY_LEN];
	char	path[320];

	assert_int_equal(derp_crypto_init(), 0);
	snprintf(path, sizeof(path), "%s/derpd.key", n->dir);
	assert_int_equal(derp_keyfile_load(path, false, priv), 0);
	assert_int_equal(derp_key_public(pub, priv), 0);
	derp_key_format_hex(out, pub);
}

/* A TLS node with record_layer layer and key_update_records ku (0 =
 * the default), and more config. */
static struct node *
start_more(const char *layer, int ku, const char *more)
{
	struct node	*n = node_new();
	char		 extra[1024], kus[64] = "";

	node_make_cert(n);
	if (ku > 0)
		snprintf(kus, sizeof(kus), " key_update_records = %d;", ku);
	assert_true((size_t)snprintf(extra, sizeof(extra), "tls = { "
	    "certificate = \"%s\"; private_key = \"%s/key.pem\"; "
	    "record_layer = \"%s\";%s };\n%s", n->cert, n->dir, layer, kus,
	    more) < sizeof(extra));
	return node_start_in(n, true, extra);
}

static struct node *
start(const char *layer, int ku)
{
	return start_more(layer, ku, "");
}

/* What every relay run must show, whatever the record layer. */
static void
check_relay(const struct node *n, const json_t *r, int bulk)
{
	const json_t	*meta = json_object_get(r, "meta");
	const json_t	*fs = json_object_get(r, "fast_start");
	char		 key[DERP_KEY_HEX_LEN + 1];
	const char	*flags[] = { "found", "ed25519", "self_signed_ok",
		"basic_constraints_critical_ca_false", "no_ski_aki",
		"valid_now", "last_in_chain" };
	size_t		 i;

	assert_string_equal(jstr(r, "tls"), "1.3");
	/* derpd prefers AES-128-GCM; Go offers all three. */
	assert_string_equal(jstr(r, "cipher"), "TLS_AES_128_GCM_SHA256");
	assert_non_null(strstr(jstr(r, "tls12_cipher"), "ECDHE_ECDSA"));
	/* Go's x509 took the meta-cert, and it names derpd's own key. */
	assert_true(json_is_object(meta));
	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (!json_is_true(json_object_get(meta, flags[i])))
			fail_msg("meta-cert: %s is not true", flags[i]);
	node_key_hex(n, key);
	assert_string_equal(jstr(meta, "key"), key);
	assert_int_equal(jint(meta, "serial"), 2);
	/* A took fast start, B (101) and C (TLS 1.2) did not. */
	assert_int_equal(json_array_size(fs), 3);
	assert_true(json_is_true(json_array_get(fs, 0)));
	assert_true(json_is_false(json_array_get(fs, 1)));
	assert_true(json_is_false(json_array_get(fs, 2)));
	assert_string_equal(jstr(r, "server_info"), "{\"version\":2}");
	assert_int_equal(jint(r, "packets"), RELAY_PACKETS(bulk));
	/* A's before ServerInfo, one each, A's after the traffic. */
	assert_int_equal(jint(r, "pongs"), 5);
	assert_int_equal(jint(r, "peer_gone_reason"), 0);
	assert_true(node_log_wait(n, "fast_start=1", 5000));
	assert_int_equal(node_log_count(n, "fast_start=1"), 1);
	assert_int_equal(node_log_count(n, "fast_start=0"), 2);
	assert_int_equal(node_metric(n, TLS12), 1);
	/* Go never starts a KeyUpdate of its own. */
	assert_int_equal(node_metric(n, KU_RECEIVED), 0);
}

/* derpd's record layer, re-keying every 64 records: Go follows each of
 * derpd's KeyUpdates in the middle of 64 KiB packets. */
static void
test_gointerop_relay_derpd_key_updates(void **state)
{
	struct node	*n;
	json_t		*r;

	(void)state;
	n = start("derpd", 64);
	expect_ok(n, "-mode relay -bulk 100", &r);
	check_relay(n, r, 100);
	/* The self-signed leaf and the meta-cert; Go verified the leaf
	 * alone, as its own root. */
	assert_int_equal(jint(r, "peer_certs"), 2);
	assert_int_equal(jint(r, "verified_chain"), 1);
	/* A and B each took some 7 MB: over 400 records, 6 KeyUpdates. */
	assert_true(node_metric(n, KU_SENT) >= 10);
	/* A's request and ClientInfo right behind Go's Finished did not
	 * keep the connection with OpenSSL. */
	assert_true(node_metric(n, OFFLOADED) >= 2);
	assert_int_equal(node_metric(n, OTHER), 0);
	json_decref(r);
	node_stop(n);
	node_free(n);
}

/* The default: no KeyUpdate of derpd's in a session this short. */
static void
test_gointerop_relay_derpd_default(void **state)
{
	struct node	*n;
	json_t		*r;

	(void)state;
	n = start("derpd", 0);
	expect_ok(n, "-mode relay -bulk 20", &r);
	check_relay(n, r, 20);
	assert_int_equal(node_metric(n, KU_SENT), 0);
	json_decref(r);
	node_stop(n);
	node_free(n);
}

static void
test_gointerop_relay_openssl(void **state)
{
	struct node	*n;
	json_t		*r;

	(void)state;
	n = start("openssl", 64);	/* not derpd's: no effect */
	expect_ok(n, "-mode relay -bulk 20", &r);
	check_relay(n, r, 20);
	assert_int_equal(node_metric(n, OFFLOADED), 0);
	assert_int_equal(node_metric(n, KU_SENT), 0);
	json_decref(r);
	node_stop(n);
	node_free(n);
}

/* The kernel's records where it has kTLS, else derpd's. */
static void
test_gointerop_relay_kernel(void **state)
{
	struct node	*n;
	json_t		*r;

	(void)state;
	n = start("kernel", 0);
	expect_ok(n, "-mode relay -bulk 20", &r);
	check_relay(n, r, 20);
	assert_true(node_metric(n, kernel_has_tls_ulp() ? KERNEL : OFFLOADED)
	    >= 2);
	assert_int_equal(node_metric(n, OTHER), 0);
	json_decref(r);
	node_stop(n);
	node_free(n);
}

/* net/http over TLS: netcheck's probes and the captive-portal check on
 * one kept-alive connection, the check again on the port-80 listener;
 * with either record layer. */
static void
test_gointerop_http(void **state)
{
	const char	*layers[] = { "derpd", "openssl" };
	struct node	*n;
	json_t		*r;
	char		 args[128];
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(layers) / sizeof(layers[0]); i++) {
		n = start(layers[i], 64);
		snprintf(args, sizeof(args), "-mode http -http 127.0.0.1:%u",
		    n->http_port);
		expect_ok(n, args, &r);
		assert_string_equal(jstr(r, "tls"), "1.3");
		assert_int_equal(jint(r, "requests"), 7);
		assert_int_equal(jint(r, "reused"), 6);
		assert_int_equal(jint(r, "plain_requests"), 1);
		json_decref(r);
		node_stop(n);
		node_free(n);
	}
}

/* The shape of a public certificate: leaf and intermediate in the
 * file, the meta-cert after them; Go verifies to the root alone, with
 * the meta-cert among the intermediates it was given. */
static void
test_gointerop_ca_chain(void **state)
{
	struct node	*n = node_new();
	json_t		*r;
	char		 cmd[2560], args[400], extra[128];
	const char	*ec =
	    "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

	(void)state;
	assert_true((size_t)snprintf(cmd, sizeof(cmd), "(cd '%s' && "
	    "openssl req -x509 %s -keyout root.key -out root.pem -days 2 "
	    "-subj /CN=gointerop-root -addext basicConstraints=critical,"
	    "CA:TRUE -addext keyUsage=critical,keyCertSign && "
	    "openssl req %s -keyout int.key -out int.csr "
	    "-subj /CN=gointerop-intermediate && "
	    "printf 'basicConstraints=critical,CA:TRUE,pathlen:0\n"
	    "keyUsage=critical,keyCertSign\n' > int.ext && "
	    "openssl x509 -req -in int.csr -CA root.pem -CAkey root.key "
	    "-CAcreateserial -out int.pem -days 2 -extfile int.ext && "
	    "openssl req %s -keyout key.pem -out leaf.csr -subj /CN=localhost "
	    "&& printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n"
	    "extendedKeyUsage=serverAuth\n' > leaf.ext && "
	    "openssl x509 -req -in leaf.csr -CA int.pem -CAkey int.key "
	    "-CAcreateserial -out leaf.pem -days 2 -extfile leaf.ext && "
	    "cat leaf.pem int.pem > cert.pem) 2>/dev/null", n->dir, ec, ec, ec)
	    < sizeof(cmd));
	assert_int_equal(system(cmd), 0);
	snprintf(n->cert, sizeof(n->cert), "%s/cert.pem", n->dir);
	/* Metrics in the clear: the harness's client trusts n->cert. */
	n->metrics_port = free_tcp_port();
	snprintf(extra, sizeof(extra), "metrics = { listen = "
	    "\"127.0.0.1:%u\"; };\n", n->metrics_port);
	node_start_in(n, true, extra);
	/* derpgo takes the last -ca given: the root, not n->cert. */
	snprintf(args, sizeof(args), "-mode relay -ca '%s/root.pem'", n->dir);
	expect_ok(n, args, &r);
	check_relay(n, r, 0);
	assert_int_equal(jint(r, "peer_certs"), 3);
	assert_int_equal(jint(r, "verified_chain"), 3);
	json_decref(r);
	node_stop(n);
	node_free(n);
}

/* Go sends no SNI for an IP literal and is served (the certificate has
 * the IP); a name that is not derpd's hostname gets the alert Go
 * reports as such. */
static void
test_gointerop_sni(void **state)
{
	struct node	*n;
	json_t		*r;

	(void)state;
	n = start("derpd", 0);
	expect_ok(n, "-mode relay -servername 127.0.0.1", &r);
	check_relay(n, r, 0);
	json_decref(r);
	assert_int_equal(derpgo(n, "-mode relay -servername other.example",
	    &r), 1);
	assert_true(json_is_false(json_object_get(r, "ok")));
	assert_non_null(strstr(jstr(r, "error"), "tls: unrecognized name"));
	json_decref(r);
	node_stop(n);
	node_free(n);
}

/* An idle Go client gets KeepAlives; when derpd stops, the Restarting
 * frame, then an orderly end of the TLS stream (io.EOF, not a record
 * error), from either record layer. */
static void
test_gointerop_keepalive_and_stop(void **state)
{
	const char	*layers[] = { "derpd", "openssl" };
	struct node	*n;
	json_t		*r;
	FILE		*p;
	char		 line[256];
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(layers) / sizeof(layers[0]); i++) {
		n = start_more(layers[i], 0, "derp = { keepalive_ms = 100; "
		    "restart_reconnect_ms = 1234; restart_try_for_ms = 4321; "
		    "};\n");
		p = derpgo_open(n, "-mode hold -keepalives 3");
		if (fgets(line, sizeof(line), p) == NULL ||
		    strcmp(line, "{\"ready\":true}\n") != 0) {
			(void)derpgo_close(p, "-mode hold", &r);
			fail_msg("derpgo -mode hold: %s", json_string_value(
			    json_object_get(r, "error")));
		}
		node_stop(n);
		if (derpgo_close(p, "-mode hold", &r) != 0)
			fail_msg("derpgo -mode hold (%s): %s", layers[i],
			    json_string_value(json_object_get(r, "error")));
		assert_true(jint(r, "keepalives") >= 3);
		assert_int_equal(jint(r, "reconnect_in_ms"), 1234);
		assert_int_equal(jint(r, "try_for_ms"), 4321);
		assert_string_equal(jstr(r, "end"), "EOF");
		json_decref(r);
		node_free(n);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gointerop_relay_derpd_key_updates),
		cmocka_unit_test(test_gointerop_relay_derpd_default),
		cmocka_unit_test(test_gointerop_relay_openssl),
		cmocka_unit_test(test_gointerop_relay_kernel),
		cmocka_unit_test(test_gointerop_http),
		cmocka_unit_test(test_gointerop_ca_chain),
		cmocka_unit_test(test_gointerop_sni),
		cmocka_unit_test(test_gointerop_keepalive_and_stop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

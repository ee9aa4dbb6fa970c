/*
 * Secrets never leave derpd (issue 9): two TLS nodes meshed with a PSK,
 * log.level = "debug", clients, a mesh-key watcher, a wrong mesh key,
 * every HTTP page (debug ones included), the traffic dump, a reload and
 * a stop; then derpd's whole output (both logs, the traffic dump, every
 * HTTP response) is searched for the node private keys, the PSK, the
 * clients' private keys and the X25519 shared secrets of each client
 * and mesh pair, as hex (either case), base64 (standard and URL-safe,
 * padded or not) and raw bytes, and for the "privkey:" text form.  A
 * node key or PSK file others can read is reported (path and mode).
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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "derp/key.h"
#include "harness.h"

#define PSK	"c0ffee54e8a4747af1bbc2f421ad3c8aca9e0416cc60a7102983692f34d15ec7"
#define NSEC	16
#define OUT_CAP	(8u << 20)

struct secret {
	const char	*what;
	uint8_t		 k[DERP_KEY_LEN];
};

static char	*out;		/* everything derpd said or served */
static size_t	 outlen;

static void
collect(const void *p, size_t n)
{
	if (outlen + n > OUT_CAP)
		fail_msg("collected output over %u bytes", OUT_CAP);
	memcpy(out + outlen, p, n);
	outlen += n;
}

static void
collect_file(const char *path)
{
	char	buf[65536];
	size_t	n;
	FILE	*f = fopen(path, "r");

	if (f == NULL)
		fail_msg("cannot read %s", path);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		collect(buf, n);
	fclose(f);
}

static void
get_all(const struct node *n)
{
	static const char *const paths[] = { "/", "/debug/", "/debug/varz",
	    "/debug/traffic", "/metrics", "/derp/probe",
	    "/derp/latency-check", "/generate_204", "/robots.txt",
	    "/bootstrap-dns?q=localhost", "/derp", "/nonexistent" };
	struct client_opts	 o;
	static char		 resp[1 << 20];
	size_t			 i;
	int			 st, plain;

	for (plain = 0; plain < 2; plain++)
		for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
			node_opts(n, &o);
			if (plain) {
				o.tls = false;
				o.port = n->http_port;
			}
			st = client_http_get(&o, "GET", paths[i], NULL, resp,
			    sizeof(resp));
			assert_true(st >= 100);
			collect(resp, strlen(resp));
		}
}

static bool
found(const char *needle, size_t n)
{
	return memmem(out, outlen, needle, n) != NULL;
}

static void
assert_absent(const struct secret *s)
{
	char	hex[DERP_KEY_HEX_LEN + 1], b64[64];
	int	variants[] = { sodium_base64_VARIANT_ORIGINAL,
		    sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
		    sodium_base64_VARIANT_URLSAFE,
		    sodium_base64_VARIANT_URLSAFE_NO_PADDING };
	size_t	i;

	if (found((const char *)s->k, DERP_KEY_LEN))
		fail_msg("%s: raw bytes in derpd's output", s->what);
	derp_key_format_hex(hex, s->k);
	/* Half a key is enough to worry about. */
	if (found(hex, 32) || found(hex + 32, 32))
		fail_msg("%s: hex in derpd's output", s->what);
	for (i = 0; i < DERP_KEY_HEX_LEN; i++)
		if (hex[i] >= 'a')
			hex[i] = (char)(hex[i] - 'a' + 'A');
	if (found(hex, 32) || found(hex + 32, 32))
		fail_msg("%s: upper-case hex in derpd's output", s->what);
	for (i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		sodium_bin2base64(b64, sizeof(b64), s->k, DERP_KEY_LEN,
		    variants[i]);
		if (found(b64, 24))
			fail_msg("%s: base64 in derpd's output", s->what);
	}
}

static void
write_psk(const struct node *n, char *path, size_t cap, mode_t mode)
{
	FILE	*f;

	snprintf(path, cap, "%s/mesh.psk", n->dir);
	assert_non_null(f = fopen(path, "w"));
	fprintf(f, "%s\n", PSK);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static struct client *
mesh_client(const struct node *n, const char *psk, bool watch)
{
	struct client_opts	 o;
	struct client		*c;
	int			 err;

	node_opts(n, &o);
	o.info.can_ack_pings = false;
	assert_int_equal(derp_psk_parse(psk, strlen(psk), o.info.mesh_key), 0);
	o.info.has_mesh_key = true;
	o.watch_conns = watch;
	assert_non_null(c = client_connect(&o, &err));
	return c;
}

static void
test_secrets_never_logged_or_served(void **state)
{
	struct node		*a = node_new(), *b = node_new();
	struct secret		 sec[NSEC];
	struct client		*ca, *cb, *w, *bad;
	struct client_msg	 m;
	uint8_t			 cpriv[2][DERP_KEY_LEN];
	uint8_t			 cpub[DERP_KEY_LEN];
	uint8_t			 npub[2][DERP_KEY_LEN];
	char			 extra[2][4096], path[1024], peers[512];
	struct node		*nodes[2] = { a, b };
	int			 i, j, ns = 0, rc;

	(void)state;
	assert_non_null(out = malloc(OUT_CAP));
	outlen = 0;
	a->port = free_tcp_port();
	b->port = free_tcp_port();
	a->http_port = free_tcp_port();
	b->http_port = free_tcp_port();
	a->fixed = b->fixed = true;
	node_make_cert(a);
	snprintf(path, sizeof(path), "cp %s/cert.pem %s/key.pem %s/", a->dir,
	    a->dir, b->dir);
	assert_int_equal(system(path), 0);
	snprintf(b->cert, sizeof(b->cert), "%s/cert.pem", b->dir);
	snprintf(peers, sizeof(peers), "\"localhost:%u/127.0.0.1:%u\", "
	    "\"localhost:%u/127.0.0.1:%u\"", a->port, a->port, b->port,
	    b->port);
	for (i = 0; i < 2; i++) {
		write_psk(nodes[i], path, sizeof(path), 0600);
		snprintf(extra[i], sizeof(extra[i]), "workers = 2;\n"
		    "log = { level = \"debug\"; };\n"
		    "mesh = { psk_file = \"%s\"; peers = ( %s ); ca_file = "
		    "\"%s\"; };\ntraffic = { dump_file = \"%s/traffic.jsonl\";"
		    " interval_s = 1; };\n", path, peers, nodes[i]->cert,
		    nodes[i]->dir);
		node_start_in(nodes[i], true, extra[i]);
	}
	for (i = 0; i < 2; i++) {
		derp_key_generate(cpriv[i]);
		snprintf(path, sizeof(path), "%s/derpd.key", nodes[i]->dir);
		sec[ns].what = i ? "node B private key" : "node A private key";
		assert_int_equal(derp_keyfile_load(path, false, sec[ns].k), 0);
		assert_int_equal(derp_key_public(npub[i], sec[ns].k), 0);
		ns++;
		sec[ns].what = "client private key";
		memcpy(sec[ns++].k, cpriv[i], DERP_KEY_LEN);
	}
	sec[ns].what = "mesh PSK";
	assert_int_equal(derp_psk_parse(PSK, strlen(PSK), sec[ns++].k), 0);
	/* crypto_box shared keys: each client with each node, and the
	 * mesh pair (ClientInfo / ServerInfo are sealed with these). */
	for (i = 0; i < 2; i++)
		for (j = 0; j < 2; j++) {
			assert_int_equal(derp_key_public(cpub, cpriv[i]), 0);
			sec[ns].what = "client-node shared key";
			assert_int_equal(crypto_box_beforenm(sec[ns++].k, cpub,
			    sec[2 * j].k), 0);
		}
	sec[ns].what = "mesh shared key";
	assert_int_equal(crypto_box_beforenm(sec[ns++].k, npub[1], sec[0].k),
	    0);

	/* Traffic of every kind: relay over the mesh, a watcher, a wrong
	 * mesh key, a ping. */
	ca = node_client_key(a, cpriv[0]);
	cb = node_client_key(b, cpriv[1]);
	reach(ca, cb);
	reach(cb, ca);
	w = mesh_client(a, PSK, true);
	assert_int_equal(recv_type(w, DERP_FRAME_PEER_PRESENT, &m, 5000), 0);
	bad = mesh_client(b, "00000000000000000000000000000000000000000000"
	    "00000000000000000001", false);
	assert_int_equal(client_watch_conns(bad), 0);
	do {
		rc = client_recv(bad, &m, 5000);
	} while (rc == 0);
	assert_true(rc == -ECONNRESET || rc == -EPROTO);	/* TLS EOF */
	assert_true(node_log_wait(b, "reason=not_mesh", 5000));
	client_free(bad);
	for (i = 0; i < 2; i++)
		get_all(nodes[i]);
	assert_true(node_log_wait(a, "event=", 100));
	for (i = 0; i < 2; i++) {
		assert_int_equal(kill(nodes[i]->pid, SIGHUP), 0);
		assert_true(node_log_wait(nodes[i], "event=reloaded", 5000));
	}
	reach(ca, cb);
	get_all(a);
	client_free(w);
	client_free(ca);
	client_free(cb);
	for (i = 0; i < 2; i++) {
		node_stop(nodes[i]);
		/* The run was at debug level: there is plenty to search. */
		assert_true(node_log_count(nodes[i], " debug ") > 0);
		collect_file(nodes[i]->log);
		snprintf(path, sizeof(path), "%s/traffic.jsonl", nodes[i]->dir);
		collect_file(path);
	}
	assert_true(outlen > 10000);
	assert_int_equal(ns, 10);
	for (i = 0; i < ns; i++)
		assert_absent(&sec[i]);
	if (found("privkey:", 8))
		fail_msg("privkey: text form in derpd's output");
	/* The public key is there (the test searches the right text). */
	{
		char	hex[DERP_KEY_HEX_LEN + 1];

		derp_key_format_hex(hex, npub[0]);
		assert_true(found(hex, DERP_KEY_HEX_LEN));
	}
	node_free(a);
	node_free(b);
	free(out);
}

/* Exposed secret files are reported with path and mode only. */
static void
test_secrets_exposed_files_warned(void **state)
{
	struct node	*n = node_new();
	char		 psk[512], key[512], extra[1024], want[1100];
	uint8_t		 priv[DERP_KEY_LEN];

	(void)state;
	write_psk(n, psk, sizeof(psk), 0644);
	snprintf(key, sizeof(key), "%s/derpd.key", n->dir);
	assert_int_equal(derp_keyfile_load(key, true, priv), 0);
	assert_int_equal(chmod(key, 0640), 0);
	snprintf(extra, sizeof(extra), "mesh = { psk_file = \"%s\"; };\n",
	    psk);
	node_start_in(n, false, extra);
	snprintf(want, sizeof(want), "event=secret_file_exposed path=%s "
	    "mode=0040", key);
	assert_int_equal(node_log_count(n, want), 1);
	snprintf(want, sizeof(want), "event=secret_file_exposed path=%s "
	    "mode=0004", psk);
	assert_int_equal(node_log_count(n, want), 1);
	node_stop(n);
	/* 0600 / 0640 (the workers' group may read a PSK): no warning. */
	assert_int_equal(chmod(key, 0600), 0);
	assert_int_equal(chmod(psk, 0640), 0);
	node_start_in(n, false, extra);
	node_stop(n);
	assert_int_equal(node_log_count(n, "secret_file_exposed"), 0);
	sodium_memzero(priv, sizeof(priv));
	node_free(n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_secrets_never_logged_or_served),
		cmocka_unit_test(test_secrets_exposed_files_warned),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Unit tests for derp/info.c: Appendix A.2 handshake frames byte for
 * byte, box failures, ClientInfo / ServerInfo JSON rules (PROTOCOL.md
 * 4.3, 4.4, 15 U6).
 */
#include <errno.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "derp/frame.h"
#include "derp/info.h"
#include "derp/key.h"
#include "hex.h"

#define SRV_PRIV "f0c28686025fd561a878202466819bfb888b8a5e7706bb8bdb1f06168cb3017b"
#define SRV_PUB  "b2169426383adad2a86b2b8829a3ce788b0f68d6947c3729a4b45e2db394e600"
#define CLI_PRIV "a03751d9fe7c212507872d7dc5d8781ecf5fad195057be40de9301b0b06e9e47"
#define CLI_PUB  "042c63d7b8d2d3809ff9fd574d265264d26f6c4aaa2c5d296ca216b924c57f08"

static uint8_t	srv_priv[32], srv_pub[32], cli_priv[32], cli_pub[32];

static int
setup(void **state)
{
	(void)state;
	unhex(SRV_PRIV, srv_priv, 32);
	unhex(SRV_PUB, srv_pub, 32);
	unhex(CLI_PRIV, cli_priv, 32);
	unhex(CLI_PUB, cli_pub, 32);
	return derp_crypto_init();
}

static const char A2_CLIENT_INFO[] =
    "02 00000068"
    "042c63d7b8d2d3809ff9fd574d265264d26f6c4aaa2c5d296ca216b924c57f08"
    "000102030405060708090a0b0c0d0e0f1011121314151617"
    "d9e6ac72e625ea4880e110a6264c4345"
    "bcb6c4232d517e32e3d30827d9c791a014558b10d4423481988486132614c819";

static const char A2_SERVER_INFO[] =
    "03 00000035"
    "6465666768696a6b6c6d6e6f707172737475767778797a7b"
    "a008edd056e30f1f535d162b0a0c0464"
    "f6a00abe7b19d298e128a7e2d5";

static void
test_info_appendix_a2_seal(void **state)
{
	uint8_t		nonce[24], exp[200], out[200];
	const char	json[] = "{\"version\":2,\"CanAckPings\":true}";
	size_t		n, i;
	ssize_t		r;

	(void)state;
	for (i = 0; i < 24; i++)
		nonce[i] = (uint8_t)i;
	n = unhex(A2_CLIENT_INFO, exp, sizeof(exp));
	assert_int_equal(n, 109);
	r = derp_box_seal_nonce(out, sizeof(out), (const uint8_t *)json,
	    strlen(json), nonce, srv_pub, cli_priv);
	assert_int_equal(r, 72);
	assert_memory_equal(out, exp + 37, 72);
	for (i = 0; i < 24; i++)
		nonce[i] = (uint8_t)(0x64 + i);
	n = unhex(A2_SERVER_INFO, exp, sizeof(exp));
	assert_int_equal(n, 58);
	r = derp_box_seal_nonce(out, sizeof(out), (const uint8_t *)"{\"version\":2}",
	    13, nonce, cli_pub, srv_priv);
	assert_int_equal(r, 53);
	assert_memory_equal(out, exp + 5, 53);
}

static void
test_info_appendix_a2_open(void **state)
{
	uint8_t				ci[200], si[200], key[32];
	static const uint8_t		zero[32];
	struct derp_client_info		c;
	struct derp_server_info		s;
	struct derp_box			bx;

	(void)state;
	unhex(A2_CLIENT_INFO, ci, sizeof(ci));
	assert_int_equal(derp_client_info_open(ci + 5, 104, srv_priv, key, &bx,
	    &c), 0);
	assert_memory_not_equal(bx.k, zero, 32);
	assert_memory_equal(key, cli_pub, 32);
	assert_int_equal(c.version, 2);
	assert_true(c.can_ack_pings);
	assert_false(c.has_mesh_key);
	unhex(A2_SERVER_INFO, si, sizeof(si));
	assert_int_equal(derp_server_info_open(si + 5, 53, cli_priv, srv_pub,
	    &s), 0);
	assert_int_equal(s.version, 2);
	/* A flipped tag bit, a wrong key, a short box: all refused. */
	ci[5 + 32 + 24] ^= 1;
	assert_int_equal(derp_client_info_open(ci + 5, 104, srv_priv, key, &bx,
	    &c), -EPROTO);
	assert_memory_equal(bx.k, zero, 32);	/* wiped on failure */
	ci[5 + 32 + 24] ^= 1;
	assert_int_equal(derp_client_info_open(ci + 5, 104, cli_priv, key, &bx,
	    &c), -EPROTO);
	assert_int_equal(derp_client_info_open(ci + 5, 55, srv_priv, key, &bx,
	    &c), -EPROTO);
	assert_int_equal(derp_client_info_open(ci + 5, 262145, srv_priv, key,
	    &bx, &c), -EPROTO);
	memset(ci + 5, 0, 32);	/* zero client key */
	assert_int_equal(derp_client_info_open(ci + 5, 104, srv_priv, key, &bx,
	    &c), -EPROTO);
}

static void
test_info_frames_roundtrip(void **state)
{
	struct derp_client_info	c = { .can_ack_pings = false, .is_prober = true,
				    .has_mesh_key = true }, got;
	struct derp_server_info	s = { .version = 2 }, sgot;
	struct derp_box		bx;
	uint8_t			out[512], key[32];
	ssize_t			n;

	(void)state;
	memset(c.mesh_key, 0x5a, 32);
	n = derp_client_info_frame(out, sizeof(out), &c, cli_priv, srv_pub);
	assert_true(n > 0);
	assert_int_equal(out[0], DERP_FRAME_CLIENT_INFO);
	assert_int_equal(derp_client_info_open(out + 5, (size_t)n - 5, srv_priv,
	    key, &bx, &got), 0);
	assert_int_equal(got.version, 2);
	assert_true(got.is_prober);
	assert_true(got.has_mesh_key);
	assert_memory_equal(got.mesh_key, c.mesh_key, 32);
	/* ServerInfo sealed under the box key ClientInfo's opening gave. */
	n = derp_server_info_frame(out, sizeof(out), &s, &bx);
	assert_int_equal(n, 58);
	assert_int_equal(derp_server_info_open(out + 5, 53, cli_priv, srv_pub,
	    &sgot), 0);
	assert_int_equal(sgot.version, 2);
	assert_int_equal(derp_client_info_frame(out, 40, &c, cli_priv, srv_pub),
	    -ENOBUFS);
}

static void
test_info_client_json_go_layout(void **state)
{
	struct derp_client_info	c = { .version = 2, .can_ack_pings = true };
	char			out[256];

	(void)state;
	assert_int_equal(derp_client_info_format(out, sizeof(out), &c), 32);
	assert_string_equal(out, "{\"version\":2,\"CanAckPings\":true}");
	c.can_ack_pings = false;
	c.is_prober = true;
	c.has_mesh_key = true;
	memset(c.mesh_key, 0xab, 32);
	assert_true(derp_client_info_format(out, sizeof(out), &c) > 0);
	assert_string_equal(out, "{\"meshKey\":\"abababababababababababababab"
	    "abababababababababababababababababab\",\"version\":2,"
	    "\"CanAckPings\":false,\"IsProber\":true}");
	assert_int_equal(derp_client_info_format(out, 10, &c), -ENOBUFS);
}

static void
test_info_client_json_rules(void **state)
{
	struct derp_client_info	c;
	const char		*mk = "\"0123456789abcdef0123456789ABCDEF"
				    "0123456789abcdef0123456789abcdef\"";
	char			j[300];
	size_t			i;
	const char		*bad[] = {
		"", "{", "[]", "5", "\"x\"",
		"{\"version\":\"2\"}", "{\"CanAckPings\":1}",
		"{\"IsProber\":\"yes\"}", "{\"meshKey\":\"\"}",
		"{\"meshKey\":\"abc\"}", "{\"meshKey\":5}",
		"{\"version\":2.5}", "{\"AppName\":3}",
		/* Out of int's range: refused before any conversion (a
		 * finding of fuzz_client_info under UBSan). */
		"{\"version\":7.7e101}", "{\"version\":-3e9}",
		"{\"version\":2147483648.0}",
	};

	(void)state;
	snprintf(j, sizeof(j), "{\"VERSION\":2,\"canackpings\":true,"
	    "\"Unknown\":[1,2,{}]}");
	assert_int_equal(derp_client_info_parse(j, strlen(j), &c), 0);
	assert_int_equal(c.version, 2);
	assert_true(c.can_ack_pings);
	snprintf(j, sizeof(j), "{\"MeshKey\":%s}", mk);
	assert_int_equal(derp_client_info_parse(j, strlen(j), &c), 0);
	assert_true(c.has_mesh_key);
	assert_int_equal(c.mesh_key[15], 0xef);
	assert_int_equal(derp_client_info_parse("{\"meshKey\":null}", 16, &c),
	    0);
	assert_false(c.has_mesh_key);
	assert_int_equal(derp_client_info_parse("{\"AppName\":\"x\"}", 15, &c),
	    0);
	assert_string_equal(c.app_name, "x");
	assert_int_equal(derp_client_info_parse("{\"version\":3.0}", 15, &c),
	    0);
	assert_int_equal(c.version, 3);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(derp_client_info_parse(bad[i], strlen(bad[i]),
		    &c), -EPROTO);
}

static void
test_info_server_json(void **state)
{
	struct derp_server_info	s = { .version = 2 }, g;
	char			out[128];

	(void)state;
	assert_int_equal(derp_server_info_format(out, sizeof(out), &s), 13);
	assert_string_equal(out, "{\"version\":2}");
	s.token_bucket_bytes_per_second = 1000;
	s.token_bucket_bytes_burst = 70000;
	assert_true(derp_server_info_format(out, sizeof(out), &s) > 0);
	assert_int_equal(derp_server_info_parse(out, strlen(out), &g), 0);
	assert_int_equal(g.token_bucket_bytes_per_second, 1000);
	assert_int_equal(g.token_bucket_bytes_burst, 70000);
	assert_int_equal(derp_server_info_parse("{\"version\":\"x\"}", 15, &g),
	    -EPROTO);
	assert_int_equal(derp_server_info_format(out, 5, &s), -ENOBUFS);
}

static void
test_info_box_bounds(void **state)
{
	uint8_t	out[64], in[40] = { 0 }, z[32] = { 0 };

	(void)state;
	assert_int_equal(derp_box_seal(out, 39, in, 0, srv_pub, cli_priv),
	    -ENOBUFS);
	assert_int_equal(derp_box_seal(out, sizeof(out), in, 0, z, cli_priv),
	    -EINVAL);
	assert_int_equal(derp_box_open(out, sizeof(out), in, 39, srv_pub,
	    cli_priv), -EPROTO);
	assert_int_equal(derp_box_open(out, sizeof(out), in, 40, z, cli_priv),
	    -EPROTO);
}

/* The cached box key follows both keys: a box sealed to one peer opens
 * with that peer's private key only, whatever was computed before. */
static void
test_info_box_key_cache(void **state)
{
	uint8_t	a_pub[32], a_priv[32], b_pub[32], b_priv[32];
	uint8_t	sa[64], sb[64], out[64];
	ssize_t	na, nb;

	(void)state;
	crypto_box_keypair(a_pub, a_priv);
	crypto_box_keypair(b_pub, b_priv);
	na = derp_box_seal(sa, sizeof(sa), (const uint8_t *)"to a", 4, a_pub,
	    cli_priv);
	nb = derp_box_seal(sb, sizeof(sb), (const uint8_t *)"to b", 4, b_pub,
	    cli_priv);
	assert_true(na > 0 && nb > 0);
	assert_int_equal(derp_box_open(out, sizeof(out), sa, (size_t)na,
	    cli_pub, b_priv), -EPROTO);
	assert_int_equal(derp_box_open(out, sizeof(out), sa, (size_t)na,
	    cli_pub, a_priv), 4);
	assert_memory_equal(out, "to a", 4);
	assert_int_equal(derp_box_open(out, sizeof(out), sb, (size_t)nb,
	    cli_pub, a_priv), -EPROTO);
	assert_int_equal(derp_box_open(out, sizeof(out), sb, (size_t)nb,
	    cli_pub, b_priv), 4);
	assert_memory_equal(out, "to b", 4);
	assert_int_equal(derp_box_open(out, sizeof(out), sb, (size_t)nb,
	    a_pub, b_priv), -EPROTO);
}

/* Counts freed jansson blocks that still hold the mesh key's hex. */
static const char	MK_HEX[] =
    "5c1a9e0f3b7d2468ace13579bdf02468ace13579bdf0246813579bdf02468ace";
static int		key_blocks;

static void
probe_free(void *p)
{
	if (p != NULL && memmem(p, malloc_usable_size(p), MK_HEX, 16) != NULL)
		key_blocks++;
	free(p);
}

static int
parse_with_key(void)
{
	char			 j[600];
	struct derp_client_info	 c;

	/* A long AppName after the key: the lexer's buffer grows by
	 * copying, leaving the key in the blocks it outgrew. */
	snprintf(j, sizeof(j), "{\"version\":2,\"meshKey\":\"%s\","
	    "\"AppName\":\"%0400d\"}", MK_HEX, 7);
	key_blocks = 0;
	assert_int_equal(derp_client_info_parse(j, strlen(j), &c), 0);
	assert_true(c.has_mesh_key);
	sodium_memzero(&c, sizeof(c));
	return key_blocks;
}

static void
test_info_mesh_key_wiped_in_jansson(void **state)
{
	(void)state;
	/* The probe alone sees the key in what jansson frees... */
	json_set_alloc_funcs(malloc, probe_free);
	assert_true(parse_with_key() > 0);
	/* ...and nothing once the wipe sits in front of it. */
	derp_json_wipe_on_free();
	assert_int_equal(parse_with_key(), 0);
	derp_json_wipe_on_free();	/* idempotent: no self-chain */
	assert_int_equal(parse_with_key(), 0);
	json_set_alloc_funcs(malloc, free);
	derp_json_wipe_on_free();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_info_appendix_a2_seal),
		cmocka_unit_test(test_info_appendix_a2_open),
		cmocka_unit_test(test_info_frames_roundtrip),
		cmocka_unit_test(test_info_client_json_go_layout),
		cmocka_unit_test(test_info_client_json_rules),
		cmocka_unit_test(test_info_server_json),
		cmocka_unit_test(test_info_box_bounds),
		cmocka_unit_test(test_info_box_key_cache),
		cmocka_unit_test(test_info_mesh_key_wiped_in_jansson),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}

/*
 * Bytes captured from Tailscale's own Go client and derper (v1.80.3),
 * in ../shared/vectors: every stream must parse frame by frame, every
 * ClientInfo must open with the captured server's key and every
 * ServerInfo with the client's, presence frames must decode, and STUN
 * must reproduce the Go server's reply exactly.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "derp/frame.h"
#include "derp/info.h"
#include "derp/key.h"
#include "derp/stun.h"
#include "hex.h"

static char	dir[512];

static int
setup(void **state)
{
	const char	*v = getenv("VECTORS");

	(void)state;
	snprintf(dir, sizeof(dir), "%s", v ? v : "../shared/vectors");
	return derp_crypto_init();
}

static char *
slurp(const char *name, size_t *len)
{
	char	path[600], *buf;
	FILE	*f;
	long	n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void
server_key(uint8_t priv[32])
{
	size_t	n;
	char	*t = slurp("server1.key.json", &n);

	assert_non_null(t);
	assert_int_equal(derp_keyfile_parse(t, n, priv), 0);
	free(t);
}

struct counts {
	int	frames, client_infos, server_infos, present, gone;
};

static void
check_stream(json_t *root, const char *name, const uint8_t srv_priv[32],
    const uint8_t srv_pub[32], struct counts *ct)
{
	const char		*hex = json_string_value(json_object_get(
				    json_object_get(root, "streams_hex"), name));
	json_t			*keys = json_object_get(root, "keys");
	uint8_t			*b, cpriv[32], ckey[32], k[32], reason;
	size_t			 n, off = 0;
	char			*end, kname[32];
	struct derp_frame	 f;
	ssize_t			 r;
	bool			 c2s = strstr(name, "C->S") != NULL;

	assert_non_null(hex);
	b = malloc(strlen(hex) / 2 + 1);
	n = unhex(hex, b, strlen(hex) / 2 + 1);
	if (n >= 4 && (memcmp(b, "GET ", 4) == 0 || memcmp(b, "HTTP", 4) == 0)) {
		end = memmem(b, n, "\r\n\r\n", 4);
		assert_non_null(end);
		off = (size_t)((uint8_t *)end - b) + 4;
	}
	snprintf(kname, sizeof(kname), "%c.private", name[0]);
	if (json_object_get(keys, kname) != NULL)
		unhex(json_string_value(json_object_get(keys, kname)), cpriv, 32);
	while ((r = derp_frame_parse(b + off, n - off, DERP_MAX_CLIENT_FRAME,
	    &f)) > 0) {
		ct->frames++;
		if (c2s && f.type == DERP_FRAME_CLIENT_INFO) {
			struct derp_client_info	ci;
			struct derp_box		bx;

			assert_int_equal(derp_client_info_open(f.payload, f.len,
			    srv_priv, ckey, &bx, &ci), 0);
			assert_int_equal(ci.version, 2);
			ct->client_infos++;
		} else if (c2s) {
			/* Every client frame fits the server's limits. */
			assert_true(f.len <= derp_frame_server_limit(f.type));
		}
		if (!c2s && f.type == DERP_FRAME_SERVER_KEY) {
			assert_int_equal(derp_dec_server_key(f.payload, f.len,
			    k), 0);
			assert_memory_equal(k, srv_pub, 32);
		}
		if (!c2s && f.type == DERP_FRAME_SERVER_INFO) {
			struct derp_server_info	si;

			assert_int_equal(derp_server_info_open(f.payload, f.len,
			    cpriv, srv_pub, &si), 0);
			assert_int_equal(si.version, 2);
			ct->server_infos++;
		}
		if (!c2s && f.type == DERP_FRAME_PEER_PRESENT) {
			struct derp_peer_present	pp;

			assert_int_equal(derp_dec_peer_present(f.payload, f.len,
			    &pp), 0);
			assert_true(pp.has_addr);
			assert_true(pp.flags != 0);
			ct->present++;
		}
		if (!c2s && f.type == DERP_FRAME_PEER_GONE) {
			assert_int_equal(derp_dec_peer_gone(f.payload, f.len, k,
			    &reason), 0);
			ct->gone++;
		}
		off += (size_t)r;
	}
	assert_int_equal(r, 0);
	assert_int_equal(off, n);	/* streams end on a frame boundary */
	free(b);
}

static void
check_file(const char *file, int want_present)
{
	char		*t;
	size_t		 n;
	json_t		*root, *v;
	const char	*name;
	uint8_t		 priv[32], pub[32], want[32];
	struct counts	 ct = { 0 };

	if ((t = slurp(file, &n)) == NULL) {
		skip();
		return;
	}
	root = json_loadb(t, n, 0, NULL);
	assert_non_null(root);
	server_key(priv);
	assert_int_equal(derp_key_public(pub, priv), 0);
	unhex(json_string_value(json_object_get(root, "server_public_key")),
	    want, 32);
	assert_memory_equal(pub, want, 32);
	json_object_foreach(json_object_get(root, "streams_hex"), name, v)
		check_stream(root, name, priv, pub, &ct);
	assert_true(ct.frames > 10);
	assert_int_equal(ct.client_infos, ct.server_infos);
	assert_true(ct.client_infos >= 2);
	if (want_present)
		assert_true(ct.present > 0 && ct.gone > 0);
	json_decref(root);
	free(t);
}

static void
test_vectors_https_fast(void **state)
{
	(void)state;
	check_file("https_fast.json", 0);
}

static void
test_vectors_http_mesh(void **state)
{
	(void)state;
	check_file("http_mesh.json", 1);
}

static void
test_vectors_stun(void **state)
{
	char			*t, *line, *save = NULL;
	size_t			 n;
	uint8_t			 pkt[3][128], txid[12], out[STUN_RESPONSE_MAX];
	size_t			 len[3];
	int			 i = 0;
	struct sockaddr_in	 src = { .sin_family = AF_INET };

	(void)state;
	if ((t = slurp("stun.txt", &n)) == NULL) {
		skip();
		return;
	}
	for (line = strtok_r(t, "\n", &save); line != NULL && i < 3;
	    line = strtok_r(NULL, "\n", &save))
		if (line[0] == '0')
			len[i] = unhex(line, pkt[i], sizeof(pkt[i])), i++;
	assert_int_equal(i, 3);
	assert_int_equal(stun_parse_request(pkt[0], len[0], false, txid), 0);
	src.sin_port = htons(38282);
	inet_pton(AF_INET, "127.0.0.1", &src.sin_addr);
	assert_int_equal(stun_build_response(out, txid, (void *)&src),
	    (ssize_t)len[1]);
	assert_memory_equal(out, pkt[1], len[1]);
	assert_int_equal(stun_parse_request(pkt[2], len[2], false, txid),
	    -EPROTO);
	assert_int_equal(stun_parse_request(pkt[2], len[2], true, txid), 0);
	free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors_https_fast),
		cmocka_unit_test(test_vectors_http_mesh),
		cmocka_unit_test(test_vectors_stun),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}

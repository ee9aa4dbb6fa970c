/*
 * Unit tests for derp/frame.c and derp/wire.c: incremental parsing,
 * limits, every encoder's exact bytes, tolerant decoders (PROTOCOL.md 3).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "derp/frame.h"
#include "derp/wire.h"
#include "hex.h"

static void
test_frame_parse_incomplete_header(void **state)
{
	const uint8_t		in[] = { DERP_FRAME_SEND_PACKET, 0, 0 };
	struct derp_frame	f;

	(void)state;
	assert_int_equal(derp_frame_parse(in, sizeof(in), 100, &f), 0);
	assert_int_equal(derp_frame_parse(in, 0, 100, &f), 0);
}

static void
test_frame_parse_incomplete_payload(void **state)
{
	const uint8_t		in[] = { 0x06, 0, 0, 0, 3, 'a', 'b' };
	struct derp_frame	f;

	(void)state;
	assert_int_equal(derp_frame_parse(in, sizeof(in), 100, &f), 0);
}

static void
test_frame_parse_many_per_buffer(void **state)
{
	uint8_t			buf[64];
	size_t			n = 0, off = 0;
	struct derp_frame	f;
	ssize_t			r;
	int			count = 0;

	(void)state;
	n += derp_enc_keep_alive(buf + n);
	n += derp_enc_note_preferred(buf + n, true);
	n += derp_enc_watch_conns(buf + n);
	while ((r = derp_frame_parse(buf + off, n - off, 10, &f)) > 0) {
		off += (size_t)r;
		count++;
	}
	assert_int_equal(r, 0);
	assert_int_equal(count, 3);
	assert_int_equal(off, n);
}

static void
test_frame_parse_byte_by_byte(void **state)
{
	uint8_t			buf[DERP_SEND_HDR_LEN + 5], key[32];
	struct derp_frame	f;
	size_t			i;

	(void)state;
	memset(key, 0xab, sizeof(key));
	derp_enc_send_packet_hdr(buf, key, 5);
	memcpy(buf + DERP_SEND_HDR_LEN, "hello", 5);
	for (i = 0; i < sizeof(buf); i++)
		assert_int_equal(derp_frame_parse(buf, i, 65568, &f), 0);
	assert_int_equal(derp_frame_parse(buf, sizeof(buf), 65568, &f),
	    sizeof(buf));
	assert_int_equal(f.type, DERP_FRAME_SEND_PACKET);
	assert_int_equal(f.len, 37);
	assert_memory_equal(f.payload + 32, "hello", 5);
}

static void
test_frame_parse_oversize_fails_on_header(void **state)
{
	const uint8_t		big[] = { 0x04, 0x00, 0x01, 0x00, 0x21 };
	const uint8_t		huge[] = { 0x04, 0xff, 0xff, 0xff, 0xff };
	struct derp_frame	f;

	(void)state;
	/* 65569 > 32 + 65536: rejected before any payload arrives. */
	assert_int_equal(derp_frame_parse(big, sizeof(big),
	    derp_frame_server_limit(0x04), &f), -EMSGSIZE);
	assert_int_equal(derp_frame_parse(huge, sizeof(huge),
	    derp_frame_server_limit(0x04), &f), -EMSGSIZE);
}

static void
test_frame_server_limits(void **state)
{
	(void)state;
	assert_int_equal(derp_frame_server_limit(0x04), 65568);
	assert_int_equal(derp_frame_server_limit(0x0a), 65600);
	assert_int_equal(derp_frame_server_limit(0x02), 262144);
	assert_int_equal(derp_frame_server_limit(0x12), 1000);
	assert_int_equal(derp_frame_server_limit(0x07), 1);
	assert_int_equal(derp_frame_server_limit(0x10), 0);
	assert_int_equal(derp_frame_server_limit(0x11), 32);
	assert_int_equal(derp_frame_server_limit(0x99), 1048576);
}

static void
test_frame_encoders_exact_bytes(void **state)
{
	uint8_t	k[32], out[128], exp[128], ip[16] = { 0 };
	size_t	n;

	(void)state;
	memset(k, 0x11, sizeof(k));
	n = derp_enc_peer_gone(out, k, DERP_PEER_GONE_NOT_HERE);
	assert_int_equal(n, 38);
	assert_int_equal(unhex("0800000021", exp, sizeof(exp)), 5);
	assert_memory_equal(out, exp, 5);
	assert_int_equal(out[37], 1);
	/* A.4: PeerPresent 198.51.100.7:41641 IsRegular */
	ip[10] = ip[11] = 0xff;
	ip[12] = 198;
	ip[13] = 51;
	ip[14] = 100;
	ip[15] = 7;
	n = derp_enc_peer_present(out, k, ip, 41641, DERP_PEER_IS_REGULAR);
	assert_int_equal(n, 56);
	unhex("0900000033", exp, sizeof(exp));
	assert_memory_equal(out, exp, 5);
	unhex("00000000000000000000ffffc6336407a2a901", exp, sizeof(exp));
	assert_memory_equal(out + 37, exp, 19);
	n = derp_enc_restarting(out, 1000, 30000);
	unhex("1500000008000003e800007530", exp, sizeof(exp));
	assert_memory_equal(out, exp, n);
	n = derp_enc_keep_alive(out);
	assert_int_equal(n, 5);
	unhex("0600000000", exp, sizeof(exp));
	assert_memory_equal(out, exp, 5);
	n = derp_enc_ping(out, DERP_FRAME_PONG, (const uint8_t *)"12345678");
	assert_int_equal(n, 13);
	assert_int_equal(out[0], 0x13);
	assert_int_equal(derp_enc_health(out, 4, "x", 1), 0);
	assert_int_equal(derp_enc_health(out, sizeof(out), "bad", 3), 8);
}

static void
test_frame_server_key_roundtrip_and_bad(void **state)
{
	uint8_t	k[32], got[32], out[DERP_SERVER_KEY_FRAME_LEN], longer[60];

	(void)state;
	memset(k, 0x42, sizeof(k));
	derp_enc_server_key(out, k);
	assert_int_equal(derp_dec_server_key(out + 5, 40, got), 0);
	assert_memory_equal(got, k, 32);
	memcpy(longer, out + 5, 40);
	memset(longer + 40, 0xee, 20);		/* future bytes are ignored */
	assert_int_equal(derp_dec_server_key(longer, 60, got), 0);
	assert_int_equal(derp_dec_server_key(out + 5, 39, got), -EPROTO);
	out[5] ^= 1;
	assert_int_equal(derp_dec_server_key(out + 5, 40, got), -EPROTO);
}

static void
test_frame_peer_present_lengths(void **state)
{
	uint8_t				p[60];
	struct derp_peer_present	pp;

	(void)state;
	memset(p, 7, sizeof(p));
	assert_int_equal(derp_dec_peer_present(p, 31, &pp), -EPROTO);
	assert_int_equal(derp_dec_peer_present(p, 32, &pp), 0);
	assert_false(pp.has_addr);
	assert_int_equal(pp.flags, 0);
	assert_int_equal(derp_dec_peer_present(p, 50, &pp), 0);
	assert_true(pp.has_addr);
	assert_int_equal(pp.port, 0x0707);
	assert_int_equal(pp.flags, 0);
	assert_int_equal(derp_dec_peer_present(p, 51, &pp), 0);
	assert_int_equal(pp.flags, 7);
	assert_int_equal(derp_dec_peer_present(p, 60, &pp), 0);
}

static void
test_frame_peer_gone_lengths(void **state)
{
	uint8_t	p[40], k[32], reason = 9;

	(void)state;
	memset(p, 1, sizeof(p));
	assert_int_equal(derp_dec_peer_gone(p, 31, k, &reason), -EPROTO);
	assert_int_equal(derp_dec_peer_gone(p, 32, k, &reason), 0);
	assert_int_equal(reason, DERP_PEER_GONE_DISCONNECTED);
	assert_int_equal(derp_dec_peer_gone(p, 33, k, &reason), 0);
	assert_int_equal(reason, 1);
}

static void
test_frame_restarting_short(void **state)
{
	uint8_t		p[8] = { 0, 0, 0, 1, 0, 0, 0, 2 };
	uint32_t	a, b;

	(void)state;
	assert_int_equal(derp_dec_restarting(p, 7, &a, &b), -EPROTO);
	assert_int_equal(derp_dec_restarting(p, 8, &a, &b), 0);
	assert_int_equal(a, 1);
	assert_int_equal(b, 2);
}

static void
test_wire_sticky_error(void **state)
{
	const uint8_t	in[] = { 1, 2, 3 };
	uint8_t		out[3];
	struct wire	w;
	struct wire_out	o;

	(void)state;
	wire_init(&w, in, sizeof(in));
	assert_int_equal(wire_u16(&w), 0x0102);
	assert_int_equal(wire_u32(&w), 0);	/* past the end */
	assert_true(w.err);
	assert_int_equal(wire_u8(&w), 0);	/* sticky */
	assert_int_equal(wire_left(&w), 0);
	wire_out_init(&o, out, sizeof(out));
	wire_put_u16(&o, 0xabcd);
	wire_put_u16(&o, 0x1234);
	assert_true(o.err);
	wire_put_u8(&o, 1);
	assert_int_equal(o.off, 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_parse_incomplete_header),
		cmocka_unit_test(test_frame_parse_incomplete_payload),
		cmocka_unit_test(test_frame_parse_many_per_buffer),
		cmocka_unit_test(test_frame_parse_byte_by_byte),
		cmocka_unit_test(test_frame_parse_oversize_fails_on_header),
		cmocka_unit_test(test_frame_server_limits),
		cmocka_unit_test(test_frame_encoders_exact_bytes),
		cmocka_unit_test(test_frame_server_key_roundtrip_and_bad),
		cmocka_unit_test(test_frame_peer_present_lengths),
		cmocka_unit_test(test_frame_peer_gone_lengths),
		cmocka_unit_test(test_frame_restarting_short),
		cmocka_unit_test(test_wire_sticky_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

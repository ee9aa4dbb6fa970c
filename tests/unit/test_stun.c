/*
 * Unit tests for derp/stun.c: Appendix A.3 vectors, Tailscale-only and
 * any-client validation, malformed datagrams, the client side.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "derp/stun.h"
#include "hex.h"

static const char REQ[] = "0001 0014 2112a442 0102030405060708090a0b0c"
    "8022 0008 7461696c6e6f6465 8028 0004 b32c370f";

static void
addr4(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	struct sockaddr_in	*s = (void *)ss;

	memset(ss, 0, sizeof(*ss));
	s->sin_family = AF_INET;
	s->sin_port = htons(port);
	inet_pton(AF_INET, ip, &s->sin_addr);
}

static void
addr6(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	struct sockaddr_in6	*s = (void *)ss;

	memset(ss, 0, sizeof(*ss));
	s->sin6_family = AF_INET6;
	s->sin6_port = htons(port);
	inet_pton(AF_INET6, ip, &s->sin6_addr);
}

static void
test_stun_appendix_a3(void **state)
{
	uint8_t			req[64], txid[12], out[STUN_RESPONSE_MAX];
	uint8_t			exp[64], built[STUN_REQUEST_LEN];
	struct sockaddr_storage	ss, got;
	size_t			n;

	(void)state;
	n = unhex(REQ, req, sizeof(req));
	assert_int_equal(n, 40);
	assert_int_equal(stun_parse_request(req, n, false, txid), 0);
	assert_memory_equal(txid, req + 8, 12);
	assert_int_equal(stun_build_request(built, txid), 40);
	assert_memory_equal(built, req, 40);
	addr4(&ss, "192.0.2.1", 54321);
	assert_int_equal(stun_build_response(out, txid, (void *)&ss), 32);
	unhex("0101 000c 2112a442 0102030405060708090a0b0c 0020 0008 00 01 f523"
	    " e112a643", exp, sizeof(exp));
	assert_memory_equal(out, exp, 32);
	assert_int_equal(stun_parse_response(out, 32, txid, &got), 0);
	assert_int_equal(got.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&got)->sin_port), 54321);
	addr6(&ss, "2001:db8::1", 54321);
	assert_int_equal(stun_build_response(out, txid, (void *)&ss), 44);
	unhex("0101 0018 2112a442 0102030405060708090a0b0c 0020 0014 00 02 f523"
	    " 0113a9fa0102030405060708090a0b0d", exp, sizeof(exp));
	assert_memory_equal(out, exp, 44);
	/* v4-mapped source: answered as plain IPv4 (15 U1). */
	addr6(&ss, "::ffff:192.0.2.1", 54321);
	assert_int_equal(stun_build_response(out, txid, (void *)&ss), 32);
	/* Go's probable 4in6 form parses to the IPv4 address too. */
	unhex("0101 0018 2112a442 0102030405060708090a0b0c 0020 0014 00 02 f523"
	    " 2112a442010203040506f8f7c90a090d", exp, sizeof(exp));
	assert_int_equal(stun_parse_response(exp, 44, txid, &got), 0);
	assert_int_equal(got.ss_family, AF_INET);
}

static void
test_stun_rejects_malformed(void **state)
{
	uint8_t	req[64], txid[12], m[64];
	size_t	n = unhex(REQ, req, sizeof(req));

	(void)state;
	assert_int_equal(stun_parse_request(req, 19, false, txid), -EPROTO);
	memcpy(m, req, n);
	m[39] ^= 1;				/* bad fingerprint */
	assert_int_equal(stun_parse_request(m, n, false, txid), -EPROTO);
	memcpy(m, req, n);
	m[24] = 'T';				/* not "tailnode" */
	assert_int_equal(stun_parse_request(m, n, false, txid), -EPROTO);
	memcpy(m, req, n);
	m[4] = 0;				/* cookie */
	assert_int_equal(stun_parse_request(m, n, false, txid), -EPROTO);
	memcpy(m, req, n);
	m[1] = 0x11;				/* not a binding request */
	assert_int_equal(stun_parse_request(m, n, false, txid), -EPROTO);
	memcpy(m, req, n);
	m[0] = 0x40;				/* top bits set */
	assert_int_equal(stun_parse_request(m, n, false, txid), -EPROTO);
	memcpy(m, req, n);
	m[23] = 0x40;				/* attribute past the end */
	assert_int_equal(stun_parse_request(m, n, false, txid), -EPROTO);
	assert_int_equal(stun_parse_request(req, 38, false, txid), -EPROTO);
	assert_int_equal(stun_parse_request(req, 34, false, txid), -EPROTO);
}

static void
test_stun_any_client_mode(void **state)
{
	uint8_t	plain[20], txid[12], req[64], m[64];
	size_t	n = unhex(REQ, req, sizeof(req));

	(void)state;
	unhex("000100002112a4420102030405060708090a0b0c", plain, sizeof(plain));
	assert_int_equal(stun_parse_request(plain, 20, false, txid), -EPROTO);
	assert_int_equal(stun_parse_request(plain, 20, true, txid), 0);
	assert_int_equal(stun_parse_request(req, n, true, txid), 0);
	memcpy(m, req, n);
	m[39] ^= 1;	/* a present fingerprint must still be right */
	assert_int_equal(stun_parse_request(m, n, true, txid), -EPROTO);
	assert_int_equal(stun_parse_request(req, n - 4, true, txid), -EPROTO);
}

static void
test_stun_response_parse_rejects(void **state)
{
	uint8_t			txid[12] = { 1 }, other[12] = { 2 };
	uint8_t			out[STUN_RESPONSE_MAX];
	struct sockaddr_storage	ss, got;
	ssize_t			n;

	(void)state;
	addr4(&ss, "10.1.2.3", 9);
	n = stun_build_response(out, txid, (void *)&ss);
	assert_int_equal(stun_parse_response(out, (size_t)n, other, &got),
	    -EPROTO);
	assert_int_equal(stun_parse_response(out, 20, txid, &got), -EPROTO);
	assert_int_equal(stun_parse_response(out, (size_t)n - 1, txid, &got),
	    -EPROTO);
	ss.ss_family = AF_UNIX;
	assert_int_equal(stun_build_response(out, txid, (void *)&ss),
	    -EAFNOSUPPORT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stun_appendix_a3),
		cmocka_unit_test(test_stun_rejects_malformed),
		cmocka_unit_test(test_stun_any_client_mode),
		cmocka_unit_test(test_stun_response_parse_rejects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

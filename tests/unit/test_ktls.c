/*
 * worker/ktls.c: the key material the kernel is given (checked against
 * RFC 8448's derived key and IV), the probe's verdict against what this
 * kernel answers to TCP_ULP "tls" itself, and the calls' behaviour on
 * sockets the kernel does not frame.  Where the kernel has kTLS, the
 * probe's loopback round trip against tlsrec runs here too.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <linux/tls.h>

#include "hex.h"
#include "tests/kernel_tls.h"
#include "worker/ktls.h"

/* RFC 8448 section 3: the server's application traffic secret and the
 * key and IV derived from it ({server} derive write traffic keys for
 * application data). */
static const char RFC_S_AP[] =
    "a1 1a f9 f0 55 31 f8 56 ad 47 11 6b 45 a9 50 32"
    "82 04 b4 f4 4b fb 6b 3a 4b 4f 1f 3f cb 63 16 43";
static const char RFC_S_KEY[] = "9f 02 28 3b 6c 9c 07 ef c2 6b b9 f2 ac 92 e3 56";
static const char RFC_S_IV[] = "cf 78 2b 88 dd 83 54 9a ad f1 e9 84";

static int
setup(void **state)
{
	struct tlsrec_pool	*p = tlsrec_pool_new();

	assert_non_null(p);
	*state = p;
	return 0;
}

static int
teardown(void **state)
{
	tlsrec_pool_free(*state);
	return 0;
}

static void
test_ktls_info_aes128_rfc8448(void **state)
{
	struct tls12_crypto_info_aes_gcm_128	ci;
	uint8_t					secret[32], key[16], iv[12];
	static const uint8_t			seq[8] = {
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08 };

	assert_int_equal(unhex(RFC_S_AP, secret, sizeof(secret)), 32);
	assert_int_equal(unhex(RFC_S_KEY, key, sizeof(key)), 16);
	assert_int_equal(unhex(RFC_S_IV, iv, sizeof(iv)), 12);
	assert_int_equal(ktls_crypto_info(*state, TLSREC_AES_128_GCM_SHA256,
	    secret, 32, 0x0102030405060708ull, &ci, sizeof(ci)),
	    (ssize_t)sizeof(ci));
	assert_int_equal(ci.info.version, TLS_1_3_VERSION);
	assert_int_equal(ci.info.cipher_type, TLS_CIPHER_AES_GCM_128);
	assert_memory_equal(ci.key, key, 16);
	/* The kernel's nonce is salt || iv, XORed with the sequence. */
	assert_memory_equal(ci.salt, iv, 4);
	assert_memory_equal(ci.iv, iv + 4, 8);
	assert_memory_equal(ci.rec_seq, seq, 8);
}

static void
test_ktls_info_other_suites(void **state)
{
	struct tls12_crypto_info_aes_gcm_256		g;
	struct tls12_crypto_info_chacha20_poly1305	c;
	uint8_t	s48[48], s32[32], key[TLSREC_KEY_MAX], iv[TLSREC_IV_LEN];
	size_t	klen;

	memset(s48, 0x5a, sizeof(s48));
	memset(s32, 0xa5, sizeof(s32));
	assert_int_equal(ktls_crypto_info(*state, TLSREC_AES_256_GCM_SHA384,
	    s48, 48, 0, &g, sizeof(g)), (ssize_t)sizeof(g));
	assert_int_equal(g.info.cipher_type, TLS_CIPHER_AES_GCM_256);
	assert_int_equal(tlsrec_traffic_key(*state, TLSREC_AES_256_GCM_SHA384,
	    s48, 48, key, &klen, iv), 0);
	assert_int_equal(klen, 32);
	assert_memory_equal(g.key, key, 32);
	assert_memory_equal(g.salt, iv, 4);
	assert_memory_equal(g.iv, iv + 4, 8);

	assert_int_equal(ktls_crypto_info(*state,
	    TLSREC_CHACHA20_POLY1305_SHA256, s32, 32, 1, &c, sizeof(c)),
	    (ssize_t)sizeof(c));
	assert_int_equal(c.info.version, TLS_1_3_VERSION);
	assert_int_equal(c.info.cipher_type, TLS_CIPHER_CHACHA20_POLY1305);
	assert_int_equal(tlsrec_traffic_key(*state,
	    TLSREC_CHACHA20_POLY1305_SHA256, s32, 32, key, &klen, iv), 0);
	assert_memory_equal(c.key, key, 32);
	assert_memory_equal(c.iv, iv, 12);	/* all of it, no salt */
	assert_int_equal(c.rec_seq[7], 1);
}

static void
test_ktls_info_refuses(void **state)
{
	uint8_t	s[48] = { 0 }, out[128];

	assert_int_equal(ktls_crypto_info(*state, 0x1304, s, 32, 0, out,
	    sizeof(out)), -EINVAL);			/* CCM: not ours */
	assert_int_equal(ktls_crypto_info(*state, TLSREC_AES_128_GCM_SHA256,
	    s, 48, 0, out, sizeof(out)), -EINVAL);	/* wrong length */
	assert_int_equal(ktls_crypto_info(*state, TLSREC_AES_128_GCM_SHA256,
	    s, 32, 0, out, 8), -EINVAL);		/* no room */
	assert_int_equal(ktls_suite_bit(0x1304), 0);
}

/* The probe agrees with the kernel: every suite where the ULP exists
 * (its loopback round trip against tlsrec passed), a reason naming
 * TCP_ULP where it does not. */
static void
test_ktls_probe_verdict(void **state)
{
	char		why[192];
	unsigned	bits = ktls_probe(*state, why, sizeof(why));

	if (kernel_has_tls_ulp()) {
		print_message("kTLS present: suites 0x%x (%s)\n", bits, why);
		assert_int_equal(bits, 7);
	} else {
		print_message("kTLS absent here: %s\n", why);
		assert_int_equal(bits, 0);
		assert_non_null(strstr(why, "TCP_ULP tls"));
	}
}

/* A socket the kernel cannot frame is refused and left as it was. */
static void
test_ktls_install_refused_socket_unchanged(void **state)
{
	struct tlsrec_keys	k = { .suite = TLSREC_AES_128_GCM_SHA256,
				      .secret_len = 32 };
	int			sv[2], rc;
	char			c = 0;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	rc = ktls_install(*state, sv[0], &k);
	assert_true(rc < 0 && rc != -EPROTO);
	assert_int_equal(write(sv[0], "x", 1), 1);
	assert_int_equal(read(sv[1], &c, 1), 1);
	assert_int_equal(c, 'x');
	k.suite = 0x1304;
	assert_int_equal(ktls_install(*state, sv[0], &k), -EINVAL);
	close(sv[0]);
	close(sv[1]);
}

/* Without a record type in a control message, what arrives is
 * application data; EOF is 0; nothing there is -EAGAIN. */
static void
test_ktls_read_write_plain_semantics(void **state)
{
	uint8_t	buf[16];
	int	sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    sv), 0);
	assert_int_equal(ktls_read(sv[0], buf, sizeof(buf)), -EAGAIN);
	assert_int_equal(ktls_write(sv[1], (const uint8_t *)"hello", 5), 5);
	assert_int_equal(ktls_read(sv[0], buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "hello", 5);
	close(sv[1]);
	assert_int_equal(ktls_read(sv[0], buf, sizeof(buf)), 0);
	assert_true(ktls_write(sv[0], buf, 1) < 0);	/* EPIPE, no signal */
	close(sv[0]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ktls_info_aes128_rfc8448,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_ktls_info_other_suites,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_ktls_info_refuses,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_ktls_probe_verdict,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_ktls_install_refused_socket_unchanged, setup,
		    teardown),
		cmocka_unit_test(test_ktls_read_write_plain_semantics),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

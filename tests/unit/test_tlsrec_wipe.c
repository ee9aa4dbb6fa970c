/*
 * worker/tlsrec.c from the inside: plaintext that a record opened in
 * place (in the worker's scratch or in a connection's hold) leaves
 * behind once it is handed to the caller must be wiped, as the held
 * plaintext is.  White-box: the file is compiled into this test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/socket.h>

/* Before cmocka.h, whose fail() macro would rename tlsrec's fail(). */
#include "worker/tlsrec.c"

#include <cmocka.h>

static const char	MARK[] = "PLAINTEXT-MARKER";	/* 16 bytes */

struct fx {
	struct tlsrec_pool	*pool;
	struct tlsrec		*a, *b;		/* a reads what b seals */
	int			 sv[2];
};

static int
setup(void **state)
{
	struct fx		*f = calloc(1, sizeof(*f));
	struct tlsrec_keys	 k, m;
	size_t			 i;

	assert_non_null(f);
	assert_non_null(f->pool = tlsrec_pool_new());
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    f->sv), 0);
	memset(&k, 0, sizeof(k));
	k.suite = TLSREC_AES_128_GCM_SHA256;
	k.secret_len = 32;
	for (i = 0; i < 32; i++) {
		k.rx_secret[i] = (uint8_t)(i + 1);
		k.tx_secret[i] = (uint8_t)(i + 77);
	}
	m = k;
	memcpy(m.rx_secret, k.tx_secret, sizeof(m.rx_secret));
	memcpy(m.tx_secret, k.rx_secret, sizeof(m.tx_secret));
	assert_non_null(f->a = tlsrec_new(f->pool, &k));
	assert_non_null(f->b = tlsrec_new(f->pool, &m));
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx	*f = *state;

	tlsrec_free(f->a);
	tlsrec_free(f->b);
	close(f->sv[0]);
	close(f->sv[1]);
	tlsrec_pool_free(f->pool);
	free(f);
	return 0;
}

/* A record of n content bytes, MARK over and over, and pad zeros. */
static size_t
seal_marked(struct fx *f, size_t n, size_t pad, uint8_t *rec, size_t cap)
{
	uint8_t	pt[2048];
	size_t	i;
	ssize_t	r;

	assert_true(n <= sizeof(pt));
	for (i = 0; i < n; i++)
		pt[i] = (uint8_t)MARK[i % 16];
	r = tlsrec_seal(f->b, TLSREC_APPDATA, pt, n, pad, rec, cap);
	assert_true(r > 0);
	return (size_t)r;
}

/* Content that fits the reader but whose padding does not: opened in
 * the scratch buffer, then copied out whole. */
static void
test_wipe_scratch(void **state)
{
	struct fx	*f = *state;
	uint8_t		 rec[512], buf[64];
	size_t		 n = seal_marked(f, 48, 200, rec, sizeof(rec));

	assert_int_equal(write(f->sv[1], rec, n), (ssize_t)n);
	assert_int_equal(tlsrec_read(f->a, f->sv[0], buf, sizeof(buf)), 48);
	assert_memory_equal(buf, MARK, 16);
	assert_null(memmem(f->pool->scratch, n, MARK, 16));
}

/* A record completed in the hold and opened there, the reader taking
 * part of it: the part handed out is gone from the hold. */
static void
test_wipe_hold(void **state)
{
	struct fx	*f = *state;
	uint8_t		 rec[1200], buf[1000];
	size_t		 n = seal_marked(f, 1000, 0, rec, sizeof(rec)), got;
	ssize_t		 r;

	assert_int_equal(write(f->sv[1], rec, 300), 300);
	assert_int_equal(tlsrec_read(f->a, f->sv[0], buf, 100), -EAGAIN);
	assert_int_equal(write(f->sv[1], rec + 300, n - 300),
	    (ssize_t)(n - 300));
	assert_int_equal(tlsrec_read(f->a, f->sv[0], buf, 100), 100);
	assert_non_null(f->a->rh);
	assert_true(f->a->rh_pt > 0);
	/* Before the plaintext still held: the header and what was read. */
	assert_null(memmem(f->a->rh, f->a->pt_off, MARK, 16));
	for (got = 100; got < 1000; got += (size_t)r) {
		r = tlsrec_read(f->a, f->sv[0], buf + got, 1000 - got);
		assert_true(r > 0);
	}
	assert_memory_equal(buf + 992, "PLAINTEX", 8);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_wipe_scratch, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_wipe_hold, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

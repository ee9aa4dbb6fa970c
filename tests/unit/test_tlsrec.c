/*
 * worker/tlsrec.c: the published RFC 8448 records, round trips against a
 * real OpenSSL client whose server side is handed to tlsrec after the
 * handshake, and every way a record can be wrong.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "hex.h"
#include "worker/tlsrec.h"

/*
 * RFC 8448 (Example Handshake Traces for TLS 1.3), section 3 "Simple
 * 1-RTT Handshake", TLS_AES_128_GCM_SHA256: the application traffic
 * secrets ({server} derive secret "tls13 c ap traffic" / "tls13 s ap
 * traffic") and the protected records that follow the handshake.
 * The server's first record under its key (seq 0) is the
 * NewSessionTicket, so its application data record is seq 1.
 */
static const char RFC_C_AP[] =
    "9e 40 64 6c e7 9a 7f 9d c0 5a f8 88 9b ce 65 52"
    "87 5a fa 0b 06 df 00 87 f7 92 eb b7 c1 75 04 a5";
static const char RFC_S_AP[] =
    "a1 1a f9 f0 55 31 f8 56 ad 47 11 6b 45 a9 50 32"
    "82 04 b4 f4 4b fb 6b 3a 4b 4f 1f 3f cb 63 16 43";
/* {client} send application_data record (payload 00 .. 31). */
static const char RFC_C_DATA[] =
    "17 03 03 00 43 a2 3f 70 54 b6 2c 94 d0 af fa fe 82 28 ba 55 cb ef"
    "ac ea 42 f9 14 aa 66 bc ab 3f 2b 98 19 a8 a5 b4 6b 39 5b d5 4a 9a"
    "20 44 1e 2b 62 97 4e 1f 5a 62 92 a2 97 70 14 bd 1e 3d ea e6 3a ee"
    "bb 21 69 49 15 e4";
/* {server} send application_data record (the same payload). */
static const char RFC_S_DATA[] =
    "17 03 03 00 43 2e 93 7e 11 ef 4a c7 40 e5 38 ad 36 00 5f c4 a4 69"
    "32 fc 32 25 d0 5f 82 aa 1b 36 e3 0e fa f9 7d 90 e6 df fc 60 2d cb"
    "50 1a 59 a8 fc c4 9c 4b f2 e5 f0 a2 1c 00 47 c2 ab f3 32 54 0d d0"
    "32 e1 67 c2 95 5d";
/* {client} send alert record (close_notify), then {server}'s. */
static const char RFC_C_ALERT[] =
    "17 03 03 00 13 c9 87 27 60 65 56 66 b7 4d 7f f1 15 3e fd 6d b6 d0"
    "b0 e3";
static const char RFC_S_ALERT[] =
    "17 03 03 00 13 b5 8f d6 71 66 eb f5 99 d2 47 20 cf be 7e fa 7a 88"
    "64 a9";

struct fx {
	struct tlsrec_pool	*pool;
	int			 sv[2];		/* [0] ours, [1] the peer's */
};

static int
setup(void **state)
{
	struct fx	*f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_non_null(f->pool = tlsrec_pool_new());
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    f->sv), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx	*f = *state;

	close(f->sv[0]);
	close(f->sv[1]);
	tlsrec_pool_free(f->pool);
	free(f);
	return 0;
}

static void
put(int fd, const uint8_t *p, size_t n)
{
	assert_int_equal(write(fd, p, n), (ssize_t)n);
}

static size_t
unhex_s(const char *s, uint8_t *out, size_t cap)
{
	size_t	n = unhex(s, out, cap);

	assert_true(n <= cap);
	return n;
}

/* A state and its mirror (secrets swapped): what one seals the other
 * opens. */
static void
pair(struct fx *f, uint16_t suite, struct tlsrec **a, struct tlsrec **b)
{
	struct tlsrec_keys	k, m;
	size_t			i;

	memset(&k, 0, sizeof(k));
	k.suite = suite;
	k.secret_len = suite == TLSREC_AES_256_GCM_SHA384 ? 48 : 32;
	for (i = 0; i < k.secret_len; i++) {
		k.rx_secret[i] = (uint8_t)(i * 7 + 1);
		k.tx_secret[i] = (uint8_t)(i * 13 + 5);
	}
	m = k;
	memcpy(m.rx_secret, k.tx_secret, sizeof(m.rx_secret));
	memcpy(m.tx_secret, k.rx_secret, sizeof(m.tx_secret));
	assert_non_null(*a = tlsrec_new(f->pool, &k));
	assert_non_null(*b = tlsrec_new(f->pool, &m));
}

static void
test_tlsrec_rfc8448_records(void **state)
{
	struct fx		*f = *state;
	struct tlsrec_keys	 k;
	struct tlsrec		*t;
	uint8_t			 rec[256], want[256], buf[128], pay[50];
	size_t			 n, i;
	ssize_t			 r;

	for (i = 0; i < sizeof(pay); i++)
		pay[i] = (uint8_t)i;
	memset(&k, 0, sizeof(k));
	k.suite = TLSREC_AES_128_GCM_SHA256;
	k.secret_len = unhex_s(RFC_C_AP, k.rx_secret, sizeof(k.rx_secret));
	assert_int_equal(unhex_s(RFC_S_AP, k.tx_secret, 48), 32);
	k.tx_seq = 1;
	assert_non_null(t = tlsrec_new(f->pool, &k));
	/* The server's record, byte for byte. */
	n = unhex_s(RFC_S_DATA, want, sizeof(want));
	r = tlsrec_seal(t, TLSREC_APPDATA, pay, sizeof(pay), 0, rec,
	    sizeof(rec));
	assert_int_equal(r, (ssize_t)n);
	assert_memory_equal(rec, want, n);
	n = unhex_s(RFC_S_ALERT, want, sizeof(want));
	r = tlsrec_seal(t, TLSREC_ALERT, (const uint8_t *)"\x01\x00", 2, 0,
	    rec, sizeof(rec));
	assert_int_equal(r, (ssize_t)n);
	assert_memory_equal(rec, want, n);
	/* The client's record opens to its payload, its alert to EOF. */
	n = unhex_s(RFC_C_DATA, rec, sizeof(rec));
	put(f->sv[1], rec, n);
	assert_int_equal(tlsrec_read(t, f->sv[0], buf, sizeof(buf)), 50);
	assert_memory_equal(buf, pay, 50);
	n = unhex_s(RFC_C_ALERT, rec, sizeof(rec));
	put(f->sv[1], rec, n);
	assert_int_equal(tlsrec_read(t, f->sv[0], buf, sizeof(buf)), 0);
	assert_int_equal(tlsrec_read(t, f->sv[0], buf, sizeof(buf)), 0);
	tlsrec_free(t);
}

/* ---- against OpenSSL ---- */

struct ossl {
	SSL_CTX		*sctx, *cctx;
	SSL		*s, *c;
	uint8_t		 cs[48], ss[48];
	size_t		 slen;
	unsigned	 got;
};

static struct ossl	*keylog_target;

static void
keylog(const SSL *ssl, const char *line)
{
	struct ossl	*o = keylog_target;
	const char	*p;
	uint8_t		*dst;

	(void)ssl;
	if (strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24) == 0)
		dst = o->cs, o->got |= 1;
	else if (strncmp(line, "SERVER_TRAFFIC_SECRET_0 ", 24) == 0)
		dst = o->ss, o->got |= 2;
	else
		return;
	p = strchr(line + 24, ' ');
	assert_non_null(p);
	o->slen = unhex_s(p + 1, dst, 48);
}

static void
cert_make(SSL_CTX *ctx)
{
	EVP_PKEY	*pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	X509		*x = X509_new();

	assert_non_null(pk);
	assert_non_null(x);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
	assert_int_equal(X509_set_pubkey(x, pk), 1);
	assert_true(X509_sign(x, pk, NULL) > 0);
	assert_int_equal(SSL_CTX_use_certificate(ctx, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(ctx, pk), 1);
	X509_free(x);
	EVP_PKEY_free(pk);
}

static void
drive(struct ossl *o)
{
	int	i, rs = 0, rc = 0;

	for (i = 0; i < 100 && (rs != 1 || rc != 1); i++) {
		if (rc != 1)
			rc = SSL_do_handshake(o->c);
		if (rs != 1)
			rs = SSL_do_handshake(o->s);
	}
	assert_int_equal(rs, 1);
	assert_int_equal(rc, 1);
}

/* A TLS 1.3 handshake over the pair, then the server side as tlsrec
 * (as tls_offload does): the OpenSSL client stays. */
static struct tlsrec *
ossl_start(struct fx *f, struct ossl *o, const char *suite, int maxver)
{
	struct tlsrec_keys	k;
	struct tlsrec		*t;

	memset(o, 0, sizeof(*o));
	keylog_target = o;
	assert_non_null(o->sctx = SSL_CTX_new(TLS_server_method()));
	assert_non_null(o->cctx = SSL_CTX_new(TLS_client_method()));
	cert_make(o->sctx);
	assert_int_equal(SSL_CTX_set_num_tickets(o->sctx, 0), 1);
	SSL_CTX_set_keylog_callback(o->sctx, keylog);
	assert_int_equal(SSL_CTX_set_ciphersuites(o->sctx, suite), 1);
	assert_int_equal(SSL_CTX_set_ciphersuites(o->cctx, suite), 1);
	assert_int_equal(SSL_CTX_set_max_proto_version(o->cctx, maxver), 1);
	SSL_CTX_set_mode(o->cctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	assert_non_null(o->s = SSL_new(o->sctx));
	assert_non_null(o->c = SSL_new(o->cctx));
	assert_int_equal(SSL_set_fd(o->s, f->sv[0]), 1);
	assert_int_equal(SSL_set_fd(o->c, f->sv[1]), 1);
	SSL_set_accept_state(o->s);
	SSL_set_connect_state(o->c);
	drive(o);
	if (maxver != TLS1_3_VERSION)
		return NULL;
	assert_int_equal(o->got, 3);
	assert_int_equal(SSL_has_pending(o->s), 0);
	memset(&k, 0, sizeof(k));
	k.suite = SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(o->s));
	k.secret_len = o->slen;
	memcpy(k.rx_secret, o->cs, o->slen);
	memcpy(k.tx_secret, o->ss, o->slen);
	assert_non_null(t = tlsrec_new(f->pool, &k));
	OPENSSL_cleanse(&k, sizeof(k));
	SSL_set_quiet_shutdown(o->s, 1);
	SSL_free(o->s);
	o->s = NULL;
	return t;
}

static void
ossl_end(struct ossl *o)
{
	SSL_free(o->c);
	SSL_free(o->s);
	SSL_CTX_free(o->cctx);
	SSL_CTX_free(o->sctx);
}

/* Client writes n bytes while tlsrec reads them (the pair's buffer is
 * smaller than large n). */
static void
c2s(struct ossl *o, struct tlsrec *t, int fd, size_t n)
{
	uint8_t	*src = malloc(n), *dst = malloc(n);
	size_t	 sent = 0, got = 0, i;
	int	 r, spins = 0;
	ssize_t	 k;

	assert_non_null(src);
	assert_non_null(dst);
	for (i = 0; i < n; i++)
		src[i] = (uint8_t)(i * 31 + n);
	while (got < n) {
		assert_true(++spins < 1000000);
		if (sent < n) {
			r = SSL_write(o->c, src + sent, (int)(n - sent));
			if (r > 0)
				sent += (size_t)r;
			else
				assert_int_equal(SSL_get_error(o->c, r),
				    SSL_ERROR_WANT_WRITE);
		}
		k = tlsrec_read(t, fd, dst + got, n - got);
		if (k != -EAGAIN) {
			assert_true(k > 0);
			got += (size_t)k;
		}
	}
	assert_memory_equal(src, dst, n);
	free(src);
	free(dst);
}

static void
s2c(struct ossl *o, struct tlsrec *t, int fd, size_t n)
{
	uint8_t	*src = malloc(n), *dst = malloc(n);
	size_t	 sent = 0, got = 0, i;
	int	 r, spins = 0;
	ssize_t	 k;

	assert_non_null(src);
	assert_non_null(dst);
	for (i = 0; i < n; i++)
		src[i] = (uint8_t)(i * 17 + 3);
	while (got < n) {
		assert_true(++spins < 1000000);
		if (sent < n) {
			k = tlsrec_write(t, fd, src + sent, n - sent);
			if (k != -EAGAIN) {
				assert_true(k > 0);
				sent += (size_t)k;
			}
		}
		r = SSL_read(o->c, dst + got, (int)(n - got));
		if (r > 0)
			got += (size_t)r;
		else
			assert_int_equal(SSL_get_error(o->c, r),
			    SSL_ERROR_WANT_READ);
	}
	assert_memory_equal(src, dst, n);
	free(src);
	free(dst);
}

static void
roundtrip(void **state, const char *suite)
{
	struct fx	*f = *state;
	struct ossl	 o;
	struct tlsrec	*t = ossl_start(f, &o, suite, TLS1_3_VERSION);
	size_t		 rx, tx;

	c2s(&o, t, f->sv[0], 1);
	s2c(&o, t, f->sv[0], 1);
	c2s(&o, t, f->sv[0], 300000);
	s2c(&o, t, f->sv[0], 300000);
	tlsrec_held(t, &rx, &tx);
	assert_int_equal(rx + tx, 0);	/* idle: nothing held */
	tlsrec_free(t);
	ossl_end(&o);
}

static void
test_tlsrec_openssl_aes128(void **state)
{
	roundtrip(state, "TLS_AES_128_GCM_SHA256");
}

static void
test_tlsrec_openssl_aes256(void **state)
{
	roundtrip(state, "TLS_AES_256_GCM_SHA384");
}

static void
test_tlsrec_openssl_chacha(void **state)
{
	roundtrip(state, "TLS_CHACHA20_POLY1305_SHA256");
}

static void
key_update(void **state, int type)
{
	struct fx	*f = *state;
	struct ossl	 o;
	struct tlsrec	*t = ossl_start(f, &o, "TLS_AES_128_GCM_SHA256",
			    TLS1_3_VERSION);
	uint64_t	 rxs, txs;
	int		 i;

	for (i = 0; i < 3; i++) {
		s2c(&o, t, f->sv[0], 1000);
		assert_int_equal(SSL_key_update(o.c, type), 1);
		c2s(&o, t, f->sv[0], 2000);
		assert_int_equal(tlsrec_key_updates(t), (uint64_t)i + 1);
		tlsrec_seqs(t, &rxs, &txs);
		assert_int_equal(rxs, 1);	/* the new key's first */
		/* Our reply (if asked) goes before our next data. */
		s2c(&o, t, f->sv[0], 5000);
		tlsrec_seqs(t, &rxs, &txs);
		assert_int_equal(txs, type == SSL_KEY_UPDATE_REQUESTED ? 1 :
		    (uint64_t)i * 2 + 2);
		c2s(&o, t, f->sv[0], 100);
	}
	/* And ours, asking the client to update as well. */
	tlsrec_key_update(t, true);
	s2c(&o, t, f->sv[0], 100);
	c2s(&o, t, f->sv[0], 100);
	assert_int_equal(tlsrec_key_updates(t), 4);
	tlsrec_free(t);
	ossl_end(&o);
}

static void
test_tlsrec_openssl_key_update_requested(void **state)
{
	key_update(state, SSL_KEY_UPDATE_REQUESTED);
}

static void
test_tlsrec_openssl_key_update_not_requested(void **state)
{
	key_update(state, SSL_KEY_UPDATE_NOT_REQUESTED);
}

static void
test_tlsrec_openssl_close_notify(void **state)
{
	struct fx	*f = *state;
	struct ossl	 o;
	struct tlsrec	*t = ossl_start(f, &o, "TLS_AES_128_GCM_SHA256",
			    TLS1_3_VERSION);
	uint8_t		 b[16];

	c2s(&o, t, f->sv[0], 10);
	assert_int_equal(SSL_shutdown(o.c), 0);
	assert_int_equal(tlsrec_read(t, f->sv[0], b, sizeof(b)), 0);
	assert_int_equal(tlsrec_read(t, f->sv[0], b, sizeof(b)), 0);
	tlsrec_free(t);
	ossl_end(&o);
}

/* A flipped bit: bad_record_mac reaches the OpenSSL client. */
static void
test_tlsrec_openssl_bad_mac_alert(void **state)
{
	struct fx	*f = *state;
	struct ossl	 o;
	struct tlsrec	*t = ossl_start(f, &o, "TLS_AES_128_GCM_SHA256",
			    TLS1_3_VERSION);
	uint8_t		 rec[64], b[16];
	ssize_t		 n;
	int		 r;

	assert_int_equal(SSL_write(o.c, "hello", 5), 5);
	n = read(f->sv[0], rec, sizeof(rec));
	assert_int_equal(n, 5 + 5 + 1 + 16);
	rec[7] ^= 0x10;
	put(f->sv[1], rec, (size_t)n);
	assert_int_equal(tlsrec_read(t, f->sv[0], b, sizeof(b)), -EBADMSG);
	assert_int_equal(tlsrec_read(t, f->sv[0], b, sizeof(b)), -EBADMSG);
	r = SSL_read(o.c, b, sizeof(b));
	assert_true(r <= 0);
	assert_int_equal(SSL_get_error(o.c, r), SSL_ERROR_SSL);
	assert_int_equal(ERR_GET_REASON(ERR_peek_error()),
	    SSL_R_SSLV3_ALERT_BAD_RECORD_MAC);
	ERR_clear_error();
	tlsrec_free(t);
	ossl_end(&o);
}

/* Our close_notify is RFC 8448's server alert record, byte for byte
 * (after its data record, seq 2), and opens with the client's keys (the
 * mirror state) to close_notify: EOF on a socket still open. */
static void
test_tlsrec_close_notify_sealed(void **state)
{
	struct fx		*f = *state;
	struct tlsrec_keys	 k, m;
	struct tlsrec		*t, *peer;
	uint8_t			 rec[64], want[64], buf[16];
	size_t			 n;

	memset(&k, 0, sizeof(k));
	k.suite = TLSREC_AES_128_GCM_SHA256;
	k.secret_len = unhex_s(RFC_C_AP, k.rx_secret, sizeof(k.rx_secret));
	assert_int_equal(unhex_s(RFC_S_AP, k.tx_secret, 48), 32);
	k.tx_seq = 2;
	m = k;
	memcpy(m.rx_secret, k.tx_secret, sizeof(m.rx_secret));
	memcpy(m.tx_secret, k.rx_secret, sizeof(m.tx_secret));
	m.rx_seq = 2;
	m.tx_seq = 0;
	assert_non_null(t = tlsrec_new(f->pool, &k));
	assert_non_null(peer = tlsrec_new(f->pool, &m));
	assert_int_equal(tlsrec_close_notify(t, f->sv[0]), 0);
	n = unhex_s(RFC_S_ALERT, want, sizeof(want));
	assert_int_equal(read(f->sv[1], rec, sizeof(rec)), (ssize_t)n);
	assert_memory_equal(rec, want, n);
	/* Once: nothing more is written, and no data after it. */
	assert_int_equal(tlsrec_close_notify(t, f->sv[0]), -EPIPE);
	assert_int_equal(tlsrec_write(t, f->sv[0], (const uint8_t *)"x", 1),
	    -EPIPE);
	assert_int_equal(read(f->sv[1], buf, sizeof(buf)), -1);
	assert_int_equal(errno, EAGAIN);
	put(f->sv[0], rec, n);	/* to the peer's end */
	assert_int_equal(tlsrec_read(peer, f->sv[1], buf, sizeof(buf)), 0);
	assert_int_equal(tlsrec_read(peer, f->sv[1], buf, sizeof(buf)), 0);
	tlsrec_free(peer);
	tlsrec_free(t);
}

static int	seen_level = -1, seen_desc = -1;

static void
alert_seen(int write_p, int version, int content_type, const void *buf,
    size_t len, SSL *ssl, void *arg)
{
	const uint8_t	*b = buf;

	(void)version;
	(void)ssl;
	(void)arg;
	if (!write_p && content_type == SSL3_RT_ALERT && len == 2) {
		seen_level = b[0];
		seen_desc = b[1];
	}
}

/* An OpenSSL client reads it as a clean close: alert(warning,
 * close_notify), SSL_ERROR_ZERO_RETURN. */
static void
test_tlsrec_openssl_sees_close_notify(void **state)
{
	struct fx	*f = *state;
	struct ossl	 o;
	struct tlsrec	*t = ossl_start(f, &o, "TLS_CHACHA20_POLY1305_SHA256",
			    TLS1_3_VERSION);
	uint8_t		 b[16];
	int		 r;

	s2c(&o, t, f->sv[0], 100);
	SSL_set_msg_callback(o.c, alert_seen);
	assert_int_equal(tlsrec_close_notify(t, f->sv[0]), 0);
	r = SSL_read(o.c, b, sizeof(b));
	assert_int_equal(SSL_get_error(o.c, r), SSL_ERROR_ZERO_RETURN);
	assert_int_equal(seen_level, 1);
	assert_int_equal(seen_desc, 0);
	tlsrec_free(t);
	ossl_end(&o);
}

/* Not after a fatal alert of ours, and not inside a record the socket
 * took only part of unless the rest goes first. */
static void
test_tlsrec_close_notify_not_after_error(void **state)
{
	struct fx	*f = *state;
	struct tlsrec	*a, *b;
	uint8_t		 rec[64], buf[64];
	ssize_t		 n;

	pair(f, TLSREC_AES_128_GCM_SHA256, &a, &b);
	n = tlsrec_seal(b, TLSREC_APPDATA, "hello", 5, 0, rec, sizeof(rec));
	rec[n - 1] ^= 1;
	put(f->sv[1], rec, (size_t)n);
	assert_int_equal(tlsrec_read(a, f->sv[0], buf, sizeof(buf)),
	    -EBADMSG);
	/* The bad_record_mac alert alone reached the peer. */
	assert_int_equal(read(f->sv[1], buf, sizeof(buf)), 5 + 3 + 16);
	assert_int_equal(tlsrec_close_notify(a, f->sv[0]), -EBADMSG);
	assert_int_equal(read(f->sv[1], buf, sizeof(buf)), -1);
	assert_int_equal(errno, EAGAIN);
	tlsrec_free(a);
	tlsrec_free(b);
}

/* A record the socket took only part of: close_notify waits behind it
 * (-EAGAIN, nothing else written) and goes right after it once the
 * socket takes the rest; the peer reads all the data, then EOF. */
static void
test_tlsrec_close_notify_after_partial_record(void **state)
{
	struct fx	*f = *state;
	struct tlsrec	*a, *b;
	uint8_t		 src[16000], *dst;
	size_t		 sent = 0, got = 0, rx, tx, cap = 1 << 20;
	ssize_t		 r;
	int		 sz = 4096;

	pair(f, TLSREC_AES_128_GCM_SHA256, &a, &b);
	assert_int_equal(setsockopt(f->sv[0], SOL_SOCKET, SO_SNDBUF, &sz,
	    sizeof(sz)), 0);
	memset(src, 0x5a, sizeof(src));
	while ((r = tlsrec_write(a, f->sv[0], src, sizeof(src))) != -EAGAIN) {
		assert_int_equal(r, (ssize_t)sizeof(src));
		sent += sizeof(src);
	}
	tlsrec_held(a, &rx, &tx);
	assert_true(tx > 0);
	assert_int_equal(tlsrec_close_notify(a, f->sv[0]), -EAGAIN);
	assert_non_null(dst = malloc(cap));
	do {
		while ((r = tlsrec_read(b, f->sv[1], dst, cap)) > 0)
			got += (size_t)r;
		assert_int_equal(r, -EAGAIN);
		r = tlsrec_close_notify(a, f->sv[0]);
	} while (r == -EAGAIN);
	assert_int_equal(r, 0);
	/* The partial record's plaintext, then close_notify. */
	while ((r = tlsrec_read(b, f->sv[1], dst, cap)) > 0)
		got += (size_t)r;
	assert_int_equal(r, 0);
	assert_int_equal(got, sent + sizeof(src));
	free(dst);
	tlsrec_free(a);
	tlsrec_free(b);
}

/* TLS 1.2 is not ours: no traffic secrets are logged. */
static void
test_tlsrec_openssl_tls12_no_secrets(void **state)
{
	struct fx	*f = *state;
	struct ossl	 o;

	assert_null(ossl_start(f, &o, "TLS_AES_128_GCM_SHA256",
	    TLS1_2_VERSION));
	assert_int_equal(SSL_version(o.s), TLS1_2_VERSION);
	assert_int_equal(o.got, 0);
	ossl_end(&o);
}

/* ---- bad and awkward records, between two tlsrec states ---- */

static ssize_t
seal_put(struct fx *f, struct tlsrec *b, uint8_t type, const void *p,
    size_t n, size_t pad)
{
	uint8_t	rec[TLSREC_MAX_REC + 300];
	ssize_t	r = tlsrec_seal(b, type, p, n, pad, rec, sizeof(rec));

	assert_true(r > 0);
	put(f->sv[1], rec, (size_t)r);
	return r;
}

static void
test_tlsrec_padding_and_empty(void **state)
{
	struct fx	*f = *state;
	struct tlsrec	*a, *b;
	uint8_t		 buf[64];

	pair(f, TLSREC_AES_256_GCM_SHA384, &a, &b);
	(void)seal_put(f, b, TLSREC_APPDATA, "", 0, 0);
	(void)seal_put(f, b, TLSREC_APPDATA, "", 0, 200);
	(void)seal_put(f, b, TLSREC_APPDATA, "abc", 3, 255);
	(void)seal_put(f, b, TLSREC_APPDATA, "de", 2, 0);
	assert_int_equal(tlsrec_read(a, f->sv[0], buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "abcde", 5);
	/* Only empty records: nothing to return, nothing held. */
	(void)seal_put(f, b, TLSREC_APPDATA, "", 0, 0);
	assert_int_equal(tlsrec_read(a, f->sv[0], buf, sizeof(buf)),
	    -EAGAIN);
	tlsrec_free(a);
	tlsrec_free(b);
}

/* Two records delivered one byte at a time: nothing until each is whole,
 * each exactly once. */
static void
test_tlsrec_split_every_byte(void **state)
{
	struct fx	*f = *state;
	struct tlsrec	*a, *b;
	uint8_t		 rec[2 * 600], buf[1200], pay[1100];
	ssize_t		 n1, n2, r;
	size_t		 i, got = 0;

	pair(f, TLSREC_CHACHA20_POLY1305_SHA256, &a, &b);
	for (i = 0; i < sizeof(pay); i++)
		pay[i] = (uint8_t)(i ^ 0x5a);
	n1 = tlsrec_seal(b, TLSREC_APPDATA, pay, 500, 3, rec, sizeof(rec));
	n2 = tlsrec_seal(b, TLSREC_APPDATA, pay + 500, 500, 0, rec + n1,
	    sizeof(rec) - (size_t)n1);
	assert_true(n1 > 0 && n2 > 0);
	for (i = 0; i < (size_t)(n1 + n2); i++) {
		put(f->sv[1], rec + i, 1);
		r = tlsrec_read(a, f->sv[0], buf + got, sizeof(buf) - got);
		if (i + 1 == (size_t)n1 || i + 1 == (size_t)(n1 + n2)) {
			assert_int_equal(r, 500);
			got += 500;
		} else {
			assert_int_equal(r, -EAGAIN);
		}
	}
	assert_int_equal(got, 1000);
	assert_memory_equal(buf, pay, 1000);
	tlsrec_free(a);
	tlsrec_free(b);
}

/* Many records in one read; a reader with less room than a record
 * gets it in pieces from what is held. */
static void
test_tlsrec_many_records_small_reader(void **state)
{
	struct fx	*f = *state;
	struct tlsrec	*a, *b;
	uint8_t		 pay[4000], buf[4000 * 8];
	size_t		 i, got = 0, rx, tx;
	ssize_t		 r;

	pair(f, TLSREC_AES_128_GCM_SHA256, &a, &b);
	for (i = 0; i < sizeof(pay); i++)
		pay[i] = (uint8_t)(i * 3);
	for (i = 0; i < 8; i++)
		(void)seal_put(f, b, TLSREC_APPDATA, pay, sizeof(pay), i);
	r = tlsrec_read(a, f->sv[0], buf, 7);
	assert_int_equal(r, 7);
	got = 7;
	tlsrec_held(a, &rx, &tx);
	assert_true(rx > 0);
	while (got < sizeof(buf)) {
		r = tlsrec_read(a, f->sv[0], buf + got, 1000);
		assert_true(r > 0 && r <= 1000);
		got += (size_t)r;
	}
	for (i = 0; i < 8; i++)
		assert_memory_equal(buf + i * sizeof(pay), pay, sizeof(pay));
	assert_int_equal(tlsrec_read(a, f->sv[0], buf, 1000), -EAGAIN);
	tlsrec_held(a, &rx, &tx);
	assert_int_equal(rx, 0);
	/* A maximal record straight into a large reader. */
	memset(buf, 0xab, TLSREC_MAX_PT);
	(void)seal_put(f, b, TLSREC_APPDATA, buf, TLSREC_MAX_PT, 0);
	memset(buf, 0, TLSREC_MAX_PT);
	assert_int_equal(tlsrec_read(a, f->sv[0], buf, sizeof(buf)),
	    TLSREC_MAX_PT);
	assert_int_equal(buf[0], 0xab);
	assert_int_equal(buf[TLSREC_MAX_PT - 1], 0xab);
	tlsrec_free(a);
	tlsrec_free(b);
}

static void
expect_bad(struct fx *f, struct tlsrec *a, const uint8_t *rec, size_t n,
    ssize_t want)
{
	uint8_t	buf[256];

	put(f->sv[1], rec, n);
	assert_int_equal(tlsrec_read(a, f->sv[0], buf, sizeof(buf)), want);
	assert_int_equal(tlsrec_read(a, f->sv[0], buf, sizeof(buf)), want);
}

static void
test_tlsrec_flipped_bit(void **state)
{
	struct fx	*f = *state;
	struct tlsrec	*a, *b;
	uint8_t		 rec[64];
	ssize_t		 n, r;
	size_t		 bit;

	/* Every bit of a record: the header is checked or AAD, the rest
	 * AEAD.  A longer length waits for bytes that never come. */
	for (bit = 0; bit < 8 * 35; bit += 3) {
		pair(f, TLSREC_AES_128_GCM_SHA256, &a, &b);
		n = tlsrec_seal(b, TLSREC_APPDATA, "0123456789abc", 13, 0,
		    rec, sizeof(rec));
		assert_int_equal(n, 5 + 14 + 16);
		rec[bit / 8] ^= (uint8_t)(1 << (bit % 8));
		put(f->sv[1], rec, (size_t)n);
		assert_int_equal(shutdown(f->sv[1], SHUT_WR), 0);
		r = tlsrec_read(a, f->sv[0], rec, sizeof(rec));
		if (r == -EAGAIN)
			r = tlsrec_read(a, f->sv[0], rec, sizeof(rec));
		assert_true(r < 0 && r != -EAGAIN);
		tlsrec_free(a);
		tlsrec_free(b);
		close(f->sv[0]);
		close(f->sv[1]);
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM |
		    SOCK_NONBLOCK, 0, f->sv), 0);
	}
}

static void
fresh(struct fx *f)
{
	close(f->sv[0]);
	close(f->sv[1]);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    f->sv), 0);
}

/* One fresh pair of states and sockets per bad record. */
static void
one_bad(struct fx *f, const uint8_t *rec, size_t n, ssize_t want)
{
	struct tlsrec	*a, *b;

	fresh(f);
	pair(f, TLSREC_AES_128_GCM_SHA256, &a, &b);
	expect_bad(f, a, rec, n, want);
	tlsrec_free(a);
	tlsrec_free(b);
}

static void
test_tlsrec_bad_framing(void **state)
{
	struct fx	*f = *state;
	struct tlsrec	*a, *b;
	uint8_t		 rec[64], big[5] = { 23, 3, 3, 0x40, 0x12 };
	uint8_t		 over[5] = { 23, 3, 3, 0x41, 0x01 };
	uint8_t		 tiny[5 + 16] = { 23, 3, 3, 0, 16 };
	uint8_t		 buf[16];
	ssize_t		 n;

	pair(f, TLSREC_AES_128_GCM_SHA256, &a, &b);
	n = tlsrec_seal(b, TLSREC_APPDATA, "x", 1, 0, rec, sizeof(rec));
	tlsrec_free(a);
	tlsrec_free(b);
	rec[0] = 22;		/* outer type: handshake */
	one_bad(f, rec, (size_t)n, -EPROTO);
	rec[0] = 23;
	rec[2] = 1;		/* legacy version 0x0301 */
	one_bad(f, rec, (size_t)n, -EPROTO);
	one_bad(f, big, sizeof(big), -EMSGSIZE);	/* 2^14 + 18 */
	one_bad(f, over, sizeof(over), -EMSGSIZE);	/* > 2^14 + 256 */
	one_bad(f, tiny, sizeof(tiny), -EPROTO);	/* no room for a type */

	/* Truncated: the peer's FIN inside a record. */
	pair(f, TLSREC_AES_128_GCM_SHA256, &a, &b);
	n = tlsrec_seal(b, TLSREC_APPDATA, "hello", 5, 0, rec, sizeof(rec));
	put(f->sv[1], rec, (size_t)n - 3);
	assert_int_equal(tlsrec_read(a, f->sv[0], buf, sizeof(buf)),
	    -EAGAIN);
	shutdown(f->sv[1], SHUT_WR);
	assert_int_equal(tlsrec_read(a, f->sv[0], buf, sizeof(buf)),
	    -EPROTO);
	tlsrec_free(a);
	tlsrec_free(b);
}

/* What may follow the handshake: KeyUpdate only, whole before a key
 * change, never interleaved. */
static void
test_tlsrec_bad_inner(void **state)
{
	struct fx	*f = *state;
	struct tlsrec	*a, *b;
	uint8_t		 buf[64];
	const uint8_t	 ku[5] = { 24, 0, 0, 1, 0 };
	const uint8_t	 nst[6] = { 4, 0, 0, 2, 0, 0 };
	const uint8_t	 ku2[5] = { 24, 0, 0, 1, 2 };

	struct {
		uint8_t		 type;
		const void	*p;
		size_t		 n;
		ssize_t		 want;
	} bad[] = {
		{ 0, "", 0, -EPROTO },		/* all zero: no type */
		{ 20, "\x01", 1, -EPROTO },	/* change_cipher_spec */
		{ 99, "x", 1, -EPROTO },	/* unknown type */
		{ TLSREC_HANDSHAKE, nst, sizeof(nst), -EPROTO },
		{ TLSREC_HANDSHAKE, ku2, sizeof(ku2), -EPROTO },
		{ TLSREC_HANDSHAKE, "", 0, -EPROTO },
		{ TLSREC_ALERT, "\x02\x28", 2, -ECONNRESET },
		{ TLSREC_ALERT, "\x01\x00\x00", 3, -EPROTO },
	};
	size_t		 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fresh(f);
		pair(f, TLSREC_AES_128_GCM_SHA256, &a, &b);
		(void)seal_put(f, b, bad[i].type, bad[i].p, bad[i].n, 0);
		assert_int_equal(tlsrec_read(a, f->sv[0], buf, sizeof(buf)),
		    bad[i].want);
		tlsrec_free(a);
		tlsrec_free(b);
	}

	/* KeyUpdate with more bytes after it in its record. */
	fresh(f);
	pair(f, TLSREC_AES_128_GCM_SHA256, &a, &b);
	{
		uint8_t	two[10];

		memcpy(two, ku, 5);
		memcpy(two + 5, ku, 5);
		(void)seal_put(f, b, TLSREC_HANDSHAKE, two, 10, 0);
	}
	assert_int_equal(tlsrec_read(a, f->sv[0], buf, sizeof(buf)),
	    -EPROTO);
	tlsrec_free(a);
	tlsrec_free(b);

	/* Application data inside a split handshake message. */
	fresh(f);
	pair(f, TLSREC_AES_128_GCM_SHA256, &a, &b);
	(void)seal_put(f, b, TLSREC_HANDSHAKE, ku, 2, 0);
	(void)seal_put(f, b, TLSREC_APPDATA, "x", 1, 0);
	assert_int_equal(tlsrec_read(a, f->sv[0], buf, sizeof(buf)),
	    -EPROTO);
	tlsrec_free(a);
	tlsrec_free(b);
}

/* A KeyUpdate split over three records, then data under the new key;
 * the sealing side updates its own tx key by hand. */
static void
test_tlsrec_key_update_split(void **state)
{
	struct fx	*f = *state;
	struct tlsrec	*a, *b;
	const uint8_t	 ku[5] = { 24, 0, 0, 1, 1 };
	uint8_t		 buf[64];
	uint64_t	 rxs, txs;

	pair(f, TLSREC_AES_128_GCM_SHA256, &a, &b);
	(void)seal_put(f, b, TLSREC_HANDSHAKE, ku, 1, 0);
	(void)seal_put(f, b, TLSREC_HANDSHAKE, ku + 1, 3, 7);
	(void)seal_put(f, b, TLSREC_HANDSHAKE, ku + 4, 1, 0);
	assert_int_equal(tlsrec_read(a, f->sv[0], buf, sizeof(buf)),
	    -EAGAIN);
	assert_int_equal(tlsrec_key_updates(a), 1);
	/* b's next records use the old key: a must refuse them. */
	(void)seal_put(f, b, TLSREC_APPDATA, "old", 3, 0);
	assert_int_equal(tlsrec_read(a, f->sv[0], buf, sizeof(buf)),
	    -EBADMSG);
	tlsrec_free(a);
	tlsrec_free(b);

	/* The proper way: b's own KeyUpdate through tlsrec_write; a answers
	 * (update_requested) before its next data, and b follows. */
	close(f->sv[0]);
	close(f->sv[1]);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    f->sv), 0);
	pair(f, TLSREC_AES_128_GCM_SHA256, &a, &b);
	tlsrec_key_update(b, true);
	assert_int_equal(tlsrec_write(b, f->sv[1], (const uint8_t *)"new", 3),
	    3);
	assert_int_equal(tlsrec_read(a, f->sv[0], buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "new", 3);
	assert_int_equal(tlsrec_write(a, f->sv[0], (const uint8_t *)"ok", 2),
	    2);
	assert_int_equal(tlsrec_read(b, f->sv[1], buf, sizeof(buf)), 2);
	assert_memory_equal(buf, "ok", 2);
	assert_int_equal(tlsrec_key_updates(b), 1);
	tlsrec_seqs(a, &rxs, &txs);
	assert_int_equal(rxs, 1);
	assert_int_equal(txs, 1);
	tlsrec_free(a);
	tlsrec_free(b);
}

/* Sequence numbers: never reused.  Our own KeyUpdate comes at
 * TLSREC_REKEY_SEQ; a counter at 2^64 - 1 refuses. */
static void
test_tlsrec_sequence_limits(void **state)
{
	struct fx		*f = *state;
	struct tlsrec_keys	 k;
	struct tlsrec		*a, *b;
	uint8_t			 rec[64], buf[16];
	uint64_t		 rxs, txs;

	memset(&k, 0, sizeof(k));
	k.suite = TLSREC_AES_128_GCM_SHA256;
	k.secret_len = 32;
	k.tx_seq = UINT64_MAX;
	k.rx_seq = UINT64_MAX;
	assert_non_null(a = tlsrec_new(f->pool, &k));
	assert_int_equal(tlsrec_seal(a, TLSREC_APPDATA, "x", 1, 0, rec,
	    sizeof(rec)), -EOVERFLOW);
	put(f->sv[1], (const uint8_t *)"\x17\x03\x03\x00\x11"
	    "0123456789abcdefg", 22);
	assert_int_equal(tlsrec_read(a, f->sv[0], buf, sizeof(buf)),
	    -EOVERFLOW);
	tlsrec_free(a);

	k.tx_seq = TLSREC_REKEY_SEQ;
	k.rx_seq = 0;
	assert_non_null(a = tlsrec_new(f->pool, &k));
	memcpy(k.rx_secret, k.tx_secret, sizeof(k.rx_secret));
	k.rx_seq = TLSREC_REKEY_SEQ;
	assert_non_null(b = tlsrec_new(f->pool, &k));
	close(f->sv[0]);
	close(f->sv[1]);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    f->sv), 0);
	assert_int_equal(tlsrec_write(a, f->sv[0], (const uint8_t *)"x", 1),
	    1);
	tlsrec_seqs(a, &rxs, &txs);
	assert_int_equal(txs, 1);
	assert_int_equal(tlsrec_read(b, f->sv[1], buf, sizeof(buf)), 1);
	assert_int_equal(tlsrec_key_updates(b), 1);
	tlsrec_free(a);
	tlsrec_free(b);
}

/* tls.key_update_records: our KeyUpdate after every `records` records
 * under one key (the KeyUpdate's own record counts under the old key),
 * and the peer follows each. */
static void
test_tlsrec_key_update_records(void **state)
{
	struct fx	*f = *state;
	struct tlsrec	*a, *b;
	uint8_t		 buf[16];
	ssize_t		 n;
	size_t		 got = 0;
	int		 i;

	pair(f, TLSREC_CHACHA20_POLY1305_SHA256, &a, &b);
	tlsrec_set_key_update_records(a, 3);
	for (i = 0; i < 10; i++)
		assert_int_equal(tlsrec_write(a, f->sv[0],
		    (const uint8_t *)"0123456789" + i, 1), 1);
	/* Before the 4th, 7th and 10th records. */
	assert_int_equal(tlsrec_key_updates_sent(a), 3);
	while (got < 10 && (n = tlsrec_read(b, f->sv[1], buf + got,
	    sizeof(buf) - got)) > 0)
		got += (size_t)n;
	assert_int_equal(got, 10);
	assert_memory_equal(buf, "0123456789", 10);
	assert_int_equal(tlsrec_key_updates(b), 3);
	assert_int_equal(tlsrec_key_updates_sent(b), 0);
	tlsrec_free(a);
	tlsrec_free(b);
}

/* A socket that takes part of a record: the rest is kept, counted when
 * out, and the bytes arrive once, in order. */
static void
test_tlsrec_partial_write(void **state)
{
	struct fx	*f = *state;
	struct tlsrec	*a, *b;
	uint8_t		*src, *dst;
	size_t		 n = 1 << 20, sent = 0, got = 0, rx, tx, i;
	ssize_t		 r;
	int		 sz = 4096, eagain = 0;

	pair(f, TLSREC_AES_128_GCM_SHA256, &a, &b);
	assert_int_equal(setsockopt(f->sv[0], SOL_SOCKET, SO_SNDBUF, &sz,
	    sizeof(sz)), 0);
	assert_non_null(src = malloc(n));
	assert_non_null(dst = malloc(n));
	for (i = 0; i < n; i++)
		src[i] = (uint8_t)(i * 7 + (i >> 12));
	while (got < n) {
		if (sent < n) {
			r = tlsrec_write(a, f->sv[0], src + sent, n - sent);
			if (r == -EAGAIN) {
				eagain++;
				tlsrec_held(a, &rx, &tx);
			} else {
				assert_true(r > 0 && r <= TLSREC_MAX_PT);
				sent += (size_t)r;
			}
		}
		r = tlsrec_read(b, f->sv[1], dst + got, n - got);
		if (r != -EAGAIN) {
			assert_true(r > 0);
			got += (size_t)r;
		}
	}
	assert_true(eagain > 0);
	assert_memory_equal(src, dst, n);
	tlsrec_held(a, &rx, &tx);
	assert_int_equal(tx, 0);
	/* A retry with fewer bytes than are pending is refused. */
	while ((r = tlsrec_write(a, f->sv[0], src, 16000)) != -EAGAIN)
		assert_int_equal(r, 16000);
	tlsrec_held(a, &rx, &tx);
	assert_true(tx > 0);
	do {
		while (read(f->sv[1], dst, n) > 0)
			;
		r = tlsrec_write(a, f->sv[0], src, 10);
	} while (r == -EAGAIN);
	assert_int_equal(r, -EPROTO);
	free(src);
	free(dst);
	tlsrec_free(a);
	tlsrec_free(b);
}

static void
test_tlsrec_bad_keys(void **state)
{
	struct fx		*f = *state;
	struct tlsrec_keys	 k;

	memset(&k, 0, sizeof(k));
	k.suite = 0x1304;	/* TLS_AES_128_CCM_SHA256: not ours */
	k.secret_len = 32;
	errno = 0;
	assert_null(tlsrec_new(f->pool, &k));
	assert_int_equal(errno, EINVAL);
	k.suite = TLSREC_AES_256_GCM_SHA384;
	assert_null(tlsrec_new(f->pool, &k));	/* SHA-384 wants 48 */
	assert_int_equal(errno, EINVAL);
}

/* Each KeyUpdate costs three HKDF expansions and a re-key: 32 in a row
 * are taken, the 33rd with no application data since is
 * unexpected_message (Go stops at 16, BoringSSL at 32); data resets the
 * count. */
static void
test_tlsrec_key_update_flood(void **state)
{
	struct fx	*f = *state;
	struct tlsrec	*a, *b;
	uint8_t		 buf[64];
	int		 round, i;

	pair(f, TLSREC_AES_128_GCM_SHA256, &a, &b);
	for (round = 0; round < 2; round++) {
		for (i = 0; i < 32; i++) {
			tlsrec_key_update(b, false);
			assert_int_equal(tlsrec_write(b, f->sv[1], NULL, 0), 0);
		}
		assert_int_equal(tlsrec_write(b, f->sv[1],
		    (const uint8_t *)"x", 1), 1);
		assert_int_equal(tlsrec_read(a, f->sv[0], buf, sizeof(buf)),
		    1);
	}
	assert_int_equal(tlsrec_key_updates(a), 64);
	for (i = 0; i < 33; i++) {
		tlsrec_key_update(b, false);
		assert_int_equal(tlsrec_write(b, f->sv[1], NULL, 0), 0);
	}
	assert_int_equal(tlsrec_read(a, f->sv[0], buf, sizeof(buf)),
	    -EPROTO);
	assert_int_equal(tlsrec_key_updates(a), 64 + 32);
	/* The alert reaches the peer (b never changed the key it reads). */
	assert_int_equal(tlsrec_read(b, f->sv[1], buf, sizeof(buf)),
	    -ECONNRESET);
	tlsrec_free(a);
	tlsrec_free(b);
}

/* A reader with little room: what tlsrec reads beyond it, and so holds,
 * stays within about two records however much the peer has sent. */
static void
test_tlsrec_small_reader_holds_little(void **state)
{
	struct fx	*f = *state;
	struct tlsrec	*a, *b;
	uint8_t		 pay[4000], buf[4000];
	size_t		 i, got = 0, rx, tx;
	ssize_t		 r;

	pair(f, TLSREC_AES_128_GCM_SHA256, &a, &b);
	for (i = 0; i < sizeof(pay); i++)
		pay[i] = (uint8_t)(i * 5 + 1);
	for (i = 0; i < 20; i++)
		(void)seal_put(f, b, TLSREC_APPDATA, pay, sizeof(pay), 0);
	for (i = 0; i < 20; i++) {
		for (got = 0; got < sizeof(pay); got += (size_t)r) {
			r = tlsrec_read(a, f->sv[0], buf + got, 100);
			assert_true(r > 0 && r <= 100);
			tlsrec_held(a, &rx, &tx);
			assert_true(rx <= TLSREC_MAX_PT + TLSREC_MAX_REC);
		}
		assert_memory_equal(buf, pay, sizeof(pay));
	}
	assert_int_equal(tlsrec_read(a, f->sv[0], buf, 100), -EAGAIN);
	tlsrec_held(a, &rx, &tx);
	assert_int_equal(rx, 0);
	tlsrec_free(a);
	tlsrec_free(b);
}

/* A length whose sum with the type byte and padding wraps is refused
 * before any cipher call (tlsrec_seal is open to tests and fuzzing). */
static void
test_tlsrec_seal_length_wrap(void **state)
{
	struct fx	*f = *state;
	struct tlsrec	*a, *b;
	uint8_t		 rec[64];
	uint64_t	 rxs, txs;

	pair(f, TLSREC_AES_128_GCM_SHA256, &a, &b);
	assert_int_equal(tlsrec_seal(a, TLSREC_APPDATA, rec, SIZE_MAX, 0, rec,
	    sizeof(rec)), -EMSGSIZE);
	assert_int_equal(tlsrec_seal(a, TLSREC_APPDATA, rec, SIZE_MAX - 9, 9,
	    rec, sizeof(rec)), -EMSGSIZE);
	tlsrec_seqs(a, &rxs, &txs);
	assert_int_equal(txs, 0);
	tlsrec_free(a);
	tlsrec_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(x) cmocka_unit_test_setup_teardown(x, setup, teardown)
		T(test_tlsrec_rfc8448_records),
		T(test_tlsrec_openssl_aes128),
		T(test_tlsrec_openssl_aes256),
		T(test_tlsrec_openssl_chacha),
		T(test_tlsrec_openssl_key_update_requested),
		T(test_tlsrec_openssl_key_update_not_requested),
		T(test_tlsrec_openssl_close_notify),
		T(test_tlsrec_openssl_bad_mac_alert),
		T(test_tlsrec_close_notify_sealed),
		T(test_tlsrec_openssl_sees_close_notify),
		T(test_tlsrec_close_notify_not_after_error),
		T(test_tlsrec_close_notify_after_partial_record),
		T(test_tlsrec_openssl_tls12_no_secrets),
		T(test_tlsrec_padding_and_empty),
		T(test_tlsrec_split_every_byte),
		T(test_tlsrec_many_records_small_reader),
		T(test_tlsrec_flipped_bit),
		T(test_tlsrec_bad_framing),
		T(test_tlsrec_bad_inner),
		T(test_tlsrec_key_update_split),
		T(test_tlsrec_sequence_limits),
		T(test_tlsrec_key_update_records),
		T(test_tlsrec_partial_write),
		T(test_tlsrec_bad_keys),
		T(test_tlsrec_key_update_flood),
		T(test_tlsrec_small_reader_holds_little),
		T(test_tlsrec_seal_length_wrap),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

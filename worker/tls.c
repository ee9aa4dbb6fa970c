/*
 * Server TLS context: certificate chain and key from files, TLS 1.2+,
 * ALPN http/1.1 or nothing (never h2), SNI check against the configured
 * hostname, and the DERP meta-certificate appended last to the chain
 * (PROTOCOL.md 2.1, 2.5) so TLS 1.3 clients can skip a round trip.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "common/log.h"
#include "derp/key.h"
#include "worker/ktls.h"
#include "worker/tlsrec.h"
#include "worker/wk.h"

#define METACERT_DAYS	30

static void
tls_err(char *err, size_t errlen, const char *what, const char *path)
{
	unsigned long	e = ERR_get_error();
	char		buf[256];

	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s%s%s: %s", what, path ? " " : "",
	    path ? path : "", e ? buf : "failed");
	ERR_clear_error();
}

/* A throw-away Ed25519 certificate whose CN carries the server key. */
static X509 *
metacert_new(const uint8_t pub[DERP_KEY_LEN])
{
	EVP_PKEY	*pk = NULL;
	EVP_PKEY_CTX	*kc = NULL;
	X509		*x = NULL;
	X509_NAME	*name;
	X509_EXTENSION	*ext = NULL;
	char		 cn[8 + DERP_KEY_HEX_LEN + 1];

	memcpy(cn, "derpkey", 7);
	derp_key_format_hex(cn + 7, pub);
	if ((kc = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL)) == NULL ||
	    EVP_PKEY_keygen_init(kc) != 1 || EVP_PKEY_keygen(kc, &pk) != 1)
		goto fail;
	if ((x = X509_new()) == NULL || X509_set_version(x, 2) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(x), DERP_PROTO_VERSION)
	    != 1)
		goto fail;
	if (X509_gmtime_adj(X509_getm_notBefore(x),
	    -(long)METACERT_DAYS * 86400) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x),
	    (long)METACERT_DAYS * 86400) == NULL)
		goto fail;
	name = X509_get_subject_name(x);
	/* An explicit PrintableString, as Go encodes it: the MBSTRING path
	 * would enforce the 64-character CN bound this 71-character name
	 * exceeds (Go does not enforce it, and clients accept it). */
	if (X509_NAME_add_entry_by_NID(name, NID_commonName,
	    V_ASN1_PRINTABLESTRING, (const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, name) != 1 || X509_set_pubkey(x, pk) != 1)
		goto fail;
	if ((ext = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints,
	    "critical,CA:FALSE")) == NULL || X509_add_ext(x, ext, -1) != 1)
		goto fail;
	if (X509_sign(x, pk, NULL) <= 0)
		goto fail;
	X509_EXTENSION_free(ext);
	EVP_PKEY_free(pk);
	EVP_PKEY_CTX_free(kc);
	return x;
fail:
	X509_EXTENSION_free(ext);
	X509_free(x);
	EVP_PKEY_free(pk);
	EVP_PKEY_CTX_free(kc);
	return NULL;
}

static int
alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	unsigned int	i = 0;

	(void)ssl;
	(void)arg;
	while (i < inlen) {
		unsigned int	n = in[i];

		if (i + 1 + n > inlen)
			break;
		if (n == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0) {
			*out = in + i + 1;
			*outlen = (unsigned char)n;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + n;
	}
	return SSL_TLSEXT_ERR_NOACK;	/* DERP clients offer no ALPN */
}

/* Refuse a present SNI naming another host; clients dialling an IP send
 * none, and are served. */
static int
sni_check(SSL *ssl, int *alert, void *arg)
{
	const char	*want = arg;
	const char	*sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	size_t		 n;

	if (sni == NULL || want == NULL || want[0] == '\0')
		return SSL_TLSEXT_ERR_OK;
	n = strlen(want);
	if (strcasecmp(sni, want) == 0 || (strncasecmp(sni, want, n) == 0 &&
	    sni[n] == '.' && sni[n + 1] == '\0'))
		return SSL_TLSEXT_ERR_OK;
	*alert = SSL_AD_UNRECOGNIZED_NAME;
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static bool
is_ip_literal(const char *s)
{
	unsigned char	buf[16];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf)
	    == 1;
}

/* ---- record layer hand-off (worker/tlsrec.c, doc/design.md) ---- */

/* The two application traffic secrets while the handshake runs. */
struct tls_secrets {
	struct tlsrec_keys k;
	unsigned	 got;		/* 1 client's, 2 server's */
};

static int
unhex(const char *s, size_t n, uint8_t *out)
{
	size_t	i;
	int	hi, lo;

	for (i = 0; i < n; i++) {
		hi = OPENSSL_hexchar2int((unsigned char)s[2 * i]);
		lo = OPENSSL_hexchar2int((unsigned char)s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/*
 * NSS key log lines ("LABEL <client_random hex> <secret hex>"): keep the
 * two application traffic secrets, ignore the rest.  What is copied is
 * wiped when the hand-off is done or refused; nothing is logged.
 */
static void
keylog_cb(const SSL *ssl, const char *line)
{
	struct conn		*c = SSL_get_app_data(ssl);
	struct tls_secrets	*ts;
	uint8_t			 cr[SSL3_RANDOM_SIZE], want[SSL3_RANDOM_SIZE];
	uint8_t			*dst;
	const char		*p;
	size_t			 n;
	unsigned		 bit;

	if (c == NULL)
		return;
	if (strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24) == 0)
		bit = 1;
	else if (strncmp(line, "SERVER_TRAFFIC_SECRET_0 ", 24) == 0)
		bit = 2;
	else
		return;
	p = line + 24;
	n = strlen(p);
	/* The client random, a space, then a 32- or 48-byte secret. */
	if (n < 2 * SSL3_RANDOM_SIZE + 1 || p[2 * SSL3_RANDOM_SIZE] != ' ')
		return;
	n = (n - 2 * SSL3_RANDOM_SIZE - 1) / 2;
	if ((n != 32 && n != 48) || unhex(p, SSL3_RANDOM_SIZE, cr) < 0 ||
	    SSL_get_client_random(ssl, want, sizeof(want)) != sizeof(want) ||
	    memcmp(cr, want, sizeof(cr)) != 0)
		return;
	if ((ts = c->rec_keys) == NULL &&
	    (ts = c->rec_keys = calloc(1, sizeof(*ts))) == NULL)
		return;		/* no offload: OpenSSL keeps it */
	if (ts->got != 0 && ts->k.secret_len != n) {
		ts->got = 0;	/* inconsistent: refuse the hand-off */
		return;
	}
	dst = bit == 1 ? ts->k.rx_secret : ts->k.tx_secret;
	if (unhex(p + 2 * SSL3_RANDOM_SIZE + 1, n, dst) < 0) {
		ts->got = 0;
		return;
	}
	ts->k.secret_len = n;
	ts->got |= bit;
}

static void
secrets_free(struct conn *c)
{
	if (c->rec_keys == NULL)
		return;
	OPENSSL_cleanse(c->rec_keys, sizeof(*c->rec_keys));
	free(c->rec_keys);
	c->rec_keys = NULL;
}

/* Whether OpenSSL's state after this handshake is exactly what tlsrec
 * starts from: TLS 1.3, both secrets, nothing buffered, nothing sent. */
static bool
offload_ok(struct conn *c)
{
	const SSL_CIPHER	*ci = SSL_get_current_cipher(c->ssl);

	return c->rec_keys != NULL && c->rec_keys->got == 3 && ci != NULL &&
	    SSL_has_pending(c->ssl) == 0 &&
	    SSL_get_num_tickets(c->ssl) == 0 &&
	    SSL_get_early_data_status(c->ssl) != SSL_EARLY_DATA_ACCEPTED &&
	    /* 0 for a socket BIO: what proves the last flight was flushed
	     * is SSL_do_handshake() returning 1, so call this only then. */
	    BIO_wpending(SSL_get_wbio(c->ssl)) == 0;
}

void
tls_offload(struct conn *c)
{
	struct worker		*w = c->w;
	struct tls_secrets	*ts = c->rec_keys;
	struct tlsrec		*t;

	if (SSL_version(c->ssl) != TLS1_3_VERSION) {
		if (SSL_version(c->ssl) == TLS1_2_VERSION)
			w->m->tls_rec_tls12++;
		else
			w->m->tls_rec_other++;
		secrets_free(c);
		return;
	}
	if (!offload_ok(c)) {
		w->m->tls_rec_other++;
		secrets_free(c);
		return;
	}
	ts->k.suite = SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(
	    c->ssl));
	ts->k.rx_seq = ts->k.tx_seq = 0;
	if (w->recpool == NULL)
		w->recpool = tlsrec_pool_new();
	if (w->recpool != NULL &&
	    strcmp(w->cfg.tls_record_layer, "kernel") == 0 &&
	    (w->ktls_suites & ktls_suite_bit(ts->k.suite)) != 0) {
		switch (ktls_install(w->recpool, c->fd, &ts->k)) {
		case 0:
			secrets_free(c);
			SSL_set_quiet_shutdown(c->ssl, 1);
			SSL_free(c->ssl);
			c->ssl = NULL;
			c->ktls = true;
			w->m->tls_rec_kernel++;
			return;
		case -EPROTO:	/* half the kernel's: no one can go on */
			secrets_free(c);
			w->m->tls_rec_other++;
			conn_close(c, "ktls_failed");
			return;
		default:	/* the socket is as it was: ours instead */
			break;
		}
	}
	t = w->recpool != NULL ? tlsrec_new(w->recpool, &ts->k) : NULL;
	secrets_free(c);
	if (t == NULL) {
		w->m->tls_rec_other++;
		return;
	}
	tlsrec_set_key_update_records(t,
	    (uint64_t)w->cfg.tls_key_update_records);
	/* The fd stays open; OpenSSL sends nothing more. */
	SSL_set_quiet_shutdown(c->ssl, 1);
	SSL_free(c->ssl);
	c->ssl = NULL;
	c->rec = t;
	w->m->tls_rec_offloaded++;
}

static const char *
ktls_name(const struct worker *w, uint16_t suite)
{
	return (w->ktls_suites & ktls_suite_bit(suite)) != 0 ? "kernel" :
	    "derpd";
}

void
tls_kernel_probe(struct worker *w)
{
	char	why[192];

	if (w->ssl_ctx == NULL || w->ktls_probed ||
	    strcmp(w->cfg.tls_record_layer, "kernel") != 0)
		return;
	w->ktls_probed = true;
	if (w->recpool == NULL && (w->recpool = tlsrec_pool_new()) == NULL) {
		log_warn("ktls_unavailable", "reason=\"out of memory\" "
		    "fallback=derpd");
		return;
	}
	if ((w->ktls_suites = ktls_probe(w->recpool, why, sizeof(why))) == 0) {
		log_warn("ktls_unavailable", "reason=\"%s\" fallback=derpd",
		    why);
		return;
	}
	log_info("ktls_ready", "aes_128_gcm=%s aes_256_gcm=%s "
	    "chacha20_poly1305=%s",
	    ktls_name(w, TLSREC_AES_128_GCM_SHA256),
	    ktls_name(w, TLSREC_AES_256_GCM_SHA384),
	    ktls_name(w, TLSREC_CHACHA20_POLY1305_SHA256));
	if (w->ktls_suites != 7)
		log_warn("ktls_partial", "reason=\"%s\" fallback=derpd", why);
}

void
tls_close_notify(struct conn *c)
{
	if (c->state == ST_TLS || c->peer_gone)
		return;
	if (c->ktls) {
		ktls_close_notify(c->fd);
		return;
	}
	if (c->rec != NULL) {
		/* Best effort: the socket closes next either way. */
		(void)tlsrec_close_notify(c->rec, c->fd);
		return;
	}
	if (c->ssl == NULL)
		return;
	/* Sends ours, never waits for the peer's (0 or WANT_WRITE). */
	ERR_clear_error();
	(void)SSL_shutdown(c->ssl);
	ERR_clear_error();
}

void
tls_conn_end(struct conn *c)
{
	secrets_free(c);
	tlsrec_free(c->rec);
	c->rec = NULL;
}

SSL_CTX *
tls_ctx_new(const struct config *cfg, const uint8_t pub[DERP_KEY_LEN],
    char *err, size_t errlen)
{
	SSL_CTX	*ctx;
	X509	*meta = NULL;

	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		tls_err(err, errlen, "SSL_CTX_new", NULL);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	/* DERP clients (Go's derphttp, ours) keep no session cache: no
	 * resumption, so no TLS 1.2 cache and no TLS 1.3 tickets, which
	 * cost an encryption per handshake and memory per connection. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	(void)SSL_CTX_set_num_tickets(ctx, 0);
	/* Server preference, AES-128-GCM first as Go orders them: fewer AES
	 * rounds per relayed byte, and SHA-256 (often in hardware) for the
	 * handshake's transcript and HKDF instead of SHA-384. */
	if (SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:"
	    "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384") != 1) {
		tls_err(err, errlen, "cannot set the TLS 1.3 cipher suites",
		    NULL);
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_certificate)
	    != 1) {
		tls_err(err, errlen, "cannot load certificate",
		    cfg->tls_certificate);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_private_key,
	    SSL_FILETYPE_PEM) != 1) {
		tls_err(err, errlen, "cannot load private key",
		    cfg->tls_private_key);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_err(err, errlen, "private key does not match certificate",
		    cfg->tls_private_key);
		goto fail;
	}
	if ((meta = metacert_new(pub)) == NULL ||
	    SSL_CTX_add1_chain_cert(ctx, meta) != 1) {
		tls_err(err, errlen, "cannot build the DERP meta-certificate",
		    NULL);
		goto fail;
	}
	X509_free(meta);
	/* The record layer hand-off needs the traffic secrets; the key log
	 * callback is OpenSSL's only way to them for a server. */
	if (strcmp(cfg->tls_record_layer, "openssl") != 0)
		SSL_CTX_set_keylog_callback(ctx, keylog_cb);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	if (!is_ip_literal(cfg->hostname)) {
		SSL_CTX_set_tlsext_servername_callback(ctx, sni_check);
		SSL_CTX_set_tlsext_servername_arg(ctx,
		    (void *)(uintptr_t)cfg->hostname);
	}
	return ctx;
fail:
	X509_free(meta);
	SSL_CTX_free(ctx);
	return NULL;
}

time_t
tls_ctx_not_after(SSL_CTX *ctx)
{
	X509		*x = SSL_CTX_get0_certificate(ctx);
	struct tm	 tm;

	if (x == NULL || ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
		return 0;
	return timegm(&tm);
}

void
tls_ctx_describe(SSL_CTX *ctx, char *subject, char *issuer, size_t len)
{
	X509	*x = SSL_CTX_get0_certificate(ctx);

	subject[0] = issuer[0] = '\0';
	if (x == NULL)
		return;
	(void)X509_NAME_get_text_by_NID(X509_get_subject_name(x),
	    NID_commonName, subject, (int)len);
	(void)X509_NAME_get_text_by_NID(X509_get_issuer_name(x),
	    NID_commonName, issuer, (int)len);
}

enum tls_fail
tls_fail_classify(int ssl_error, unsigned long err, int sys_errno)
{
	int	reason = ERR_GET_REASON(err);

	if (ssl_error == SSL_ERROR_ZERO_RETURN)
		return TLS_FAIL_EOF;
	if (ssl_error == SSL_ERROR_SYSCALL && err == 0)
		return sys_errno == 0 || sys_errno == ECONNRESET ||
		    sys_errno == EPIPE ? TLS_FAIL_EOF : TLS_FAIL_OTHER;
	if (err == 0 || ERR_GET_LIB(err) != ERR_LIB_SSL)
		return TLS_FAIL_OTHER;
	if (reason >= SSL_AD_REASON_OFFSET) {
		/* The client's fatal alert: protocol_version is a version
		 * mismatch seen from its side, the rest its verdict. */
		return reason == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION ?
		    TLS_FAIL_VERSION : TLS_FAIL_PEER_ALERT;
	}
	switch (reason) {
	case SSL_R_UNEXPECTED_EOF_WHILE_READING:
		return TLS_FAIL_EOF;
	case SSL_R_CALLBACK_FAILED:	/* our only fatal callback: SNI */
		return TLS_FAIL_SNI;
	case SSL_R_UNSUPPORTED_PROTOCOL:
	case SSL_R_VERSION_TOO_LOW:
	case SSL_R_VERSION_TOO_HIGH:
	case SSL_R_NO_PROTOCOLS_AVAILABLE:
	case SSL_R_INAPPROPRIATE_FALLBACK:
	case SSL_R_UNSUPPORTED_SSL_VERSION:
		return TLS_FAIL_VERSION;
	case SSL_R_NO_SHARED_CIPHER:
	case SSL_R_NO_SHARED_GROUPS:
	case SSL_R_NO_SUITABLE_KEY_SHARE:
	case SSL_R_NO_SHARED_SIGNATURE_ALGORITHMS:
	case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
	case SSL_R_NO_CIPHERS_AVAILABLE:
		return TLS_FAIL_CIPHER;
	case SSL_R_HTTP_REQUEST:
	case SSL_R_HTTPS_PROXY_REQUEST:
	case SSL_R_WRONG_VERSION_NUMBER:
	case SSL_R_PACKET_LENGTH_TOO_LONG:
	case SSL_R_RECORD_LENGTH_MISMATCH:
	case SSL_R_UNKNOWN_PROTOCOL:
	case SSL_R_UNEXPECTED_MESSAGE:
	case SSL_R_UNEXPECTED_RECORD:
	case SSL_R_LENGTH_MISMATCH:
	case SSL_R_BAD_PACKET_LENGTH:
	case SSL_R_ENCRYPTED_LENGTH_TOO_LONG:
		return TLS_FAIL_NOT_TLS;
	default:
		return TLS_FAIL_OTHER;
	}
}

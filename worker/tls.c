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

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "derp/key.h"
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

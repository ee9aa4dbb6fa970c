/*
 * Unit tests for the certificate helpers: the ACME challenge token check
 * (worker/acme.c) and the TLS handshake failure classifier
 * (worker/tls.c).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "worker/acme.h"
#include "worker/wk.h"

static void
test_certs_acme_token(void **state)
{
	const char	*tok = NULL;
	char		 longer[sizeof(ACME_PREFIX) + ACME_TOKEN_MAX + 1];
	size_t		 plen = sizeof(ACME_PREFIX) - 1;

	(void)state;
	assert_int_equal(acme_token("/generate_204", &tok), 0);
	assert_int_equal(acme_token("/.well-known/acme-challenge", &tok), 0);
	assert_int_equal(acme_token(ACME_PREFIX "aZ09_-", &tok), 1);
	assert_string_equal(tok, "aZ09_-");
	assert_int_equal(acme_token(ACME_PREFIX, &tok), -EINVAL);
	assert_int_equal(acme_token(ACME_PREFIX "..", &tok), -EINVAL);
	assert_int_equal(acme_token(ACME_PREFIX "a/../b", &tok), -EINVAL);
	assert_int_equal(acme_token(ACME_PREFIX ".env", &tok), -EINVAL);
	assert_int_equal(acme_token(ACME_PREFIX "%2e%2e", &tok), -EINVAL);
	assert_int_equal(acme_token(ACME_PREFIX "a b", &tok), -EINVAL);
	/* One over the maximum, then exactly the maximum. */
	memset(longer, 'a', sizeof(longer) - 1);
	memcpy(longer, ACME_PREFIX, plen);
	longer[plen + ACME_TOKEN_MAX + 1] = '\0';
	assert_int_equal(acme_token(longer, &tok), -EINVAL);
	longer[plen + ACME_TOKEN_MAX] = '\0';
	assert_int_equal(acme_token(longer, &tok), 1);
	assert_int_equal(strlen(tok), ACME_TOKEN_MAX);
}

static void
test_certs_acme_challenge_off_or_absent(void **state)
{
	char	body[16];
	size_t	n = 0;

	(void)state;
	assert_int_equal(acme_challenge("", ACME_PREFIX "tok", body,
	    sizeof(body), &n), 0);
	assert_int_equal(acme_challenge("/nonexistent", "/", body,
	    sizeof(body), &n), 0);
	assert_int_equal(acme_challenge("/nonexistent", ACME_PREFIX "tok",
	    body, sizeof(body), &n), 404);
	assert_int_equal(acme_challenge("/nonexistent", ACME_PREFIX "../x",
	    body, sizeof(body), &n), 400);
}

static unsigned long
ssl_err(int reason)
{
	return ERR_PACK(ERR_LIB_SSL, 0, reason);
}

static void
test_certs_tls_fail_classify(void **state)
{
	(void)state;
	assert_int_equal(tls_fail_classify(SSL_ERROR_SYSCALL, 0, 0),
	    TLS_FAIL_EOF);
	assert_int_equal(tls_fail_classify(SSL_ERROR_SYSCALL, 0, ECONNRESET),
	    TLS_FAIL_EOF);
	assert_int_equal(tls_fail_classify(SSL_ERROR_SYSCALL, 0, ENOMEM),
	    TLS_FAIL_OTHER);
	assert_int_equal(tls_fail_classify(SSL_ERROR_ZERO_RETURN, 0, 0),
	    TLS_FAIL_EOF);
	assert_int_equal(tls_fail_classify(SSL_ERROR_SSL,
	    ssl_err(SSL_R_UNEXPECTED_EOF_WHILE_READING), 0), TLS_FAIL_EOF);
	assert_int_equal(tls_fail_classify(SSL_ERROR_SSL,
	    ssl_err(SSL_R_CALLBACK_FAILED), 0), TLS_FAIL_SNI);
	assert_int_equal(tls_fail_classify(SSL_ERROR_SSL,
	    ssl_err(SSL_R_UNSUPPORTED_PROTOCOL), 0), TLS_FAIL_VERSION);
	assert_int_equal(tls_fail_classify(SSL_ERROR_SSL,
	    ssl_err(SSL_R_TLSV1_ALERT_PROTOCOL_VERSION), 0), TLS_FAIL_VERSION);
	assert_int_equal(tls_fail_classify(SSL_ERROR_SSL,
	    ssl_err(SSL_R_NO_SHARED_CIPHER), 0), TLS_FAIL_CIPHER);
	assert_int_equal(tls_fail_classify(SSL_ERROR_SSL,
	    ssl_err(SSL_R_HTTP_REQUEST), 0), TLS_FAIL_NOT_TLS);
	assert_int_equal(tls_fail_classify(SSL_ERROR_SSL,
	    ssl_err(SSL_R_WRONG_VERSION_NUMBER), 0), TLS_FAIL_NOT_TLS);
	assert_int_equal(tls_fail_classify(SSL_ERROR_SSL,
	    ssl_err(SSL_R_TLSV1_ALERT_UNKNOWN_CA), 0), TLS_FAIL_PEER_ALERT);
	assert_int_equal(tls_fail_classify(SSL_ERROR_SSL,
	    ssl_err(SSL_R_BAD_SIGNATURE), 0), TLS_FAIL_OTHER);
	assert_int_equal(tls_fail_classify(SSL_ERROR_SSL,
	    ERR_PACK(ERR_LIB_EVP, 0, 1), 0), TLS_FAIL_OTHER);
	assert_string_equal(metrics_tls_fail_name(TLS_FAIL_NOT_TLS), "not_tls");
	assert_string_equal(metrics_tls_fail_name(TLS_FAIL_N), "other");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_certs_acme_token),
		cmocka_unit_test(test_certs_acme_challenge_off_or_absent),
		cmocka_unit_test(test_certs_tls_fail_classify),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * derpd ends its TLS connections with close_notify (RFC 8446 6.1) when
 * it closes them on purpose, with either tls.record_layer: an OpenSSL
 * client sees SSL_ERROR_ZERO_RETURN, not an EOF without close_notify,
 * after a protocol error (a bad DERP frame, a bad HTTP request) and when
 * the node stops (a DERP session and an idle keep-alive HTTP client);
 * and not to a peer that closed first.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "harness.h"

#define OFFLOADED	"derpd_tls_record_offload{result=\"offloaded\"}"

/* SSL_read until the connection ends: its SSL_get_error, or -1 when it
 * has not ended by the deadline. */
static int
read_to_end(SSL *ssl, int fd)
{
	uint64_t	deadline = now_ms() + (uint64_t)time_scaled(10000);
	struct pollfd	p = { .fd = fd, .events = POLLIN };
	char		buf[4096];
	int		r, e;

	for (;;) {
		ERR_clear_error();
		if ((r = SSL_read(ssl, buf, sizeof(buf))) > 0)
			continue;
		e = SSL_get_error(ssl, r);
		if (e != SSL_ERROR_WANT_READ)
			return e;
		if (now_ms() >= deadline)
			return -1;
		(void)poll(&p, 1, (int)(deadline - now_ms()));
	}
}

static const char *
ssl_error_name(int e)
{
	switch (e) {
	case SSL_ERROR_ZERO_RETURN:	return "ZERO_RETURN";
	case SSL_ERROR_SYSCALL:		return "SYSCALL (EOF, no close_notify)";
	case SSL_ERROR_SSL:		return "SSL";
	case -1:			return "timeout";
	default:			return "other";
	}
}

static void
expect_close_notify(SSL *ssl, int fd, const char *what)
{
	int	e = read_to_end(ssl, fd);

	if (e != SSL_ERROR_ZERO_RETURN)
		fail_msg("%s: %s, want ZERO_RETURN (close_notify)", what,
		    ssl_error_name(e));
	assert_true((SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN) != 0);
}

/* A TLS client of our own (blocking fd), past the handshake. */
struct raw {
	SSL_CTX	*ctx;
	SSL	*ssl;
	int	 fd;
};

static void
raw_open(const struct node *n, struct raw *r)
{
	assert_non_null(r->ctx = SSL_CTX_new(TLS_client_method()));
	assert_int_equal(SSL_CTX_load_verify_locations(r->ctx, n->cert,
	    NULL), 1);
	SSL_CTX_set_verify(r->ctx, SSL_VERIFY_PEER, NULL);
	assert_true((r->fd = raw_connect(n->port)) >= 0);
	assert_non_null(r->ssl = SSL_new(r->ctx));
	assert_int_equal(SSL_set_tlsext_host_name(r->ssl, "localhost"), 1);
	assert_int_equal(SSL_set_fd(r->ssl, r->fd), 1);
	assert_int_equal(SSL_connect(r->ssl), 1);
	assert_int_equal(SSL_version(r->ssl), TLS1_3_VERSION);
}

static void
raw_close(struct raw *r)
{
	SSL_free(r->ssl);
	close(r->fd);
	SSL_CTX_free(r->ctx);
}

static void
raw_send(struct raw *r, const char *s)
{
	assert_int_equal(SSL_write(r->ssl, s, (int)strlen(s)),
	    (int)strlen(s));
}

/* Read one response (up to the blank line and a 0-length body). */
static void
raw_get_204(struct raw *r)
{
	char	buf[2048];
	size_t	len = 0;
	int	k;

	raw_send(r, "GET /generate_204 HTTP/1.1\r\nHost: localhost\r\n\r\n");
	while (strstr(buf, "\r\n\r\n") == NULL && len < sizeof(buf) - 1) {
		k = SSL_read(r->ssl, buf + len, (int)(sizeof(buf) - 1 - len));
		assert_true(k > 0);
		len += (size_t)k;
		buf[len] = '\0';
	}
	assert_non_null(strstr(buf, "HTTP/1.1 204"));
}

static void
protocol_errors(const char *layer)
{
	/* NotePreferred with 2 bytes: frame_invalid (PROTOCOL.md 3). */
	static const uint8_t	bad[] = { 0x07, 0, 0, 0, 2, 1, 1 };
	struct node		*n = node_start_layer(layer, NULL);
	struct client		*c = node_client(n);
	struct raw		 r;
	int			 e;

	assert_int_equal(SSL_write(client_ssl(c), bad, sizeof(bad)),
	    (int)sizeof(bad));
	expect_close_notify(client_ssl(c), client_fd(c), "bad DERP frame");
	assert_true(node_log_wait(n, "reason=frame_invalid", 5000));
	client_free(c);
	raw_open(n, &r);
	raw_send(&r, "GET / HTTP/1.1\r\nHost\x01: x\r\n\r\n");
	expect_close_notify(r.ssl, r.fd, "bad HTTP request");
	assert_true(node_log_wait(n, "reason=http_bad_request", 5000));
	raw_close(&r);
	/* The peer's FIN first (no close_notify of its own): derpd's EOF,
	 * and no close_notify back to a peer that is gone. */
	raw_open(n, &r);
	assert_int_equal(shutdown(r.fd, SHUT_WR), 0);
	e = read_to_end(r.ssl, r.fd);
	if (e == SSL_ERROR_ZERO_RETURN || e == -1)
		fail_msg("after our FIN: %s", ssl_error_name(e));
	raw_close(&r);
	assert_true(node_metric(n, OFFLOADED) >= (strcmp(layer, "derpd") ==
	    0 ? 2 : 0));
	if (strcmp(layer, "openssl") == 0)
		assert_int_equal(node_metric(n, OFFLOADED), 0);
	node_stop(n);
	node_free(n);
}

static void
test_close_notify_protocol_error_derpd(void **state)
{
	(void)state;
	protocol_errors("derpd");
}

static void
test_close_notify_protocol_error_openssl(void **state)
{
	(void)state;
	protocol_errors("openssl");
}

/* "kernel": kernel TLS where this kernel has it (test_ktls checks which
 * layer took the connections), derpd's own otherwise. */
static void
test_close_notify_protocol_error_kernel(void **state)
{
	(void)state;
	protocol_errors("kernel");
}

static void
stopping(const char *layer)
{
	struct node	*n = node_start_layer(layer, NULL);
	struct client	*c = node_client(n);
	struct raw	 r;

	raw_open(n, &r);
	raw_get_204(&r);	/* keep-alive: idle when the node stops */
	node_stop(n);
	expect_close_notify(client_ssl(c), client_fd(c), "DERP at stop");
	expect_close_notify(r.ssl, r.fd, "HTTP at stop");
	raw_close(&r);
	client_free(c);
	node_free(n);
}

static void
test_close_notify_stop_derpd(void **state)
{
	(void)state;
	stopping("derpd");
}

static void
test_close_notify_stop_openssl(void **state)
{
	(void)state;
	stopping("openssl");
}

static void
test_close_notify_stop_kernel(void **state)
{
	(void)state;
	stopping("kernel");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_close_notify_protocol_error_derpd),
		cmocka_unit_test(test_close_notify_protocol_error_openssl),
		cmocka_unit_test(test_close_notify_stop_derpd),
		cmocka_unit_test(test_close_notify_stop_openssl),
		cmocka_unit_test(test_close_notify_protocol_error_kernel),
		cmocka_unit_test(test_close_notify_stop_kernel),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * How derpd's outbound mesh links end their TLS: the test plays the mesh
 * peer (a TLS server speaking just enough DERP: the 101 upgrade and a
 * ServerKey) and watches what the link sends when derpd ends it.  A link
 * derpd ends itself (the node stops, the peer's ServerKey is bad) ends
 * with a close_notify the peer's OpenSSL reads as SSL_ERROR_ZERO_RETURN;
 * a link whose peer closed first gets none back.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "derp/derp.h"
#include "harness.h"

struct peer {
	int	 lfd, fd;
	SSL_CTX	*ctx;
	SSL	*ssl;
	uint16_t port;
};

static void
peer_listen(struct peer *p, const struct node *n)
{
	struct sockaddr_in	sa = { .sin_family = AF_INET };
	socklen_t		sl = sizeof(sa);
	char			key[600];

	memset(p, 0, sizeof(*p));
	p->fd = -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((p->lfd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(bind(p->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(p->lfd, 4), 0);
	assert_int_equal(getsockname(p->lfd, (struct sockaddr *)&sa, &sl), 0);
	p->port = ntohs(sa.sin_port);
	snprintf(key, sizeof(key), "%s/key.pem", n->dir);
	assert_non_null(p->ctx = SSL_CTX_new(TLS_server_method()));
	assert_int_equal(SSL_CTX_use_certificate_chain_file(p->ctx, n->cert),
	    1);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(p->ctx, key,
	    SSL_FILETYPE_PEM), 1);
	SSL_CTX_set_num_tickets(p->ctx, 0);
}

static bool
wait_fd(int fd, int ms)
{
	struct pollfd	pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, time_scaled(ms)) == 1;
}

/* Accept the link, finish TLS, read its upgrade request, answer 101 and
 * a ServerKey frame (magic as given), read its ClientInfo. */
static void
peer_serve(struct peer *p, const char *magic)
{
	static const char	resp[] = "HTTP/1.1 101 Switching Protocols\r\n"
	    "Upgrade: DERP\r\nConnection: Upgrade\r\n\r\n";
	uint8_t			frame[DERP_FRAME_HDR_LEN + 40], buf[4096];
	size_t			got = 0;
	int			r;

	assert_true(wait_fd(p->lfd, 15000));
	assert_true((p->fd = accept(p->lfd, NULL, NULL)) >= 0);
	assert_non_null(p->ssl = SSL_new(p->ctx));
	assert_int_equal(SSL_set_fd(p->ssl, p->fd), 1);
	assert_int_equal(SSL_accept(p->ssl), 1);
	while (got < 4 || memmem(buf, got, "\r\n\r\n", 4) == NULL) {
		assert_true(got < sizeof(buf));
		assert_true((r = SSL_read(p->ssl, buf + got,
		    (int)(sizeof(buf) - got))) > 0);
		got += (size_t)r;
	}
	assert_non_null(memmem(buf, got, "Upgrade: DERP", 13));
	frame[0] = DERP_FRAME_SERVER_KEY;
	frame[1] = frame[2] = frame[3] = 0;
	frame[4] = 40;
	memcpy(frame + DERP_FRAME_HDR_LEN, magic, DERP_MAGIC_LEN);
	memset(frame + DERP_FRAME_HDR_LEN + DERP_MAGIC_LEN, 0x42, 32);
	assert_int_equal(SSL_write(p->ssl, resp, sizeof(resp) - 1),
	    (int)sizeof(resp) - 1);
	assert_int_equal(SSL_write(p->ssl, frame, sizeof(frame)),
	    (int)sizeof(frame));
}

/* Read until the link's end: SSL_get_error of the final read. */
static int
peer_end(struct peer *p)
{
	uint8_t	buf[4096];
	int	r;

	for (;;) {
		assert_true(wait_fd(p->fd, 15000));
		ERR_clear_error();
		if ((r = SSL_read(p->ssl, buf, sizeof(buf))) <= 0)
			return SSL_get_error(p->ssl, r);
	}
}

static void
peer_free(struct peer *p)
{
	SSL_free(p->ssl);
	SSL_CTX_free(p->ctx);
	if (p->fd >= 0)
		close(p->fd);
	close(p->lfd);
}

static struct node *
node_meshed_to(struct node *n, const struct peer *p)
{
	char	extra[1024], path[512];
	FILE	*f;

	snprintf(path, sizeof(path), "%s/mesh.psk", n->dir);
	assert_non_null(f = fopen(path, "w"));
	fputs(REGION_PSK, f);
	fclose(f);
	snprintf(extra, sizeof(extra), "mesh = { psk_file = \"%s\"; "
	    "ca_file = \"%s\"; peers = ( \"localhost:%u/127.0.0.1:%u\" ); "
	    "};\n", path, n->cert, p->port, p->port);
	return node_start_in(n, true, extra);
}

/* A node meshed to the test's peer p, whose link got as far as p's
 * ServerKey (with magic). */
static struct node *
link_to_peer(struct peer *p, const char *magic)
{
	struct node	*n = node_new();

	node_make_cert(n);
	peer_listen(p, n);
	n = node_meshed_to(n, p);
	peer_serve(p, magic);
	return n;
}

/* The node stops while its link waits for ServerInfo. */
static void
test_mesh_close_notify_on_stop(void **state)
{
	struct node	*n;
	struct peer	 p;

	(void)state;
	n = link_to_peer(&p, DERP_MAGIC);
	node_stop(n);
	assert_int_equal(peer_end(&p), SSL_ERROR_ZERO_RETURN);
	peer_free(&p);
	node_free(n);
}

/* A ServerKey with the wrong magic: the link gives up, cleanly. */
static void
test_mesh_close_notify_on_bad_server_key(void **state)
{
	struct node	*n;
	struct peer	 p;

	(void)state;
	n = link_to_peer(&p, "DERPNOPE");
	assert_int_equal(peer_end(&p), SSL_ERROR_ZERO_RETURN);
	assert_true(node_log_wait(n, "reason=bad_server_key", 10000));
	node_stop(n);
	peer_free(&p);
	node_free(n);
}

/* The peer closes first: the link answers with no close_notify (the
 * peer is gone), so the peer's next read sees the bare EOF. */
static void
test_mesh_no_close_notify_after_peer_eof(void **state)
{
	struct node	*n;
	struct peer	 p;
	int		 e;

	(void)state;
	n = link_to_peer(&p, DERP_MAGIC);
	assert_int_equal(SSL_shutdown(p.ssl), 0);	/* ours sent */
	assert_true(node_log_wait(n, "reason=eof", 10000));
	e = peer_end(&p);
	assert_int_not_equal(e, SSL_ERROR_ZERO_RETURN);
	node_stop(n);
	peer_free(&p);
	node_free(n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mesh_close_notify_on_stop),
		cmocka_unit_test(test_mesh_close_notify_on_bad_server_key),
		cmocka_unit_test(test_mesh_no_close_notify_after_peer_eof),
	};

	/* OpenSSL answers a bare EOF with an alert: to a closed socket. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

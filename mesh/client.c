/*
 * Outbound DERP client: TCP with a deadline, optional TLS (OpenSSL) with
 * the meta-certificate fast start, the HTTP upgrade, the handshake up to
 * ServerInfo, then framed send/receive with bounded buffers.  Blocking
 * with poll() deadlines by design: tools and tests use one per thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "derp/key.h"
#include "derp/wire.h"
#include "mesh/client.h"
#include "mesh/wsclient.h"

#define IN_CAP		(DERP_FRAME_HDR_LEN + DERP_MAX_CLIENT_FRAME)
#define OUT_CAP		(4 * 1024 * 1024)
#define HEAD_MAX	8192

struct client {
	int			 fd;
	SSL_CTX			*ctx;
	SSL			*ssl;
	int			 timeout_ms;
	bool			 can_ack_pings;
	bool			 fast;
	uint8_t			 priv[DERP_KEY_LEN];
	uint8_t			 pub[DERP_KEY_LEN];
	uint8_t			 server[DERP_KEY_LEN];
	struct derp_server_info	 si;
	uint8_t			*in;
	size_t			 in_off, in_len, consumed;
	uint8_t			*out;
	size_t			 out_len;

	struct wsclient		*ws;		/* WebSocket mode */
	bool			 ws_on;		/* ... after the 101 */
};

static int64_t
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
left_ms(int64_t deadline)
{
	int64_t	l;

	if (deadline < 0)
		return -1;
	l = deadline - now_ms();
	return l < 0 ? 0 : (int)l;
}

static int
wait_fd(int fd, short ev, int64_t deadline)
{
	struct pollfd	p = { .fd = fd, .events = ev };
	int		r;

	do {
		r = poll(&p, 1, left_ms(deadline));
	} while (r == -1 && errno == EINTR);
	if (r == 0)
		return -ETIMEDOUT;
	return r < 0 ? -errno : 0;
}

static int
tcp_connect(const struct client_opts *o, int64_t deadline)
{
	struct addrinfo	 hints, *ai = NULL, *a;
	char		 port[8];
	int		 fd = -1, rc = -ECONNREFUSED, on = 1, err;
	socklen_t	 el;

	snprintf(port, sizeof(port), "%u", o->port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(o->host, port, &hints, &ai) != 0)
		return -EHOSTUNREACH;
	for (a = ai; a != NULL; a = a->ai_next) {
		fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		if (fd == -1)
			continue;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
		if (o->bind_addr != NULL) {
			struct addrinfo	*b = NULL;

			if (getaddrinfo(o->bind_addr, NULL, &hints, &b) != 0 ||
			    bind(fd, b->ai_addr, b->ai_addrlen) == -1) {
				rc = -EADDRNOTAVAIL;
				if (b != NULL)
					freeaddrinfo(b);
				close(fd);
				fd = -1;
				continue;
			}
			freeaddrinfo(b);
		}
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS) {
			if ((rc = wait_fd(fd, POLLOUT, deadline)) == 0) {
				el = sizeof(err);
				getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
				if (err == 0)
					break;
				rc = -err;
			}
		} else {
			rc = -errno;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd >= 0 ? fd : rc;
}

static int
io_result(struct client *c, int r, short *want)
{
	int	e;

	if (c->ssl == NULL) {
		if (r >= 0)
			return r;
		if (errno == EAGAIN || errno == EINTR)
			return -EAGAIN;
		return -errno;
	}
	if (r > 0)
		return r;
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ) {
		*want = POLLIN;
		return -EAGAIN;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		*want = POLLOUT;
		return -EAGAIN;
	}
	if (e == SSL_ERROR_ZERO_RETURN ||
	    (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0))
		return 0;
	return -EPROTO;
}

/* Write all of p to the socket (TLS or plain) before the deadline. */
static int
sock_write_all(struct client *c, const uint8_t *p, size_t n, int64_t deadline)
{
	short	want;
	int	r;

	while (n > 0) {
		want = POLLOUT;
		ERR_clear_error();
		r = c->ssl ? SSL_write(c->ssl, p, (int)n) :
		    (int)send(c->fd, p, n, MSG_NOSIGNAL);
		r = io_result(c, r, &want);
		if (r == -EAGAIN) {
			if ((r = wait_fd(c->fd, want, deadline)) < 0)
				return r;
			continue;
		}
		if (r <= 0)
			return r == 0 ? -ECONNRESET : r;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* ---- the socket layer as WebSocket transport (mesh/wsclient.c) ---- */

static int
ws_io_read(void *arg, uint8_t *p, size_t n, short *want)
{
	struct client	*c = arg;
	int		 r;

	*want = POLLIN;
	ERR_clear_error();
	r = c->ssl ? SSL_read(c->ssl, p, (int)n) : (int)recv(c->fd, p, n, 0);
	return io_result(c, r, want);
}

static int
ws_io_write_all(void *arg, const uint8_t *p, size_t n, int64_t deadline)
{
	return sock_write_all(arg, p, n, deadline);
}

static int
ws_io_wait(void *arg, short want, int64_t deadline)
{
	return wait_fd(((struct client *)arg)->fd, want, deadline);
}

/* Write p to the server: raw, or as the payload of binary messages
 * (boundaries mean nothing; one holds a maximal SendPacket). */
static int
write_all(struct client *c, const uint8_t *p, size_t n, int64_t deadline)
{
	size_t	k;
	int	r;

	if (!c->ws_on)
		return sock_write_all(c, p, n, deadline);
	while (n > 0) {
		k = n > WSCLIENT_MSG_MAX ? WSCLIENT_MSG_MAX : n;
		if ((r = wsclient_send(c->ws, WSCLIENT_BINARY, p, k,
		    deadline)) < 0)
			return r;
		p += k;
		n -= k;
	}
	return 0;
}

/* Read more input; 0 = EOF, > 0 bytes, -EAGAIN on deadline 0. */
static int
read_more(struct client *c, int64_t deadline)
{
	short	want;
	int	r;

	if (c->in_off > 0) {
		memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
		c->in_len -= c->in_off;
		c->in_off = 0;
	}
	if (c->in_len == IN_CAP)
		return -EPROTO;
	if (c->ws_on) {
		r = wsclient_read(c->ws, c->in + c->in_len, IN_CAP - c->in_len,
		    deadline);
		if (r > 0)
			c->in_len += (size_t)r;
		return r;
	}
	for (;;) {
		want = POLLIN;
		ERR_clear_error();
		r = c->ssl ? SSL_read(c->ssl, c->in + c->in_len,
		    (int)(IN_CAP - c->in_len)) : (int)recv(c->fd,
		    c->in + c->in_len, IN_CAP - c->in_len, 0);
		r = io_result(c, r, &want);
		if (r == -EAGAIN) {
			if (deadline >= 0 && deadline <= now_ms())
				return -EAGAIN;
			if ((r = wait_fd(c->fd, want, deadline)) < 0)
				return r == -ETIMEDOUT ? -EAGAIN : r;
			continue;
		}
		if (r > 0)
			c->in_len += (size_t)r;
		return r;
	}
}

static int
next_frame(struct client *c, struct derp_frame *f, int64_t deadline)
{
	ssize_t	n;
	int	r;

	for (;;) {
		n = derp_frame_parse(c->in + c->in_off, c->in_len - c->in_off,
		    DERP_MAX_CLIENT_FRAME, f);
		if (n < 0)
			return -EPROTO;
		if (n > 0) {
			c->consumed = (size_t)n;
			return 0;
		}
		if ((r = read_more(c, deadline)) == 0)
			return -ECONNRESET;
		if (r < 0)
			return r == -EAGAIN ? -ETIMEDOUT : r;
	}
}

static void
frame_done(struct client *c)
{
	c->in_off += c->consumed;
	c->consumed = 0;
}

/* Scan the peer chain for the derpkey meta-certificate (2.5). */
static bool
meta_key(SSL *ssl, uint8_t key[DERP_KEY_LEN])
{
	STACK_OF(X509)	*chain = SSL_get_peer_cert_chain(ssl);
	char		 cn[256];
	int		 i, n;

	if (chain == NULL || SSL_version(ssl) != TLS1_3_VERSION)
		return false;
	for (i = 0; i < sk_X509_num(chain); i++) {
		X509		*x = sk_X509_value(chain, i);
		long		 serial;

		n = X509_NAME_get_text_by_NID(X509_get_subject_name(x),
		    NID_commonName, cn, sizeof(cn));
		if (n != 7 + DERP_KEY_HEX_LEN || strncmp(cn, "derpkey", 7) != 0)
			continue;
		serial = ASN1_INTEGER_get(X509_get0_serialNumber(x));
		if (serial < 1 || serial > 255)
			continue;
		if (derp_key_parse_hex(cn + 7, DERP_KEY_HEX_LEN, key) == 0)
			return true;
	}
	return false;
}

SSL_CTX *
client_tls_ctx_new(const struct client_opts *o)
{
	SSL_CTX	*ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* Every connection a full handshake, shared context or not. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (!o->tls_insecure) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		if ((o->ca_file != NULL ? SSL_CTX_load_verify_locations(ctx,
		    o->ca_file, NULL) : SSL_CTX_set_default_verify_paths(ctx))
		    != 1) {
			SSL_CTX_free(ctx);
			return NULL;
		}
	}
	return ctx;
}

static int
tls_start(struct client *c, const struct client_opts *o, const char *name,
    int64_t deadline)
{
	unsigned char	buf[16];
	bool		ip = inet_pton(AF_INET, name, buf) == 1 ||
			    inet_pton(AF_INET6, name, buf) == 1;
	short		want;
	int		r;

	if (o->tls_ctx != NULL) {
		if (SSL_CTX_up_ref(o->tls_ctx) != 1)
			return -ENOMEM;
		c->ctx = o->tls_ctx;
	} else if ((c->ctx = client_tls_ctx_new(o)) == NULL) {
		return -EINVAL;
	}
	if ((c->ssl = SSL_new(c->ctx)) == NULL ||
	    SSL_set_fd(c->ssl, c->fd) != 1)
		return -ENOMEM;
	if (o->tls_max_version != 0 &&
	    SSL_set_max_proto_version(c->ssl, o->tls_max_version) != 1)
		return -EINVAL;
	if (!ip)
		SSL_set_tlsext_host_name(c->ssl, name);
	if (!o->tls_insecure) {
		X509_VERIFY_PARAM	*vp = SSL_get0_param(c->ssl);

		if ((ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, name) :
		    X509_VERIFY_PARAM_set1_host(vp, name, 0)) != 1)
			return -EINVAL;
	}
	for (;;) {
		ERR_clear_error();
		r = SSL_connect(c->ssl);
		if (r == 1)
			return 0;
		want = POLLIN;
		if (io_result(c, r, &want) != -EAGAIN)
			return -EPROTO;
		if ((r = wait_fd(c->fd, want, deadline)) < 0)
			return r;
	}
}

/* The 101 of a WebSocket upgrade; bytes behind the head are frames. */
static int
ws_upgraded(struct client *c, char *end)
{
	size_t	off = (size_t)((uint8_t *)end + 4 - c->in);
	int	rc;

	end[2] = '\0';		/* the head alone */
	rc = wsclient_upgraded(c->ws, (const char *)c->in, c->in + off,
	    c->in_len - off);
	end[2] = '\r';
	if (rc < 0)
		return rc;
	c->in_off = c->in_len = 0;
	c->ws_on = true;
	return 0;
}

static int
http_upgrade(struct client *c, const struct client_opts *o, const char *name,
    int64_t deadline)
{
	char		 req[1024], up[160];
	uint8_t		 ci[1024];
	ssize_t		 cil;
	int		 n, r;
	uint8_t		 wc[DERP_FRAME_HDR_LEN];
	char		*end;
	bool		 ipv6 = strchr(name, ':') != NULL;

	if (o->websocket)
		wsclient_request(c->ws, up, sizeof(up));
	else
		snprintf(up, sizeof(up), "Upgrade: DERP\r\n");
	n = snprintf(req, sizeof(req), "GET /derp HTTP/1.1\r\nHost: %s%s%s:%u"
	    "\r\nUser-Agent: derpd-client\r\nConnection: Upgrade\r\n%s"
	    "%s%s%s%s\r\n", ipv6 ? "[" : "", name,
	    ipv6 ? "]" : "", o->port, c->fast ? "Derp-Fast-Start: 1\r\n" : "",
	    up, o->ideal_node ? "Ideal-Node: " : "",
	    o->ideal_node ? o->ideal_node : "", o->ideal_node ? "\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(req))
		return -EINVAL;
	if (c->fast) {
		/* Request and ClientInfo leave in one write (2.6). */
		if ((cil = derp_client_info_frame(ci, sizeof(ci), &o->info,
		    c->priv, c->server)) < 0)
			return (int)cil;
		memcpy(c->out, req, (size_t)n);
		memcpy(c->out + n, ci, (size_t)cil);
		c->out_len = (size_t)n + (size_t)cil;
		if (o->watch_conns) {
			derp_enc_watch_conns(wc);
			memcpy(c->out + c->out_len, wc, sizeof(wc));
			c->out_len += sizeof(wc);
		}
		r = write_all(c, c->out, c->out_len, deadline);
		c->out_len = 0;
		return r;
	}
	if ((r = write_all(c, (const uint8_t *)req, (size_t)n, deadline)) < 0)
		return r;
	for (;;) {
		c->in[c->in_len < HEAD_MAX ? c->in_len : HEAD_MAX - 1] = 0;
		if (c->in_len >= 4 && (end = memmem(c->in, c->in_len,
		    "\r\n\r\n", 4)) != NULL)
			break;
		if (c->in_len >= HEAD_MAX)
			return -EPROTO;
		if ((r = read_more(c, deadline)) == 0)
			return -ECONNRESET;
		if (r == -EAGAIN)
			return -ETIMEDOUT;
		if (r < 0)
			return r;
	}
	if (c->in_len < 12 || memcmp(c->in, "HTTP/1.1 101", 12) != 0)
		return -EPROTO;
	if (o->websocket)
		return ws_upgraded(c, end);
	c->in_off = (size_t)((uint8_t *)end + 4 - c->in);
	return 0;
}

static int
handshake(struct client *c, const struct client_opts *o, int64_t deadline)
{
	struct derp_frame	f;
	uint8_t			ci[1024], wc[DERP_FRAME_HDR_LEN];
	ssize_t			cil;
	int			r;

	if (!c->fast) {
		if ((r = next_frame(c, &f, deadline)) < 0)
			return r;
		if (f.type != DERP_FRAME_SERVER_KEY ||
		    derp_dec_server_key(f.payload, f.len, c->server) < 0)
			return -EPROTO;
		frame_done(c);
		if ((cil = derp_client_info_frame(ci, sizeof(ci), &o->info,
		    c->priv, c->server)) < 0)
			return (int)cil;
		if ((r = write_all(c, ci, (size_t)cil, deadline)) < 0)
			return r;
		if (o->watch_conns) {
			derp_enc_watch_conns(wc);
			if ((r = write_all(c, wc, sizeof(wc), deadline)) < 0)
				return r;
		}
	}
	for (;;) {
		if ((r = next_frame(c, &f, deadline)) < 0)
			return r;
		if (f.type == DERP_FRAME_SERVER_KEY) {
			frame_done(c);
			continue;
		}
		if (f.type != DERP_FRAME_SERVER_INFO)
			return -EPROTO;		/* ServerInfo must be first */
		r = derp_server_info_open(f.payload, f.len, c->priv, c->server,
		    &c->si);
		frame_done(c);
		return r < 0 ? -EPROTO : 0;
	}
}

struct client *
client_connect(const struct client_opts *o, int *err)
{
	struct client	*c;
	const char	*name = o->server_name ? o->server_name : o->host;
	int64_t		 deadline = now_ms() + (o->timeout_ms > 0 ?
			    o->timeout_ms : 10000);
	int		 rc;

	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->in = malloc(IN_CAP)) == NULL ||
	    (c->out = malloc(OUT_CAP)) == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	c->fd = -1;
	c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 10000;
	c->can_ack_pings = o->info.can_ack_pings;
	if (o->priv != NULL)
		memcpy(c->priv, o->priv, DERP_KEY_LEN);
	else
		derp_key_generate(c->priv);
	if ((rc = derp_key_public(c->pub, c->priv)) < 0)
		goto fail;
	if ((c->fd = tcp_connect(o, deadline)) < 0) {
		rc = c->fd;
		goto fail;
	}
	if (o->tls && (rc = tls_start(c, o, name, deadline)) < 0)
		goto fail;
	/* WebSocket clients always wait for ServerKey (PROTOCOL.md 2.7). */
	c->fast = o->tls && !o->no_fast_start && !o->websocket &&
	    meta_key(c->ssl, c->server);
	if (o->websocket) {
		struct wsclient_io	io = { .arg = c, .read = ws_io_read,
					    .write_all = ws_io_write_all,
					    .wait = ws_io_wait };

		if ((c->ws = wsclient_new(&io)) == NULL) {
			rc = -ENOMEM;
			goto fail;
		}
	}
	if ((rc = http_upgrade(c, o, name, deadline)) < 0 ||
	    (rc = handshake(c, o, deadline)) < 0)
		goto fail;
	return c;
fail:
	client_free(c);
	*err = rc;
	return NULL;
}

void
client_free(struct client *c)
{
	if (c == NULL)
		return;
	wsclient_free(c->ws);	/* after the 101: close 1000, best effort */
	SSL_free(c->ssl);
	SSL_CTX_free(c->ctx);
	if (c->fd >= 0)
		close(c->fd);
	free(c->in);
	free(c->out);
	sodium_memzero(c->priv, sizeof(c->priv));
	free(c);
}

int
client_fd(const struct client *c)
{
	return c->fd;
}

SSL *
client_ssl(const struct client *c)
{
	return c->ssl;
}

const uint8_t *
client_public_key(const struct client *c)
{
	return c->pub;
}

const uint8_t *
client_server_key(const struct client *c)
{
	return c->server;
}

bool
client_fast_started(const struct client *c)
{
	return c->fast;
}

const struct derp_server_info *
client_server_info(const struct client *c)
{
	return &c->si;
}

int
client_queue_raw(struct client *c, const void *bytes, size_t len)
{
	if (OUT_CAP - c->out_len < len)
		return -ENOBUFS;
	memcpy(c->out + c->out_len, bytes, len);
	c->out_len += len;
	return 0;
}

int
client_queue_frame(struct client *c, uint8_t type, const void *payload,
    size_t len)
{
	uint8_t	h[DERP_FRAME_HDR_LEN];

	if (len > UINT32_MAX || OUT_CAP - c->out_len < sizeof(h) + len)
		return -ENOBUFS;
	derp_frame_header(h, type, (uint32_t)len);
	memcpy(c->out + c->out_len, h, sizeof(h));
	if (len > 0)
		memcpy(c->out + c->out_len + sizeof(h), payload, len);
	c->out_len += sizeof(h) + len;
	return 0;
}

int
client_queue_packet(struct client *c, const uint8_t dst[DERP_KEY_LEN],
    const void *pkt, size_t len)
{
	if (len > DERP_MAX_PACKET)
		return -EMSGSIZE;
	if (OUT_CAP - c->out_len < DERP_SEND_HDR_LEN + len)
		return -ENOBUFS;
	derp_enc_send_packet_hdr(c->out + c->out_len, dst, len);
	memcpy(c->out + c->out_len + DERP_SEND_HDR_LEN, pkt, len);
	c->out_len += DERP_SEND_HDR_LEN + len;
	return 0;
}

int
client_flush(struct client *c, int timeout_ms)
{
	int	r;

	if (c->out_len == 0)
		return 0;
	r = write_all(c, c->out, c->out_len, timeout_ms < 0 ? -1 :
	    now_ms() + timeout_ms);
	c->out_len = 0;
	return r;
}

static int
queue_flush(struct client *c, int r)
{
	return r < 0 ? r : client_flush(c, c->timeout_ms);
}

int
client_send_packet(struct client *c, const uint8_t dst[DERP_KEY_LEN],
    const void *pkt, size_t len)
{
	return queue_flush(c, client_queue_packet(c, dst, pkt, len));
}

int
client_forward_packet(struct client *c, const uint8_t src[DERP_KEY_LEN],
    const uint8_t dst[DERP_KEY_LEN], const void *pkt, size_t len)
{
	uint8_t	h[DERP_FORWARD_HDR_LEN];
	int	r;

	if (len > DERP_MAX_PACKET)
		return -EMSGSIZE;
	derp_enc_forward_packet_hdr(h, src, dst, len);
	if ((r = client_queue_raw(c, h, sizeof(h))) < 0 ||
	    (r = client_queue_raw(c, pkt, len)) < 0)
		return r;
	return client_flush(c, c->timeout_ms);
}

int
client_note_preferred(struct client *c, bool preferred)
{
	uint8_t	v = preferred ? 1 : 0;

	return queue_flush(c, client_queue_frame(c, DERP_FRAME_NOTE_PREFERRED,
	    &v, 1));
}

int
client_ping(struct client *c, const uint8_t data[DERP_PING_LEN])
{
	return queue_flush(c, client_queue_frame(c, DERP_FRAME_PING, data,
	    DERP_PING_LEN));
}

int
client_watch_conns(struct client *c)
{
	return queue_flush(c, client_queue_frame(c, DERP_FRAME_WATCH_CONNS,
	    NULL, 0));
}

int
client_close_peer(struct client *c, const uint8_t key[DERP_KEY_LEN])
{
	return queue_flush(c, client_queue_frame(c, DERP_FRAME_CLOSE_PEER, key,
	    DERP_KEY_LEN));
}

int
client_recv(struct client *c, struct client_msg *m, int timeout_ms)
{
	struct derp_frame	f;
	int64_t			deadline = timeout_ms < 0 ? -1 :
				    now_ms() + timeout_ms;
	int			r;

	frame_done(c);
	if ((r = next_frame(c, &f, deadline)) < 0)
		return r == -ETIMEDOUT && timeout_ms == 0 ? -EAGAIN : r;
	memset(m, 0, sizeof(*m));
	m->type = f.type;
	m->data = f.payload;
	m->len = f.len;
	switch (f.type) {
	case DERP_FRAME_RECV_PACKET:
		if (f.len < DERP_KEY_LEN)
			return -EPROTO;
		memcpy(m->key, f.payload, DERP_KEY_LEN);
		m->data = f.payload + DERP_KEY_LEN;
		m->len = f.len - DERP_KEY_LEN;
		break;
	case DERP_FRAME_PEER_GONE:
		if (derp_dec_peer_gone(f.payload, f.len, m->key,
		    &m->reason) < 0)
			return -EPROTO;
		break;
	case DERP_FRAME_PEER_PRESENT:
		if (derp_dec_peer_present(f.payload, f.len, &m->present) < 0)
			return -EPROTO;
		memcpy(m->key, m->present.key, DERP_KEY_LEN);
		break;
	case DERP_FRAME_RESTARTING:
		(void)derp_dec_restarting(f.payload, f.len,
		    &m->reconnect_in_ms, &m->try_for_ms);
		break;
	case DERP_FRAME_PING:
		if (c->can_ack_pings && f.len >= DERP_PING_LEN) {
			uint8_t	pong[DERP_PING_FRAME_LEN];

			derp_enc_ping(pong, DERP_FRAME_PONG, f.payload);
			if ((r = client_queue_raw(c, pong, sizeof(pong))) < 0 ||
			    (r = client_flush(c, c->timeout_ms)) < 0)
				return r;
		}
		break;
	default:
		break;
	}
	return 0;
}

int
client_ws_send(struct client *c, int opcode, const void *p, size_t n)
{
	if (!c->ws_on)
		return -EINVAL;
	return wsclient_send(c->ws, opcode, p, n, now_ms() + c->timeout_ms);
}

int
client_write_wire(struct client *c, const void *p, size_t n)
{
	return sock_write_all(c, p, n, now_ms() + c->timeout_ms);
}

int
client_ws_close_code(const struct client *c)
{
	return c->ws_on ? wsclient_close_code(c->ws) : 0;
}

unsigned
client_ws_pongs(const struct client *c)
{
	return c->ws_on ? wsclient_pongs(c->ws) : 0;
}

int
client_http_get(const struct client_opts *o, const char *method,
    const char *path, const char *extra_headers, char *out, size_t outlen)
{
	struct client	 c;
	const char	*name = o->server_name ? o->server_name : o->host;
	int64_t		 deadline = now_ms() + (o->timeout_ms > 0 ?
			    o->timeout_ms : 10000);
	char		 req[2048];
	int		 n, r, status = -EPROTO;

	memset(&c, 0, sizeof(c));
	if ((c.in = malloc(IN_CAP)) == NULL)
		return -ENOMEM;
	if ((c.fd = tcp_connect(o, deadline)) < 0) {
		r = c.fd;
		goto out;
	}
	if (o->tls && (r = tls_start(&c, o, name, deadline)) < 0)
		goto out;
	n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: %s\r\n%s"
	    "Connection: close\r\n\r\n", method, path, name,
	    extra_headers ? extra_headers : "");
	if (n < 0 || (size_t)n >= sizeof(req)) {
		r = -EINVAL;
		goto out;
	}
	if ((r = write_all(&c, (const uint8_t *)req, (size_t)n, deadline)) < 0)
		goto out;
	while ((r = read_more(&c, deadline)) > 0 && c.in_len < outlen - 1)
		;
	if (r < 0 && r != -EAGAIN && c.in_len == 0)
		goto out;
	n = (int)(c.in_len < outlen - 1 ? c.in_len : outlen - 1);
	memcpy(out, c.in, (size_t)n);
	out[n] = '\0';
	if (sscanf(out, "HTTP/1.%*d %d", &status) != 1)
		status = -EPROTO;
	r = status;
out:
	SSL_free(c.ssl);
	SSL_CTX_free(c.ctx);
	if (c.fd > 0)
		close(c.fd);
	free(c.in);
	return r;
}

/*
 * Mesh link state machine: resolve (getaddrinfo_a, never blocking the
 * loop) -> connect -> TLS -> HTTP upgrade -> ServerKey (a key equal to
 * ours means we dialled ourselves: stop for good, 6.5) -> ClientInfo with
 * the mesh key + WatchConns -> ServerInfo -> presence stream.  Forwarded
 * packets wait in one bounded buffer written as the socket allows.  Any
 * failure drops the learnt keys (down callback) and retries after a
 * capped exponential backoff with jitter.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "common/log.h"
#include "derp/frame.h"
#include "derp/info.h"
#include "derp/key.h"
#include "mesh/link.h"

#define IN_CAP		(DERP_FRAME_HDR_LEN + DERP_MAX_CLIENT_FRAME)
#define HEAD_MAX	8192
#define RETRY_MIN_MS	100
#define RETRY_MAX_MS	5000
#define READ_IDLE_MS	120000
#define CONNECT_MS	10000
#define ORPHANS_MAX	4	/* abandoned lookups still running */

enum lstate {
	L_IDLE, L_RESOLVING, L_CONNECTING, L_TLS, L_UPGRADE, L_HELLO,
	L_WAIT_INFO, L_UP, L_SELF,
};

/* One getaddrinfo_a request and everything the resolver thread reads or
 * writes.  Heap-owned: a lookup abandoned in flight (gai_cancel cannot
 * stop a running one) stays allocated on the link's orphan list until
 * gai_error says the resolver is done with it. */
struct lookup {
	struct gaicb	 cb;
	struct addrinfo	 hints;
	char		 name[256], port[8];
	struct lookup	*next;
};

struct mesh_link {
	struct loop		*loop;
	struct mesh_link_conf	 c;
	struct mesh_link_cb	 cb;
	char			 host[256], dial[256], port[8];
	enum lstate		 st;
	int			 fd;
	SSL			*ssl;
	struct loop_io		 io;
	struct loop_timer	 timer;		/* retry, resolve poll */
	struct loop_timer	 deadline;	/* connect / stall / idle */
	struct lookup		*lu;		/* in flight, or NULL */
	struct lookup		*orphans;	/* abandoned, maybe running */
	int			 norphans;
	uint8_t			 pub[DERP_KEY_LEN];
	uint8_t			 server[DERP_KEY_LEN];
	uint8_t			*in;
	size_t			 in_len;
	uint8_t			*out;
	size_t			 out_off, out_len, out_cap;
	unsigned		 fails;
	bool			 learnt;	/* present() was called */
	bool			 has_server;	/* server key received */
	char			 addr[64];	/* peer "ip:port" */
	uint64_t		 up_ms;
	struct traffic_ctr	 tr;		/* /debug/traffic */
};

static void	link_io(struct loop_io *io, unsigned events);
static void	link_start(struct mesh_link *lk);

static bool
lookup_running(struct lookup *lu)
{
	return gai_error(&lu->cb) == EAI_INPROGRESS;
}

static void
lookup_free(struct lookup *lu)
{
	if (lu == NULL)
		return;
	if (lu->cb.ar_result != NULL)
		freeaddrinfo(lu->cb.ar_result);
	free(lu);
}

/* Free the orphans the resolver has finished with. */
static void
orphans_reap(struct mesh_link *lk)
{
	struct lookup	**pp = &lk->orphans, *lu;

	while ((lu = *pp) != NULL) {
		if (lookup_running(lu)) {
			pp = &lu->next;
			continue;
		}
		*pp = lu->next;
		lookup_free(lu);
		lk->norphans--;
	}
}

/* Drop the lookup in flight: freed now if it is cancelled or done,
 * else kept until the resolver lets go of it. */
static void
lookup_abandon(struct mesh_link *lk)
{
	struct lookup	*lu = lk->lu;

	if (lu == NULL)
		return;
	lk->lu = NULL;
	(void)gai_cancel(&lu->cb);
	if (!lookup_running(lu)) {
		lookup_free(lu);
		return;
	}
	lu->next = lk->orphans;
	lk->orphans = lu;
	lk->norphans++;
}

/* Our TLS close_notify, one non-blocking attempt, when we end a link
 * whose handshake finished and whose peer and TLS state are still
 * sound (not after its EOF, an I/O error or a TLS failure). */
static void
close_notify(struct mesh_link *lk, const char *why)
{
	static const char *const gone[] = {
		"eof", "read_error", "write_error", "tls_handshake_failed",
	};
	size_t	i;

	if (lk->ssl == NULL || SSL_is_init_finished(lk->ssl) != 1)
		return;
	for (i = 0; why != NULL && i < sizeof(gone) / sizeof(gone[0]); i++)
		if (strcmp(why, gone[i]) == 0)
			return;
	ERR_clear_error();
	(void)SSL_shutdown(lk->ssl);
	ERR_clear_error();
}

static void
link_fail(struct mesh_link *lk, const char *why)
{
	uint64_t	delay;

	if (lk->st == L_UP || lk->st == L_WAIT_INFO)
		log_warn_conn("mesh_link_down", "peer=%s reason=%s",
		    lk->host, why);
	else
		log_info_conn("mesh_link_failed", "peer=%s reason=%s",
		    lk->host, why);
	if (lk->fd >= 0) {
		loop_io_del(lk->loop, &lk->io);
		close_notify(lk, why);
		SSL_free(lk->ssl);
		lk->ssl = NULL;
		close(lk->fd);
		lk->fd = -1;
	}
	lookup_abandon(lk);
	loop_timer_cancel(lk->loop, &lk->deadline);
	lk->in_len = lk->out_off = lk->out_len = 0;
	if (lk->learnt && lk->cb.down != NULL)
		lk->cb.down(lk->cb.arg, lk->c.idx);
	lk->learnt = false;
	if (lk->st == L_SELF)
		return;
	lk->st = L_IDLE;
	delay = (uint64_t)RETRY_MIN_MS << (lk->fails < 6 ? lk->fails : 6);
	if (delay > RETRY_MAX_MS)
		delay = RETRY_MAX_MS;
	delay += randombytes_uniform((uint32_t)delay / 2 + 1);
	lk->fails++;
	(void)loop_timer_set(lk->loop, &lk->timer, delay);
}

static int
queue(struct mesh_link *lk, const void *p, size_t n)
{
	if (lk->out_off > 0 && lk->out_cap - lk->out_len < n) {
		memmove(lk->out, lk->out + lk->out_off, lk->out_len -
		    lk->out_off);
		lk->out_len -= lk->out_off;
		lk->out_off = 0;
	}
	if (lk->out_cap - lk->out_len < n)
		return -ENOBUFS;
	memcpy(lk->out + lk->out_len, p, n);
	lk->out_len += n;
	/* Written by mesh_link_flush at the end of the round, coalesced
	 * with whatever else is queued by then; EPOLLOUT only on EAGAIN. */
	return 0;
}

static void
flush(struct mesh_link *lk)
{
	int	r, e;

	while (lk->out_off < lk->out_len) {
		ERR_clear_error();
		r = SSL_write(lk->ssl, lk->out + lk->out_off,
		    (int)(lk->out_len - lk->out_off));
		if (r > 0) {
			lk->out_off += (size_t)r;
			lk->tr.sent_wire += (size_t)r;
			if (lk->st == L_UP)
				(void)loop_timer_set(lk->loop, &lk->deadline,
				    READ_IDLE_MS);
			continue;
		}
		e = SSL_get_error(lk->ssl, r);
		if (e == SSL_ERROR_WANT_WRITE) {
			(void)loop_io_mod(lk->loop, &lk->io, LOOP_RW);
			return;
		}
		if (e == SSL_ERROR_WANT_READ)
			return;	/* retried after the next read or round */
		link_fail(lk, "write_error");
		return;
	}
	lk->out_off = lk->out_len = 0;
	(void)loop_io_mod(lk->loop, &lk->io, LOOP_IN);
}

static void
send_hello(struct mesh_link *lk)
{
	struct derp_client_info	ci = { .version = DERP_PROTO_VERSION,
				    .has_mesh_key = true };
	uint8_t			f[512], wc[DERP_FRAME_HDR_LEN];
	ssize_t			n;

	memcpy(ci.mesh_key, lk->c.psk, DERP_KEY_LEN);
	n = derp_client_info_frame(f, sizeof(f), &ci, lk->c.priv, lk->server);
	sodium_memzero(ci.mesh_key, sizeof(ci.mesh_key));
	if (n < 0 || queue(lk, f, (size_t)n) < 0) {
		link_fail(lk, "client_info");
		return;
	}
	derp_enc_watch_conns(wc);
	(void)queue(lk, wc, sizeof(wc));
	lk->st = L_WAIT_INFO;
}

/* Consume complete frames from lk->in. */
static void
frames(struct mesh_link *lk)
{
	struct derp_frame	f;
	struct derp_peer_present pp;
	struct derp_server_info	si;
	uint8_t			key[DERP_KEY_LEN], reason;
	size_t			off = 0;
	ssize_t			n;

	while ((n = derp_frame_parse(lk->in + off, lk->in_len - off,
	    DERP_MAX_CLIENT_FRAME, &f)) > 0) {
		off += (size_t)n;
		if (lk->st == L_HELLO) {
			if (f.type != DERP_FRAME_SERVER_KEY ||
			    derp_dec_server_key(f.payload, f.len,
			    lk->server) < 0) {
				link_fail(lk, "bad_server_key");
				return;
			}
			lk->has_server = true;
			if (derp_key_equal(lk->server, lk->pub)) {
				log_notice_conn("mesh_self", "peer=%s",
				    lk->host);
				lk->st = L_SELF;
				link_fail(lk, "self");
				return;
			}
			send_hello(lk);
			continue;
		}
		switch (f.type) {
		case DERP_FRAME_SERVER_INFO:
			if (derp_server_info_open(f.payload, f.len, lk->c.priv,
			    lk->server, &si) < 0) {
				link_fail(lk, "bad_server_info");
				return;
			}
			lk->st = L_UP;
			lk->fails = 0;
			lk->up_ms = loop_now(lk->loop);
			log_notice_conn("mesh_link_up", "peer=%s", lk->host);
			break;
		case DERP_FRAME_PEER_PRESENT:
			/* Our own links are clients over there: never
			 * forward to ourselves through a peer (as Go). */
			if (lk->st == L_UP && derp_dec_peer_present(f.payload,
			    f.len, &pp) == 0 && lk->cb.present != NULL &&
			    !derp_key_equal(pp.key, lk->pub)) {
				lk->learnt = true;
				lk->cb.present(lk->cb.arg, lk->c.idx, pp.key);
			}
			break;
		case DERP_FRAME_PEER_GONE:
			if (lk->st == L_UP && derp_dec_peer_gone(f.payload,
			    f.len, key, &reason) == 0 && lk->cb.gone != NULL &&
			    !derp_key_equal(key, lk->pub))
				lk->cb.gone(lk->cb.arg, lk->c.idx, key);
			break;
		default:
			break;	/* KeepAlive, ServerKey again, Ping, ... */
		}
		if (lk->st != L_UP && lk->st != L_WAIT_INFO)
			return;
	}
	if (n < 0) {
		link_fail(lk, "frame_too_large");
		return;
	}
	memmove(lk->in, lk->in + off, lk->in_len - off);
	lk->in_len -= off;
}

static void
upgrade_input(struct mesh_link *lk)
{
	uint8_t	*end = memmem(lk->in, lk->in_len, "\r\n\r\n", 4);
	size_t	 hl;

	if (end == NULL) {
		if (lk->in_len >= HEAD_MAX)
			link_fail(lk, "http_head_too_large");
		return;
	}
	if (lk->in_len < 12 || memcmp(lk->in, "HTTP/1.1 101", 12) != 0) {
		link_fail(lk, "upgrade_refused");
		return;
	}
	hl = (size_t)(end - lk->in) + 4;
	memmove(lk->in, lk->in + hl, lk->in_len - hl);
	lk->in_len -= hl;
	lk->st = L_HELLO;
	frames(lk);
}

static void
readable(struct mesh_link *lk)
{
	int	r, e, rounds = 0;

	while (lk->fd >= 0 && rounds++ < 64) {
		if (lk->in_len == IN_CAP) {
			link_fail(lk, "input_full");
			return;
		}
		ERR_clear_error();
		r = SSL_read(lk->ssl, lk->in + lk->in_len,
		    (int)(IN_CAP - lk->in_len));
		if (r <= 0) {
			e = SSL_get_error(lk->ssl, r);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				return;
			link_fail(lk, e == SSL_ERROR_ZERO_RETURN ||
			    e == SSL_ERROR_SYSCALL ? "eof" : "read_error");
			return;
		}
		lk->in_len += (size_t)r;
		lk->tr.recv_wire += (size_t)r;
		(void)loop_timer_set(lk->loop, &lk->deadline, READ_IDLE_MS);
		if (lk->st == L_UPGRADE)
			upgrade_input(lk);
		else
			frames(lk);
	}
}

static void
tls_step(struct mesh_link *lk)
{
	char	req[512];
	int	r, e, n;

	ERR_clear_error();
	if ((r = SSL_connect(lk->ssl)) == 1) {
		n = snprintf(req, sizeof(req), "GET /derp HTTP/1.1\r\nHost: %s"
		    "\r\nUser-Agent: derpd-mesh\r\nConnection: Upgrade\r\n"
		    "Upgrade: DERP\r\n\r\n", lk->host);
		lk->st = L_UPGRADE;
		if (queue(lk, req, (size_t)n) < 0)
			link_fail(lk, "request");
		return;
	}
	e = SSL_get_error(lk->ssl, r);
	if (e == SSL_ERROR_WANT_READ)
		(void)loop_io_mod(lk->loop, &lk->io, LOOP_IN);
	else if (e == SSL_ERROR_WANT_WRITE)
		(void)loop_io_mod(lk->loop, &lk->io, LOOP_RW);
	else
		link_fail(lk, "tls_handshake_failed");
}

static bool
is_ip(const char *s)
{
	uint8_t	b[16];

	return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

/* The connected address, formatted by us (never the configured text). */
static void
peer_addr(struct mesh_link *lk)
{
	struct sockaddr_storage	ss;
	socklen_t		sl = sizeof(ss);
	char			host[INET6_ADDRSTRLEN];
	uint16_t		port;

	lk->addr[0] = '\0';
	if (getpeername(lk->fd, (struct sockaddr *)&ss, &sl) == -1)
		return;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)&ss;

		port = ntohs(s4->sin_port);
		if (inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host)))
			snprintf(lk->addr, sizeof(lk->addr), "%s:%u", host,
			    port);
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)&ss;

		port = ntohs(s6->sin6_port);
		if (inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host)))
			snprintf(lk->addr, sizeof(lk->addr), "[%s]:%u", host,
			    port);
	}
}

static void
connected(struct mesh_link *lk)
{
	int		err = 0, on = 1;
	socklen_t	sl = sizeof(err);

	if (getsockopt(lk->fd, SOL_SOCKET, SO_ERROR, &err, &sl) == -1 ||
	    err != 0) {
		link_fail(lk, "connect_failed");
		return;
	}
	(void)setsockopt(lk->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	peer_addr(lk);
	if ((lk->ssl = SSL_new(lk->c.ctx)) == NULL ||
	    SSL_set_fd(lk->ssl, lk->fd) != 1) {
		link_fail(lk, "tls_alloc");
		return;
	}
	if (!is_ip(lk->host))
		SSL_set_tlsext_host_name(lk->ssl, lk->host);
	if (SSL_CTX_get_verify_mode(lk->c.ctx) != SSL_VERIFY_NONE) {
		X509_VERIFY_PARAM	*vp = SSL_get0_param(lk->ssl);

		if ((is_ip(lk->host) ? X509_VERIFY_PARAM_set1_ip_asc(vp,
		    lk->host) : X509_VERIFY_PARAM_set1_host(vp, lk->host, 0))
		    != 1) {
			link_fail(lk, "verify_param");
			return;
		}
	}
	lk->st = L_TLS;
	tls_step(lk);
}

static void
dial(struct mesh_link *lk, const struct addrinfo *ai)
{
	lk->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (lk->fd == -1) {
		link_fail(lk, "socket");
		return;
	}
	loop_io_init(&lk->io, lk->fd, link_io, lk);
	if (loop_io_add(lk->loop, &lk->io, LOOP_OUT) < 0) {
		close(lk->fd);
		lk->fd = -1;
		link_fail(lk, "register");
		return;
	}
	lk->st = L_CONNECTING;
	(void)loop_timer_set(lk->loop, &lk->deadline, CONNECT_MS);
	if (connect(lk->fd, ai->ai_addr, ai->ai_addrlen) == 0)
		connected(lk);
	else if (errno != EINPROGRESS)
		link_fail(lk, "connect_failed");
}

static void
link_io(struct loop_io *io, unsigned events)
{
	struct mesh_link	*lk = io->arg;

	switch (lk->st) {
	case L_CONNECTING:
		connected(lk);
		return;
	case L_TLS:
		tls_step(lk);
		return;
	default:
		break;
	}
	if ((events & LOOP_OUT) && lk->fd >= 0)
		flush(lk);
	if ((events & LOOP_IN) && lk->fd >= 0)
		readable(lk);
}

static void
on_timer(struct loop_timer *t)
{
	struct mesh_link	*lk = t->arg;
	struct lookup		*lu;
	int			 rc;

	if (lk->st == L_IDLE) {
		link_start(lk);
		return;
	}
	if (lk->st != L_RESOLVING || (lu = lk->lu) == NULL)
		return;
	if ((rc = gai_error(&lu->cb)) == EAI_INPROGRESS) {
		(void)loop_timer_set(lk->loop, &lk->timer, 20);
		return;
	}
	lk->lu = NULL;
	if (rc != 0 || lu->cb.ar_result == NULL) {
		lookup_free(lu);
		link_fail(lk, "resolve_failed");
		return;
	}
	dial(lk, lu->cb.ar_result);
	lookup_free(lu);
}

static void
on_deadline(struct loop_timer *t)
{
	struct mesh_link	*lk = t->arg;

	link_fail(lk, lk->st == L_UP ? "idle_timeout" :
	    lk->st == L_RESOLVING ? "resolve_timeout" : "connect_timeout");
}

static void
link_start(struct mesh_link *lk)
{
	struct lookup	*lu;
	struct gaicb	*list[1];

	lk->st = L_RESOLVING;
	orphans_reap(lk);
	if (lk->norphans >= ORPHANS_MAX) {
		link_fail(lk, "resolver_busy");
		return;
	}
	if ((lu = calloc(1, sizeof(*lu))) == NULL) {
		link_fail(lk, "resolve_alloc");
		return;
	}
	lu->hints.ai_socktype = SOCK_STREAM;
	snprintf(lu->name, sizeof(lu->name), "%s", lk->dial);
	snprintf(lu->port, sizeof(lu->port), "%s", lk->port);
	lu->cb.ar_name = lu->name;
	lu->cb.ar_service = lu->port;
	lu->cb.ar_request = &lu->hints;
	list[0] = &lu->cb;
	if (getaddrinfo_a(GAI_NOWAIT, list, 1, NULL) != 0) {
		free(lu);
		link_fail(lk, "resolve_failed");
		return;
	}
	lk->lu = lu;
	/* A lookup that hangs (an unreachable DNS server) is abandoned at
	 * the deadline and retried with backoff. */
	(void)loop_timer_set(lk->loop, &lk->deadline, lk->c.connect_timeout_ms >
	    0 ? (uint64_t)lk->c.connect_timeout_ms : CONNECT_MS);
	(void)loop_timer_set(lk->loop, &lk->timer, 0);
}

/* "host[:port][/dialhost[:port]]"; port defaults to 443. */
static int
parse_peer(struct mesh_link *lk, const char *spec)
{
	char		 buf[256], *slash, *colon, *h;
	const char	*port = "443";

	snprintf(buf, sizeof(buf), "%s", spec);
	if ((slash = strchr(buf, '/')) != NULL)
		*slash++ = '\0';
	h = buf;
	if ((colon = strrchr(h, ':')) != NULL && strchr(h, ']') == NULL) {
		*colon = '\0';
		port = colon + 1;
	}
	snprintf(lk->host, sizeof(lk->host), "%s", h);
	snprintf(lk->port, sizeof(lk->port), "%s", port);
	h = slash != NULL ? slash : lk->host;
	snprintf(lk->dial, sizeof(lk->dial), "%s", h);
	if (slash != NULL && (colon = strrchr(lk->dial, ':')) != NULL) {
		*colon = '\0';
		snprintf(lk->port, sizeof(lk->port), "%s", colon + 1);
	}
	return lk->host[0] != '\0' && atoi(lk->port) > 0 ? 0 : -EINVAL;
}

struct mesh_link *
mesh_link_new(struct loop *l, const struct mesh_link_conf *lc,
    const struct mesh_link_cb *cb)
{
	struct mesh_link	*lk;

	if ((lk = calloc(1, sizeof(*lk))) == NULL)
		return NULL;
	lk->loop = l;
	lk->c = *lc;
	lk->cb = *cb;
	lk->fd = -1;
	lk->out_cap = (size_t)(lc->queue_bytes > 65600 ? lc->queue_bytes :
	    65600) + 1024;
	if (parse_peer(lk, lc->peer) < 0 ||
	    derp_key_public(lk->pub, lc->priv) < 0 ||
	    (lk->in = malloc(IN_CAP)) == NULL ||
	    (lk->out = malloc(lk->out_cap)) == NULL) {
		mesh_link_free(lk);
		return NULL;
	}
	loop_timer_init(&lk->timer, on_timer, lk);
	loop_timer_init(&lk->deadline, on_deadline, lk);
	link_start(lk);
	return lk;
}

/* Shutdown: give running orphans a moment, then free them, answers
 * included (valgrind found that leak).  One still running is left
 * allocated, as the resolver thread writes into it. */
static void
orphans_free(struct mesh_link *lk)
{
	const struct gaicb	*list[ORPHANS_MAX];
	struct timespec		 ts = { .tv_nsec = 100 * 1000 * 1000 };
	struct lookup		*lu;
	int			 n, round;

	/* gai_suspend returns when any one is done: up to 1 s in all. */
	for (round = 0; round < 10 && lk->norphans > 0; round++) {
		n = 0;
		for (lu = lk->orphans; lu != NULL && n < ORPHANS_MAX;
		    lu = lu->next)
			list[n++] = &lu->cb;
		(void)gai_suspend(list, n, &ts);
		orphans_reap(lk);
	}
	if (lk->norphans > 0)
		log_warn("mesh_resolve_pending", "peer=%s lookups=%d "
		    "action=leak", lk->host, lk->norphans);
}

void
mesh_link_free(struct mesh_link *lk)
{
	if (lk == NULL)
		return;
	if (lk->loop != NULL) {
		loop_timer_cancel(lk->loop, &lk->timer);
		loop_timer_cancel(lk->loop, &lk->deadline);
	}
	lookup_abandon(lk);
	orphans_free(lk);
	if (lk->fd >= 0) {
		loop_io_del(lk->loop, &lk->io);
		close_notify(lk, NULL);		/* the worker is stopping */
		close(lk->fd);
	}
	SSL_free(lk->ssl);
	free(lk->in);
	free(lk->out);
	free(lk);
}

int
mesh_link_forward(struct mesh_link *lk, const uint8_t src[DERP_KEY_LEN],
    const uint8_t dst[DERP_KEY_LEN], const uint8_t *pkt, size_t len)
{
	uint8_t	hdr[DERP_FORWARD_HDR_LEN];

	if (lk->st != L_UP) {
		lk->tr.drops++;
		return -ENOTCONN;
	}
	if (lk->out_cap - (lk->out_len - lk->out_off) < sizeof(hdr) + len) {
		lk->tr.drops++;
		return -ENOBUFS;
	}
	derp_enc_forward_packet_hdr(hdr, src, dst, len);
	if (queue(lk, hdr, sizeof(hdr)) < 0 || queue(lk, pkt, len) < 0) {
		lk->tr.drops++;
		return -ENOBUFS;
	}
	lk->tr.sent_packets++;
	lk->tr.sent_bytes += len;
	return 0;
}

void
mesh_link_flush(struct mesh_link *lk)
{
	if (lk->fd < 0 || lk->ssl == NULL || lk->st < L_UPGRADE ||
	    lk->st == L_SELF || lk->out_off == lk->out_len)
		return;
	flush(lk);
}

void
mesh_link_stats(const struct mesh_link *lk, struct mesh_link_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->host = lk->host;
	snprintf(out->addr, sizeof(out->addr), "%s", lk->addr);
	out->up = lk->st == L_UP;
	out->has_key = lk->has_server && lk->st != L_SELF;
	memcpy(out->key, lk->server, DERP_KEY_LEN);
	out->up_ms = lk->up_ms;
	out->tr = lk->tr;
}

bool
mesh_link_up(const struct mesh_link *lk)
{
	return lk->st == L_UP;
}

SSL_CTX *
mesh_tls_ctx(const char *ca_file, bool insecure)
{
	SSL_CTX	*ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (insecure)
		return ctx;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if ((ca_file != NULL && ca_file[0] != '\0' ?
	    SSL_CTX_load_verify_locations(ctx, ca_file, NULL) :
	    SSL_CTX_set_default_verify_paths(ctx)) != 1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

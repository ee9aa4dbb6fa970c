/*
 * Connection transport: accept, TLS handshake, reads into a shared
 * scratch buffer, coalesced writes, deadlines and deferred close.  It
 * knows nothing of HTTP or DERP beyond handing bytes to http.c and
 * session.c according to the connection state.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "common/log.h"
#include "worker/ktls.h"
#include "worker/tlsrec.h"
#include "worker/wk.h"

static void	conn_io(struct loop_io *io, unsigned events);
static void	conn_deadline(struct loop_timer *t);

static void
addr_format(struct conn *c, const struct sockaddr_storage *ss)
{
	char	host[INET6_ADDRSTRLEN] = "?";

	memset(c->ip16, 0, sizeof(c->ip16));
	c->port = 0;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		c->ip16[10] = c->ip16[11] = 0xff;
		memcpy(c->ip16 + 12, &s4->sin_addr, 4);
		c->port = ntohs(s4->sin_port);
		snprintf(c->addr, sizeof(c->addr), "%s:%u", host, c->port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		memcpy(c->ip16, &s6->sin6_addr, 16);
		c->port = ntohs(s6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			inet_ntop(AF_INET, c->ip16 + 12, host, sizeof(host));
		else
			inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(c->addr, sizeof(c->addr),
		    IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) ? "%s:%u" :
		    "[%s]:%u", host, c->port);
	} else {
		snprintf(c->addr, sizeof(c->addr), "unknown");
	}
}

static void
sock_tune(const struct config *cfg, int fd)
{
	int	on = 1, ka = cfg->tcp_keepalive_s > 0, v;

	/* Best effort: a socket that refuses an option still works.  Off
	 * is set too: a reload may turn an option off. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &ka, sizeof(ka));
	if (ka) {
		v = cfg->tcp_keepalive_s;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &v, sizeof(v));
		v = 15;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &v, sizeof(v));
		v = 9;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &v, sizeof(v));
	}
	v = cfg->tcp_user_timeout_ms > 0 ? cfg->tcp_user_timeout_ms : 0;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &v, sizeof(v));
}

void
conn_tune_listeners(struct worker *w)
{
	if (w->lis_https.fd >= 0)
		sock_tune(&w->cfg, w->lis_https.fd);
	if (w->lis_http.fd >= 0)
		sock_tune(&w->cfg, w->lis_http.fd);
	if (w->lis_metrics.fd >= 0)
		sock_tune(&w->cfg, w->lis_metrics.fd);
}

static void
accept_resume(struct loop_timer *t)
{
	struct worker	*w = t->arg;

	w->accept_paused = false;
	if (w->lis_https.fd >= 0)
		(void)loop_io_mod(w->loop, &w->lis_https, LOOP_IN);
	if (w->lis_http.fd >= 0)
		(void)loop_io_mod(w->loop, &w->lis_http, LOOP_IN);
	if (w->lis_metrics.fd >= 0)
		(void)loop_io_mod(w->loop, &w->lis_metrics, LOOP_IN);
}

static void
accept_pause(struct worker *w, int err)
{
	if (w->accept_paused)
		return;
	w->accept_paused = true;
	log_warn_limited("accept_paused", "err=%s conns=%zu", strerror(err),
	    w->nconns);
	if (w->lis_https.fd >= 0)
		(void)loop_io_mod(w->loop, &w->lis_https, 0);
	if (w->lis_http.fd >= 0)
		(void)loop_io_mod(w->loop, &w->lis_http, 0);
	if (w->lis_metrics.fd >= 0)
		(void)loop_io_mod(w->loop, &w->lis_metrics, 0);
	loop_timer_init(&w->accept_resume, accept_resume, w);
	if (loop_timer_set(w->loop, &w->accept_resume, 100) < 0)
		accept_resume(&w->accept_resume);
}

int
conn_init(struct conn *c, struct worker *w, int fd, enum listen_role role)
{
	c->w = w;
	c->fd = fd;
	c->id = ++w->next_conn_id;
	c->role = role;
	c->state = ST_HTTP;
	loop_io_init(&c->io, fd, conn_io, c);
	loop_timer_init(&c->deadline, conn_deadline, c);
	loop_timer_init(&c->rate_timer, NULL, c);
	loop_timer_init(&c->keepalive, session_keepalive, c);
	return http_begin(c);
}

void
conn_link(struct conn *c)
{
	struct worker	*w = c->w;

	c->prev = NULL;
	c->next = w->conns;
	if (w->conns != NULL)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
}

static struct conn *
conn_new(struct worker *w, int fd, enum listen_role role, bool tls)
{
	struct conn	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if (conn_init(c, w, fd, role) < 0)
		goto fail;
	if (tls) {
		if ((c->ssl = SSL_new(w->ssl_ctx)) == NULL ||
		    SSL_set_fd(c->ssl, fd) != 1)
			goto fail;
		SSL_set_accept_state(c->ssl);
		c->state = ST_TLS;
	}
	if (loop_io_add(w->loop, &c->io, LOOP_IN) < 0 ||
	    loop_timer_set(w->loop, &c->deadline,
	    (uint64_t)w->cfg.http_timeout_ms) < 0)
		goto fail;
	conn_link(c);
	return c;
fail:
	loop_io_del(w->loop, &c->io);
	loop_timer_cancel(w->loop, &c->deadline);
	http_end(c);
	SSL_free(c->ssl);
	free(c);
	return NULL;
}

void
conn_accept(struct worker *w, int lfd, enum listen_role role)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sl;
	struct conn		*c;
	int			 fd, i, rc;
	bool			 tls = w->lis_https.fd >= 0 &&
				    lfd == w->lis_https.fd;

	for (i = 0; i < WK_ACCEPTS_PER_WAKEUP && !w->stopping; i++) {
		sl = sizeof(ss);
		fd = accept4(lfd, (struct sockaddr *)&ss, &sl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM)
				accept_pause(w, errno);
			/* EAGAIN, ECONNABORTED, EINTR: try later. */
			return;
		}
		if (role == ROLE_DERP && !limits_accept(w)) {
			w->m->accepts_rejected++;	/* closed, not fatal */
			close(fd);
			continue;
		}
		if (tls)
			w->m->tls_accepted++;
		/* TCP options: inherited from the listener (see
		 * conn_tune_listeners), no setsockopt per accept. */
		if ((c = conn_new(w, fd, role, tls)) == NULL) {
			log_warn_limited("conn_alloc_failed", "err=%s",
			    strerror(ENOMEM));
			close(fd);
			continue;
		}
		addr_format(c, &ss);
		rc = role == ROLE_DERP ? limits_ip_acquire(w, c->ip16) : 0;
		if (rc < 0) {
			w->m->accepts_rejected_ip++;
			conn_close(c, rc == -EUSERS ? "too_many_per_ip" :
			    "out_of_memory");
			continue;
		}
		c->ip_counted = rc > 0;
		log_debug("conn_accepted", "conn=%" PRIu64 " peer=%s tls=%d",
		    c->id, c->addr, tls);
	}
}

/* ---- buffers ---- */

int
bbuf_reserve(struct bbuf *b, size_t need, size_t cap)
{
	uint8_t	*np;
	size_t	 ncap;

	if (b->off > 0 && b->cap - b->len < need) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	if (b->cap - b->len >= need)
		return 0;
	if (b->len + need > cap)
		return -ENOBUFS;
	ncap = b->cap ? b->cap : 512;
	while (ncap < b->len + need)
		ncap *= 2;
	if (ncap > cap)
		ncap = cap;
	if ((np = realloc(b->p, ncap)) == NULL)
		return -ENOMEM;
	b->p = np;
	b->cap = ncap;
	return 0;
}

int
bbuf_append(struct bbuf *b, const void *p, size_t n, size_t cap)
{
	int	rc;

	if (n == 0)
		return 0;	/* b->p may still be NULL */
	if ((rc = bbuf_reserve(b, n, cap)) < 0)
		return rc;
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

void
bbuf_consume(struct bbuf *b, size_t n)
{
	b->off += n;
	if (b->off >= b->len)
		b->off = b->len = 0;
}

void
bbuf_free(struct bbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* ---- I/O ---- */

static ssize_t
sock_read(struct conn *c, uint8_t *p, size_t n)
{
	ssize_t		r;
	int		e;
	uint64_t	ku;

	if (c->ktls)
		return ktls_read(c->fd, p, n);
	if (c->rec != NULL) {
		ku = tlsrec_key_updates(c->rec);
		r = tlsrec_read(c->rec, c->fd, p, n);
		c->w->m->tls_key_updates += tlsrec_key_updates(c->rec) - ku;
		return r;
	}
	if (c->ssl == NULL) {
		r = recv(c->fd, p, n, 0);
		if (r >= 0)
			return r;
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
	}
	ERR_clear_error();
	r = SSL_read(c->ssl, p, (int)n);
	if (r > 0)
		return r;
	e = SSL_get_error(c->ssl, (int)r);
	if (e == SSL_ERROR_WANT_READ)
		return -EAGAIN;
	if (e == SSL_ERROR_WANT_WRITE) {
		(void)loop_io_mod(c->w->loop, &c->io, LOOP_RW);
		return -EAGAIN;
	}
	if (e == SSL_ERROR_ZERO_RETURN)
		return 0;
	if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
		return 0;	/* EOF without close_notify */
	return -EPROTO;
}

static ssize_t
sock_write(struct conn *c, const uint8_t *p, size_t n)
{
	ssize_t		r;
	int		e;
	uint64_t	ku;

	if (c->ktls)
		return n > 0 ? ktls_write(c->fd, p, n) : 0;
	if (c->rec != NULL) {
		ku = tlsrec_key_updates_sent(c->rec);
		r = tlsrec_write(c->rec, c->fd, p, n);
		c->w->m->tls_key_updates_sent +=
		    tlsrec_key_updates_sent(c->rec) - ku;
		return r;
	}
	if (c->ssl == NULL) {
		r = send(c->fd, p, n, MSG_NOSIGNAL);
		if (r >= 0)
			return r;
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
	}
	ERR_clear_error();
	r = SSL_write(c->ssl, p, (int)n);
	if (r > 0)
		return r;
	e = SSL_get_error(c->ssl, (int)r);
	if (e == SSL_ERROR_WANT_WRITE)
		return -EAGAIN;
	if (e == SSL_ERROR_WANT_READ) {
		c->want_write_on_read = true;
		return -EAGAIN;
	}
	return -EPIPE;
}

/* The socket, below any WebSocket framing.  EOF, a reset or any other
 * failure means no close_notify at close (tls_close_notify): the peer
 * is gone, or TLS already failed (with its own alert). */
ssize_t
conn_sock_read(struct conn *c, uint8_t *p, size_t n)
{
	ssize_t	r = sock_read(c, p, n);

	if (r == 0 || (r < 0 && r != -EAGAIN))
		c->peer_gone = true;
	return r;
}

ssize_t
conn_sock_write(struct conn *c, const uint8_t *p, size_t n)
{
	ssize_t	r;

	c->want_write_on_read = false;
	if ((r = sock_write(c, p, n)) < 0 && r != -EAGAIN)
		c->peer_gone = true;
	return r;
}

/*
 * The one WebSocket hook: a WebSocket connection's bytes pass through
 * ws.c, which frames them over conn_sock_*; raw DERP pays a NULL test.
 */
static inline ssize_t
conn_read(struct conn *c, uint8_t *p, size_t n)
{
	return c->ws == NULL ? conn_sock_read(c, p, n) : ws_read(c, p, n);
}

static inline ssize_t
conn_write(struct conn *c, const uint8_t *p, size_t n)
{
	return c->ws == NULL ? conn_sock_write(c, p, n) : ws_write(c, p, n);
}

/* Move control bytes, then queued packets, into the write buffer. */
static int
conn_fill(struct conn *c)
{
	size_t	n;
	int	rc;

	n = bbuf_len(&c->ctrl);
	if (n > 0) {
		if (n > WK_OUT_CAP)
			n = WK_OUT_CAP;
		if ((rc = bbuf_append(&c->out, c->ctrl.p + c->ctrl.off, n,
		    WK_OUT_CAP)) < 0)
			return rc;
		bbuf_consume(&c->ctrl, n);
		if (bbuf_len(&c->ctrl) == 0)
			bbuf_free(&c->ctrl);
	}
	if (c->state == ST_DERP)
		return session_fill(c);
	return 0;
}

/* Write until done, EAGAIN or budget bytes written (the rest on the
 * next turns, when epoll reports the socket writable). */
static void
flush_upto(struct conn *c, size_t budget)
{
	struct worker	*w = c->w;
	const uint8_t	*p;
	size_t		 n, sent = 0;
	ssize_t		 r;
	int		 rc;
	bool		 progress = false;

	if (c->closing || c->state == ST_TLS)
		return;
	for (;;) {
		if (bbuf_len(&c->out) == 0 && c->cur == NULL) {
			if ((rc = conn_fill(c)) < 0) {
				conn_close(c, "out_of_memory");
				return;
			}
			if (bbuf_len(&c->out) == 0 && c->cur == NULL &&
			    (c->ws == NULL || !ws_want_write(c)))
				break;
		}
		if (sent >= budget) {
			(void)loop_io_mod(w->loop, &c->io, c->throttled ?
			    LOOP_OUT : LOOP_RW);
			return;
		}
		if (bbuf_len(&c->out) > 0) {
			p = c->out.p + c->out.off;
			n = bbuf_len(&c->out);
		} else if (c->cur != NULL) {
			p = c->cur->frame + c->cur_off;
			n = c->cur->len - c->cur_off;
		} else {
			p = NULL;	/* WebSocket frames of its own */
			n = 0;
		}
		r = conn_write(c, p, n);
		if (r > 0)
			c->tr.sent_wire += (uint64_t)r;
		if (r == -EAGAIN) {
			(void)loop_io_mod(w->loop, &c->io,
			    c->want_write_on_read ? LOOP_IN :
			    c->throttled ? LOOP_OUT : LOOP_RW);
			if (c->state == ST_DERP && (progress ||
			    !loop_timer_armed(&c->deadline))) {
				int	to = c->can_mesh ?
				    w->cfg.mesh_write_timeout_ms :
				    w->cfg.write_timeout_ms;

				if (to > 0)
					(void)loop_timer_set(w->loop,
					    &c->deadline, (uint64_t)to);
			}
			return;
		}
		if (r < 0) {
			conn_close(c, "write_error");
			return;
		}
		progress = true;
		sent += (size_t)r;
		if (bbuf_len(&c->out) > 0) {
			bbuf_consume(&c->out, (size_t)r);
		} else if (c->cur != NULL) {
			c->cur_off += (size_t)r;
			if (c->cur_off == c->cur->len) {
				pkt_free(w, c->cur);
				c->cur = NULL;
			}
		}
	}
	/* Everything written: idle connections hold no buffers. */
	bbuf_free(&c->out);
	if (c->state == ST_DERP)
		loop_timer_cancel(w->loop, &c->deadline);
	if (c->close_after_write && c->treq == NULL) {
		conn_close(c, c->close_reason ? c->close_reason : "done");
		return;
	}
	if (c->wwalk != NULL)
		watch_writable(c);	/* the rest of its presence list */
	(void)loop_io_mod(w->loop, &c->io, c->throttled ? 0 : LOOP_IN);
}

void
conn_flush(struct conn *c)
{
	flush_upto(c, WK_FLUSH_BUDGET);
}

int
conn_send_ctrl(struct conn *c, const void *p, size_t n)
{
	size_t	cap = c->watcher || c->big_ctrl ? WK_WATCH_CTRL_CAP :
		    WK_CTRL_CAP;

	if (c->closing)
		return -EPIPE;
	if (bbuf_append(&c->ctrl, p, n, cap) < 0) {
		conn_close(c, "control_overflow");
		return -ENOBUFS;
	}
	return 0;
}

static void
dispatch(struct conn *c)
{
	switch (c->state) {
	case ST_HTTP:
		http_input(c);
		break;
	case ST_HELLO:
	case ST_DERP:
		session_input(c);
		break;
	case ST_TLS:
		break;
	}
}

void
conn_on_readable(struct conn *c)
{
	struct worker	*w = c->w;
	struct bbuf	*in = &c->in;
	size_t		 budget = WK_READ_BUDGET, room, maxcap;
	ssize_t		 r;
	bool		 scratch;

	while (!c->closing && !c->throttled && budget > 0) {
		scratch = bbuf_len(in) == 0;
		if (scratch) {
			bbuf_free(in);
			in->p = w->scratch;
			in->cap = WK_IN_CAP;
			room = WK_IN_CAP;
		} else {
			maxcap = c->state == ST_HELLO ?
			    DERP_FRAME_HDR_LEN + DERP_MAX_CLIENT_INFO :
			    WK_IN_CAP;
			/* A partial frame near the maximum leaves little
			 * room: ask for what is left, not a fixed amount.
			 * A full buffer without a whole frame cannot happen
			 * within the frame limits. */
			room = maxcap - bbuf_len(in);
			if (room == 0 || bbuf_reserve(in, room < 16384 ? room :
			    16384, maxcap) < 0) {
				conn_close(c, "frame_too_large");
				return;
			}
			room = in->cap - in->len;
			if (room > 65536)
				room = 65536;
		}
		r = conn_read(c, in->p + in->len, room);
		if (r > 0) {
			in->len += (size_t)r;
			c->tr.recv_wire += (uint64_t)r;
			budget -= (size_t)r < budget ? (size_t)r : budget;
			dispatch(c);
		}
		if (scratch) {
			/* Keep only an unparsed tail, in the conn's own
			 * memory. */
			size_t		 left = bbuf_len(in);
			const uint8_t	*tail = in->p + in->off;

			memset(in, 0, sizeof(*in));
			if (left > 0 && !c->closing &&
			    bbuf_append(in, tail, left, left) < 0) {
				conn_close(c, "out_of_memory");
				return;
			}
		}
		if (r == -EAGAIN)
			break;
		if (r == 0) {
			/* A half-closed peer still gets what it asked for
			 * (as much as the socket takes now). */
			flush_upto(c, SIZE_MAX);
			conn_close(c, c->state == ST_DERP ? "eof" :
			    c->state == ST_HTTP && bbuf_len(in) > 0 ?
			    "http_bad_request" : "eof");
			return;
		}
		if (r < 0) {
			conn_close(c, "read_error");
			return;
		}
	}
	if (!c->closing && !c->throttled && budget == 0)
		conn_read_again(c);
	if (!c->closing)
		conn_flush_later(c);
}

void
conn_flush_later(struct conn *c)
{
	if (c->flush_pending || c->closing)
		return;
	c->flush_pending = true;
	c->flush_next = c->w->flush_list;
	c->w->flush_list = c;
}

void
conn_read_again(struct conn *c)
{
	if (c->in_again)
		return;
	c->in_again = true;
	c->again_next = c->w->again_list;
	c->w->again_list = c;
}

static void
tls_step(struct conn *c)
{
	int		r, e, sys_errno;
	unsigned long	err;
	enum tls_fail	why;
	char		msg[128];

	ERR_clear_error();
	errno = 0;
	SSL_set_app_data(c->ssl, c);	/* for the key log callback */
	r = SSL_do_handshake(c->ssl);
	sys_errno = errno;
	if (r == 1) {
		tls_offload(c);
		if (c->closing)
			return;
		c->state = ST_HTTP;
		(void)loop_io_mod(c->w->loop, &c->io, LOOP_IN);
		return;
	}
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ) {
		(void)loop_io_mod(c->w->loop, &c->io, LOOP_IN);
		return;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		(void)loop_io_mod(c->w->loop, &c->io, LOOP_RW);
		return;
	}
	err = ERR_peek_error();
	why = tls_fail_classify(e, err, sys_errno);
	c->w->m->tls_handshake_failures[why]++;
	ERR_error_string_n(err, msg, sizeof(msg));
	log_debug("tls_handshake_failed", "conn=%" PRIu64 " peer=%s "
	    "reason=%s err=\"%s\"", c->id, c->addr, metrics_tls_fail_name(why),
	    err != 0 ? msg : strerror(sys_errno));
	conn_close(c, "tls_handshake_failed");
}

static void
conn_io(struct loop_io *io, unsigned events)
{
	struct conn	*c = io->arg;

	if (c->closing)
		return;
	if (c->state == ST_TLS) {
		tls_step(c);
		if (c->closing || c->state == ST_TLS)
			return;
		events |= LOOP_IN;	/* data may follow the handshake */
	}
	if ((events & LOOP_OUT) || c->want_write_on_read)
		conn_flush(c);
	if ((events & LOOP_IN) && !c->closing)
		conn_on_readable(c);
}

static void
conn_deadline(struct loop_timer *t)
{
	struct conn	*c = t->arg;

	switch (c->state) {
	case ST_TLS:
		c->w->m->tls_handshake_failures[TLS_FAIL_TIMEOUT]++;
		conn_close(c, "tls_timeout");
		break;
	case ST_HTTP:
		conn_close(c, "http_timeout");
		break;
	case ST_HELLO:
		conn_close(c, "handshake_timeout");
		break;
	case ST_DERP:
		c->w->m->sclient_write_timeouts++;
		conn_close(c, "write_timeout");
		break;
	}
}

void
conn_close(struct conn *c, const char *reason)
{
	struct worker	*w = c->w;

	if (c->closing)
		return;
	c->closing = true;
	if (strcmp(reason, "done") != 0)
		log_info_conn("conn_closed", "conn=%" PRIu64 " peer=%s "
		    "reason=%s", c->id, c->addr, reason);
	loop_io_del(w->loop, &c->io);
	loop_timer_cancel(w->loop, &c->deadline);
	loop_timer_cancel(w->loop, &c->keepalive);
	loop_timer_cancel(w->loop, &c->rate_timer);
	admit_cancel(c);
	if (c->ip_counted) {
		limits_ip_release(w, c->ip16);
		c->ip_counted = false;
	}
	if (c->state == ST_DERP)
		session_end(c);
	traffic_conn_closed(c);
	if (c->ws != NULL)
		ws_close(c);	/* close frame, best effort */
	tls_close_notify(c);	/* after it: TLS ends last */
	c->close_next = w->close_list;
	w->close_list = c;
}

void
conn_free(struct conn *c)
{
	struct worker	*w = c->w;

	http_end(c);
	ws_free(c);
	if (c->cur != NULL)
		pkt_free(w, c->cur);
	SSL_free(c->ssl);
	derp_box_wipe(&c->box);
	tls_conn_end(c);
	close(c->fd);
	if (c->in.p != w->scratch)
		bbuf_free(&c->in);
	bbuf_free(&c->out);
	bbuf_free(&c->ctrl);
	membuf_forget(w, c);
	traffic_forget(w, c);
	node_forget(w, c);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	w->nconns--;
	free(c);
}

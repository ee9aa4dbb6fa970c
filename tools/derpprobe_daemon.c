/*
 * derpprobe --daemon: a probe thread runs a round every interval and
 * publishes its report; the main thread serves /metrics (Prometheus
 * text), / (HTML status), /healthz from a small single-threaded poll()
 * HTTP server with bounded connections and deadlines; the requests are
 * read by derpprobe_http.c.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "conf/conf.h"
#include "tools/derpprobe.h"
#include "tools/derpprobe_http.h"

#define MAX_CONNS	16	/* more are answered 503 and closed */
#define IN_MAX		4096	/* one read; the parser keeps no more */
#define REQ_MS		5000	/* to send a request, or to take an answer */
#define CONN_MS		60000	/* a connection's whole life */
#define LINGER_MS	1000	/* draining after the last answer */
#define MAX_REQS	100	/* per connection, then Connection: close */
#define REQS_PER_WAKEUP	8
#define ACCEPT_PAUSE_MS	100	/* out of fds or memory: listener unpolled */

struct shared {
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	bool			 stop;
	struct probe_report	 rep;		/* the last complete round */
	uint64_t		 rounds, map_failures;
	struct derp_map		*m;
	const struct probe_opts	*o;
	int			 interval_s;
	map_load_fn		 load;
	void			*arg;
};

struct hconn {
	int		 fd;
	struct phttp	 hp;
	char		 in[IN_MAX];
	size_t		 in_len;	/* not yet parsed: pipelined */
	char		*out;
	size_t		 out_len, out_off;
	bool		 close_after;
	bool		 draining;	/* answered, closing: reads discarded */
	unsigned	 nreqs;
	double		 deadline;	/* this request, answer or drain */
	double		 expires;	/* the connection's life */
};

static void *
prober(void *arg)
{
	struct shared		*s = arg;
	struct probe_report	 rep;
	struct timespec		 until;
	int			 rc;

	pthread_mutex_lock(&s->mu);
	while (!s->stop) {
		pthread_mutex_unlock(&s->mu);
		/* Rounds start every interval (a long one delays the next). */
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += s->interval_s;
		if (s->load != NULL && s->load(s->m, s->arg) < 0) {
			pthread_mutex_lock(&s->mu);
			s->map_failures++;
			pthread_mutex_unlock(&s->mu);
		}
		memset(&rep, 0, sizeof(rep));
		rc = probe_run(s->m, s->o, &rep);
		pthread_mutex_lock(&s->mu);
		if (rc < 0) {
			log_err("probe_round_failed", "err=%s", strerror(-rc));
			probe_report_fini(&rep);
		} else {
			probe_report_fini(&s->rep);
			s->rep = rep;
			s->rounds++;
			log_info("probe_round", "probes=%zu verdict=%s ms=%.0f",
			    rep.n, probe_verdict_name(probe_report_verdict(
			    &rep)), rep.duration_ms);
		}
		while (!s->stop && pthread_cond_timedwait(&s->cv, &s->mu,
		    &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static int
listen_on(const char *spec)
{
	struct addrinfo	 hints, *ai = NULL;
	char		 host[CONF_STR_MAX], ps[8];
	uint16_t	 port;
	int		 fd, on = 1, rc;

	if (conf_split_hostport(spec, host, sizeof(host), &port) < 0 ||
	    port == 0)
		return -EINVAL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
	snprintf(ps, sizeof(ps), "%u", port);
	if (getaddrinfo(host[0] ? host : NULL, ps, &hints, &ai) != 0)
		return -EINVAL;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd < 0) {
		rc = -errno;
		freeaddrinfo(ai);
		return rc;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 16) < 0) {
		rc = -errno;
		close(fd);
		freeaddrinfo(ai);
		return rc;
	}
	freeaddrinfo(ai);
	return fd;
}

/* Queue the answer: the head, and the body unless head_only. */
static int
respond(struct hconn *c, int status, const char *ctype, const char *body,
    bool head_only)
{
	size_t	blen = strlen(body);
	ssize_t	n;

	if ((c->out = malloc(blen + 512)) == NULL)
		return -ENOMEM;
	if ((n = phttp_head(c->out, 512, status, ctype, blen,
	    !c->close_after)) < 0) {
		free(c->out);
		c->out = NULL;
		return (int)n;
	}
	if (!head_only)
		memcpy(c->out + n, body, blen);
	c->out_len = (size_t)n + (head_only ? 0 : blen);
	c->out_off = 0;
	return 0;
}

static int
answer(struct shared *s, struct hconn *c, const struct phttp_req *r)
{
	char	 msg[64], *body;
	bool	 html = r->page == PHTTP_PAGE_STATUS;
	int	 rc;

	c->close_after = !r->keep_alive || ++c->nreqs >= MAX_REQS;
	if (r->status != 200) {
		log_debug("http_refused", "status=%d", r->status);
		snprintf(msg, sizeof(msg), "%s\n", phttp_reason(r->status));
		return respond(c, r->status, "text/plain", msg, r->head);
	}
	if (r->page == PHTTP_PAGE_HEALTHZ)
		return respond(c, 200, "text/plain", "ok\n", r->head);
	pthread_mutex_lock(&s->mu);
	body = html ? out_html(&s->rep) : out_metrics(&s->rep, s->interval_s,
	    s->rounds, s->map_failures);
	pthread_mutex_unlock(&s->mu);
	if (body == NULL) {
		c->close_after = true;
		return respond(c, 500, "text/plain", "out of memory\n",
		    r->head);
	}
	rc = respond(c, 200, html ? "text/html; charset=utf-8" :
	    "text/plain; version=0.0.4", body, r->head);
	free(body);
	return rc;
}

static void
conn_open(struct hconn *c, int fd, double now)
{
	memset(c, 0, sizeof(*c));
	phttp_init(&c->hp);
	c->fd = fd;
	c->deadline = now + REQ_MS;
	c->expires = now + CONN_MS;
}

static void
conn_close(struct hconn *c)
{
	close(c->fd);
	free(c->out);
	c->out = NULL;
	c->fd = -1;
	c->in_len = 0;
	c->draining = false;
}

/* Parse what is buffered and queue the answer to a complete request.
 * Returns 1 with an answer queued, 0 if more bytes are needed, or
 * -errno. */
static int
conn_parse(struct shared *s, struct hconn *c)
{
	struct phttp_req	r;
	size_t			used;
	int			rc;

	rc = phttp_feed(&c->hp, c->in, c->in_len, &used, &r);
	memmove(c->in, c->in + used, c->in_len - used);
	c->in_len -= used;
	if (rc == 0)
		return 0;
	if ((rc = answer(s, c, &r)) < 0)
		return rc;
	c->deadline = now_mono_ms() + REQ_MS;	/* to take the answer */
	return 1;
}

/* Returns 1 with an answer queued, 0 to wait for bytes, -1 if c was
 * closed. */
static int
conn_read(struct shared *s, struct hconn *c)
{
	ssize_t	n;
	int	rc;

	if ((rc = conn_parse(s, c)) == 0) {
		/* Everything buffered was consumed: the buffer is free. */
		n = read(c->fd, c->in, sizeof(c->in));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n <= 0) {
			conn_close(c);
			return -1;
		}
		c->in_len = (size_t)n;
		rc = conn_parse(s, c);
	}
	if (rc < 0) {
		conn_close(c);
		return -1;
	}
	return rc;
}

/* Returns 1 when the answer is out and c waits for the next request, 0
 * to wait for the socket, -1 if c was closed or is draining. */
static int
conn_write(struct hconn *c)
{
	ssize_t	n;

	n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n < 0) {
		conn_close(c);
		return -1;
	}
	c->out_off += (size_t)n;
	if (c->out_off < c->out_len)
		return 0;
	free(c->out);
	c->out = NULL;
	if (c->close_after) {
		/* Read what the client still sends until it closes, so
		 * its unread bytes do not turn our FIN into a reset that
		 * loses the answer. */
		if (shutdown(c->fd, SHUT_WR) < 0) {
			conn_close(c);
			return -1;
		}
		c->draining = true;
		c->deadline = now_mono_ms() + LINGER_MS;
		return -1;
	}
	c->deadline = now_mono_ms() + REQ_MS;
	return 1;
}

static void
conn_drain(struct hconn *c)
{
	ssize_t	n = read(c->fd, c->in, sizeof(c->in));

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0)
		conn_close(c);
}

/* One readiness event on c: requests and answers, pipelined ones too,
 * a bounded number per wakeup. */
static void
conn_io(struct shared *s, struct hconn *c)
{
	int	i;

	if (c->draining) {
		conn_drain(c);
		return;
	}
	for (i = 0; i < REQS_PER_WAKEUP; i++) {
		if (c->out == NULL && conn_read(s, c) <= 0)
			return;
		if (conn_write(c) <= 0)
			return;
	}
}

/* Accept one connection.  Returns 1 if one was taken, 0 if none was
 * there, or -errno when accept4 cannot take one for want of fds or
 * memory: the listener then stays readable, and the caller must stop
 * polling it for a while or spin. */
static int
conn_accept(struct hconn *conns, int lfd, double now)
{
	static const char	busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
	    "Content-Length: 0\r\nConnection: close\r\n\r\n";
	int			i, fd;

	for (i = 0; i < MAX_CONNS && conns[i].fd >= 0; i++)
		;
	fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM)
			return -errno;
		return 0;	/* EAGAIN, ECONNABORTED, EINTR: next time */
	}
	if (i == MAX_CONNS) {
		/* Full: say so (the scraper retries) in one try. */
		if (write(fd, busy, sizeof(busy) - 1) < 0)
			log_debug("http_busy", "err=%s", strerror(errno));
		close(fd);
		return 1;
	}
	conn_open(&conns[i], fd, now);
	return 1;
}

/* What c waits for.  Pipelined bytes still buffered are parsed on the
 * next writable event, since no read event may come for them. */
static short
conn_events(const struct hconn *c)
{
	if (c->draining)
		return POLLIN;
	return c->out != NULL || c->in_len > 0 ? POLLOUT : POLLIN;
}

/* The listener: polled, or paused until resume after accept4 ran out of
 * fds or memory (it stays readable then: polled, it would spin). */
struct acceptor {
	int	 fd;
	double	 resume;
	bool	 starved;	/* said so, and nothing accepted since */
};

/* Its pollfd at now: fd -1 (which poll skips) while paused, and
 * *timeout no later than the resumption. */
static struct pollfd
acceptor_poll(const struct acceptor *a, double now, int *timeout)
{
	if (now >= a->resume)
		return (struct pollfd){ .fd = a->fd, .events = POLLIN };
	if (a->resume - now < *timeout)
		*timeout = (int)(a->resume - now) + 1;
	return (struct pollfd){ .fd = -1 };
}

static void
acceptor_run(struct acceptor *a, struct hconn *conns)
{
	int	rc;

	if ((rc = conn_accept(conns, a->fd, now_mono_ms())) > 0) {
		a->starved = false;
	} else if (rc < 0) {
		/* A connection closing frees an fd; the backlog waits.
		 * One line until an accept works again. */
		if (!a->starved)
			log_warn_limited("accept_paused", "err=%s retry_ms=%d",
			    strerror(-rc), ACCEPT_PAUSE_MS);
		a->starved = true;
		a->resume = now_mono_ms() + ACCEPT_PAUSE_MS;
	}
}

static void
serve(struct shared *s, int lfd, int sfd)
{
	struct hconn		 conns[MAX_CONNS];	/* ~5 KiB each */
	struct pollfd		 pf[MAX_CONNS + 2];
	struct acceptor		 acc = { .fd = lfd };
	int			 i, n, map[MAX_CONNS + 2], timeout;
	double			 now, until, flushed = 0;

	memset(conns, 0, sizeof(conns));
	for (i = 0; i < MAX_CONNS; i++)
		conns[i].fd = -1;
	for (;;) {
		now = now_mono_ms();
		if (now - flushed >= 1000) {
			(void)log_limit_flush();	/* held-back counts */
			flushed = now;
		}
		timeout = 1000;
		n = 0;
		pf[n++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		pf[n++] = acceptor_poll(&acc, now, &timeout);
		for (i = 0; i < MAX_CONNS; i++) {
			if (conns[i].fd < 0)
				continue;
			until = conns[i].deadline < conns[i].expires ?
			    conns[i].deadline : conns[i].expires;
			if (now >= until) {
				log_debug("http_timeout", "draining=%d",
				    conns[i].draining);
				conn_close(&conns[i]);
				continue;
			}
			if (until - now < timeout)
				timeout = (int)(until - now) + 1;
			map[n] = i;
			pf[n++] = (struct pollfd){ .fd = conns[i].fd,
			    .events = conn_events(&conns[i]) };
		}
		if (poll(pf, (nfds_t)n, timeout) < 0 && errno != EINTR)
			break;
		if (pf[0].revents & POLLIN)
			break;		/* SIGTERM or SIGINT */
		for (i = 2; i < n; i++)
			if (pf[i].revents)
				conn_io(s, &conns[map[i]]);
		if (pf[1].revents & POLLIN)
			acceptor_run(&acc, conns);
	}
	for (i = 0; i < MAX_CONNS; i++)
		if (conns[i].fd >= 0)
			conn_close(&conns[i]);
}

int
daemon_run(struct derp_map *m, const struct probe_opts *o,
    const char *listen, int interval_s, map_load_fn load, void *arg)
{
	struct shared	s;
	pthread_t	th;
	sigset_t	set;
	int		lfd, sfd, rc;

	memset(&s, 0, sizeof(s));
	s.m = m;
	s.o = o;
	s.interval_s = interval_s;
	s.load = load;
	s.arg = arg;
	if ((lfd = listen_on(listen)) < 0) {
		log_err("listen_failed", "addr=%s err=%s", listen,
		    strerror(-lfd));
		return 3;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	/* Blocked before the thread starts, so only the signalfd sees them. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((sfd = signalfd(-1, &set, SFD_CLOEXEC)) < 0) {
		close(lfd);
		return 3;
	}
	pthread_mutex_init(&s.mu, NULL);
	pthread_cond_init(&s.cv, NULL);
	if ((rc = pthread_create(&th, NULL, prober, &s)) != 0) {
		log_err("thread_failed", "err=%s", strerror(rc));
		close(sfd);
		close(lfd);
		return 3;
	}
	log_notice("derpprobe_started", "listen=%s interval=%d nodes=%zu",
	    listen, interval_s, m->nnodes);
	serve(&s, lfd, sfd);
	pthread_mutex_lock(&s.mu);
	s.stop = true;
	pthread_cond_signal(&s.cv);
	pthread_mutex_unlock(&s.mu);
	pthread_join(th, NULL);
	probe_report_fini(&s.rep);
	pthread_cond_destroy(&s.cv);
	pthread_mutex_destroy(&s.mu);
	close(sfd);
	close(lfd);
	(void)log_limit_flush();
	log_notice("derpprobe_stopped", "rounds=%llu",
	    (unsigned long long)s.rounds);
	return 0;
}

/*
 * derpprobe --daemon: a probe thread runs a round every interval and
 * publishes its report; the main thread serves /metrics (Prometheus
 * text), / (HTML status), /healthz from a small single-threaded poll()
 * HTTP server with bounded connections, request size and deadlines.
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

#define MAX_CONNS	16
#define REQ_MAX		4096
#define CONN_MS		5000

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
	int	 fd;
	char	 in[REQ_MAX];
	size_t	 in_len;
	char	*out;
	size_t	 out_len, out_off;
	double	 deadline;
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

static int
respond(struct hconn *c, int status, const char *reason, const char *type,
    char *body, bool head)
{
	size_t	blen = body ? strlen(body) : 0;
	int	n;

	if ((c->out = malloc(blen + 256)) == NULL) {
		free(body);
		return -ENOMEM;
	}
	n = snprintf(c->out, 256, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\nCache-Control: no-store\r\n"
	    "Connection: close\r\n\r\n", status, reason, type, blen);
	if (!head && blen)
		memcpy(c->out + n, body, blen);
	c->out_len = (size_t)n + (head ? 0 : blen);
	free(body);
	return 0;
}

static char *
dup_str(const char *s)
{
	return strdup(s);
}

static int
route(struct shared *s, struct hconn *c)
{
	char	 method[8], path[256], *q, *body;
	bool	 head;

	if (sscanf(c->in, "%7s %255s HTTP/1.", method, path) != 2)
		return respond(c, 400, "Bad Request", "text/plain",
		    dup_str("bad request\n"), false);
	head = strcmp(method, "HEAD") == 0;
	if (!head && strcmp(method, "GET") != 0)
		return respond(c, 405, "Method Not Allowed", "text/plain",
		    dup_str("method not allowed\n"), false);
	if ((q = strchr(path, '?')) != NULL)
		*q = '\0';
	if (strcmp(path, "/healthz") == 0)
		return respond(c, 200, "OK", "text/plain", dup_str("ok\n"),
		    head);
	if (strcmp(path, "/metrics") != 0 && strcmp(path, "/") != 0)
		return respond(c, 404, "Not Found", "text/plain",
		    dup_str("not found\n"), head);
	pthread_mutex_lock(&s->mu);
	body = path[1] == '\0' ? out_html(&s->rep) : out_metrics(&s->rep,
	    s->interval_s, s->rounds, s->map_failures);
	pthread_mutex_unlock(&s->mu);
	if (body == NULL)
		return respond(c, 500, "Internal Server Error", "text/plain",
		    dup_str("out of memory\n"), head);
	return respond(c, 200, "OK", path[1] == '\0' ?
	    "text/html; charset=utf-8" : "text/plain; version=0.0.4", body,
	    head);
}

static void
conn_close(struct hconn *c)
{
	close(c->fd);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* One readiness event on c: read the request, or write the answer. */
static void
conn_io(struct shared *s, struct hconn *c)
{
	ssize_t	n;

	if (c->out == NULL) {
		n = read(c->fd, c->in + c->in_len, sizeof(c->in) - 1 -
		    c->in_len);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			conn_close(c);
			return;
		}
		c->in_len += (size_t)n;
		c->in[c->in_len] = '\0';
		if (strstr(c->in, "\r\n\r\n") == NULL &&
		    strstr(c->in, "\n\n") == NULL) {
			if (c->in_len < sizeof(c->in) - 1)
				return;
			if (respond(c, 431, "Request Header Fields Too Large",
			    "text/plain", dup_str("too large\n"), false) < 0) {
				conn_close(c);
				return;
			}
		} else if (route(s, c) < 0) {
			conn_close(c);
			return;
		}
	}
	n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		conn_close(c);
		return;
	}
	c->out_off += (size_t)n;
	if (c->out_off == c->out_len)
		conn_close(c);
}

static void
serve(struct shared *s, int lfd, int sfd)
{
	struct hconn	 conns[MAX_CONNS];
	struct pollfd	 pf[MAX_CONNS + 2];
	int		 i, n, fd, map[MAX_CONNS + 2];
	double		 now;

	for (i = 0; i < MAX_CONNS; i++) {
		memset(&conns[i], 0, sizeof(conns[i]));
		conns[i].fd = -1;
	}
	for (;;) {
		n = 0;
		pf[n++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		pf[n++] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		for (i = 0; i < MAX_CONNS; i++) {
			if (conns[i].fd < 0)
				continue;
			map[n] = i;
			pf[n++] = (struct pollfd){ .fd = conns[i].fd,
			    .events = conns[i].out ? POLLOUT : POLLIN };
		}
		if (poll(pf, (nfds_t)n, 1000) < 0 && errno != EINTR)
			break;
		if (pf[0].revents & POLLIN)
			break;		/* SIGTERM or SIGINT */
		for (i = 2; i < n; i++)
			if (pf[i].revents)
				conn_io(s, &conns[map[i]]);
		now = now_mono_ms();
		for (i = 0; i < MAX_CONNS; i++)
			if (conns[i].fd >= 0 && now > conns[i].deadline)
				conn_close(&conns[i]);
		if (!(pf[1].revents & POLLIN))
			continue;
		for (i = 0; i < MAX_CONNS && conns[i].fd >= 0; i++)
			;
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		if (i == MAX_CONNS) {
			close(fd);	/* full: the scraper retries */
			continue;
		}
		conns[i].fd = fd;
		conns[i].deadline = now + CONN_MS;
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
	log_notice("derpprobe_stopped", "rounds=%llu",
	    (unsigned long long)s.rounds);
	return 0;
}

/*
 * stunbench: STUN load generator.  Tailscale-shaped binding requests
 * (derp/stun.h) over several connected UDP sockets, a window of requests
 * in flight on each, one thread; counts verified responses per second,
 * losses, round-trip percentiles and, given the server's pids, server
 * CPU microseconds per request.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "conf/conf.h"
#include "derp/stun.h"

#define MAX_SOCKS	64
#define LAT_MAX		(1 << 20)
#define LOST_MS		200	/* no answer within: counted lost */

struct sock {
	int		fd;
	unsigned	inflight;
	uint64_t	last_rx_ns;
};

struct bench {
	struct sock	 s[MAX_SOCKS];
	int		 nsocks;
	unsigned	 window;
	double		 seconds;
	uint8_t		 nonce[4];	/* this run's txid prefix */
	uint64_t	 sent, recv, bad, lost;
	uint64_t	*lat;
	size_t		 nlat;
	int		 pids[64];
	int		 npids;
	bool		 json;
};

static uint64_t
now_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double
cpu_seconds(const struct bench *b)
{
	char			 path[64], buf[1024], *s;
	unsigned long long	 ut, st;
	double			 sum = 0;
	FILE			*f;
	int			 i, k;

	for (k = 0; k < b->npids; k++) {
		snprintf(path, sizeof(path), "/proc/%d/stat", b->pids[k]);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		s = fgets(buf, sizeof(buf), f);
		fclose(f);
		if (s == NULL || (s = strrchr(buf, ')')) == NULL)
			continue;
		/* After ')': state is field 3, utime 14, stime 15. */
		for (i = 3, s += 2; i < 14 && s != NULL; i++)
			s = strchr(s, ' ') ? strchr(s, ' ') + 1 : NULL;
		if (s != NULL && sscanf(s, "%llu %llu", &ut, &st) == 2)
			sum += (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	}
	return sum;
}

/* txid = nonce (4) | send time, ns (8): a response proves itself ours
 * and carries its own round-trip time. */
static void
send_one(struct bench *b, struct sock *s)
{
	uint8_t		txid[STUN_TXID_LEN], req[STUN_REQUEST_LEN];
	uint64_t	t = now_ns();
	size_t		n;
	int		i;

	memcpy(txid, b->nonce, 4);
	for (i = 0; i < 8; i++)
		txid[4 + i] = (uint8_t)(t >> (56 - 8 * i));
	n = stun_build_request(req, txid);
	if (send(s->fd, req, n, MSG_DONTWAIT) == (ssize_t)n) {
		s->inflight++;
		b->sent++;
	}
}

static void
on_readable(struct bench *b, struct sock *s, bool measuring)
{
	uint8_t			pkt[128];
	struct sockaddr_storage	addr;
	uint64_t		t0 = 0;
	ssize_t			n;
	int			i, k;

	for (k = 0; k < 64; k++) {
		if ((n = recv(s->fd, pkt, sizeof(pkt), MSG_DONTWAIT)) < 0)
			return;
		if (n < 20 || memcmp(pkt + 8, b->nonce, 4) != 0 ||
		    stun_parse_response(pkt, (size_t)n, pkt + 8, &addr) < 0) {
			b->bad++;
			continue;
		}
		for (i = 0; i < 8; i++)
			t0 = t0 << 8 | pkt[12 + i];
		s->last_rx_ns = now_ns();
		if (s->inflight > 0)
			s->inflight--;
		if (!measuring)
			continue;
		b->recv++;
		if (b->nlat < LAT_MAX)
			b->lat[b->nlat++] = s->last_rx_ns - t0;
	}
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double
pct_ms(const struct bench *b, double p)
{
	if (b->nlat == 0)
		return 0;
	return (double)b->lat[(size_t)(p * (double)(b->nlat - 1))] / 1e6;
}

static int
open_socks(struct bench *b, const char *target)
{
	char			 host[CONF_STR_MAX];
	uint16_t		 port;
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*s6 = (struct sockaddr_in6 *)&ss;
	socklen_t		 sl;
	int			 i, fd;

	memset(&ss, 0, sizeof(ss));
	if (conf_split_hostport(target, host, sizeof(host), &port) < 0)
		return -EINVAL;
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		sl = sizeof(*s4);
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		sl = sizeof(*s6);
	} else {
		return -EINVAL;
	}
	for (i = 0; i < b->nsocks; i++) {
		if ((fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0)) < 0)
			return -errno;
		b->s[i].fd = fd;
		if (connect(fd, (struct sockaddr *)&ss, sl) < 0)
			return -errno;
	}
	return 0;
}

/* Keep every socket's window full; a socket silent for LOST_MS has its
 * outstanding requests written off. */
static void
run(struct bench *b, uint64_t until, bool measuring)
{
	struct pollfd	 p[MAX_SOCKS];
	uint64_t	 t;
	int		 i;

	for (i = 0; i < b->nsocks; i++) {
		p[i].fd = b->s[i].fd;
		p[i].events = POLLIN;
	}
	while ((t = now_ns()) < until) {
		for (i = 0; i < b->nsocks; i++) {
			struct sock	*s = &b->s[i];

			if (s->inflight > 0 && t - s->last_rx_ns >
			    (uint64_t)LOST_MS * 1000000u) {
				if (measuring)
					b->lost += s->inflight;
				s->inflight = 0;
				s->last_rx_ns = t;
			}
			while (s->inflight < b->window)
				send_one(b, s);
		}
		if (poll(p, (nfds_t)b->nsocks, 10) <= 0)
			continue;
		for (i = 0; i < b->nsocks; i++)
			if (p[i].revents & POLLIN)
				on_readable(b, &b->s[i], measuring);
	}
}

static void
report(struct bench *b, double secs, double cpu)
{
	double	rps = (double)b->recv / secs, loss = 0;

	if (b->sent > 0)
		loss = 100.0 * (double)b->lost / (double)b->sent;

	qsort(b->lat, b->nlat, sizeof(b->lat[0]), cmp_u64);
	if (b->json) {
		printf("{\"bench\":\"stun\",\"sockets\":%d,\"window\":%u,"
		    "\"seconds\":%.2f,\"sent\":%" PRIu64 ",\"responses\":%"
		    PRIu64 ",\"responses_per_s\":%.0f,\"loss_pct\":%.3f,"
		    "\"bad\":%" PRIu64 ",\"rtt_ms\":{\"p50\":%.3f,"
		    "\"p99\":%.3f},"
		    "\"server_cpu_us_per_req\":%.2f}\n", b->nsocks, b->window,
		    secs, b->sent, b->recv, rps, loss, b->bad, pct_ms(b, 0.5),
		    pct_ms(b, 0.99), b->recv ? cpu * 1e6 / (double)b->recv : 0);
		return;
	}
	printf("stun: %.0f responses/s (%d sockets x %u in flight, %.1f s), "
	    "loss %.3f %%, rtt p50 %.3f ms p99 %.3f ms", rps, b->nsocks,
	    b->window, secs, loss, pct_ms(b, 0.5), pct_ms(b, 0.99));
	if (b->npids > 0)
		printf(", server CPU %.2f us/request", b->recv ?
		    cpu * 1e6 / (double)b->recv : 0);
	printf("\n");
}

static void
usage(void)
{
	fprintf(stderr, "usage: stunbench [--seconds S] [--sockets N] "
	    "[--window W] [--server-pid PID[,PID...]] [--json] IP:PORT\n");
	exit(2);
}

static void
parse_pids(struct bench *b, char *s)
{
	char	*tok, *save = NULL;

	for (tok = strtok_r(s, ",", &save); tok != NULL && b->npids < 64;
	    tok = strtok_r(NULL, ",", &save))
		b->pids[b->npids++] = atoi(tok);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "sockets", required_argument, NULL, 'n' },
		{ "window", required_argument, NULL, 'w' },
		{ "server-pid", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	static struct bench	b;
	uint64_t		t0, t1;
	double			cpu0, secs;
	int			ch, rc;

	b.seconds = 3;
	b.nsocks = 4;
	b.window = 32;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 's': b.seconds = atof(optarg); break;
		case 'n': b.nsocks = atoi(optarg); break;
		case 'w': b.window = (unsigned)atoi(optarg); break;
		case 'p': parse_pids(&b, optarg); break;
		case 'j': b.json = true; break;
		default: usage();
		}
	}
	if (optind != argc - 1 || b.seconds <= 0 || b.nsocks < 1 ||
	    b.nsocks > MAX_SOCKS || b.window < 1 || b.window > 4096)
		usage();
	if (sodium_init() < 0 || (b.lat = malloc(LAT_MAX *
	    sizeof(*b.lat))) == NULL)
		return 1;
	randombytes_buf(b.nonce, sizeof(b.nonce));
	if ((rc = open_socks(&b, argv[optind])) < 0) {
		fprintf(stderr, "stunbench: %s: %s\n", argv[optind],
		    strerror(-rc));
		return 1;
	}
	/* Half a second of warm-up, not counted. */
	run(&b, now_ns() + 500000000u, false);
	b.sent = b.lost = 0;
	cpu0 = cpu_seconds(&b);
	t0 = now_ns();
	run(&b, t0 + (uint64_t)(b.seconds * 1e9), true);
	t1 = now_ns();
	secs = (double)(t1 - t0) / 1e9;
	report(&b, secs, cpu_seconds(&b) - cpu0);
	free(b.lat);
	return b.recv > 0 ? 0 : 1;
}

/*
 * derpbench: load generator for a DERP server.  N client pairs, each a
 * sender thread and a receiver thread on their own connections; fixed
 * packet size; as fast as possible or at a fixed rate; reports packets/s,
 * Gbit/s, loss, one-way latency percentiles and, given the server's pid,
 * server CPU seconds per GB relayed (from /proc).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "derp/key.h"
#include "mesh/client.h"

#define LAT_MAX		(1 << 20)

struct bench {
	struct client_opts	 co;
	int			 pairs;
	size_t			 size;
	double			 seconds;
	double			 rate;		/* packets/s per pair, 0 = max */
	unsigned		 window;	/* max in flight per pair */
	int			 server_pids[64];	/* summed */
	int			 npids;
	const char		*server_log;	/* to classify connections */
	int			 topology;	/* 0 any, 1 same, 2 cross */
	bool			 json;
	atomic_bool		 stop;
	atomic_uint_fast64_t	 sent, recv, recv_bytes;
	uint64_t		*lat;		/* ns samples */
	atomic_size_t		 nlat;
};

struct pair {
	struct bench	*b;
	atomic_uint_fast64_t psent, precv;	/* this pair's counts */
	struct client	*tx, *rx;
	pthread_t	 ttx, trx;
};

static uint64_t
now_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *
sender(void *arg)
{
	struct pair	*p = arg;
	struct bench	*b = p->b;
	uint8_t		*pkt;
	uint64_t	 t, next = now_ns(), gap;
	int		 rc;

	if ((pkt = calloc(1, b->size < 8 ? 8 : b->size)) == NULL)
		return NULL;
	gap = b->rate > 0 ? (uint64_t)(1e9 / b->rate) : 0;
	while (!atomic_load(&b->stop)) {
		if (gap > 0) {
			while ((t = now_ns()) < next) {
				struct timespec	ts = { 0, (long)(next - t) };

				nanosleep(&ts, NULL);
			}
			next += gap;
		}
		/* Closed loop: never more than window packets in flight, so
		 * "as fast as possible" measures what the relay delivers,
		 * not what it drops. */
		if (b->window > 0 && atomic_load(&p->psent) -
		    atomic_load(&p->precv) >= b->window) {
			uint64_t	give_up = now_ns() + 200000000u;

			(void)client_flush(p->tx, 5000);
			while (!atomic_load(&b->stop) && atomic_load(&p->psent) -
			    atomic_load(&p->precv) >= b->window / 2) {
				if (now_ns() > give_up) {
					/* Lost in the relay: stop waiting. */
					atomic_store(&p->precv,
					    atomic_load(&p->psent));
					break;
				}
				sched_yield();
			}
			continue;
		}
		t = now_ns();
		memcpy(pkt, &t, b->size >= 8 ? 8 : 0);
		rc = client_queue_packet(p->tx, client_public_key(p->rx), pkt,
		    b->size);
		if (rc == -ENOBUFS || gap > 0) {
			if (client_flush(p->tx, 5000) < 0)
				break;
			if (rc == -ENOBUFS)
				continue;
		} else if (rc < 0) {
			break;
		}
		atomic_fetch_add(&b->sent, 1);
		atomic_fetch_add(&p->psent, 1);
	}
	(void)client_flush(p->tx, 1000);
	free(pkt);
	return NULL;
}

static void *
receiver(void *arg)
{
	struct pair		*p = arg;
	struct bench		*b = p->b;
	struct client_msg	 m;
	uint64_t		 t;
	size_t			 i;
	int			 rc;

	while (!atomic_load(&b->stop)) {
		rc = client_recv(p->rx, &m, 200);
		if (rc == -ETIMEDOUT || rc == -EAGAIN)
			continue;
		if (rc < 0)
			break;
		if (m.type != DERP_FRAME_RECV_PACKET)
			continue;
		atomic_fetch_add(&b->recv, 1);
		atomic_fetch_add(&p->precv, 1);
		atomic_fetch_add(&b->recv_bytes, m.len);
		if (m.len >= 8) {
			memcpy(&t, m.data, 8);
			i = atomic_fetch_add(&b->nlat, 1);
			if (i < LAT_MAX)
				b->lat[i] = now_ns() - t;
		}
	}
	return NULL;
}

static double
proc_cpu_seconds(int pid)
{
	char			 path[64], buf[1024], *s;
	FILE			*f;
	unsigned long long	 ut = 0, st = 0;
	int			 i;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	if (fgets(buf, sizeof(buf), f) == NULL) {
		fclose(f);
		return -1;
	}
	fclose(f);
	if ((s = strrchr(buf, ')')) == NULL)
		return -1;
	/* Fields after ')': state is field 3; utime 14, stime 15. */
	for (i = 3, s += 2; i < 14 && s != NULL; i++)
		s = strchr(s, ' ') ? strchr(s, ' ') + 1 : NULL;
	if (s == NULL || sscanf(s, "%llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The worker a connection landed on, from the local server's log (the
 * client_registered line naming our source port); -1 if unknown. */
static int
worker_of(const char *log, struct client *c)
{
	struct sockaddr_in	 sa;
	socklen_t		 sl = sizeof(sa);
	char			 needle[64], line[1024], *p;
	FILE			*f;
	int			 w = -1, tries;

	if (getsockname(client_fd(c), (struct sockaddr *)&sa, &sl) == -1)
		return -1;
	snprintf(needle, sizeof(needle), "peer=127.0.0.1:%u ",
	    ntohs(sa.sin_port));
	for (tries = 0; tries < 200 && w < 0; tries++) {
		if ((f = fopen(log, "r")) == NULL)
			return -1;
		while (fgets(line, sizeof(line), f) != NULL)
			if (strstr(line, "event=client_registered") &&
			    strstr(line, needle) &&
			    (p = strstr(line, " worker=")) != NULL)
				w = atoi(p + 8);
		fclose(f);
		if (w < 0)
			usleep(5000);	/* the log line is written async */
	}
	return w;
}

/* Connect a receiver on the same worker as tx, or on another one. */
static struct client *
connect_rx(struct bench *b, struct client *tx, int *err)
{
	struct client	*rx;
	int		 wt, attempt;

	if (b->topology == 0 || b->server_log == NULL)
		return client_connect(&b->co, err);
	wt = worker_of(b->server_log, tx);
	for (attempt = 0; attempt < 64; attempt++) {
		if ((rx = client_connect(&b->co, err)) == NULL)
			return NULL;
		if ((worker_of(b->server_log, rx) == wt) == (b->topology == 1))
			return rx;
		client_free(rx);
	}
	*err = -EAGAIN;
	return NULL;
}

static double
pids_cpu_seconds(const struct bench *b)
{
	double	sum = 0, v;
	int	i;

	for (i = 0; i < b->npids; i++) {
		if ((v = proc_cpu_seconds(b->server_pids[i])) < 0)
			return -1;
		sum += v;
	}
	return sum;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void
usage(void)
{
	fprintf(stderr, "usage: derpbench [--tls] [--insecure] [--pairs N] "
	    "[--size BYTES] [--seconds S]\n"
	    "                 [--rate PPS_PER_PAIR] [--window N (0 = open loop)]\n"
	    "                 [--server-pid PID] [--json]\n"
	    "                 [--topology same|cross --server-log FILE] "
	    "HOST:PORT\n");
	exit(2);
}

static void
report(struct bench *b, double secs, double cpu)
{
	uint64_t	sent = atomic_load(&b->sent), recv = atomic_load(&b->recv);
	uint64_t	bytes = atomic_load(&b->recv_bytes);
	size_t		n = atomic_load(&b->nlat);
	double		pps = (double)recv / secs;
	double		gbps = (double)bytes * 8 / secs / 1e9;
	double		loss = sent ? 100.0 * (double)(sent - recv) /
			    (double)sent : 0;
	double		p50 = 0, p90 = 0, p99 = 0, pmax = 0;
	double		cpu_gb = cpu >= 0 && bytes ? cpu / ((double)bytes / 1e9)
			    : -1;

	if (n > LAT_MAX)
		n = LAT_MAX;
	if (n > 0) {
		qsort(b->lat, n, sizeof(*b->lat), cmp_u64);
		p50 = (double)b->lat[n / 2] / 1e6;
		p90 = (double)b->lat[n * 9 / 10] / 1e6;
		p99 = (double)b->lat[n * 99 / 100] / 1e6;
		pmax = (double)b->lat[n - 1] / 1e6;
	}
	if (b->json) {
		printf("{\"topology\":\"%s\",\"pairs\":%d,\"size\":%zu,"
		    "\"seconds\":%.3f,"
		    "\"sent\":%" PRIu64 ",\"received\":%" PRIu64 ","
		    "\"pps\":%.0f,\"gbps\":%.4f,\"mbytes_per_s\":%.2f,"
		    "\"loss_pct\":%.3f,\"lat_ms\":{\"p50\":%.3f,\"p90\":%.3f,"
		    "\"p99\":%.3f,\"max\":%.3f},\"server_cpu_s\":%.3f,"
		    "\"server_cpu_s_per_gb\":%.3f}\n", b->topology == 1 ? "same" :
		    b->topology == 2 ? "cross" : "any", b->pairs, b->size, secs,
		    sent, recv, pps, gbps, (double)bytes / secs / 1e6, loss,
		    p50, p90, p99, pmax, cpu, cpu_gb);
		return;
	}
	printf("pairs %d  size %zu B  %.1f s\n", b->pairs, b->size, secs);
	printf("  sent %" PRIu64 "  received %" PRIu64 "  loss %.2f%%\n", sent,
	    recv, loss);
	printf("  %.0f packets/s  %.1f MB/s  %.3f Gbit/s\n", pps,
	    (double)bytes / secs / 1e6, gbps);
	printf("  latency ms p50 %.3f p90 %.3f p99 %.3f max %.3f\n", p50, p90,
	    p99, pmax);
	if (cpu >= 0)
		printf("  server CPU %.2f s  = %.2f CPU-s per GB relayed\n",
		    cpu, cpu_gb);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tls", no_argument, NULL, 't' },
		{ "insecure", no_argument, NULL, 'k' },
		{ "pairs", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 's' },
		{ "seconds", required_argument, NULL, 'd' },
		{ "rate", required_argument, NULL, 'r' },
		{ "server-pid", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "window", required_argument, NULL, 'w' },
		{ "server-log", required_argument, NULL, 'l' },
		{ "topology", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	static struct bench	 b;
	struct pair		*ps;
	char			 host[256], *colon;
	double			 cpu0 = -1, cpu1 = -1, secs;
	uint64_t		 t0;
	int			 ch, i, err;

	b.pairs = 10;
	b.size = 1200;
	b.seconds = 5;
	b.window = 64;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 't': b.co.tls = true; break;
		case 'k': b.co.tls_insecure = true; break;
		case 'n': b.pairs = atoi(optarg); break;
		case 's': b.size = (size_t)atol(optarg); break;
		case 'd': b.seconds = atof(optarg); break;
		case 'r': b.rate = atof(optarg); break;
		case 'p': {
			char	*tok, *save = NULL;

			for (tok = strtok_r(optarg, ",", &save); tok != NULL &&
			    b.npids < 64; tok = strtok_r(NULL, ",", &save))
				b.server_pids[b.npids++] = atoi(tok);
			break;
		}
		case 'j': b.json = true; break;
		case 'w': b.window = (unsigned)atoi(optarg); break;
		case 'l': b.server_log = optarg; break;
		case 'o':
			b.topology = strcmp(optarg, "same") == 0 ? 1 :
			    strcmp(optarg, "cross") == 0 ? 2 : 0;
			break;
		default: usage();
		}
	}
	if (optind + 1 != argc || b.pairs < 1 || b.size > DERP_MAX_PACKET)
		usage();
	snprintf(host, sizeof(host), "%s", argv[optind]);
	if ((colon = strrchr(host, ':')) == NULL)
		usage();
	*colon = '\0';
	b.co.host = host;
	b.co.port = (uint16_t)atoi(colon + 1);
	b.co.info.can_ack_pings = true;
	if (derp_crypto_init() < 0 ||
	    (b.lat = calloc(LAT_MAX, sizeof(*b.lat))) == NULL ||
	    (ps = calloc((size_t)b.pairs, sizeof(*ps))) == NULL)
		return 1;
	for (i = 0; i < b.pairs; i++) {
		ps[i].b = &b;
		if ((ps[i].tx = client_connect(&b.co, &err)) == NULL ||
		    (ps[i].rx = connect_rx(&b, ps[i].tx, &err)) == NULL) {
			fprintf(stderr, "derpbench: connect: %s\n",
			    strerror(-err));
			return 1;
		}
	}
	if (b.npids > 0)
		cpu0 = pids_cpu_seconds(&b);
	t0 = now_ns();
	for (i = 0; i < b.pairs; i++) {
		pthread_create(&ps[i].trx, NULL, receiver, &ps[i]);
		pthread_create(&ps[i].ttx, NULL, sender, &ps[i]);
	}
	usleep((useconds_t)(b.seconds * 1e6));
	atomic_store(&b.stop, true);
	secs = (double)(now_ns() - t0) / 1e9;
	if (b.npids > 0)
		cpu1 = pids_cpu_seconds(&b);
	for (i = 0; i < b.pairs; i++) {
		pthread_join(ps[i].ttx, NULL);
		pthread_join(ps[i].trx, NULL);
		client_free(ps[i].tx);
		client_free(ps[i].rx);
	}
	report(&b, secs, cpu0 >= 0 && cpu1 >= 0 ? cpu1 - cpu0 : -1);
	free(ps);
	free(b.lat);
	return 0;
}

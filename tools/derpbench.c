/*
 * derpbench: load generator for a DERP server.  Relay mode: N client
 * pairs, each a sender thread and a receiver thread on their own
 * connections, on one node (any, same or different workers) or across
 * two meshed nodes; fixed packet size; closed loop or open loop; reports
 * packets/s, MB/s, Gbit/s, loss, one-way latency percentiles and, given
 * the server's pids, server CPU seconds per GB relayed.  Paced mode
 * (derpbench_paced.c): open loop at a fixed rate, latency histogram,
 * stalls.  Idle mode (derpbench_idle.c): many silent clients, the
 * server's memory per connection.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "derp/key.h"
#include "tools/derpbench.h"

const char *const bench_topo_names[TOPO_N] = { "any", "same", "cross",
    "mesh" };

#define LAT_MAX		(1 << 20)
#define WARMUP_MS	15000	/* a pair must deliver one packet by then */

uint64_t
bench_now_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t
in_flight(struct pair *p)
{
	return atomic_load(&p->psent) - atomic_load(&p->precv) -
	    atomic_load(&p->pwritten_off);
}

/* Closed loop: never more than window packets in flight, so "as fast as
 * possible" measures what the relay delivers, not what it drops. */
static void
wait_window(struct pair *p)
{
	struct bench	*b = p->b;
	uint64_t	 give_up = bench_now_ns() + 200000000u;

	(void)client_flush(p->tx, 5000);	/* a failure shows next send */
	while (!atomic_load(&b->stop) && in_flight(p) >= b->window / 2) {
		if (bench_now_ns() > give_up) {
			/* Lost in the relay: stop waiting for them. */
			atomic_fetch_add(&p->pwritten_off, in_flight(p));
			break;
		}
		sched_yield();
	}
}

static void *
sender(void *arg)
{
	struct pair	*p = arg;
	struct bench	*b = p->b;
	uint8_t		*pkt;
	uint64_t	 t;
	int		 rc;

	if ((pkt = calloc(1, b->size < 8 ? 8 : b->size)) == NULL)
		goto out;
	while (!atomic_load(&b->stop)) {
		if (b->window > 0 && in_flight(p) >= b->window) {
			wait_window(p);
			continue;
		}
		t = bench_now_ns();	/* never 0: 0 marks warm-up packets */
		memcpy(pkt, &t, b->size >= 8 ? 8 : 0);
		rc = client_queue_packet(p->tx, client_public_key(p->rx), pkt,
		    b->size);
		if (rc == -ENOBUFS) {
			if (client_flush(p->tx, 5000) < 0)
				break;
			continue;
		} else if (rc < 0) {
			break;
		}
		atomic_fetch_add(&b->sent, 1);
		atomic_fetch_add(&p->psent, 1);
	}
	(void)client_flush(p->tx, 1000);	/* unsent ones count as lost */
	free(pkt);
out:
	atomic_store(&p->tx_done, true);
	return NULL;
}

int
pair_recv(struct pair *p, struct client_msg *m, uint64_t *quiet)
{
	int	rc;

	if (atomic_load(&p->b->stop)) {
		/* Stragglers count as delivered, not as lost; *quiet is
		 * pushed on by the caller at each one. */
		if (*quiet == 0)
			*quiet = bench_now_ns() + DRAIN_QUIET_MS * 1000000ull;
		if ((atomic_load(&p->tx_done) && atomic_load(&p->precv) >=
		    atomic_load(&p->psent)) || bench_now_ns() > *quiet)
			return -1;
	}
	rc = client_recv(p->rx, m, 100);
	if (rc == -ETIMEDOUT || rc == -EAGAIN)
		return 0;
	if (rc < 0)
		return -1;
	return m->type == DERP_FRAME_RECV_PACKET;
}

static void *
receiver(void *arg)
{
	struct pair		*p = arg;
	struct bench		*b = p->b;
	struct client_msg	 m;
	uint64_t		 t, quiet = 0;
	size_t			 i;
	int			 rc;

	for (;;) {
		if ((rc = pair_recv(p, &m, &quiet)) < 0)
			break;
		if (rc == 0)
			continue;
		t = 0;
		if (m.len >= 8)
			memcpy(&t, m.data, 8);
		if (m.len >= 8 && t == 0)
			continue;	/* a late warm-up packet */
		atomic_fetch_add(&p->precv, 1);
		atomic_fetch_add(&b->delivered, 1);
		if (quiet != 0) {
			quiet = bench_now_ns() + DRAIN_QUIET_MS * 1000000ull;
			continue;
		}
		atomic_fetch_add(&b->recv, 1);
		atomic_fetch_add(&b->recv_bytes, m.len);
		if (t != 0) {
			i = atomic_fetch_add(&b->nlat, 1);
			if (i < LAT_MAX)
				b->lat[i] = bench_now_ns() - t;
		}
	}
	return NULL;
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

/* Connect a receiver: on the peer node, or on the same worker as tx, or
 * on another one. */
static struct client *
connect_rx(struct bench *b, struct client *tx, int *err)
{
	struct client	*rx;
	int		 wt, attempt;

	if (b->topology == TOPO_ANY || b->topology == TOPO_MESH)
		return client_connect(&b->co_rx, err);
	wt = worker_of(b->server_log, tx);
	for (attempt = 0; attempt < 64; attempt++) {
		if ((rx = client_connect(&b->co_rx, err)) == NULL)
			return NULL;
		if ((worker_of(b->server_log, rx) == wt) ==
		    (b->topology == TOPO_SAME))
			return rx;
		client_free(rx);
	}
	*err = -EAGAIN;
	return NULL;
}

/* Send marked packets until one arrives: the receiver's presence may
 * still be on its way to the sender's worker or node.  Then drain. */
static int
warm_up(struct bench *b, struct pair *p)
{
	struct client_msg	 m;
	uint64_t		 deadline = bench_now_ns() +
				    WARMUP_MS * 1000000ull;
	uint8_t			*pkt;
	bool			 got = false;
	int			 rc = 0;

	if ((pkt = calloc(1, b->size < 8 ? 8 : b->size)) == NULL)
		return -ENOMEM;
	while (!got && bench_now_ns() < deadline) {
		if ((rc = client_send_packet(p->tx, client_public_key(p->rx),
		    pkt, b->size)) < 0)
			break;
		while ((rc = client_recv(p->rx, &m, 50)) == 0)
			if (m.type == DERP_FRAME_RECV_PACKET) {
				got = true;
				break;
			}
		if (rc != 0 && rc != -ETIMEDOUT)
			break;
	}
	while (got && client_recv(p->rx, &m, 50) == 0)
		;
	free(pkt);
	return got ? 0 : rc < 0 && rc != -ETIMEDOUT ? rc : -ETIMEDOUT;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void
usage(FILE *f, int status)
{
	fprintf(f,
"usage: derpbench [options] HOST:PORT [PEER_HOST:PORT]\n"
"       derpbench --rate PPS [options] HOST:PORT [PEER_HOST:PORT]\n"
"       derpbench --idle N [options] HOST:PORT\n"
"       derpbench --storm N [options] HOST:PORT\n"
"\n"
"Relay mode (default): --pairs sender/receiver client pairs send packets\n"
"through the DERP server for --seconds and report what arrived.\n"
"Paced mode: the same pairs, open loop at a fixed rate; latency\n"
"percentiles, stalls and the generator's own lateness.\n"
"Idle mode: open N clients that stay silent, hold them, check each still\n"
"answers a Ping, report the server's RSS growth per connection.\n"
"Storm mode: N times connect, finish the TLS and DERP handshakes and\n"
"disconnect, --concurrency at a time; report handshakes/s and the\n"
"server's CPU per handshake.\n"
"\n"
"Connection:\n"
"  --tls               DERP over TLS (default: plain HTTP)\n"
"  --insecure          TLS without certificate verification\n"
"  --ca-file FILE      verify the server against this CA bundle\n"
"  --server-name NAME  TLS SNI, certificate name and Host (default HOST)\n"
"Relay mode:\n"
"  --pairs N           client pairs, one sender + one receiver thread each\n"
"                      (default 10)\n"
"  --size BYTES        packet payload, 0..65536 (default 1200)\n"
"  --seconds S         measured time (default 5)\n"
"  --window N          closed loop: at most N packets in flight per pair\n"
"                      (default 64); 0 = open loop, as fast as possible\n"
"Paced (latency) mode:\n"
"  --rate PPS          open loop: PPS packets/s in all (spread evenly over\n"
"                      the pairs) on a fixed schedule, whatever arrives;\n"
"                      reports latency percentiles, stalls and the load\n"
"                      generator's own lateness\n"
"  --senders G         sender threads, each pacing its share of the pairs\n"
"                      (default: pairs or CPUs, the smaller)\n"
"  --stall-ms MS       stall threshold (default 10): arrival gaps while\n"
"                      packets were due, and packets slower than it\n"
"  --topology T        any (default) | same | cross | mesh:\n"
"                      same/cross put the two ends of each pair on one\n"
"                      worker / on different workers (needs --server-log);\n"
"                      mesh: senders on HOST:PORT, receivers on the peer\n"
"                      node given by --peer or the second address\n"
"  --server-log FILE   the local derpd's log (info level), to learn which\n"
"                      worker a connection landed on\n"
"  --peer HOST:PORT    second node of the region (implies --topology mesh)\n"
"Idle mode:\n"
"  --idle N            open N idle clients\n"
"  --hold S            seconds to hold them once connected (default 10)\n"
"  --threads T         connecting threads in all (default 8)\n"
"  --sources A-B       spread source addresses over this IPv4 range,\n"
"                      e.g. 127.0.0.2-127.0.0.254 (default: kernel's)\n"
"                      (storm mode too)\n"
"Storm mode:\n"
"  --storm N           N handshakes in all\n"
"  --concurrency C     handshakes in flight (threads, default 8)\n"
"All modes:\n"
"  --server-pid PIDS   server processes (comma list or repeated) for CPU\n"
"                      time (relay, storm) and VmRSS (idle): supervisor +\n"
"                      workers\n"
"  --json              one JSON object on stdout instead of the text\n"
"  --help              this text\n"
"\n"
"Examples (PIDS: the supervisor's and workers' pids, from derpd's log):\n"
"  derpbench --tls --insecure --server-pid PIDS 127.0.0.1:443\n"
"  derpbench --tls --insecure --size 64 --topology cross \\\n"
"      --server-log derpd.log 127.0.0.1:443\n"
"  derpbench --tls --insecure --topology mesh --peer 10.0.0.2:443 "
"10.0.0.1:443\n"
"  derpbench --tls --insecure --idle 20000 --sources "
"127.0.0.2-127.0.0.254 \\\n"
"      --server-pid PIDS 127.0.0.1:443\n"
"  derpbench --tls --insecure --storm 5000 --concurrency 16 \\\n"
"      --server-pid PIDS 127.0.0.1:443\n"
"\n"
"Exit status: 0 if packets arrived (relay), every idle client stayed\n"
"up (idle) or every handshake succeeded (storm); 1 otherwise; 2 on bad\n"
"usage.  See derpbench(1).\n");
	exit(status);
}

static void
bad(const char *what, const char *arg)
{
	fprintf(stderr, "derpbench: bad %s: %s (see --help)\n", what, arg);
	exit(2);
}

static double
num(const char *s, double lo, double hi, const char *what)
{
	char	*end;
	double	 v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		bad(what, s);
	return v;
}

static void
parse_pids(struct bench *b, char *s)
{
	char	*tok, *save = NULL;

	for (tok = strtok_r(s, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		if (b->npids == BENCH_MAX_PIDS)
			bad("--server-pid (too many)", tok);
		b->server_pids[b->npids++] = (int)num(tok, 1, 1 << 30,
		    "--server-pid");
	}
}

static void
set_addr(struct client_opts *co, const char *arg, char *host, size_t len)
{
	uint16_t	port;

	if (conf_split_hostport(arg, host, len, &port) < 0 || host[0] == '\0'
	    || port == 0)
		bad("address (want HOST:PORT)", arg);
	co->host = host;
	co->port = port;
}

static void
report(struct bench *b, double secs, double cpu)
{
	uint64_t	sent = atomic_load(&b->sent);
	uint64_t	recv = atomic_load(&b->recv);
	uint64_t	deliv = atomic_load(&b->delivered);
	uint64_t	bytes = atomic_load(&b->recv_bytes);
	uint64_t	lost = sent > deliv ? sent - deliv : 0;
	size_t		n = atomic_load(&b->nlat);
	double		pps = (double)recv / secs;
	double		gbps = (double)bytes * 8 / secs / 1e9;
	double		loss = sent ? 100.0 * (double)lost / (double)sent : 0;
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
		printf("{\"mode\":\"relay\",\"topology\":\"%s\",\"tls\":%s,"
		    "\"pairs\":%d,\"size\":%zu,\"window\":%u,\"rate\":%.0f,"
		    "\"seconds\":%.3f,\"sent\":%" PRIu64 ",\"received\":%"
		    PRIu64 ",\"delivered\":%" PRIu64 ",\"lost\":%" PRIu64 ","
		    "\"pps\":%.0f,\"gbps\":%.4f,\"mbytes_per_s\":%.2f,"
		    "\"loss_pct\":%.3f,\"lat_ms\":{\"p50\":%.3f,\"p90\":%.3f,"
		    "\"p99\":%.3f,\"max\":%.3f},",
		    bench_topo_names[b->topology],
		    b->co.tls ? "true" : "false", b->pairs, b->size,
		    b->window, b->rate, secs, sent, recv, deliv, lost, pps,
		    gbps, (double)bytes / secs / 1e6, loss, p50, p90, p99,
		    pmax);
		if (cpu >= 0)
			printf("\"server_cpu_s\":%.3f,\"server_cpu_s_per_gb\":"
			    "%.3f}\n", cpu, cpu_gb);
		else
			printf("\"server_cpu_s\":null,"
			    "\"server_cpu_s_per_gb\":null}\n");
		return;
	}
	printf("topology %s  pairs %d  size %zu B  %.1f s\n",
	    bench_topo_names[b->topology], b->pairs, b->size, secs);
	printf("  sent %" PRIu64 "  delivered %" PRIu64 "  lost %" PRIu64
	    "  loss %.3f%%\n", sent, deliv, lost, loss);
	printf("  %.0f packets/s  %.1f MB/s  %.3f Gbit/s\n", pps,
	    (double)bytes / secs / 1e6, gbps);
	printf("  latency ms  p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n", p50,
	    p90, p99, pmax);
	if (cpu >= 0)
		printf("  server CPU %.2f s = %.2f CPU-s per GB relayed\n",
		    cpu, cpu_gb);
}

/* Connect every pair and see a packet through each; 0 or -1 (said). */
int
bench_connect_pairs(struct bench *b, struct pair *ps)
{
	int	i, err = 0;

	for (i = 0; i < b->pairs; i++) {
		ps[i].b = b;
		if ((ps[i].tx = client_connect(&b->co, &err)) == NULL ||
		    (ps[i].rx = connect_rx(b, ps[i].tx, &err)) == NULL) {
			fprintf(stderr, "derpbench: connect: %s\n",
			    strerror(-err));
			return -1;
		}
		if ((err = warm_up(b, &ps[i])) < 0) {
			fprintf(stderr, "derpbench: pair %d delivers nothing: "
			    "%s\n", i, strerror(-err));
			return -1;
		}
	}
	return 0;
}

/* Start both threads of every pair, wait out the time, stop, join.
 * Returns the measured seconds, or -1 if threads could not start. */
static double
run_pairs(struct bench *b, struct pair *ps, double *cpu)
{
	double		cpu0 = -1, cpu1 = -1, secs = -1;
	uint64_t	t0;
	int		i, started;

	if (b->npids > 0)
		cpu0 = procs_cpu_seconds(b->server_pids, b->npids);
	t0 = bench_now_ns();
	for (started = 0; started < b->pairs; started++) {
		if (pthread_create(&ps[started].trx, NULL, receiver,
		    &ps[started]) != 0)
			break;
		if (pthread_create(&ps[started].ttx, NULL, sender,
		    &ps[started]) != 0) {
			atomic_store(&ps[started].tx_done, true);
			atomic_store(&b->stop, true);
			pthread_join(ps[started].trx, NULL);
			break;
		}
	}
	if (started == b->pairs)
		usleep((useconds_t)(b->seconds * 1e6));
	atomic_store(&b->stop, true);
	if (started == b->pairs)
		secs = (double)(bench_now_ns() - t0) / 1e9;
	if (b->npids > 0)
		cpu1 = procs_cpu_seconds(b->server_pids, b->npids);
	for (i = 0; i < started; i++) {
		pthread_join(ps[i].ttx, NULL);
		pthread_join(ps[i].trx, NULL);
	}
	*cpu = cpu0 >= 0 && cpu1 >= 0 ? cpu1 - cpu0 : -1;
	return secs;
}

static int
relay_run(struct bench *b)
{
	struct pair	*ps;
	double		 cpu, secs;
	int		 i, rc = 1;

	if ((ps = calloc((size_t)b->pairs, sizeof(*ps))) == NULL ||
	    (b->lat = calloc(LAT_MAX, sizeof(*b->lat))) == NULL)
		goto out;
	if (bench_connect_pairs(b, ps) < 0)
		goto out;
	if ((secs = run_pairs(b, ps, &cpu)) < 0) {
		fprintf(stderr, "derpbench: cannot start threads\n");
		goto out;
	}
	report(b, secs, cpu);
	rc = atomic_load(&b->recv) > 0 ? 0 : 1;
out:
	for (i = 0; ps != NULL && i < b->pairs; i++) {
		client_free(ps[i].tx);
		client_free(ps[i].rx);
	}
	free(ps);
	free(b->lat);
	b->lat = NULL;
	return rc;
}

static enum topology
parse_topology(const char *s)
{
	size_t	i;

	for (i = 0; i < TOPO_N; i++)
		if (strcmp(s, bench_topo_names[i]) == 0)
			return (enum topology)i;
	bad("--topology", s);
	return TOPO_ANY;
}

/* What the command line asked for. */
struct args {
	struct bench		*b;
	struct idle_opts	 io;
	struct storm_opts	 so;
	const char		*peer;
	bool			 topo_set;
};

static void
apply_opt(struct args *a, int ch, char *arg)
{
	struct bench	*b = a->b;

	switch (ch) {
	case 't': b->co.tls = true; break;
	case 'k': b->co.tls_insecure = true; break;
	case 'C': b->co.ca_file = arg; break;
	case 'N': b->co.server_name = arg; break;
	case 'n': b->pairs = (int)num(arg, 1, 10000, "--pairs"); break;
	case 's': b->size = (size_t)num(arg, 0, DERP_MAX_PACKET, "--size");
		break;
	case 'd': b->seconds = num(arg, 0.1, 86400, "--seconds"); break;
	case 'r': b->rate = num(arg, 1, 1e8, "--rate"); break;
	case 'G': b->senders = (int)num(arg, 1, 1024, "--senders"); break;
	case 'L': b->stall_ms = num(arg, 0.1, 60000, "--stall-ms"); break;
	case 'p': parse_pids(b, arg); break;
	case 'j': b->json = a->io.json = true; break;
	case 'w': b->window = (unsigned)num(arg, 0, 1 << 20, "--window");
		break;
	case 'l': b->server_log = arg; break;
	case 'o': b->topology = parse_topology(arg);
		a->topo_set = true;
		break;
	case 'P': a->peer = arg; break;
	case 'i': a->io.n = (int)num(arg, 1, 1000000, "--idle"); break;
	case 'H': a->io.hold = num(arg, 0, 86400, "--hold"); break;
	case 'T': a->io.threads = (int)num(arg, 1, 1024, "--threads"); break;
	case 'S':
		if (parse_src_range(arg, &a->io.src_first, &a->io.src_last) < 0)
			bad("--sources (want A.B.C.D-E.F.G.H)", arg);
		a->so.src_first = a->io.src_first;
		a->so.src_last = a->io.src_last;
		break;
	case 'R': a->so.n = (int)num(arg, 1, 10000000, "--storm"); break;
	case 'c': a->so.concurrency = (int)num(arg, 1, 1024,
		    "--concurrency");
		break;
	case 'h': usage(stdout, 0); break;
	default: usage(stderr, 2);
	}
}

static void
parse_args(struct args *a, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tls", no_argument, NULL, 't' },
		{ "insecure", no_argument, NULL, 'k' },
		{ "ca-file", required_argument, NULL, 'C' },
		{ "server-name", required_argument, NULL, 'N' },
		{ "pairs", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 's' },
		{ "seconds", required_argument, NULL, 'd' },
		{ "rate", required_argument, NULL, 'r' },
		{ "senders", required_argument, NULL, 'G' },
		{ "stall-ms", required_argument, NULL, 'L' },
		{ "server-pid", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "window", required_argument, NULL, 'w' },
		{ "server-log", required_argument, NULL, 'l' },
		{ "topology", required_argument, NULL, 'o' },
		{ "peer", required_argument, NULL, 'P' },
		{ "idle", required_argument, NULL, 'i' },
		{ "hold", required_argument, NULL, 'H' },
		{ "threads", required_argument, NULL, 'T' },
		{ "sources", required_argument, NULL, 'S' },
		{ "storm", required_argument, NULL, 'R' },
		{ "concurrency", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bench	*b = a->b;
	int		 ch;

	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1)
		apply_opt(a, ch, optarg);
	if (optind + 2 == argc && a->peer == NULL)
		a->peer = argv[optind + 1];
	else if (optind + 1 != argc)
		usage(stderr, 2);
	if (a->peer != NULL) {
		if (a->topo_set && b->topology != TOPO_MESH)
			bad("--topology with a peer node",
			    bench_topo_names[b->topology]);
		if (a->io.n > 0 || a->so.n > 0)
			bad("--idle or --storm with a peer node", a->peer);
		b->topology = TOPO_MESH;
	} else if (b->topology == TOPO_MESH) {
		bad("--topology mesh without --peer", "no peer");
	}
	if (a->io.n > 0 && a->so.n > 0)
		bad("--storm with --idle", "one mode at a time");
	if ((b->topology == TOPO_SAME || b->topology == TOPO_CROSS) &&
	    b->server_log == NULL)
		bad("--topology same/cross without --server-log",
		    bench_topo_names[b->topology]);
}

int
main(int argc, char **argv)
{
	static struct bench	 b;
	struct args		 a;
	char			 host[CONF_STR_MAX], peer[CONF_STR_MAX];
	int			 rc;

	memset(&a, 0, sizeof(a));
	a.b = &b;
	a.io.hold = 10;
	a.io.threads = 8;
	a.so.concurrency = 8;
	b.pairs = 10;
	b.size = 1200;
	b.seconds = 5;
	b.window = 64;
	b.stall_ms = 10;
	parse_args(&a, argc, argv);
	set_addr(&b.co, argv[optind], host, sizeof(host));
	b.co.info.can_ack_pings = true;
	b.co_rx = b.co;
	if (a.peer != NULL)
		set_addr(&b.co_rx, a.peer, peer, sizeof(peer));
	/* A server that closes on us must not kill us mid-write. */
	signal(SIGPIPE, SIG_IGN);
	if (derp_crypto_init() < 0)
		return 1;
	/* One TLS context (CA file read once) for every connection. */
	if (b.co.tls && (b.co.tls_ctx = client_tls_ctx_new(&b.co)) == NULL) {
		fprintf(stderr, "derpbench: TLS setup failed (CA file %s)\n",
		    b.co.ca_file != NULL ? b.co.ca_file : "system store");
		return 1;
	}
	b.co_rx.tls_ctx = b.co.tls_ctx;
	if (a.io.n > 0) {
		a.io.co = b.co;
		a.io.pids = b.server_pids;
		a.io.npids = b.npids;
		rc = idle_run(&a.io);
	} else if (a.so.n > 0) {
		a.so.co = b.co;
		a.so.pids = b.server_pids;
		a.so.npids = b.npids;
		a.so.json = b.json;
		rc = storm_run(&a.so);
	} else if (b.rate > 0) {
		rc = paced_run(&b);
	} else {
		rc = relay_run(&b);
	}
	SSL_CTX_free(b.co.tls_ctx);
	return rc;
}

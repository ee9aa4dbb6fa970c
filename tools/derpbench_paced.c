/*
 * derpbench's paced (latency) mode: open loop at a fixed total rate.
 * Sender threads, each owning a group of pairs, send on a fixed
 * schedule (clock_nanosleep to absolute times) whatever arrives, so
 * queueing in the relay shows as latency instead of slowing the load
 * (a closed loop with a window would hide it).  Every packet carries
 * its send time and its scheduled time (CLOCK_MONOTONIC, same host);
 * receivers build a latency histogram and detect stalls.  The
 * generator's own lateness is measured apart, so that a load generator
 * starved of CPU is not blamed on the server.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "common/hist.h"
#include "tools/derpbench.h"

#define STAMP_LEN	16	/* send ns, scheduled ns */
#define BATCH_MAX	256	/* packets per wakeup of a sender */
#define REC_MAX		16	/* stalls / slow packets kept per pair */
#define REPORT_MAX	32	/* ... and listed in the report */
#define START_DELAY_NS	20000000ull	/* threads up before the schedule */
#define LATE_NS		1000000ull	/* "behind": 1 ms off the schedule */

struct event {
	uint64_t	 t;		/* ns since the schedule began */
	uint64_t	 ns;		/* gap or latency */
	int		 pair;
	bool		 server;	/* stall: the relay held it */
};

/* One receiver's view. */
struct prx {
	int		 idx;
	uint64_t	 last;		/* previous arrival (or the start) */
	uint64_t	 recv, bytes;	/* inside the timed window */
	struct hist	 lat;		/* send -> arrival */
	struct hist	 sched;		/* scheduled time -> arrival */
	uint64_t	 stalls, stalls_server, stall_max;
	uint64_t	 slow;
	struct event	 st[REC_MAX], sl[REC_MAX];
	int		 nst, nsl;
};

/* One sender thread and its pairs: first, first + stride, ... */
struct pgroup {
	struct bench	*b;
	struct pair	*ps;
	int		 first, stride, n;
	uint64_t	 start, end;	/* schedule, absolute ns */
	double		 gap;		/* ns between its packets */
	pthread_t	 t;
	bool		 started;
	bool		*dirty;
	uint64_t	 scheduled, sent;
	int		 err;
	struct hist	 late;		/* scheduled -> handed to TLS */
	struct hist	 wake;		/* its own wakeup delay */
	uint64_t	 late_over, blocked_max;
};

struct paced {
	struct bench	*b;
	uint64_t	 t0, t_end, stall_ns;
	double		 runq_ms;	/* server loop threads runnable, not
					 * running, over the schedule (-1) */
};

static struct paced	run;	/* shared, read-only once threads start */

static void
sleep_until(uint64_t t)
{
	struct timespec	ts = { (time_t)(t / 1000000000u),
			    (long)(t % 1000000000u) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	    EINTR)
		;
}

static void
record(struct event *ev, int *nev, uint64_t t, uint64_t ns, int pair,
    bool server)
{
	if (*nev == REC_MAX)
		return;
	ev[*nev].t = t;
	ev[*nev].ns = ns;
	ev[*nev].pair = pair;
	ev[*nev].server = server;
	(*nev)++;
}

/* One timed packet arrived at now: latency, stall and slow checks. */
static void
arrived(struct prx *r, uint64_t now, uint64_t sent, uint64_t due)
{
	uint64_t	from, lat = now > sent ? now - sent : 0;

	hist_add(&r->lat, lat);
	hist_add(&r->sched, now > due ? now - due : 0);
	if (lat > run.stall_ns) {
		struct event	*e = r->nsl > 0 ? &r->sl[r->nsl - 1] : NULL;

		/* One entry per episode: the slowest packet sent within
		 * a threshold of the episode's first one. */
		r->slow++;
		if (e != NULL && sent - run.t0 < e->t + run.stall_ns) {
			if (lat > e->ns)
				e->ns = lat;
		} else {
			record(r->sl, &r->nsl, sent - run.t0, lat, r->idx,
			    true);
		}
	}
	/* A stall: nothing arrived for longer than the threshold while
	 * this packet was due.  The relay's part starts once the packet
	 * was sent; when that alone is short, the sender was late. */
	from = r->last > due ? r->last : due;
	if (now > from && now - from > run.stall_ns) {
		uint64_t	srv = now - (r->last > sent ? r->last : sent);
		bool		server = srv > run.stall_ns;

		r->stalls++;
		r->stalls_server += server;
		if (now - from > r->stall_max)
			r->stall_max = now - from;
		record(r->st, &r->nst, from - run.t0, now - from, r->idx,
		    server);
	}
	if (now > r->last)
		r->last = now;
}

static void *
receiver(void *arg)
{
	struct pair		*p = arg;
	struct bench		*b = p->b;
	struct prx		*r = p->paced;
	struct client_msg	 m;
	uint64_t		 sent, due, quiet = 0, now;
	int			 rc;

	for (;;) {
		/* Stragglers still count, latency and all: they were sent
		 * inside the window. */
		if ((rc = pair_recv(p, &m, &quiet)) < 0)
			break;
		if (rc == 0 || m.len < STAMP_LEN)
			continue;
		now = bench_now_ns();
		memcpy(&sent, m.data, 8);
		memcpy(&due, m.data + 8, 8);
		if (sent == 0)
			continue;	/* a late warm-up packet */
		atomic_fetch_add(&p->precv, 1);
		atomic_fetch_add(&b->delivered, 1);
		if (now <= run.t_end) {
			r->recv++;
			r->bytes += m.len;
		}
		if (quiet != 0)
			quiet = now + DRAIN_QUIET_MS * 1000000ull;
		arrived(r, now, sent, due);
	}
	return NULL;
}

static struct pair *
group_pair(struct pgroup *g, uint64_t k, size_t *slot)
{
	*slot = (size_t)(k % (uint64_t)g->n);
	return &g->ps[g->first + (int)*slot * g->stride];
}

/* Flush every connection written this round; the time it took. */
static int
flush_dirty(struct pgroup *g)
{
	size_t	i;
	int	rc;

	for (i = 0; i < (size_t)g->n; i++) {
		if (!g->dirty[i])
			continue;
		g->dirty[i] = false;
		if ((rc = client_flush(g->ps[g->first + (int)i *
		    g->stride].tx, 5000)) < 0)
			return rc;
	}
	return 0;
}

/* Everything due by now, queued per connection, then one flush each. */
static int
send_due(struct pgroup *g, uint8_t *pkt, uint64_t *k, uint64_t now)
{
	struct bench	*b = g->b;
	struct pair	*p;
	uint64_t	 due, t;
	size_t		 slot;
	int		 n, rc;

	for (n = 0; n < BATCH_MAX; n++) {
		due = g->start + (uint64_t)((double)*k * g->gap);
		if (due > now || due >= g->end)
			break;
		p = group_pair(g, *k, &slot);
		t = bench_now_ns();
		memcpy(pkt, &t, 8);
		memcpy(pkt + 8, &due, 8);
		rc = client_queue_packet(p->tx, client_public_key(p->rx), pkt,
		    b->size);
		if (rc == -ENOBUFS) {
			if ((rc = client_flush(p->tx, 5000)) < 0 ||
			    (rc = client_queue_packet(p->tx,
			    client_public_key(p->rx), pkt, b->size)) < 0)
				return rc;
		} else if (rc < 0) {
			return rc;
		}
		hist_add(&g->late, t - due);
		g->late_over += t - due > LATE_NS;
		g->dirty[slot] = true;
		g->sent++;
		atomic_fetch_add(&b->sent, 1);
		atomic_fetch_add(&p->psent, 1);
		(*k)++;
	}
	return 0;
}

static void *
sender(void *arg)
{
	struct pgroup	*g = arg;
	struct bench	*b = g->b;
	uint8_t		*pkt;
	uint64_t	 k = 0, due, wake, ready, prev_end = 0, t;
	int		 i;

	/* The default 50 us timer slack would be lateness of our own. */
	(void)prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	if ((pkt = calloc(1, b->size)) == NULL) {
		g->err = -ENOMEM;
		goto out;
	}
	for (;;) {
		due = g->start + (uint64_t)((double)k * g->gap);
		if (due >= g->end || atomic_load(&b->stop))
			break;
		sleep_until(due);
		wake = bench_now_ns();
		ready = due > prev_end ? due : prev_end;
		hist_add(&g->wake, wake > ready ? wake - ready : 0);
		if ((g->err = send_due(g, pkt, &k, wake)) < 0)
			break;
		t = bench_now_ns();
		if ((g->err = flush_dirty(g)) < 0)
			break;
		prev_end = bench_now_ns();
		if (prev_end - t > g->blocked_max)
			g->blocked_max = prev_end - t;
	}
	g->scheduled = g->end > g->start ? (uint64_t)(((double)(g->end -
	    g->start) - 1) / g->gap) + 1 : 0;
	free(pkt);
out:
	for (i = 0; i < g->n; i++) {
		(void)client_flush(g->ps[g->first + i * g->stride].tx, 1000);
		atomic_store(&g->ps[g->first + i * g->stride].tx_done, true);
	}
	return NULL;
}

static double
ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static int
cmp_event(const void *a, const void *b)
{
	const struct event	*x = a, *y = b;

	return x->t < y->t ? -1 : x->t > y->t;
}

/* Every pair's kept events, in time order; how many. */
static int
gather(struct prx *rs, int n, bool stalls, struct event *out)
{
	int	i, j, k = 0;

	for (i = 0; i < n; i++)
		for (j = 0; j < (stalls ? rs[i].nst : rs[i].nsl); j++)
			out[k++] = stalls ? rs[i].st[j] : rs[i].sl[j];
	qsort(out, (size_t)k, sizeof(*out), cmp_event);
	return k > REPORT_MAX ? REPORT_MAX : k;
}

struct totals {
	struct hist	 lat, sched, late, wake;
	uint64_t	 recv, bytes, stalls, stalls_server, stall_max, slow;
	uint64_t	 scheduled, late_over, blocked_max;
	struct event	*st, *sl;
	int		 nst, nsl;
};

static void
sum_up(struct bench *b, struct prx *rs, struct pgroup *gs, int ng,
    struct totals *t)
{
	int	i;

	hist_init(&t->lat);
	hist_init(&t->sched);
	hist_init(&t->late);
	hist_init(&t->wake);
	for (i = 0; i < b->pairs; i++) {
		hist_merge(&t->lat, &rs[i].lat);
		hist_merge(&t->sched, &rs[i].sched);
		t->recv += rs[i].recv;
		t->bytes += rs[i].bytes;
		t->stalls += rs[i].stalls;
		t->stalls_server += rs[i].stalls_server;
		t->slow += rs[i].slow;
		if (rs[i].stall_max > t->stall_max)
			t->stall_max = rs[i].stall_max;
	}
	for (i = 0; i < ng; i++) {
		hist_merge(&t->late, &gs[i].late);
		hist_merge(&t->wake, &gs[i].wake);
		t->scheduled += gs[i].scheduled;
		t->late_over += gs[i].late_over;
		if (gs[i].blocked_max > t->blocked_max)
			t->blocked_max = gs[i].blocked_max;
	}
	t->nst = gather(rs, b->pairs, true, t->st);
	t->nsl = gather(rs, b->pairs, false, t->sl);
}

static void
json_events(const char *name, const struct event *ev, int n, bool stalls)
{
	int	i;

	printf("\"%s\":[", name);
	for (i = 0; i < n; i++)
		printf("%s{\"t_ms\":%.3f,\"pair\":%d,\"%s\":%.3f%s}",
		    i ? "," : "", ms(ev[i].t), ev[i].pair,
		    stalls ? "gap_ms" : "lat_ms", ms(ev[i].ns), stalls ?
		    ev[i].server ? ",\"cause\":\"server\"" :
		    ",\"cause\":\"generator\"" : "");
	printf("]");
}

static void
report_json(struct bench *b, const struct totals *t, int ng, double cpu)
{
	uint64_t	sent = atomic_load(&b->sent);
	uint64_t	deliv = atomic_load(&b->delivered);
	uint64_t	p50 = hist_quantile(&t->lat, 0.5);
	uint64_t	p99 = hist_quantile(&t->lat, 0.99);
	uint64_t	wmax = hist_quantile(&t->wake, 1);

	printf("{\"mode\":\"latency\",\"topology\":\"%s\",\"tls\":%s,"
	    "\"pairs\":%d,\"size\":%zu,\"rate\":%.0f,\"rate_per_pair\":%.1f,"
	    "\"senders\":%d,\"seconds\":%.3f,\"scheduled\":%" PRIu64 ","
	    "\"sent\":%" PRIu64 ",\"received\":%" PRIu64 ",\"delivered\":%"
	    PRIu64 ",\"lost\":%" PRIu64 ",\"pps\":%.0f,\"gbps\":%.4f,",
	    bench_topo_names[b->topology], b->co.tls ? "true" : "false",
	    b->pairs, b->size, b->rate, b->rate / b->pairs, ng, b->seconds,
	    t->scheduled, sent, t->recv, deliv, sent > deliv ? sent - deliv :
	    0, (double)t->recv / b->seconds, (double)t->bytes * 8 /
	    b->seconds / 1e9);
	printf("\"lat_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
	    "\"p999\":%.3f,\"max\":%.3f,\"mean\":%.3f},\"p99_over_p50\":%.3f,"
	    "\"sched_lat_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f},",
	    ms(p50), ms(hist_quantile(&t->lat, 0.9)), ms(p99),
	    ms(hist_quantile(&t->lat, 0.999)), ms(t->lat.max), t->lat.n ?
	    ms(t->lat.sum / t->lat.n) : 0, p50 ? (double)p99 / (double)p50 :
	    0, ms(hist_quantile(&t->sched, 0.5)),
	    ms(hist_quantile(&t->sched, 0.99)), ms(t->sched.max));
	printf("\"stall_ms\":%.3f,\"stalls\":%" PRIu64 ",\"stalls_server\":%"
	    PRIu64 ",\"stalls_generator\":%" PRIu64 ",\"stall_max_ms\":%.3f,",
	    ms(run.stall_ns), t->stalls, t->stalls_server, t->stalls -
	    t->stalls_server, ms(t->stall_max));
	json_events("stall_list", t->st, t->nst, true);
	printf(",\"slow\":%" PRIu64 ",", t->slow);
	json_events("slow_list", t->sl, t->nsl, false);
	printf(",\"generator\":{\"late_ms\":{\"p50\":%.3f,\"p99\":%.3f,"
	    "\"max\":%.3f},\"late_over_1ms\":%" PRIu64 ",\"wake_late_ms\":"
	    "{\"p99\":%.3f,\"max\":%.3f},\"write_blocked_max_ms\":%.3f,"
	    "\"fell_behind\":%s},", ms(hist_quantile(&t->late, 0.5)),
	    ms(hist_quantile(&t->late, 0.99)), ms(t->late.max), t->late_over,
	    ms(hist_quantile(&t->wake, 0.99)), ms(wmax), ms(t->blocked_max),
	    wmax > LATE_NS ? "true" : "false");
	if (run.runq_ms >= 0)
		printf("\"server_runq_wait_ms\":%.3f,", run.runq_ms);
	else
		printf("\"server_runq_wait_ms\":null,");
	if (cpu >= 0)
		printf("\"server_cpu_s\":%.3f}\n", cpu);
	else
		printf("\"server_cpu_s\":null}\n");
}

static void
text_events(const char *what, const struct event *ev, int n)
{
	int	i;

	for (i = 0; i < n; i++)
		printf("    %s at %.3f s  pair %d  %.3f ms%s\n", what,
		    ms(ev[i].t) / 1e3, ev[i].pair, ms(ev[i].ns),
		    ev[i].server ? "" : "  (generator late)");
}

static void
report_text(struct bench *b, const struct totals *t, int ng, double cpu)
{
	uint64_t	sent = atomic_load(&b->sent);
	uint64_t	deliv = atomic_load(&b->delivered);
	uint64_t	p50 = hist_quantile(&t->lat, 0.5);
	uint64_t	p99 = hist_quantile(&t->lat, 0.99);
	uint64_t	wmax = hist_quantile(&t->wake, 1);

	printf("paced  topology %s  pairs %d  size %zu B  %.1f s  rate %.0f "
	    "packets/s in all (%.1f per pair), %d sender threads\n",
	    bench_topo_names[b->topology], b->pairs, b->size, b->seconds,
	    b->rate, b->rate / b->pairs, ng);
	printf("  scheduled %" PRIu64 "  sent %" PRIu64 "  delivered %"
	    PRIu64 "  lost %" PRIu64 "  %.0f packets/s received\n",
	    t->scheduled, sent, deliv, sent > deliv ? sent - deliv : 0,
	    (double)t->recv / b->seconds);
	printf("  latency ms  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max "
	    "%.3f  (p99/p50 %.2f)\n", ms(p50),
	    ms(hist_quantile(&t->lat, 0.9)), ms(p99),
	    ms(hist_quantile(&t->lat, 0.999)), ms(t->lat.max),
	    p50 ? (double)p99 / (double)p50 : 0);
	printf("  stalls > %.1f ms: %" PRIu64 " (server %" PRIu64
	    ", generator %" PRIu64 "), longest %.3f ms; packets slower than "
	    "that: %" PRIu64 "\n", ms(run.stall_ns), t->stalls,
	    t->stalls_server, t->stalls - t->stalls_server, ms(t->stall_max),
	    t->slow);
	text_events("stall", t->st, t->nst);
	text_events("slow packets sent", t->sl, t->nsl);
	printf("  generator: send lateness p50 %.3f  p99 %.3f  max %.3f ms, "
	    "%" PRIu64 " sends > 1 ms late; wakeup lateness max %.3f ms; "
	    "longest blocked write %.3f ms\n",
	    ms(hist_quantile(&t->late, 0.5)),
	    ms(hist_quantile(&t->late, 0.99)), ms(t->late.max), t->late_over,
	    ms(wmax), ms(t->blocked_max));
	printf("  %s\n", wmax > LATE_NS ? "the generator FELL BEHIND its "
	    "schedule (its own threads woke late): latency and stalls may "
	    "be the client's" : "the generator kept its schedule");
	if (cpu >= 0)
		printf("  server CPU %.2f s\n", cpu);
}

/* Split the pairs among the sender threads and lay out the schedule. */
static int
groups_init(struct bench *b, struct pair *ps, struct pgroup *gs, int ng)
{
	double	per_pair = b->rate / b->pairs;
	int	i;

	for (i = 0; i < ng; i++) {
		gs[i].b = b;
		gs[i].ps = ps;
		gs[i].first = i;
		gs[i].stride = ng;
		gs[i].n = (b->pairs - i + ng - 1) / ng;
		gs[i].gap = 1e9 / (per_pair * gs[i].n);
		/* Interleave the groups' schedules. */
		gs[i].start = run.t0 + (uint64_t)(1e9 / b->rate * i);
		gs[i].end = run.t_end;
		hist_init(&gs[i].late);
		hist_init(&gs[i].wake);
		if ((gs[i].dirty = calloc((size_t)gs[i].n, 1)) == NULL)
			return -ENOMEM;
	}
	return 0;
}

/* Receivers first, then senders; how many receivers run in *nrx. */
static int
start_threads(struct bench *b, struct pair *ps, struct pgroup *gs, int ng,
    int *nrx)
{
	int	i;

	for (*nrx = 0; *nrx < b->pairs; (*nrx)++)
		if (pthread_create(&ps[*nrx].trx, NULL, receiver,
		    &ps[*nrx]) != 0)
			return -EAGAIN;
	for (i = 0; i < ng; i++) {
		if (pthread_create(&gs[i].t, NULL, sender, &gs[i]) != 0)
			return -EAGAIN;
		gs[i].started = true;
	}
	return 0;
}

/* Time the schedule, stop, join.  cpu: the server's CPU seconds over
 * the schedule (-1 unknown). */
static int
timed(struct bench *b, struct pair *ps, struct pgroup *gs, int ng,
    double *cpu)
{
	double	cpu0 = -1, cpu1 = -1, rq0 = -1, rq1 = -1;
	int	i, rc, nrx = 0;

	if (b->npids > 0) {
		cpu0 = procs_cpu_seconds(b->server_pids, b->npids);
		rq0 = procs_runq_ms(b->server_pids, b->npids);
	}
	run.t0 = bench_now_ns() + START_DELAY_NS;
	run.t_end = run.t0 + (uint64_t)(b->seconds * 1e9);
	if ((rc = groups_init(b, ps, gs, ng)) == 0) {
		for (i = 0; i < b->pairs; i++)
			((struct prx *)ps[i].paced)->last = run.t0;
		rc = start_threads(b, ps, gs, ng, &nrx);
	}
	if (rc == 0)
		sleep_until(run.t_end);
	atomic_store(&b->stop, true);
	if (b->npids > 0) {
		cpu1 = procs_cpu_seconds(b->server_pids, b->npids);
		rq1 = procs_runq_ms(b->server_pids, b->npids);
	}
	run.runq_ms = rq0 >= 0 && rq1 >= 0 ? rq1 - rq0 : -1;
	for (i = 0; i < ng; i++)
		if (gs[i].started) {
			pthread_join(gs[i].t, NULL);
			if (gs[i].err < 0 && rc == 0)
				rc = gs[i].err;
		}
	for (i = 0; i < b->pairs; i++) {
		if (!gs[i % ng].started)
			atomic_store(&ps[i].tx_done, true);
		if (i < nrx)
			pthread_join(ps[i].trx, NULL);
	}
	*cpu = cpu0 >= 0 && cpu1 >= 0 ? cpu1 - cpu0 : -1;
	return rc;
}

int
paced_run(struct bench *b)
{
	struct pair	*ps = NULL;
	struct prx	*rs = NULL;
	struct pgroup	*gs = NULL;
	struct totals	 t;
	double		 cpu = -1;
	long		 ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int		 i, ng, rc, status = 1;

	if (b->size < STAMP_LEN) {
		fprintf(stderr, "derpbench: --rate needs --size >= %d (the "
		    "packets carry two time stamps)\n", STAMP_LEN);
		return 2;
	}
	ng = b->senders > 0 ? b->senders : ncpu > 0 && ncpu < b->pairs ?
	    (int)ncpu : b->pairs;
	if (ng > b->pairs)
		ng = b->pairs;
	memset(&run, 0, sizeof(run));
	memset(&t, 0, sizeof(t));
	run.b = b;
	run.stall_ns = (uint64_t)(b->stall_ms * 1e6);
	if ((ps = calloc((size_t)b->pairs, sizeof(*ps))) == NULL ||
	    (rs = calloc((size_t)b->pairs, sizeof(*rs))) == NULL ||
	    (gs = calloc((size_t)ng, sizeof(*gs))) == NULL ||
	    (t.st = calloc((size_t)b->pairs * REC_MAX, sizeof(*t.st))) ==
	    NULL || (t.sl = calloc((size_t)b->pairs * REC_MAX,
	    sizeof(*t.sl))) == NULL)
		goto out;
	for (i = 0; i < b->pairs; i++) {
		hist_init(&rs[i].lat);
		hist_init(&rs[i].sched);
		rs[i].idx = i;
		ps[i].paced = &rs[i];
	}
	if (bench_connect_pairs(b, ps) < 0)
		goto out;
	if ((rc = timed(b, ps, gs, ng, &cpu)) < 0)
		fprintf(stderr, "derpbench: paced run: %s\n", strerror(-rc));
	sum_up(b, rs, gs, ng, &t);
	if (b->json)
		report_json(b, &t, ng, cpu);
	else
		report_text(b, &t, ng, cpu);
	status = t.recv > 0 && rc == 0 ? 0 : 1;
out:
	for (i = 0; ps != NULL && i < b->pairs; i++) {
		client_free(ps[i].tx);
		client_free(ps[i].rx);
	}
	for (i = 0; gs != NULL && i < ng; i++)
		free(gs[i].dirty);
	free(t.st);
	free(t.sl);
	free(gs);
	free(rs);
	free(ps);
	return status;
}

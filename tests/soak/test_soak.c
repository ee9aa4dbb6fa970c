/*
 * Soak (issue 9, item 6; `make soak`, never `make check`): a node with
 * two workers holds many idle clients from many 127.x sources while
 * others churn (connect/disconnect at about 200/s) and stable pairs relay
 * sequence-numbered packets.  The node's total RSS and open fds are
 * sampled into bench/results/soak-<stamp>.csv, plotted with gnuplot and
 * summarised; the run fails on growth past the stated bounds after
 * warm-up, on any lost packet, on any idle client that no longer answers
 * a Ping at the end and on any err-level log line.  Over TLS, as
 * clients reach a production node (SOAK_TLS=0: plain DERP over the HTTP
 * upgrade).  One process holds at most its RLIMIT_NOFILE of
 * clients (20,000 hard here), so idle clients past what this process
 * can hold beside the churn window are held by forked holder processes.
 * SOAK_SECONDS (600), SOAK_IDLE (20000), SOAK_TLS (1).
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/integration/harness.h"

#define WORKERS		2
#define PAIRS		8
#define WINDOW		400	/* churned clients alive at a time */
#define CHURN_TICK_MS	100
#define CHURN_PER_TICK	20	/* 200/s */
#define SAMPLE_MS	2000
/* Bounds after warm-up: RSS may grow by 10% + 16 MiB, fds by half a
 * churn window.  Part of the RSS that creeps up linearly at first is not
 * heap: each worker's pages of the shared packet rings become resident
 * as traffic first goes round them (at most 2 x 1 MiB per sibling; seen
 * in /proc/<pid>/smaps as memfd:derpd-rings while [heap] stays flat). */
#define RSS_SLACK_PCT	10
#define RSS_SLACK_KB	(16 * 1024)
/* The private part (RssAnon: heap, stacks), which the rings are not in,
 * is held tighter: 2% + 2 MiB after warm-up. */
#define ANON_SLACK_PCT	2
#define ANON_SLACK_KB	(2 * 1024)
#define FD_SLACK	(WINDOW / 2)
#define HOLDERS_MAX	4
#define HOLDER_FIRST	200000	/* holders' client indices (sources) */
#define PONG_WAIT_MS	20000

static long
env_long(const char *name, long dflt)
{
	const char	*s = getenv(name);

	return s != NULL && *s != '\0' ? atol(s) : dflt;
}

/* Node totals, supervisor plus workers: RSS, its private part (heap,
 * stacks: RssAnon) and open fds.  RSS minus anon is mostly the shared
 * packet rings (RssShmem), resident as traffic first goes round them. */
static void
node_sample(const struct node *n, long *rss, long *anon, long *fds)
{
	pid_t	pids[WORKERS + 5];
	int	k, i;

	pids[0] = n->pid;
	k = 1 + node_worker_pids(n, pids + 1, WORKERS + 4);
	*rss = *anon = *fds = 0;
	for (i = 0; i < k; i++) {
		*rss += proc_rss_kb(pids[i]);
		*anon += proc_status_kb(pids[i], "RssAnon:");
		*fds += proc_fd_count(pids[i]);
	}
}

static struct client *
client_from(const struct node *n, long i)
{
	struct client_opts	 o;
	struct client		*c;
	char			 src[32];
	int			 err = 0;

	/* 127.0.1.1 .. 127.0.x.250: no one source runs out of ports. */
	snprintf(src, sizeof(src), "127.0.%ld.%ld", 1 + (i / 250) % 250,
	    1 + i % 250);
	node_opts(n, &o);
	o.bind_addr = src;
	if ((c = client_connect(&o, &err)) == NULL)
		fail_msg("client %ld from %s: %s", i, src, strerror(-err));
	return c;
}

/* Ping every client, then collect the Pongs against one deadline;
 * returns how many answered.  No cmocka here: holders call it too. */
static long
ping_all(struct client **c, long n)
{
	struct client_msg	m;
	uint8_t			ping[DERP_PING_LEN];
	uint64_t		deadline = now_ms() + (uint64_t)time_scaled(
				    PONG_WAIT_MS);
	long			i, alive = 0;
	int			left, rc;

	for (i = 0; i < n; i++) {
		memset(ping, 0, sizeof(ping));
		memcpy(ping, &i, sizeof(i));
		if (c[i] != NULL && client_ping(c[i], ping) < 0) {
			client_free(c[i]);
			c[i] = NULL;
		}
	}
	for (i = 0; i < n; i++) {
		while (c[i] != NULL) {
			left = (int)(deadline > now_ms() ? deadline - now_ms() :
			    0);
			if ((rc = client_recv(c[i], &m, left)) < 0) {
				client_free(c[i]);
				c[i] = NULL;
			} else if (m.type == DERP_FRAME_PONG &&
			    memcmp(m.data, &i, sizeof(i)) == 0) {
				alive++;
				break;
			}
		}
	}
	return alive;
}

/* A forked process holding n idle clients: reports how many connected
 * on up, reads keepalives until a byte arrives on down, then reports
 * how many still answer a Ping. */
struct holder {
	pid_t	pid;
	int	up, down;
	long	n;
};

static void
holder_main(const struct node *n, long first, long count, int up, int down)
{
	struct client		**c = calloc((size_t)count, sizeof(*c));
	struct client_opts	 o;
	struct client_msg	 m;
	struct pollfd		 p = { .fd = down, .events = POLLIN };
	char			 src[32];
	long			 i, got = 0;
	int			 err;

	if (c == NULL)
		_exit(1);
	node_opts(n, &o);
	for (i = 0; i < count; i++) {
		snprintf(src, sizeof(src), "127.0.%ld.%ld",
		    1 + ((first + i) / 250) % 250, 1 + (first + i) % 250);
		o.bind_addr = src;
		if ((c[i] = client_connect(&o, &err)) != NULL)
			got++;
	}
	if (write(up, &got, sizeof(got)) != sizeof(got))
		_exit(1);
	while (poll(&p, 1, 1000) == 0)
		for (i = 0; i < count; i++)
			while (c[i] != NULL && client_recv(c[i], &m, 0) == 0)
				;	/* keepalives */
	got = ping_all(c, count);
	if (write(up, &got, sizeof(got)) != sizeof(got))
		_exit(1);
	for (i = 0; i < count; i++)
		client_free(c[i]);
	free(c);
	_exit(0);
}

static void
holder_start(const struct node *n, struct holder *h, long first, long count)
{
	int	up[2], down[2];

	assert_int_equal(pipe(up), 0);
	assert_int_equal(pipe(down), 0);
	fflush(stdout);
	fflush(stderr);
	assert_true((h->pid = fork()) >= 0);
	if (h->pid == 0) {
		close(up[0]);
		close(down[1]);
		holder_main(n, first, count, up[1], down[0]);
	}
	close(up[1]);
	close(down[0]);
	h->up = up[0];
	h->down = down[1];
	h->n = count;
}

/* Read one count from a holder (connected, then alive). */
static long
holder_read(const struct holder *h)
{
	long	v = -1;

	if (read(h->up, &v, sizeof(v)) != sizeof(v))
		fail_msg("holder %d died", (int)h->pid);
	return v;
}

static long
holder_finish(struct holder *h)
{
	long	alive;
	int	st;

	assert_int_equal(write(h->down, "c", 1), 1);
	alive = holder_read(h);
	assert_int_equal(waitpid(h->pid, &st, 0), h->pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(h->up);
	close(h->down);
	return alive;
}

struct pair {
	struct client	*s, *r;
	uint32_t	 sent, got;
};

static void
pair_drain(struct pair *p, int wait_ms)
{
	struct client_msg	m;
	uint32_t		seq;

	while (client_recv(p->r, &m, wait_ms) == 0) {
		wait_ms = 0;
		if (m.type != DERP_FRAME_RECV_PACKET || m.len != sizeof(seq))
			continue;
		memcpy(&seq, m.data, sizeof(seq));
		if (seq != p->got)
			fail_msg("pair: seq %u, want %u", seq, p->got);
		p->got++;
	}
}

static void
plot(const char *csv, const char *png)
{
	char	cmd[2048];

	snprintf(cmd, sizeof(cmd), "gnuplot -e \"set terminal png size "
	    "1000,500; set output '%s'; set datafile separator ','; "
	    "set key autotitle columnhead; set xlabel 'seconds'; "
	    "set ylabel 'RSS (MiB)'; set y2label 'open fds'; set ytics "
	    "nomirror; set y2tics; plot '%s' using 1:(\\$2/1024) with lines "
	    "title 'node RSS (MiB)', '' using 1:(\\$8/1024) with lines "
	    "title 'of which private: heap, stacks (RssAnon, MiB)', '' "
	    "using 1:3 axes x1y2 with lines title 'node fds'\"", png, csv);
	if (system(cmd) != 0)
		fail_msg("gnuplot failed (Debian package gnuplot-nox)");
}

static void
test_soak(void **state)
{
	long		 secs = env_long("SOAK_SECONDS", 600);
	long		 idle_want = env_long("SOAK_IDLE", 20000);
	struct rlimit	 rl;
	struct node	*n;
	struct client	**idle, *win[WINDOW];
	struct pair	 ps[PAIRS];
	char		 stamp[32], csv[256], png[256], sum[256];
	char		 extra[128];
	FILE		*f;
	time_t		 now = time(NULL);
	struct holder	 hs[HOLDERS_MAX];
	long		 idle_n, idle_held = 0, per, i, churned = 0, rss, fds;
	long		 anon, anon_start, anon0 = -1, anon_max = 0, anon_bound;
	long		 alive;
	int		 nh = 0, h;
	long		 rss0 = -1, fds0 = -1;
	long		 rss_start, fds_start, rss_max = 0, fds_max = 0;
	long		 lost = 0, errs, rss_bound, fd_bound;
	uint64_t	 t0, next_churn, next_sample, warm_ms;
	int		 head = 0, p;

	(void)state;
	/* This process holds what its fd limit allows beside the churn
	 * window; holder processes (as many as needed) the rest. */
	(void)raise_nofile(idle_want + 4 * WINDOW + 1000);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	idle_n = idle_want;
	if (idle_n > (long)rl.rlim_cur - 2 * WINDOW - 1000)
		idle_n = (long)rl.rlim_cur - 2 * WINDOW - 1000;
	if (idle_n < 0)
		idle_n = 0;
	per = (long)rl.rlim_cur - 200;
	nh = (int)((idle_want - idle_n + per - 1) / per);
	if (nh > HOLDERS_MAX)
		fail_msg("%ld idle clients need %d holders", idle_want, nh);
	snprintf(extra, sizeof(extra), "workers = %d;\nlog = { level = "
	    "\"notice\"; };\n", WORKERS);
	n = node_start(getenv("SOAK_TLS") == NULL ||
	    strcmp(getenv("SOAK_TLS"), "0") != 0, extra);
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", gmtime(&now));
	snprintf(csv, sizeof(csv), "bench/results/soak-%s.csv", stamp);
	snprintf(png, sizeof(png), "bench/results/soak-%s.png", stamp);
	snprintf(sum, sizeof(sum), "bench/results/soak-%s.txt", stamp);
	assert_non_null(f = fopen(csv, "w"));
	fprintf(f, "seconds,rss_kb,fds,idle,churned,sent,received,"
	    "anon_kb\n");

	t0 = now_ms();
	for (h = 0; h < nh; h++) {
		long	k = idle_want - idle_n - idle_held;

		holder_start(n, &hs[h], HOLDER_FIRST + idle_held, k < per ?
		    k : per);
		idle_held += hs[h].n;
	}
	assert_non_null(idle = calloc((size_t)idle_n, sizeof(*idle)));
	for (i = 0; i < idle_n; i++)
		idle[i] = client_from(n, i);
	for (h = 0; h < nh; h++)
		if (holder_read(&hs[h]) != hs[h].n)
			fail_msg("holder %d connected fewer than %ld", h,
			    hs[h].n);
	for (p = 0; p < PAIRS; p++) {
		ps[p].s = client_from(n, idle_n + 2 * p);
		ps[p].r = client_from(n, idle_n + 2 * p + 1);
		ps[p].sent = ps[p].got = 0;
		reach(ps[p].s, ps[p].r);
	}
	for (i = 0; i < WINDOW; i++)
		win[i] = client_from(n, idle_n + 2 * PAIRS + i);
	print_message("%ld idle clients (%ld in %d holder processes), %d "
	    "pairs, %d churning, connected in %llu ms; running %ld s\n",
	    idle_n + idle_held, idle_held, nh, PAIRS, WINDOW,
	    (unsigned long long)(now_ms() - t0), secs);
	node_sample(n, &rss_start, &anon_start, &fds_start);

	t0 = now_ms();
	warm_ms = (uint64_t)secs * 1000 / 10;	/* the first tenth */
	next_churn = next_sample = t0;
	while (now_ms() - t0 < (uint64_t)secs * 1000) {
		if (now_ms() >= next_churn) {
			for (i = 0; i < CHURN_PER_TICK; i++) {
				client_free(win[head]);
				win[head] = client_from(n, idle_n + 2 * PAIRS +
				    WINDOW + churned % 20000);
				head = (head + 1) % WINDOW;
				churned++;
			}
			for (p = 0; p < PAIRS; p++) {
				assert_int_equal(client_send_packet(ps[p].s,
				    client_public_key(ps[p].r), &ps[p].sent,
				    sizeof(ps[p].sent)), 0);
				ps[p].sent++;
				pair_drain(&ps[p], 0);
			}
			next_churn += CHURN_TICK_MS;
		}
		if (now_ms() >= next_sample) {
			uint32_t	sent = 0, got = 0;

			node_sample(n, &rss, &anon, &fds);
			for (p = 0; p < PAIRS; p++) {
				sent += ps[p].sent;
				got += ps[p].got;
			}
			fprintf(f, "%.1f,%ld,%ld,%ld,%ld,%u,%u,%ld\n",
			    (double)(now_ms() - t0) / 1000, rss, fds, idle_n +
			    idle_held, churned, sent, got, anon);
			fflush(f);
			if (rss0 < 0 && now_ms() - t0 >= warm_ms) {
				rss0 = rss;
				anon0 = anon;
				fds0 = fds;
			}
			if (rss0 >= 0) {
				rss_max = rss > rss_max ? rss : rss_max;
				anon_max = anon > anon_max ? anon : anon_max;
				fds_max = fds > fds_max ? fds : fds_max;
			}
			next_sample += SAMPLE_MS;
		}
		(void)poll(NULL, 0, 5);
	}
	for (p = 0; p < PAIRS; p++) {
		uint64_t	deadline = now_ms() + 5000;

		while (ps[p].got < ps[p].sent && now_ms() < deadline)
			pair_drain(&ps[p], 100);
		lost += (long)(ps[p].sent - ps[p].got);
	}
	node_sample(n, &rss, &anon, &fds);
	/* Every idle client still answers, here and in the holders. */
	alive = ping_all(idle, idle_n);
	for (h = 0; h < nh; h++)
		alive += holder_finish(&hs[h]);
	fclose(f);
	plot(csv, png);
	errs = node_log_count(n, "Z err ") + node_log_count(n, "Z crit ") +
	    node_log_count(n, "Z alert ") + node_log_count(n, "Z emerg ");
	rss_bound = rss0 + rss0 * RSS_SLACK_PCT / 100 + RSS_SLACK_KB;
	anon_bound = anon0 + anon0 * ANON_SLACK_PCT / 100 + ANON_SLACK_KB;
	fd_bound = fds0 + FD_SLACK;
	assert_non_null(f = fopen(sum, "w"));
	fprintf(f, "soak %s: %ld s, %ld idle clients (%s; %ld held "
	    "by %d holder processes; %ld answer a Ping at the end), %d "
	    "relaying pairs, %ld churned (%.0f/s), %d workers\n"
	    "RSS KiB: start %ld, warm-up %ld, end %ld, max %ld (bound %ld)\n"
	    "of which private (RssAnon) KiB: start %ld, warm-up %ld, end "
	    "%ld, max %ld (bound %ld)\n"
	    "fds: start %ld, warm-up %ld, end %ld, max %ld (bound %ld)\n"
	    "packets lost: %ld of %u; err-level log lines: %ld\n"
	    "csv %s, plot %s\n", stamp, secs, idle_n + idle_held,
	    n->tls ? "TLS" : "plain DERP", idle_held,
	    nh, alive, PAIRS, churned,
	    (double)churned / (double)secs, WORKERS, rss_start, rss0, rss,
	    rss_max, rss_bound, anon_start, anon0, anon, anon_max,
	    anon_bound, fds_start, fds0, fds, fds_max, fd_bound, lost,
	    ps[0].sent * PAIRS, errs, csv, png);
	fclose(f);
	{
		char	line[512];

		assert_non_null(f = fopen(sum, "r"));
		while (fgets(line, sizeof(line), f) != NULL)
			print_message("%s", line);
		fclose(f);
	}
	assert_true(rss0 > 0);
	assert_true(rss_max <= rss_bound);
	assert_true(anon_max <= anon_bound);
	assert_true(fds_max <= fd_bound);
	assert_int_equal(lost, 0);
	assert_int_equal(errs, 0);
	assert_int_equal(alive, idle_want);
	assert_true(churned >= secs * 150);
	for (i = 0; i < idle_n; i++)
		client_free(idle[i]);	/* NULL-safe: ping_all frees the dead */
	free(idle);
	for (i = 0; i < WINDOW; i++)
		client_free(win[i]);
	for (p = 0; p < PAIRS; p++) {
		client_free(ps[p].s);
		client_free(ps[p].r);
	}
	node_stop(n);
	node_free(n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_soak),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

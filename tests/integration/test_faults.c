/*
 * Faults under traffic (issue 9, item 3): workers killed with SIGKILL
 * one after another while sequence-numbered traffic flows (pairs on the
 * surviving workers lose nothing, presence converges each time), a mesh
 * peer killed and restarted repeatedly, a sibling ring overflowed while
 * its consumer is stopped, presence churn across workers, and a hung
 * worker replaced by the supervisor.  SOAK=1 runs the long variants.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "derp/key.h"
#include "harness.h"

#define NW	4

static bool
soak(void)
{
	const char	*s = getenv("SOAK");

	return s != NULL && atoi(s) != 0;
}

static struct node *
start_workers(int workers)
{
	return node_start_psk(workers, "");
}

/* The silent_ms of the first worker_hung line in n's log, or -1. */
static long
hung_silent_ms(const struct node *n)
{
	char	 line[1024], *p;
	FILE	*f;
	long	 ms = -1;

	if ((f = fopen(n->log, "r")) == NULL)
		return -1;
	while (ms < 0 && fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, "event=worker_hung") != NULL &&
		    (p = strstr(line, "silent_ms=")) != NULL)
			ms = strtol(p + 10, NULL, 10);
	fclose(f);
	return ms;
}

/* Wait until worker w has announced readiness want times. */
static void
wait_ready_count(const struct node *n, int w, int want, int timeout_ms)
{
	char		needle[64];
	uint64_t	deadline = now_ms() + (uint64_t)timeout_ms;

	snprintf(needle, sizeof(needle), "event=worker_ready worker=%d ", w);
	while (node_log_count(n, needle) < want && now_ms() < deadline)
		(void)poll(NULL, 0, 20);
	if (node_log_count(n, needle) < want)
		fail_msg("worker %d ready %d times, want %d (%s)", w,
		    node_log_count(n, needle), want, n->log);
}

/* A client landed on worker w (or, other, on any worker but w). */
static struct client *
client_at(const struct node *n, int w, bool other, const uint8_t *priv)
{
	struct client	*c;
	int		 attempt, k;

	for (attempt = 0; attempt < 200; attempt++) {
		c = node_client_key(n, priv);
		k = node_client_worker(n, c);
		if ((k == w) != other)
			return c;
		client_free(c);
	}
	fail_msg("no client landed %s worker %d", other ? "off" : "on", w);
	return NULL;
}

struct seqpkt {
	uint32_t	pair;
	uint32_t	seq;
};

/* One sender, one receiver, counted. */
struct pair {
	int		 s, r;		/* client indexes */
	uint32_t	 sent, got;
	bool		 live;		/* both ends off the victim */
};

/* Read what has arrived for pair p's receiver; a live pair's packets
 * must come exactly in sequence (a gap is a loss, not a retry). */
static void
drain_pair(struct client **cs, struct pair *ps, int p, int wait_ms)
{
	struct client_msg	m;
	struct seqpkt		sp;

	while (client_recv(cs[ps[p].r], &m, wait_ms) == 0) {
		if (m.type != DERP_FRAME_RECV_PACKET)
			continue;
		if (!ps[p].live)
			continue;
		/* A late copy of reach()'s probe from an earlier round. */
		if (m.len == 4 && memcmp(m.data, "sync", 4) == 0)
			continue;
		if (m.len != sizeof(sp))
			fail_msg("pair %d: %zu-byte packet \"%.*s\"", p, m.len,
			    (int)m.len, (const char *)m.data);
		memcpy(&sp, m.data, sizeof(sp));
		assert_int_equal(sp.pair, (uint32_t)p);
		if (sp.seq != ps[p].got)
			fail_msg("pair %d: got seq %u, want %u (lost %u)", p,
			    sp.seq, ps[p].got, sp.seq - ps[p].got);
		ps[p].got++;
		wait_ms = 0;
	}
}

static void
respread(const struct node *n, struct client **cs, uint8_t (*priv)[32],
    const int *wk, int m)
{
	int	count[NW] = { 0 }, i, busy = 0;

	for (i = 0; i < m; i++)
		count[wk[i]]++;
	for (i = 1; i < NW; i++)
		if (count[i] > count[busy])
			busy = i;
	for (i = 0; i < m; i++)
		if (wk[i] == busy) {
			client_free(cs[i]);
			cs[i] = node_client_key(n, priv[i]);
		}
	assert_true(node_converged(n, NW, "keys", m, 10000));
}

static void
test_faults_kill9_random_workers(void **state)
{
	enum { M = 24, NP = M / 2 };
	struct node	*n = start_workers(NW);
	struct client	*cs[M];
	struct pair	 ps[NP];
	uint8_t		 priv[M][32];
	int		 wk[M], ready[NW], rounds = soak() ? 30 : 4;
	int		 r, i, p, victim, alive, live, kills = 0;
	uint64_t	 t0, deadline;
	bool		 killed;

	(void)state;
	srand((unsigned)getpid());
	for (i = 0; i < NW; i++)
		ready[i] = 1;
	for (i = 0; i < M; i++) {
		derp_key_generate(priv[i]);
		cs[i] = node_client_key(n, priv[i]);
	}
	for (p = 0; p < NP; p++) {
		ps[p].s = 2 * p;
		ps[p].r = 2 * p + 1;
	}
	assert_true(node_converged(n, NW, "keys", M, 10000));
	for (r = 0; r < rounds; r++) {
		int	tries = 0;

again:
		for (i = 0; i < M; i++)
			assert_true((wk[i] = node_client_worker(n,
			    cs[i])) >= 0);
		/* A victim serving clients that leaves at least one pair
		 * wholly elsewhere; when the kernel has piled everyone on
		 * too few workers for one, the busiest worker's clients
		 * reconnect (bounded). */
		do {
			if (++tries % 64 == 0) {
				assert_true(tries < 64 * 20);
				respread(n, cs, priv, wk, M);
				goto again;
			}
			victim = rand() % NW;
			for (i = 0, alive = 0; i < M; i++)
				alive += wk[i] != victim;
			for (p = 0, live = 0; p < NP; p++) {
				ps[p].live = wk[ps[p].s] != victim &&
				    wk[ps[p].r] != victim;
				ps[p].sent = ps[p].got = 0;
				live += ps[p].live;
			}
		} while (live == 0 || alive == M);
		/* Steady traffic; the kill lands in the middle of it. */
		killed = false;
		t0 = now_ms();
		while (now_ms() - t0 < 2000) {
			for (p = 0; p < NP; p++) {
				struct seqpkt	sp = { (uint32_t)p,
						    ps[p].sent };
				int		rc;

				if (killed && !ps[p].live)
					continue;
				rc = client_send_packet(cs[ps[p].s],
				    client_public_key(cs[ps[p].r]), &sp,
				    sizeof(sp));
				if (ps[p].live) {
					assert_int_equal(rc, 0);
					ps[p].sent++;
				}
			}
			for (p = 0; p < NP; p++)
				if (ps[p].live || !killed)
					drain_pair(cs, ps, p, 0);
			if (!killed && now_ms() - t0 >= 700) {
				assert_int_equal(kill(node_worker_pid(n,
				    victim), SIGKILL), 0);
				killed = true;
				kills++;
			}
			(void)poll(NULL, 0, 10);
		}
		/* Every packet between survivors arrives, in sequence. */
		deadline = now_ms() + 5000;
		for (p = 0; p < NP; p++) {
			if (!ps[p].live)
				continue;
			while (ps[p].got < ps[p].sent && now_ms() < deadline)
				drain_pair(cs, ps, p, 100);
			if (ps[p].got != ps[p].sent)
				fail_msg("round %d victim %d pair %d (workers "
				    "%d->%d): %u sent, %u received", r, victim,
				    p, wk[ps[p].s], wk[ps[p].r], ps[p].sent,
				    ps[p].got);
			assert_true(ps[p].sent > 20);
		}
		/* The victim's clients are gone node-wide (its successor
		 * may still be waiting out the respawn backoff). */
		if (!node_converged_but(n, NW, victim, "keys", alive, 5000))
			fail_msg("round %d: stale presence of worker %d",
			    r, victim);
		/* Respawned; its clients come back (same keys) and every
		 * worker sees them all again. */
		wait_ready_count(n, victim, ++ready[victim], 15000);
		for (i = 0; i < M; i++)
			if (wk[i] == victim) {
				client_free(cs[i]);
				cs[i] = node_client_key(n, priv[i]);
			}
		if (!node_converged(n, NW, "keys", M, 10000))
			fail_msg("round %d: presence did not reconverge", r);
		for (p = 0; p < NP; p++)
			if (!ps[p].live) {
				ps[p].live = true;
				reach(cs[ps[p].s], cs[ps[p].r]);
			}
		print_message("round %d: killed worker %d, %d live pairs, "
		    "%d survivors\n", r, victim, live, alive);
	}
	for (i = 0; i < M; i++)
		client_free(cs[i]);
	node_stop_killed(n, kills);
	node_free(n);
}

/* Sum of a metric over polls until want, or print and fail. */
static void
metric_until(const struct node *n, const char *name, long want,
    int timeout_ms)
{
	uint64_t	deadline = now_ms() + (uint64_t)timeout_ms;
	long		v = -1;

	do {
		if (node_metric_try(n, name, 2000, &v) && v == want)
			return;
		(void)poll(NULL, 0, 20);
	} while (now_ms() < deadline);
	fail_msg("%s = %ld, want %ld", name, v, want);
}

static void
kill_node(struct node *n)
{
	pid_t	pids[16];
	int	k, i, st;

	k = node_worker_pids(n, pids, 16);
	assert_true(k >= 1);
	assert_int_equal(kill(n->pid, SIGKILL), 0);
	for (i = 0; i < k; i++)
		(void)kill(pids[i], SIGKILL);
	assert_int_equal(waitpid(n->pid, &st, 0), n->pid);
	n->stopped = true;
}

static void
test_faults_mesh_peer_killed_and_restarted(void **state)
{
	struct node		*ns[2];
	struct client		*a, *a2, *b;
	struct client_msg	 m;
	int			 r, i, rounds = soak() ? 15 : 3;
	long			 links;

	(void)state;
	node_region_start(ns, 2, 2, REGION_PSK);
	a = node_client(ns[0]);
	a2 = node_client(ns[0]);
	/* Both workers of each node link to the other node. */
	metric_until(ns[0], "derpd_mesh_links_up", 2, 10000);
	assert_true(node_metric_try(ns[0], "derpd_mesh_links_up", 2000,
	    &links));
	for (r = 0; r < rounds; r++) {
		b = node_client(ns[1]);
		reach(a, b);
		reach(b, a);
		/* The survivor forwards b's key through the mesh: the one
		 * key it knows only as remote (its own links, clients of
		 * the peer, are not). */
		metric_until(ns[0], "derp_clients_remote", 1, 5000);
		kill_node(ns[1]);
		client_free(b);
		/* Forwarders converge: the dead peer's keys leave, local
		 * traffic never waits on it. */
		metric_until(ns[0], "derp_clients_remote", 0, 10000);
		metric_until(ns[0], "derpd_mesh_links_up", 0, 10000);
		for (i = 0; i < 20; i++) {
			assert_int_equal(client_send_packet(a,
			    client_public_key(a2), &i, sizeof(i)), 0);
			assert_int_equal(recv_type(a2, DERP_FRAME_RECV_PACKET,
			    &m, 1000), 0);
			assert_memory_equal(m.data, &i, sizeof(i));
		}
		node_start_in(ns[1], true, ns[1]->extra);
		metric_until(ns[0], "derpd_mesh_links_up", links, 15000);
		print_message("round %d: peer killed and back\n", r);
	}
	b = node_client(ns[1]);
	reach(a, b);
	reach(b, a);
	client_free(a);
	client_free(a2);
	client_free(b);
	/* No worker of the survivor died along the way. */
	node_stop(ns[0]);
	node_stop(ns[1]);
	node_free(ns[0]);
	node_free(ns[1]);
}

static void
test_faults_ring_overflow(void **state)
{
	enum { PKT = 1000, NPKT = 4000 };
	struct node		*n = start_workers(2);
	struct client		*s, *rc, *c, *d;
	struct client_msg	 m;
	static uint8_t		 pkt[PKT];
	pid_t			 w1;
	uint64_t		 t0, rt;
	long			 drops0, drops, got = 0;
	int			 i, q;

	(void)state;
	s = client_at(n, 0, false, NULL);
	rc = client_at(n, 1, false, NULL);
	c = client_at(n, 0, false, NULL);
	d = client_at(n, 0, false, NULL);
	assert_true(node_converged(n, 2, "keys", 4, 10000));
	reach(s, rc);
	assert_true(node_metric_try(n, "derpd_ring_drops", 5000, &drops0));
	/* Worker 1 stops draining its ring (well short of the hung-worker
	 * limit); worker 0 floods it with four times the ring. */
	w1 = node_worker_pid(n, 1);
	assert_int_equal(kill(w1, SIGSTOP), 0);
	t0 = now_ms();
	for (i = 0; i < NPKT; i++) {
		pkt[0] = (uint8_t)i;
		q = client_queue_packet(s, client_public_key(rc), pkt, PKT);
		if (q == -ENOBUFS) {
			assert_int_equal(client_flush(s, 1000), 0);
			q = client_queue_packet(s, client_public_key(rc), pkt,
			    PKT);
		}
		assert_int_equal(q, 0);
		if (i % 500 == 0) {
			/* Others on the sender's worker relay meanwhile. */
			assert_int_equal(client_flush(s, 1000), 0);
			rt = now_ms();
			assert_int_equal(client_send_packet(c,
			    client_public_key(d), "rt", 2), 0);
			assert_int_equal(recv_type(d, DERP_FRAME_RECV_PACKET,
			    &m, 1000), 0);
			assert_true(now_ms() - rt < 1000);
		}
	}
	assert_int_equal(client_flush(s, 1000), 0);
	/* The sender itself is still served. */
	assert_int_equal(client_send_packet(s, client_public_key(d), "s", 1),
	    0);
	assert_int_equal(recv_type(d, DERP_FRAME_RECV_PACKET, &m, 1000), 0);
	assert_memory_equal(m.key, client_public_key(s), 32);
	print_message("flooded %d x %d B in %llu ms with worker 1 stopped\n",
	    NPKT, PKT, (unsigned long long)(now_ms() - t0));
	assert_int_equal(kill(w1, SIGCONT), 0);
	assert_true(now_ms() - t0 < 4000);	/* HUNG_MS is 5 s */
	assert_true(node_metric_try(n, "derpd_ring_drops", 5000, &drops));
	print_message("ring drops %ld\n", drops - drops0);
	assert_true(drops - drops0 > 0);
	/* What fit in the ring arrives (queue-bounded), then it flows. */
	while (client_recv(rc, &m, 500) == 0)
		got += m.type == DERP_FRAME_RECV_PACKET;
	assert_true(got > 0 && got < NPKT);
	reach(s, rc);
	reach(rc, c);
	client_free(s);
	client_free(rc);
	client_free(c);
	client_free(d);
	node_stop(n);
	node_free(n);
}

static void
test_faults_presence_churn(void **state)
{
	enum { KEEP = 40, BATCH = 10 };
	struct node		*n = start_workers(NW);
	struct client		*p, *q, *win[KEEP];
	struct client_msg	 m;
	uint64_t		 t0, rt, worst = 0;
	int			 i, head = 0, churned = 0;
	int			 secs = soak() ? 60 : 6;
	long			 gaps, resyncs, dropped, replayed;

	(void)state;
	p = node_client(n);
	q = client_at(n, node_client_worker(n, p), true, NULL);
	for (i = 0; i < KEEP; i++)
		win[i] = node_client(n);
	reach(p, q);
	t0 = now_ms();
	while (now_ms() - t0 < (uint64_t)secs * 1000) {
		/* Replace the oldest BATCH: quick connects and disconnects
		 * spread over the workers by the kernel. */
		for (i = 0; i < BATCH; i++) {
			client_free(win[head]);
			win[head] = node_client(n);
			head = (head + 1) % KEEP;
			churned++;
		}
		rt = now_ms();
		assert_int_equal(client_send_packet(p, client_public_key(q),
		    "rt", 2), 0);
		assert_int_equal(recv_type(q, DERP_FRAME_RECV_PACKET, &m,
		    2000), 0);
		if (now_ms() - rt > worst)
			worst = now_ms() - rt;
	}
	print_message("%d churned in %d s; worst round trip %llu ms\n",
	    churned, secs, (unsigned long long)worst);
	assert_true(churned >= 100);
	assert_true(node_converged(n, NW, "keys", KEEP + 2, 5000));
	assert_true(node_converged(n, NW, "conns", KEEP + 2, 5000));
	assert_true(node_metric_try(n, "derpd_bus_gaps", 2000, &gaps));
	assert_true(node_metric_try(n, "derpd_bus_resyncs", 2000, &resyncs));
	assert_true(node_metric_try(n, "derpd_bus_pending_dropped", 2000,
	    &dropped));
	assert_true(node_metric_try(n, "derpd_bus_replayed", 2000,
	    &replayed));
	print_message("bus gaps %ld resyncs %ld replayed %ld\n", gaps,
	    resyncs, replayed);
	assert_int_equal(dropped, 0);	/* churn never fills the buffer */
	for (i = 0; i < KEEP; i++)
		client_free(win[i]);
	assert_true(node_converged(n, NW, "keys", 2, 5000));
	client_free(p);
	client_free(q);
	node_stop(n);
	node_free(n);
}

static void
test_faults_hung_worker_replaced(void **state)
{
	enum { M = 16 };
	/* worker_hang_timeout_ms below the 5 s default: the setting rules. */
	struct node		*n = node_start_psk(NW,
				    "worker_hang_timeout_ms = 2500;\n");
	struct client		*cs[M], *a = NULL, *b = NULL;
	struct client_msg	 m;
	uint8_t			 priv[M][32];
	int			 wk[M], i, victim, seq = 0, back = 0;
	long			 silent;
	char			 needle[64];

	(void)state;
	for (i = 0; i < M; i++) {
		derp_key_generate(priv[i]);
		cs[i] = node_client_key(n, priv[i]);
		wk[i] = node_client_worker(n, cs[i]);
	}
	assert_true(node_converged(n, NW, "keys", M, 10000));
	victim = wk[0];
	/* A pair on two other workers (or one other). */
	for (i = 1; i < M; i++)
		if (wk[i] != victim) {
			if (a == NULL)
				a = cs[i];
			else if (b == NULL || node_client_worker(n, b) ==
			    node_client_worker(n, a))
				b = cs[i];
		}
	assert_non_null(a);
	assert_non_null(b);
	reach(a, b);
	assert_int_equal(kill(node_worker_pid(n, victim), SIGSTOP), 0);
	snprintf(needle, sizeof(needle), "event=worker_hung worker=%d ",
	    victim);
	/* The others relay, in sequence, while it hangs. */
	while (node_log_count(n, needle) == 0 && seq < 2000) {
		assert_int_equal(client_send_packet(a, client_public_key(b),
		    &seq, sizeof(seq)), 0);
		assert_int_equal(recv_type(b, DERP_FRAME_RECV_PACKET, &m, 1000),
		    0);
		assert_memory_equal(m.data, &seq, sizeof(seq));
		seq++;
		(void)poll(NULL, 0, 20);
	}
	assert_true(node_log_count(n, needle) > 0);
	silent = hung_silent_ms(n);
	assert_true(silent >= 2500);
	if (time_scaled(1000) == 1000)	/* not under valgrind */
		assert_true(silent < 5000);
	assert_true(node_log_wait(n, "signal=9", 5000));
	wait_ready_count(n, victim, 2, 15000);
	/* Its clients see the close and reconnect with their keys. */
	for (i = 0; i < M; i++) {
		if (wk[i] != victim)
			continue;
		while (client_recv(cs[i], &m, 2000) == 0)
			;
		client_free(cs[i]);
		cs[i] = node_client_key(n, priv[i]);
		back++;
	}
	assert_true(node_converged(n, NW, "keys", M, 10000));
	for (i = 0; i < M; i++)
		if (wk[i] == victim)
			reach(a, cs[i]);
	print_message("hung worker %d replaced; %d clients back; %d packets "
	    "relayed meanwhile\n", victim, back, seq);
	for (i = 0; i < M; i++)
		client_free(cs[i]);
	node_stop_killed(n, 1);
	node_free(n);
}

/* Worker 1 crash-loops, so its respawn backs off; meanwhile no new
 * connection may wait on its listening socket (1 in 2 would, for the
 * whole backoff, were the socket left in the SO_REUSEPORT group). */
static void
test_faults_connects_while_worker_down(void **state)
{
	enum { KILLS = 5, TRIES = 20 };
	struct node		*n = start_workers(2);
	struct client_opts	 o;
	struct client		*c;
	uint64_t		 t, deadline;
	struct client		*held[3];
	int			 k, i, err, slow = 0, ok = 0;
	long			 v;

	(void)state;

	for (k = 0; k < KILLS; k++) {
		if (k > 0)
			wait_ready_count(n, 1, k + 1, 15000);
		if (k == KILLS - 1)
			for (i = 0; i < 3; i++)
				held[i] = client_at(n, 1, false, NULL);
		assert_int_equal(kill(node_worker_pid(n, 1), SIGKILL), 0);
		deadline = now_ms() + 5000;
		while (node_log_count(n, "event=worker_exited worker=1 ") <
		    k + 1 && now_ms() < deadline)
			(void)poll(NULL, 0, 5);
	}
	/* Down for the 1.6 s backoff now: its gauges are gone with it. */
	assert_true(node_metric_try(n, "derpd_worker_connections{worker=\"1\"}",
	    1000, &v));
	assert_int_equal(v, 0);
	assert_true(node_metric_try(n, "derp_current_connections", 1000, &v));
	assert_int_equal(v, 0);
	for (i = 0; i < 3; i++)
		client_free(held[i]);
	node_opts(n, &o);
	o.timeout_ms = 1000;
	for (i = 0; i < TRIES; i++) {
		t = now_ms();
		c = client_connect(&o, &err);
		if (c == NULL || now_ms() - t > 500)
			slow++;
		else
			ok++;
		client_free(c);
	}
	print_message("%d of %d connects served while worker 1 was down\n",
	    ok, TRIES);
	assert_int_equal(slow, 0);
	/* It comes back and takes its share again. */
	wait_ready_count(n, 1, KILLS + 1, 15000);
	for (i = 0, k = 0; i < 40 && k == 0; i++) {
		c = node_client(n);
		k = node_client_worker(n, c) == 1;
		client_free(c);
	}
	assert_int_equal(k, 1);
	node_stop_killed(n, KILLS);
	node_free(n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_faults_kill9_random_workers),
		cmocka_unit_test(test_faults_mesh_peer_killed_and_restarted),
		cmocka_unit_test(test_faults_ring_overflow),
		cmocka_unit_test(test_faults_presence_churn),
		cmocka_unit_test(test_faults_hung_worker_replaced),
		cmocka_unit_test(test_faults_connects_while_worker_down),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

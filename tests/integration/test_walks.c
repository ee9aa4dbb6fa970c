/*
 * Bounded per-turn work with thousands of clients (design.md, latency):
 * /debug/traffic lists each of 4,000 clients on two workers once (each
 * worker's part a step of 512 per turn); a respawned worker's bus
 * snapshot of its sibling's 2,000 clients is
 * served in steps of 256, with clients leaving and joining meanwhile,
 * and the new worker ends with exactly the node's clients (a watcher on
 * it sees each once present); a mesh watcher's list of 4,000 keys goes
 * in steps of 1,024 while clients leave and join, and it still ends
 * with one PeerPresent for every client there throughout, a PeerGone
 * last for each that left, a PeerPresent last for each that came; a
 * worker killed with about 2,000 clients leaves its sibling's table in
 * steps of 1,024 (REGISTRY_REAP_STEP), each of its clients with one
 * PeerGone to a watcher and to each client that received from it, none
 * routed meanwhile, and the survivors reach its successor's clients.
 */
#include "derp/disco.h"
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "derp/derp.h"
#include "derp/key.h"
#include "harness.h"

#define NC	4000
#define CHURN	200

struct ent {
	uint8_t	key[DERP_KEY_LEN];
	int	idx;
};

/* What a watcher was told, per client index. */
struct seen {
	int	presents, gones;
	bool	present;
};

static struct client	*cl[NC + CHURN];
static uint8_t		 keys[NC + CHURN][DERP_KEY_LEN];
static struct ent	 ents[NC + CHURN];
static struct seen	 seen[NC + CHURN];
static bool		 gone_by_test[NC + CHURN];

static int
ent_cmp(const void *a, const void *b)
{
	return memcmp(((const struct ent *)a)->key,
	    ((const struct ent *)b)->key, DERP_KEY_LEN);
}

/* Index of every client's key, sorted for lookups. */
static void
index_keys(int n)
{
	int	i;

	for (i = 0; i < n; i++) {
		memcpy(ents[i].key, keys[i], DERP_KEY_LEN);
		ents[i].idx = i;
	}
	qsort(ents, (size_t)n, sizeof(ents[0]), ent_cmp);
}

static int
lookup(const uint8_t *key, int n)
{
	struct ent	 k, *e;

	memcpy(k.key, key, DERP_KEY_LEN);
	e = bsearch(&k, ents, (size_t)n, sizeof(ents[0]), ent_cmp);
	return e != NULL ? e->idx : -1;
}

/* Read the watcher's frames until done(n) holds; false on timeout.
 * Keys of no indexed client (watchers) are counted in *other. */
static bool
watch_until(struct client *x, int n, bool (*done)(int n), int *other,
    int timeout_ms)
{
	struct client_msg	m;
	uint64_t		deadline = now_ms() + (uint64_t)timeout_ms;
	int			i, rc;

	while (!done(n)) {
		if (now_ms() > deadline)
			return false;
		if ((rc = client_recv(x, &m, 500)) == -ETIMEDOUT ||
		    rc == -EAGAIN)
			continue;
		assert_int_equal(rc, 0);
		if (m.type != DERP_FRAME_PEER_PRESENT &&
		    m.type != DERP_FRAME_PEER_GONE)
			continue;
		if ((i = lookup(m.key, n)) < 0) {
			(*other)++;
			continue;
		}
		if (m.type == DERP_FRAME_PEER_PRESENT) {
			seen[i].presents++;
			seen[i].present = true;
		} else {
			seen[i].gones++;
			seen[i].present = false;
		}
	}
	return true;
}

/* The client's connection is gone (its worker was killed). */
static bool
conn_dead(struct client *c)
{
	uint8_t	b;
	ssize_t	r = recv(client_fd(c), &b, 1, MSG_PEEK | MSG_DONTWAIT);

	return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static void
connect_all(struct node *n, int from, int to)
{
	int	i;

	for (i = from; i < to; i++) {
		assert_non_null(cl[i] = node_client(n));
		memcpy(keys[i], client_public_key(cl[i]), DERP_KEY_LEN);
	}
}

/* A node of 2 workers (mesh key set) with NC clients the whole node
 * knows of, the bookkeeping cleared. */
static struct node *
start_fleet(void)
{
	struct node	*n;

	assert_true(raise_nofile(3 * NC));
	memset(seen, 0, sizeof(seen));
	memset(gone_by_test, 0, sizeof(gone_by_test));
	n = node_start_psk(2, "");
	connect_all(n, 0, NC);
	assert_true(node_converged(n, 2, "keys", NC, 20000));
	return n;
}

static void
free_all(int n)
{
	int	i;

	for (i = 0; i < n; i++) {
		client_free(cl[i]);
		cl[i] = NULL;
	}
}

/* One worker alone publishes no node-wide view: its connection count. */
static bool
clients_are(struct node *n, long want, int timeout_ms)
{
	uint64_t	deadline = now_ms() + (uint64_t)timeout_ms;
	long		v;

	do {
		if ((v = node_metric(n, "derp_current_connections")) == want)
			return true;
		poll(NULL, 0, 20);	/* polling the metric */
	} while (now_ms() < deadline);
	print_message("derp_current_connections = %ld (want %ld)\n", v,
	    want);
	return false;
}

static bool
all_alive_present(int n)
{
	int	i;

	for (i = 0; i < n; i++)
		if (cl[i] != NULL && !gone_by_test[i] && !seen[i].present)
			return false;
	return true;
}

/* GET /debug/traffic: every client's line exactly once, node-wide. */
static void
traffic_once_each(struct node *n, int nc)
{
	static char		 resp[8 << 20];
	const char		 req[] = "GET /debug/traffic HTTP/1.1\r\n"
				    "Host: localhost\r\n"
				    "Connection: close\r\n\r\n";
	const char		*p, *nl, *k;
	uint8_t			 key[DERP_KEY_LEN];
	ssize_t			 got;
	int			 i, lines = 0, fd;

	/* Raw: the body (about 1.4 MB) is larger than the client's own
	 * HTTP helper reads. */
	assert_true((fd = raw_connect(n->port)) >= 0);
	assert_int_equal(write(fd, req, sizeof(req) - 1),
	    (ssize_t)sizeof(req) - 1);
	got = raw_read_until_eof(fd, (uint8_t *)resp, sizeof(resp) - 1,
	    10000);
	close(fd);
	assert_true(got > 0);
	resp[got] = '\0';
	assert_non_null(strstr(resp, "HTTP/1.1 200 "));
	assert_non_null(strstr(resp, "X-Derpd-Workers: 2/2\r\n"));
	assert_null(strstr(resp, "X-Derpd-Truncated"));
	assert_non_null(p = strstr(resp, "\r\n\r\n"));
	index_keys(nc);
	memset(seen, 0, sizeof(seen));
	for (p += 4; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
		if ((k = strstr(p, "\"Key\":\"nodekey:")) == NULL || k > nl ||
		    strstr(p, "\"Conn\":") == NULL)
			continue;
		assert_int_equal(derp_key_parse_hex(k + 15, DERP_KEY_LEN * 2,
		    key), 0);
		if ((i = lookup(key, nc)) >= 0)
			seen[i].presents++;
		lines++;
	}
	for (i = 0; i < nc; i++)
		assert_int_equal(seen[i].presents, 1);
	assert_int_equal(lines, nc);
}

static void
test_walks_snapshot_in_steps(void **state)
{
	struct node	*n;
	struct client	*x = NULL, *spare[40] = { 0 };
	pid_t		 victim;
	int		 i, alive = 0, other = 0, freed = 0, k;

	(void)state;
	n = start_fleet();
	/* Each worker's part of /debug/traffic takes several steps. */
	traffic_once_each(n, NC);
	/* Worker 1 dies; its successor asks worker 0 for a snapshot of
	 * its clients, about NC / 2: several steps. */
	victim = node_worker_pid(n, 1);
	assert_true(victim > 0);
	assert_int_equal(kill(victim, SIGKILL), 0);
	assert_true(node_log_wait(n, "signal=9", 10000));
	for (i = 0; i < NC; i++) {
		if (conn_dead(cl[i])) {
			client_free(cl[i]);
			cl[i] = NULL;
		} else {
			alive++;
		}
	}
	assert_true(alive > 4 * 256);	/* NODE_SNAP_STEP */
	assert_true(alive < NC);
	/* Clients leave and join while the successor starts and syncs. */
	for (i = 0; i < NC && freed < CHURN; i++)
		if (cl[i] != NULL && i % 3 == 0) {
			client_free(cl[i]);
			cl[i] = NULL;
			freed++;
		}
	connect_all(n, NC, NC + freed);
	for (i = NC; i < NC + freed; i++)
		if (conn_dead(cl[i]))
			fail_msg("a new client was dropped");
	assert_true(node_converged(n, 2, "keys", alive, 20000));
	assert_true(node_converged(n, 2, "conns", alive, 20000));
	/* A watcher on the successor: its view came from the snapshot. */
	for (k = 0; k < 40 && x == NULL; k++) {
		spare[k] = node_mesh_client(n, REGION_PSK, false);
		if (node_client_worker(n, spare[k]) == 1) {
			x = spare[k];
			spare[k] = NULL;
		}
	}
	assert_non_null(x);
	assert_int_equal(client_watch_conns(x), 0);
	assert_int_equal(client_flush(x, 5000), 0);
	index_keys(NC + freed);
	memset(seen, 0, sizeof(seen));
	assert_true(watch_until(x, NC + freed, all_alive_present, &other,
	    15000));
	for (i = 0; i < NC + freed; i++)
		if (cl[i] != NULL)
			assert_int_equal(seen[i].presents, 1);
		else
			assert_int_equal(seen[i].presents, 0);
	print_message("snapshot: %d clients alive on worker 0 and new\n",
	    alive);
	client_free(x);
	for (k = 0; k < 40; k++)
		if (spare[k] != NULL)
			client_free(spare[k]);
	free_all(NC + CHURN);
	node_stop_killed(n, 1);
	node_free(n);
}

/* Every client there throughout seen present; those the test closed not
 * present by their last frame; the new ones present. */
static bool
watch_settled(int n)
{
	int	i;

	for (i = 0; i < n; i++)
		if (gone_by_test[i] ? seen[i].present : !seen[i].present)
			return false;
	return true;
}

static void
test_walks_watcher_list_in_steps(void **state)
{
	struct node	*n;
	struct client	*x;
	int		 i, other = 0, freed = 0;

	(void)state;
	assert_true(raise_nofile(3 * NC));
	memset(seen, 0, sizeof(seen));
	memset(gone_by_test, 0, sizeof(gone_by_test));
	n = node_start_psk(1, "");
	connect_all(n, 0, NC);
	assert_true(clients_are(n, NC, 20000));
	/* The watcher reads nothing until the churn is over.  (Loopback's
	 * socket buffers, a few MB, may still take its whole list, NC * 56
	 * bytes: the pause on a full buffer is test_watch's.) */
	x = node_mesh_client(n, REGION_PSK, false);
	assert_int_equal(client_watch_conns(x), 0);
	assert_int_equal(client_flush(x, 5000), 0);
	for (i = 0; i < NC && freed < CHURN; i += 7, freed++) {
		gone_by_test[i] = true;
		client_free(cl[i]);
		cl[i] = NULL;
	}
	connect_all(n, NC, NC + freed);
	assert_true(clients_are(n, NC + 1, 20000));
	index_keys(NC + freed);
	assert_true(watch_until(x, NC + freed, watch_settled, &other,
	    15000));
	for (i = 0; i < NC + freed; i++) {
		if (gone_by_test[i]) {
			assert_int_equal(seen[i].gones, 1);
			assert_true(seen[i].presents <= 1);
		} else if (i < NC) {
			/* There throughout: exactly once. */
			assert_int_equal(seen[i].presents, 1);
			assert_int_equal(seen[i].gones, 0);
		} else {
			assert_true(seen[i].presents >= 1);
			assert_int_equal(seen[i].gones, 0);
		}
	}
	assert_true(other <= 1);	/* the watcher itself */
	client_free(x);
	free_all(NC + CHURN);
	node_stop(n);
	node_free(n);
}

static bool
victims_gone(int n)
{
	int	i;

	for (i = 0; i < n; i++)
		if (gone_by_test[i] && seen[i].gones == 0)
			return false;
	return true;
}

/* A client of n's on worker wk, or NULL after 40 tries. */
static struct client *
client_on_worker(struct node *n, int wk, bool mesh)
{
	struct client	*c;
	int		 k;

	for (k = 0; k < 40; k++) {
		c = mesh ? node_mesh_client(n, REGION_PSK, false) :
		    node_client(n);
		if (node_client_worker(n, c) == wk)
			return c;
		client_free(c);
	}
	return NULL;
}

/* Frames on c until every key in want[0..nw) had a PeerGone of reason,
 * each once; false at the deadline. */
static bool
gones_for(struct client *c, uint8_t (*want)[DERP_KEY_LEN], int nw,
    uint8_t reason, int timeout_ms)
{
	struct client_msg	m;
	uint64_t		deadline = now_ms() + (uint64_t)timeout_ms;
	bool			got[64] = { false };
	int			i, left = nw, rc;

	assert_true(nw <= 64);
	while (left > 0) {
		if (now_ms() > deadline)
			return false;
		if ((rc = client_recv(c, &m, 500)) == -ETIMEDOUT ||
		    rc == -EAGAIN)
			continue;
		assert_int_equal(rc, 0);
		if (m.type != DERP_FRAME_PEER_GONE)
			continue;
		for (i = 0; i < nw; i++)
			if (memcmp(m.key, want[i], DERP_KEY_LEN) == 0) {
				assert_int_equal(m.reason, reason);
				assert_false(got[i]);
				got[i] = true;
				left--;
			}
	}
	return true;
}

static void
test_walks_sibling_down_reaped(void **state)
{
	enum { NR = 4, NS = 32 };
	struct node		*n;
	struct client		*x, *rcv[NR], *snd[NS], *late;
	struct client_msg	 m;
	static uint8_t		 from[NR][NS][DERP_KEY_LEN];
	uint8_t			 disco[80];
	int			 i, nr = 0, ns = 0, nfrom[NR] = { 0 };
	int			 victims = 0, other = 0, wk;
	long			 reaped0, steps0;

	(void)state;
	n = start_fleet();
	/* Receivers on worker 0, senders on worker 1 (the victim). */
	for (i = 0; i < NC && (nr < NR || ns < NS); i++) {
		wk = node_client_worker(n, cl[i]);
		if (wk == 0 && nr < NR)
			rcv[nr++] = cl[i];
		else if (wk == 1 && ns < NS)
			snd[ns++] = cl[i];
	}
	assert_int_equal(nr, NR);
	assert_int_equal(ns, NS);
	assert_non_null(x = client_on_worker(n, 0, true));
	assert_int_equal(client_watch_conns(x), 0);
	assert_int_equal(client_flush(x, 5000), 0);
	index_keys(NC);
	assert_true(watch_until(x, NC, all_alive_present, &other, 15000));
	/* Each receiver hears from its senders across the ring: the edges
	 * PeerGone(Disconnected) follows. */
	for (i = 0; i < NS; i++) {
		reach(snd[i], rcv[i % NR]);
		memcpy(from[i % NR][nfrom[i % NR]++], client_public_key(snd[i]),
		    DERP_KEY_LEN);
	}
	reaped0 = node_metric(n, "derpd_registry_reaped");
	steps0 = node_metric(n, "derpd_registry_reap_steps");

	assert_int_equal(kill(node_worker_pid(n, 1), SIGKILL), 0);
	assert_true(node_log_wait(n, "signal=9", 10000));
	for (i = 0; i < NC; i++)
		if (conn_dead(cl[i])) {
			gone_by_test[i] = true;
			victims++;
		}
	assert_true(victims > 1024);	/* two reap steps at least */
	assert_true(victims < NC);
	/* One PeerGone each to the watcher, for the victim's clients only. */
	assert_true(watch_until(x, NC, victims_gone, &other, 15000));
	for (i = 0; i < NR; i++)
		assert_true(gones_for(rcv[i], from[i], nfrom[i],
		    DERP_PEER_GONE_DISCONNECTED, 15000));
	/* A disco packet to one of them: nowhere to go (not the dead
	 * worker's ring), so PeerGone(NotHere). */
	memset(disco, 0, sizeof(disco));
	memcpy(disco, DERP_DISCO_MAGIC, DERP_DISCO_MAGIC_LEN);
	assert_int_equal(client_send_packet(rcv[0], from[0][0], disco,
	    sizeof(disco)), 0);
	assert_true(gones_for(rcv[0], from[0], 1, DERP_PEER_GONE_NOT_HERE,
	    5000));
	/* The clients left, and the watcher. */
	assert_true(node_converged(n, 2, "keys", NC - victims + 1, 20000));
	assert_true(node_metric(n, "derpd_registry_reaped") - reaped0 >=
	    victims);
	assert_true(node_metric(n, "derpd_registry_reap_steps") - steps0 >= 2);
	/* The successor's clients are routed to (its entries are new). */
	assert_non_null(late = client_on_worker(n, 1, false));
	reach(rcv[1], late);
	reach(late, rcv[2]);
	/* Late duplicates would show now: still one PeerGone each. */
	assert_int_equal(client_ping(x, (const uint8_t *)"barrier!"), 0);
	do {
		assert_int_equal(client_recv(x, &m, 5000), 0);
		if (m.type == DERP_FRAME_PEER_GONE &&
		    (i = lookup(m.key, NC)) >= 0)
			seen[i].gones++;
	} while (m.type != DERP_FRAME_PONG);
	for (i = 0; i < NC; i++)
		assert_int_equal(seen[i].gones, gone_by_test[i] ? 1 : 0);
	print_message("sibling down: %d of %d clients reaped\n", victims, NC);
	client_free(late);
	client_free(x);
	free_all(NC);
	node_stop_killed(n, 1);
	node_free(n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_walks_snapshot_in_steps),
		cmocka_unit_test(test_walks_watcher_list_in_steps),
		cmocka_unit_test(test_walks_sibling_down_reaped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

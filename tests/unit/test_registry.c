/*
 * Unit tests for worker/registry.c and remote.c: the lastWriterIsActive
 * duplicate policy (PROTOCOL.md 5.3), dup metrics, PeerGone(Disconnected)
 * edges (5.7) and ClosePeer; tens of thousands of keys added, looked up and
 * removed across the incremental growths, against a reference; the
 * mesh-only count against one kept by the test through random local,
 * sibling and forwarder changes; a dead sibling, a resync and a broken
 * mesh link: their entries stop routing at once and are reaped in
 * bounded steps, a sibling's with one PeerGone per key that leaves (a
 * link's with none to watchers), while entries
 * confirmed or announced again stay; watchers get PeerGone only where
 * a key's node-wide presence ends, never for a key only mesh links
 * forwarded.  Connections are in-memory (no fds);
 * what the registry queues for them is read back from their control
 * buffers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/bus.h"
#include "derp/frame.h"
#include "worker/wk.h"

static struct worker *
wk_new(void)
{
	struct worker	*w = calloc(1, sizeof(*w));

	assert_non_null(w);
	w->m = &w->m_local;
	w->nworkers = 1;
	w->loop = loop_new();
	w->reg = registry_new();
	assert_non_null(w->loop);
	assert_non_null(w->reg);
	w->cfg.queue_packets = 32;
	w->cfg.queue_bytes = 98304;
	return w;
}

static void
wk_free(struct worker *w)
{
	struct conn	*c;

	while ((c = w->close_list) != NULL) {
		w->close_list = c->close_next;
		bbuf_free(&c->ctrl);
		free(c);
	}
	registry_free(w->reg);
	loop_free(w->loop);
	free(w);
}

static struct conn *
conn_mk(struct worker *w, uint8_t keybyte)
{
	struct conn	*c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->w = w;
	c->fd = -1;
	c->state = ST_DERP;
	memset(c->key, keybyte, sizeof(c->key));
	assert_int_equal(registry_add(w, c), 0);
	return c;
}

static void
conn_rm(struct conn *c)
{
	registry_forget_saw(c);
	registry_remove(c->w, c);
	bbuf_free(&c->ctrl);
	free(c);
}

static void
test_registry_single_and_lookup(void **state)
{
	struct worker	*w = wk_new();
	struct conn	*a = conn_mk(w, 1);
	uint8_t		 k[32];

	(void)state;
	memset(k, 1, sizeof(k));
	assert_ptr_equal(registry_active(registry_get(w->reg, k)), a);
	assert_int_equal(registry_count(w->reg), 1);
	memset(k, 2, sizeof(k));
	assert_null(registry_get(w->reg, k));
	assert_int_equal(w->m->current_dup_client_keys, 0);
	conn_rm(a);
	assert_int_equal(registry_count(w->reg), 0);
	wk_free(w);
}

static void
test_registry_dup_newest_then_last_writer(void **state)
{
	struct worker	*w = wk_new();
	struct conn	*a = conn_mk(w, 7), *b, *c;
	struct peer	*p;

	(void)state;
	b = conn_mk(w, 7);
	p = a->peer;
	assert_ptr_equal(b->peer, p);
	assert_ptr_equal(registry_active(p), b);	/* newest wins */
	assert_int_equal(w->m->current_dup_client_keys, 1);
	assert_int_equal(w->m->current_dup_client_conns, 2);
	assert_int_equal(w->m->total_dup_client_conns, 1);
	registry_note_activity(w, a);			/* a speaks */
	assert_ptr_equal(registry_active(p), a);
	c = conn_mk(w, 7);
	assert_ptr_equal(registry_active(p), c);
	assert_int_equal(w->m->current_dup_client_conns, 3);
	assert_int_equal(w->m->total_dup_client_conns, 2);
	/* c (never spoke) leaves: active becomes last = a. */
	conn_rm(c);
	assert_ptr_equal(registry_active(p), a);
	assert_int_equal(w->m->current_dup_client_conns, 2);
	/* a leaves: one member remains and is active again. */
	conn_rm(a);
	assert_ptr_equal(registry_active(p), b);
	assert_int_equal(w->m->current_dup_client_keys, 0);
	assert_int_equal(w->m->current_dup_client_conns, 0);
	conn_rm(b);
	wk_free(w);
}

static void
test_registry_dup_no_last_means_no_active(void **state)
{
	struct worker	*w = wk_new();
	struct conn	*a = conn_mk(w, 9), *b = conn_mk(w, 9);
	struct conn	*c = conn_mk(w, 9);
	struct peer	*p = a->peer;

	(void)state;
	/* Nobody spoke; a non-active member leaves: active = last = NULL,
	 * and packets for the key are dropped as dup_client (5.3 rule 5). */
	conn_rm(a);
	assert_null(registry_active(p));
	assert_int_equal(registry_nconns(w->reg, p), 2);
	registry_note_activity(w, b);
	assert_ptr_equal(registry_active(p), b);
	conn_rm(b);
	assert_ptr_equal(registry_active(p), c);
	conn_rm(c);
	wk_free(w);
}

static void
test_registry_peer_gone_to_receivers(void **state)
{
	struct worker	*w = wk_new();
	struct conn	*s = conn_mk(w, 3), *r1 = conn_mk(w, 4);
	struct conn	*r2 = conn_mk(w, 5), *other = conn_mk(w, 6);
	const uint8_t	*f;

	(void)state;
	registry_note_saw(w, r1, s->peer);
	registry_note_saw(w, r1, s->peer);	/* once only */
	registry_note_saw(w, r2, s->peer);
	conn_rm(s);
	/* r1 and r2 each got exactly one PeerGone(s, disconnected). */
	assert_int_equal(bbuf_len(&r1->ctrl), DERP_PEER_GONE_FRAME_LEN);
	assert_int_equal(bbuf_len(&r2->ctrl), DERP_PEER_GONE_FRAME_LEN);
	assert_int_equal(bbuf_len(&other->ctrl), 0);
	f = r1->ctrl.p + r1->ctrl.off;
	assert_int_equal(f[0], DERP_FRAME_PEER_GONE);
	assert_int_equal(f[5], 3);
	assert_int_equal(f[5 + 32], DERP_PEER_GONE_DISCONNECTED);
	assert_int_equal(w->m->peer_gone_disconnected_frames, 2);
	conn_rm(r1);
	conn_rm(r2);
	conn_rm(other);
	wk_free(w);
}

static void
test_registry_receiver_leaves_first(void **state)
{
	struct worker	*w = wk_new();
	struct conn	*s = conn_mk(w, 3), *r = conn_mk(w, 4);

	(void)state;
	registry_note_saw(w, r, s->peer);
	conn_rm(r);		/* its edge goes with it */
	conn_rm(s);		/* nothing left to notify; no crash */
	assert_int_equal(w->m->peer_gone_disconnected_frames, 0);
	wk_free(w);
}

static void
test_registry_grows(void **state)
{
	enum { N = 5000 };
	struct worker	*w = wk_new();
	struct conn	**cs = calloc(N, sizeof(*cs));
	uint8_t		 k[32];
	int		 i;

	(void)state;
	for (i = 0; i < N; i++) {
		cs[i] = calloc(1, sizeof(**cs));
		cs[i]->w = w;
		cs[i]->state = ST_DERP;
		memcpy(cs[i]->key, &i, sizeof(i));
		assert_int_equal(registry_add(w, cs[i]), 0);
	}
	assert_int_equal(registry_count(w->reg), N);
	for (i = 0; i < N; i++) {
		memset(k, 0, sizeof(k));
		memcpy(k, &i, sizeof(i));
		assert_ptr_equal(registry_active(registry_get(w->reg, k)),
		    cs[i]);
		if (i > 0)
			registry_note_saw(w, cs[i], cs[i - 1]->peer);
	}
	for (i = 0; i < N; i++)
		conn_rm(cs[i]);
	assert_int_equal(registry_count(w->reg), 0);
	free(cs);
	wk_free(w);
}

static uint64_t
rnd_next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void
key_of(uint8_t k[32], uint32_t id)
{
	memset(k, 0xa5, 32);
	memcpy(k, &id, sizeof(id));
}

static void
test_registry_many_keys_across_growths(void **state)
{
	enum { N = 30000 };
	struct worker	*w = wk_new();
	struct conn	**cs = calloc(N, sizeof(*cs));
	uint8_t		 k[32];
	uint64_t	 x = 88172645463325252ULL;
	size_t		 live = 0;
	uint32_t	 i, j, r;

	(void)state;
	assert_non_null(cs);
	for (i = 0; i < N; i++) {
		cs[i] = calloc(1, sizeof(**cs));
		assert_non_null(cs[i]);
		cs[i]->w = w;
		cs[i]->state = ST_DERP;
		key_of(cs[i]->key, i);
		assert_int_equal(registry_add(w, cs[i]), 0);
		live++;
		/* Every growth migrates over the next operations: look up
		 * a present key, a removed one and one not added yet, and
		 * remove a random earlier one now and then. */
		r = (uint32_t)(rnd_next(&x) % (i + 1));
		key_of(k, r);
		if (cs[r] != NULL)
			assert_ptr_equal(registry_active(registry_get(w->reg,
			    k)), cs[r]);
		else
			assert_null(registry_get(w->reg, k));
		key_of(k, i + 1);
		assert_null(registry_get(w->reg, k));
		if (i % 3 == 0 && cs[r] != NULL && r != i) {
			conn_rm(cs[r]);
			cs[r] = NULL;
			live--;
		}
		assert_int_equal(registry_count(w->reg), live);
	}
	for (j = 0; j < N; j++) {
		key_of(k, j);
		if (cs[j] != NULL)
			assert_ptr_equal(registry_active(registry_get(w->reg,
			    k)), cs[j]);
		else
			assert_null(registry_get(w->reg, k));
	}
	for (j = 0; j < N; j++)
		if (cs[j] != NULL)
			conn_rm(cs[j]);
	assert_int_equal(registry_count(w->reg), 0);
	free(cs);
	wk_free(w);
}

/* What the test did to each key: its reference for the counts. */
#define MK	200
static struct {
	struct conn	*local;
	bool		 remote;
	uint32_t	 mask;
} ref[MK];

static size_t
ref_mesh_only(size_t *keys)
{
	size_t	i, k = 0;

	*keys = 0;
	for (i = 0; i < MK; i++) {
		*keys += ref[i].local != NULL || ref[i].remote ||
		    ref[i].mask != 0;
		k += ref[i].local == NULL && !ref[i].remote &&
		    ref[i].mask != 0;
	}
	return k;
}

static void
test_registry_mesh_only_count(void **state)
{
	struct worker		*w = wk_new();
	struct bus_client	 bc;
	uint64_t		 x = 0x9e3779b97f4a7c15ULL;
	size_t			 keys, peak = 0, want;
	uint32_t		 i, idx, op, step;

	(void)state;
	memset(ref, 0, sizeof(ref));
	for (step = 0; step < 20000; step++) {
		i = (uint32_t)(rnd_next(&x) % MK);
		op = (uint32_t)(rnd_next(&x) % 7);
		idx = (uint32_t)(rnd_next(&x) % 4);
		memset(&bc, 0, sizeof(bc));
		key_of(bc.key, i);
		bc.worker = 1;
		bc.conn_id = i;
		switch (op) {
		case 0:		/* a local connection comes or goes */
			if (ref[i].local == NULL) {
				ref[i].local = calloc(1, sizeof(struct conn));
				assert_non_null(ref[i].local);
				ref[i].local->w = w;
				ref[i].local->state = ST_DERP;
				key_of(ref[i].local->key, i);
				assert_int_equal(registry_add(w,
				    ref[i].local), 0);
			} else {
				conn_rm(ref[i].local);
				ref[i].local = NULL;
			}
			break;
		case 1:		/* a sibling's connection */
			assert_true(registry_remote_add(w, &bc) >= 0);
			ref[i].remote = true;
			break;
		case 2:
			registry_remote_del(w, &bc);
			ref[i].remote = false;
			break;
		case 3:
		case 4:		/* a mesh link announces it */
			assert_int_equal(registry_fwd_add(w, bc.key,
			    (int)idx), 0);
			ref[i].mask |= 1u << idx;
			break;
		case 5:
			registry_fwd_del(w, bc.key, (int)idx);
			ref[i].mask &= ~(1u << idx);
			break;
		default:	/* rarely: a link breaks, a sibling dies */
			if (rnd_next(&x) % 50 != 0)
				break;
			if (idx < 2) {
				registry_fwd_clear(w, (int)idx);
				for (i = 0; i < MK; i++)
					ref[i].mask &= ~(1u << idx);
			} else {
				registry_remote_sweep(w, 1, true);
				for (i = 0; i < MK; i++)
					ref[i].remote = false;
			}
			/* The counts follow once the leftovers go. */
			assert_true(registry_reap(w, SIZE_MAX));
			break;
		}
		want = ref_mesh_only(&keys);
		if (want > peak)
			peak = want;
		assert_int_equal(registry_mesh_only(w->reg), want);
		assert_int_equal(registry_count(w->reg), keys);
	}
	assert_true(peak > 10);	/* the count was exercised */
	for (i = 0; i < MK; i++)
		if (ref[i].local != NULL)
			conn_rm(ref[i].local);
	registry_remote_sweep(w, 1, true);
	for (idx = 0; idx < 4; idx++)
		registry_fwd_clear(w, (int)idx);
	assert_true(registry_reap(w, SIZE_MAX));
	assert_int_equal(registry_mesh_only(w->reg), 0);
	assert_int_equal(registry_count(w->reg), 0);
	wk_free(w);
}

/* ---- leftovers of a sibling or mesh link, reaped in steps ---- */

#define NL	3000

static struct conn *
watcher_mk(struct worker *w)
{
	struct conn	*c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->w = w;
	c->fd = -1;
	c->state = ST_DERP;
	c->watcher = true;
	c->watch_next = w->watchers;
	w->watchers = c;
	return c;
}

static void
watcher_free(struct conn *c)
{
	c->w->watchers = NULL;
	bbuf_free(&c->ctrl);
	free(c);
}

/* PeerGone frames c received, per key id (below NL + 16). */
static void
gones_of(const struct conn *c, int *gone)
{
	const uint8_t	*f = c->ctrl.p + c->ctrl.off;
	size_t		 n = bbuf_len(&c->ctrl), off;
	uint32_t	 id;

	memset(gone, 0, (NL + 16) * sizeof(*gone));
	assert_int_equal(n % DERP_PEER_GONE_FRAME_LEN, 0);
	for (off = 0; off < n; off += DERP_PEER_GONE_FRAME_LEN) {
		assert_int_equal(f[off], DERP_FRAME_PEER_GONE);
		memcpy(&id, f + off + 5, sizeof(id));
		assert_true(id < NL + 16);
		gone[id]++;
	}
}

static void
remote_of(struct bus_client *bc, uint32_t id, uint16_t worker)
{
	memset(bc, 0, sizeof(*bc));
	key_of(bc->key, id);
	bc->worker = worker;
	bc->conn_id = id;
	bc->stamp = 1000 + id;
}

static int
route_of(struct worker *w, uint32_t id, struct conn **local)
{
	uint8_t		 k[32];
	struct peer	*p;

	key_of(k, id);
	*local = NULL;
	if ((p = registry_get(w->reg, k)) == NULL)
		return -2;	/* not in the table */
	return registry_route(w->reg, p, local);
}

static size_t
nconns_of(struct worker *w, uint32_t id)
{
	uint8_t		 k[32];
	struct peer	*p;

	key_of(k, id);
	p = registry_get(w->reg, k);
	return p != NULL ? registry_nconns(w->reg, p) : 0;
}

/* Reap in steps of `step`, checking each takes no more: how many. */
static int
reap_steps(struct worker *w, size_t step)
{
	size_t	before;
	int	n = 0;
	bool	done;

	do {
		before = registry_count(w->reg);
		done = registry_reap(w, step);
		assert_true(before - registry_count(w->reg) <= step);
		n++;
	} while (!done);
	return n;
}

static struct conn *
local_mk(struct worker *w, uint32_t id)
{
	struct conn	*c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->w = w;
	c->state = ST_DERP;
	key_of(c->key, id);
	assert_int_equal(registry_add(w, c), 0);
	return c;
}

/* Keys 0..NL-1 on siblings 1-3 (id % 3 + 1); NL also here, NL + 1 on
 * 1 and 2.  Sibling 1 dies: its entries stop routing at once, before
 * any is removed; they go in steps, each key with one PeerGone; one
 * its successor reports again before the reap is back, and stays. */
static void
test_registry_sibling_down_reaped_in_steps(void **state)
{
	struct worker		*w = wk_new();
	struct conn		*wt = watcher_mk(w), *loc, *c;
	struct bus_client	 bc;
	static int		 gone[NL + 16];
	size_t			 keys, left;
	uint32_t		 i;
	int			 steps;

	(void)state;
	w->nworkers = 4;
	for (i = 0; i < NL; i++) {
		remote_of(&bc, i, (uint16_t)(i % 3 + 1));
		assert_int_equal(registry_remote_add(w, &bc), 1);
	}
	loc = local_mk(w, NL);
	remote_of(&bc, NL, 1);
	bc.stamp = UINT64_MAX;		/* the node-wide target */
	assert_int_equal(registry_remote_add(w, &bc), 1);
	remote_of(&bc, NL + 1, 1);
	bc.stamp = 5;
	assert_int_equal(registry_remote_add(w, &bc), 1);
	remote_of(&bc, NL + 1, 2);
	bc.stamp = 4;
	assert_int_equal(registry_remote_add(w, &bc), 1);
	assert_int_equal(route_of(w, NL, &c), 1);
	assert_int_equal(route_of(w, NL + 1, &c), 1);
	keys = registry_count(w->reg);
	assert_int_equal(keys, NL + 2);

	registry_remote_sweep(w, 1, true);
	/* Nothing removed yet, nothing routes to 1. */
	assert_int_equal(registry_count(w->reg), keys);
	assert_int_equal(bbuf_len(&wt->ctrl), 0);
	for (i = 0; i < NL; i++) {
		if (i % 3 + 1 == 1) {
			assert_int_equal(route_of(w, i, &c), -1);
			assert_null(c);
			assert_int_equal(nconns_of(w, i), 0);
		} else {
			assert_int_equal(route_of(w, i, &c), (int)(i % 3 + 1));
			assert_int_equal(nconns_of(w, i), 1);
		}
	}
	assert_int_equal(route_of(w, NL, &c), -1);
	assert_ptr_equal(c, loc);
	assert_ptr_equal(registry_local_target(w->reg, loc->peer), loc);
	assert_int_equal(route_of(w, NL + 1, &c), 2);
	assert_int_equal(nconns_of(w, NL + 1), 1);
	/* The successor has key 0 again (same connection id) first. */
	remote_of(&bc, 0, 1);
	assert_int_equal(registry_remote_add(w, &bc), 1);	/* present */
	assert_int_equal(route_of(w, 0, &c), 1);
	assert_int_equal(registry_remote_add(w, &bc), 0);

	steps = reap_steps(w, 100);
	assert_true(steps >= NL / 3 / 100);
	gones_of(wt, gone);
	left = 0;
	for (i = 0; i < NL + 2; i++) {
		bool	dies = i < NL && i % 3 + 1 == 1 && i != 0;

		assert_int_equal(gone[i], dies ? 1 : 0);
		assert_int_equal(route_of(w, i, &c), dies ? -2 :
		    i == NL ? -1 : i == NL + 1 ? 2 : (int)(i % 3 + 1));
		left += !dies;
	}
	assert_int_equal(registry_count(w->reg), left);
	assert_int_equal(registry_node_conns(w->reg), left);
	assert_true(registry_reap(w, 1));	/* nothing left */

	conn_rm(loc);
	registry_remote_sweep(w, 1, true);
	registry_remote_sweep(w, 2, true);
	registry_remote_sweep(w, 3, true);
	assert_true(registry_reap(w, SIZE_MAX));
	assert_int_equal(registry_count(w->reg), 0);
	assert_int_equal(registry_node_conns(w->reg), 0);
	watcher_free(wt);
	wk_free(w);
}

/* A resync of sibling 2: routing carries on through the snapshot; what
 * it confirmed or added stays, the rest stops at the sweep and goes in
 * steps with a PeerGone each; sibling 3 is untouched throughout. */
static void
test_registry_resync_mark_sweep(void **state)
{
	struct worker		*w = wk_new();
	struct conn		*wt = watcher_mk(w), *c;
	struct bus_client	 bc;
	static int		 gone[NL + 16];
	uint32_t		 i;

	(void)state;
	w->nworkers = 4;
	for (i = 0; i < NL; i++) {
		remote_of(&bc, i, (uint16_t)(i < NL / 2 ? 2 : 3));
		assert_int_equal(registry_remote_add(w, &bc), 1);
	}
	registry_remote_mark(w, 2);
	for (i = 0; i < NL / 2; i += 2) {	/* the snapshot */
		remote_of(&bc, i, 2);
		assert_int_equal(registry_remote_add(w, &bc), 0);
	}
	remote_of(&bc, NL + 5, 2);		/* new in it */
	assert_int_equal(registry_remote_add(w, &bc), 1);
	for (i = 0; i < NL / 2; i++)		/* no gap meanwhile */
		assert_int_equal(route_of(w, i, &c), 2);
	remote_of(&bc, 3, 2);			/* a delta: 3 left */
	registry_remote_del(w, &bc);
	registry_remote_sweep(w, 2, false);
	for (i = 0; i < NL; i++)
		assert_int_equal(route_of(w, i, &c), i >= NL / 2 ? 3 :
		    i % 2 == 0 ? 2 : i == 3 ? -2 : -1);
	assert_int_equal(route_of(w, NL + 5, &c), 2);
	gones_of(wt, gone);
	assert_int_equal(gone[3], 1);		/* the delta's, at once */

	assert_true(reap_steps(w, 64) >= NL / 4 / 64);
	gones_of(wt, gone);
	for (i = 0; i < NL; i++)
		assert_int_equal(gone[i], i < NL / 2 && i % 2 == 1 ? 1 : 0);
	assert_int_equal(registry_count(w->reg), NL / 4 + NL / 2 + 1);

	registry_remote_sweep(w, 2, true);
	registry_remote_sweep(w, 3, true);
	assert_true(registry_reap(w, SIZE_MAX));
	assert_int_equal(registry_count(w->reg), 0);
	watcher_free(wt);
	wk_free(w);
}

/* Link 0 forwards keys 0..NL-1, link 1 also the first half; key NL is
 * local and on link 0.  Link 0 breaks: at once no key routes through
 * it; the clear goes in steps; meanwhile link 0 is back and announces
 * key NL (behind the cursor), the last key (ahead of it) and a new
 * one, which route through it at once and stay. */
static void
test_registry_fwd_clear_in_steps(void **state)
{
	struct worker	*w = wk_new();
	struct conn	*wt = watcher_mk(w), *loc;
	static int	 gone[NL + 16];
	uint8_t		 k[32];
	uint32_t	 i;

	(void)state;
	loc = local_mk(w, NL);
	key_of(k, NL);
	assert_int_equal(registry_fwd_add(w, k, 0), 0);
	for (i = 0; i < NL; i++) {
		key_of(k, i);
		assert_int_equal(registry_fwd_add(w, k, 0), 0);
		if (i < NL / 2)
			assert_int_equal(registry_fwd_add(w, k, 1), 0);
	}
	assert_int_equal(registry_mesh_only(w->reg), NL);
	registry_fwd_clear(w, 0);
	for (i = 0; i < NL; i++) {
		key_of(k, i);
		assert_int_equal(registry_forwarder(w->reg,
		    registry_get(w->reg, k)), i < NL / 2 ? 1 : -1);
	}
	assert_int_equal(registry_count(w->reg), NL + 1);
	assert_int_equal(bbuf_len(&wt->ctrl), 0);

	assert_false(registry_reap(w, 100));	/* key NL is behind */
	key_of(k, NL);
	assert_int_equal(registry_forwarder(w->reg, registry_get(w->reg, k)),
	    -1);
	assert_int_equal(registry_fwd_add(w, k, 0), 0);
	assert_int_equal(registry_forwarder(w->reg, registry_get(w->reg, k)),
	    0);
	key_of(k, NL - 1);
	assert_int_equal(registry_fwd_add(w, k, 0), 0);
	assert_int_equal(registry_forwarder(w->reg, registry_get(w->reg, k)),
	    0);
	key_of(k, NL + 2);
	assert_int_equal(registry_fwd_add(w, k, 0), 0);
	assert_int_equal(registry_forwarder(w->reg, registry_get(w->reg, k)),
	    0);

	assert_true(reap_steps(w, 100) >= NL / 100 - 1);
	gones_of(wt, gone);
	for (i = 0; i < NL + 3; i++) {
		bool	dies = i >= NL / 2 && i < NL - 1;

		/* Mesh-only keys: the watcher was never told of them. */
		assert_int_equal(gone[i], 0);
		key_of(k, i);
		if (dies) {
			assert_null(registry_get(w->reg, k));
			continue;
		}
		if (i == NL + 1)
			continue;
		assert_int_equal(registry_forwarder(w->reg,
		    registry_get(w->reg, k)), i < NL / 2 ? 1 : 0);
	}
	assert_int_equal(registry_mesh_only(w->reg), NL / 2 + 2);

	/* Down again in the middle of the next clear: what the first
	 * kept as announced again goes with the second. */
	registry_fwd_clear(w, 1);
	assert_false(registry_reap(w, 10));
	registry_fwd_clear(w, 0);
	key_of(k, NL - 1);
	assert_int_equal(registry_forwarder(w->reg, registry_get(w->reg, k)),
	    -1);
	registry_fwd_clear(w, 0);
	assert_true(registry_reap(w, SIZE_MAX));
	assert_int_equal(registry_count(w->reg), 1);	/* key NL */
	assert_int_equal(registry_mesh_only(w->reg), 0);
	gones_of(wt, gone);
	for (i = 0; i < NL + 3; i++)
		assert_int_equal(gone[i], 0);
	assert_int_equal(w->m->registry_mesh_gone, NL + 1);
	conn_rm(loc);
	gones_of(wt, gone);
	assert_int_equal(gone[NL], 1);		/* the local one's */
	assert_int_equal(registry_count(w->reg), 0);
	watcher_free(wt);
	wk_free(w);
}

/* ---- what watchers are told leaves: node-wide presence only ---- */

/* A key only a mesh link announced leaves: no PeerGone to the watcher
 * (never told of it), one to the local client that received from it;
 * a local key leaving gives the watcher one. */
static void
test_registry_watch_mesh_only_no_gone(void **state)
{
	struct worker	*w = wk_new();
	struct conn	*wt = watcher_mk(w), *rcv = local_mk(w, 20);
	struct conn	*loc = local_mk(w, 2);
	static int	 gone[NL + 16];
	uint8_t		 k[32];

	(void)state;
	key_of(k, 1);
	assert_int_equal(registry_fwd_add(w, k, 0), 0);
	registry_note_saw(w, rcv, registry_get(w->reg, k));
	registry_fwd_del(w, k, 0);
	assert_null(registry_get(w->reg, k));
	assert_int_equal(bbuf_len(&wt->ctrl), 0);
	assert_int_equal(bbuf_len(&rcv->ctrl), DERP_PEER_GONE_FRAME_LEN);
	assert_int_equal(w->m->registry_mesh_gone, 1);

	conn_rm(loc);				/* local: announced */
	gones_of(wt, gone);
	assert_int_equal(gone[2], 1);
	assert_int_equal(bbuf_len(&wt->ctrl), DERP_PEER_GONE_FRAME_LEN);
	assert_int_equal(w->m->registry_mesh_gone, 1);
	conn_rm(rcv);
	watcher_free(wt);
	wk_free(w);
}

/* Local, then forwarded too, then the local connection leaves: the
 * watcher hears once, then (its node-wide presence is over), not again
 * when the forwarder goes; the receiver hears when the key leaves the
 * region, at the forwarder's end.  Then the other way round: forwarded
 * first, local later: one PeerGone. */
static void
test_registry_watch_local_then_forwarded(void **state)
{
	struct worker	*w = wk_new();
	struct conn	*wt = watcher_mk(w), *rcv = local_mk(w, 20), *loc;
	static int	 gone[NL + 16];
	uint8_t		 k[32];

	(void)state;
	loc = local_mk(w, 3);
	key_of(k, 3);
	assert_int_equal(registry_fwd_add(w, k, 1), 0);
	registry_note_saw(w, rcv, loc->peer);
	conn_rm(loc);
	gones_of(wt, gone);
	assert_int_equal(gone[3], 1);
	assert_int_equal(bbuf_len(&rcv->ctrl), 0);	/* still in region */
	assert_int_equal(registry_forwarder(w->reg, registry_get(w->reg, k)),
	    1);
	registry_fwd_del(w, k, 1);
	assert_null(registry_get(w->reg, k));
	gones_of(wt, gone);
	assert_int_equal(gone[3], 1);			/* not again */
	assert_int_equal(bbuf_len(&rcv->ctrl), DERP_PEER_GONE_FRAME_LEN);

	key_of(k, 4);
	assert_int_equal(registry_fwd_add(w, k, 0), 0);
	loc = local_mk(w, 4);
	conn_rm(loc);
	gones_of(wt, gone);
	assert_int_equal(gone[4], 1);
	registry_fwd_clear(w, 0);
	assert_true(registry_reap(w, SIZE_MAX));
	assert_null(registry_get(w->reg, k));
	gones_of(wt, gone);
	assert_int_equal(gone[3], 1);
	assert_int_equal(gone[4], 1);
	assert_int_equal(bbuf_len(&wt->ctrl), 2 * DERP_PEER_GONE_FRAME_LEN);
	conn_rm(rcv);
	watcher_free(wt);
	wk_free(w);
}

/* Sibling entries, some of keys a mesh link forwards too: the sibling
 * dies and each is reaped with one PeerGone, whether or not a link
 * still forwards the key; the link's clear then adds none. */
static void
test_registry_watch_sibling_and_forwarded(void **state)
{
	struct worker		*w = wk_new();
	struct conn		*wt = watcher_mk(w);
	struct bus_client	 bc;
	static int		 gone[NL + 16];
	uint8_t			 k[32];
	uint32_t		 i;

	(void)state;
	w->nworkers = 2;
	for (i = 0; i < 100; i++) {
		remote_of(&bc, i, 1);
		assert_int_equal(registry_remote_add(w, &bc), 1);
		if (i % 2 == 0) {
			key_of(k, i);
			assert_int_equal(registry_fwd_add(w, k, 0), 0);
		}
	}
	for (i = 100; i < 150; i++) {		/* mesh only */
		key_of(k, i);
		assert_int_equal(registry_fwd_add(w, k, 0), 0);
	}
	registry_remote_sweep(w, 1, true);
	assert_int_equal(bbuf_len(&wt->ctrl), 0);
	assert_true(reap_steps(w, 7) >= 100 / 7);
	gones_of(wt, gone);
	for (i = 0; i < 150; i++)
		assert_int_equal(gone[i], i < 100 ? 1 : 0);
	assert_int_equal(registry_count(w->reg), 50 + 50);
	registry_fwd_clear(w, 0);
	assert_true(registry_reap(w, SIZE_MAX));
	assert_int_equal(registry_count(w->reg), 0);
	gones_of(wt, gone);
	for (i = 0; i < 150; i++)
		assert_int_equal(gone[i], i < 100 ? 1 : 0);
	assert_int_equal(w->m->registry_mesh_gone, 100);
	watcher_free(wt);
	wk_free(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry_single_and_lookup),
		cmocka_unit_test(test_registry_dup_newest_then_last_writer),
		cmocka_unit_test(test_registry_dup_no_last_means_no_active),
		cmocka_unit_test(test_registry_peer_gone_to_receivers),
		cmocka_unit_test(test_registry_receiver_leaves_first),
		cmocka_unit_test(test_registry_grows),
		cmocka_unit_test(test_registry_many_keys_across_growths),
		cmocka_unit_test(test_registry_mesh_only_count),
		cmocka_unit_test(test_registry_sibling_down_reaped_in_steps),
		cmocka_unit_test(test_registry_resync_mark_sweep),
		cmocka_unit_test(test_registry_fwd_clear_in_steps),
		cmocka_unit_test(test_registry_watch_mesh_only_no_gone),
		cmocka_unit_test(test_registry_watch_local_then_forwarded),
		cmocka_unit_test(test_registry_watch_sibling_and_forwarded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Unit tests for worker/registry.c: the lastWriterIsActive duplicate
 * policy (PROTOCOL.md 5.3), dup metrics, PeerGone(Disconnected) edges
 * (5.7) and ClosePeer; tens of thousands of keys added, looked up and
 * removed across the incremental growths, against a reference; the
 * mesh-only count against one kept by the test through random local,
 * sibling and forwarder changes.  Connections are in-memory (no fds);
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

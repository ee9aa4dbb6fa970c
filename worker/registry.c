/*
 * The worker's key table (PROTOCOL.md 5.2, 5.3, 5.7): key -> set of local
 * connections with the lastWriterIsActive duplicate policy, and the
 * "who received from whom" edges that drive PeerGone(Disconnected).
 * Hashes are SipHash (libsodium) under a random key: peers choose keys.
 * Both tables grow incrementally (worker/ihash.c); every walk over all
 * keys goes through the list of peers, and the long ones (a watcher's
 * first presence list, a mesh link's forwarder clear) through a cursor
 * that removals move along.  What a broken mesh link forwarded stops
 * routing at once and goes a bounded step per loop turn (the reap, in
 * remote.c with the siblings' entries and routing across workers).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/bus.h"
#include "worker/ihash.h"
#include "worker/registry_int.h"
#include "worker/wk.h"

#define PEER_OF(e)	((struct peer *)(void *)((char *)(e) - \
			    offsetof(struct peer, h)))
#define CPEER_OF(e)	((const struct peer *)(const void *)( \
			    (const char *)(e) - offsetof(struct peer, h)))
#define CEDGE_OF(e)	((const struct saw_edge *)(const void *)( \
			    (const char *)(e) - offsetof(struct saw_edge, h)))

size_t
registry_node_conns(const struct registry *r)
{
	return r->nlocal + r->nremote;
}

struct registry *
registry_new(void)
{
	struct registry	*r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	randombytes_buf(r->hkey, sizeof(r->hkey));
	if (ihash_init(&r->peers, 1024) < 0 ||
	    ihash_init(&r->edges, 1024) < 0) {
		registry_free(r);
		return NULL;
	}
	return r;
}

void
registry_free(struct registry *r)
{
	struct peer	*p, *np;
	struct saw_edge	*e, *ne;
	int		 i;

	if (r == NULL)
		return;
	if (r->loop != NULL)
		loop_timer_cancel(r->loop, &r->reap);
	for (i = 0; i < 32; i++)
		registry_cursor_free(r, r->fwd_cur[i]);
	for (p = r->head; p != NULL; p = np) {
		np = p->lnext;
		while (p->remotes != NULL) {
			struct remote	*x = p->remotes;

			p->remotes = x->next;
			free(x);
		}
		for (e = p->seen_by; e != NULL; e = ne) {	/* each edge
								 * once */
			ne = e->pnext;
			free(e);
		}
		free(p->conns);
		free(p);
	}
	ihash_fini(&r->peers);
	ihash_fini(&r->edges);
	free(r);
}


static uint64_t
khash(const struct registry *r, const uint8_t key[DERP_KEY_LEN])
{
	uint64_t	h;

	crypto_shorthash((unsigned char *)&h, key, DERP_KEY_LEN, r->hkey);
	return h;
}

static uint64_t
ehash(const struct conn *c, const struct peer *p)
{
	uint64_t	h = (uint64_t)(uintptr_t)c * 0x9e3779b97f4a7c15ULL ^
			    (uint64_t)(uintptr_t)p * 0xc2b2ae3d27d4eb4fULL;

	return h ^ (h >> 29);
}

static bool
peer_eq(const struct ihnode *e, const void *key)
{
	return memcmp(CPEER_OF(e)->key, key, DERP_KEY_LEN) == 0;
}

struct edge_key {
	const struct conn	*c;
	const struct peer	*p;
};

static bool
edge_eq(const struct ihnode *e, const void *key)
{
	const struct edge_key	*k = key;

	return CEDGE_OF(e)->c == k->c && CEDGE_OF(e)->p == k->p;
}

struct peer *
registry_get(struct registry *r, const uint8_t key[DERP_KEY_LEN])
{
	struct ihnode	*e = ihash_find(&r->peers, khash(r, key), peer_eq,
			    key);

	return e != NULL ? PEER_OF(e) : NULL;
}

size_t
registry_count(const struct registry *r)
{
	return r->peers.n;
}

size_t
registry_mesh_only(const struct registry *r)
{
	return r->nmesh;
}

struct conn *
registry_active(const struct peer *p)
{
	return p->active;
}

struct peer *
registry_peer_new(struct worker *w, const uint8_t key[DERP_KEY_LEN])
{
	struct registry	*r = w->reg;
	struct peer	*p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	if ((p->conns = calloc(1, sizeof(*p->conns))) == NULL) {
		free(p);
		return NULL;
	}
	p->cap = 1;
	memcpy(p->key, key, DERP_KEY_LEN);
	p->fwd_pref = -1;
	p->seq = r->next_seq++;
	p->h.hash = khash(r, p->key);
	ihash_insert(&r->peers, &p->h);
	p->lprev = r->tail;
	if (r->tail != NULL)
		r->tail->lnext = p;
	else
		r->head = p;
	r->tail = p;
	w->m->clients_local = r->peers.n;
	w->m->clients_total = r->peers.n;
	return p;
}

int
registry_add(struct worker *w, struct conn *c)
{
	struct registry	*r = w->reg;
	struct peer	*p = registry_get(r, c->key);
	struct conn	**nc;

	if (p == NULL && (p = registry_peer_new(w, c->key)) == NULL)
		return -ENOMEM;
	if (p->n == p->cap) {
		/* p->n >= 1 here: a failure leaves the set as it was. */
		if ((nc = realloc(p->conns, p->cap * 2 * sizeof(*nc))) == NULL)
			return -ENOMEM;
		p->conns = nc;
		p->cap *= 2;
	}
	p->conns[p->n++] = c;
	mesh_note(r, p, p->n == 1 && p->nremote == 0 && p->fwd_mask != 0);
	r->nlocal++;
	c->peer = p;
	c->spoke_seq = 0;
	p->active = c;		/* the newest connection wins (5.3) */
	if (p->n == 2) {
		w->m->current_dup_client_keys++;
		w->m->current_dup_client_conns += 2;
		w->m->total_dup_client_conns++;
		p->conns[0]->spoke_seq = 0;
		p->last = NULL;
	} else if (p->n > 2) {
		w->m->current_dup_client_conns++;
		w->m->total_dup_client_conns++;
	}
	return 0;
}

static void
edge_unlink(struct registry *r, struct saw_edge *e)
{
	ihash_remove(&r->edges, &e->h);
	if (e->pprev != NULL)
		e->pprev->pnext = e->pnext;
	else
		e->p->seen_by = e->pnext;
	if (e->pnext != NULL)
		e->pnext->pprev = e->pprev;
	if (e->cprev != NULL)
		e->cprev->cnext = e->cnext;
	else
		e->c->saw = e->cnext;
	if (e->cnext != NULL)
		e->cnext->cprev = e->cprev;
	if (e->c->saw_last == e->p)
		e->c->saw_last = NULL;
	free(e);
}

/* The key left the table: every receiver of it learns so.  Watchers
 * heard at the end of its node-wide presence (registry_node_left). */
static void
peer_gone(struct worker *w, struct peer *p)
{
	struct registry		*r = w->reg;
	struct saw_edge		*e;
	struct reg_cursor	*k;

	ihash_remove(&r->peers, &p->h);
	for (k = r->cursors; k != NULL; k = k->cnext)
		if (k->next == p)
			k->next = p->lnext;
	if (p->lprev != NULL)
		p->lprev->lnext = p->lnext;
	else
		r->head = p->lnext;
	if (p->lnext != NULL)
		p->lnext->lprev = p->lprev;
	else
		r->tail = p->lprev;
	w->m->clients_local = r->peers.n;
	w->m->clients_total = r->peers.n;
	while ((e = p->seen_by) != NULL) {
		struct conn	*to = e->c;

		edge_unlink(r, e);
		session_notify_gone(to, p->key);
	}
	free(p->conns);
	free(p);
}

void
registry_node_left(struct worker *w, struct peer *p)
{
	if (p->n == 0 && p->nremote == 0)
		session_peer_left(w, p->key);
}

void
registry_maybe_gone(struct worker *w, struct peer *p)
{
	if (p->n == 0 && p->nremote == 0 && p->fwd_mask == 0)
		peer_gone(w, p);
}

/* Link idx is being cleared and its cursor went past p: what p holds
 * of idx was announced since (the pass removed the rest). */
static bool
fwd_passed(const struct registry *r, const struct peer *p, int idx)
{
	const struct peer	*n = r->fwd_cur[idx]->next;

	return n == NULL || p->seq < n->seq;
}

/* The links that reach p.  One being cleared counts where it announced
 * p again since its clear began: ahead of the cursor, fwd_fresh says
 * so; behind it, what is left is all new. */
static uint32_t
fwd_live(const struct registry *r, const struct peer *p)
{
	uint32_t	m = p->fwd_mask & (~r->fwd_dead | p->fwd_fresh), d;
	int		i;

	for (d = p->fwd_mask & r->fwd_dead & ~p->fwd_fresh; d != 0;
	    d &= d - 1) {
		i = __builtin_ctz(d);
		if (fwd_passed(r, p, i))
			m |= 1u << i;
	}
	return m;
}

int
registry_forwarder(const struct registry *r, const struct peer *p)
{
	uint32_t	m = p->fwd_mask != 0 ? fwd_live(r, p) : 0;

	if (m == 0)
		return -1;
	if (p->fwd_pref >= 0 && (m & (1u << p->fwd_pref)) != 0)
		return p->fwd_pref;
	return __builtin_ctz(m);
}

int
registry_fwd_add(struct worker *w, const uint8_t key[DERP_KEY_LEN], int idx)
{
	struct registry	*r = w->reg;
	struct peer	*p = registry_get(r, key);
	bool		 was;

	if (p == NULL && (p = registry_peer_new(w, key)) == NULL)
		return -ENOMEM;
	was = mesh_only(p);
	if (p->fwd_mask == 0)
		p->fwd_pref = idx;	/* the first to report it is used */
	p->fwd_mask |= 1u << idx;
	if ((r->fwd_dead & (1u << idx)) != 0 && !fwd_passed(r, p, idx))
		p->fwd_fresh |= 1u << idx;	/* the clear keeps it */
	mesh_note(r, p, was);
	return 0;
}

static void
fwd_del(struct worker *w, struct peer *p, int idx)
{
	int	i;
	bool	was = mesh_only(p);

	if ((p->fwd_mask & (1u << idx)) == 0) {
		w->m->packet_forwarder_delete_other_value++;
		return;
	}
	p->fwd_mask &= ~(1u << idx);
	p->fwd_fresh &= ~(1u << idx);
	mesh_note(w->reg, p, was);
	if (p->fwd_pref == idx) {
		p->fwd_pref = -1;
		for (i = 0; i < 32; i++)
			if (p->fwd_mask & (1u << i)) {
				p->fwd_pref = i;
				break;
			}
	}
	if (p->fwd_mask == 0 && p->n == 0 && p->nremote == 0)
		w->m->registry_mesh_gone++;
	registry_maybe_gone(w, p);
}

void
registry_fwd_del(struct worker *w, const uint8_t key[DERP_KEY_LEN], int idx)
{
	struct peer	*p = registry_get(w->reg, key);

	if (p != NULL)
		fwd_del(w, p, idx);
}

/* Up to *budget more peers of link idx's clear; true when it is over. */
bool
registry_fwd_step(struct worker *w, int idx, size_t *budget)
{
	struct registry		*r = w->reg;
	struct reg_cursor	*k = r->fwd_cur[idx];
	struct peer		*p;
	uint32_t		 bit = 1u << idx;

	while ((p = k->next) != NULL && *budget > 0) {
		(*budget)--;
		k->next = p->lnext;	/* fwd_del frees p at most */
		if ((p->fwd_fresh & bit) != 0) {
			p->fwd_fresh &= ~bit;
		} else if ((p->fwd_mask & bit) != 0) {
			w->m->registry_reaped++;
			fwd_del(w, p, idx);
		}
	}
	if (p != NULL)
		return false;
	registry_cursor_free(r, k);
	r->fwd_cur[idx] = NULL;
	r->fwd_dead &= ~bit;
	return true;
}

void
registry_fwd_clear(struct worker *w, int idx)
{
	struct registry	*r = w->reg;
	struct peer	*p, *np;
	size_t		 all = SIZE_MAX;

	/* Down again before the last clear ended: finish that one first
	 * (what it keeps as announced again, this one must not). */
	if (r->fwd_cur[idx] != NULL)
		(void)registry_fwd_step(w, idx, &all);
	if ((r->fwd_cur[idx] = registry_cursor_new(r)) != NULL) {
		r->fwd_dead |= 1u << idx;	/* stops routing now */
		remote_reap_arm(w);
		return;
	}
	/* No memory for a cursor: all at once.  fwd_del frees p at most:
	 * keep the next first. */
	for (p = r->head; p != NULL; p = np) {
		np = p->lnext;
		if (p->fwd_mask & (1u << idx))
			fwd_del(w, p, idx);
	}
}

void
registry_remove(struct worker *w, struct conn *c)
{
	struct peer	*p = c->peer;
	struct conn	*best = NULL;
	uint32_t	 i;

	if (p == NULL)
		return;
	c->peer = NULL;
	for (i = 0; i < p->n; i++)
		if (p->conns[i] == c)
			break;
	if (i == p->n)
		return;
	p->conns[i] = p->conns[--p->n];
	mesh_note(w->reg, p, false);	/* it had a connection */
	w->reg->nlocal--;
	if (p->n == 0) {
		p->active = p->last = NULL;
		registry_node_left(w, p);
		registry_maybe_gone(w, p);
		return;
	}
	if (p->n == 1) {
		w->m->current_dup_client_keys--;
		w->m->current_dup_client_conns -= 2;
		p->active = p->conns[0];
		p->conns[0]->spoke_seq = 0;
		p->last = NULL;
		return;
	}
	w->m->current_dup_client_conns--;
	for (i = 0; i < p->n; i++)
		if (p->conns[i]->spoke_seq > 0 && (best == NULL ||
		    p->conns[i]->spoke_seq > best->spoke_seq))
			best = p->conns[i];
	p->last = best;
	p->active = best;
}

/* fn for p if it is present node-wide, with its target's address. */
static void
present_one(const struct registry *r, struct peer *p,
    registry_present_fn fn, void *arg)
{
	struct conn	*c;
	struct remote	*x;

	if (registry_route(r, p, &c) == -1) {
		if (c != NULL)
			fn(arg, p->key, c->ip16, c->port, session_flags(c));
	} else if ((x = remote_best(r, p)) != NULL) {
		fn(arg, p->key, x->ip16, x->port, x->flags);
	}
}

struct reg_cursor *
registry_cursor_new(struct registry *r)
{
	struct reg_cursor	*k;

	if ((k = calloc(1, sizeof(*k))) == NULL)
		return NULL;
	k->next = r->head;
	k->cnext = r->cursors;
	if (r->cursors != NULL)
		r->cursors->cprev = k;
	r->cursors = k;
	return k;
}

void
registry_cursor_free(struct registry *r, struct reg_cursor *k)
{
	if (k == NULL)
		return;
	if (k->cprev != NULL)
		k->cprev->cnext = k->cnext;
	else
		r->cursors = k->cnext;
	if (k->cnext != NULL)
		k->cnext->cprev = k->cprev;
	free(k);
}

bool
registry_cursor_present(struct registry *r, struct reg_cursor *k,
    size_t budget, registry_present_fn fn, void *arg)
{
	struct peer	*p;

	/* fn only queues frames: nothing it does frees a peer. */
	for (p = k->next; p != NULL && budget > 0; p = p->lnext, budget--)
		present_one(r, p, fn, arg);
	k->next = p;
	return p == NULL;
}

void
registry_note_saw(struct worker *w, struct conn *dst, struct peer *src)
{
	struct registry	*r = w->reg;
	struct saw_edge	*e;
	struct edge_key	 ek;
	uint64_t	 h;

	if (src == NULL || dst->saw_last == src)
		return;
	ek.c = dst;
	ek.p = src;
	h = ehash(dst, src);
	if (ihash_find(&r->edges, h, edge_eq, &ek) != NULL) {
		dst->saw_last = src;
		return;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return;		/* PeerGone is advisory: skip it */
	e->c = dst;
	e->p = src;
	e->h.hash = h;
	ihash_insert(&r->edges, &e->h);
	e->pnext = src->seen_by;
	if (src->seen_by != NULL)
		src->seen_by->pprev = e;
	src->seen_by = e;
	e->cnext = dst->saw;
	if (dst->saw != NULL)
		dst->saw->cprev = e;
	dst->saw = e;
	dst->saw_last = src;
}

void
registry_note_saw_key(struct worker *w, struct conn *dst,
    const uint8_t src[DERP_KEY_LEN])
{
	/* A run of packets from one source: no hash lookup after the
	 * first (saw_last is cleared whenever its edge goes). */
	if (dst->saw_last != NULL &&
	    memcmp(dst->saw_last->key, src, DERP_KEY_LEN) == 0)
		return;
	registry_note_saw(w, dst, registry_get(w->reg, src));
}

void
registry_forget_saw(struct conn *c)
{
	while (c->saw != NULL)
		edge_unlink(c->w->reg, c->saw);
	c->saw_last = NULL;
}

size_t
registry_saw_count(const struct conn *c)
{
	const struct saw_edge	*e;
	size_t			 n = 0;

	for (e = c->saw; e != NULL; e = e->cnext)
		n++;
	return n;
}

void
registry_close_key(struct worker *w, const uint8_t key[DERP_KEY_LEN])
{
	struct peer	*p;

	while ((p = registry_get(w->reg, key)) != NULL && p->n > 0)
		conn_close(p->conns[0], "closed_by_mesh");
}

/*
 * The worker's key table (PROTOCOL.md 5.2, 5.3, 5.7): key -> set of local
 * connections with the lastWriterIsActive duplicate policy, and the
 * "who received from whom" edges that drive PeerGone(Disconnected).
 * Hashes are SipHash (libsodium) under a random key: peers choose keys.
 * Both tables grow incrementally (worker/ihash.c); every walk over all
 * keys goes through the list of peers, and the long ones (a watcher's
 * first presence list, a mesh link's forwarder clear) through a cursor
 * that removals move along.  What a dead or resynchronised sibling
 * leaves, and what a broken mesh link forwarded, stops routing at once
 * and is removed a bounded step per loop turn (registry_reap).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/bus.h"
#include "worker/ihash.h"
#include "worker/wk.h"

#define PEER_OF(e)	((struct peer *)(void *)((char *)(e) - \
			    offsetof(struct peer, h)))
#define CPEER_OF(e)	((const struct peer *)(const void *)( \
			    (const char *)(e) - offsetof(struct peer, h)))
#define CEDGE_OF(e)	((const struct saw_edge *)(const void *)( \
			    (const char *)(e) - offsetof(struct saw_edge, h)))

#define REG_WORKERS	256	/* conf: workers <= 256 */
#define REAP_DELAY_MS	1	/* 0 would run again in the same turn */

/* A connection of this key on a sibling worker, as the bus reported it.
 * It routes while gen >= its sibling's floor (visible()); below, it is
 * a leftover of a death or a resync, waiting to be reaped. */
struct remote {
	struct remote	*next;		/* the peer's */
	struct remote	*sprev, *snext;	/* the sibling's, newest first */
	struct peer	*p;
	uint64_t	 conn_id;
	uint64_t	 stamp;
	uint32_t	 gen;
	uint16_t	 worker;
	uint8_t		 flags;
	uint8_t		 ip16[16];
	uint16_t	 port;
};

/* One sibling's remotes, most recently added or confirmed first.  gen
 * goes up at a resync's mark and at a death; an add or confirmation
 * stamps it and moves the entry to the head, so gens never increase
 * toward the tail and everything below floor is a tail of the list. */
struct sib {
	struct remote	*head, *tail;
	uint32_t	 gen, floor;
};

struct peer {
	struct ihnode	 h;
	struct peer	*lprev, *lnext;	/* the registry's list of peers */
	uint64_t	 seq;		/* order in that list */
	uint8_t		 key[DERP_KEY_LEN];
	struct conn	**conns;
	uint32_t	 n, cap;
	struct conn	*active, *last;
	struct remote	*remotes;	/* node-wide: sibling workers */
	uint32_t	 nremote;
	uint32_t	 fwd_mask;	/* mesh links that announced key */
	uint32_t	 fwd_fresh;	/* of those, announced again since
					 * the link's clear began */
	int		 fwd_pref;	/* link used, -1 = none (6.4) */
	struct saw_edge	*seen_by;	/* conns that received from key */
};

struct saw_edge {
	struct ihnode	 h;
	struct conn	*c;
	struct peer	*p;
	struct saw_edge	*pnext, *pprev;
	struct saw_edge	*cnext, *cprev;
};

struct reg_cursor {
	struct peer		*next;	/* moved past a peer that goes */
	struct reg_cursor	*cprev, *cnext;
};

struct registry {
	uint8_t		  hkey[crypto_shorthash_KEYBYTES];
	struct ihash	  peers;	/* by key */
	struct ihash	  edges;	/* by (conn, peer) */
	struct peer	 *head, *tail;	/* every peer, oldest first */
	struct reg_cursor *cursors;
	uint64_t	  next_seq;
	size_t		  nmesh;	/* keys known only through mesh */
	size_t		  nlocal, nremote;	/* connections node-wide */
	struct sib	  sibs[REG_WORKERS];
	/* Links whose forwarders are being cleared (a bit of fwd_mask
	 * counts only where fwd_fresh has it too), each by a cursor. */
	uint32_t	  fwd_dead;
	struct reg_cursor *fwd_cur[32];
	struct loop	 *loop;		/* of the reap timer, once armed */
	struct loop_timer reap;
};

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

/* Keys known only through mesh links: kept as a count, changed where
 * a peer's sets change (mesh_note after each), not walked per scrape. */
static bool
mesh_only(const struct peer *p)
{
	return p->n == 0 && p->nremote == 0 && p->fwd_mask != 0;
}

static void
mesh_note(struct registry *r, const struct peer *p, bool was)
{
	if (mesh_only(p) != was)
		r->nmesh = was ? r->nmesh - 1 : r->nmesh + 1;
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

static struct peer *
peer_new(struct worker *w, const uint8_t key[DERP_KEY_LEN])
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

	if (p == NULL && (p = peer_new(w, c->key)) == NULL)
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

/* The key left: watchers and every receiver of it learn so. */
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
	session_peer_left(w, p->key);
	while ((e = p->seen_by) != NULL) {
		struct conn	*to = e->c;

		edge_unlink(r, e);
		session_notify_gone(to, p->key);
	}
	free(p->conns);
	free(p);
}

static void
maybe_gone(struct worker *w, struct peer *p)
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

	if (p == NULL && (p = peer_new(w, key)) == NULL)
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
	maybe_gone(w, p);
}

void
registry_fwd_del(struct worker *w, const uint8_t key[DERP_KEY_LEN], int idx)
{
	struct peer	*p = registry_get(w->reg, key);

	if (p != NULL)
		fwd_del(w, p, idx);
}

/* Up to *budget more peers of link idx's clear; true when it is over. */
static bool
fwd_clear_step(struct worker *w, int idx, size_t *budget)
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

static void	reap_arm(struct worker *);

void
registry_fwd_clear(struct worker *w, int idx)
{
	struct registry	*r = w->reg;
	struct peer	*p, *np;
	size_t		 all = SIZE_MAX;

	/* Down again before the last clear ended: finish that one first
	 * (what it keeps as announced again, this one must not). */
	if (r->fwd_cur[idx] != NULL)
		(void)fwd_clear_step(w, idx, &all);
	if ((r->fwd_cur[idx] = registry_cursor_new(r)) != NULL) {
		r->fwd_dead |= 1u << idx;	/* stops routing now */
		reap_arm(w);
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
		maybe_gone(w, p);
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

/* x still routes: not a leftover of its sibling's death or resync. */
static bool
visible(const struct registry *r, const struct remote *x)
{
	return x->gen >= r->sibs[x->worker].floor;
}

/* Node-wide best connection by activity stamp (ties: lower worker). */
static struct remote *
best_remote(const struct registry *r, const struct peer *p)
{
	struct remote	*x, *best = NULL;

	for (x = p->remotes; x != NULL; x = x->next)
		if (visible(r, x) && (best == NULL || x->stamp > best->stamp ||
		    (x->stamp == best->stamp && x->worker < best->worker)))
			best = x;
	return best;
}

static struct conn *
best_local(const struct peer *p)
{
	struct conn	*best = NULL;
	uint32_t	 i;

	for (i = 0; i < p->n; i++)
		if (best == NULL || p->conns[i]->stamp > best->stamp)
			best = p->conns[i];
	return best;
}

size_t
registry_nconns(const struct registry *r, const struct peer *p)
{
	const struct remote	*x;
	size_t			 n = p->n;

	for (x = p->remotes; x != NULL; x = x->next)
		n += visible(r, x);
	return n;
}

int
registry_route(const struct registry *r, const struct peer *p,
    struct conn **local)
{
	struct remote	*x;
	struct conn	*c;

	*local = NULL;
	if (p->nremote == 0 || (x = best_remote(r, p)) == NULL) {
		*local = p->active;
		return -1;
	}
	c = best_local(p);
	if (c != NULL && (c->stamp > x->stamp || (c->stamp == x->stamp &&
	    c->w->id < x->worker))) {
		*local = c;
		return -1;
	}
	return x->worker;
}

struct conn *
registry_local_target(const struct registry *r, const struct peer *p)
{
	return p->nremote == 0 || best_remote(r, p) == NULL ? p->active :
	    best_local(p);
}

bool
registry_note_activity(struct worker *w, struct conn *c)
{
	struct peer	*p = c->peer;
	struct conn	*cur;

	if (p == NULL)
		return false;
	if (p->n >= 2) {
		c->spoke_seq = ++w->spoke_clock;
		p->last = c;
		p->active = c;
	}
	if (p->nremote == 0)
		return false;
	/* A node-wide duplicate spoke: if it is not already the target,
	 * it becomes so everywhere (announced on the bus). */
	if (registry_route(w->reg, p, &cur) == -1 && (cur == c ||
	    best_remote(w->reg, p) == NULL))
		return false;
	c->stamp = loop_clock_ns();
	return true;
}

static struct remote *
remote_find(const struct peer *p, uint16_t worker, uint64_t conn_id)
{
	struct remote	*x;

	for (x = p->remotes; x != NULL; x = x->next)
		if (x->worker == worker && x->conn_id == conn_id)
			return x;
	return NULL;
}

static void
sib_push(struct sib *s, struct remote *x)
{
	x->sprev = NULL;
	x->snext = s->head;
	if (s->head != NULL)
		s->head->sprev = x;
	else
		s->tail = x;
	s->head = x;
	x->gen = s->gen;
}

static void
sib_unlink(struct sib *s, struct remote *x)
{
	if (x->sprev != NULL)
		x->sprev->snext = x->snext;
	else
		s->head = x->snext;
	if (x->snext != NULL)
		x->snext->sprev = x->sprev;
	else
		s->tail = x->sprev;
}

int
registry_remote_add(struct worker *w, const struct bus_client *bc)
{
	struct registry	*r = w->reg;
	struct peer	*p;
	struct remote	*x;
	struct sib	*s;
	int		 fresh;

	if (bc->worker >= REG_WORKERS)
		return -EINVAL;
	s = &r->sibs[bc->worker];
	if ((p = registry_get(r, bc->key)) == NULL &&
	    (p = peer_new(w, bc->key)) == NULL)
		return -ENOMEM;
	if ((x = remote_find(p, bc->worker, bc->conn_id)) == NULL) {
		if ((x = calloc(1, sizeof(*x))) == NULL) {
			maybe_gone(w, p);
			return -ENOMEM;
		}
		x->next = p->remotes;
		p->remotes = x;
		p->nremote++;
		mesh_note(r, p, p->n == 0 && p->nremote == 1 &&
		    p->fwd_mask != 0);
		r->nremote++;
		x->p = p;
		x->worker = bc->worker;
		x->conn_id = bc->conn_id;
		fresh = 1;
	} else {
		/* Confirmed (a resync's snapshot) or back before its
		 * leftover was reaped: present again, for watchers. */
		fresh = !visible(r, x);
		sib_unlink(s, x);
	}
	sib_push(s, x);
	x->stamp = bc->stamp;
	x->flags = bc->flags;
	memcpy(x->ip16, bc->ip16, 16);
	x->port = bc->port;
	return fresh;
}

static void
remote_unlink(struct worker *w, struct peer *p, struct remote *x)
{
	struct remote	**pp;

	for (pp = &p->remotes; *pp != NULL; pp = &(*pp)->next)
		if (*pp == x) {
			*pp = x->next;
			break;
		}
	sib_unlink(&w->reg->sibs[x->worker], x);
	p->nremote--;
	mesh_note(w->reg, p, false);	/* it had a remote */
	w->reg->nremote--;
	free(x);
	maybe_gone(w, p);
}

void
registry_remote_del(struct worker *w, const struct bus_client *bc)
{
	struct peer	*p = registry_get(w->reg, bc->key);
	struct remote	*x;

	if (p != NULL && (x = remote_find(p, bc->worker, bc->conn_id)) != NULL)
		remote_unlink(w, p, x);
}

void
registry_remote_active(struct worker *w, const struct bus_client *bc)
{
	struct peer	*p = registry_get(w->reg, bc->key);
	struct remote	*x;

	if (p != NULL && (x = remote_find(p, bc->worker, bc->conn_id)) != NULL &&
	    bc->stamp > x->stamp)
		x->stamp = bc->stamp;
}

void
registry_remote_mark(struct worker *w, int worker)
{
	/* Entries older than the new gen are still routed: the snapshot
	 * confirms what is left of them, the sweep drops the rest. */
	if (worker >= 0 && worker < REG_WORKERS)
		w->reg->sibs[worker].gen++;
}

void
registry_remote_sweep(struct worker *w, int worker, bool all)
{
	struct sib	*s;

	if (worker < 0 || worker >= REG_WORKERS)
		return;
	s = &w->reg->sibs[worker];
	if (all)
		s->gen++;
	s->floor = s->gen;	/* the rest stops routing now */
	if (s->tail != NULL && s->tail->gen < s->floor)
		reap_arm(w);
}

/* Up to *budget more of s's leftovers (the tail below its floor);
 * true when none is left. */
static bool
sib_reap(struct worker *w, struct sib *s, size_t *budget)
{
	struct remote	*x;

	while ((x = s->tail) != NULL && x->gen < s->floor) {
		if (*budget == 0)
			return false;
		(*budget)--;
		w->m->registry_reaped++;
		remote_unlink(w, x->p, x);	/* may free x->p */
	}
	return true;
}

bool
registry_reap(struct worker *w, size_t budget)
{
	struct registry	*r = w->reg;
	bool		 done = true;
	int		 i;

	for (i = 0; i < REG_WORKERS; i++)
		if (!sib_reap(w, &r->sibs[i], &budget))
			done = false;
	for (i = 0; i < 32; i++)
		if (r->fwd_cur[i] != NULL && !fwd_clear_step(w, i, &budget))
			done = false;
	return done;
}

static void
reap_timer(struct loop_timer *t)
{
	struct worker	*w = t->arg;

	w->m->registry_reap_steps++;
	if (!registry_reap(w, REGISTRY_REAP_STEP) &&
	    loop_timer_set(w->loop, &w->reg->reap, REAP_DELAY_MS) < 0)
		(void)registry_reap(w, SIZE_MAX);	/* no memory: finish */
}

/* Reap on the next turns, a step per turn, from a 1 ms timer. */
static void
reap_arm(struct worker *w)
{
	struct registry	*r = w->reg;

	if (r->loop != NULL && loop_timer_armed(&r->reap))
		return;
	if (w->loop == NULL) {
		(void)registry_reap(w, SIZE_MAX);
		return;
	}
	r->loop = w->loop;
	loop_timer_init(&r->reap, reap_timer, w);
	if (loop_timer_set(w->loop, &r->reap, REAP_DELAY_MS) < 0)
		(void)registry_reap(w, SIZE_MAX);
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
	} else if ((x = best_remote(r, p)) != NULL) {
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

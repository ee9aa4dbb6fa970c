/*
 * The worker's key table (PROTOCOL.md 5.2, 5.3, 5.7): key -> set of local
 * connections with the lastWriterIsActive duplicate policy, and the
 * "who received from whom" edges that drive PeerGone(Disconnected).
 * Hashes are SipHash (libsodium) under a random key: peers choose keys.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/bus.h"
#include "worker/wk.h"

/* A connection of this key on a sibling worker, as the bus reported it. */
struct remote {
	struct remote	*next;
	uint16_t	 worker;
	uint64_t	 conn_id;
	uint64_t	 stamp;
	uint8_t		 flags;
	uint8_t		 ip16[16];
	uint16_t	 port;
	bool		 stale;
};

struct peer {
	struct peer	*hnext;
	uint8_t		 key[DERP_KEY_LEN];
	struct conn	**conns;
	uint32_t	 n, cap;
	struct conn	*active, *last;
	struct remote	*remotes;	/* node-wide: sibling workers */
	uint32_t	 nremote;
	uint32_t	 fwd_mask;	/* mesh links that announced key */
	int		 fwd_pref;	/* link used, -1 = none (6.4) */
	struct saw_edge	*seen_by;	/* conns that received from key */
};

struct saw_edge {
	struct conn	*c;
	struct peer	*p;
	struct saw_edge	*hnext;
	struct saw_edge	*pnext, *pprev;
	struct saw_edge	*cnext, *cprev;
};

struct registry {
	uint8_t		  hkey[crypto_shorthash_KEYBYTES];
	struct peer	**b;
	size_t		  nb, n;
	struct saw_edge	**eb;
	size_t		  neb, ne;
	size_t		  nlocal, nremote;	/* connections node-wide */
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
	r->nb = 1024;
	r->neb = 1024;
	r->b = calloc(r->nb, sizeof(*r->b));
	r->eb = calloc(r->neb, sizeof(*r->eb));
	if (r->b == NULL || r->eb == NULL) {
		registry_free(r);
		return NULL;
	}
	return r;
}

void
registry_free(struct registry *r)
{
	size_t		 i;
	struct peer	*p, *np;
	struct saw_edge	*e, *ne;

	if (r == NULL)
		return;
	for (i = 0; r->b != NULL && i < r->nb; i++)
		for (p = r->b[i]; p != NULL; p = np) {
			np = p->hnext;
			while (p->remotes != NULL) {
				struct remote	*x = p->remotes;

				p->remotes = x->next;
				free(x);
			}
			free(p->conns);
			free(p);
		}
	for (i = 0; r->eb != NULL && i < r->neb; i++)
		for (e = r->eb[i]; e != NULL; e = ne) {
			ne = e->hnext;
			free(e);
		}
	free(r->b);
	free(r->eb);
	free(r);
}

static size_t
khash(const struct registry *r, const uint8_t key[DERP_KEY_LEN])
{
	uint64_t	h;

	crypto_shorthash((unsigned char *)&h, key, DERP_KEY_LEN, r->hkey);
	return (size_t)h;
}

static size_t
ehash(const struct conn *c, const struct peer *p)
{
	uint64_t	h = (uint64_t)(uintptr_t)c * 0x9e3779b97f4a7c15ULL ^
			    (uint64_t)(uintptr_t)p * 0xc2b2ae3d27d4eb4fULL;

	return (size_t)(h ^ (h >> 29));
}

static void
grow(struct registry *r)
{
	struct peer	**nb, *p, *np;
	size_t		  i, nn = r->nb * 2, j;

	if ((nb = calloc(nn, sizeof(*nb))) == NULL)
		return;		/* keep the old table: slower, correct */
	for (i = 0; i < r->nb; i++)
		for (p = r->b[i]; p != NULL; p = np) {
			np = p->hnext;
			j = khash(r, p->key) & (nn - 1);
			p->hnext = nb[j];
			nb[j] = p;
		}
	free(r->b);
	r->b = nb;
	r->nb = nn;
}

static void
egrow(struct registry *r)
{
	struct saw_edge	**nb, *e, *ne;
	size_t		  i, nn = r->neb * 2, j;

	if ((nb = calloc(nn, sizeof(*nb))) == NULL)
		return;
	for (i = 0; i < r->neb; i++)
		for (e = r->eb[i]; e != NULL; e = ne) {
			ne = e->hnext;
			j = ehash(e->c, e->p) & (nn - 1);
			e->hnext = nb[j];
			nb[j] = e;
		}
	free(r->eb);
	r->eb = nb;
	r->neb = nn;
}

struct peer *
registry_get(struct registry *r, const uint8_t key[DERP_KEY_LEN])
{
	struct peer	*p;

	for (p = r->b[khash(r, key) & (r->nb - 1)]; p != NULL; p = p->hnext)
		if (memcmp(p->key, key, DERP_KEY_LEN) == 0)
			return p;
	return NULL;
}

size_t
registry_count(const struct registry *r)
{
	return r->n;
}

size_t
registry_mesh_only(const struct registry *r)
{
	const struct peer	*p;
	size_t			 i, k = 0;

	/* A scrape-time walk: the add and remove paths stay lean. */
	for (i = 0; i < r->nb; i++)
		for (p = r->b[i]; p != NULL; p = p->hnext)
			k += p->n == 0 && p->nremote == 0 && p->fwd_mask != 0;
	return k;
}

struct conn *
registry_active(const struct peer *p)
{
	return p->active;
}

size_t
registry_nconns(const struct peer *p)
{
	return p->n + p->nremote;
}

static struct peer *
peer_new(struct worker *w, const uint8_t key[DERP_KEY_LEN])
{
	struct registry	*r = w->reg;
	struct peer	*p;
	size_t		 i;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	if ((p->conns = calloc(1, sizeof(*p->conns))) == NULL) {
		free(p);
		return NULL;
	}
	p->cap = 1;
	memcpy(p->key, key, DERP_KEY_LEN);
	p->fwd_pref = -1;
	if (r->n >= r->nb)
		grow(r);
	i = khash(r, p->key) & (r->nb - 1);
	p->hnext = r->b[i];
	r->b[i] = p;
	r->n++;
	w->m->clients_local = r->n;
	w->m->clients_total = r->n;
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
	struct saw_edge	**pp;

	for (pp = &r->eb[ehash(e->c, e->p) & (r->neb - 1)]; *pp != NULL;
	    pp = &(*pp)->hnext)
		if (*pp == e) {
			*pp = e->hnext;
			break;
		}
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
	r->ne--;
	free(e);
}

/* The key left: watchers and every receiver of it learn so. */
static void
peer_gone(struct worker *w, struct peer *p)
{
	struct registry	*r = w->reg;
	struct peer	**pp;
	struct saw_edge	*e;

	for (pp = &r->b[khash(r, p->key) & (r->nb - 1)]; *pp != NULL;
	    pp = &(*pp)->hnext)
		if (*pp == p) {
			*pp = p->hnext;
			break;
		}
	r->n--;
	w->m->clients_local = r->n;
	w->m->clients_total = r->n;
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

int
registry_forwarder(const struct peer *p)
{
	return p->fwd_mask != 0 ? p->fwd_pref : -1;
}

int
registry_fwd_add(struct worker *w, const uint8_t key[DERP_KEY_LEN], int idx)
{
	struct peer	*p = registry_get(w->reg, key);

	if (p == NULL && (p = peer_new(w, key)) == NULL)
		return -ENOMEM;
	if (p->fwd_mask == 0)
		p->fwd_pref = idx;	/* the first to report it is used */
	p->fwd_mask |= 1u << idx;
	return 0;
}

static void
fwd_del(struct worker *w, struct peer *p, int idx)
{
	int	i;

	if ((p->fwd_mask & (1u << idx)) == 0) {
		w->m->packet_forwarder_delete_other_value++;
		return;
	}
	p->fwd_mask &= ~(1u << idx);
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

void
registry_fwd_clear(struct worker *w, int idx)
{
	struct registry	*r = w->reg;
	struct peer	*p, *np;
	size_t		 i;

	for (i = 0; i < r->nb; i++)
		for (p = r->b[i]; p != NULL; p = np) {
			np = p->hnext;
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

/* Node-wide best connection by activity stamp (ties: lower worker). */
static struct remote *
best_remote(const struct peer *p)
{
	struct remote	*x, *best = NULL;

	for (x = p->remotes; x != NULL; x = x->next)
		if (best == NULL || x->stamp > best->stamp ||
		    (x->stamp == best->stamp && x->worker < best->worker))
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

int
registry_route(const struct peer *p, struct conn **local)
{
	struct remote	*r;
	struct conn	*c;

	*local = NULL;
	if (p->nremote == 0) {
		*local = p->active;
		return -1;
	}
	r = best_remote(p);
	c = best_local(p);
	if (c != NULL && (c->stamp > r->stamp || (c->stamp == r->stamp &&
	    c->w->id < r->worker))) {
		*local = c;
		return -1;
	}
	return r->worker;
}

struct conn *
registry_local_target(const struct peer *p)
{
	return p->nremote == 0 ? p->active : best_local(p);
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
	if (registry_route(p, &cur) == -1 && cur == c)
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

int
registry_remote_add(struct worker *w, const struct bus_client *bc)
{
	struct peer	*p = registry_get(w->reg, bc->key);
	struct remote	*x;
	bool		 fresh = false;

	if (p == NULL && (p = peer_new(w, bc->key)) == NULL)
		return -ENOMEM;
	if ((x = remote_find(p, bc->worker, bc->conn_id)) == NULL) {
		if ((x = calloc(1, sizeof(*x))) == NULL) {
			maybe_gone(w, p);
			return -ENOMEM;
		}
		x->next = p->remotes;
		p->remotes = x;
		p->nremote++;
		w->reg->nremote++;
		x->worker = bc->worker;
		x->conn_id = bc->conn_id;
		fresh = true;
	}
	x->stamp = bc->stamp;
	x->flags = bc->flags;
	memcpy(x->ip16, bc->ip16, 16);
	x->port = bc->port;
	x->stale = false;
	return fresh ? 1 : 0;
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
	p->nremote--;
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
	struct registry	*r = w->reg;
	struct peer	*p;
	struct remote	*x;
	size_t		 i;

	for (i = 0; i < r->nb; i++)
		for (p = r->b[i]; p != NULL; p = p->hnext)
			for (x = p->remotes; x != NULL; x = x->next)
				if (x->worker == worker)
					x->stale = true;
}

void
registry_remote_sweep(struct worker *w, int worker, bool all)
{
	struct registry	*r = w->reg;
	struct peer	*p, *np;
	struct remote	*x, *nx;
	size_t		 i;

	/* peer_gone may free p: keep the next pointer first.  Buckets are
	 * not resized while sweeping (removal never grows). */
	for (i = 0; i < r->nb; i++)
		for (p = r->b[i]; p != NULL; p = np) {
			np = p->hnext;
			for (x = p->remotes; x != NULL; x = nx) {
				nx = x->next;
				if (x->worker == worker && (all || x->stale)) {
					bool	last = p->nremote == 1 &&
						    p->n == 0;

					remote_unlink(w, p, x);
					if (last)
						break;	/* p is freed */
				}
			}
		}
}

void
registry_foreach_local(struct registry *r, void (*fn)(struct conn *c,
    void *arg), void *arg)
{
	size_t		 i;
	uint32_t	 k;
	struct peer	*p;

	for (i = 0; i < r->nb; i++)
		for (p = r->b[i]; p != NULL; p = p->hnext)
			for (k = 0; k < p->n; k++)
				fn(p->conns[k], arg);
}

void
registry_foreach_present(struct registry *r, void (*fn)(void *arg,
    const uint8_t key[DERP_KEY_LEN], const uint8_t ip16[16], uint16_t port,
    uint8_t flags), void *arg)
{
	size_t		 i;
	struct peer	*p;
	struct conn	*c;
	struct remote	*x;

	for (i = 0; i < r->nb; i++)
		for (p = r->b[i]; p != NULL; p = p->hnext) {
			if (registry_route(p, &c) == -1) {
				if (c != NULL)
					fn(arg, p->key, c->ip16, c->port,
					    session_flags(c));
			} else if ((x = best_remote(p)) != NULL) {
				fn(arg, p->key, x->ip16, x->port, x->flags);
			}
		}
}

void
registry_note_saw(struct worker *w, struct conn *dst, struct peer *src)
{
	struct registry	*r = w->reg;
	struct saw_edge	*e;
	size_t		 i;

	if (src == NULL || dst->saw_last == src)
		return;
	i = ehash(dst, src) & (r->neb - 1);
	for (e = r->eb[i]; e != NULL; e = e->hnext)
		if (e->c == dst && e->p == src) {
			dst->saw_last = src;
			return;
		}
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return;		/* PeerGone is advisory: skip it */
	if (r->ne >= r->neb) {
		egrow(r);
		i = ehash(dst, src) & (r->neb - 1);
	}
	e->c = dst;
	e->p = src;
	e->hnext = r->eb[i];
	r->eb[i] = e;
	e->pnext = src->seen_by;
	if (src->seen_by != NULL)
		src->seen_by->pprev = e;
	src->seen_by = e;
	e->cnext = dst->saw;
	if (dst->saw != NULL)
		dst->saw->cprev = e;
	dst->saw = e;
	r->ne++;
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

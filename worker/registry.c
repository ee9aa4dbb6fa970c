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

#include "worker/wk.h"

struct peer {
	struct peer	*hnext;
	uint8_t		 key[DERP_KEY_LEN];
	struct conn	**conns;
	uint32_t	 n, cap;
	struct conn	*active, *last;
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
};

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

struct conn *
registry_active(const struct peer *p)
{
	return p->active;
}

size_t
registry_nconns(const struct peer *p)
{
	return p->n;
}

int
registry_add(struct worker *w, struct conn *c)
{
	struct registry	*r = w->reg;
	struct peer	*p = registry_get(r, c->key);
	struct conn	**nc;
	size_t		  i;

	if (p == NULL) {
		if ((p = calloc(1, sizeof(*p))) == NULL)
			return -ENOMEM;
		if ((p->conns = calloc(1, sizeof(*p->conns))) == NULL) {
			free(p);
			return -ENOMEM;
		}
		p->cap = 1;
		memcpy(p->key, c->key, DERP_KEY_LEN);
		if (r->n >= r->nb)
			grow(r);
		i = khash(r, p->key) & (r->nb - 1);
		p->hnext = r->b[i];
		r->b[i] = p;
		r->n++;
	}
	if (p->n == p->cap) {
		/* p->n >= 1 here: a failure leaves the set as it was. */
		if ((nc = realloc(p->conns, p->cap * 2 * sizeof(*nc))) == NULL)
			return -ENOMEM;
		p->conns = nc;
		p->cap *= 2;
	}
	p->conns[p->n++] = c;
	c->peer = p;
	c->spoke_seq = 0;
	p->active = c;		/* the newest connection wins (5.3) */
	if (p->n == 2) {
		w->m.current_dup_client_keys++;
		w->m.current_dup_client_conns += 2;
		w->m.total_dup_client_conns++;
		p->conns[0]->spoke_seq = 0;
		p->last = NULL;
	} else if (p->n > 2) {
		w->m.current_dup_client_conns++;
		w->m.total_dup_client_conns++;
	}
	w->m.clients_local = r->n;
	w->m.clients_total = r->n;
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
	w->m.clients_local = r->n;
	w->m.clients_total = r->n;
	session_peer_left(w, p->key);
	while ((e = p->seen_by) != NULL) {
		struct conn	*to = e->c;

		edge_unlink(r, e);
		session_notify_gone(to, p->key);
	}
	free(p->conns);
	free(p);
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
	if (p->n == 0) {
		peer_gone(w, p);
		return;
	}
	if (p->n == 1) {
		w->m.current_dup_client_keys--;
		w->m.current_dup_client_conns -= 2;
		p->active = p->conns[0];
		p->conns[0]->spoke_seq = 0;
		p->last = NULL;
		return;
	}
	w->m.current_dup_client_conns--;
	for (i = 0; i < p->n; i++)
		if (p->conns[i]->spoke_seq > 0 && (best == NULL ||
		    p->conns[i]->spoke_seq > best->spoke_seq))
			best = p->conns[i];
	p->last = best;
	p->active = best;
}

void
registry_note_activity(struct worker *w, struct conn *c)
{
	struct peer	*p = c->peer;

	if (p == NULL || p->n < 2)
		return;
	c->spoke_seq = ++w->spoke_clock;
	p->last = c;
	p->active = c;
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
registry_forget_saw(struct conn *c)
{
	while (c->saw != NULL)
		edge_unlink(c->w->reg, c->saw);
	c->saw_last = NULL;
}

void
registry_foreach_active(struct registry *r,
    void (*fn)(struct conn *active, void *arg), void *arg)
{
	size_t		 i;
	struct peer	*p;

	for (i = 0; i < r->nb; i++)
		for (p = r->b[i]; p != NULL; p = p->hnext)
			if (p->active != NULL)
				fn(p->active, arg);
}

void
registry_close_key(struct worker *w, const uint8_t key[DERP_KEY_LEN])
{
	struct peer	*p;

	while ((p = registry_get(w->reg, key)) != NULL && p->n > 0)
		conn_close(p->conns[0], "closed_by_mesh");
}

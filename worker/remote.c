/*
 * The registry's node-wide half: connections of a key on sibling
 * workers as the presence bus reports them, and where a packet goes
 * among them and the local ones (the most recently active connection
 * node-wide).  A sibling's entries are on a list of their own, newest
 * first, stamped with its generation: a resync's mark and a death
 * bump it, a sweep raises the floor below which entries stop routing
 * at once; those leftovers are the list's tail and leave a bounded
 * step per loop turn (registry_reap), as do a broken mesh link's
 * forwarders (registry.c).  The types are in worker/registry_int.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/bus.h"
#include "worker/registry_int.h"
#include "worker/wk.h"

#define REAP_DELAY_MS	1	/* 0 would run again in the same turn */

/* x still routes: not a leftover of its sibling's death or resync. */
static bool
visible(const struct registry *r, const struct remote *x)
{
	return x->gen >= r->sibs[x->worker].floor;
}

/* Node-wide best connection by activity stamp (ties: lower worker). */
struct remote *
remote_best(const struct registry *r, const struct peer *p)
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
	if (p->nremote == 0 || (x = remote_best(r, p)) == NULL) {
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
	return p->nremote == 0 || remote_best(r, p) == NULL ? p->active :
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
	    remote_best(w->reg, p) == NULL))
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
	    (p = registry_peer_new(w, bc->key)) == NULL)
		return -ENOMEM;
	if ((x = remote_find(p, bc->worker, bc->conn_id)) == NULL) {
		if ((x = calloc(1, sizeof(*x))) == NULL) {
			registry_maybe_gone(w, p);
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
	registry_node_left(w, p);
	registry_maybe_gone(w, p);
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

	if (p != NULL && (x = remote_find(p, bc->worker,
	    bc->conn_id)) != NULL && bc->stamp > x->stamp)
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
		remote_reap_arm(w);
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
		if (r->fwd_cur[i] != NULL && !registry_fwd_step(w, i, &budget))
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

void
remote_reap_arm(struct worker *w)
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

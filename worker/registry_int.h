/*
 * The registry's types, shared by its two halves: registry.c (keys,
 * local sets, forwarders, cursors, PeerGone edges) and remote.c (the
 * siblings' entries, routing across workers, the reap of leftovers).
 * Nothing else includes it: the API is in worker/wk.h.
 */
#ifndef WORKER_REGISTRY_INT_H
#define WORKER_REGISTRY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "common/loop.h"
#include "derp/derp.h"
#include "worker/ihash.h"

#define REG_WORKERS	256	/* conf: workers <= 256 */

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

/* Keys known only through mesh links: kept as a count, changed where
 * a peer's sets change (mesh_note after each), not walked per scrape. */
static inline bool
mesh_only(const struct peer *p)
{
	return p->n == 0 && p->nremote == 0 && p->fwd_mask != 0;
}

static inline void
mesh_note(struct registry *r, const struct peer *p, bool was)
{
	if (mesh_only(p) != was)
		r->nmesh = was ? r->nmesh - 1 : r->nmesh + 1;
}

struct worker;

/* registry.c: a new, empty entry for key (NULL: no memory); after a
 * local connection or sibling entry of p went, PeerGone to the watchers
 * if that was p's last (they are told of node-wide presence only, never
 * of keys a mesh link forwards); p freed, with its PeerGone to those
 * that received from it, once nothing holds it; up to *budget more
 * peers of link idx's forwarder clear, true when it is over. */
struct peer	*registry_peer_new(struct worker *w,
		    const uint8_t key[DERP_KEY_LEN]);
void		 registry_node_left(struct worker *w, struct peer *p);
void		 registry_maybe_gone(struct worker *w, struct peer *p);
bool		 registry_fwd_step(struct worker *w, int idx, size_t *budget);

/* remote.c: p's node-wide best sibling entry still routing, or NULL;
 * reap on the next turns (a 1 ms timer, a step a turn). */
struct remote	*remote_best(const struct registry *r, const struct peer *p);
void		 remote_reap_arm(struct worker *w);

#endif

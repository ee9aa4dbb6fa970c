/*
 * An intrusive chained hash table that grows incrementally, as Redis's
 * dict does: when it fills, a table twice the size is allocated and
 * each later operation moves a few buckets into it, so no single call
 * rehashes every entry (100,000 keys at once would stall a worker's
 * loop for milliseconds).  Meanwhile a key's chain is in the old table
 * until its bucket has moved, then in the new one: a lookup still walks
 * one chain.
 * Entries embed struct ihnode and carry their hash; the table never
 * allocates or frees them.
 */
#ifndef WORKER_IHASH_H
#define WORKER_IHASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ihnode {
	struct ihnode	*next;
	uint64_t	 hash;
};

struct ihash {
	struct ihnode	**t[2];		/* t[1]: the larger one, while
					 * migrating */
	size_t		  size[2];	/* buckets, powers of two */
	size_t		  n;		/* entries in both */
	size_t		  ridx;		/* t[0] buckets below it moved */
};

/* Buckets moved per operation while migrating (and ten times as many
 * empty ones visited at most). */
#define IHASH_STEP	4

/* size: initial buckets, a power of two.  0 or -ENOMEM. */
int		 ihash_init(struct ihash *h, size_t size)
		    __attribute__((warn_unused_result));
/* Frees the tables, not the entries. */
void		 ihash_fini(struct ihash *h);
/* e->hash set by the caller; e not in the table. */
void		 ihash_insert(struct ihash *h, struct ihnode *e);
/* e is in the table. */
void		 ihash_remove(struct ihash *h, struct ihnode *e);
/* The first entry with this hash for which eq(e, key) holds, or NULL. */
struct ihnode	*ihash_find(struct ihash *h, uint64_t hash,
		    bool (*eq)(const struct ihnode *e, const void *key),
		    const void *key);
/* Move up to n more buckets (tests: SIZE_MAX finishes). */
void		 ihash_step(struct ihash *h, size_t n);
static inline bool
ihash_migrating(const struct ihash *h)
{
	return h->t[1] != NULL;
}

#endif

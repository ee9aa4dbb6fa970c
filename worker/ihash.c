/*
 * Incremental rehashing for the registry's tables (worker/ihash.h): the
 * growth policy (load factor 1, doubling), the bounded migration step
 * and lookups across both tables.  What an entry is, and its hash, is
 * the caller's.
 */
#include <errno.h>
#include <stdlib.h>

#include "worker/ihash.h"

int
ihash_init(struct ihash *h, size_t size)
{
	h->t[0] = calloc(size, sizeof(*h->t[0]));
	h->t[1] = NULL;
	h->size[0] = size;
	h->size[1] = 0;
	h->n = 0;
	h->ridx = 0;
	return h->t[0] != NULL ? 0 : -ENOMEM;
}

void
ihash_fini(struct ihash *h)
{
	free(h->t[0]);
	free(h->t[1]);
	h->t[0] = h->t[1] = NULL;
	h->size[0] = h->size[1] = 0;
	h->n = 0;
}

void
ihash_step(struct ihash *h, size_t n)
{
	struct ihnode	*e, *ne;
	size_t		 empty = n > SIZE_MAX / 10 ? SIZE_MAX : n * 10, j;

	if (h->t[1] == NULL)
		return;
	while (n > 0 && h->ridx < h->size[0]) {
		if ((e = h->t[0][h->ridx]) == NULL) {
			h->ridx++;
			if (--empty == 0)
				return;
			continue;
		}
		for (; e != NULL; e = ne) {
			ne = e->next;
			j = (size_t)e->hash & (h->size[1] - 1);
			e->next = h->t[1][j];
			h->t[1][j] = e;
		}
		h->t[0][h->ridx++] = NULL;
		n--;
	}
	if (h->ridx < h->size[0])
		return;
	free(h->t[0]);
	h->t[0] = h->t[1];
	h->size[0] = h->size[1];
	h->t[1] = NULL;
	h->size[1] = 0;
	h->ridx = 0;
}

/* The chain e would be in: t[1]'s once its t[0] bucket has moved. */
static struct ihnode **
chain(struct ihash *h, uint64_t hash)
{
	size_t	i = (size_t)hash & (h->size[0] - 1);

	if (h->t[1] != NULL && i < h->ridx)
		return &h->t[1][(size_t)hash & (h->size[1] - 1)];
	return &h->t[0][i];
}

void
ihash_insert(struct ihash *h, struct ihnode *e)
{
	struct ihnode	**pp;

	if (h->t[1] == NULL && h->n >= h->size[0] &&
	    h->size[0] <= SIZE_MAX / 2 / sizeof(*h->t[1]) &&
	    (h->t[1] = calloc(h->size[0] * 2, sizeof(*h->t[1]))) != NULL) {
		h->size[1] = h->size[0] * 2;
		h->ridx = 0;
	}	/* no memory: stay, slower and correct */
	ihash_step(h, IHASH_STEP);
	/* Where lookups will look: a bucket not yet moved takes it along
	 * when it moves. */
	pp = chain(h, e->hash);
	e->next = *pp;
	*pp = e;
	h->n++;
}

void
ihash_remove(struct ihash *h, struct ihnode *e)
{
	struct ihnode	**pp;

	for (pp = chain(h, e->hash); *pp != NULL; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			h->n--;
			break;
		}
	ihash_step(h, IHASH_STEP);
}

struct ihnode *
ihash_find(struct ihash *h, uint64_t hash,
    bool (*eq)(const struct ihnode *e, const void *key), const void *key)
{
	struct ihnode	*e;

	if (h->t[1] != NULL)
		ihash_step(h, 1);
	for (e = *chain(h, hash); e != NULL; e = e->next)
		if (e->hash == hash && eq(e, key))
			return e;
	return NULL;
}

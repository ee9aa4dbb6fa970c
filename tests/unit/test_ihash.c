/*
 * Unit tests for worker/ihash.c, the incrementally growing table under
 * the registry: tens of thousands of entries inserted, looked up and
 * removed in a random order (migrations under way most of the time),
 * compared after every operation batch with a reference (a flag per
 * entry); a growth is spread over many operations, each moving a
 * bounded number of buckets; entries that collide in every bucket.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "worker/ihash.h"

#define N	40000

struct ent {
	struct ihnode	h;
	uint32_t	id;
	bool		in;	/* the reference: in the table */
};

static struct ent	ents[N];

static bool
eq(const struct ihnode *e, const void *key)
{
	return ((const struct ent *)(const void *)e)->id ==
	    *(const uint32_t *)key;
}

static uint64_t
mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

static struct ent *
find(struct ihash *h, uint32_t id)
{
	return (struct ent *)(void *)ihash_find(h, ents[id].h.hash, eq, &id);
}

/* Every entry found exactly when the reference says it is in. */
static void
check_all(struct ihash *h)
{
	size_t		n = 0;
	uint32_t	i;

	for (i = 0; i < N; i++) {
		if (ents[i].in) {
			assert_ptr_equal(find(h, i), &ents[i]);
			n++;
		} else {
			assert_null(find(h, i));
		}
	}
	assert_int_equal(h->n, n);
}

static void
setup_ents(uint64_t (*hf)(uint64_t))
{
	uint32_t	i;

	memset(ents, 0, sizeof(ents));
	for (i = 0; i < N; i++) {
		ents[i].id = i;
		ents[i].h.hash = hf(i);
	}
}

static void
test_ihash_random_ops_match_reference(void **state)
{
	struct ihash	h;
	uint64_t	rnd = 12345;
	size_t		op, migrating_ops = 0;
	uint32_t	i;

	(void)state;
	setup_ents(mix);
	assert_int_equal(ihash_init(&h, 16), 0);
	for (op = 0; op < 6 * N; op++) {
		rnd = mix(rnd + op);
		i = (uint32_t)(rnd % N);
		/* Mostly inserts early, so it grows many times; then a
		 * mix. */
		if (!ents[i].in && (op < 2 * N || rnd % 3 != 0)) {
			ihash_insert(&h, &ents[i].h);
			ents[i].in = true;
		} else if (ents[i].in) {
			ihash_remove(&h, &ents[i].h);
			ents[i].in = false;
		}
		migrating_ops += ihash_migrating(&h);
		/* The entry just touched, and a random other one. */
		if (ents[i].in)
			assert_ptr_equal(find(&h, i), &ents[i]);
		else
			assert_null(find(&h, i));
		i = (uint32_t)(mix(rnd) % N);
		if (ents[i].in)
			assert_ptr_equal(find(&h, i), &ents[i]);
		else
			assert_null(find(&h, i));
		if (op % 20000 == 0)
			check_all(&h);
	}
	check_all(&h);
	/* Lookups, inserts and removes did happen during migrations. */
	assert_true(migrating_ops > 1000);
	ihash_step(&h, SIZE_MAX);
	assert_false(ihash_migrating(&h));
	check_all(&h);
	ihash_fini(&h);
}

static void
test_ihash_growth_is_spread(void **state)
{
	struct ihash	h;
	size_t		before, most = 0, ops = 0, moved;
	uint32_t	i;

	(void)state;
	setup_ents(mix);
	assert_int_equal(ihash_init(&h, 1024), 0);
	for (i = 0; i < 1024; i++)
		ihash_insert(&h, &ents[i].h);
	assert_false(ihash_migrating(&h));
	/* The insert that fills it starts a migration, and no insert
	 * moves more than a step of buckets (ten times as many empty). */
	for (i = 1024; i < 2048; i++) {
		before = ihash_migrating(&h) ? h.ridx : 0;
		ihash_insert(&h, &ents[i].h);
		ents[i].in = true;
		if (ihash_migrating(&h)) {
			ops++;
			moved = h.ridx - before;
			if (moved > most)
				most = moved;
		}
	}
	for (i = 0; i < 1024; i++)
		ents[i].in = true;
	assert_true(ops > 100);
	assert_true(most <= IHASH_STEP * 10);
	assert_int_equal(h.size[0], 2048);	/* done by now */
	assert_false(ihash_migrating(&h));
	check_all(&h);
	ihash_fini(&h);
}

static uint64_t
same(uint64_t x)
{
	return x & 7;	/* eight hashes for everything */
}

static void
test_ihash_collisions(void **state)
{
	struct ihash	h;
	uint32_t	i;

	(void)state;
	setup_ents(same);
	assert_int_equal(ihash_init(&h, 4), 0);
	for (i = 0; i < 3000; i++) {
		ihash_insert(&h, &ents[i].h);
		ents[i].in = true;
	}
	for (i = 0; i < 3000; i += 2) {
		ihash_remove(&h, &ents[i].h);
		ents[i].in = false;
	}
	check_all(&h);
	ihash_fini(&h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ihash_random_ops_match_reference),
		cmocka_unit_test(test_ihash_growth_is_spread),
		cmocka_unit_test(test_ihash_collisions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

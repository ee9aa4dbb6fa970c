/*
 * Log-linear histogram (hist.h).  Values below HIST_SUB get a bucket
 * each; above, every power of two is split into HIST_SUB equal buckets,
 * so a bucket is never wider than 1 / HIST_SUB of its values.
 */
#include <math.h>
#include <string.h>

#include "common/hist.h"

void
hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

unsigned
hist_index(uint64_t v)
{
	unsigned	e;

	if (v < HIST_SUB)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v);	/* >= HIST_SUB_BITS */
	return (e - HIST_SUB_BITS + 1) * HIST_SUB +
	    (unsigned)((v >> (e - HIST_SUB_BITS)) - HIST_SUB);
}

uint64_t
hist_bucket_high(unsigned idx)
{
	unsigned	e, shift;
	uint64_t	m;

	if (idx < HIST_SUB)
		return idx;
	e = idx / HIST_SUB + HIST_SUB_BITS - 1;
	shift = e - HIST_SUB_BITS;
	m = (uint64_t)(idx % HIST_SUB) + HIST_SUB;
	return (m << shift) + ((uint64_t)1 << shift) - 1;
}

void
hist_add(struct hist *h, uint64_t v)
{
	h->c[hist_index(v)]++;
	h->n++;
	h->sum = h->sum + v < h->sum ? UINT64_MAX : h->sum + v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

void
hist_merge(struct hist *dst, const struct hist *src)
{
	unsigned	i;

	for (i = 0; i < HIST_NBUCKETS; i++)
		dst->c[i] += src->c[i];
	dst->n += src->n;
	dst->sum = dst->sum + src->sum < dst->sum ? UINT64_MAX :
	    dst->sum + src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t
hist_quantile(const struct hist *h, double q)
{
	uint64_t	want, seen = 0, v;
	unsigned	i;

	if (h->n == 0)
		return 0;
	if (q <= 0)
		return h->min;
	if (q >= 1)
		return h->max;
	want = (uint64_t)ceil(q * (double)h->n);
	if (want == 0)
		want = 1;
	for (i = 0; i < HIST_NBUCKETS; i++) {
		seen += h->c[i];
		if (seen >= want)
			break;
	}
	if (i == HIST_NBUCKETS)
		return h->max;
	v = hist_bucket_high(i);
	return v < h->min ? h->min : v > h->max ? h->max : v;
}

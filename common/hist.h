/*
 * Log-linear (HDR-style) histogram of unsigned 64-bit values, such as
 * latencies in nanoseconds: exact below 2^HIST_SUB_BITS, and within
 * 1 / 2^HIST_SUB_BITS (under 1 %) of the value above.  Fixed size, no
 * allocation, no locks: one writer per histogram, merged afterwards.
 */
#ifndef COMMON_HIST_H
#define COMMON_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS	7
#define HIST_SUB	(1u << HIST_SUB_BITS)
#define HIST_NBUCKETS	((64 - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
	uint64_t	n;		/* values recorded */
	uint64_t	min, max;	/* exact; min UINT64_MAX when empty */
	uint64_t	sum;		/* saturating */
	uint64_t	c[HIST_NBUCKETS];
};

void		hist_init(struct hist *h);
void		hist_add(struct hist *h, uint64_t v);
/* dst += src. */
void		hist_merge(struct hist *dst, const struct hist *src);
/*
 * The q-quantile (0 <= q <= 1): the smallest recorded bucket whose
 * cumulative count reaches ceil(q * n), reported as that bucket's
 * highest value, clamped to [min, max] (so q = 1 is the exact max).
 * 0 when empty.
 */
uint64_t	hist_quantile(const struct hist *h, double q);
/* Bucket index of v and the highest value of a bucket (for tests). */
unsigned	hist_index(uint64_t v);
uint64_t	hist_bucket_high(unsigned idx);

#endif

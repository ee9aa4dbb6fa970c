/*
 * Fuzz derpprobe --daemon's request reader (tools/derpprobe_http.c) as
 * the daemon drives it: a 4 KiB read buffer, answers, pipelining and
 * keep-alive.  data[0]: bytes per read (0 = 4096), so the input arrives
 * split as TCP delivers it; the answers must not depend on the split,
 * so every input is also run whole and the two runs compared.  Only a
 * refusal's code may differ: a head bad in two ways (a long target and
 * a bad byte) is refused for the one http-parser reports first, which
 * depends on where its callbacks fall.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/derpprobe_http.h"

#define BUF	4096
#define ANSWERS	128

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
refused(const struct phttp_req *r)
{
	return r->status != 200 && r->status != 404;
}

static bool
same(const struct phttp_req *a, const struct phttp_req *b)
{
	if (refused(a) || refused(b))
		return refused(a) && refused(b);
	return a->status == b->status && a->page == b->page &&
	    a->head == b->head && a->keep_alive == b->keep_alive;
}

static void
check(const struct phttp_req *r)
{
	char	head[512];
	ssize_t	n;
	char	want[16];

	switch (r->status) {
	case 200:
		if (r->page == PHTTP_PAGE_NONE)
			abort();
		break;
	case 404:
		if (r->page != PHTTP_PAGE_NONE)
			abort();
		break;
	case 400: case 405: case 413: case 414: case 431:
		if (r->keep_alive || r->head)
			abort();
		break;
	default:
		abort();
	}
	n = phttp_head(head, sizeof(head), r->status, "text/plain", 3,
	    r->keep_alive);
	snprintf(want, sizeof(want), "HTTP/1.1 %d ", r->status);
	if (n <= 0 || strncmp(head, want, strlen(want)) != 0)
		abort();
}

/* The answers to data[0..size) read step bytes at a time. */
static size_t
run(const uint8_t *data, size_t size, size_t step, struct phttp_req *out)
{
	struct phttp		 p;
	struct phttp_req	 r, again;
	char			 buf[BUF];
	size_t			 blen = 0, off = 0, nout = 0, used, n;

	phttp_init(&p);
	while (nout < ANSWERS) {
		int	rc = phttp_feed(&p, buf, blen, &used, &r);

		if (used > blen)
			abort();
		memmove(buf, buf + used, blen - used);
		blen -= used;
		if (rc == 1) {
			check(&r);
			out[nout++] = r;
			if (r.keep_alive)
				continue;
			/* The daemon closes; a refusal stays one. */
			if (refused(&r) && (phttp_feed(&p, buf, blen, &used,
			    &again) != 1 || used != 0 ||
			    again.status != r.status))
				abort();
			break;
		}
		if (rc != 0 || blen != 0)
			abort();	/* an incomplete head is all taken */
		if (off == size)
			break;
		n = size - off < step ? size - off : step;
		memcpy(buf, data + off, n);
		blen = n;
		off += n;
	}
	return nout;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct phttp_req	a[ANSWERS], b[ANSWERS];
	size_t			na, nb, i;

	if (size < 1)
		return 0;
	na = run(data + 1, size - 1, data[0] ? data[0] : BUF, a);
	nb = run(data + 1, size - 1, BUF, b);
	if (na != nb)
		abort();
	for (i = 0; i < na; i++)
		if (!same(&a[i], &b[i]))
			abort();
	return 0;
}

/*
 * derpprobe --daemon's request reader (tools/derpprobe_http.c): good
 * requests and their pages, keep-alive, pipelining, every split of the
 * input, the size limits, refusals and garbage, response heads.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tools/derpprobe_http.h"

#define MAXR	8

/* The answers to in, fed in pieces of at most step bytes as a daemon
 * with a step-sized read buffer would; stops at the first close. */
static size_t
feed_all(const char *in, size_t len, size_t step, struct phttp_req *out)
{
	struct phttp	 p;
	char		 buf[16384];
	size_t		 blen = 0, off = 0, nout = 0, used, n;
	int		 rc;

	assert_true(step <= sizeof(buf));
	phttp_init(&p);
	while (nout < MAXR) {
		rc = phttp_feed(&p, buf, blen, &used, &out[nout]);
		assert_true(used <= blen);
		memmove(buf, buf + used, blen - used);
		blen -= used;
		if (rc == 1) {
			if (!out[nout++].keep_alive)
				break;
			continue;
		}
		assert_int_equal(rc, 0);
		assert_int_equal(blen, 0);
		if (off == len)
			break;
		n = len - off < step ? len - off : step;
		memcpy(buf, in + off, n);
		blen = n;
		off += n;
	}
	return nout;
}

static struct phttp_req
one(const char *in)
{
	struct phttp_req	r[MAXR];

	assert_int_equal(feed_all(in, strlen(in), 16384, r), 1);
	return r[0];
}

static void
test_probehttp_good_requests(void **state)
{
	struct phttp_req	r;

	(void)state;
	r = one("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(r.status, 200);
	assert_int_equal(r.page, PHTTP_PAGE_METRICS);
	assert_false(r.head);
	assert_true(r.keep_alive);
	r = one("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(r.status, 200);
	assert_int_equal(r.page, PHTTP_PAGE_STATUS);
	assert_true(r.head);
	r = one("GET /healthz?x=1#f HTTP/1.1\r\n\r\n");
	assert_int_equal(r.page, PHTTP_PAGE_HEALTHZ);
	r = one("GET http://probe:8030/metrics?a HTTP/1.1\r\n\r\n");
	assert_int_equal(r.page, PHTTP_PAGE_METRICS);
	r = one("GET http://probe:8030 HTTP/1.1\r\n\r\n");
	assert_int_equal(r.page, PHTTP_PAGE_STATUS);
	/* Bare LF line ends, as some clients send. */
	r = one("GET /metrics HTTP/1.1\nHost: a\n\n");
	assert_int_equal(r.status, 200);
	/* A body of length 0 is no body. */
	r = one("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
	assert_int_equal(r.status, 200);
}

static void
test_probehttp_not_found_keeps_alive(void **state)
{
	struct phttp_req	r;

	(void)state;
	r = one("GET /metricsx HTTP/1.1\r\n\r\n");
	assert_int_equal(r.status, 404);
	assert_int_equal(r.page, PHTTP_PAGE_NONE);
	assert_true(r.keep_alive);
	r = one("HEAD /Metrics HTTP/1.1\r\n\r\n");
	assert_int_equal(r.status, 404);
	assert_true(r.head);
}

static void
test_probehttp_keep_alive_rules(void **state)
{
	(void)state;
	assert_false(one("GET / HTTP/1.0\r\n\r\n").keep_alive);
	assert_true(one("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	    .keep_alive);
	assert_false(one("GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
	    .keep_alive);
	/* What follows an upgrade is not HTTP. */
	assert_false(one("GET / HTTP/1.1\r\nConnection: Upgrade\r\n"
	    "Upgrade: websocket\r\n\r\n").keep_alive);
}

static void
test_probehttp_refusals(void **state)
{
	struct phttp_req	r;

	(void)state;
	r = one("POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nab");
	assert_int_equal(r.status, 405);
	assert_false(r.keep_alive);
	assert_int_equal(one("OPTIONS * HTTP/1.1\r\n\r\n").status, 405);
	assert_int_equal(one("CONNECT a:1 HTTP/1.1\r\n\r\n").status, 405);
	assert_int_equal(one("GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\n"
	    "abcde").status, 413);
	assert_int_equal(one("GET / HTTP/1.1\r\nTransfer-Encoding: chunked"
	    "\r\n\r\n0\r\n\r\n").status, 413);
	assert_int_equal(one("GET / HTTP/2.0\r\n\r\n").status, 400);
	assert_int_equal(one("GET /\r\n\r\n").status, 400);
	r = one("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
	assert_int_equal(r.status, 400);
	assert_false(r.keep_alive);
}

static void
test_probehttp_oversized(void **state)
{
	static char		 in[20000];
	struct phttp_req	 r;
	size_t			 n, i;

	(void)state;
	/* The request target: up to PHTTP_URL_MAX bytes. */
	n = (size_t)snprintf(in, sizeof(in), "GET /");
	memset(in + n, 'a', PHTTP_URL_MAX - 1);
	snprintf(in + n + PHTTP_URL_MAX - 1, sizeof(in) - n - PHTTP_URL_MAX,
	    " HTTP/1.1\r\n\r\n");
	assert_int_equal(one(in).status, 404);
	memset(in + n, 'a', PHTTP_URL_MAX);
	snprintf(in + n + PHTTP_URL_MAX, sizeof(in) - n - PHTTP_URL_MAX,
	    " HTTP/1.1\r\n\r\n");
	assert_int_equal(one(in).status, 414);
	/* The header section: PHTTP_HEAD_MAX bytes in all. */
	n = (size_t)snprintf(in, sizeof(in), "GET / HTTP/1.1\r\nX-Big: ");
	memset(in + n, 'x', PHTTP_HEAD_MAX - n - 4);
	memcpy(in + PHTTP_HEAD_MAX - 4, "\r\n\r\n", 5);
	r = one(in);
	assert_int_equal(r.status, 200);
	memset(in + n, 'x', PHTTP_HEAD_MAX - n - 3);
	memcpy(in + PHTTP_HEAD_MAX - 3, "\r\n\r\n", 5);
	assert_int_equal(one(in).status, 431);
	/* Never ending: refused once the limit is read. */
	memset(in + n, 'x', sizeof(in) - n - 1);
	in[sizeof(in) - 1] = '\0';
	r = one(in);
	assert_int_equal(r.status, 431);
	assert_false(r.keep_alive);
	/* Endless blank lines before a request count too. */
	memset(in, '\n', sizeof(in) - 1);
	assert_int_equal(one(in).status, 431);
	/* Header fields: PHTTP_FIELDS_MAX. */
	n = (size_t)snprintf(in, sizeof(in), "GET / HTTP/1.1\r\n");
	for (i = 0; i < PHTTP_FIELDS_MAX; i++)
		n += (size_t)snprintf(in + n, sizeof(in) - n, "X-%zu: y\r\n",
		    i);
	snprintf(in + n, sizeof(in) - n, "\r\n");
	assert_int_equal(one(in).status, 200);
	snprintf(in + n, sizeof(in) - n, "X-Last: y\r\n\r\n");
	assert_int_equal(one(in).status, 431);
}

static void
test_probehttp_garbage(void **state)
{
	static const char	*bad[] = {
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
		"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n"
		    "\r\n",
		"GET /\x01 HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\r\r\n",
		"G\0T / HTTP/1.1\r\n\r\n",
	};
	struct phttp		 p;
	struct phttp_req	 r, again;
	uint8_t			 noise[4096];
	size_t			 i, used;
	uint32_t		 x = 12345;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t	len = i == 7 ? 19 : strlen(bad[i]);

		phttp_init(&p);
		assert_int_equal(phttp_feed(&p, bad[i], len, &used, &r), 1);
		assert_true(r.status == 400 || r.status == 413);
		assert_false(r.keep_alive);
		/* Refused for good: the next bytes change nothing. */
		assert_int_equal(phttp_feed(&p, "GET / HTTP/1.1\r\n\r\n", 18,
		    &used, &again), 1);
		assert_int_equal(used, 0);
		assert_int_equal(again.status, r.status);
	}
	/* Noise: some answer or a wait, never more than it was given. */
	for (i = 0; i < sizeof(noise); i++) {
		x = x * 1103515245 + 12345;
		noise[i] = (uint8_t)(x >> 16);
	}
	for (i = 0; i < 64; i++) {
		size_t	off = (i * 61) % sizeof(noise);

		phttp_init(&p);
		if (phttp_feed(&p, (const char *)noise + off,
		    sizeof(noise) - off, &used, &r) == 1)
			assert_true(r.status >= 400 && !r.keep_alive);
		assert_true(used <= sizeof(noise) - off);
	}
}

static const char PIPELINED[] =
    "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
    "HEAD /metrics HTTP/1.1\r\nHost: a\r\n\r\n"
    "GET /nope HTTP/1.1\r\nHost: a\r\n\r\n"
    "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    "GET /ignored HTTP/1.1\r\n\r\n";

static void
check_pipelined(const struct phttp_req *r, size_t n)
{
	assert_int_equal(n, 4);
	assert_int_equal(r[0].page, PHTTP_PAGE_HEALTHZ);
	assert_true(r[1].head);
	assert_int_equal(r[1].page, PHTTP_PAGE_METRICS);
	assert_int_equal(r[2].status, 404);
	assert_true(r[2].keep_alive);
	assert_int_equal(r[3].page, PHTTP_PAGE_STATUS);
	assert_false(r[3].keep_alive);
}

static void
test_probehttp_pipelined(void **state)
{
	struct phttp		 p;
	struct phttp_req	 r[MAXR];
	size_t			 used, off = 0, len = strlen(PIPELINED);

	(void)state;
	check_pipelined(r, feed_all(PIPELINED, len, 16384, r));
	/* Each answer leaves the next request's bytes unconsumed. */
	phttp_init(&p);
	assert_int_equal(phttp_feed(&p, PIPELINED, len, &used, &r[0]), 1);
	assert_int_equal(used, strlen("GET /healthz HTTP/1.1\r\nHost: a"
	    "\r\n\r\n"));
	off += used;
	assert_int_equal(phttp_feed(&p, PIPELINED + off, len - off, &used,
	    &r[1]), 1);
	assert_true(r[1].head);
	assert_memory_equal(PIPELINED + off + used, "GET /nope", 9);
}

static void
test_probehttp_split_at_every_byte(void **state)
{
	struct phttp		 p;
	struct phttp_req	 r[MAXR];
	size_t			 len = strlen(PIPELINED), k, step, n, used;
	size_t			 off;
	int			 rc;

	(void)state;
	/* Every read size a socket may return, 1 byte upwards. */
	for (step = 1; step <= 64; step++)
		check_pipelined(r, feed_all(PIPELINED, len, step, r));
	/* Every split into two reads. */
	for (k = 0; k <= len; k++) {
		phttp_init(&p);
		n = 0;
		off = 0;
		while (n < MAXR) {
			size_t	end = off < k ? k : len;

			rc = phttp_feed(&p, PIPELINED + off, end - off, &used,
			    &r[n]);
			off += used;
			if (rc == 1 && !r[n++].keep_alive)
				break;
			if (rc == 0 && off == len)
				break;
		}
		check_pipelined(r, n);
	}
}

static void
test_probehttp_head_format(void **state)
{
	char	buf[512];
	ssize_t	n;

	(void)state;
	n = phttp_head(buf, sizeof(buf), 405, "text/plain", 19, false);
	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(buf));
	assert_non_null(strstr(buf, "HTTP/1.1 405 Method Not Allowed\r\n"));
	assert_non_null(strstr(buf, "\r\nAllow: GET, HEAD\r\n"));
	assert_non_null(strstr(buf, "\r\nContent-Length: 19\r\n"));
	assert_non_null(strstr(buf, "\r\nConnection: close\r\n\r\n"));
	n = phttp_head(buf, sizeof(buf), 200, "text/plain", 3, true);
	assert_null(strstr(buf, "Allow:"));
	assert_non_null(strstr(buf, "\r\nConnection: keep-alive\r\n\r\n"));
	assert_int_equal(phttp_head(buf, 20, 200, "text/plain", 3, true),
	    -ENOSPC);
	assert_string_equal(phttp_reason(431), "Request Header Fields Too "
	    "Large");
	assert_string_equal(phttp_reason(999), "Error");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probehttp_good_requests),
		cmocka_unit_test(test_probehttp_not_found_keeps_alive),
		cmocka_unit_test(test_probehttp_keep_alive_rules),
		cmocka_unit_test(test_probehttp_refusals),
		cmocka_unit_test(test_probehttp_oversized),
		cmocka_unit_test(test_probehttp_garbage),
		cmocka_unit_test(test_probehttp_pipelined),
		cmocka_unit_test(test_probehttp_split_at_every_byte),
		cmocka_unit_test(test_probehttp_head_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

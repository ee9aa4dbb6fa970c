/*
 * Unit tests for worker/conn.c's flush bound and http.c's taken debug
 * body: a connection with a megabyte queued writes at most
 * WK_FLUSH_BUDGET (and the write buffer's worth) per conn_flush, asks
 * for EPOLLOUT for the rest, and the peer gets every byte in order; a
 * /debug response built in a buffer is queued without a copy behind
 * its head, or copied after what is already queued.  The connection is
 * a fake worker's (tests/fuzz/fake_worker.h) on an AF_UNIX socketpair
 * whose send buffer holds more than the budget.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "tests/fuzz/fake_worker.h"

#define BODY	(1024 * 1024)

struct pair {
	struct worker	*w;
	struct conn	*c;
	int		 peer;
};

static void
pair_open(struct pair *pp)
{
	int	sv[2], sz = 4 * 1024 * 1024;

	pp->w = fake_worker();
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0, sv), 0);
	/* The kernel caps it (2 * wmem_max): over the budget even so. */
	assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz,
	    sizeof(sz)), 0);
	assert_non_null(pp->c = fake_conn_new(pp->w, sv[0]));
	pp->peer = sv[1];
}

static void
pair_close(struct pair *pp)
{
	close(pp->peer);
	fake_worker_reset(pp->w);
}

/* Everything readable now, appended to out[*len..cap). */
static size_t
read_now(int fd, uint8_t *out, size_t *len, size_t cap)
{
	ssize_t	r;
	size_t	got = 0;

	while (*len < cap && (r = read(fd, out + *len, cap - *len)) > 0) {
		*len += (size_t)r;
		got += (size_t)r;
	}
	return got;
}

static bool
queued(const struct conn *c)
{
	return bbuf_len(&c->out) > 0 || bbuf_len(&c->ctrl) > 0;
}

/* Flush and read until nothing is queued; each flush within the bound.
 * Returns the number of flushes. */
static int
drain_all(struct pair *pp, uint8_t *out, size_t *len, size_t cap)
{
	int	n = 0;

	while (queued(pp->c)) {
		conn_flush(pp->c);
		assert_false(pp->c->closing && queued(pp->c));
		assert_true(read_now(pp->peer, out, len, cap) <=
		    WK_FLUSH_BUDGET + WK_OUT_CAP);
		assert_true(++n < 1000);
	}
	(void)read_now(pp->peer, out, len, cap);
	return n;
}

static void
fill(uint8_t *p, size_t n, uint32_t salt)
{
	size_t	i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)((i * 2654435761u + salt) >> 13);
}

static void
test_conn_flush_bounded_per_call(void **state)
{
	struct pair	 pp;
	uint8_t		*src = malloc(BODY), *dst = malloc(BODY + 1);
	size_t		 len = 0;

	(void)state;
	assert_non_null(src);
	assert_non_null(dst);
	fill(src, BODY, 7);
	pair_open(&pp);
	pp.c->big_ctrl = true;
	assert_int_equal(conn_send_ctrl(pp.c, src, BODY), 0);
	conn_flush(pp.c);
	/* One call: the budget, not what the socket would take. */
	assert_true(read_now(pp.peer, dst, &len, BODY + 1) >=
	    WK_FLUSH_BUDGET);
	assert_true(len <= WK_FLUSH_BUDGET + WK_OUT_CAP);
	assert_true(queued(pp.c));
	assert_false(pp.c->closing);
	assert_true(drain_all(&pp, dst, &len, BODY + 1) >= 3);
	assert_int_equal(len, BODY);
	assert_memory_equal(dst, src, BODY);
	pair_close(&pp);
	free(src);
	free(dst);
}

static void
test_http_debug_body_taken(void **state)
{
	struct pair	 pp;
	struct bbuf	 body = { 0 };
	uint8_t		*dst = malloc(2 * BODY), *keep;
	const char	*hend;
	size_t		 len = 0, hlen;

	(void)state;
	assert_non_null(dst);
	pair_open(&pp);
	assert_int_equal(bbuf_reserve(&body, BODY, BODY), 0);
	fill(body.p, BODY, 9);
	body.len = BODY;
	keep = body.p;
	pp.c->big_ctrl = true;
	http_respond_debug_take(pp.c, 200, "OK", "application/x-ndjson",
	    "X-Test: 1\r\n", &body);
	/* Taken as it is: no copy. */
	assert_null(body.p);
	assert_int_equal(bbuf_len(&body), 0);
	assert_ptr_equal(pp.c->ctrl.p, keep);
	assert_true(bbuf_len(&pp.c->out) > 0);
	(void)drain_all(&pp, dst, &len, 2 * BODY);
	dst[len < 2 * BODY ? len : 2 * BODY - 1] = '\0';
	assert_memory_equal(dst, "HTTP/1.1 200 OK\r\n", 17);
	assert_non_null(hend = strstr((const char *)dst, "\r\n\r\n"));
	hlen = (size_t)(hend + 4 - (const char *)dst);
	assert_true(strstr((const char *)dst, "Content-Length: 1048576\r\n") <
	    hend);
	assert_true(strstr((const char *)dst, "X-Test: 1\r\n") < hend);
	assert_int_equal(len, hlen + BODY);
	body.p = malloc(BODY);
	assert_non_null(body.p);
	fill(body.p, BODY, 9);
	assert_memory_equal(dst + hlen, body.p, BODY);
	free(body.p);
	pair_close(&pp);
	free(dst);
}

/* Control bytes already queued: the response is copied after them. */
static void
test_http_debug_body_after_queued(void **state)
{
	struct pair	 pp;
	struct bbuf	 body = { 0 };
	uint8_t		*dst = malloc(BODY);
	const char	 before[] = "queued-before;";
	size_t		 len = 0;

	(void)state;
	assert_non_null(dst);
	pair_open(&pp);
	assert_int_equal(bbuf_append(&body, "0123456789", 10, 10), 0);
	assert_int_equal(conn_send_ctrl(pp.c, before, sizeof(before) - 1),
	    0);
	http_respond_debug_take(pp.c, 200, "OK", "text/plain", NULL, &body);
	assert_null(body.p);		/* freed, copied */
	(void)drain_all(&pp, dst, &len, BODY - 1);
	dst[len] = '\0';
	assert_memory_equal(dst, before, sizeof(before) - 1);
	assert_memory_equal(dst + sizeof(before) - 1, "HTTP/1.1 200 OK\r\n",
	    17);
	assert_true(len > 10);
	assert_memory_equal(dst + len - 10, "0123456789", 10);
	assert_non_null(strstr((const char *)dst, "Content-Length: 10\r\n"));
	pair_close(&pp);
	free(dst);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conn_flush_bounded_per_call),
		cmocka_unit_test(test_http_debug_body_taken),
		cmocka_unit_test(test_http_debug_body_after_queued),
	};

	log_init("test", LOG_EMERG);
	if (derp_crypto_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}

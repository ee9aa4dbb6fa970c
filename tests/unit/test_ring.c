/*
 * Unit tests for common/ring.c: records in order, wraparound with pad
 * records, full and oversize pushes, corruption detection, and a real
 * producer process feeding a consumer through shared memory.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/ring.h"

#define CAP	8192

static void
test_ring_push_peek_pop(void **state)
{
	void		*set = ring_set_create(2, CAP);
	struct ring_ref	 r = ring_set_get(set, 2, CAP, 0, 1);
	const uint8_t	*d;
	size_t		 len;
	uint16_t	 type;

	(void)state;
	assert_non_null(set);
	assert_int_equal(ring_peek(r, &type, &d, &len), -EAGAIN);
	assert_int_equal(ring_push(r, 7, "ab", 2, "cde", 3), 0);
	assert_int_equal(ring_push(r, 8, NULL, 0, NULL, 0), 0);
	assert_int_equal(ring_peek(r, &type, &d, &len), 0);
	assert_int_equal(type, 7);
	assert_int_equal(len, 5);
	assert_memory_equal(d, "abcde", 5);
	ring_pop(r, len);
	assert_int_equal(ring_peek(r, &type, &d, &len), 0);
	assert_int_equal(type, 8);
	assert_int_equal(len, 0);
	ring_pop(r, len);
	assert_int_equal(ring_peek(r, &type, &d, &len), -EAGAIN);
	/* Rings are independent. */
	assert_int_equal(ring_peek(ring_set_get(set, 2, CAP, 1, 0), &type, &d,
	    &len), -EAGAIN);
	ring_set_destroy(set, 2, CAP);
}

static void
test_ring_wraps_and_fills(void **state)
{
	void		*set = ring_set_create(1, CAP);
	struct ring_ref	 r = ring_set_get(set, 1, CAP, 0, 0);
	uint8_t		 buf[1500];
	const uint8_t	*d;
	size_t		 len, sz;
	uint16_t	 type;
	int		 i, pushed = 0, popped = 0;

	(void)state;
	for (i = 0; i < 5000; i++) {
		sz = (size_t)(i * 37) % sizeof(buf);
		memset(buf, i & 0xff, sz);
		if (ring_push(r, 1, &i, sizeof(i), buf, sz) == -ENOSPC) {
			/* Drain two and retry: order must hold. */
			while (popped < pushed && popped < i - 0) {
				int	v;

				assert_int_equal(ring_peek(r, &type, &d, &len),
				    0);
				memcpy(&v, d, sizeof(v));
				assert_int_equal(v, popped);
				assert_int_equal(len, sizeof(v) +
				    (size_t)(v * 37) % sizeof(buf));
				if (len > sizeof(v))
					assert_int_equal(d[len - 1], v & 0xff);
				ring_pop(r, len);
				popped++;
				if (popped % 2 == 0)
					break;
			}
			i--;
			continue;
		}
		pushed++;
	}
	assert_true(ring_drops(r) > 0);
	assert_int_equal(ring_pushed(r), 5000);
	assert_int_equal(ring_push(r, 1, buf, CAP / 4, NULL, 0), -EMSGSIZE);
	ring_set_destroy(set, 1, CAP);
}

static void
test_ring_detects_corruption(void **state)
{
	void		*set = ring_set_create(1, CAP);
	struct ring_ref	 r = ring_set_get(set, 1, CAP, 0, 0);
	const uint8_t	*d;
	size_t		 len;
	uint16_t	 type;
	uint32_t	 bogus = CAP * 2;

	(void)state;
	assert_int_equal(ring_push(r, 1, "x", 1, NULL, 0), 0);
	assert_int_equal(ring_peek(r, &type, &d, &len), 0);
	memcpy((uint8_t *)(uintptr_t)d - 8, &bogus, 4);	/* length field */
	assert_int_equal(ring_peek(r, &type, &d, &len), -EPROTO);
	ring_reset(r);
	assert_int_equal(ring_peek(r, &type, &d, &len), -EAGAIN);
	assert_int_equal(ring_push(r, 2, "y", 1, NULL, 0), 0);
	assert_int_equal(ring_peek(r, &type, &d, &len), 0);
	assert_int_equal(type, 2);
	ring_set_destroy(set, 1, CAP);
}

/* A hostile producer: a pad that does not fill the rest of the buffer,
 * and a length rewritten between peek and pop. */
static void
test_ring_hostile_producer(void **state)
{
	void		*set = ring_set_create(1, CAP);
	struct ring_ref	 r = ring_set_get(set, 1, CAP, 0, 0);
	const uint8_t	*d;
	size_t		 len;
	uint16_t	 type;
	uint8_t		*hdr;
	uint32_t	 l;
	uint16_t	 pad = 0xffff;

	(void)state;
	assert_int_equal(ring_push(r, 1, "abcdefgh", 8, NULL, 0), 0);
	assert_int_equal(ring_push(r, 2, "x", 1, NULL, 0), 0);
	assert_int_equal(ring_peek(r, &type, &d, &len), 0);
	hdr = (uint8_t *)(uintptr_t)d - 8;
	/* Rewritten after the peek: pop still steps over 8 bytes. */
	l = 0;
	memcpy(hdr, &l, 4);
	ring_pop(r, len);
	assert_int_equal(ring_peek(r, &type, &d, &len), 0);
	assert_int_equal(type, 2);
	assert_memory_equal(d, "x", 1);
	/* A short pad mid-buffer is not a pad. */
	hdr = (uint8_t *)(uintptr_t)d - 8;
	memcpy(hdr + 4, &pad, 2);
	assert_int_equal(ring_peek(r, &type, &d, &len), -EPROTO);
	ring_reset(r);
	assert_int_equal(ring_peek(r, &type, &d, &len), -EAGAIN);
	ring_set_destroy(set, 1, CAP);
}

static void
test_ring_across_processes(void **state)
{
	enum { N = 300000 };
	void		*set = ring_set_create(2, 1 << 16);
	struct ring_ref	 r = ring_set_get(set, 2, 1 << 16, 0, 1);
	int		 efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	const uint8_t	*d;
	size_t		 len;
	uint16_t	 type;
	uint64_t	 one = 1, v;
	uint32_t	 i, expect = 0, got;
	uint8_t		 pkt[256];
	pid_t		 pid;
	int		 status;
	struct pollfd	 p = { .fd = efd, .events = POLLIN };

	(void)state;
	assert_non_null(set);
	if ((pid = fork()) == 0) {
		for (i = 0; i < N; i++) {
			memset(pkt, (int)(i & 0xff), sizeof(pkt));
			while (ring_push(r, 3, &i, sizeof(i), pkt,
			    i % sizeof(pkt)) == -ENOSPC)
				if (write(efd, &one, 8) != 8)
					_exit(2);
			if (i % 64 == 0 && write(efd, &one, 8) != 8)
				_exit(2);
		}
		if (write(efd, &one, 8) != 8)
			_exit(2);
		_exit(0);
	}
	while (expect < N) {
		while (ring_peek(r, &type, &d, &len) == 0) {
			memcpy(&got, d, 4);
			assert_int_equal(got, expect);
			assert_int_equal(len, 4 + expect % sizeof(pkt));
			if (len > 4)
				assert_int_equal(d[len - 1], expect & 0xff);
			ring_pop(r, len);
			expect++;
		}
		if (expect < N) {
			assert_true(poll(&p, 1, 10000) == 1);
			if (read(efd, &v, 8) != 8)
				v = 0;
		}
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 0);
	close(efd);
	ring_set_destroy(set, 2, 1 << 16);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring_push_peek_pop),
		cmocka_unit_test(test_ring_wraps_and_fills),
		cmocka_unit_test(test_ring_detects_corruption),
		cmocka_unit_test(test_ring_hostile_producer),
		cmocka_unit_test(test_ring_across_processes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

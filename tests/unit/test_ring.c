/*
 * Unit tests for common/ring.c: records in order, wraparound with pad
 * records, full and oversize pushes, corruption detection, a real
 * producer process feeding a consumer through shared memory, and the
 * doorbell protocol: a producer signals only a consumer that said it may
 * sleep, once, and a consumer that sleeps whenever it may is never left
 * asleep with records waiting (a lost wakeup hangs the poll and fails).
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
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

static void
test_ring_signal_only_when_sleeping(void **state)
{
	void		*set = ring_set_create(2, CAP);
	struct ring_ref	 r = ring_set_get(set, 2, CAP, 0, 1);
	const uint8_t	*d;
	size_t		 len;
	uint16_t	 type;

	(void)state;
	/* A fresh ring: the consumer has not run yet, so it may sleep. */
	assert_int_equal(ring_push(r, 1, "a", 1, NULL, 0), 0);
	assert_true(ring_need_signal(r));
	/* Once per sleep, however many records follow. */
	assert_int_equal(ring_push(r, 1, "b", 1, NULL, 0), 0);
	assert_false(ring_need_signal(r));
	/* Records waiting: the consumer must not sleep. */
	assert_false(ring_sleep(r));
	while (ring_peek(r, &type, &d, &len) == 0)
		ring_pop(r, len);
	assert_true(ring_sleep(r));
	assert_true(ring_sleep(r));	/* idempotent */
	assert_int_equal(ring_push(r, 1, "c", 1, NULL, 0), 0);
	assert_true(ring_need_signal(r));
	assert_false(ring_need_signal(r));
	/* An awake (draining) consumer is not signalled. */
	ring_awake(r);
	assert_int_equal(ring_push(r, 1, "d", 1, NULL, 0), 0);
	assert_false(ring_need_signal(r));
	/* Flags are per ring. */
	assert_true(ring_need_signal(ring_set_get(set, 2, CAP, 1, 0)));
	ring_set_destroy(set, 2, CAP);
}

/* The worker's pattern across two processes: the consumer drains, then
 * sleeps on the eventfd whenever ring_sleep allows; the producer pushes
 * bursts of varying size and writes the eventfd only when
 * ring_need_signal says so.  Every record must arrive. */
static void
test_ring_no_lost_wakeup(void **state)
{
	void		*set = ring_set_create(2, 1 << 16);
	struct ring_ref	 r = ring_set_get(set, 2, 1 << 16, 0, 1);
	int		 efd = eventfd(0, EFD_NONBLOCK), status;
	const uint32_t	 n = 200000;
	uint32_t	 i, got, expect = 0, sleeps = 0, signals;
	struct pollfd	 p = { .fd = efd, .events = POLLIN };
	const uint8_t	*d;
	size_t		 len;
	uint16_t	 type;
	uint64_t	 one = 1, v;
	pid_t		 pid;

	(void)state;
	assert_non_null(set);
	assert_true(efd >= 0);
	if ((pid = fork()) == 0) {
		uint32_t	burst = 1, k;
		time_t		give_up = time(NULL) + 60;

		signals = 0;
		for (i = 0; i < n;) {
			for (k = 0; k < burst && i < n; k++, i++)
				while (ring_push(r, 3, &i, sizeof(i), NULL,
				    0) == -ENOSPC) {
					if (ring_need_signal(r) && (signals++,
					    write(efd, &one, 8) != 8))
						_exit(2);
					/* A consumer that failed is gone:
					 * do not spin on a full ring. */
					if (time(NULL) > give_up)
						_exit(4);
				}
			if (ring_need_signal(r) && (signals++,
			    write(efd, &one, 8) != 8))
				_exit(2);
			burst = burst * 5 % 97 + 1;	/* 1..97, varied */
		}
		/* Far fewer doorbells than records. */
		_exit(signals < n ? 0 : 3);
	}
	assert_true(pid > 0);
	while (expect < n) {
		ring_awake(r);
		while (ring_peek(r, &type, &d, &len) == 0) {
			memcpy(&got, d, 4);
			assert_int_equal(got, expect);
			ring_pop(r, len);
			expect++;
		}
		if (expect == n || !ring_sleep(r))
			continue;
		/* Asleep until rung: a lost wakeup stops here. */
		sleeps++;
		if (poll(&p, 1, 10000) != 1)
			fail_msg("lost wakeup: %u of %u records, ring not "
			    "empty: %d", expect, n, !ring_sleep(r));
		if (read(efd, &v, 8) != 8)
			v = 0;
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	print_message("%u records, consumer slept %u times\n", n, sleeps);
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
		cmocka_unit_test(test_ring_signal_only_when_sleeping),
		cmocka_unit_test(test_ring_no_lost_wakeup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

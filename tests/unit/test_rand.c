/*
 * Unit tests for common/rand.c: once installed, libsodium's randombytes
 * draw from the per-process ChaCha20 stream without any system call (a
 * child with getrandom forbidden by seccomp keeps drawing), the output
 * looks random, draws never repeat, and a forked child gets a stream of
 * its own.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <seccomp.h>
#include <sodium.h>

#include "common/rand.h"

static int
setup(void **state)
{
	(void)state;
	if (sodium_init() < 0 || rand_install() < 0)
		return -1;
	return 0;
}

static void
test_rand_is_installed(void **state)
{
	(void)state;
	assert_string_equal(randombytes_implementation_name(),
	    "derpd-chacha20");
	assert_int_equal(rand_install(), 0);	/* idempotent */
}

static void
test_rand_output_varies(void **state)
{
	static uint8_t	big[65536];
	uint8_t		a[24], b[24], small[3];
	unsigned	seen[256] = { 0 };
	size_t		i, distinct = 0;

	(void)state;
	randombytes_buf(a, sizeof(a));
	randombytes_buf(b, sizeof(b));
	assert_memory_not_equal(a, b, sizeof(a));
	/* Large draws (over one block) and tiny ones. */
	randombytes_buf(big, sizeof(big));
	for (i = 0; i < sizeof(big); i++)
		seen[big[i]]++;
	for (i = 0; i < 256; i++) {
		distinct += seen[i] > 0;
		/* 256 expected per value: far from any degenerate stream */
		assert_in_range(seen[i], 128, 400);
	}
	assert_int_equal(distinct, 256);
	randombytes_buf(small, sizeof(small));
	for (i = 0; i < 1000; i++)
		assert_true(randombytes_uniform(10) < 10);
	/* A stir reseeds: the stream goes on, different. */
	randombytes_stir();
	randombytes_buf(b, sizeof(b));
	assert_memory_not_equal(a, b, sizeof(a));
}

/* The point of it: no system call per draw.  A child that may not call
 * getrandom (seccomp kills it) draws a thousand nonces and jitters. */
static void
test_rand_no_syscall_per_draw(void **state)
{
	pid_t	pid;
	int	st;

	(void)state;
	randombytes_buf(&st, sizeof(st));	/* seeded here already */
	if ((pid = fork()) == 0) {
		scmp_filter_ctx	ctx = seccomp_init(SCMP_ACT_ALLOW);
		uint8_t		n[24];
		int		i;

		/* The fork handler cleared the parent's key: reseed now,
		 * before the filter, as a worker does at start. */
		if (ctx == NULL || rand_install() < 0 ||
		    seccomp_rule_add(ctx, SCMP_ACT_KILL,
		    SCMP_SYS(getrandom), 0) < 0 ||
		    seccomp_rule_add(ctx, SCMP_ACT_KILL,
		    SCMP_SYS(getpid), 0) < 0 ||
		    seccomp_load(ctx) < 0)
			_exit(2);
		for (i = 0; i < 1000; i++) {
			randombytes_buf(n, sizeof(n));
			(void)randombytes_uniform(1000);
		}
		_exit(0);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (WIFSIGNALED(st))
		fail_msg("child killed by signal %d: a draw made a system "
		    "call", WTERMSIG(st));
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* Parent and child after fork: different streams. */
static void
test_rand_fork_reseeds(void **state)
{
	uint8_t	mine[32], theirs[32];
	int	fds[2], st;
	pid_t	pid;

	(void)state;
	randombytes_buf(mine, 1);	/* state in use before the fork */
	assert_int_equal(pipe(fds), 0);
	if ((pid = fork()) == 0) {
		uint8_t	b[32];

		randombytes_buf(b, sizeof(b));
		_exit(write(fds[1], b, sizeof(b)) == (ssize_t)sizeof(b) ?
		    0 : 1);
	}
	assert_true(pid > 0);
	close(fds[1]);
	randombytes_buf(mine, sizeof(mine));
	assert_int_equal(read(fds[0], theirs, sizeof(theirs)),
	    sizeof(theirs));
	close(fds[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_memory_not_equal(mine, theirs, sizeof(mine));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rand_is_installed),
		cmocka_unit_test(test_rand_output_varies),
		cmocka_unit_test(test_rand_no_syscall_per_draw),
		cmocka_unit_test(test_rand_fork_reseeds),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}

/*
 * Hung-worker detection: what the supervisor may and may not call a
 * hang.  A pause of the whole machine (VM paused or starved, clock
 * jump: supervisor and workers stopped together) is nobody's silence;
 * a worker slower than the hang timeout to exit during a stop is the
 * stop deadline's business; a worker that really stops beating is
 * killed, and the line says what its threads were waiting in.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

/* A 2 s limit (scaled with the harness's time, e.g. under valgrind);
 * every stimulus below holds for 3 s, scaled alike. */
static const char *
hang_conf(void)
{
	static char	conf[96];
	int		ms = time_scaled(2000);

	snprintf(conf, sizeof(conf), "workers = 2;\n"
	    "worker_hang_timeout_ms = %d;\n", ms > 600000 ? 600000 : ms);
	return conf;
}

/* A stimulus (how long something stays stopped), not a wait. */
static void
hold_ms(int ms)
{
	(void)usleep((useconds_t)time_scaled(ms) * 1000);
}

/* The supervisor and its workers stopped together for longer than the
 * hang timeout, as in a VM pause; the supervisor runs again first (its
 * overdue tick fires at once), the workers only after it has looked.
 * None of them may be called hung. */
static void
test_hang_machine_pause(void **state)
{
	struct node	*n = node_start(false, hang_conf());
	struct client	*a, *b;
	pid_t		 w[2];
	uint64_t	 deadline;
	int		 i;

	(void)state;
	for (i = 0; i < 2; i++) {
		w[i] = node_worker_pid(n, i);
		assert_true(w[i] > 0);
	}
	assert_int_equal(kill(n->pid, SIGSTOP), 0);
	for (i = 0; i < 2; i++)
		assert_int_equal(kill(w[i], SIGSTOP), 0);
	hold_ms(3000);		/* the pause itself: past the 2 s limit */
	assert_int_equal(kill(n->pid, SIGCONT), 0);
	/* The supervisor's first tick after the pause has run once it
	 * logged either verdict. */
	deadline = now_ms() + (uint64_t)time_scaled(5000);
	while (node_log_count(n, "event=supervisor_stalled") == 0 &&
	    node_log_count(n, "event=worker_hung") == 0 &&
	    now_ms() < deadline)
		(void)usleep(5000);
	for (i = 0; i < 2; i++)
		assert_int_equal(kill(w[i], SIGCONT), 0);
	assert_int_equal(node_log_count(n, "event=worker_hung"), 0);
	assert_true(node_log_count(n, "event=supervisor_stalled") >= 1);
	/* Both keep serving, under their old pids. */
	a = node_client(n);
	b = node_client(n);
	reach(a, b);
	client_free(a);
	client_free(b);
	for (i = 0; i < 2; i++)
		assert_int_equal(node_worker_pid(n, i), w[i]);
	node_stop(n);		/* fails on any worker killed meanwhile */
	node_free(n);
}

/* Stopping, a worker takes longer than the hang timeout to exit: it
 * has the stop deadline (10 s), not the hang timeout, and exits 0. */
static void
test_hang_slow_exit_on_stop(void **state)
{
	struct node	*n = node_start(false, hang_conf());
	pid_t		 w0, r = 0;
	uint64_t	 deadline;
	int		 status = -1;

	(void)state;
	w0 = node_worker_pid(n, 0);
	assert_true(w0 > 0);
	assert_int_equal(kill(w0, SIGSTOP), 0);
	assert_int_equal(kill(n->pid, SIGTERM), 0);
	assert_true(node_log_wait(n, "sup event=stopping", 5000));
	hold_ms(3000);		/* the slow exit: past the 2 s limit */
	assert_int_equal(kill(w0, SIGCONT), 0);
	deadline = now_ms() + (uint64_t)time_scaled(10000);
	while (now_ms() < deadline &&
	    (r = waitpid(n->pid, &status, WNOHANG)) == 0)
		(void)usleep(5000);
	assert_int_equal(r, n->pid);
	n->stopped = true;
	assert_int_equal(node_log_count(n, "event=worker_hung"), 0);
	assert_int_equal(node_log_count(n, "event=stop_timeout"), 0);
	assert_int_equal(node_log_count(n, "signal="), 0);
	assert_int_equal(node_log_count(n, "event=worker_exited "), 2);
	assert_int_equal(node_log_count(n, "status=0"), 2);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	node_free(n);
}

/* A worker that really stops beating is killed and replaced; the line
 * names each of its threads with state, wait channel and syscall. */
static void
test_hang_killed_with_threads(void **state)
{
	struct node	*n = node_start(false, hang_conf());
	char		 needle[64];
	uint64_t	 deadline;
	pid_t		 w1;

	(void)state;
	w1 = node_worker_pid(n, 1);
	assert_true(w1 > 0);
	assert_int_equal(kill(w1, SIGSTOP), 0);
	assert_true(node_log_wait(n, "event=worker_hung worker=1", 10000));
	/* The main thread (tid = pid) as stopped: T, in do_signal_stop. */
	snprintf(needle, sizeof(needle), "threads=\"%d:T:", (int)w1);
	if (node_log_count(n, needle) == 0)
		snprintf(needle, sizeof(needle), ",%d:T:", (int)w1);
	assert_int_equal(node_log_count(n, needle), 1);
	assert_int_equal(node_log_count(n, "do_signal_stop"), 1);
	deadline = now_ms() + (uint64_t)time_scaled(10000);
	while (node_log_count(n, "worker=1 event=ready") < 2 &&
	    now_ms() < deadline)
		(void)usleep(5000);
	assert_int_equal(node_log_count(n, "worker=1 event=ready"), 2);
	node_stop_killed(n, 1);
	node_free(n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hang_machine_pause),
		cmocka_unit_test(test_hang_slow_exit_on_stop),
		cmocka_unit_test(test_hang_killed_with_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

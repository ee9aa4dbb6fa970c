/*
 * The harness itself: a node outlives no test.  Each test runs a child
 * test program (this binary again) that starts a 2-worker node and then
 * fails an assertion, is killed, or leaves the node to its group's end;
 * the parent, subreaper for the orphans, checks that the supervisor and
 * both workers are gone by a deadline.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define NPIDS	3	/* the supervisor and its 2 workers */

static int	report_fd = -1;		/* the child's pipe to the parent */
static pid_t	started[NPIDS];

/* ---- the child test program ---- */

static struct node *
start_reported(void)
{
	struct node	*n = node_start(false, "workers = 2;\n");
	uint64_t	 deadline = now_ms() + (uint64_t)time_scaled(10000);

	started[0] = n->pid;
	while (node_worker_pids(n, started + 1, NPIDS - 1) < NPIDS - 1 &&
	    now_ms() < deadline)
		(void)poll(NULL, 0, 10);
	assert_int_equal(node_worker_pids(n, started + 1, NPIDS - 1),
	    NPIDS - 1);
	assert_true(dprintf(report_fd, "%d %d %d\n", (int)started[0],
	    (int)started[1], (int)started[2]) > 0);
	return n;
}

static void
child_fails(void **state)
{
	(void)state;
	(void)start_reported();
	fail_msg("deliberate failure, the node still running");
}

/* Runs after child_fails in the same process: its teardown stopped and
 * reaped the node already. */
static void
child_after(void **state)
{
	int	i;

	(void)state;
	for (i = 0; i < NPIDS; i++)
		assert_int_equal(kill(started[i], 0) == -1 && errno == ESRCH,
		    1);
}

static void
child_killed(void **state)
{
	(void)state;
	(void)start_reported();
	(void)raise(SIGKILL);
}

static struct node	*group_node;

static int
group_setup(void **state)
{
	(void)state;
	group_node = start_reported();
	return 0;
}

static void
child_passes(void **state)
{
	(void)state;
	assert_true(kill(group_node->pid, 0) == 0);
}

static int
child_main(const char *mode)
{
	const struct CMUnitTest	fails[] = {
		cmocka_unit_test(child_fails),
		cmocka_unit_test(child_after),
	};
	const struct CMUnitTest	killed[] = {
		cmocka_unit_test(child_killed),
	};
	const struct CMUnitTest	grouped[] = {
		cmocka_unit_test(child_passes),
	};

	report_fd = atoi(getenv("HARNESS_TEST_FD"));
	/* Not for derpd to inherit: the parent reads to EOF. */
	(void)fcntl(report_fd, F_SETFD, FD_CLOEXEC);
	if (strcmp(mode, "fails") == 0)
		return cmocka_run_group_tests(fails, NULL, NULL);
	if (strcmp(mode, "killed") == 0)
		return cmocka_run_group_tests(killed, NULL, NULL);
	return cmocka_run_group_tests(grouped, group_setup, NULL);
}

/* ---- the parent ---- */

static bool
all_gone(const pid_t *pids)
{
	int	i;

	while (waitpid(-1, NULL, WNOHANG) > 0)
		;	/* orphans reparented to us */
	for (i = 0; i < NPIDS; i++)
		if (kill(pids[i], 0) == 0 || errno != ESRCH)
			return false;
	return true;
}

/* Run the child in mode; its exit status, and the pids it started. */
static int
run_child(const char *mode, pid_t *pids)
{
	char		 buf[128], fdstr[16];
	int		 p[2], status, i;
	ssize_t		 r;
	size_t		 len = 0;
	pid_t		 child;
	char		*s, *e;

	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	assert_int_equal(pipe(p), 0);
	assert_true((child = fork()) >= 0);
	if (child == 0) {
		close(p[0]);
		snprintf(fdstr, sizeof(fdstr), "%d", p[1]);
		setenv("HARNESS_TEST_CHILD", mode, 1);
		setenv("HARNESS_TEST_FD", fdstr, 1);
		execl("/proc/self/exe", "test_harness", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	while (len < sizeof(buf) - 1 &&
	    (r = read(p[0], buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)r;
	buf[len] = '\0';
	close(p[0]);
	assert_int_equal(waitpid(child, &status, 0), child);
	for (i = 0, s = buf; i < NPIDS; i++, s = e) {
		pids[i] = (pid_t)strtol(s, &e, 10);
		assert_true(e != s && pids[i] > 1);
	}
	return status;
}

static void
expect_gone(const pid_t *pids)
{
	uint64_t	deadline = now_ms() + (uint64_t)time_scaled(15000);

	while (!all_gone(pids) && now_ms() < deadline)
		(void)poll(NULL, 0, 10);
	if (!all_gone(pids))
		fail_msg("pids %d %d %d outlived the test", (int)pids[0],
		    (int)pids[1], (int)pids[2]);
}

/* A failed assertion: the test's teardown stops the node at once (the
 * next test in the child sees it gone), and the child reports exactly
 * the one deliberate failure. */
static void
test_harness_failed_assertion_stops_node(void **state)
{
	pid_t	pids[NPIDS];
	int	st;

	(void)state;
	st = run_child("fails", pids);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 1);
	expect_gone(pids);
}

/* SIGKILL of the test process: no teardown, no atexit; the supervisor's
 * parent-death signal and the workers' own take the node down. */
static void
test_harness_killed_test_takes_node(void **state)
{
	pid_t	pids[NPIDS];
	int	st;

	(void)state;
	st = run_child("killed", pids);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGKILL);
	expect_gone(pids);
}

/* A node the group setup started and nobody stopped: stopped when the
 * group ends, the test passing. */
static void
test_harness_group_node_stopped_at_end(void **state)
{
	pid_t	pids[NPIDS];
	int	st;

	(void)state;
	st = run_child("grouped", pids);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	expect_gone(pids);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_harness_failed_assertion_stops_node),
		cmocka_unit_test(test_harness_killed_test_takes_node),
		cmocka_unit_test(test_harness_group_node_stopped_at_end),
	};

	if (getenv("HARNESS_TEST_CHILD") != NULL)
		return child_main(getenv("HARNESS_TEST_CHILD"));
	print_message("(the child programs' FAILED lines are deliberate)\n");
	return cmocka_run_group_tests(tests, NULL, NULL);
}

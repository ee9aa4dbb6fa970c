/*
 * TCP settings of accepted connections (PROTOCOL.md 2.8), read back from
 * the server's side: the keepalive timer from /proc/net/tcp, and
 * TCP_NODELAY, SO_KEEPALIVE, TCP_KEEPIDLE/INTVL/CNT and TCP_USER_TIMEOUT
 * with getsockopt on a duplicate of the worker's socket (pidfd_getfd:
 * the worker is this test's descendant).  Reload changes them for new
 * connections.  The worker sets them on its listeners, which the kernel
 * copies into each accepted socket, so these also check that they are
 * inherited and that a reload can turn them off again.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

struct tcp_row {
	unsigned long	inode;
	unsigned	timer;		/* 0 none, 2 keepalive, ... */
	unsigned long	when;		/* clock ticks to expiry */
};

/* The server side of the connection 127.0.0.1:sport <- :cport. */
static bool
proc_tcp(uint16_t sport, uint16_t cport, struct tcp_row *r)
{
	FILE		*f = fopen("/proc/net/tcp", "r");
	char		 line[512];
	unsigned	 lp, rp, st;
	bool		 found = false;

	assert_non_null(f);
	while (!found && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, " %*u: %*8x:%4x %*8x:%4x %2x %*x:%*x %x:%lx "
		    "%*x %*u %*u %lu", &lp, &rp, &st, &r->timer,
		    &r->when, &r->inode) == 6 && lp == sport && rp == cport &&
		    st == 1)
			found = true;
	fclose(f);
	return found;
}

/* The worker's fd number for socket inode, or -1 (not accepted yet). */
static int
worker_fd(pid_t w, unsigned long inode)
{
	char		 dir[64], path[400], link[64], want[64];
	DIR		*d;
	struct dirent	*e;
	int		 fd = -1;
	ssize_t		 n;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)w);
	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	if ((d = opendir(dir)) == NULL)
		return -1;
	while (fd < 0 && (e = readdir(d)) != NULL) {
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if ((n = readlink(path, link, sizeof(link) - 1)) <= 0)
			continue;
		link[n] = '\0';
		if (strcmp(link, want) == 0)
			fd = atoi(e->d_name);
	}
	closedir(d);
	return fd;
}

static int
opt(int fd, int level, int name)
{
	int		v = -1;
	socklen_t	l = sizeof(v);

	assert_int_equal(getsockopt(fd, level, name, &v, &l), 0);
	return v;
}

/* Connect, wait until the worker accepted and tuned the socket, and
 * check what it set.  keepalive_s 0: keepalive off. */
static void
check_conn(const struct node *n, int keepalive_s, int user_timeout_ms)
{
	struct sockaddr_in	sa;
	socklen_t		sl = sizeof(sa);
	struct tcp_row		r;
	pid_t			w = node_worker_pid(n, 0);
	uint64_t		deadline = now_ms() + 5000;
	long			hz = sysconf(_SC_CLK_TCK);
	int			c, sfd = -1, pfd, dup;

	assert_true(w > 0);
	assert_true((c = raw_connect(n->port)) >= 0);
	assert_int_equal(getsockname(c, (struct sockaddr *)&sa, &sl), 0);
	/* Accepted, and (when on) its keepalive timer armed. */
	for (;;) {
		if (proc_tcp(n->port, ntohs(sa.sin_port), &r) &&
		    (sfd = worker_fd(w, r.inode)) >= 0 &&
		    (keepalive_s == 0 || r.timer == 2))
			break;
		if (now_ms() > deadline)
			fail_msg("connection not accepted/tuned (timer %u)",
			    r.timer);
		poll(NULL, 0, 10);	/* poll interval */
	}
	if (keepalive_s > 0) {
		/* Idle time: the timer fires keepalive_s after the last
		 * activity (just now). */
		assert_int_equal(r.timer, 2);
		assert_in_range(r.when, (unsigned long)(keepalive_s - 5) *
		    (unsigned long)hz, (unsigned long)keepalive_s *
		    (unsigned long)hz);
	} else {
		assert_int_equal(r.timer, 0);
	}
	pfd = (int)syscall(SYS_pidfd_open, w, 0);
	assert_true(pfd >= 0);
	dup = (int)syscall(SYS_pidfd_getfd, pfd, sfd, 0);
	if (dup < 0)
		fail_msg("pidfd_getfd: %s", strerror(errno));
	assert_int_equal(opt(dup, IPPROTO_TCP, TCP_NODELAY), 1);
	assert_int_equal(opt(dup, SOL_SOCKET, SO_KEEPALIVE) != 0,
	    keepalive_s > 0);
	if (keepalive_s > 0) {
		assert_int_equal(opt(dup, IPPROTO_TCP, TCP_KEEPIDLE),
		    keepalive_s);
		assert_int_equal(opt(dup, IPPROTO_TCP, TCP_KEEPINTVL), 15);
		assert_int_equal(opt(dup, IPPROTO_TCP, TCP_KEEPCNT), 9);
	}
	assert_int_equal(opt(dup, IPPROTO_TCP, TCP_USER_TIMEOUT),
	    user_timeout_ms);
	close(dup);
	close(pfd);
	close(c);
}

static void
test_tcp_settings_defaults_and_reload(void **state)
{
	struct node	*n = node_start(false, NULL);
	char		 cmd[600];

	(void)state;
	check_conn(n, 600, 15000);	/* Go derper's defaults */
	/* Reloadable: new connections get the new values. */
	snprintf(cmd, sizeof(cmd), "printf 'derp = { tcp_keepalive_s = 321; "
	    "tcp_user_timeout_ms = 7000; };\\n' >> %s", n->conf);
	assert_int_equal(system(cmd), 0);
	kill(n->pid, SIGHUP);
	assert_true(node_log_wait(n, "worker=0 event=reloaded", 5000));
	check_conn(n, 321, 7000);
	node_stop(n);
	node_free(n);
}

static void
test_tcp_settings_off(void **state)
{
	struct node	*n = node_start(false, "derp = { tcp_keepalive_s = "
			    "0; tcp_user_timeout_ms = 0; };\n");

	(void)state;
	check_conn(n, 0, 0);
	node_stop(n);
	node_free(n);
}

/* On, then off by reload: the listener must be reset, not left as it
 * was (accepted sockets inherit whatever it has). */
static void
test_tcp_settings_reload_off(void **state)
{
	struct node	*n = node_start(false, NULL);
	char		 cmd[600];

	(void)state;
	check_conn(n, 600, 15000);
	snprintf(cmd, sizeof(cmd), "printf 'derp = { tcp_keepalive_s = 0; "
	    "tcp_user_timeout_ms = 0; };\\n' >> %s", n->conf);
	assert_int_equal(system(cmd), 0);
	kill(n->pid, SIGHUP);
	assert_true(node_log_wait(n, "worker=0 event=reloaded", 5000));
	check_conn(n, 0, 0);
	node_stop(n);
	node_free(n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_settings_defaults_and_reload),
		cmocka_unit_test(test_tcp_settings_off),
		cmocka_unit_test(test_tcp_settings_reload_off),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

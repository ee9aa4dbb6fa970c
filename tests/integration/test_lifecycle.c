/*
 * Node lifecycle (issue 3): SIGHUP reloads certificates without dropping
 * anyone and refuses bad or restart-only changes; the sd_notify sequence
 * (READY, STATUS, RELOADING + MONOTONIC_USEC, STOPPING) and a watchdog
 * that stops while a worker hangs, seen on a NOTIFY_SOCKET the test binds.
 */
#include <errno.h>
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
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static void
new_cert(const struct node *n, const char *name)
{
	char	cmd[4096];

	snprintf(cmd, sizeof(cmd), "openssl req -x509 -newkey ec -pkeyopt "
	    "ec_paramgen_curve:prime256v1 -nodes -keyout %s/%s.key -out "
	    "%s/%s.pem -days 2 -subj /CN=localhost -addext "
	    "subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null && "
	    "cp %s/%s.pem %s/cert.pem && cp %s/%s.key %s/key.pem", n->dir, name,
	    n->dir, name, n->dir, name, n->dir, n->dir, name, n->dir);
	assert_int_equal(system(cmd), 0);
}

static struct client *
client_ca(const struct node *n, const char *ca, int *err)
{
	struct client_opts	o;

	node_opts(n, &o);
	o.ca_file = ca;
	return client_connect(&o, err);
}

static void
wait_count(const struct node *n, const char *needle, int want)
{
	uint64_t	deadline = now_ms() + 10000;

	while (node_log_count(n, needle) < want && now_ms() < deadline)
		(void)node_log_wait(n, "\x01never", 10);
	assert_true(node_log_count(n, needle) >= want);
}

static void
test_lifecycle_sighup_new_certificate(void **state)
{
	struct node		*n = node_start(true, "workers = 2;\n");
	char			 old[400], fresh[400];
	struct client		*a, *b, *c;
	int			 err;

	(void)state;
	snprintf(old, sizeof(old), "%s/old.pem", n->dir);
	snprintf(fresh, sizeof(fresh), "%s/fresh.pem", n->dir);
	{
		char	cmd[900];

		snprintf(cmd, sizeof(cmd), "cp %s %s", n->cert, old);
		assert_int_equal(system(cmd), 0);
	}
	a = node_client(n);
	b = node_client(n);
	new_cert(n, "fresh");
	kill(n->pid, SIGHUP);
	/* The supervisor validates, then each worker re-reads. */
	wait_count(n, "event=reloaded", 3);
	assert_null(client_ca(n, old, &err));		/* old cert is gone */
	assert_non_null(c = client_ca(n, fresh, &err));	/* new one served */
	client_free(c);
	/* Nobody was dropped: they still reach each other. */
	reach(a, b);
	client_free(a);
	client_free(b);
	node_stop(n);
	node_free(n);
}

static void
rewrite_conf(const struct node *n, const char *from, const char *to)
{
	char	cmd[1024];

	snprintf(cmd, sizeof(cmd), "sed -i 's|%s|%s|' %s", from, to, n->conf);
	assert_int_equal(system(cmd), 0);
}

static void
test_lifecycle_reload_refusals(void **state)
{
	struct node	*n = node_start(false, NULL);
	struct client	*c = node_client(n);
	char		 port[32];

	(void)state;
	/* A setting that needs a restart. */
	snprintf(port, sizeof(port), "127.0.0.1:%u", n->port);
	rewrite_conf(n, port, "127.0.0.1:1");
	kill(n->pid, SIGHUP);
	assert_true(node_log_wait(n, "reload_refused setting=listen.http "
	    "reason=needs_restart", 5000));
	/* An invalid file. */
	rewrite_conf(n, "127.0.0.1:1", "nonsense");
	kill(n->pid, SIGHUP);
	assert_true(node_log_wait(n, "bad address", 5000));
	/* The old configuration keeps serving. */
	assert_int_equal(client_ping(c, (const uint8_t *)"stillup!"), 0);
	client_free(c);
	node_stop(n);
	node_free(n);
}

struct notify {
	int	fd;
	char	path[300];
};

static void
notify_open(struct notify *nt, const char *dir)
{
	struct sockaddr_un	sa = { .sun_family = AF_UNIX };

	snprintf(nt->path, sizeof(nt->path), "%s/notify", dir);
	assert_true(strlen(nt->path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, nt->path, strlen(nt->path) + 1);
	nt->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(nt->fd >= 0);
	assert_int_equal(bind(nt->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
}

/* Wait for a datagram containing needle; returns it (static). */
static const char *
notify_wait(struct notify *nt, const char *needle, int timeout_ms)
{
	static char	buf[1024];
	uint64_t	deadline = now_ms() + (uint64_t)timeout_ms;
	struct pollfd	p = { .fd = nt->fd, .events = POLLIN };
	ssize_t		r;

	while (now_ms() < deadline) {
		if (poll(&p, 1, (int)(deadline - now_ms())) <= 0)
			continue;
		if ((r = recv(nt->fd, buf, sizeof(buf) - 1, 0)) <= 0)
			continue;
		buf[r] = '\0';
		if (strstr(buf, needle) != NULL)
			return buf;
	}
	return NULL;
}

/* True if no datagram with needle arrives for quiet_ms. */
static bool
notify_quiet(struct notify *nt, const char *needle, int quiet_ms)
{
	return notify_wait(nt, needle, quiet_ms) == NULL;
}

static void
test_lifecycle_sd_notify_and_watchdog(void **state)
{
	struct node	*n = node_new();
	struct notify	 nt;
	const char	*msg;
	pid_t		 victim;
	int		 st;

	(void)state;
	notify_open(&nt, n->dir);
	setenv("NOTIFY_SOCKET", nt.path, 1);
	setenv("WATCHDOG_USEC", "1000000", 1);
	node_start_in(n, false, "workers = 2;\n");
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	assert_non_null(notify_wait(&nt, "READY=1", 5000));
	assert_non_null(msg = notify_wait(&nt, "STATUS=", 5000));
	assert_non_null(strstr(msg, "2/2 workers"));
	assert_non_null(notify_wait(&nt, "WATCHDOG=1", 3000));
	/* Reload: RELOADING=1 with a timestamp, then READY=1 again. */
	kill(n->pid, SIGHUP);
	assert_non_null(msg = notify_wait(&nt, "RELOADING=1", 5000));
	assert_non_null(strstr(msg, "MONOTONIC_USEC="));
	assert_non_null(notify_wait(&nt, "READY=1", 5000));
	/* A hung worker stops the watchdog until it is replaced. */
	victim = node_worker_pid(n, 1);
	assert_true(victim > 0);
	assert_int_equal(kill(victim, SIGSTOP), 0);
	(void)notify_wait(&nt, "\x01drain", 2100);	/* two beats missed */
	assert_true(notify_quiet(&nt, "WATCHDOG=1", 1500));
	assert_true(node_log_wait(n, "event=worker_hung worker=1", 10000));
	assert_true(node_log_wait(n, "signal=9", 5000));
	assert_non_null(notify_wait(&nt, "WATCHDOG=1", 10000));
	/* Stop: STOPPING=1 and a clean exit. */
	kill(n->pid, SIGTERM);
	assert_non_null(notify_wait(&nt, "STOPPING=1", 5000));
	assert_int_equal(waitpid(n->pid, &st, 0), n->pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	n->stopped = true;
	close(nt.fd);
	node_free(n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lifecycle_sighup_new_certificate),
		cmocka_unit_test(test_lifecycle_reload_refusals),
		cmocka_unit_test(test_lifecycle_sd_notify_and_watchdog),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

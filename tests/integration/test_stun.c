/*
 * STUN on the real derpd (PROTOCOL.md 7): a Tailscale-shaped binding
 * request gets our own address back; a plain RFC 5389 request is ignored
 * by default and answered with stun.any_client, where Debian's real STUN
 * client (coturn's turnutils_stunclient) is used as the peer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "derp/stun.h"
#include "harness.h"

static struct node *
start(bool any, uint16_t *stun_port)
{
	struct node	*n = node_new();
	char		 extra[512];

	*stun_port = free_tcp_port();	/* likely free for UDP too */
	n->stun_port = *stun_port;
	snprintf(extra, sizeof(extra), "workers = 2;\nstun = { any_client = "
	    "%s; };\n", any ? "true" : "false");
	return node_start_in(n, false, extra);
}

static int
udp_to(uint16_t port, struct sockaddr_in *local)
{
	struct sockaddr_in	sa = { .sin_family = AF_INET };
	socklen_t		sl = sizeof(*local);
	int			fd = socket(AF_INET, SOCK_DGRAM, 0);

	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)local, &sl), 0);
	return fd;
}

static void
tailscale_request(int fd, uint8_t txid[STUN_TXID_LEN], uint8_t seed)
{
	uint8_t	req[STUN_REQUEST_LEN];

	memset(txid, seed, STUN_TXID_LEN);
	stun_build_request(req, txid);
	assert_int_equal(send(fd, req, sizeof(req), 0), sizeof(req));
}

static void
expect_reply(int fd, const uint8_t txid[STUN_TXID_LEN],
    const struct sockaddr_in *local)
{
	uint8_t			buf[256];
	struct pollfd		p = { .fd = fd, .events = POLLIN };
	struct sockaddr_storage	got;
	ssize_t			n;

	assert_int_equal(poll(&p, 1, 5000), 1);
	n = recv(fd, buf, sizeof(buf), 0);
	assert_int_equal(n, 32);	/* IPv4: family 0x01 (15 U1) */
	assert_int_equal(stun_parse_response(buf, (size_t)n, txid, &got), 0);
	assert_int_equal(got.ss_family, AF_INET);
	assert_memory_equal(&((struct sockaddr_in *)&got)->sin_addr,
	    &local->sin_addr, 4);
	assert_int_equal(((struct sockaddr_in *)&got)->sin_port,
	    local->sin_port);
}

static void
test_stun_tailscale_only_by_default(void **state)
{
	struct node		*n;
	struct sockaddr_in	 local;
	uint8_t			 txid[STUN_TXID_LEN], plain[20];
	uint16_t		 port;
	int			 fd;

	(void)state;
	n = start(false, &port);
	fd = udp_to(port, &local);
	tailscale_request(fd, txid, 1);
	expect_reply(fd, txid, &local);
	/* A plain request is ignored: the next reply is for the Tailscale
	 * request sent after it (datagrams are handled in order). */
	memset(plain, 0, sizeof(plain));
	plain[1] = 0x01;
	plain[4] = 0x21;
	plain[5] = 0x12;
	plain[6] = 0xa4;
	plain[7] = 0x42;
	assert_int_equal(send(fd, plain, sizeof(plain), 0), sizeof(plain));
	tailscale_request(fd, txid, 2);
	expect_reply(fd, txid, &local);
	assert_true(node_metric(n,
	    "stun_requests{disposition=\"not_stun\"}") >= 1);
	assert_true(node_metric(n,
	    "stun_requests{disposition=\"success\"}") >= 2);
	close(fd);
	node_stop(n);
	node_free(n);
}

static void
test_stun_any_client_with_coturn(void **state)
{
	struct node	*n;
	uint16_t	 port;
	char		 cmd[256], out[1024];
	FILE		*p;
	size_t		 len;

	(void)state;
	n = start(true, &port);
	snprintf(cmd, sizeof(cmd), "timeout 10 turnutils_stunclient -p %u "
	    "127.0.0.1 2>&1", port);
	assert_non_null(p = popen(cmd, "r"));
	len = fread(out, 1, sizeof(out) - 1, p);
	out[len] = '\0';
	assert_int_equal(pclose(p), 0);
	if (strstr(out, "UDP reflexive addr: 127.0.0.1:") == NULL)
		fail_msg("turnutils_stunclient said: %s", out);
	node_stop(n);
	node_free(n);
}

/* Wait until the supervisor has logged needle want times. */
static void
wait_log_count(const struct node *n, const char *needle, int want)
{
	uint64_t	deadline = now_ms() + (uint64_t)time_scaled(15000);

	while (node_log_count(n, needle) < want && now_ms() < deadline)
		(void)poll(NULL, 0, 10);
	if (node_log_count(n, needle) < want)
		fail_msg("\"%s\" %d times, want %d (%s)", needle,
		    node_log_count(n, needle), want, n->log);
}

/* One request from each of NSOCK source ports at once; all answered
 * within the deadline.  Returns how many were. */
static int
burst(uint16_t port, uint8_t seed)
{
	enum { NSOCK = 64 };
	struct sockaddr_in	local[NSOCK];
	struct pollfd		p[NSOCK];
	uint8_t			txid[NSOCK][STUN_TXID_LEN], buf[256];
	struct sockaddr_storage	got;
	uint64_t		deadline;
	int			i, left = NSOCK, ok = 0;
	ssize_t			r;

	for (i = 0; i < NSOCK; i++) {
		p[i].fd = udp_to(port, &local[i]);
		p[i].events = POLLIN;
		tailscale_request(p[i].fd, txid[i], (uint8_t)(seed + i));
	}
	deadline = now_ms() + (uint64_t)time_scaled(1000);
	while (left > 0 && now_ms() < deadline) {
		if (poll(p, NSOCK, 50) <= 0)
			continue;
		for (i = 0; i < NSOCK; i++) {
			if (p[i].fd < 0 || !(p[i].revents & POLLIN))
				continue;
			r = recv(p[i].fd, buf, sizeof(buf), 0);
			if (r > 0 && stun_parse_response(buf, (size_t)r,
			    txid[i], &got) == 0)
				ok++;
			close(p[i].fd);
			p[i].fd = -1;
			left--;
		}
	}
	for (i = 0; i < NSOCK; i++)
		if (p[i].fd >= 0)
			close(p[i].fd);
	return ok;
}

/* Worker 1 crash-loops: while it is down its UDP socket still takes
 * about half the requests, so its siblings must answer them. */
static void
test_stun_answered_while_worker_down(void **state)
{
	enum { KILLS = 6 };
	struct node	*n;
	uint16_t	 port;
	int		 k, ok, started;
	char		 needle[64];

	(void)state;
	n = start(false, &port);
	assert_int_equal(burst(port, 0), 64);
	for (k = 0; k < KILLS; k++) {
		wait_log_count(n, "event=worker_ready worker=1 ", k + 1);
		assert_int_equal(kill(node_worker_pid(n, 1), SIGKILL), 0);
		wait_log_count(n, "event=worker_exited worker=1 ", k + 1);
	}
	/* Down for a 3.2 s backoff now. */
	snprintf(needle, sizeof(needle), "event=worker_started worker=1 ");
	started = node_log_count(n, needle);
	ok = burst(port, 1);
	print_message("%d of 64 STUN requests answered while worker 1 was "
	    "down\n", ok);
	assert_int_equal(node_log_count(n, needle), started);
	assert_int_equal(ok, 64);
	/* Back: it serves its own socket again, the others let go. */
	wait_log_count(n, "event=worker_ready worker=1 ", KILLS + 1);
	assert_int_equal(burst(port, 2), 64);
	node_stop_killed(n, KILLS);
	node_free(n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stun_tailscale_only_by_default),
		cmocka_unit_test(test_stun_any_client_with_coturn),
		cmocka_unit_test(test_stun_answered_while_worker_down),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Test helper: whether this kernel attaches the "tls" TCP ULP (kernel
 * TLS), asked directly on a connected loopback pair.  Header-only, for
 * the unit and integration tests of worker/ktls.c; include cmocka.h
 * first.
 */
#ifndef TESTS_KERNEL_TLS_H
#define TESTS_KERNEL_TLS_H

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

static inline bool
kernel_has_tls_ulp(void)
{
	struct sockaddr_in	sa = { .sin_family = AF_INET };
	socklen_t		sl = sizeof(sa);
	int			l, c, a, ok;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((l = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
	assert_true((c = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_true((a = accept(l, NULL, NULL)) >= 0);
	ok = setsockopt(c, IPPROTO_TCP, TCP_ULP, "tls", 3) == 0;
	close(a);
	close(c);
	close(l);
	return ok;
}

#endif

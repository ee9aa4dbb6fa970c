/*
 * Unit tests for mesh/link.c's address lookups: a lookup abandoned at
 * its deadline while the resolver still runs (gai_cancel cannot stop
 * it) must keep its memory until the resolver is done, even when the
 * link restarts meanwhile.  The resolver is played by the test through
 * -Wl,--wrap seams on getaddrinfo_a and friends (the Makefile links this
 * test so): only then is "still running after the link gave up" and
 * "answers late" deterministic.  The late answer is written exactly as
 * glibc's resolver thread writes it: ar_result, then __return.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/loop.h"
#include "derp/key.h"
#include "mesh/link.h"

#define MAX_REQS	16

int	__wrap_getaddrinfo_a(int mode, struct gaicb *list[], int n,
	    struct sigevent *sev);
int	__wrap_gai_error(struct gaicb *req);
int	__wrap_gai_cancel(struct gaicb *req);
int	__wrap_gai_suspend(const struct gaicb *const list[], int n,
	    const struct timespec *timeout);

static struct gaicb	*reqs[MAX_REQS];
static int		 nreqs;

int
__wrap_getaddrinfo_a(int mode, struct gaicb *list[], int n,
    struct sigevent *sev)
{
	int	i;

	assert_int_equal(mode, GAI_NOWAIT);
	assert_null(sev);
	for (i = 0; i < n; i++) {
		assert_true(nreqs < MAX_REQS);
		list[i]->__return = EAI_INPROGRESS;
		reqs[nreqs++] = list[i];
	}
	return 0;
}

int
__wrap_gai_error(struct gaicb *req)
{
	return req->__return;
}

/* Like a request a resolver thread has already picked up. */
int
__wrap_gai_cancel(struct gaicb *req)
{
	return req->__return == EAI_INPROGRESS ? EAI_NOTCANCELED :
	    EAI_ALLDONE;
}

int
__wrap_gai_suspend(const struct gaicb *const list[], int n,
    const struct timespec *timeout)
{
	(void)list;
	(void)n;
	(void)timeout;
	return EAI_AGAIN;
}

/* The resolver finishes req: 127.0.0.1 at the requested service. */
static void
resolve(struct gaicb *req)
{
	struct addrinfo	*ai = NULL;

	assert_int_equal(getaddrinfo("127.0.0.1", req->ar_service,
	    req->ar_request, &ai), 0);
	req->ar_result = ai;
	req->__return = 0;
}

struct drive {
	struct loop		*l;
	struct loop_timer	 t;
	int			 lfd;
	char			 port[8];
	uint64_t		 until;
	bool			 answered, accepted;
	struct gaicb		*first;
};

static void
no_key(void *arg, int idx, const uint8_t key[DERP_KEY_LEN])
{
	(void)arg;
	(void)idx;
	(void)key;
}

static void
no_down(void *arg, int idx)
{
	(void)arg;
	(void)idx;
}

static void
step(struct loop_timer *t)
{
	struct drive	*d = t->arg;
	struct pollfd	 p = { .fd = d->lfd, .events = POLLIN };
	int		 fd;

	if (loop_now(d->l) > d->until)
		fail_msg("lookups=%d answered=%d", nreqs, d->answered);
	if (!d->answered && nreqs >= 2) {
		/* The link gave up on the first lookup and started a second:
		 * the first's memory is still the resolver's, intact. */
		d->first = reqs[0];
		assert_ptr_not_equal(reqs[0], reqs[1]);
		assert_string_equal(reqs[0]->ar_name, "peer.test");
		assert_string_equal(reqs[0]->ar_service, d->port);
		assert_int_equal(reqs[0]->ar_request->ai_socktype,
		    SOCK_STREAM);
		assert_int_equal(reqs[1]->__return, EAI_INPROGRESS);
		resolve(reqs[0]);	/* too late: nobody waits for it */
		assert_null(reqs[1]->ar_result);
		resolve(reqs[1]);
		d->answered = true;
	}
	if (d->answered && poll(&p, 1, 0) == 1) {
		assert_true((fd = accept(d->lfd, NULL, NULL)) >= 0);
		close(fd);
		d->accepted = true;
		loop_stop(d->l);
		return;
	}
	assert_int_equal(loop_timer_set(d->l, &d->t, 5), 0);
}

static void
test_link_lookup_abandoned_then_restart(void **state)
{
	struct sockaddr_in	 sa = { .sin_family = AF_INET };
	socklen_t		 sl = sizeof(sa);
	uint8_t			 priv[DERP_KEY_LEN], psk[DERP_KEY_LEN];
	char			 peer[64];
	struct mesh_link_cb	 cb = { no_key, no_key, no_down, NULL };
	struct mesh_link_conf	 lc;
	struct mesh_link	*lk;
	struct drive		 d;

	(void)state;
	memset(&d, 0, sizeof(d));
	nreqs = 0;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((d.lfd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(bind(d.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(d.lfd, 4), 0);
	assert_int_equal(getsockname(d.lfd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(d.port, sizeof(d.port), "%u", ntohs(sa.sin_port));
	snprintf(peer, sizeof(peer), "peer.test:%s", d.port);
	derp_key_generate(priv);
	memset(psk, 7, sizeof(psk));
	memset(&lc, 0, sizeof(lc));
	lc.peer = peer;
	lc.priv = priv;
	lc.psk = psk;
	assert_non_null(lc.ctx = mesh_tls_ctx(NULL, true));
	lc.queue_bytes = 65536;
	lc.connect_timeout_ms = 50;
	assert_non_null(d.l = loop_new());
	assert_non_null(lk = mesh_link_new(d.l, &lc, &cb));
	assert_int_equal(nreqs, 1);
	d.until = loop_now(d.l) + 5000;
	loop_timer_init(&d.t, step, &d);
	assert_int_equal(loop_timer_set(d.l, &d.t, 5), 0);
	assert_int_equal(loop_run(d.l), 0);
	assert_true(d.accepted);
	assert_int_equal(nreqs, 2);
	/* Frees the late answer too (LeakSanitizer checks). */
	mesh_link_free(lk);
	loop_free(d.l);
	SSL_CTX_free(lc.ctx);
	close(d.lfd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_link_lookup_abandoned_then_restart),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

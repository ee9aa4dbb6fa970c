/*
 * /bootstrap-dns (PROTOCOL.md 8.5) on the real derpd: the published map
 * in Go's format, ?q= for unpublished names with rollout percentages
 * from TXT records served by a small DNS responder in this test, the
 * counters, last-good answers across failed refreshes, and reload.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "harness.h"
#include "worker/bootdns.h"

static char	buf[65536];

/* ---- a TXT responder on 127.0.0.1 ---- */

enum { DNS_ANSWER, DNS_SERVFAIL };

struct dns {
	int		 fd;
	uint16_t	 port;
	pthread_t	 th;
	atomic_bool	 stop;
	atomic_int	 mode;
	atomic_int	 queries;
	atomic_int	 r100;		/* value served for r100.test */
};

/* Question name of a query as dotted text; its end offset or 0. */
static size_t
qname(const uint8_t *q, size_t n, char *out, size_t cap)
{
	size_t	off = 12, o = 0, l;

	while (off < n && (l = q[off]) != 0) {
		if (l > 63 || off + 1 + l > n || o + l + 1 >= cap)
			return 0;
		if (o > 0)
			out[o++] = '.';
		memcpy(out + o, q + off + 1, l);
		o += l;
		off += 1 + l;
	}
	out[o] = '\0';
	return off < n ? off + 1 : 0;
}

static void
dns_reply(struct dns *d, const uint8_t *q, size_t n,
    const struct sockaddr_in *to)
{
	uint8_t		r[512];
	char		name[256], val[8];
	size_t		end = qname(q, n, name, sizeof(name)), len;
	int		v = -1;

	if (end == 0 || end + 4 > n || end + 4 + 16 + sizeof(val) > sizeof(r))
		return;
	if (strcmp(name, "r100.test") == 0)
		v = atomic_load(&d->r100);
	else if (strcmp(name, "r0.test") == 0)
		v = 0;
	else if (strcmp(name, "r50.test") == 0)
		v = 50;
	memcpy(r, q, end + 4);
	r[2] = 0x81;
	r[3] = atomic_load(&d->mode) == DNS_SERVFAIL ? 0x82 :
	    v < 0 ? 0x83 : 0x80;
	memset(r + 6, 0, 6);
	len = end + 4;
	if (r[3] == 0x80) {
		int	sl = snprintf(val, sizeof(val), "%d", v);
		uint8_t	rr[] = { 0xc0, 0x0c, 0, 16, 0, 1, 0, 0, 0, 60, 0,
			    (uint8_t)(sl + 1), (uint8_t)sl };

		r[7] = 1;
		memcpy(r + len, rr, sizeof(rr));
		memcpy(r + len + sizeof(rr), val, (size_t)sl);
		len += sizeof(rr) + (size_t)sl;
	}
	(void)sendto(d->fd, r, len, 0, (const struct sockaddr *)to,
	    sizeof(*to));
}

static void *
dns_main(void *arg)
{
	struct dns		*d = arg;
	struct pollfd		 p = { .fd = d->fd, .events = POLLIN };
	struct sockaddr_in	 from;
	socklen_t		 fl;
	uint8_t			 q[512];
	ssize_t			 n;

	while (!atomic_load(&d->stop)) {
		if (poll(&p, 1, 50) <= 0)
			continue;
		fl = sizeof(from);
		n = recvfrom(d->fd, q, sizeof(q), 0, (struct sockaddr *)&from,
		    &fl);
		if (n < 12)
			continue;
		atomic_fetch_add(&d->queries, 1);
		dns_reply(d, q, (size_t)n, &from);
	}
	return NULL;
}

static void
dns_start(struct dns *d)
{
	struct sockaddr_in	sa = { .sin_family = AF_INET };
	socklen_t		sl = sizeof(sa);

	memset(d, 0, sizeof(*d));
	atomic_store(&d->r100, 100);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((d->fd = socket(AF_INET, SOCK_DGRAM, 0)) >= 0);
	assert_int_equal(bind(d->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(d->fd, (struct sockaddr *)&sa, &sl), 0);
	d->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&d->th, NULL, dns_main, d), 0);
}

static void
dns_stop(struct dns *d)
{
	atomic_store(&d->stop, true);
	pthread_join(d->th, NULL);
	close(d->fd);
}

/* ---- requests ---- */

/* GET /bootstrap-dns[?query]; returns the body (in buf) or fails. */
static const char *
bootdns(const struct node *n, const char *query)
{
	struct client_opts	 o;
	char			 path[512];
	char			*body;

	node_opts(n, &o);
	snprintf(path, sizeof(path), "/bootstrap-dns%s%s", query ? "?" : "",
	    query ? query : "");
	assert_int_equal(client_http_get(&o, "GET", path, NULL, buf,
	    sizeof(buf)), 200);
	assert_non_null(body = strstr(buf, "\r\n\r\n"));
	return body + 4;
}

/* The keys of a JSON object body, sorted, joined by ','. */
static void
keys(const char *body, char *out, size_t cap)
{
	json_t		*o = json_loads(body, 0, NULL);
	const char	*k;
	json_t		*v;
	size_t		 len = 0;

	assert_non_null(o);
	assert_true(json_is_object(o));
	out[0] = '\0';
	json_object_foreach(o, k, v) {
		assert_true(json_is_array(v));
		len += (size_t)snprintf(out + len, cap - len, "%s%s",
		    len ? "," : "", k);
	}
	json_decref(o);
}

static void
wait_body(const struct node *n, const char *needle)
{
	uint64_t	deadline = now_ms() + 10000;

	while (strstr(bootdns(n, NULL), needle) == NULL) {
		if (now_ms() > deadline)
			fail_msg("bootstrap-dns never served %s", needle);
		poll(NULL, 0, 20);	/* poll interval, not a sync sleep */
	}
}

static void
wait_log(const struct node *n, const char *needle, int count)
{
	uint64_t	deadline = now_ms() + 10000;

	while (node_log_count(n, needle) < count) {
		if (now_ms() > deadline)
			fail_msg("no %d x %s in the log", count, needle);
		poll(NULL, 0, 20);
	}
}

static void
test_bootdns_nothing_configured(void **state)
{
	struct node	*n = node_start(false, NULL);
	const char	*b;

	(void)state;
	b = bootdns(n, NULL);
	assert_string_equal(b, "");
	assert_non_null(strstr(buf, "\r\nContent-Type: application/json\r\n"));
	assert_non_null(strstr(buf, "\r\nContent-Length: 0\r\n"));
	assert_non_null(strstr(buf, "\r\nConnection: close\r\n"));
	assert_non_null(strstr(buf, "\r\nX-Frame-Options: DENY\r\n"));
	assert_non_null(strstr(buf, "\r\nStrict-Transport-Security: "));
	assert_string_equal(bootdns(n, "q=nothing.example"), "");
	assert_int_equal(node_metric(n, "bootstrap_dns_requests"), 2);
	assert_int_equal(node_metric(n, "bootstrap_dns_unpublished_misses"), 1);
	assert_int_equal(node_metric(n, "bootstrap_dns_queried_domains"), 1);
	node_stop(n);
	node_free(n);
}

static void
test_bootdns_published_and_rollout(void **state)
{
	struct dns	 d;
	struct node	*n;
	char		 extra[1024], k[512];
	const char	*b;
	uint8_t		 lo[16] = { [10] = 0xff, [11] = 0xff, 127, 0, 0,
			    1 };
	bool		 half, again;
	const char	*go_fmt = "{\n\t\"127.0.0.3\": [\n\t\t\"127.0.0.3\"\n"
			    "\t],\n\t\"localhost\": [\n\t\t\"";

	(void)state;
	dns_start(&d);
	snprintf(extra, sizeof(extra), "bootstrap_dns = {\n"
	    " names = ( \"127.0.0.3\", \"localhost\" );\n"
	    " unpublished = ( \"127.0.0.9\", \"127.0.0.10/r0.test\",\n"
	    "   \"127.0.0.11/r100.test\", \"127.0.0.12/r50.test\",\n"
	    "   \"127.0.0.13/missing.test\" );\n"
	    " txt_resolver = \"127.0.0.1:%u\";\n};\n", d.port);
	n = node_start(false, extra);
	wait_body(n, "127.0.0.3");
	/* Go's MarshalIndent(map, "", "\t"): sorted keys, tab indents. */
	b = bootdns(n, NULL);
	assert_int_equal(strncmp(b, go_fmt, strlen(go_fmt)), 0);
	keys(b, k, sizeof(k));
	/* Published names only. */
	assert_string_equal(k, "127.0.0.3,localhost");
	/* Unpublished, no TXT name: 100 %, just that name. */
	keys(bootdns(n, "q=127.0.0.9"), k, sizeof(k));
	assert_string_equal(k, "127.0.0.9");
	assert_non_null(strstr(buf, "\"127.0.0.9\": [\n\t\t\"127.0.0.9\"\n"));
	/* Form-encoded query, other parameters around it. */
	keys(bootdns(n, "a=1&q=127%2E0%2E0%2E11&q=x"), k, sizeof(k));
	assert_string_equal(k, "127.0.0.11");
	/* TXT "0" and a TXT name that does not exist: 0 %, full map. */
	keys(bootdns(n, "q=127.0.0.10"), k, sizeof(k));
	assert_string_equal(k, "127.0.0.3,localhost");
	keys(bootdns(n, "q=127.0.0.13"), k, sizeof(k));
	assert_string_equal(k, "127.0.0.3,localhost");
	/* 50 %: the draw for 127.0.0.1 decides, the same every time. */
	half = bootdns_rollout(lo, 50);
	keys(bootdns(n, "q=127.0.0.12"), k, sizeof(k));
	assert_string_equal(k, half ? "127.0.0.12" : "127.0.0.3,localhost");
	keys(bootdns(n, "q=127.0.0.12"), k, sizeof(k));
	again = strcmp(k, "127.0.0.12") == 0;
	assert_true(again == half);
	/* Published and unknown names get the map. */
	keys(bootdns(n, "q=127.0.0.3"), k, sizeof(k));
	assert_string_equal(k, "127.0.0.3,localhost");
	keys(bootdns(n, "q=unknown.example"), k, sizeof(k));
	assert_string_equal(k, "127.0.0.3,localhost");
	assert_true(atomic_load(&d.queries) >= 3);	/* r0, r100, r50 */
	/* requests: 1 + wait_body's; the rest counted exactly. */
	assert_true(node_metric(n, "bootstrap_dns_requests") >= 10);
	assert_int_equal(node_metric(n, "bootstrap_dns_unpublished_hits"),
	    6);	/* .9, .11, .10, .13, .12 twice */
	assert_int_equal(node_metric(n,
	    "bootstrap_dns_unpublished_percent_misses"), half ? 2 : 4);
	assert_int_equal(node_metric(n, "bootstrap_dns_published_hits"), 1);
	assert_int_equal(node_metric(n, "bootstrap_dns_unpublished_misses"),
	    (half ? 2 : 4) + 1);
	assert_int_equal(node_metric(n, "bootstrap_dns_queried_domains"), 7);
	node_stop(n);
	node_free(n);
	dns_stop(&d);
}

/* A refresh that fails keeps the last good answer; a definitive new
 * answer replaces it; SIGHUP swaps the names. */
static void
test_bootdns_refresh_and_reload(void **state)
{
	struct dns	 d;
	struct node	*n;
	char		 extra[1024], k[512], cmd[1024];
	int		 done;

	(void)state;
	dns_start(&d);
	snprintf(extra, sizeof(extra), "bootstrap_dns = {\n"
	    " names = ( \"127.0.0.3\" );\n"
	    " unpublished = ( \"127.0.0.11/r100.test\" );\n"
	    " refresh_s = 1;\n txt_resolver = \"127.0.0.1:%u\";\n};\n",
	    d.port);
	n = node_start(false, extra);
	wait_body(n, "127.0.0.3");
	keys(bootdns(n, "q=127.0.0.11"), k, sizeof(k));
	assert_string_equal(k, "127.0.0.11");
	/* The resolver fails: two more refreshes, the 100 % stays. */
	atomic_store(&d.mode, DNS_SERVFAIL);
	done = node_log_count(n, "event=bootdns_refreshed");
	wait_log(n, "event=bootdns_txt_failed name=r100.test "
	    "err=server_failure", 2);
	wait_log(n, "event=bootdns_refreshed", done + 2);
	keys(bootdns(n, "q=127.0.0.11"), k, sizeof(k));
	assert_string_equal(k, "127.0.0.11");
	/* It answers again, now 0 %: the next refresh takes that. */
	atomic_store(&d.r100, 0);
	atomic_store(&d.mode, DNS_ANSWER);
	done = node_log_count(n, "event=bootdns_refreshed");
	wait_log(n, "event=bootdns_refreshed", done + 2);
	keys(bootdns(n, "q=127.0.0.11"), k, sizeof(k));
	assert_string_equal(k, "127.0.0.3");
	/* Reload with another published name. */
	snprintf(cmd, sizeof(cmd), "sed -i 's|\"127.0.0.3\"|\"127.0.0.4\"|' %s",
	    n->conf);
	assert_int_equal(system(cmd), 0);
	kill(n->pid, SIGHUP);
	wait_body(n, "127.0.0.4");
	keys(bootdns(n, NULL), k, sizeof(k));
	assert_string_equal(k, "127.0.0.4");
	node_stop(n);
	node_free(n);
	dns_stop(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bootdns_nothing_configured),
		cmocka_unit_test(test_bootdns_published_and_rollout),
		cmocka_unit_test(test_bootdns_refresh_and_reload),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Rate-limited warnings in the real daemon: a remote asking again and
 * again for an ACME challenge token that is a symlink (refused, 404)
 * gets one warn line per request only up to the per-site burst
 * (LOG_LIMIT_BURST per LOG_LIMIT_INTERVAL_MS); every request is still
 * answered.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "harness.h"

#define REQUESTS	40

static void
test_loglimit_acme_symlink_warnings_bounded(void **state)
{
	struct node		*n = node_new();
	struct client_opts	 o;
	char			 root[400], dir[500], lnk[600], extra[600];
	char			 out[2048];
	uint64_t		 t0, windows;
	int			 i, lines;

	(void)state;
	snprintf(root, sizeof(root), "%s/www", n->dir);
	snprintf(dir, sizeof(dir), "%s/.well-known", root);
	assert_true(mkdir(root, 0755) == 0 && mkdir(dir, 0755) == 0);
	snprintf(dir, sizeof(dir), "%s/.well-known/acme-challenge", root);
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(lnk, sizeof(lnk), "%s/link", dir);
	assert_int_equal(symlink("/etc/hostname", lnk), 0);
	snprintf(extra, sizeof(extra), "acme = { webroot = \"%s\"; };\n",
	    root);
	node_start_in(n, false, extra);
	node_opts(n, &o);
	t0 = now_ms();
	for (i = 0; i < REQUESTS; i++)
		assert_int_equal(client_http_get(&o, "GET",
		    "/.well-known/acme-challenge/link", NULL, out,
		    sizeof(out)), 404);
	/* Each request's line is written before its response. */
	windows = (now_ms() - t0) / LOG_LIMIT_INTERVAL_MS + 1;
	lines = node_log_count(n, "event=acme_challenge_unreadable");
	assert_true(lines >= LOG_LIMIT_BURST);
	assert_true((uint64_t)lines <= windows * LOG_LIMIT_BURST);
	assert_true(lines < REQUESTS);
	node_stop(n);
	node_free(n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loglimit_acme_symlink_warnings_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

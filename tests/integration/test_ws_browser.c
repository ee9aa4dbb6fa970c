/*
 * WebSocket DERP from a real browser: headless Chromium loads
 * tests/integration/ws_browser.html, which speaks DERP over
 * new WebSocket(..., "derp") with tweetnacl (Debian's node-tweetnacl) for
 * the handshake and echoes packets.  A native client sends to the
 * browser's key and checks the echo.  Chromium missing is a failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "derp/key.h"
#include "harness.h"

#define CHROMIUM	"/usr/bin/chromium"
#define NACL_JS		"/usr/share/nodejs/tweetnacl/nacl-fast.js"
#define PAGE		"tests/integration/ws_browser.html"
#define BROWSER_MS	60000	/* Chromium's start-up is slow on CI */

struct fixture {
	struct node	*n;
	pid_t		 browser;
};

static pid_t
browser_start(const struct node *n, const char *url)
{
	char	udd[400], logf[400];
	pid_t	pid;
	int	fd;

	snprintf(udd, sizeof(udd), "--user-data-dir=%s/chromium", n->dir);
	snprintf(logf, sizeof(logf), "%s/chromium.log", n->dir);
	if ((pid = fork()) == 0) {
		/* Its own process group: teardown kills every child. */
		setpgid(0, 0);
		fd = open(logf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 1);
		dup2(fd, 2);
		execl(CHROMIUM, "chromium", "--headless", "--no-sandbox",
		    "--disable-gpu", "--disable-quic", "--no-first-run",
		    "--disable-background-networking",
		    "--disable-component-update", "--disable-sync",
		    "--disable-dev-shm-usage", "--enable-logging=stderr",
		    "--ignore-certificate-errors",
		    "--v=0", udd, url,
		    (char *)NULL);
		_exit(127);
	}
	assert_true(pid > 0);
	(void)setpgid(pid, pid);	/* either side may win the race */
	return pid;
}

/* The test directory goes away at teardown: show Chromium's output. */
static void
browser_log(const struct node *n)
{
	char	path[400], line[1024];
	FILE	*f;

	snprintf(path, sizeof(path), "%s/chromium.log", n->dir);
	if ((f = fopen(path, "r")) == NULL)
		return;
	print_message("---- %s ----\n", path);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, "dbus") == NULL)
			print_message("%s", line);
	fclose(f);
}

static void
browser_echo(void **state, bool tls)
{
	struct fixture		*fx = *state;
	struct client		*c;
	struct client_msg	 m;
	uint8_t			 priv[DERP_KEY_LEN], pub[DERP_KEY_LEN];
	char			 hex[DERP_KEY_HEX_LEN + 1], page[PATH_MAX];
	char			 url[PATH_MAX + 512], msg[64];
	uint64_t		 deadline;
	int			 rc, seq = 0;

	if (access(CHROMIUM, X_OK) != 0)
		fail_msg("%s is missing: install chromium", CHROMIUM);
	if (access(NACL_JS, R_OK) != 0)
		fail_msg("%s is missing: install node-tweetnacl", NACL_JS);
	if (realpath(PAGE, page) == NULL)
		fail_msg("%s not found (run from the tree root)", PAGE);
	fx->n = node_start(tls, NULL);
	derp_key_generate(priv);
	assert_int_equal(derp_key_public(pub, priv), 0);
	derp_key_format_hex(hex, priv);
	snprintf(url, sizeof(url), "file://%s?port=%u&priv=%s&nacl=file://%s"
	    "&tls=%d", page, fx->n->port, hex, NACL_JS, tls);
	c = node_client(fx->n);
	fx->browser = browser_start(fx->n, url);
	/* Resend until the browser is up and registered, then echoes. */
	deadline = now_ms() + BROWSER_MS;
	do {
		snprintf(msg, sizeof(msg), "hello browser %d", ++seq);
		assert_int_equal(client_send_packet(c, pub, msg, strlen(msg)),
		    0);
		rc = recv_type(c, DERP_FRAME_RECV_PACKET, &m, 250);
		if (rc == 0)
			break;
		assert_int_equal(rc, -ETIMEDOUT);
		if (waitpid(fx->browser, NULL, WNOHANG) == fx->browser) {
			fx->browser = 0;
			browser_log(fx->n);
			fail_msg("chromium exited");
		}
	} while (now_ms() < deadline);
	if (rc != 0) {
		browser_log(fx->n);
		fail_msg("no echo from the browser within %d ms", BROWSER_MS);
	}
	assert_memory_equal(m.key, pub, DERP_KEY_LEN);
	assert_true(m.len > 5);
	assert_memory_equal(m.data, "echo:hello browser ", 19);
	assert_true(node_metric(fx->n, "derp_websocket_accepts") >= 1);
	assert_true(node_log_count(fx->n, "event=client_registered") >= 2);
	/* BoringSSL's records through derpd's record layer: the browser's
	 * connection, the native client's and this scrape's. */
	if (tls) {
		assert_true(node_metric(fx->n,
		    "derpd_tls_record_offload{result=\"offloaded\"}") >= 3);
		assert_int_equal(node_metric(fx->n,
		    "derpd_tls_record_offload{result=\"other\"}"), 0);
	}
	client_free(c);
}

static void
test_ws_browser_echo(void **state)
{
	browser_echo(state, false);
}

static void
test_ws_browser_echo_wss(void **state)
{
	browser_echo(state, true);
}

static int
setup(void **state)
{
	*state = calloc(1, sizeof(struct fixture));
	return *state == NULL ? -1 : 0;
}

/* Runs after a failure too: never leave Chromium behind. */
static int
teardown(void **state)
{
	struct fixture	*fx = *state;

	if (fx->browser > 0) {
		kill(-fx->browser, SIGKILL);
		kill(fx->browser, SIGKILL);
		waitpid(fx->browser, NULL, 0);
	}
	if (fx->n != NULL) {
		node_stop(fx->n);
		node_free(fx->n);
	}
	free(fx);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ws_browser_echo, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_ws_browser_echo_wss, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

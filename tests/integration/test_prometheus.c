/*
 * The metrics exposition checked by Prometheus itself: `promtool check
 * metrics` on metrics.listen and /debug/varz (errors and missing HELP
 * fail; the lint warnings that Go's names cause are accepted), and a
 * real Prometheus scraping derpd every second whose query API must show
 * the target up and the values this test caused.
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "harness.h"

#define PROMTOOL	"/usr/bin/promtool"
#define PROMETHEUS	"/usr/bin/prometheus"

static char	buf[256 * 1024];

static int
http_get(uint16_t port, const char *path)
{
	struct client_opts	o;

	memset(&o, 0, sizeof(o));
	o.host = "127.0.0.1";
	o.port = port;
	o.timeout_ms = 5000;
	return client_http_get(&o, "GET", path, NULL, buf, sizeof(buf));
}

static const char *
body(void)
{
	const char	*b = strstr(buf, "\r\n\r\n");

	assert_non_null(b);
	return b + 4;
}

/*
 * Lint findings we accept: they come from Go derper's names, which
 * dashboards depend on (counters without _total, the gauge
 * derp_clients_total, derp_average_queue_duration_ms).
 */
static bool
accepted(const char *line)
{
	return strstr(line, " counter metrics should have \"_total\" suffix")
	    != NULL ||
	    strcmp(line, "derp_clients_total non-counter metrics should not "
	    "have \"_total\" suffix") == 0 ||
	    strcmp(line, "derp_average_queue_duration_ms metric names should "
	    "not contain abbreviated units") == 0;
}

/* Run promtool on text; returns its exit status and fails the test on
 * any finding that is not accepted. */
static int
promtool(const char *dir, const char *text, bool expect_clean)
{
	char	 in[300], out[300], cmd[1024], line[1024];
	FILE	*f;
	int	 st, bad = 0;

	snprintf(in, sizeof(in), "%s/scrape.txt", dir);
	snprintf(out, sizeof(out), "%s/promtool.out", dir);
	assert_non_null(f = fopen(in, "w"));
	fputs(text, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "%s check metrics < %s > %s 2>&1",
	    PROMTOOL, in, out);
	st = system(cmd);
	assert_true(WIFEXITED(st));
	assert_non_null(f = fopen(out, "r"));
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] != '\0' && !accepted(line)) {
			if (expect_clean)
				print_message("promtool: %s\n", line);
			bad++;
		}
	}
	fclose(f);
	if (expect_clean) {
		assert_int_equal(bad, 0);
		/* 0: clean; 3: only lint findings (all accepted above). */
		assert_true(WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 3);
	}
	return WEXITSTATUS(st);
}

static void
test_prometheus_promtool_check(void **state)
{
	uint16_t	 mport = free_tcp_port();
	char		 extra[128];
	struct node	*n;
	struct client	*a, *b;

	(void)state;
	if (access(PROMTOOL, X_OK) != 0)
		fail_msg("%s missing: install the Debian prometheus package "
		    "(make deps)", PROMTOOL);
	snprintf(extra, sizeof(extra), "workers = 2;\nmetrics = { listen = "
	    "\"127.0.0.1:%u\"; };\n", mport);
	n = node_start(false, extra);
	a = node_client(n);
	b = node_client(n);
	reach(a, b);	/* non-zero values, both workers' slots */
	/* The check can fail: promtool refuses a broken exposition, and
	 * a series without HELP is a finding we do not accept. */
	assert_int_equal(promtool(n->dir, "# TYPE x counter\nx{ 1\n", false),
	    1);
	assert_int_equal(promtool(n->dir, "# TYPE derpd_x gauge\nderpd_x 1\n",
	    false), 3);
	assert_int_equal(http_get(mport, "/metrics"), 200);
	assert_non_null(strstr(body(), "# HELP derp_accepts "));
	assert_non_null(strstr(body(), "\nderpd_workers 2\n"));
	/* A histogram promtool checks too: the loop turns. */
	assert_non_null(strstr(body(), "\nderpd_loop_turn_seconds_bucket"
	    "{le=\"+Inf\"} "));
	assert_null(strstr(body(), "\nderpd_loop_turn_seconds_count 0\n"));
	(void)promtool(n->dir, body(), true);
	assert_int_equal(http_get(n->port, "/debug/varz"), 200);
	(void)promtool(n->dir, body(), true);
	client_free(a);
	client_free(b);
	node_stop(n);
	node_free(n);
}

/* ---- a real Prometheus ---- */

static pid_t
prometheus_start(const char *dir, uint16_t target, uint16_t web)
{
	char	 conf[300], data[300], flag[4][400], logp[300];
	FILE	*f;
	pid_t	 pid;
	int	 fd;

	snprintf(conf, sizeof(conf), "%s/prometheus.yml", dir);
	snprintf(data, sizeof(data), "%s/prometheus-data", dir);
	snprintf(logp, sizeof(logp), "%s/prometheus.log", dir);
	assert_non_null(f = fopen(conf, "w"));
	fprintf(f, "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
	    "  evaluation_interval: 1s\nscrape_configs:\n"
	    "  - job_name: derpd\n    static_configs:\n"
	    "      - targets: ['127.0.0.1:%u']\n", target);
	fclose(f);
	snprintf(flag[0], sizeof(flag[0]), "--config.file=%s", conf);
	snprintf(flag[1], sizeof(flag[1]), "--storage.tsdb.path=%s", data);
	snprintf(flag[2], sizeof(flag[2]), "--web.listen-address=127.0.0.1:%u",
	    web);
	snprintf(flag[3], sizeof(flag[3]), "--log.level=warn");
	assert_true((pid = fork()) >= 0);
	if (pid == 0) {
		fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(PROMETHEUS, PROMETHEUS, flag[0], flag[1], flag[2],
		    flag[3], (char *)NULL);
		_exit(127);
	}
	return pid;
}

static void
prometheus_stop(pid_t pid)
{
	uint64_t	deadline = now_ms() + 10000;
	int		st;

	kill(pid, SIGTERM);
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			break;
		}
		poll(NULL, 0, 20);	/* poll interval */
	}
}

/* The value of an instant query's single sample as text, or "" when the
 * query has no result yet (or Prometheus is not up yet). */
static void
query(uint16_t web, const char *expr, char *out, size_t cap)
{
	char		 path[512];
	json_t		*root, *res, *v;
	const char	*s;

	out[0] = '\0';
	snprintf(path, sizeof(path), "/api/v1/query?query=%s", expr);
	if (http_get(web, path) != 200)
		return;
	if ((root = json_loads(body(), 0, NULL)) == NULL)
		return;
	res = json_object_get(json_object_get(root, "data"), "result");
	if (json_array_size(res) == 1 &&
	    (v = json_object_get(json_array_get(res, 0), "value")) != NULL &&
	    (s = json_string_value(json_array_get(v, 1))) != NULL)
		snprintf(out, cap, "%s", s);
	json_decref(root);
}

static void
wait_value(uint16_t web, const char *expr, const char *want)
{
	uint64_t	deadline = now_ms() + 60000;
	char		got[64];

	for (;;) {
		query(web, expr, got, sizeof(got));
		if (strcmp(got, want) == 0)
			return;
		if (now_ms() > deadline)
			fail_msg("Prometheus: %s = \"%s\", want \"%s\"", expr,
			    got, want);
		poll(NULL, 0, 100);	/* poll interval, not a sync sleep */
	}
}

static pid_t	prom = -1;

/* A failed assertion must not leave Prometheus running. */
static int
prometheus_teardown(void **state)
{
	(void)state;
	if (prom > 0)
		prometheus_stop(prom);
	prom = -1;
	return 0;
}

static void
test_prometheus_scrapes_derpd(void **state)
{
	uint16_t	 mport = free_tcp_port(), web = free_tcp_port();
	char		 extra[128], want[32];
	struct node	*n;
	struct client	*a, *b;

	(void)state;
	if (access(PROMETHEUS, X_OK) != 0)
		fail_msg("%s missing: install the Debian prometheus package "
		    "(make deps)", PROMETHEUS);
	snprintf(extra, sizeof(extra), "metrics = { listen = \"127.0.0.1:%u\";"
	    " };\n", mport);
	n = node_start(false, extra);
	prom = prometheus_start(n->dir, mport, web);
	wait_value(web, "up", "1");
	wait_value(web, "derpd_workers", "1");
	wait_value(web, "derp_accepts", "0");
	a = node_client(n);
	b = node_client(n);
	reach(a, b);
	/* Scraped values follow what this test did. */
	wait_value(web, "derp_accepts", "2");
	wait_value(web, "derp_current_connections", "2");
	snprintf(want, sizeof(want), "%ld", node_metric(n,
	    "derp_packets_received"));
	assert_true(atoi(want) > 0);
	wait_value(web, "derp_packets_received", want);
	wait_value(web, "derp_packets_dropped%7Breason%3D%22unknown_dest%22"
	    "%2Ckind%3D%22other%22%7D", "0");
	client_free(b);
	wait_value(web, "derp_current_connections", "1");
	client_free(a);
	prometheus_stop(prom);
	prom = -1;
	node_stop(n);
	node_free(n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prometheus_promtool_check),
		cmocka_unit_test_teardown(test_prometheus_scrapes_derpd,
		    prometheus_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * The integration harness: processes, temp dirs, certificates (made with
 * the openssl tool), ports, readiness and teardown checks.  Readiness and
 * every wait poll a condition against a deadline; nothing sleeps to
 * synchronise.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "derp/key.h"
#include "harness.h"

static void	registry_add(struct node *n);
static void	registry_del(const struct node *n);

uint64_t
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int
time_scaled(int ms)
{
	static double	scale;
	const char	*e;

	if (scale == 0) {
		e = getenv("TEST_TIME_SCALE");
		scale = e != NULL ? strtod(e, NULL) : 1;
		if (!(scale >= 1 && scale <= 100))
			scale = 1;
	}
	return (int)(ms * scale);
}

static void
pause_ms(int ms)
{
	/* Poll interval while waiting for a condition, not a sync sleep. */
	poll(NULL, 0, ms);
}

static uint16_t
free_port(int type)
{
	struct sockaddr_in	sa = { .sin_family = AF_INET };
	socklen_t		sl = sizeof(sa);
	int			fd = socket(AF_INET, type, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

uint16_t
free_tcp_port(void)
{
	return free_port(SOCK_STREAM);
}

struct node *
node_new(void)
{
	struct node	*n = calloc(1, sizeof(*n));
	const char	*tmp = getenv("TMPDIR");
	struct rlimit	 rl;

	assert_non_null(n);
	snprintf(n->dir, sizeof(n->dir), "%s/derpd-itest-XXXXXX",
	    tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(n->dir));
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	assert_int_equal(derp_crypto_init(), 0);
	return n;
}

void
node_make_cert(struct node *n)
{
	char	cmd[1024];

	snprintf(n->cert, sizeof(n->cert), "%s/cert.pem", n->dir);
	snprintf(cmd, sizeof(cmd), "openssl req -x509 -newkey ec -pkeyopt "
	    "ec_paramgen_curve:prime256v1 -nodes -keyout %s/key.pem -out %s "
	    "-days 2 -subj /CN=localhost -addext "
	    "subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null", n->dir,
	    n->cert);
	assert_int_equal(system(cmd), 0);
}

static void
write_conf(struct node *n, const char *extra)
{
	FILE	*f;
	char	 stun[32] = "";

	if (n->stun_port != 0)
		snprintf(stun, sizeof(stun), "127.0.0.1:%u", n->stun_port);
	snprintf(n->conf, sizeof(n->conf), "%s/derpd.conf", n->dir);
	assert_non_null(f = fopen(n->conf, "w"));
	/* extra may set workers itself: libconfig refuses duplicates. */
	if (extra == NULL || strstr(extra, "workers") == NULL)
		fprintf(f, "workers = 1;\n");
	if (extra == NULL || strstr(extra, "metrics") == NULL)
		fprintf(f, "metrics = { listen = \"\"; };\n");
	/* Tests read per-connection lines as their record (which worker
	 * took a client, every connection closed): all of them, unless
	 * the test lists the log group itself (test_loglimit). */
	if (extra == NULL || strstr(extra, "log = {") == NULL)
		fprintf(f, "log = { conn_rate = 0; };\n");
	/* Under valgrind (TEST_TIME_SCALE) a busy worker can miss beats. */
	if ((extra == NULL || strstr(extra, "worker_hang") == NULL) &&
	    time_scaled(1000) > 1000)
		fprintf(f, "worker_hang_timeout_ms = %d;\n",
		    time_scaled(5000) > 600000 ? 600000 : time_scaled(5000));
	fprintf(f, "hostname = \"localhost\";\n"
	    "node_key_file = \"%s/derpd.key\";\nruntime_dir = \"%s/run\";\n",
	    n->dir, n->dir);
	/* extra may name the user and group to drop to (test_privs). */
	if (extra == NULL || strstr(extra, "user =") == NULL)
		fprintf(f, "user = \"\";\ngroup = \"\";\n");
	/* extra may list the tls group whole (with n->cert and
	 * dir/key.pem, from node_make_cert). */
	if (n->tls && extra != NULL && strstr(extra, "tls = {") != NULL)
		fprintf(f, "listen = { https = \"127.0.0.1:%u\"; http = "
		    "\"127.0.0.1:%u\"; stun = \"%s\"; };\n", n->port,
		    n->http_port, stun);
	else if (n->tls)
		fprintf(f, "listen = { https = \"127.0.0.1:%u\"; http = "
		    "\"127.0.0.1:%u\"; stun = \"%s\"; };\ntls = { certificate "
		    "= \"%s\"; private_key = \"%s/key.pem\"; };\n", n->port,
		    n->http_port, stun, n->cert, n->dir);
	else
		fprintf(f, "listen = { https = \"\"; http = \"127.0.0.1:%u\"; "
		    "stun = \"%s\"; };\n", n->port, stun);
	/* DERPD_TEST_SECCOMP=1: every test with the workers' filter on. */
	if (getenv("DERPD_TEST_SECCOMP") != NULL &&
	    strcmp(getenv("DERPD_TEST_SECCOMP"), "1") == 0 &&
	    (extra == NULL || strstr(extra, "sandbox") == NULL))
		fprintf(f, "sandbox = { seccomp = true; };\n");
	if (extra != NULL)
		fputs(extra, f);
	fclose(f);
}

static void
exec_derpd(const struct node *n, const char *bin)
{
	const char	*argv[16];
	int		 i = 0;

	while (n->launcher != NULL && n->launcher[i] != NULL && i < 12) {
		argv[i] = n->launcher[i];
		i++;
	}
	argv[i++] = bin;
	argv[i++] = "-c";
	argv[i++] = n->conf;
	argv[i] = NULL;
	execvp(argv[0], (char *const *)(uintptr_t)argv);
}

/* A socket-activated derpd starts on the first connection: make one
 * (the launcher may still be binding), and leave it to be served. */
static void
trigger(const struct node *n, uint64_t deadline)
{
	int	fd;

	while (now_ms() < deadline) {
		if ((fd = raw_connect(n->port)) >= 0) {
			close(fd);
			return;
		}
		pause_ms(10);
	}
}

struct node *
node_start_in(struct node *n, bool tls, const char *extra)
{
	const char	*bin = getenv("DERPD_BIN");
	uint64_t	 deadline;
	int		 fd, attempt;
	pid_t		 parent;

	n->tls = tls;
	if (tls && n->cert[0] == '\0')
		node_make_cert(n);
	snprintf(n->log, sizeof(n->log), "%s/derpd.log", n->dir);
	n->stopped = false;
	for (attempt = 0; attempt < 3; attempt++) {
		if (!n->fixed) {
			n->port = free_port(SOCK_STREAM);
			n->http_port = tls ? free_port(SOCK_STREAM) : 0;
		}
		write_conf(n, extra);
		/* A restart must not find the previous run's readiness. */
		(void)unlink(n->log);
		registry_add(n);
		parent = getpid();
		if ((n->pid = fork()) == 0) {
			/* Its own group, for harness_stop_since to signal
			 * the workers too; and it dies with the test. */
			(void)setpgid(0, 0);
			(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(127);
			fd = open(n->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			dup2(fd, 2);
			dup2(fd, 1);
			exec_derpd(n, bin ? bin : "build/derpd");
			_exit(127);
		}
		assert_true(n->pid > 0);
		(void)setpgid(n->pid, n->pid);	/* either side may win */
		deadline = now_ms() + (uint64_t)time_scaled(10000);
		if (n->launcher != NULL)
			trigger(n, deadline);
		while (now_ms() < deadline) {
			if (node_log_count(n, "event=node_ready") > 0)
				return n;
			if (waitpid(n->pid, NULL, WNOHANG) == n->pid)
				break;	/* port race or bad config: retry */
			pause_ms(10);
		}
		kill(n->pid, SIGKILL);
		waitpid(n->pid, NULL, 0);
	}
	fail_msg("derpd did not become ready; see %s", n->log);
	return NULL;
}

struct node *
node_start(bool tls, const char *extra)
{
	return node_start_in(node_new(), tls, extra);
}

int
node_log_count(const struct node *n, const char *needle)
{
	FILE	*f = fopen(n->log, "r");
	char	 line[4096];
	int	 c = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		c += strstr(line, needle) != NULL;
	fclose(f);
	return c;
}

pid_t
node_worker_pid(const struct node *n, int w)
{
	char	needle[64], line[1024], *p;
	FILE	*f = fopen(n->log, "r");
	pid_t	 pid = -1;

	snprintf(needle, sizeof(needle), "event=worker_started worker=%d ", w);
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, needle) != NULL &&
		    (p = strstr(line, "pid=")) != NULL)
			pid = (pid_t)atoi(p + 4);
	if (f != NULL)
		fclose(f);
	return pid;
}

bool
node_log_wait(const struct node *n, const char *needle, int timeout_ms)
{
	uint64_t	deadline = now_ms() + (uint64_t)time_scaled(timeout_ms);

	do {
		if (node_log_count(n, needle) > 0)
			return true;
		pause_ms(5);
	} while (now_ms() < deadline);
	return false;
}

/* On a failed teardown, show what derpd said (CI keeps only stdout). */
static void
dump_log(const struct node *n)
{
	FILE	*f = fopen(n->log, "r");
	char	 line[2048];

	print_message("---- %s (lifecycle, errors, sanitizer) ----\n", n->log);
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, "client_registered") == NULL &&
		    strstr(line, "conn_closed") == NULL)
			print_message("%s", line);
	if (f != NULL)
		fclose(f);
}

void
node_stop(struct node *n)
{
	uint64_t	deadline = now_ms() + (uint64_t)time_scaled(10000);
	int		status = -1;
	pid_t		r = 0;

	if (n->stopped)
		return;
	kill(n->pid, SIGTERM);
	while (now_ms() < deadline &&
	    (r = waitpid(n->pid, &status, WNOHANG)) == 0)
		pause_ms(5);
	if (r == 0) {
		kill(n->pid, SIGKILL);
		waitpid(n->pid, &status, 0);
		fail_msg("derpd did not stop within 10 s");
	}
	n->stopped = true;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
	    node_log_count(n, "Sanitizer") + node_log_count(n, "runtime error:")
	    + node_log_count(n, "Z err ") + node_log_count(n, "signal=") > 0 ||
	    node_log_count(n, "event=worker_exited ") !=
	    node_log_count(n, "status=0"))
		dump_log(n);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(node_log_count(n, "Sanitizer"), 0);
	assert_int_equal(node_log_count(n, "runtime error:"), 0);
	assert_int_equal(node_log_count(n, "Z err "), 0);
	/* No worker may have died along the way (the supervisor would have
	 * respawned it and still exited 0). */
	assert_int_equal(node_log_count(n, "event=worker_exited ") -
	    node_log_count(n, "status=0"), 0);
	assert_int_equal(node_log_count(n, "signal="), 0);
}

void
node_free(struct node *n)
{
	char	cmd[300];

	if (n == NULL)
		return;
	if (!n->stopped && n->pid > 0) {
		kill(n->pid, SIGKILL);
		waitpid(n->pid, NULL, 0);
	}
	/* Workers orphaned by a killed supervisor came to us. */
	while (n->pid > 0 && waitpid(-n->pid, NULL, WNOHANG) > 0)
		;
	registry_del(n);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", n->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", n->dir);
	free(n);
}

void
node_opts(const struct node *n, struct client_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->host = "127.0.0.1";
	o->port = n->port;
	o->tls = n->tls;
	o->ca_file = n->tls ? n->cert : NULL;
	o->server_name = "localhost";
	o->info.can_ack_pings = true;
	o->timeout_ms = time_scaled(5000);
}

struct client *
node_client_key(const struct node *n, const uint8_t *priv)
{
	struct client_opts	 o;
	struct client		*c;
	int			 err = 0;

	node_opts(n, &o);
	o.priv = priv;
	c = client_connect(&o, &err);
	if (c == NULL)
		fail_msg("client_connect: %s", strerror(-err));
	return c;
}

struct client *
node_client(const struct node *n)
{
	return node_client_key(n, NULL);
}

long
node_metric(const struct node *n, const char *name)
{
	struct client_opts	 o;
	static char		 buf[65536];
	char			 pat[256], *p;
	int			 st;

	node_opts(n, &o);
	if (n->metrics_port != 0) {
		o.port = n->metrics_port;
		o.tls = false;
	}
	st = client_http_get(&o, "GET", n->metrics_port ? "/metrics" :
	    "/debug/varz", NULL, buf, sizeof(buf));
	if (st != 200)
		fail_msg("GET /debug/varz: %d (%s) got \"%.60s\"", st,
		    st < 0 ? strerror(-st) : "status", buf);
	snprintf(pat, sizeof(pat), "\n%s ", name);
	if ((p = strstr(buf, pat)) == NULL)
		fail_msg("metric %s not found", name);
	return strtol(p + strlen(pat), NULL, 10);
}

int
raw_connect(uint16_t port)
{
	struct sockaddr_in	sa = { .sin_family = AF_INET };
	int			fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

ssize_t
raw_read_until_eof(int fd, uint8_t *buf, size_t cap, int timeout_ms)
{
	uint64_t	deadline = now_ms() + (uint64_t)timeout_ms;
	size_t		n = 0;
	ssize_t		r;
	struct pollfd	p = { .fd = fd, .events = POLLIN };

	while (now_ms() < deadline) {
		if (poll(&p, 1, (int)(deadline - now_ms())) <= 0)
			continue;
		r = read(fd, buf + n, cap - n > 0 ? cap - n : 0);
		if (r == 0 || (r < 0 && errno == ECONNRESET))
			return (ssize_t)n;
		if (r < 0)
			return -1;
		n += (size_t)r;
		if (n == cap)
			n = 0;	/* keep draining; only EOF matters */
	}
	return -1;
}

int
recv_type(struct client *c, uint8_t type, struct client_msg *m,
    int timeout_ms)
{
	uint64_t	deadline = now_ms() + (uint64_t)time_scaled(timeout_ms);
	int		rc;

	for (;;) {
		uint64_t	now = now_ms();

		if (now >= deadline)
			return -ETIMEDOUT;
		rc = client_recv(c, m, (int)(deadline - now));
		if (rc < 0)
			return rc;
		if (m->type == type)
			return 0;
	}
}

void
reach(struct client *a, struct client *b)
{
	uint64_t		deadline;
	struct client_msg	m;
	int			rc;

	deadline = now_ms() + (uint64_t)time_scaled(15000);

	do {
		assert_int_equal(client_send_packet(a, client_public_key(b),
		    "sync", 4), 0);
		rc = recv_type(b, DERP_FRAME_RECV_PACKET, &m, 200);
	} while (rc == -ETIMEDOUT && now_ms() < deadline);
	assert_int_equal(rc, 0);
	assert_memory_equal(m.key, client_public_key(a), 32);
	/* Copies of the probe still in flight. */
	while (client_recv(b, &m, 100) == 0)
		;
}

/* ---- shared by the worker, fault and soak tests ---- */

int
node_client_worker(const struct node *n, struct client *c)
{
	struct sockaddr_in	sa;
	socklen_t		sl = sizeof(sa);
	char			needle[64], line[1024], *p;
	FILE			*f;
	int			w = -1;

	if (getsockname(client_fd(c), (struct sockaddr *)&sa, &sl) != 0)
		return -1;
	snprintf(needle, sizeof(needle), "peer=%s:%u ",
	    inet_ntoa(sa.sin_addr), ntohs(sa.sin_port));
	if ((f = fopen(n->log, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, "event=client_registered") != NULL &&
		    strstr(line, needle) != NULL &&
		    (p = strstr(line, " worker=")) != NULL)
			w = atoi(p + 8);
	fclose(f);
	return w;
}

bool
node_metric_try(const struct node *n, const char *name, int timeout_ms,
    long *out)
{
	struct client_opts	 o;
	static char		 buf[65536];
	char			 pat[256], *p;
	uint64_t		 deadline = now_ms() + (uint64_t)timeout_ms;

	node_opts(n, &o);
	o.timeout_ms = 500;
	if (n->metrics_port != 0) {
		o.port = n->metrics_port;
		o.tls = false;
	}
	snprintf(pat, sizeof(pat), "\n%s ", name);
	do {
		if (client_http_get(&o, "GET", n->metrics_port ? "/metrics" :
		    "/debug/varz", NULL, buf, sizeof(buf)) == 200 &&
		    (p = strstr(buf, pat)) != NULL) {
			*out = strtol(p + strlen(pat), NULL, 10);
			return true;
		}
	} while (now_ms() < deadline);
	return false;
}

bool
node_converged(const struct node *n, int nworkers, const char *what,
    long want, int timeout_ms)
{
	return node_converged_but(n, nworkers, -1, what, want, timeout_ms);
}

bool
node_converged_but(const struct node *n, int nworkers, int skip,
    const char *what, long want, int timeout_ms)
{
	uint64_t	deadline = now_ms() + (uint64_t)timeout_ms;
	char		name[64];
	long		v;
	int		k, ok;

	do {
		for (k = 0, ok = 0; k < nworkers; k++) {
			snprintf(name, sizeof(name),
			    "derpd_worker_node_%s{worker=\"%d\"}", what, k);
			ok += k == skip || (node_metric_try(n, name, 2000, &v)
			    && v == want);
		}
		if (ok == nworkers)
			return true;
		pause_ms(20);
	} while (now_ms() < deadline);
	for (k = 0; k < nworkers; k++) {
		snprintf(name, sizeof(name),
		    "derpd_worker_node_%s{worker=\"%d\"}", what, k);
		v = -1;
		(void)node_metric_try(n, name, 2000, &v);
		print_message("%s = %ld (want %ld)\n", name, v, want);
	}
	return false;
}

void
node_stop_killed(struct node *n, int kills)
{
	uint64_t	deadline = now_ms() + 10000;
	int		st = -1, died;
	pid_t		r = 0;

	kill(n->pid, SIGTERM);
	while (now_ms() < deadline &&
	    (r = waitpid(n->pid, &st, WNOHANG)) == 0)
		pause_ms(5);
	if (r == 0) {
		kill(n->pid, SIGKILL);
		waitpid(n->pid, &st, 0);
		fail_msg("derpd did not stop within 10 s");
	}
	n->stopped = true;
	died = node_log_count(n, "event=worker_exited ") -
	    node_log_count(n, "status=0");
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || died != kills ||
	    node_log_count(n, "signal=9") != kills ||
	    node_log_count(n, "Sanitizer") + node_log_count(n, "Z err ") > 0)
		dump_log(n);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(node_log_count(n, "Sanitizer"), 0);
	assert_int_equal(node_log_count(n, "runtime error:"), 0);
	assert_int_equal(node_log_count(n, "Z err "), 0);
	assert_int_equal(died, kills);
	assert_int_equal(node_log_count(n, "signal=9"), kills);
	assert_int_equal(node_log_count(n, "signal="), kills);
}

struct client *
node_mesh_client(const struct node *n, const char *psk, bool watch)
{
	struct client_opts	 o;
	struct client		*c;
	int			 err = 0;

	node_opts(n, &o);
	o.info.can_ack_pings = false;
	assert_int_equal(derp_psk_parse(psk, strlen(psk), o.info.mesh_key), 0);
	o.info.has_mesh_key = true;
	o.watch_conns = watch;
	if ((c = client_connect(&o, &err)) == NULL)
		fail_msg("mesh client_connect: %s", strerror(-err));
	return c;
}

long
proc_status_kb(pid_t pid, const char *field)
{
	char	path[64], line[256];
	FILE	*f;
	size_t	n = strlen(field);
	long	v = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, field, n) == 0)
			v = strtol(line + n, NULL, 10);
	fclose(f);
	return v;
}

long
proc_rss_kb(pid_t pid)
{
	return proc_status_kb(pid, "VmRSS:");
}

long
proc_fd_count(pid_t pid)
{
	char		 path[64];
	DIR		*d;
	struct dirent	*e;
	long		 c = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		c += e->d_name[0] != '.';
	closedir(d);
	return c;
}

int
node_worker_pids(const struct node *n, pid_t *out, int max)
{
	DIR		*d = opendir("/proc");
	struct dirent	*e;
	char		 path[300], buf[512], *p;
	FILE		*f;
	int		 k = 0, ppid;

	while (d != NULL && k < max && (e = readdir(d)) != NULL) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		/* pid (comm) state ppid: comm may hold spaces. */
		if (fgets(buf, sizeof(buf), f) != NULL &&
		    (p = strrchr(buf, ')')) != NULL &&
		    sscanf(p + 1, " %*c %d", &ppid) == 1 && ppid == n->pid)
			out[k++] = (pid_t)atoi(e->d_name);
		fclose(f);
	}
	if (d != NULL)
		closedir(d);
	return k;
}

int
raw_connect_from(const char *src, uint16_t port)
{
	struct sockaddr_in	sa = { .sin_family = AF_INET };
	struct sockaddr_in	la = { .sin_family = AF_INET };
	int			fd = socket(AF_INET, SOCK_STREAM, 0);
	int			on = 1;

	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || inet_pton(AF_INET, src, &la.sin_addr) != 1)
		goto fail;
	/* Ports for many connections per source come from connect(). */
	(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on,
	    sizeof(on));
	if (bind(fd, (struct sockaddr *)&la, sizeof(la)) != 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		goto fail;
	return fd;
fail:
	if (fd >= 0)
		close(fd);
	return -1;
}

bool
raise_nofile(long want)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return false;
	if ((long)rl.rlim_cur >= want)
		return true;
	if ((long)rl.rlim_max < want)
		rl.rlim_max = (rlim_t)want;
	rl.rlim_cur = (rlim_t)want;
	return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

struct node *
node_start_psk(int workers, const char *more)
{
	struct node	*n = node_new();
	char		 path[512], extra[1024];
	FILE		*f;

	snprintf(path, sizeof(path), "%s/mesh.psk", n->dir);
	assert_non_null(f = fopen(path, "w"));
	fputs(REGION_PSK, f);
	fclose(f);
	assert_true((size_t)snprintf(extra, sizeof(extra), "workers = %d;\n"
	    "mesh = { psk_file = \"%s\"; };\n%s", workers, path, more) <
	    sizeof(extra));
	return node_start_in(n, false, extra);
}

void
region_prepare(struct node **nodes, int nn, const char *psk, int workers)
{
	char	cmd[1200], path[400], peers[1024] = "", one[128];
	FILE	*f;
	int	i;

	for (i = 0; i < nn; i++) {
		nodes[i] = node_new();
		nodes[i]->port = free_tcp_port();
		nodes[i]->http_port = free_tcp_port();
		nodes[i]->fixed = true;
	}
	for (i = 0; i < nn; i++) {
		snprintf(one, sizeof(one), "%s\"localhost:%u/127.0.0.1:%u\"",
		    i ? ", " : "", nodes[i]->port, nodes[i]->port);
		assert_true(strlen(peers) + strlen(one) < sizeof(peers));
		strcat(peers, one);
	}
	node_make_cert(nodes[0]);
	for (i = 0; i < nn; i++) {
		if (i > 0) {
			snprintf(cmd, sizeof(cmd), "cp %s/cert.pem %s/key.pem "
			    "%s/", nodes[0]->dir, nodes[0]->dir, nodes[i]->dir);
			assert_int_equal(system(cmd), 0);
		}
		snprintf(nodes[i]->cert, sizeof(nodes[i]->cert), "%s/cert.pem",
		    nodes[i]->dir);
		snprintf(path, sizeof(path), "%s/mesh.psk", nodes[i]->dir);
		assert_non_null(f = fopen(path, "w"));
		fputs(psk, f);
		fclose(f);
		snprintf(nodes[i]->extra, sizeof(nodes[i]->extra),
		    "workers = %d;\nmesh = { psk_file = \"%s\"; peers = "
		    "( %s ); ca_file = \"%s\"; };\n", workers, path, peers,
		    nodes[i]->cert);
	}
}

void
node_region_start(struct node **nodes, int nn, int workers, const char *psk)
{
	int	i;

	region_prepare(nodes, nn, psk, workers);
	for (i = 0; i < nn; i++)
		node_start_in(nodes[i], true, nodes[i]->extra);
}

struct client *
node_ws_client(const struct node *n)
{
	struct client_opts	 o;
	struct client		*c;
	int			 err = 0;

	node_opts(n, &o);
	o.websocket = true;
	if ((c = client_connect(&o, &err)) == NULL)
		fail_msg("websocket client_connect: %s", strerror(-err));
	return c;
}

/* ---- nodes outlive no test ---- */

#define REGISTRY_MAX	128

static struct {
	struct node	*n;
	unsigned long	 seq;	/* when first started, see harness_mark */
} registry[REGISTRY_MAX];
static unsigned long	 registry_seq;
static pid_t		 registry_owner;	/* atexit runs in forks too */

static void
at_exit(void)
{
	if (getpid() == registry_owner)
		(void)harness_stop_since(0);
}

static void
registry_add(struct node *n)
{
	int	i, free_slot = -1;

	if (registry_owner == 0) {
		registry_owner = getpid();
		/* Workers orphaned by a killed supervisor are reparented
		 * to us, so that they too are reaped here. */
		(void)prctl(PR_SET_CHILD_SUBREAPER, 1);
		assert_int_equal(atexit(at_exit), 0);
	}
	for (i = 0; i < REGISTRY_MAX; i++) {
		if (registry[i].n == n)
			return;		/* a restart keeps its first mark */
		if (registry[i].n == NULL && free_slot < 0)
			free_slot = i;
	}
	if (free_slot < 0)
		fail_msg("more than %d nodes at once", REGISTRY_MAX);
	registry[free_slot].n = n;
	registry[free_slot].seq = ++registry_seq;
}

static void
registry_del(const struct node *n)
{
	int	i;

	for (i = 0; i < REGISTRY_MAX; i++)
		if (registry[i].n == n)
			registry[i].n = NULL;
}

/* Anyone left in process group pg?  Reaps what is ours first: the
 * supervisor, and (as subreaper) its orphaned workers. */
static bool
group_alive(pid_t pg)
{
	while (waitpid(-pg, NULL, WNOHANG) > 0)
		;
	return kill(-pg, 0) == 0 || errno != ESRCH;
}

static void
node_kill(struct node *n)
{
	static const int	sigs[] = { SIGTERM, SIGKILL };
	uint64_t		deadline;
	size_t			i;

	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		if (!group_alive(n->pid))
			break;
		(void)kill(-n->pid, sigs[i]);
		deadline = now_ms() + (uint64_t)time_scaled(5000);
		while (group_alive(n->pid) && now_ms() < deadline)
			pause_ms(5);
	}
	if (group_alive(n->pid))
		print_message("harness: node pid=%d survived SIGKILL\n",
		    (int)n->pid);
	n->stopped = true;
}

unsigned long
harness_mark(void)
{
	return registry_seq;
}

int
harness_stop_since(unsigned long mark)
{
	int	i, k = 0;

	for (i = 0; i < REGISTRY_MAX; i++) {
		if (registry[i].n == NULL || registry[i].seq <= mark ||
		    registry[i].n->stopped || registry[i].n->pid <= 0)
			continue;
		print_message("harness: stopping node pid=%d left running "
		    "(log %s)\n", (int)registry[i].n->pid,
		    registry[i].n->log);
		node_kill(registry[i].n);
		k++;
	}
	return k;
}

/* The group harness_run_group runs: cmocka calls the fixtures of its
 * tests in order and one at a time, and every test gets wrap_setup, so
 * the current test is known there; a setup that fails an assertion
 * skips its test and teardown, so the next wrap_setup (or the end of
 * the group) also stops what the previous test left. */
static const struct CMUnitTest	*group;
static size_t			 group_next, group_cur;
static unsigned long		 test_mark;

static int
wrap_setup(void **state)
{
	if (group_next > 0)	/* not the group setup's nodes */
		(void)harness_stop_since(test_mark);
	group_cur = group_next++;
	test_mark = harness_mark();
	if (group[group_cur].setup_func == NULL)
		return 0;
	return group[group_cur].setup_func(state);
}

static int
wrap_teardown(void **state)
{
	int	rc = 0;

	if (group[group_cur].teardown_func != NULL)
		rc = group[group_cur].teardown_func(state);
	(void)harness_stop_since(test_mark);
	return rc;
}

int
harness_run_group(const char *name, const struct CMUnitTest *tests,
    size_t n, CMFixtureFunction setup, CMFixtureFunction teardown)
{
	struct CMUnitTest	*w = calloc(n, sizeof(*w));
	unsigned long		 start = harness_mark();
	size_t			 i;
	int			 rc;

	if (w == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		w[i] = tests[i];
		w[i].setup_func = wrap_setup;
		w[i].teardown_func = wrap_teardown;
	}
	group = tests;
	group_next = 0;
	test_mark = start;
	rc = _cmocka_run_group_tests(name, w, n, setup, teardown);
	/* The last test's, then the group setup's. */
	(void)harness_stop_since(test_mark);
	(void)harness_stop_since(start);
	group = NULL;
	free(w);
	return rc;
}

struct node *
node_start_layer(const char *layer, const char *more)
{
	struct node	*n = node_new();
	char		 extra[2048];

	node_make_cert(n);
	assert_true((size_t)snprintf(extra, sizeof(extra), "tls = { "
	    "certificate = \"%s\"; private_key = \"%s/key.pem\"; "
	    "record_layer = \"%s\"; };\n%s", n->cert, n->dir, layer,
	    more != NULL ? more : "") < sizeof(extra));
	return node_start_in(n, true, extra);
}

void
relay_sizes(struct client *a, struct client *b, const size_t *sizes,
    size_t n, int salt)
{
	static uint8_t		 buf[DERP_MAX_PACKET];
	struct client		*from, *to;
	struct client_msg	 m;
	size_t			 i, j, k;

	for (i = 0; i < n; i++) {
		assert_true(sizes[i] <= sizeof(buf));
		for (k = 0; k < 2; k++) {
			from = k == 0 ? a : b;
			to = k == 0 ? b : a;
			for (j = 0; j < sizes[i]; j++)
				buf[j] = (uint8_t)(j * 13 + i + k + salt);
			assert_int_equal(client_send_packet(from,
			    client_public_key(to), buf, sizes[i]), 0);
			assert_int_equal(recv_type(to, DERP_FRAME_RECV_PACKET,
			    &m, 10000), 0);
			assert_int_equal(m.len, sizes[i]);
			assert_memory_equal(m.key, client_public_key(from),
			    DERP_KEY_LEN);
			assert_memory_equal(m.data, buf, sizes[i]);
		}
	}
}

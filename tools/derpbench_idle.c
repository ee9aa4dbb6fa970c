/*
 * derpbench --idle: open many DERP clients that then say nothing, hold
 * them, prove each is still up with a Ping, and report the server's
 * memory growth per connection and the connect rate.  One process holds
 * at most its fd limit of clients, so the work is split over forked
 * children, each running threads that own their clients; also the /proc
 * readers shared with the relay benchmark.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tools/derpbench.h"

#define MAX_PROCS	16
#define FD_RESERVE	64	/* per process, besides the clients */
#define PONG_WAIT_MS	10000
#define DRAIN_MS	1000	/* hold: read keepalives this often */

struct idle_proc;

struct idle_thread {
	struct idle_proc	*p;
	struct client		**c;		/* n slots, NULL = down */
	int			 first;		/* global index of c[0] */
	int			 n;
	int			 connected, failed, first_err;
	int			 alive;
	uint64_t		 keepalives;
	int			 with_keepalive;
	uint8_t			*got_ka;	/* n flags */
	pthread_t		 t;
};

struct idle_proc {
	const struct idle_opts	*o;
	atomic_int		 connecting;	/* threads not done yet */
	atomic_bool		 check;		/* hold over */
};

/* One child's answer, twice over its pipe: after connecting, after the
 * check.  Same binary on both ends, so a struct is fine here. */
struct idle_report {
	int		connected, failed, first_err;
	int		alive, with_keepalive;
	uint64_t	keepalives;
};

static uint64_t
mono_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A process's CPU time: its CPU-time clock (every thread's exact run
 * time, those gone included), else /proc's clock ticks (10 ms steps,
 * too coarse for a storm of 60 handshakes). */
static double
proc_cpu(int pid)
{
	char			 path[64], buf[1024], *s;
	unsigned long long	 ut, st;
	struct timespec		 ts;
	clockid_t		 cid;
	FILE			*f;
	int			 i;

	if (clock_getcpuclockid(pid, &cid) == 0 &&
	    clock_gettime(cid, &ts) == 0)
		return (double)ts.tv_sec + ts.tv_nsec / 1e9;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	s = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (s == NULL || (s = strrchr(buf, ')')) == NULL)
		return -1;
	/* After ')': state is field 3; utime 14, stime 15. */
	for (i = 3, s += 2; i < 14 && s != NULL; i++)
		s = strchr(s, ' ') ? strchr(s, ' ') + 1 : NULL;
	if (s == NULL || sscanf(s, "%llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* /proc/PID/schedstat: run time, run-queue wait, slices (ns). */
double
procs_runq_ms(const int *pids, int npids)
{
	unsigned long long	run, wait;
	double			sum = 0;
	char			path[64];
	FILE			*f;
	int			i, ok;

	if (npids == 0)
		return -1;
	for (i = 0; i < npids; i++) {
		snprintf(path, sizeof(path), "/proc/%d/schedstat", pids[i]);
		if ((f = fopen(path, "r")) == NULL)
			return -1;
		ok = fscanf(f, "%llu %llu", &run, &wait) == 2;
		fclose(f);
		if (!ok)
			return -1;
		sum += (double)wait / 1e6;
	}
	return sum;
}

double
procs_cpu_seconds(const int *pids, int npids)
{
	double	sum = 0, v;
	int	i;

	if (npids == 0)
		return -1;
	for (i = 0; i < npids; i++) {
		if ((v = proc_cpu(pids[i])) < 0)
			return -1;
		sum += v;
	}
	return sum;
}

long
procs_rss_kib(const int *pids, int npids)
{
	char	path[64], line[256];
	FILE	*f;
	long	sum = 0, v;
	int	i;

	if (npids == 0)
		return -1;
	for (i = 0; i < npids; i++) {
		snprintf(path, sizeof(path), "/proc/%d/status", pids[i]);
		if ((f = fopen(path, "r")) == NULL)
			return -1;
		v = -1;
		while (fgets(line, sizeof(line), f) != NULL)
			if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
				break;
		fclose(f);
		if (v < 0)
			return -1;
		sum += v;
	}
	return sum;
}

int
parse_src_range(const char *s, uint32_t *first, uint32_t *last)
{
	char		a[32], *dash;
	struct in_addr	x, y;

	if (strlen(s) >= sizeof(a))
		return -EINVAL;
	strcpy(a, s);
	if ((dash = strchr(a, '-')) != NULL)
		*dash++ = '\0';
	if (inet_pton(AF_INET, a, &x) != 1 ||
	    inet_pton(AF_INET, dash ? dash : a, &y) != 1 ||
	    ntohl(x.s_addr) > ntohl(y.s_addr) || ntohl(x.s_addr) == 0)
		return -EINVAL;
	*first = ntohl(x.s_addr);
	*last = ntohl(y.s_addr);
	return 0;
}

/* Read what arrived (keepalives); a client whose socket reports an
 * error or EOF is freed and stays down. */
static void
drain(struct idle_thread *t)
{
	struct client_msg	m;
	int			i, rc;

	for (i = 0; i < t->n; i++) {
		if (t->c[i] == NULL)
			continue;
		while ((rc = client_recv(t->c[i], &m, 0)) == 0)
			if (m.type == DERP_FRAME_KEEP_ALIVE) {
				t->keepalives++;
				t->got_ka[i] = 1;
			}
		if (rc != -EAGAIN) {
			client_free(t->c[i]);
			t->c[i] = NULL;
		}
	}
}

/* Up means: the connection answers a Ping now.  Send them all, then
 * collect the Pongs against one deadline. */
static void
check(struct idle_thread *t)
{
	struct client_msg	m;
	uint8_t			ping[DERP_PING_LEN];
	uint64_t		deadline;
	int			i, rc, left;

	/* A thread of many clients reads their Pongs one after another:
	 * a millisecond more for each (100,000 clients on two cores). */
	deadline = mono_ns() + (PONG_WAIT_MS + (uint64_t)t->n) * 1000000ull;
	for (i = 0; i < t->n; i++) {
		memset(ping, 0, sizeof(ping));
		memcpy(ping, &i, sizeof(i));
		if (t->c[i] != NULL && client_ping(t->c[i], ping) < 0) {
			client_free(t->c[i]);
			t->c[i] = NULL;
		}
	}
	for (i = 0; i < t->n; i++) {
		while (t->c[i] != NULL) {
			left = (int)((deadline - mono_ns()) / 1000000);
			rc = client_recv(t->c[i], &m, left > 0 ? left : 0);
			if (rc < 0) {
				client_free(t->c[i]);
				t->c[i] = NULL;
			} else if (m.type == DERP_FRAME_PONG &&
			    m.len == DERP_PING_LEN &&
			    memcmp(m.data, &i, sizeof(i)) == 0) {
				t->alive++;
				break;
			} else if (m.type == DERP_FRAME_KEEP_ALIVE) {
				t->keepalives++;
				t->got_ka[i] = 1;
			}
		}
		t->with_keepalive += t->got_ka[i];
	}
}

static void *
idle_thread(void *arg)
{
	struct idle_thread	*t = arg;
	const struct idle_opts	*o = t->p->o;
	struct client_opts	 co = o->co;
	char			 src[INET_ADDRSTRLEN];
	struct in_addr		 a;
	uint32_t		 span = o->src_last - o->src_first + 1;
	uint64_t		 next;
	int			 i, err = 0;

	for (i = 0; i < t->n; i++) {
		if (o->src_first != 0) {
			a.s_addr = htonl(o->src_first + (uint32_t)(t->first +
			    i) % span);
			inet_ntop(AF_INET, &a, src, sizeof(src));
			co.bind_addr = src;
		}
		if ((t->c[i] = client_connect(&co, &err)) != NULL) {
			t->connected++;
		} else {
			if (t->failed++ == 0)
				t->first_err = err;
		}
	}
	atomic_fetch_sub(&t->p->connecting, 1);
	next = mono_ns() + DRAIN_MS * 1000000ull;
	while (!atomic_load(&t->p->check)) {
		(void)poll(NULL, 0, 50);
		if (mono_ns() >= next) {
			drain(t);
			next = mono_ns() + DRAIN_MS * 1000000ull;
		}
	}
	check(t);
	return NULL;
}

static ssize_t
read_full(int fd, void *p, size_t n)
{
	size_t	got = 0;
	ssize_t	r;

	while (got < n) {
		r = read(fd, (char *)p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EPIPE;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* A child: clients [first, first + n) over nthreads threads. */
static int
idle_child(const struct idle_opts *o, int first, int n, int nthreads,
    int up, int down)
{
	static struct idle_proc	 p;
	struct idle_thread	*ts;
	struct client		**cs;
	struct idle_report	 r;
	uint8_t			*ka;
	char			 go;
	int			 i, k, per, at;

	p.o = o;
	atomic_store(&p.connecting, nthreads);
	ts = calloc((size_t)nthreads, sizeof(*ts));
	cs = calloc((size_t)n, sizeof(*cs));
	ka = calloc((size_t)n, 1);
	if (ts == NULL || cs == NULL || ka == NULL)
		return 1;
	for (k = 0, at = 0; k < nthreads; k++) {
		per = n / nthreads + (k < n % nthreads);
		ts[k].p = &p;
		ts[k].c = cs + at;
		ts[k].got_ka = ka + at;
		ts[k].first = first + at;
		ts[k].n = per;
		at += per;
		if (pthread_create(&ts[k].t, NULL, idle_thread, &ts[k]) != 0)
			return 1;
	}
	while (atomic_load(&p.connecting) > 0)
		(void)poll(NULL, 0, 10);
	memset(&r, 0, sizeof(r));
	for (k = 0; k < nthreads; k++) {
		r.connected += ts[k].connected;
		r.failed += ts[k].failed;
		if (r.first_err == 0)
			r.first_err = ts[k].first_err;
	}
	if (write(up, &r, sizeof(r)) != (ssize_t)sizeof(r))
		return 1;
	(void)read_full(down, &go, 1);	/* EOF too means: check now */
	atomic_store(&p.check, true);
	for (k = 0; k < nthreads; k++) {
		pthread_join(ts[k].t, NULL);
		r.alive += ts[k].alive;
		r.keepalives += ts[k].keepalives;
		r.with_keepalive += ts[k].with_keepalive;
	}
	if (write(up, &r, sizeof(r)) != (ssize_t)sizeof(r))
		return 1;
	for (i = 0; i < n; i++)
		client_free(cs[i]);
	free(cs);
	free(ka);
	free(ts);
	return 0;
}

/* What the run measured, for the report. */
struct idle_result {
	double	connect_s;
	double	cpu_s;		/* server CPU while connecting, -1 unknown */
	long	rss[3];		/* KiB: before, connected, after the hold */
};

static void
idle_report(const struct idle_opts *o, int nprocs, int nthreads,
    const struct idle_report *r, const struct idle_result *x)
{
	double	rate = x->connect_s > 0 ? r->connected / x->connect_s : 0;
	double	per = r->alive > 0 && x->rss[0] >= 0 && x->rss[2] >= 0 ?
		    (double)(x->rss[2] - x->rss[0]) / r->alive : -1;
	double	cpu_ms = x->cpu_s >= 0 && r->connected > 0 ?
		    x->cpu_s * 1e3 / r->connected : -1;
	char	kib[3][24];
	int	i;

	for (i = 0; i < 3; i++)
		if (x->rss[i] >= 0)
			snprintf(kib[i], sizeof(kib[i]), "%ld", x->rss[i]);
		else
			snprintf(kib[i], sizeof(kib[i]), "null");
	if (o->json) {
		printf("{\"mode\":\"idle\",\"clients\":%d,\"processes\":%d,"
		    "\"threads\":%d,\"tls\":%s,\"connected\":%d,\"failed\":%d,"
		    "\"first_error\":\"%s\",\"connect_s\":%.3f,"
		    "\"connects_per_s\":%.0f,\"hold_s\":%.1f,\"alive\":%d,"
		    "\"keepalives\":%" PRIu64 ",\"clients_with_keepalive\":%d,"
		    "\"server_rss_kib_before\":%s,"
		    "\"server_rss_kib_connected\":%s,"
		    "\"server_rss_kib_after\":%s,", o->n, nprocs, nthreads,
		    o->co.tls ? "true" : "false", r->connected, r->failed,
		    r->failed ? strerror(-r->first_err) : "", x->connect_s,
		    rate, o->hold, r->alive, r->keepalives, r->with_keepalive,
		    kib[0], kib[1], kib[2]);
		if (per >= 0)
			printf("\"rss_kib_per_conn\":%.2f,", per);
		else
			printf("\"rss_kib_per_conn\":null,");
		if (cpu_ms >= 0)
			printf("\"server_cpu_ms_per_connect\":%.3f}\n", cpu_ms);
		else
			printf("\"server_cpu_ms_per_connect\":null}\n");
		return;
	}
	printf("idle clients %d over %s (%d processes, %d threads)\n", o->n,
	    o->co.tls ? "TLS" : "plain HTTP", nprocs, nthreads);
	printf("  connected %d in %.2f s = %.0f connects/s", r->connected,
	    x->connect_s, rate);
	if (cpu_ms >= 0)
		printf(", server CPU %.3f ms each", cpu_ms);
	if (r->failed)
		printf("; failed %d (first: %s)", r->failed,
		    strerror(-r->first_err));
	printf("\n  after %.1f s held: %d answer a Ping, %d got a keepalive "
	    "(%" PRIu64 " in all)\n", o->hold, r->alive, r->with_keepalive,
	    r->keepalives);
	if (x->rss[0] >= 0)
		printf("  server RSS %ld KiB before, %ld KiB connected, %ld "
		    "KiB after hold = %.2f KiB per connection\n", x->rss[0],
		    x->rss[1], x->rss[2], per);
}

static void
sleep_s(double s)
{
	struct timespec	ts = { (time_t)s, (long)((s - (time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* The forked children and the two pipes to each. */
struct kids {
	int	n;
	pid_t	pid[MAX_PROCS];
	int	up[MAX_PROCS];		/* reports, child to parent */
	int	down[MAX_PROCS];	/* "check now", parent to child */
};

/* Fork k->n children; nothing has been printed since the flush. */
static int
spawn(const struct idle_opts *o, struct kids *k, int nthreads)
{
	int	i, per, at = 0, up[2], down[2];

	fflush(stdout);
	fflush(stderr);
	for (i = 0; i < k->n; i++) {
		per = o->n / k->n + (i < o->n % k->n);
		if (pipe(up) == -1)
			return -errno;
		if (pipe(down) == -1 || (k->pid[i] = fork()) == -1)
			return -errno;
		if (k->pid[i] == 0) {
			close(up[0]);
			close(down[1]);
			exit(idle_child(o, at, per, nthreads, up[1], down[0]));
		}
		close(up[1]);
		close(down[0]);
		k->up[i] = up[0];
		k->down[i] = down[1];
		at += per;
	}
	return 0;
}

/* One report from every child, added up; false if one is missing. */
static bool
collect(struct kids *k, struct idle_report *sum)
{
	struct idle_report	r;
	bool			ok = true;
	int			i;

	for (i = 0; i < k->n; i++) {
		if (read_full(k->up[i], &r, sizeof(r)) < 0) {
			fprintf(stderr, "derpbench: child %d died\n", i);
			ok = false;
			continue;
		}
		sum->connected += r.connected;
		sum->failed += r.failed;
		if (sum->first_err == 0)
			sum->first_err = r.first_err;
		sum->alive += r.alive;
		sum->keepalives += r.keepalives;
		sum->with_keepalive += r.with_keepalive;
	}
	return ok;
}

/* Processes and threads each: as many processes as the fd limit
 * needs, the threads divided among them. */
static int
plan(const struct idle_opts *o, int *nprocs, int *nthreads)
{
	struct rlimit	rl;
	int		cap;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return -errno;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);	/* children inherit */
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	cap = rl.rlim_cur > (rlim_t)FD_RESERVE * 2 ? (rl.rlim_cur > INT32_MAX
	    ? INT32_MAX : (int)(rl.rlim_cur - FD_RESERVE)) : FD_RESERVE;
	*nprocs = (o->n + cap - 1) / cap;
	if (*nprocs > MAX_PROCS) {
		fprintf(stderr, "derpbench: %d clients need %d processes at "
		    "%d fds each (max %d); raise ulimit -Hn\n", o->n, *nprocs,
		    cap, MAX_PROCS);
		return -EMFILE;
	}
	*nthreads = o->threads / *nprocs > 0 ? o->threads / *nprocs : 1;
	if (*nthreads > o->n / *nprocs)
		*nthreads = o->n / *nprocs > 0 ? o->n / *nprocs : 1;
	return 0;
}

int
idle_run(const struct idle_opts *o)
{
	struct idle_report	sum, after;
	struct kids		k;
	struct idle_result	x;
	uint64_t		t0;
	double			cpu0;
	int			i, st, nthreads = 1, rc;
	bool			ok;

	memset(&k, 0, sizeof(k));
	if (plan(o, &k.n, &nthreads) < 0)
		return 1;
	x.rss[0] = procs_rss_kib(o->pids, o->npids);
	cpu0 = procs_cpu_seconds(o->pids, o->npids);
	t0 = mono_ns();
	if ((rc = spawn(o, &k, nthreads)) < 0) {
		fprintf(stderr, "derpbench: fork: %s\n", strerror(-rc));
		return 1;
	}
	memset(&sum, 0, sizeof(sum));
	ok = collect(&k, &sum);		/* all connected (or failed) */
	x.connect_s = (double)(mono_ns() - t0) / 1e9;
	x.cpu_s = cpu0 >= 0 ? procs_cpu_seconds(o->pids, o->npids) : -1;
	if (x.cpu_s >= 0)
		x.cpu_s -= cpu0;
	x.rss[1] = procs_rss_kib(o->pids, o->npids);
	sleep_s(o->hold);
	x.rss[2] = procs_rss_kib(o->pids, o->npids);
	for (i = 0; i < k.n; i++)
		if (write(k.down[i], "c", 1) != 1)
			ok = false;	/* that child is gone */
	memset(&after, 0, sizeof(after));
	ok = collect(&k, &after) && ok;
	sum.alive = after.alive;
	sum.keepalives = after.keepalives;
	sum.with_keepalive = after.with_keepalive;
	for (i = 0; i < k.n; i++) {
		close(k.up[i]);
		close(k.down[i]);
		if (waitpid(k.pid[i], &st, 0) != k.pid[i] || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 0)
			ok = false;
	}
	idle_report(o, k.n, nthreads * k.n, &sum, &x);
	return ok && sum.connected == o->n && sum.alive == o->n ? 0 : 1;
}

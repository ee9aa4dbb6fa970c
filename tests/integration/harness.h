/*
 * Integration-test harness: start the real derpd on 127.0.0.1 with a
 * config in a fresh temp dir, wait for readiness against a deadline,
 * connect clients, read metrics and logs, stop and check a clean exit.
 */
#ifndef TESTS_INTEGRATION_HARNESS_H
#define TESTS_INTEGRATION_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>

#include "mesh/client.h"

struct node {
	pid_t		 pid;
	char		 dir[256];
	char		 log[300];
	char		 conf[300];
	char		 cert[300];
	uint16_t	 port;		/* DERP listener (TLS or plain) */
	uint16_t	 http_port;	/* port-80 role in TLS mode, else 0 */
	bool		 tls;
	bool		 stopped;
	bool		 fixed;		/* port preset by the test */
	uint16_t	 stun_port;	/* UDP STUN listener, 0 = off */
	uint16_t	 metrics_port;	/* metrics.listen, for node_metric */
	/* Command that execs derpd (argv prefix, NULL-terminated), e.g.
	 * systemd-socket-activate; derpd then starts on the first
	 * connection to port, which node_start_in makes. */
	const char *const *launcher;
	char		 extra[2048];	/* node_region_start's config */
};

/* Start derpd; extra is appended to the generated config (libconfig
 * text, may override groups by listing them whole).  Fails the test on
 * error. */
struct node	*node_start(bool tls, const char *extra);
/* As node_start, but the caller writes files into dir first. */
struct node	*node_start_in(struct node *n, bool tls, const char *extra);
struct node	*node_new(void);
/* The self-signed localhost certificate (n->cert, dir/key.pem), made by
 * node_start_in when absent; call first to change the files' owner. */
void		 node_make_cert(struct node *n);
/* A free loopback TCP port (bound and released). */
uint16_t	 free_tcp_port(void);
/* SIGTERM, wait (10 s), assert exit 0 and a clean log. */
void		 node_stop(struct node *n);
void		 node_free(struct node *n);

void		 node_opts(const struct node *n, struct client_opts *o);
struct client	*node_client(const struct node *n);
struct client	*node_client_key(const struct node *n, const uint8_t *priv);
/* A client in WebSocket mode (PROTOCOL.md 2.7); fails the test on error. */
struct client	*node_ws_client(const struct node *n);
/* Metric value from /debug/varz, e.g. "derp_packets_sent" or
 * "derp_packets_dropped{reason=\"unknown_dest\",kind=\"disco\"}". */
long		 node_metric(const struct node *n, const char *name);
/* Wait until the log contains needle; false on timeout. */
bool		 node_log_wait(const struct node *n, const char *needle,
		    int timeout_ms);
int		 node_log_count(const struct node *n, const char *needle);
/* The pid of the newest incarnation of worker w, from the log. */
pid_t		 node_worker_pid(const struct node *n, int w);

/* Raw TCP socket to the node (plain), connected; -1 on error. */
int		 raw_connect(uint16_t port);
/* Read until EOF or timeout; returns bytes read or -1 on timeout. */
ssize_t		 raw_read_until_eof(int fd, uint8_t *buf, size_t cap,
		    int timeout_ms);
/* Receive frames until one of the type arrives; 0 or negative errno. */
int		 recv_type(struct client *c, uint8_t type,
		    struct client_msg *m, int timeout_ms);

/* Send from a to b until one arrives (presence may still be propagating
 * between workers or nodes), then drain stragglers.  Fails the test
 * after 15 s. */
void		 reach(struct client *a, struct client *b);

/* A TLS node with its own certificate and tls.record_layer = layer
 * ("derpd", "kernel", "openssl"), with more config appended. */
struct node	*node_start_layer(const char *layer, const char *more);
/* For each of n sizes one packet a to b and one b to a, checked byte
 * for byte; salt varies the bytes between calls. */
void		 relay_sizes(struct client *a, struct client *b,
		    const size_t *sizes, size_t n, int salt);

/* A mesh PSK for test regions (64 hex, as a psk_file holds it). */
#define REGION_PSK \
	"8fb454e8a4747af1bbc2f421ad3c8aca9e0416cc60a7102983692f34dc153b2a\n"
/* As node_region_start, but not started: the caller may adjust the
 * nodes (ports, extra) and then node_start_in(nodes[i], true,
 * nodes[i]->extra). */
/* A plain node of `workers` workers whose mesh PSK file holds
 * REGION_PSK (so mesh frames are allowed), with more config appended. */
struct node	*node_start_psk(int workers, const char *more);
void		 region_prepare(struct node **nodes, int n, const char *psk,
		    int workers);

uint64_t	 now_ms(void);
/* ms times TEST_TIME_SCALE (1..100, default 1): the harness's deadlines
 * under valgrind (make check-valgrind). */
int		 time_scaled(int ms);

/* ---- shared by the worker, fault and soak tests ---- */

/* Which worker serves c (its local port in the client_registered log
 * line), or -1. */
int		 node_client_worker(const struct node *n, struct client *c);
/* Each of the nworkers workers' node-wide view holds want of what
 * ("keys" or "conns", derpd_worker_node_<what>) within timeout_ms;
 * prints the views when not. */
bool		 node_converged(const struct node *n, int nworkers,
		    const char *what, long want, int timeout_ms);
/* As node_converged, but worker skip (down) is not asked. */
bool		 node_converged_but(const struct node *n, int nworkers,
		    int skip, const char *what, long want, int timeout_ms);
/* As node_metric, but retried until timeout_ms (each query bounded to
 * 500 ms: a stopped worker may own the connection); false on timeout. */
bool		 node_metric_try(const struct node *n, const char *name,
		    int timeout_ms, long *out);
/* SIGTERM and wait as node_stop, but expect exactly kills workers to
 * have died by SIGKILL (the test's own kills), no other exit. */
void		 node_stop_killed(struct node *n, int kills);
/* A client with the node's mesh key (watch: WatchConns). */
struct client	*node_mesh_client(const struct node *n, const char *psk,
		    bool watch);
/* Resident set (VmRSS, KiB) and open fds of a process; -1 on error. */
long		 proc_rss_kb(pid_t pid);
/* A line of /proc/pid/status in KiB ("RssAnon:", "RssShmem:"), or -1. */
long		 proc_status_kb(pid_t pid, const char *field);
long		 proc_fd_count(pid_t pid);
/* The pids of the supervisor's children (its workers), up to max. */
int		 node_worker_pids(const struct node *n, pid_t *out, int max);
/* Raw TCP connection from source address src (e.g. "127.0.0.7") to
 * the node's port; -1 on error. */
int		 raw_connect_from(const char *src, uint16_t port);
/* A region of nn TLS nodes meshed with psk (one certificate, its own
 * CA; every node lists all, itself included), workers each; started.
 * Each node's config stays in n->extra for node_start_in restarts. */
void		 node_region_start(struct node **nodes, int nn, int workers,
		    const char *psk);
/* Raise RLIMIT_NOFILE (root may raise the hard limit) to at least
 * want; false when it cannot. */
bool		 raise_nofile(long want);

/* ---- nodes outlive no test ----
 * Every node node_start_in starts is registered until node_free, runs in
 * its own process group and dies with the test process (PR_SET_PDEATHSIG,
 * SIGKILL; its workers follow the supervisor).  A test that ends any
 * other way than through node_stop (a failed assertion longjmps out of
 * it) has its nodes stopped by a teardown that cmocka_run_group_tests
 * (redefined below) gives every test: SIGTERM to the group, SIGKILL after
 * a bound, every member reaped.  Nodes a group setup started are stopped
 * when the group ends, and any left at exit by an atexit handler. */

/* Stop (as above, without node_stop's clean-exit checks) every
 * registered node still running that was started since mark (a value of
 * harness_mark()); returns how many were. */
int		 harness_stop_since(unsigned long mark);
unsigned long	 harness_mark(void);

int		 harness_run_group(const char *name,
		    const struct CMUnitTest *tests, size_t n,
		    CMFixtureFunction setup, CMFixtureFunction teardown);

#undef cmocka_run_group_tests
#define cmocka_run_group_tests(t, setup, teardown) \
	harness_run_group(#t, (t), sizeof(t) / sizeof((t)[0]), (setup), \
	    (teardown))

#endif

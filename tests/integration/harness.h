/*
 * Integration-test harness: start the real derpd on 127.0.0.1 with a
 * config in a fresh temp dir, wait for readiness against a deadline,
 * connect clients, read metrics and logs, stop and check a clean exit.
 */
#ifndef TESTS_INTEGRATION_HARNESS_H
#define TESTS_INTEGRATION_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

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
/* Metric value from /debug/varz, e.g. "derp_packets_sent" or
 * "derp_packets_dropped{reason=\"unknown_dest\",kind=\"disco\"}". */
long		 node_metric(const struct node *n, const char *name);
/* Wait until the log contains needle; false on timeout. */
bool		 node_log_wait(const struct node *n, const char *needle,
		    int timeout_ms);
int		 node_log_count(const struct node *n, const char *needle);
/* The pid of the newest incarnation of worker w, from the log. */
pid_t		 node_worker_pid(const struct node *n, int w);

/* Which worker of n serves client c (from its registration in the log),
 * or -1. */
int		 node_client_worker(const struct node *n, struct client *c);

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

/* A mesh PSK for test regions (64 hex, as a psk_file holds it). */
#define REGION_PSK \
	"8fb454e8a4747af1bbc2f421ad3c8aca9e0416cc60a7102983692f34dc153b2a\n"
#define REGION_EXTRA_MAX 2048
/* Prepare (not start) n TLS nodes of one mesh region: fixed ports, one
 * certificate for all (also their CA), psk in each node's mesh.psk, and
 * in extra[i] the config text "workers = W; mesh = { ... }" listing every
 * node; start each with node_start_in(nodes[i], true, extra[i]). */
void		 region_prepare(struct node **nodes, int n, const char *psk,
		    int workers, char extra[][REGION_EXTRA_MAX]);

uint64_t	 now_ms(void);
/* ms times TEST_TIME_SCALE (1..100, default 1): the harness's deadlines
 * under valgrind (make check-valgrind). */
int		 time_scaled(int ms);

#endif

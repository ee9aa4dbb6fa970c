/*
 * derpbench's parts: the relay benchmark and main (derpbench.c), the
 * idle-connection benchmark (derpbench_idle.c), the reconnect storm
 * (derpbench_storm.c), the paced latency mode (derpbench_paced.c), and
 * the /proc readers they use for the server's CPU time and memory.
 */
#ifndef TOOLS_DERPBENCH_H
#define TOOLS_DERPBENCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mesh/client.h"

#define BENCH_MAX_PIDS	64

enum topology {
	TOPO_ANY,
	TOPO_SAME,	/* both ends on one worker (needs the server log) */
	TOPO_CROSS,	/* ends on different workers */
	TOPO_MESH,	/* senders on one node, receivers on its peer */
	TOPO_N
};

extern const char *const bench_topo_names[TOPO_N];

/* Relay and paced (latency) modes. */
struct bench {
	struct client_opts	 co;		/* senders (and receivers) */
	struct client_opts	 co_rx;		/* receivers */
	int			 pairs;
	size_t			 size;
	double			 seconds;
	double			 rate;		/* paced: packets/s in all */
	int			 senders;	/* paced: sender threads */
	double			 stall_ms;	/* paced: stall threshold */
	unsigned		 window;	/* max in flight per pair */
	int			 server_pids[BENCH_MAX_PIDS];	/* summed */
	int			 npids;
	const char		*server_log;	/* to classify connections */
	enum topology		 topology;
	bool			 json;
	atomic_bool		 stop;
	/* recv, recv_bytes and lat: inside the timed window only;
	 * delivered: also the stragglers after it, for the loss. */
	atomic_uint_fast64_t	 sent, recv, recv_bytes, delivered;
	uint64_t		*lat;		/* ns samples */
	atomic_size_t		 nlat;
};

struct pair {
	struct bench		*b;
	atomic_uint_fast64_t	 psent, precv, pwritten_off;
	atomic_bool		 tx_done;
	struct client		*tx, *rx;
	pthread_t		 ttx, trx;
	void			*paced;		/* paced mode's receiver */
};

/* CLOCK_MONOTONIC in ns: the one clock both ends of a pair stamp with. */
uint64_t	bench_now_ns(void);
/*
 * Connect b->pairs pairs into ps (zeroed by the caller) as b->topology
 * asks, and see a warm-up packet (all-zero stamp) through each: 0, or
 * -1 (said on stderr).  The caller frees the clients.
 */
int	bench_connect_pairs(struct bench *b, struct pair *ps);
#define DRAIN_QUIET_MS	500	/* after the run: wait for stragglers */

/*
 * A receiver's next message: 1 a packet in *m, 0 nothing yet (or not a
 * packet), -1 stop (the run ended and the pair is drained or quiet past
 * *quiet, which starts 0; or the connection failed).
 */
int	pair_recv(struct pair *p, struct client_msg *m, uint64_t *quiet);
/*
 * Paced open-loop run (derpbench_paced.c): b->rate packets/s in all on
 * a fixed schedule, b->senders threads; one-way latency histogram,
 * stalls, generator lateness; prints the report.  Returns the exit
 * status: 0 if packets arrived, 1 otherwise.
 */
int	paced_run(struct bench *b);

struct idle_opts {
	struct client_opts	 co;		/* server, TLS; no bind_addr */
	int			 n;		/* clients to open */
	int			 threads;	/* connecting threads in all */
	double			 hold;		/* seconds to hold them */
	uint32_t		 src_first;	/* source IPv4 range, host */
	uint32_t		 src_last;	/* order; 0 = kernel's choice */
	const int		*pids;		/* server processes, summed */
	int			 npids;
	bool			 json;
};

/*
 * Open o->n clients (in as many processes as the fd limit needs, each
 * with its share of o->threads), hold them, check each still answers a
 * Ping, print the report.  Returns the exit status: 0 if every client
 * connected and stayed up, 1 otherwise.
 */
int	idle_run(const struct idle_opts *o);

struct storm_opts {
	struct client_opts	 co;		/* server, TLS; no bind_addr */
	int			 n;		/* handshakes in all */
	int			 concurrency;	/* connecting threads */
	uint32_t		 src_first;	/* source IPv4 range, host */
	uint32_t		 src_last;	/* order; 0 = kernel's choice */
	const int		*pids;		/* server processes, summed */
	int			 npids;
	bool			 json;
};

/*
 * Reconnect storm: o->n connect + TLS + DERP handshake + disconnect
 * cycles, o->concurrency at a time; print the rate and the server CPU
 * per handshake.  Returns 0 if every handshake succeeded, else 1.
 */
int	storm_run(const struct storm_opts *o);

/* "A.B.C.D-E.F.G.H" or one address into a host-order range: 0 or
 * -EINVAL. */
int	parse_src_range(const char *s, uint32_t *first, uint32_t *last);

/* Milliseconds the pids' main threads (a worker's: its loop) spent
 * runnable but waiting for a CPU, summed; -1 if one is gone. */
double	procs_runq_ms(const int *pids, int npids);
/* User+system CPU seconds summed over pids; -1 if one is gone. */
double	procs_cpu_seconds(const int *pids, int npids);
/* VmRSS in KiB summed over pids; -1 if one is gone. */
long	procs_rss_kib(const int *pids, int npids);

#endif

/*
 * derpbench's parts: the relay benchmark and main (derpbench.c), the
 * idle-connection benchmark (derpbench_idle.c), the reconnect storm
 * (derpbench_storm.c), and the /proc readers they use for the server's CPU time and memory.
 */
#ifndef TOOLS_DERPBENCH_H
#define TOOLS_DERPBENCH_H

#include <stdbool.h>
#include <stdint.h>

#include "mesh/client.h"

#define BENCH_MAX_PIDS	64

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

/* User+system CPU seconds summed over pids; -1 if one is gone. */
double	procs_cpu_seconds(const int *pids, int npids);
/* VmRSS in KiB summed over pids; -1 if one is gone. */
long	procs_rss_kib(const int *pids, int npids);

#endif

/*
 * Worker entry point: one event loop serving DERP, HTTP and STUN on the
 * listening sockets it is handed.  The supervisor's only view of a worker.
 */
#ifndef WORKER_WORKER_H
#define WORKER_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "derp/derp.h"

struct worker_listeners {
	int	https;		/* TLS DERP + HTTP; -1 = off */
	int	http;		/* plain: DERP (no https) or port-80 role */
	int	stun;		/* UDP; -1 = off */
	int	metrics;	/* plain HTTP, /metrics only; -1 = off */
};

/* What a supervised worker inherits beyond the config (NULL = alone). */
struct metrics;

struct worker_env {
	int		 id;		/* 0 .. nworkers-1 */
	int		 nworkers;
	int		 ctl_fd;	/* control socketpair end, -1 = none */
	const char	*runtime_dir;	/* bus endpoints */
	void		*rings;		/* ring set (common/ring.h) */
	size_t		 ring_cap;
	const int	*doorbells;	/* eventfd per worker */
	struct metrics	*metrics;	/* nworkers + 1 shared slots */
	bool		 shared_listeners; /* one socket for all workers */
	const int	*stun_fds;	/* each slot's STUN socket (nworkers),
					 * served for a sibling that is down */
};

/*
 * Serve until SIGTERM/SIGINT (graceful: Restarting to every client, then
 * close).  SIGHUP re-reads cfg_path when non-NULL (certificates, reloadable
 * settings).  Returns the process exit status.
 */
int	worker_main(const struct config *cfg, const char *cfg_path,
	    const uint8_t priv[DERP_KEY_LEN],
	    const struct worker_listeners *ls, const struct worker_env *env);

/* Check what the supervisor cannot: the TLS files load and match.
 * 0, or -EINVAL with a message in err. */
int	worker_check_config(const struct config *cfg, char *err,
	    size_t errlen);

#endif

/*
 * The supervisor: forks the workers, reaps and respawns them, relays
 * reload and stop, and speaks to systemd.  It never touches client
 * traffic.
 */
#ifndef SUPERVISOR_SUP_H
#define SUPERVISOR_SUP_H

#include <stdint.h>

#include "conf/conf.h"
#include "derp/derp.h"
#include "worker/worker.h"

/* Number of workers the config asks for (0 = online CPUs). */
int	sup_nworkers(const struct config *cfg);
/* Run the node until stopped; ls holds one set of listeners per worker
 * (SO_REUSEPORT) or, when shared is set, one set for all.  Returns the
 * exit status. */
int	sup_run(const struct config *cfg, const char *cfg_path,
	    const uint8_t priv[DERP_KEY_LEN],
	    const struct worker_listeners *ls, bool shared);

#endif

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

/* Run the node until stopped; returns the exit status. */
int	sup_run(const struct config *cfg, const char *cfg_path,
	    const uint8_t priv[DERP_KEY_LEN],
	    const struct worker_listeners *ls);

#endif

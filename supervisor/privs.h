/*
 * Dropping root: the configured user and group, no capabilities, no new
 * privileges.  The supervisor drops once its listeners are bound, the
 * node key read and the runtime directory made; each worker drops again
 * after fork (a no-op for the ids then, but it empties the capability
 * sets a systemd service hands down as ambient).
 */
#ifndef SUPERVISOR_PRIVS_H
#define SUPERVISOR_PRIVS_H

#include <stdbool.h>

#include "conf/conf.h"

/* Give path (the runtime directory) to the configured user and group
 * when running as root and a switch is due; 0 or negative errno. */
int	privs_chown(const struct config *cfg, const char *path);
/* Switch to user/group (when configured and different), empty every
 * capability set unless still root, and set no_new_privs; 0 or
 * negative errno (-ENOENT: no such user or group). */
int	privs_drop(const struct config *cfg);

#endif

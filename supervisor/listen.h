/*
 * Listening sockets: bind the configured TCP and UDP addresses, or take
 * them from systemd socket activation.
 */
#ifndef SUPERVISOR_LISTEN_H
#define SUPERVISOR_LISTEN_H

#include <stdbool.h>

/* Bind "host:port" ("" host = dual-stack wildcard).  Returns the fd or
 * -errno; err gets a message. */
int	listen_tcp(const char *hostport, bool reuseport, char *err,
	    int errlen);
int	listen_udp(const char *hostport, bool reuseport, char *err,
	    int errlen);

#endif

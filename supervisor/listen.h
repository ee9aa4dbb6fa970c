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
/*
 * Take a bound TCP listener out of its SO_REUSEPORT group while its
 * worker is down (the kernel would keep queueing a share of new
 * connections on it), and put it back before the worker starts.  The
 * bound address stays; what sat in its queue is reset.  fd < 0 is a
 * no-op.  listen_resume returns 0 or -errno.
 */
void	listen_pause(int fd);
int	listen_resume(int fd);

#endif

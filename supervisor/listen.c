/*
 * Binding the node's sockets at startup (blocking name resolution is
 * fine here: nothing is served yet).  IPv6 wildcards are dual-stack.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf/conf.h"
#include "supervisor/listen.h"

#define LISTEN_BACKLOG	4096

static int
open_bound(const char *hostport, int type, bool reuseport, char *err,
    int errlen)
{
	char		 host[CONF_STR_MAX], port[8];
	uint16_t	 p;
	struct addrinfo	 hints, *ai = NULL;
	int		 fd = -1, on = 1, off = 0, rc;

	if (conf_split_hostport(hostport, host, sizeof(host), &p) < 0) {
		snprintf(err, (size_t)errlen, "bad address %s", hostport);
		return -EINVAL;
	}
	snprintf(port, sizeof(port), "%u", p);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = host[0] ? AF_UNSPEC : AF_INET6;
	hints.ai_socktype = type;
	hints.ai_flags = AI_PASSIVE;
	if ((rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai)) != 0) {
		snprintf(err, (size_t)errlen, "cannot resolve %s: %s", hostport,
		    gai_strerror(rc));
		return -EINVAL;
	}
	fd = socket(ai->ai_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		goto fail;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (reuseport &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) == -1)
		goto fail;
	if (ai->ai_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off,
		    sizeof(off));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) == -1)
		goto fail;
	if (type == SOCK_STREAM && listen(fd, LISTEN_BACKLOG) == -1)
		goto fail;
	freeaddrinfo(ai);
	return fd;
fail:
	rc = -errno;
	snprintf(err, (size_t)errlen, "cannot bind %s: %s", hostport,
	    strerror(errno));
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return rc;
}

int
listen_tcp(const char *hostport, bool reuseport, char *err, int errlen)
{
	return open_bound(hostport, SOCK_STREAM, reuseport, err, errlen);
}

int
listen_udp(const char *hostport, bool reuseport, char *err, int errlen)
{
	return open_bound(hostport, SOCK_DGRAM, reuseport, err, errlen);
}

void
listen_pause(int fd)
{
	/* On Linux, SHUT_RD on a listener disconnects it: unhashed from
	 * the group, port kept (explicitly bound), listen() again later. */
	if (fd >= 0)
		(void)shutdown(fd, SHUT_RD);
}

int
listen_resume(int fd)
{
	if (fd >= 0 && listen(fd, LISTEN_BACKLOG) == -1)
		return -errno;
	return 0;
}

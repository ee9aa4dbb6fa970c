/*
 * sd-daemon calls for the supervisor: notify, watchdog, socket
 * activation.  Failures to notify are ignored on purpose: systemd
 * reports a missing READY itself, and logging every ping would spam.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <systemd/sd-daemon.h>

#include "conf/conf.h"
#include "supervisor/sd.h"

void
sd_ready(void)
{
	(void)sd_notify(0, "READY=1");
}

void
sd_reloading(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	(void)sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ULL +
	    (unsigned long long)ts.tv_nsec / 1000ULL);
}

void
sd_stopping(void)
{
	(void)sd_notify(0, "STOPPING=1");
}

void
sd_status(const char *fmt, ...)
{
	char	buf[256];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	(void)sd_notifyf(0, "STATUS=%s", buf);
}

void
sd_watchdog_ping(void)
{
	(void)sd_notify(0, "WATCHDOG=1");
}

uint64_t
sd_watchdog_usec(void)
{
	uint64_t	usec = 0;

	if (sd_watchdog_enabled(0, &usec) <= 0)
		return 0;
	return usec;
}

/* Port of a configured listen address, 0 when off or unparsable. */
static uint16_t
conf_port(const char *addr)
{
	char		host[CONF_STR_MAX];
	uint16_t	port;

	if (addr[0] == '\0' ||
	    conf_split_hostport(addr, host, sizeof(host), &port) < 0)
		return 0;
	return port;
}

static uint16_t
local_port(int fd)
{
	struct sockaddr_storage	ss;
	socklen_t		sl = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == -1)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)(void *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)(void *)&ss)->sin6_port);
	return 0;
}

/* Which of our listeners fd is: by name first, else by type and port. */
static int *
classify(const struct config *cfg, int fd, const char *name, int *https,
    int *http, int *stun)
{
	uint16_t	port;

	if (sd_is_socket(fd, 0, SOCK_DGRAM, -1) > 0)
		return strcmp(name, "https") != 0 && strcmp(name, "http") != 0 ?
		    stun : NULL;
	if (sd_is_socket(fd, 0, SOCK_STREAM, 1) <= 0)
		return NULL;
	if (strcmp(name, "https") == 0)
		return https;
	if (strcmp(name, "http") == 0)
		return http;
	port = local_port(fd);
	if (port != 0 && port == conf_port(cfg->listen_https))
		return https;
	if (port != 0 && port == conf_port(cfg->listen_http))
		return http;
	return NULL;
}

int
sd_sockets(const struct config *cfg, int *https, int *http, int *stun)
{
	char	**names = NULL;
	int	  n, i, fd, *slot;

	*https = *http = *stun = -1;
	if ((n = sd_listen_fds_with_names(1, &names)) <= 0)
		return n;
	for (i = 0; i < n; i++) {
		fd = SD_LISTEN_FDS_START + i;
		/* Inherited without our flags: every fd is non-blocking and
		 * close-on-exec. */
		(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
		slot = classify(cfg, fd, names[i], https, http, stun);
		if (slot != NULL && *slot == -1)
			*slot = fd;
		else
			close(fd);	/* not ours, or a second of a kind */
		free(names[i]);
	}
	free(names);
	return n;
}

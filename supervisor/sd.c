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

#include <systemd/sd-daemon.h>

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

int
sd_sockets(int *https, int *http, int *stun)
{
	char	**names = NULL;
	int	  n, i, fd;

	*https = *http = *stun = -1;
	if ((n = sd_listen_fds_with_names(1, &names)) <= 0)
		return n;
	for (i = 0; i < n; i++) {
		fd = SD_LISTEN_FDS_START + i;
		/* Inherited without our flags: every fd is non-blocking and
		 * close-on-exec. */
		(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
		if (strcmp(names[i], "https") == 0 &&
		    sd_is_socket(fd, 0, SOCK_STREAM, 1) > 0)
			*https = fd;
		else if (strcmp(names[i], "http") == 0 &&
		    sd_is_socket(fd, 0, SOCK_STREAM, 1) > 0)
			*http = fd;
		else if (strcmp(names[i], "stun") == 0 &&
		    sd_is_socket(fd, 0, SOCK_DGRAM, -1) > 0)
			*stun = fd;
		else
			close(fd);	/* not ours */
		free(names[i]);
	}
	free(names);
	return n;
}

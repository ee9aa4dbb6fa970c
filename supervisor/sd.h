/*
 * systemd integration, the only user of sd-daemon: readiness, reload and
 * stop notifications, status text, the watchdog, and socket activation.
 * Every call is a no-op when not started by systemd (no NOTIFY_SOCKET).
 */
#ifndef SUPERVISOR_SD_H
#define SUPERVISOR_SD_H

#include <stdint.h>

void	sd_ready(void);
/* RELOADING=1 with MONOTONIC_USEC, as Type=notify-reload expects. */
void	sd_reloading(void);
void	sd_stopping(void);
void	sd_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	sd_watchdog_ping(void);
/* Watchdog interval in microseconds, 0 when disabled. */
uint64_t sd_watchdog_usec(void);

/*
 * Sockets passed by systemd, matched by FileDescriptorName= ("https",
 * "http", "stun") or, for sockets of one unit that share a name, by type
 * and by the port of cfg's listen.https / listen.http (a datagram socket
 * is STUN).  Fills the fds (-1 when not passed) and returns how many were
 * passed (0 when not socket-activated), or -errno.
 */
struct config;
int	sd_sockets(const struct config *cfg, int *https, int *http,
	    int *stun);

#endif

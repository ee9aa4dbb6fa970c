#ifndef DERPD_PROCDIAG_H
#define DERPD_PROCDIAG_H

#include <stddef.h>
#include <sys/types.h>

/* Describe every thread of pid into buf[0..len) as comma-separated
 * TID:STATE:WCHAN:SYSCALL entries (truncated with "..." when full).
 * Returns the number of threads described, or -errno (-ENOENT: no such
 * process). */
int	procdiag_threads(pid_t pid, char *buf, size_t len);

#endif

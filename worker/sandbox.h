/*
 * The worker's optional seccomp filter (sandbox.seccomp): an allow-list
 * of system calls installed on every thread once the worker is set up.
 */
#ifndef WORKER_SANDBOX_H
#define WORKER_SANDBOX_H

/*
 * Install the filter (libseccomp, all threads synchronised).  A call
 * off the list runs a SIGSYS handler that writes one line
 * "event=seccomp_denied syscall=N" to stderr and kills the process with
 * SIGSYS, which the supervisor logs before respawning.  0 or negative
 * errno.
 */
int	sandbox_apply(int worker_id);

#endif

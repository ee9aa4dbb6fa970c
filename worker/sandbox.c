/*
 * sandbox.seccomp: the worker's system-call allow-list (libseccomp).
 *
 * Installed at the end of worker_init, when the listeners, bus, rings,
 * TLS contexts, inotify watches and the ZeroMQ I/O threads exist, with
 * TSYNC so every thread is filtered and threads started later (the
 * getaddrinfo_a helpers) inherit it.  What stays allowed is what the
 * event loop, OpenSSL, ZeroMQ, glibc's resolver and the certificate
 * and traffic-dump files need from then on; the list was found by
 * running the whole integration suite with the filter on
 * (DERPD_TEST_SECCOMP=1) and strace.  Not on it, among others: execve,
 * fork (clone without CLONE_THREAD; clone3 answers ENOSYS so glibc
 * falls back to clone, whose flags a filter can read), ptrace, the
 * set*id and capability calls, mount and namespaces, bpf, kernel
 * modules, keyrings, chmod/chown, bind and listen.
 *
 * A denied call raises SIGSYS (SCMP_ACT_TRAP).  The handler writes the
 * syscall number to stderr (async-signal-safe: no log_msg, no name
 * lookup; scmp_sys_resolver N names it) and re-raises SIGSYS with the
 * default action, so the process dies with it and the supervisor logs
 * and respawns as for any crash.
 */
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>
#include <linux/sockios.h>

#include <seccomp.h>

#include "common/log.h"
#include "worker/sandbox.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_ASAN	1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_ASAN	1
#endif
#endif

static const char *const allowed[] = {
	/* I/O on sockets, files, eventfds, timerfds, signalfd, inotify */
	"read", "write", "readv", "writev", "pread64", "pwrite64",
	"recvfrom", "sendto", "recvmsg", "sendmsg", "recvmmsg", "sendmmsg",
	"close", "shutdown", "lseek", "fcntl", "dup",
	"fsync", "fdatasync", "ftruncate",
	/* the event loop, ZeroMQ's poller and signalers */
	"epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait",
	"epoll_pwait2", "poll", "ppoll", "eventfd2", "pipe2",
	"timerfd_create", "timerfd_settime", "timerfd_gettime",
	/* sockets: accept, mesh and ZeroMQ reconnects, resolver UDP */
	"socketpair", "connect", "accept", "accept4",
	"getsockname", "getpeername", "setsockopt", "getsockopt",
	/* files: certificates and keys on reload, the traffic dump,
	 * resolv.conf and friends, certwatch's realpath */
	"openat", "open", "newfstatat", "fstat", "stat", "lstat", "statx",
	"readlink", "readlinkat", "getdents64", "access", "faccessat",
	"faccessat2", "rename", "renameat", "renameat2", "unlink", "unlinkat",
	"inotify_add_watch", "inotify_rm_watch",
	/* memory */
	"brk", "mmap", "munmap", "mremap", "mprotect", "madvise",
	/* signals (the SIGSYS path included) and time */
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack",
	"tgkill", "clock_gettime", "clock_getres", "clock_nanosleep",
	"nanosleep", "gettimeofday", "time",
	/* threads (clone is added with its flags checked) */
	"futex", "set_robust_list", "get_robust_list", "rseq",
	"set_tid_address", "sched_yield", "sched_getaffinity",
	/* ZeroMQ threads (started by the first socket, running on after
	 * the filter is in) read and set their scheduling; raising it
	 * still needs CAP_SYS_NICE, which the worker does not have */
	"sched_getparam", "sched_setparam", "sched_getscheduler",
	"sched_setscheduler",
	"membarrier", "exit", "exit_group", "restart_syscall",
	/* identity and limits, read-only */
	"getpid", "gettid", "getppid", "getuid", "geteuid", "getgid",
	"getegid", "uname", "getrandom", "prlimit64", "getrlimit", "sysinfo",
	"getcwd",
};

/* Calls allowed for some values of one argument only. */
static const struct {
	const char	*name;
	unsigned long	 vals[6];	/* allowed values of arg argi */
	unsigned	 n;
	unsigned	 argi;
} allowed_args[] = {
	/* getaddrinfo's AI_ADDRCONFIG asks over netlink */
	{ "socket", { AF_UNIX, AF_INET, AF_INET6, AF_NETLINK }, 4, 0 },
	/* thread names (ZeroMQ) */
	{ "prctl", { PR_SET_NAME, PR_GET_NAME }, 2, 0 },
	/* non-blocking mode, readable bytes, isatty; interface
	 * names and indexes for scoped IPv6 addresses */
	{ "ioctl", { FIONBIO, FIONREAD, TCGETS, SIOCGIFINDEX, SIOCGIFNAME },
	    5, 1 },
};

#ifdef SANDBOX_ASAN
/* LeakSanitizer's leak check (run in workers before _exit) stops the
 * world from a ptrace()ing helper task: a clone without CLONE_THREAD,
 * /proc/self/task listed with getdents, PR_SET_PTRACER and
 * PR_SET_DUMPABLE around it. */
static const char *const allowed_asan[] = {
	"ptrace", "wait4", "waitid", "clone", "prctl", "getdents",
};
#endif

static int	sandbox_worker = -1;

static int
allow_args(scmp_filter_ctx ctx)
{
	size_t	i;
	unsigned j;
	int	nr, rc;

	for (i = 0; i < sizeof(allowed_args) / sizeof(allowed_args[0]); i++) {
#ifdef SANDBOX_ASAN
		if (strcmp(allowed_args[i].name, "prctl") == 0)
			continue;	/* all of it, below */
#endif
		nr = seccomp_syscall_resolve_name(allowed_args[i].name);
		for (j = 0; j < allowed_args[i].n; j++) {
			struct scmp_arg_cmp	c = {
				.arg = allowed_args[i].argi,
				.op = SCMP_CMP_EQ,
				.datum_a = allowed_args[i].vals[j],
			};

			if ((rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW,
			    nr, 1, &c)) < 0 && rc != -EEXIST)
				return rc;
		}
	}
	return 0;
}

static char *
put_num(char *p, long v)
{
	char	tmp[24];
	int	n = 0;

	if (v < 0) {
		*p++ = '-';
		v = -v;
	}
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0 && n < (int)sizeof(tmp));
	while (n > 0)
		*p++ = tmp[--n];
	return p;
}

static void
on_sigsys(int sig, siginfo_t *si, void *uc)
{
	char	 line[160], *p = line;
	static const char a[] = "err worker=", b[] =
	    " event=seccomp_denied syscall=", c[] = " arch=0x";
	unsigned arch = si->si_arch;
	int	 i;

	(void)uc;
	memcpy(p, a, sizeof(a) - 1);
	p = put_num(p + sizeof(a) - 1, sandbox_worker);
	memcpy(p, b, sizeof(b) - 1);
	p = put_num(p + sizeof(b) - 1, si->si_syscall);
	memcpy(p, c, sizeof(c) - 1);
	p += sizeof(c) - 1;
	for (i = 28; i >= 0; i -= 4)
		*p++ = "0123456789abcdef"[(arch >> i) & 15];
	*p++ = '\n';
	(void)!write(STDERR_FILENO, line, (size_t)(p - line));
	/* SA_RESETHAND: the default action now; SA_NODEFER: not blocked. */
	raise(sig);
	_exit(128 + sig);
}

static int
allow_names(scmp_filter_ctx ctx, const char *const *names, size_t n)
{
	size_t	i;
	int	nr, rc;

	for (i = 0; i < n; i++) {
		if ((nr = seccomp_syscall_resolve_name(names[i])) ==
		    __NR_SCMP_ERROR)
			continue;	/* not on this architecture */
		if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0)) < 0 &&
		    rc != -EDOM)
			return rc;
	}
	return 0;
}

int
sandbox_apply(int worker_id)
{
	struct sigaction	 sa;
	scmp_filter_ctx		 ctx;
	int			 rc;

	sandbox_worker = worker_id;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) == -1)
		return -errno;
	if ((ctx = seccomp_init(SCMP_ACT_TRAP)) == NULL)
		return -ENOMEM;
	/* CTL_LOG: the kernel's audit log names every denied call too
	 * (type=1326), also where the handler cannot run (below). */
	if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) < 0 ||
	    (rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_LOG, 1)) < 0 ||
	    (rc = allow_names(ctx, allowed, sizeof(allowed) /
	    sizeof(allowed[0]))) < 0 || (rc = allow_args(ctx)) < 0)
		goto out;
#ifdef SANDBOX_ASAN
	if ((rc = allow_names(ctx, allowed_asan, sizeof(allowed_asan) /
	    sizeof(allowed_asan[0]))) < 0)
		goto out;
#else
	/* Threads only: a process may not fork. */
	if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
	    SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD))) < 0)
		goto out;
#endif
	if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS),
	    SCMP_SYS(clone3), 0)) < 0 && rc != -EDOM)
		goto out;
	rc = seccomp_load(ctx);
out:
	seccomp_release(ctx);
	if (rc == 0)
		log_notice("seccomp_enabled", "worker=%d syscalls=%zu",
		    worker_id, sizeof(allowed) / sizeof(allowed[0]));
	return rc < 0 ? rc : 0;
}

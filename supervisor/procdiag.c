/*
 * What a hung worker's threads are doing, read from /proc before the
 * supervisor kills it: per thread its state, kernel wait channel and
 * the system call it sits in, so a worker_hung line can be reported
 * without a debugger.  Reads only; nothing here blocks on the worker.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "supervisor/procdiag.h"

/* Read a small /proc file into buf (NUL-terminated, trailing newline
 * dropped); "?" when it cannot be read. */
static void
read_small(const char *path, char *buf, size_t len)
{
	ssize_t	n;
	int	fd;

	snprintf(buf, len, "?");
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0) {
		snprintf(buf, len, "?");
		return;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

/* One thread as TID:STATE:WCHAN:SYSCALL.  STATE is stat's third field;
 * SYSCALL is the number it waits in, "running", or "?" (no ptrace
 * access). */
static int
thread_desc(pid_t pid, int tid, char *out, size_t len)
{
	char	path[64], stat[256], wchan[64], sc[128], *p, state = '?';

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, tid);
	read_small(path, stat, sizeof(stat));
	if ((p = strrchr(stat, ')')) != NULL && p[1] == ' ' && p[2] != '\0')
		state = p[2];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/wchan", (int)pid, tid);
	read_small(path, wchan, sizeof(wchan));
	if (wchan[0] == '\0' || strcmp(wchan, "0") == 0)
		snprintf(wchan, sizeof(wchan), "-");
	snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", (int)pid,
	    tid);
	read_small(path, sc, sizeof(sc));
	sc[strcspn(sc, " ")] = '\0';	/* the number; not its arguments */
	return snprintf(out, len, "%d:%c:%s:%s", tid, state, wchan, sc);
}

int
procdiag_threads(pid_t pid, char *buf, size_t len)
{
	char		 path[64], one[160];
	struct dirent	*e;
	DIR		*d;
	size_t		 used = 0;
	int		 n, count = 0;

	if (len == 0)
		return -EINVAL;
	buf[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if ((d = opendir(path)) == NULL)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		n = thread_desc(pid, atoi(e->d_name), one, sizeof(one));
		if (n < 0)
			continue;
		/* Room for this entry, its comma and a final "...". */
		if (used + (size_t)n + 1 + 4 > len) {
			snprintf(buf + used, len - used, "%s...",
			    used > 0 ? "," : "");
			break;
		}
		used += (size_t)snprintf(buf + used, len - used, "%s%s",
		    used > 0 ? "," : "", one);
		count++;
	}
	closedir(d);
	return count;
}

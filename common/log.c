/*
 * The one writer of log output: key=value lines to stderr, journald-aware.
 * Owns the process tag and level; nothing else in the project writes to
 * stderr once the daemon is running.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

static char	log_tag[32] = "derpd";
static int	log_level = LOG_INFO;
static int	log_journal = -1;

static const char *const log_names[] = {
	"emerg", "alert", "crit", "err", "warn", "notice", "info", "debug",
};

void
log_init(const char *tag, int level)
{
	snprintf(log_tag, sizeof(log_tag), "%s", tag);
	log_level = level;
	log_journal = getenv("JOURNAL_STREAM") != NULL;
}

void
log_set_level(int level)
{
	log_level = level;
}

int
log_get_level(void)
{
	return log_level;
}

int
log_level_parse(const char *s)
{
	int	i;

	for (i = LOG_ERR; i <= LOG_DEBUG; i++)
		if (strcasecmp(s, log_names[i]) == 0)
			return i;
	if (strcasecmp(s, "warning") == 0)
		return LOG_WARNING;
	return -1;
}

void
log_msg(int prio, const char *event, const char *fmt, ...)
{
	char		 line[1024];
	int		 n, m, saved = errno;
	va_list		 ap;
	struct timespec	 ts;
	struct tm	 tm;

	if (prio > log_level)
		return;
	if (prio < 0 || prio > LOG_DEBUG)
		prio = LOG_ERR;
	if (log_journal == -1)
		log_journal = getenv("JOURNAL_STREAM") != NULL;
	if (log_journal) {
		n = snprintf(line, sizeof(line), "<%d>%s %s event=%s ", prio,
		    log_names[prio], log_tag, event);
	} else {
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = snprintf(line, sizeof(line),
		    "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s event=%s ",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
		    log_names[prio], log_tag, event);
	}
	if (n < 0 || (size_t)n >= sizeof(line))
		n = sizeof(line) - 2;
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	while (n > 0 && line[n - 1] == ' ')
		n--;
	line[n++] = '\n';
	/* One write per line so concurrent processes never interleave. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* nowhere left to report it */
	}
	errno = saved;
}

/*
 * The one writer of log output: key=value lines to stderr, journald-aware.
 * Owns the process tag and level, the rate limiters' token buckets and
 * the list of those holding counts back; nothing else in the project
 * writes to stderr once the daemon is running.
 */
#include <errno.h>
#include <inttypes.h>
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
static log_clock_fn	log_clock;	/* NULL: CLOCK_MONOTONIC */
static struct log_limit	*log_limits;	/* those that held lines back */
static uint32_t	log_conn_burst = LOG_CONN_BURST;
static uint32_t	log_conn_rate = LOG_CONN_RATE;

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

/* Format and write one line; suppressed > 0 appends "suppressed=K". */
static void
log_vmsg(int prio, const char *event, uint64_t suppressed, const char *fmt,
    va_list ap)
{
	char		 line[1024];
	int		 n, m;
	struct timespec	 ts;
	struct tm	 tm;

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
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	while (n > 0 && line[n - 1] == ' ')
		n--;
	if (suppressed > 0 && (size_t)n < sizeof(line) - 2) {
		m = snprintf(line + n, sizeof(line) - (size_t)n - 1,
		    " suppressed=%" PRIu64, suppressed);
		if (m > 0)
			n += m;
		if ((size_t)n > sizeof(line) - 2)
			n = sizeof(line) - 2;
	}
	line[n++] = '\n';
	/* One write per line so concurrent processes never interleave. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* nowhere left to report it */
	}
}

void
log_msg(int prio, const char *event, const char *fmt, ...)
{
	int		 saved = errno;
	va_list		 ap;

	if (prio > log_level)
		return;
	va_start(ap, fmt);
	log_vmsg(prio, event, 0, fmt, ap);
	va_end(ap);
	errno = saved;
}

static void
log_line(int prio, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
log_line(int prio, const char *event, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vmsg(prio, event, 0, fmt, ap);
	va_end(ap);
}

bool
log_limit_allow(struct log_limit *l, uint64_t now_ms, uint64_t *suppressed)
{
	uint64_t	cap, dt;

	if (l->rate == 0 || l->interval_ms == 0)
		goto allow;
	/*
	 * Credit in 1/interval_ms lines: rate units a ms come in, a line
	 * costs interval_ms, the bucket holds burst lines; integers, so
	 * nothing is lost to rounding.  It starts full; a clock that went
	 * back adds nothing.
	 */
	cap = (uint64_t)l->burst * l->interval_ms;
	if (!l->started) {
		l->started = true;
		l->credit = cap;
	} else if (now_ms > l->last_ms) {
		dt = now_ms - l->last_ms;
		if (dt > cap)
			dt = cap;	/* refills it whole (rate >= 1); and
					 * cap * rate fits: see log.h */
		l->credit += dt * l->rate;
		if (l->credit > cap)
			l->credit = cap;
	}
	l->last_ms = now_ms;
	if (l->credit < l->interval_ms) {
		l->suppressed++;
		return false;
	}
	l->credit -= l->interval_ms;
allow:
	*suppressed = l->suppressed;
	l->suppressed = 0;
	return true;
}

/* Put l on the flush list once (a test may have reset its fields). */
static void
limit_list(struct log_limit *l)
{
	struct log_limit	*p;

	l->listed = true;
	for (p = log_limits; p != NULL; p = p->next)
		if (p == l)
			return;
	l->next = log_limits;
	log_limits = l;
}

int
log_limit_flush(void)
{
	int			 saved = errno, lines = 0;
	struct log_limit	*l;
	uint64_t		 n;

	for (l = log_limits; l != NULL; l = l->next) {
		if (l->suppressed == 0)
			continue;
		n = l->suppressed;
		l->suppressed = 0;
		if (l->prio > log_level)
			continue;	/* the level was lowered since */
		log_line(l->prio, "log_suppressed", "what=%s count=%" PRIu64,
		    l->event, n);
		lines++;
	}
	errno = saved;
	return lines;
}

void
log_set_conn_limit(uint32_t burst, uint32_t rate)
{
	log_conn_burst = burst;
	log_conn_rate = rate;
}

static uint64_t
monotonic_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void
log_set_clock(log_clock_fn fn)
{
	log_clock = fn;
}

void
log_msg_limited(struct log_limit *l, int prio, const char *event,
    const char *fmt, ...)
{
	int		 saved = errno;
	uint64_t	 sup;
	va_list		 ap;

	if (prio > log_level)
		return;
	if (l->conn) {
		l->burst = log_conn_burst;
		l->rate = log_conn_rate;
		l->interval_ms = 1000;
	}
	l->prio = prio;
	l->event = event;
	if (!log_limit_allow(l, log_clock != NULL ? log_clock() :
	    monotonic_ms(), &sup)) {
		if (!l->listed)
			limit_list(l);
		errno = saved;
		return;
	}
	va_start(ap, fmt);
	log_vmsg(prio, event, sup, fmt, ap);
	va_end(ap);
	errno = saved;
}

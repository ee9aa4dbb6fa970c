/*
 * key=value logging to stderr.  With JOURNAL_STREAM set each line starts
 * with the sd-daemon "<prio>" prefix so journald keeps priorities;
 * otherwise with an ISO-8601 timestamp.  The only mutable globals of the
 * project live here (level and process tag).
 */
#ifndef COMMON_LOG_H
#define COMMON_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

void	log_init(const char *tag, int level);	/* tag: "sup", "worker=N" */
void	log_set_level(int level);
int	log_get_level(void);
/* "err", "warn", "notice", "info", "debug" -> LOG_*; -1 if unknown. */
int	log_level_parse(const char *s);
void	log_msg(int prio, const char *event, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

/*
 * Rate limiting for lines a remote or a misbehaving sibling can cause
 * over and over (a bad frame, a corrupt ring, a failed allocation per
 * accept): one struct log_limit per call site lets burst lines through
 * per interval_ms window, counts the rest, and the first line let through
 * after a suppression carries "suppressed=K".  Counters (metrics) are
 * incremented by the caller before and regardless of this.  Lines the
 * level filters out use no budget.
 */
struct log_limit {
	uint32_t	burst;		/* lines per window */
	uint32_t	interval_ms;	/* window length */
	uint64_t	window;		/* start of the current window, ms */
	uint32_t	used;		/* lines let through in it */
	bool		started;
	uint64_t	suppressed;	/* since the last line let through */
};

#define LOG_LIMIT_BURST		5
#define LOG_LIMIT_INTERVAL_MS	10000
#define LOG_LIMIT_INIT(b, ms)	{ .burst = (b), .interval_ms = (ms) }

typedef uint64_t (*log_clock_fn)(void);

/* Whether a line may go out at now_ms; when true, *suppressed is how many
 * were held back before it (and the count restarts).  Pure: no output. */
bool	log_limit_allow(struct log_limit *l, uint64_t now_ms,
	    uint64_t *suppressed);
/* As log_msg, through l (read with the log clock); the line ends with
 * " suppressed=K" when K > 0 were held back before it. */
void	log_msg_limited(struct log_limit *l, int prio, const char *event,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The log clock, CLOCK_MONOTONIC ms by default; NULL restores it (for
 * tests). */
void	log_set_clock(log_clock_fn fn);

/* One limiter per call site (LOG_LIMIT_BURST per LOG_LIMIT_INTERVAL_MS). */
#define log_limited(prio, ev, ...)					\
	do {								\
		static struct log_limit log_ll_ = LOG_LIMIT_INIT(	\
		    LOG_LIMIT_BURST, LOG_LIMIT_INTERVAL_MS);		\
		log_msg_limited(&log_ll_, prio, ev, __VA_ARGS__);	\
	} while (0)
#define log_err_limited(ev, ...)	log_limited(LOG_ERR, ev, __VA_ARGS__)
#define log_warn_limited(ev, ...)					\
	log_limited(LOG_WARNING, ev, __VA_ARGS__)

#define log_err(ev, ...)	log_msg(LOG_ERR, ev, __VA_ARGS__)
#define log_warn(ev, ...)	log_msg(LOG_WARNING, ev, __VA_ARGS__)
#define log_notice(ev, ...)	log_msg(LOG_NOTICE, ev, __VA_ARGS__)
#define log_info(ev, ...)	log_msg(LOG_INFO, ev, __VA_ARGS__)
#define log_debug(ev, ...)						\
	do {								\
		if (log_get_level() >= LOG_DEBUG)			\
			log_msg(LOG_DEBUG, ev, __VA_ARGS__);		\
	} while (0)

#endif

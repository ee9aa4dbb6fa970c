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
 * accept) and for per-connection and per-request lines (conn_closed,
 * client_registered): one struct log_limit per call site (or per event
 * kind, shared by its sites) is a token bucket of burst lines, refilled
 * at rate lines per interval_ms.  The rest are counted: the next line
 * let through carries "suppressed=K", and log_limit_flush() reports what
 * no later line did.  Counters (metrics) are incremented by the caller
 * before and regardless of this.  Lines the level filters out use no
 * budget.  Single-threaded: a limiter, and the flush, belong to one
 * thread (each derpd process; derpprobe's serving thread).  burst *
 * interval_ms * rate must fit in 64 bits (the settings' ranges keep it
 * under 2^44).
 */
struct log_limit {
	uint32_t	 burst;		/* lines let through at once */
	uint32_t	 rate;		/* then rate lines per interval_ms; */
	uint32_t	 interval_ms;	/* rate 0: every line */
	bool		 conn;		/* burst, rate: log_set_conn_limit */
	bool		 started;
	bool		 listed;	/* on the flush list */
	int		 prio;		/* of the last line, for the flush */
	const char	*event;		/* likewise; a string literal */
	uint64_t	 last_ms;	/* when credit was last topped up */
	uint64_t	 credit;	/* 1/interval_ms lines */
	uint64_t	 suppressed;	/* since the last report of them */
	struct log_limit *next;		/* the flush list */
};

/* Faults a remote can repeat: 5 lines, then 5 per 10 s. */
#define LOG_LIMIT_BURST		5
#define LOG_LIMIT_INTERVAL_MS	10000
#define LOG_LIMIT_INIT(b, ms)						\
	{ .burst = (b), .rate = (b), .interval_ms = (ms) }
/*
 * Per-connection and per-request lines, per process (worker) and event
 * kind: 50 at once, then 10 a second, unless log.conn_burst and
 * log.conn_rate say otherwise.  The burst covers ordinary churn and a
 * few dozen clients reconnecting together, line by line; the rate keeps
 * a reconnect storm, across the handful of such events and 2-8 workers,
 * at a few hundred lines a second, under journald's default
 * per-service limit (10000 per 30 s), so journald never drops lines
 * unaccounted, errors among them.
 */
#define LOG_CONN_BURST		50
#define LOG_CONN_RATE		10	/* lines per second */
#define LOG_LIMIT_CONN_INIT	{ .conn = true }

typedef uint64_t (*log_clock_fn)(void);

/* Whether a line may go out at now_ms; when true, *suppressed is how many
 * were held back before it (and the count restarts).  Pure: no output. */
bool	log_limit_allow(struct log_limit *l, uint64_t now_ms,
	    uint64_t *suppressed);
/* As log_msg, through l (read with the log clock); the line ends with
 * " suppressed=K" when K > 0 were held back before it.  l must outlive
 * the process (static storage): once it holds a line back, it joins the
 * flush list. */
void	log_msg_limited(struct log_limit *l, int prio, const char *event,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/*
 * For each limiter holding back lines no later line reported: one line
 * "event=log_suppressed what=<event> count=K" at the held-back lines'
 * priority, and the count restarts.  Call it from a timer about once a
 * second (the worker's beat) and before exit.  Returns lines written.
 */
int	log_limit_flush(void);
/* The per-connection limit (LOG_LIMIT_CONN_INIT sites): burst lines at
 * once, then rate a second; rate 0 lets every line through. */
void	log_set_conn_limit(uint32_t burst, uint32_t rate);
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

/* A per-connection or per-request line: one limiter per call site at
 * the per-connection limit. */
#define log_conn(prio, ev, ...)						\
	do {								\
		static struct log_limit log_ll_ = LOG_LIMIT_CONN_INIT;	\
		log_msg_limited(&log_ll_, prio, ev, __VA_ARGS__);	\
	} while (0)
#define log_warn_conn(ev, ...)	log_conn(LOG_WARNING, ev, __VA_ARGS__)
#define log_notice_conn(ev, ...) log_conn(LOG_NOTICE, ev, __VA_ARGS__)
#define log_info_conn(ev, ...)	log_conn(LOG_INFO, ev, __VA_ARGS__)

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

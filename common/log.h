/*
 * key=value logging to stderr.  With JOURNAL_STREAM set each line starts
 * with the sd-daemon "<prio>" prefix so journald keeps priorities;
 * otherwise with an ISO-8601 timestamp.  The only mutable globals of the
 * project live here (level and process tag).
 */
#ifndef COMMON_LOG_H
#define COMMON_LOG_H

#include <syslog.h>

void	log_init(const char *tag, int level);	/* tag: "sup", "worker=N" */
void	log_set_level(int level);
int	log_get_level(void);
/* "err", "warn", "notice", "info", "debug" -> LOG_*; -1 if unknown. */
int	log_level_parse(const char *s);
void	log_msg(int prio, const char *event, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

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

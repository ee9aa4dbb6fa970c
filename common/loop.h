/*
 * Event loop: level-triggered epoll for fds, a binary min-heap of
 * millisecond timers, and a cached CLOCK_MONOTONIC "now".  The only user
 * of epoll_* and timerfd in the project.  Single-threaded.
 */
#ifndef COMMON_LOOP_H
#define COMMON_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>

struct loop;

enum loop_events {
	LOOP_IN = 0x1,
	LOOP_OUT = 0x2,
	LOOP_RW = LOOP_IN | LOOP_OUT,
	LOOP_ERR = 0x4,		/* reported only: EPOLLERR / EPOLLHUP */
	LOOP_EXCLUSIVE = 0x8,	/* add only: one waiter woken (shared fds) */
};

struct loop_io;
typedef void	(*loop_io_fn)(struct loop_io *io, unsigned events);

/* Embedded by the fd's owner; must outlive its registration. */
struct loop_io {
	int		 fd;
	unsigned	 events;	/* currently armed */
	loop_io_fn	 fn;
	void		*arg;
};

struct loop_timer;
typedef void	(*loop_timer_fn)(struct loop_timer *t);

struct loop_timer {
	uint64_t	 when;		/* ms, monotonic */
	size_t		 slot;		/* heap index + 1; 0 = not armed */
	loop_timer_fn	 fn;
	void		*arg;
};

struct loop	*loop_new(void);
void		 loop_free(struct loop *l);

void	loop_io_init(struct loop_io *io, int fd, loop_io_fn fn, void *arg);
int	loop_io_add(struct loop *l, struct loop_io *io, unsigned events)
	    __attribute__((warn_unused_result));
/* Change interest; a no-op when unchanged. */
int	loop_io_mod(struct loop *l, struct loop_io *io, unsigned events);
void	loop_io_del(struct loop *l, struct loop_io *io);

void	loop_timer_init(struct loop_timer *t, loop_timer_fn fn, void *arg);
/* (Re)arm to fire ms after loop_now().  0, or -ENOMEM when the heap
 * cannot grow (the timer is then not armed). */
int	loop_timer_set(struct loop *l, struct loop_timer *t, uint64_t ms);
void	loop_timer_cancel(struct loop *l, struct loop_timer *t);
static inline bool
loop_timer_armed(const struct loop_timer *t)
{
	return t->slot != 0;
}

/* How many timers are armed (tests check that none outlive their owner). */
size_t	loop_timers_armed(const struct loop *l);

uint64_t loop_now(struct loop *l);	/* cached per iteration, ms */
uint64_t loop_clock_ms(void);		/* fresh CLOCK_MONOTONIC, ms */
uint64_t loop_clock_ns(void);		/* fresh CLOCK_MONOTONIC, ns */

/* Called after every dispatch round (frees deferred objects). */
typedef void	(*loop_after_fn)(void *arg);
void	loop_set_after(struct loop *l, loop_after_fn fn, void *arg);

/*
 * How long each loop turn took, from epoll_wait's return to the end of
 * the after-hook: a histogram over LOOP_TURN_BUCKETS upper bounds
 * (loop_turn_bounds_us, the last unbounded), their sum and the longest.
 * All uint64_t, so an owner may keep it among its summed counters.
 */
#define LOOP_TURN_BUCKETS	12
struct loop_turns {
	uint64_t	bucket[LOOP_TURN_BUCKETS];	/* not cumulative */
	uint64_t	sum_ns;
	uint64_t	max_ns;
};
extern const uint64_t loop_turn_bounds_us[LOOP_TURN_BUCKETS - 1];
/* Where the loop counts its turns (default: inside the loop). */
void	loop_set_turns(struct loop *l, struct loop_turns *t);

/* Run until loop_stop(); returns 0 or -errno from epoll. */
int	loop_run(struct loop *l);
void	loop_stop(struct loop *l);
/* Make the next wait return at once (work is pending outside epoll). */
void	loop_wake(struct loop *l);

/* Block sigs and return a non-blocking signalfd for them, or -errno. */
int	loop_signalfd(const sigset_t *sigs);

#endif

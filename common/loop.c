/*
 * epoll + timer heap.  Owns the epoll fd and the timer heap; callers own
 * their loop_io and loop_timer storage.  Objects closed inside a callback
 * must be freed from the after-hook, never inside the callback itself.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "common/loop.h"

#define LOOP_MAX_EVENTS	256

struct loop {
	int			 epfd;
	bool			 stop;
	bool			 wake;
	uint64_t		 now;
	struct loop_timer	**heap;
	size_t			 nheap, capheap;
	loop_after_fn		 after;
	void			*after_arg;
	struct loop_turns	 own_turns;
	struct loop_turns	*turns;
};

const uint64_t loop_turn_bounds_us[LOOP_TURN_BUCKETS - 1] = {
	50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000,
};

size_t
loop_timers_armed(const struct loop *l)
{
	return l->nheap;
}

uint64_t
loop_clock_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
loop_clock_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct loop *
loop_new(void)
{
	struct loop	*l;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	if ((l->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		free(l);
		return NULL;
	}
	l->now = loop_clock_ms();
	l->turns = &l->own_turns;
	return l;
}

void
loop_set_turns(struct loop *l, struct loop_turns *t)
{
	l->turns = t != NULL ? t : &l->own_turns;
}

static void
turn_done(struct loop *l, uint64_t t0)
{
	struct loop_turns	*t = l->turns;
	uint64_t		 d = loop_clock_ns() - t0, us = d / 1000;
	size_t			 i;

	for (i = 0; i < LOOP_TURN_BUCKETS - 1 && us > loop_turn_bounds_us[i];
	    i++)
		;
	t->bucket[i]++;
	t->sum_ns += d;
	if (d > t->max_ns)
		t->max_ns = d;
}

void
loop_free(struct loop *l)
{
	if (l == NULL)
		return;
	close(l->epfd);
	free(l->heap);
	free(l);
}

static uint32_t
to_epoll(unsigned ev)
{
	return ((ev & LOOP_IN) ? EPOLLIN : 0) | ((ev & LOOP_OUT) ? EPOLLOUT : 0) |
	    ((ev & LOOP_EXCLUSIVE) ? EPOLLEXCLUSIVE : 0);
}

void
loop_io_init(struct loop_io *io, int fd, loop_io_fn fn, void *arg)
{
	io->fd = fd;
	io->events = 0;
	io->fn = fn;
	io->arg = arg;
}

int
loop_io_add(struct loop *l, struct loop_io *io, unsigned events)
{
	struct epoll_event	ev = { .events = to_epoll(events), .data.ptr = io };

	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, io->fd, &ev) == -1)
		return -errno;
	io->events = events;
	return 0;
}

int
loop_io_mod(struct loop *l, struct loop_io *io, unsigned events)
{
	struct epoll_event	ev = { .events = to_epoll(events), .data.ptr = io };

	if (io->events == events)
		return 0;
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev) == -1)
		return -errno;
	io->events = events;
	return 0;
}

void
loop_io_del(struct loop *l, struct loop_io *io)
{
	/* Failure means the fd is already gone from the set: fine. */
	(void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	io->events = 0;
}

/* ---- timer heap (1-based slots stored in the timer) ---- */

static void
heap_place(struct loop *l, size_t i, struct loop_timer *t)
{
	l->heap[i] = t;
	t->slot = i + 1;
}

static void
heap_up(struct loop *l, size_t i)
{
	struct loop_timer	*t = l->heap[i];

	while (i > 0) {
		size_t	p = (i - 1) / 2;

		if (l->heap[p]->when <= t->when)
			break;
		heap_place(l, i, l->heap[p]);
		i = p;
	}
	heap_place(l, i, t);
}

static void
heap_down(struct loop *l, size_t i)
{
	struct loop_timer	*t = l->heap[i];

	for (;;) {
		size_t	c = 2 * i + 1;

		if (c >= l->nheap)
			break;
		if (c + 1 < l->nheap && l->heap[c + 1]->when < l->heap[c]->when)
			c++;
		if (t->when <= l->heap[c]->when)
			break;
		heap_place(l, i, l->heap[c]);
		i = c;
	}
	heap_place(l, i, t);
}

void
loop_timer_init(struct loop_timer *t, loop_timer_fn fn, void *arg)
{
	t->when = 0;
	t->slot = 0;
	t->fn = fn;
	t->arg = arg;
}

void
loop_timer_cancel(struct loop *l, struct loop_timer *t)
{
	size_t			 i;
	struct loop_timer	*last;

	if (t->slot == 0)
		return;
	i = t->slot - 1;
	t->slot = 0;
	last = l->heap[--l->nheap];
	if (i == l->nheap)
		return;
	heap_place(l, i, last);
	heap_up(l, i);
	heap_down(l, last->slot - 1);
}

int
loop_timer_set(struct loop *l, struct loop_timer *t, uint64_t ms)
{
	struct loop_timer	**nh;
	size_t			  ncap;

	loop_timer_cancel(l, t);
	if (l->nheap == l->capheap) {
		ncap = l->capheap ? l->capheap * 2 : 64;
		if ((nh = realloc(l->heap, ncap * sizeof(*nh))) == NULL)
			return -ENOMEM;
		l->heap = nh;
		l->capheap = ncap;
	}
	t->when = l->now + ms;
	heap_place(l, l->nheap++, t);
	heap_up(l, l->nheap - 1);
	return 0;
}

uint64_t
loop_now(struct loop *l)
{
	return l->now;
}

void
loop_set_after(struct loop *l, loop_after_fn fn, void *arg)
{
	l->after = fn;
	l->after_arg = arg;
}

void
loop_wake(struct loop *l)
{
	l->wake = true;
}

void
loop_stop(struct loop *l)
{
	l->stop = true;
}

static void
run_timers(struct loop *l)
{
	struct loop_timer	*t;

	while (l->nheap > 0 && l->heap[0]->when <= l->now) {
		t = l->heap[0];
		loop_timer_cancel(l, t);
		t->fn(t);
	}
}

int
loop_run(struct loop *l)
{
	struct epoll_event	 evs[LOOP_MAX_EVENTS];
	uint64_t		 t0;
	int			 n, i, timeout;
	unsigned		 e;

	l->stop = false;
	while (!l->stop) {
		timeout = -1;
		if (l->nheap > 0) {
			uint64_t	when = l->heap[0]->when;

			timeout = when <= l->now ? 0 :
			    (int)(when - l->now > 60000 ? 60000 : when - l->now);
		}
		if (l->wake) {
			timeout = 0;
			l->wake = false;
		}
		n = epoll_wait(l->epfd, evs, LOOP_MAX_EVENTS, timeout);
		if (n == -1 && errno != EINTR)
			return -errno;
		t0 = loop_clock_ns();
		l->now = t0 / 1000000;
		for (i = 0; i < n; i++) {
			struct loop_io	*io = evs[i].data.ptr;

			e = 0;
			if (evs[i].events & EPOLLIN)
				e |= LOOP_IN;
			if (evs[i].events & EPOLLOUT)
				e |= LOOP_OUT;
			if (evs[i].events & (EPOLLERR | EPOLLHUP))
				e |= LOOP_ERR | LOOP_IN;
			io->fn(io, e);
		}
		run_timers(l);
		if (l->after != NULL)
			l->after(l->after_arg);
		turn_done(l, t0);
	}
	return 0;
}

int
loop_signalfd(const sigset_t *sigs)
{
	int	fd;

	if (sigprocmask(SIG_BLOCK, sigs, NULL) == -1)
		return -errno;
	fd = signalfd(-1, sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	return fd == -1 ? -errno : fd;
}

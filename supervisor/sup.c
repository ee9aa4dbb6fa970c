/*
 * Supervisor loop: one control socketpair per worker slot, fork without
 * exec, SIGCHLD through signalfd, respawn with capped exponential
 * backoff, SIGHUP validated here then relayed, SIGTERM relayed with a
 * kill deadline, READY / RELOADING / STOPPING / STATUS / WATCHDOG to
 * systemd (watchdog pings only while every worker heartbeats).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "common/bus.h"
#include "common/ctl.h"
#include "common/ring.h"
#include "common/log.h"
#include "common/loop.h"
#include "supervisor/privs.h"
#include "supervisor/procdiag.h"
#include "supervisor/listen.h"
#include "supervisor/sd.h"
#include "supervisor/sup.h"
#include "worker/metrics.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define WORKER_LEAK_CHECK()	__lsan_do_leak_check()
#else
#define WORKER_LEAK_CHECK()	((void)0)
#endif

#define BACKOFF_MIN_MS		100
#define BACKOFF_MAX_MS		10000
#define STABLE_MS		30000	/* a run this long resets backoff */
#define STOP_KILL_MS		10000
#define BEAT_MS			1000	/* worker heartbeat period */
#define RING_CAP		(1u << 20)	/* per ordered worker pair */

struct slot {
	struct sup	*s;
	int		 id;
	pid_t		 pid;
	int		 ctl;		/* supervisor end */
	struct loop_io	 io;
	bool		 ready;
	uint64_t	 started_ms, beat_ms;
	uint32_t	 clients;
	unsigned	 fails;
	struct loop_timer respawn;
	bool		 paused;	/* its listeners out of the group */
	bool		 stun_lent;	/* siblings serve its STUN socket */
};

struct sup {
	struct loop		*loop;
	struct config		 cfg;
	const char		*cfg_path;
	uint8_t			 priv[DERP_KEY_LEN];
	const struct worker_listeners *ls;	/* per worker, or one shared */
	bool			 shared;
	struct slot		*slots;
	int			 n;
	bool			 announced_ready;
	bool			 stopping;
	struct loop_io		 sig_io;
	struct loop_timer	 tick, kill_timer;
	uint64_t		 tick_due;	/* when on_tick should run */
	uint64_t		 wd_usec;
	uint64_t		 respawns;
	char			 run_dir[PATH_MAX];
	bool			 run_dir_temp;
	void			*rings;
	int			*bells;
	struct metrics		*metrics;	/* n + 1 slots, shared */
	int			*stun_fds;	/* per slot, for the workers */
};

static void	slot_spawn(struct slot *sl);
static void	stun_lend(struct sup *s, struct slot *sl, bool on);

static void
status_update(struct sup *s)
{
	uint32_t	clients = 0;
	int		i, up = 0;

	for (i = 0; i < s->n; i++) {
		clients += s->slots[i].clients;
		up += s->slots[i].pid > 0 && s->slots[i].ready;
	}
	sd_status("%d/%d workers, %" PRIu32 " clients", up, s->n, clients);
}

static void
on_ctl(struct loop_io *io, unsigned events)
{
	struct slot	*sl = io->arg;
	struct sup	*s = sl->s;
	struct ctl_msg	 m;
	int		 rc, i;

	(void)events;
	while ((rc = ctl_recv(sl->ctl, &m)) == 0) {
		sl->beat_ms = loop_now(s->loop);
		if (m.type == CTL_READY) {
			sl->ready = true;
			log_notice("worker_ready", "worker=%d pid=%d", sl->id,
			    (int)sl->pid);
			stun_lend(s, sl, false);
		} else {
			sl->clients = m.clients;
		}
	}
	if (rc == -EPROTO) {
		log_err("ctl_protocol_error", "worker=%d", sl->id);
		kill(sl->pid, SIGKILL);
	}
	if (rc == -ECONNRESET)
		loop_io_del(s->loop, &sl->io);
	if (!s->announced_ready) {
		for (i = 0; i < s->n; i++)
			if (!s->slots[i].ready)
				return;
		s->announced_ready = true;
		sd_ready();
		log_notice("node_ready", "workers=%d", s->n);
		status_update(s);
	}
}

static void
respawn_due(struct loop_timer *t)
{
	slot_spawn(t->arg);
}

/* Tell every live worker over its control channel (the supervisor has
 * no ZeroMQ context: one with I/O threads must not exist across fork). */
static void
announce_down(struct sup *s, int dead)
{
	struct ctl_msg	m = { .type = CTL_WORKER_DOWN };
	int		i;

	m.worker = (uint16_t)dead;
	for (i = 0; i < s->n; i++)
		if (i != dead && s->slots[i].pid > 0 && s->slots[i].ctl >= 0 &&
		    ctl_send(s->slots[i].ctl, &m) < 0)
			log_warn("ctl_send_failed", "worker=%d type=worker_down",
			    i);
}

/* A crash-looping worker's own TCP sockets leave the SO_REUSEPORT
 * groups while a sibling is alive to take their share (with none, a
 * connection had better wait in the queue for the respawn than be
 * refused). */
static void
pause_listeners(struct sup *s, struct slot *sl)
{
	const struct worker_listeners *ls = &s->ls[sl->id];
	int			 i, alive = 0;

	if (s->shared || s->stopping)
		return;
	for (i = 0; i < s->n; i++)
		alive += s->slots[i].pid > 0;
	if (alive == 0)
		return;
	listen_pause(ls->https);
	listen_pause(ls->http);
	listen_pause(ls->metrics);
	sl->paused = true;
}

static void
resume_listeners(struct sup *s, struct slot *sl)
{
	const struct worker_listeners *ls = &s->ls[sl->id];
	int			 rc;

	if (!sl->paused)
		return;
	sl->paused = false;
	if ((rc = listen_resume(ls->https)) < 0 ||
	    (rc = listen_resume(ls->http)) < 0 ||
	    (rc = listen_resume(ls->metrics)) < 0)
		log_err("listen_resume_failed", "worker=%d err=%s", sl->id,
		    strerror(-rc));
}

/* A dead worker's UDP socket stays in the SO_REUSEPORT group (unlike a
 * TCP listener it has no shutdown()/listen() pair to leave the group
 * and rejoin it), so the kernel keeps hashing STUN requests to it.  While the slot is down every live sibling also
 * reads it (each datagram goes to one reader); the successor's READY
 * hands it back. */
static void
stun_tell(struct sup *s, int to, int about, bool on)
{
	struct ctl_msg	m = { .type = on ? CTL_STUN_ADOPT : CTL_STUN_RELEASE };

	m.worker = (uint16_t)about;
	if (s->slots[to].pid > 0 && s->slots[to].ctl >= 0 &&
	    ctl_send(s->slots[to].ctl, &m) < 0)
		log_warn("ctl_send_failed", "worker=%d type=stun_%s", to,
		    on ? "adopt" : "release");
}

static void
stun_lend(struct sup *s, struct slot *sl, bool on)
{
	int	i;

	if (s->shared || s->stun_fds == NULL || s->ls[sl->id].stun < 0 ||
	    sl->stun_lent == on)
		return;
	sl->stun_lent = on;
	for (i = 0; i < s->n; i++)
		if (i != sl->id)
			stun_tell(s, i, sl->id, on);
}

static void
slot_exited(struct sup *s, struct slot *sl, int status)
{
	uint64_t	now = loop_now(s->loop), delay;

	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS)
		log_err("worker_exited", "worker=%d pid=%d signal=%d "
		    "reason=seccomp hint=\"see its seccomp_denied line\"",
		    sl->id, (int)sl->pid, WTERMSIG(status));
	else if (WIFSIGNALED(status))
		log_warn("worker_exited", "worker=%d pid=%d signal=%d", sl->id,
		    (int)sl->pid, WTERMSIG(status));
	else
		log_notice("worker_exited", "worker=%d pid=%d status=%d",
		    sl->id, (int)sl->pid, WEXITSTATUS(status));
	sl->pid = 0;
	sl->ready = false;
	sl->clients = 0;
	/* Its gauges (connections, node-wide view) died with it: summed
	 * metrics must not count them through the backoff.  The successor
	 * starts from zero anyway. */
	if (s->metrics != NULL)
		memset(&s->metrics[sl->id], 0, sizeof(s->metrics[sl->id]));
	/* Siblings drop its clients at once; its rings keep their
	 * positions for the successor (one producer, one consumer). */
	announce_down(s, sl->id);
	loop_io_del(s->loop, &sl->io);
	close(sl->ctl);
	sl->ctl = -1;
	if (s->stopping)
		return;
	stun_lend(s, sl, true);
	if (now - sl->started_ms > STABLE_MS)
		sl->fails = 0;
	delay = BACKOFF_MIN_MS << (sl->fails < 7 ? sl->fails : 7);
	if (delay > BACKOFF_MAX_MS)
		delay = BACKOFF_MAX_MS;
	sl->fails++;
	/* A first crash keeps its queue for the successor 100 ms later; a
	 * crash loop must not hold a share of new connections for the
	 * whole backoff. */
	if (delay > BACKOFF_MIN_MS)
		pause_listeners(s, sl);
	log_notice("worker_respawn_scheduled", "worker=%d delay_ms=%" PRIu64,
	    sl->id, delay);
	loop_timer_init(&sl->respawn, respawn_due, sl);
	if (loop_timer_set(s->loop, &sl->respawn, delay) < 0)
		slot_spawn(sl);
}

static void
reap(struct sup *s)
{
	pid_t	pid;
	int	status, i, alive = 0;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		for (i = 0; i < s->n; i++)
			if (s->slots[i].pid == pid)
				slot_exited(s, &s->slots[i], status);
	status_update(s);
	if (!s->stopping)
		return;
	for (i = 0; i < s->n; i++)
		alive += s->slots[i].pid > 0;
	if (alive == 0)
		loop_stop(s->loop);
}

static void
signal_workers(struct sup *s, int sig)
{
	int	i;

	for (i = 0; i < s->n; i++)
		if (s->slots[i].pid > 0)
			kill(s->slots[i].pid, sig);
}

static void
kill_stragglers(struct loop_timer *t)
{
	struct sup	*s = t->arg;

	log_warn("stop_timeout", "action=kill");
	signal_workers(s, SIGKILL);
}

static void
begin_stop(struct sup *s)
{
	int	i;

	if (s->stopping)
		return;
	s->stopping = true;
	sd_stopping();
	log_notice("stopping", "workers=%d", s->n);
	for (i = 0; i < s->n; i++)
		loop_timer_cancel(s->loop, &s->slots[i].respawn);
	signal_workers(s, SIGTERM);
	loop_timer_init(&s->kill_timer, kill_stragglers, s);
	(void)loop_timer_set(s->loop, &s->kill_timer, STOP_KILL_MS);
	reap(s);
}

static void
reload(struct sup *s)
{
	struct config	 nc;
	char		 err[512];
	const char	*why;

	sd_reloading();
	if (s->cfg_path == NULL) {
		log_notice("reload_skipped", "reason=no_config_file");
	} else if (conf_load(s->cfg_path, &nc, err, sizeof(err)) < 0 ||
	    worker_check_config(&nc, err, sizeof(err)) < 0) {
		log_warn("reload_refused", "err=\"%s\"", err);
	} else if ((why = conf_restart_needed(&s->cfg, &nc)) != NULL) {
		log_warn("reload_refused", "setting=%s reason=needs_restart",
		    why);
	} else {
		nc.dev = s->cfg.dev;
		s->cfg = nc;
		log_set_level(nc.log_level);
		log_set_conn_limit((uint32_t)nc.log_conn_burst,
		    (uint32_t)nc.log_conn_rate);
		signal_workers(s, SIGHUP);
		log_notice("reloaded", "path=%s", s->cfg_path);
	}
	sd_ready();
}

static void
on_signal(struct loop_io *io, unsigned events)
{
	struct sup		*s = io->arg;
	struct signalfd_siginfo	 si;

	(void)events;
	while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			reap(s);
			break;
		case SIGHUP:
			reload(s);
			break;
		default:
			begin_stop(s);
			break;
		}
	}
}

/* Kill a worker that stopped beating, after logging what each of its
 * threads waits in (an operator can report that; SIGKILL leaves no
 * other trace). */
static void
slot_hung(struct slot *sl, uint64_t now)
{
	char	threads[600];

	if (procdiag_threads(sl->pid, threads, sizeof(threads)) < 0)
		snprintf(threads, sizeof(threads), "?");
	log_warn("worker_hung", "worker=%d pid=%d silent_ms=%" PRIu64
	    " threads=\"%s\"", sl->id, (int)sl->pid, now - sl->beat_ms,
	    threads);
	kill(sl->pid, SIGKILL);
}

/* Once a second: hung-worker detection and the systemd watchdog. */
static void
on_tick(struct loop_timer *t)
{
	struct sup	*s = t->arg;
	uint64_t	 now = loop_now(s->loop), late, ms;
	bool		 all_alive = true;
	int		 i;

	/* Late by more than a beat: this process did not run (the VM was
	 * paused, the machine starved, the clock jumped), so no beat could
	 * reach it either.  That time is nobody's silence: without this,
	 * every worker of every node is "hung" at the first tick after a
	 * pause, before the workers have run again. */
	if (now > s->tick_due + BEAT_MS) {
		late = now - s->tick_due;
		log_notice("supervisor_stalled", "late_ms=%" PRIu64, late);
		for (i = 0; i < s->n; i++) {
			ms = s->slots[i].beat_ms + late;
			s->slots[i].beat_ms = ms < now ? ms : now;
		}
	}
	for (i = 0; i < s->n; i++) {
		struct slot	*sl = &s->slots[i];

		if (sl->pid <= 0) {
			all_alive = false;
			continue;
		}
		/* Stopping, a worker that left its loop beats no more
		 * while it exits: the stop deadline (kill_timer) is its
		 * limit, not the hang timeout. */
		if (!s->stopping && now - sl->beat_ms >
		    (uint64_t)s->cfg.worker_hang_timeout_ms) {
			all_alive = false;
			slot_hung(sl, now);
		} else if (now - sl->beat_ms > 2 * BEAT_MS) {
			all_alive = false;
		}
	}
	if (s->wd_usec > 0 && all_alive && !s->stopping)
		sd_watchdog_ping();
	ms = s->wd_usec > 0 && s->wd_usec / 2000 < BEAT_MS ?
	    s->wd_usec / 2000 : BEAT_MS;
	s->tick_due = now + ms;
	(void)loop_timer_set(s->loop, &s->tick, ms);
}

/* A worker keeps only its own listening sockets. */
static void
close_other_listeners(struct sup *s, int self)
{
	int	i;

	if (s->shared)
		return;
	for (i = 0; i < s->n; i++) {
		if (i == self)
			continue;
		if (s->ls[i].https >= 0)
			close(s->ls[i].https);
		if (s->ls[i].http >= 0)
			close(s->ls[i].http);
		/* Every slot's STUN socket stays: see stun_lend(). */
		if (s->ls[i].metrics >= 0)
			close(s->ls[i].metrics);
	}
}

static void
slot_spawn(struct slot *sl)
{
	struct sup	*s = sl->s;
	int		 sv[2], rc, i;
	pid_t		 pid;
	char		 tag[32];

	if (s->stopping)
		return;
	resume_listeners(s, sl);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		log_err("socketpair_failed", "err=%s", strerror(errno));
		return;
	}
	if ((pid = fork()) == -1) {
		log_err("fork_failed", "err=%s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return;
	}
	if (pid == 0) {
		struct worker_env	env;

		close(sv[0]);
		for (i = 0; i < s->n; i++)
			if (s->slots[i].ctl >= 0)
				close(s->slots[i].ctl);
		snprintf(tag, sizeof(tag), "worker=%d", sl->id);
		log_init(tag, s->cfg.log_level);
		if ((rc = privs_drop(&s->cfg)) < 0) {
			log_err("drop_privileges_failed", "user=%s group=%s "
			    "err=%s", s->cfg.user, s->cfg.group,
			    strerror(-rc));
			_exit(1);
		}
		memset(&env, 0, sizeof(env));
		env.id = sl->id;
		env.nworkers = s->n;
		env.ctl_fd = sv[1];
		env.shared_listeners = s->shared;
		env.runtime_dir = s->run_dir;
		env.rings = s->rings;
		env.ring_cap = RING_CAP;
		env.doorbells = s->bells;
		env.metrics = s->metrics;
		env.stun_fds = s->stun_fds;
		close_other_listeners(s, sl->id);
		rc = worker_main(&s->cfg, s->cfg_path, s->priv,
		    &s->ls[s->shared ? 0 : sl->id], &env);
		/* _exit skips LeakSanitizer's atexit check: run it here, so
		 * SAN builds check workers too (a leak exits 23). */
		WORKER_LEAK_CHECK();
		_exit(rc);
	}
	close(sv[1]);
	sl->pid = pid;
	sl->ctl = sv[0];
	sl->ready = false;
	sl->started_ms = sl->beat_ms = loop_now(s->loop);
	if (sl->fails > 0) {
		s->respawns++;
		if (s->metrics != NULL)
			s->metrics[s->n].respawns = s->respawns;
	}
	loop_io_init(&sl->io, sl->ctl, on_ctl, sl);
	if (loop_io_add(s->loop, &sl->io, LOOP_IN) < 0)
		log_err("ctl_register_failed", "worker=%d", sl->id);
	/* Siblings that are down now: this one serves their STUN too. */
	for (i = 0; i < s->n; i++)
		if (i != sl->id && s->slots[i].stun_lent)
			stun_tell(s, sl->id, i, true);
	log_notice("worker_started", "worker=%d pid=%d", sl->id, (int)pid);
}

/* Runtime directory, rings, doorbells and metrics slots: everything the
 * workers share, created before the first fork. */
static int
shared_setup(struct sup *s)
{
	size_t	mlen = (size_t)(s->n + 1) * sizeof(struct metrics);
	int	i;

	if (s->cfg.runtime_dir[0] == '\0') {
		snprintf(s->run_dir, sizeof(s->run_dir), "/tmp/derpd-run-XXXXXX");
		if (mkdtemp(s->run_dir) == NULL)
			return -errno;
		s->run_dir_temp = true;
	} else {
		snprintf(s->run_dir, sizeof(s->run_dir), "%s",
		    s->cfg.runtime_dir);
		if (mkdir(s->run_dir, 0750) == -1 && errno != EEXIST)
			return -errno;
	}
	bus_cleanup_dir(s->run_dir, s->n);
	s->metrics = mmap(NULL, mlen, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (s->metrics == MAP_FAILED) {
		s->metrics = NULL;
		return -errno;
	}
	if (s->n < 2)
		return 0;
	if (!s->shared) {
		if ((s->stun_fds = calloc((size_t)s->n, sizeof(int))) == NULL)
			return -ENOMEM;
		for (i = 0; i < s->n; i++)
			s->stun_fds[i] = s->ls[i].stun;
	}
	if ((s->rings = ring_set_create(s->n, RING_CAP)) == NULL ||
	    (s->bells = calloc((size_t)s->n, sizeof(int))) == NULL)
		return -ENOMEM;
	for (i = 0; i < s->n; i++)
		if ((s->bells[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) ==
		    -1)
			return -errno;
	return 0;
}

static void
shared_teardown(struct sup *s)
{
	int	i;

	if (s->run_dir[0] != '\0') {
		bus_cleanup_dir(s->run_dir, s->n);
		if (s->run_dir_temp)
			(void)rmdir(s->run_dir);
	}
	for (i = 0; s->bells != NULL && i < s->n; i++)
		if (s->bells[i] > 0)
			close(s->bells[i]);
	free(s->bells);
	free(s->stun_fds);
	ring_set_destroy(s->rings, s->n, RING_CAP);
	if (s->metrics != NULL)
		munmap(s->metrics, (size_t)(s->n + 1) * sizeof(struct metrics));
}

int
sup_nworkers(const struct config *cfg)
{
	long	n = cfg->workers > 0 ? cfg->workers :
		    sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : (int)n;
}

int
sup_run(const struct config *cfg, const char *cfg_path,
    const uint8_t priv[DERP_KEY_LEN], const struct worker_listeners *ls,
    bool shared)
{
	struct sup	 s;
	sigset_t	 sigs;
	int		 i, fd, rc;

	memset(&s, 0, sizeof(s));
	s.cfg = *cfg;
	s.cfg_path = cfg_path;
	memcpy(s.priv, priv, DERP_KEY_LEN);
	s.ls = ls;
	s.shared = shared;
	s.n = sup_nworkers(cfg);
	if ((s.loop = loop_new()) == NULL ||
	    (s.slots = calloc((size_t)s.n, sizeof(*s.slots))) == NULL)
		return 1;
	if ((rc = shared_setup(&s)) < 0) {
		log_err("setup_failed", "runtime_dir=%s err=%s", s.run_dir,
		    strerror(-rc));
		shared_teardown(&s);
		return 1;
	}
	/* Nothing below needs root: the listeners are bound, the node key
	 * read, and the runtime directory is the workers' own. */
	if ((rc = privs_chown(&s.cfg, s.run_dir)) < 0 ||
	    (rc = privs_drop(&s.cfg)) < 0) {
		log_err("drop_privileges_failed", "user=%s group=%s err=%s",
		    s.cfg.user, s.cfg.group, strerror(-rc));
		shared_teardown(&s);
		return 1;
	}
	log_info("privileges", "uid=%u gid=%u", (unsigned)getuid(),
	    (unsigned)getgid());
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGCHLD);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	if ((fd = loop_signalfd(&sigs)) < 0)
		return 1;
	loop_io_init(&s.sig_io, fd, on_signal, &s);
	if (loop_io_add(s.loop, &s.sig_io, LOOP_IN) < 0)
		return 1;
	s.wd_usec = sd_watchdog_usec();
	loop_timer_init(&s.tick, on_tick, &s);
	s.tick_due = loop_now(s.loop) + BEAT_MS;
	(void)loop_timer_set(s.loop, &s.tick, BEAT_MS);
	for (i = 0; i < s.n; i++) {
		s.slots[i].s = &s;
		s.slots[i].id = i;
		s.slots[i].ctl = -1;
		loop_timer_init(&s.slots[i].respawn, respawn_due,
		    &s.slots[i]);
	}
	for (i = 0; i < s.n; i++)
		slot_spawn(&s.slots[i]);
	rc = loop_run(s.loop);
	log_notice("stopped", "respawns=%" PRIu64, s.respawns);
	shared_teardown(&s);
	close(fd);
	loop_free(s.loop);
	free(s.slots);
	sodium_memzero(s.priv, sizeof(s.priv));
	return rc < 0 ? 1 : 0;
}

/*
 * A new watcher's first presence list (WatchConns, PROTOCOL.md 6): a
 * PeerPresent for every key present node-wide, WATCH_STEP keys per loop
 * turn while the watcher's control buffer holds under WATCH_LOW bytes,
 * continued when its writes drain it; never every key in one turn
 * (100,000 keys at once were about 6 MB formatted in one go).  Owns the
 * walk only; watcher registration and live events stay in session.c.
 *
 * The watcher is on w->watchers before the walk starts, so every change
 * meanwhile reaches it live, in order with the walk's frames: a key that
 * leaves before the walk reaches it is skipped (the registry moves the
 * cursor past it) and its PeerGone is sent live; one that arrives is
 * announced live and perhaps again by the walk, with the same state.
 * No key present at the end lacks a PeerPresent, and none is reported
 * present after its PeerGone.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "common/log.h"
#include "derp/frame.h"
#include "worker/wk.h"

#define WATCH_STEP	1024		/* keys per turn: 57 KiB of frames */
#define WATCH_LOW	(64 * 1024)	/* control bytes: step below this */
#define WATCH_DELAY_MS	1		/* 0 would run again in this turn */

struct watch_walk {
	struct conn		*c;
	struct reg_cursor	*k;
	struct loop_timer	 step;
};

static void
present(void *arg, const uint8_t key[DERP_KEY_LEN], const uint8_t ip16[16],
    uint16_t port, uint8_t flags)
{
	uint8_t	f[DERP_PEER_PRESENT_FRAME_LEN];

	derp_enc_peer_present(f, key, ip16, port, flags);
	(void)conn_send_ctrl(arg, f, sizeof(f));	/* overflow closes */
}

static void
arm(struct watch_walk *ww)
{
	struct worker	*w = ww->c->w;

	if (!loop_timer_armed(&ww->step) &&
	    loop_timer_set(w->loop, &ww->step, WATCH_DELAY_MS) < 0)
		log_warn_conn("watch_step_failed", "conn=%" PRIu64 " err=%s",
		    ww->c->id, "no_memory");	/* writes re-arm it */
}

bool
watch_more(struct conn *c, size_t budget)
{
	struct watch_walk	*ww = c->wwalk;
	bool			 done;

	if (ww == NULL || c->closing)
		return true;
	if (bbuf_len(&c->ctrl) >= WATCH_LOW)
		return false;	/* watch_writable resumes */
	/* Never enough to overflow the buffer: that would close c, and
	 * free the walk, inside it. */
	if (budget > (WK_WATCH_CTRL_CAP - WATCH_LOW) /
	    DERP_PEER_PRESENT_FRAME_LEN)
		budget = (WK_WATCH_CTRL_CAP - WATCH_LOW) /
		    DERP_PEER_PRESENT_FRAME_LEN;
	done = registry_cursor_present(c->w->reg, ww->k, budget, present, c);
	conn_flush_later(c);
	if (c->closing)
		return true;	/* session_end freed the walk */
	if (done) {
		watch_stop(c);
		return true;
	}
	if (bbuf_len(&c->ctrl) < WATCH_LOW)
		arm(ww);
	return false;
}

static void
step_timer(struct loop_timer *t)
{
	struct watch_walk	*ww = t->arg;

	(void)watch_more(ww->c, WATCH_STEP);
}

int
watch_start(struct conn *c)
{
	struct watch_walk	*ww;

	if ((ww = calloc(1, sizeof(*ww))) == NULL)
		return -ENOMEM;
	if ((ww->k = registry_cursor_new(c->w->reg)) == NULL) {
		free(ww);
		return -ENOMEM;
	}
	ww->c = c;
	loop_timer_init(&ww->step, step_timer, ww);
	c->wwalk = ww;
	(void)watch_more(c, WATCH_STEP);
	return 0;
}

void
watch_writable(struct conn *c)
{
	if (c->wwalk != NULL && !c->closing)
		arm(c->wwalk);
}

void
watch_stop(struct conn *c)
{
	struct watch_walk	*ww = c->wwalk;

	if (ww == NULL)
		return;
	loop_timer_cancel(c->w->loop, &ww->step);
	registry_cursor_free(c->w->reg, ww->k);
	free(ww);
	c->wwalk = NULL;
}

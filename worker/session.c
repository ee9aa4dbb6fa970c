/*
 * DERP sessions (PROTOCOL.md 4 and 5): the handshake, every client frame,
 * routing of SendPacket / ForwardPacket, the two bounded drop-oldest send
 * queues, keepalives, watchers.  Owns per-session state in struct conn;
 * the key table lives in registry.c, the transport in conn.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <sodium.h>

#include "common/log.h"
#include "derp/disco.h"
#include "derp/frame.h"
#include "derp/key.h"
#include "derp/wire.h"
#include "common/bus.h"
#include "mesh/link.h"
#include "worker/wk.h"

#define ENQUEUE_ATTEMPTS	3
#define GONE_RATE		1.0	/* PeerGone(NotHere) per second */
#define GONE_BURST		3.0
#define HOME_MOVE_GRACE_MS	5000

static void
keepalive_arm(struct conn *c)
{
	uint64_t	ms = (uint64_t)c->w->cfg.keepalive_ms;
	uint64_t	jitter_max = ms >= 60000 ? 5000 : ms / 12 + 1;

	(void)loop_timer_set(c->w->loop, &c->keepalive,
	    ms + randombytes_uniform((uint32_t)jitter_max));
}

void
session_start(struct conn *c, bool fast_start, bool not_ideal)
{
	struct worker	*w = c->w;
	char		 head[256];
	uint8_t		 sk[DERP_SERVER_KEY_FRAME_LEN];
	int		 n;

	c->state = ST_HELLO;
	c->fast_start = fast_start;
	c->not_ideal = not_ideal;
	w->m->accepts++;
	http_end(c);
	if (!fast_start && c->ws == NULL) {	/* ws.c sent its own 101 */
		n = snprintf(head, sizeof(head),
		    "HTTP/1.1 101 Switching Protocols\r\n"
		    "Upgrade: DERP\r\nConnection: Upgrade\r\n"
		    "Derp-Version: %d\r\nDerp-Public-Key: %s\r\n\r\n",
		    DERP_PROTO_VERSION, w->pub_hex);
		if (conn_send_ctrl(c, head, (size_t)n) < 0)
			return;
	}
	derp_enc_server_key(sk, w->pub);
	if (conn_send_ctrl(c, sk, sizeof(sk)) < 0)
		return;
	(void)loop_timer_set(w->loop, &c->deadline,
	    (uint64_t)w->cfg.handshake_timeout_ms);
	if (bbuf_len(&c->in) > 0)
		session_input(c);
}

uint8_t
session_flags(const struct conn *c)
{
	uint8_t	f = 0;

	if (c->can_mesh)
		f |= DERP_PEER_IS_MESH_PEER;
	if (c->info.is_prober)
		f |= DERP_PEER_IS_PROBER;
	if (c->not_ideal)
		f |= DERP_PEER_NOT_IDEAL;
	return f ? f : DERP_PEER_IS_REGULAR;
}

static void
send_present_raw(void *arg, const uint8_t key[DERP_KEY_LEN],
    const uint8_t ip16[16], uint16_t port, uint8_t flags)
{
	uint8_t	f[DERP_PEER_PRESENT_FRAME_LEN];

	derp_enc_peer_present(f, key, ip16, port, flags);
	(void)conn_send_ctrl(arg, f, sizeof(f));
}

static void
send_gone(struct conn *to, const uint8_t key[DERP_KEY_LEN], uint8_t reason)
{
	uint8_t	f[DERP_PEER_GONE_FRAME_LEN];

	derp_enc_peer_gone(f, key, reason);
	if (conn_send_ctrl(to, f, sizeof(f)) < 0)
		return;
	if (reason == DERP_PEER_GONE_NOT_HERE)
		to->w->m->peer_gone_not_here_frames++;
	else
		to->w->m->peer_gone_disconnected_frames++;
}

/* Presence changes, local or on a sibling, go to every watcher. */
void
session_watchers_present(struct worker *w, const uint8_t key[DERP_KEY_LEN],
    const uint8_t ip16[16], uint16_t port, uint8_t flags)
{
	struct conn	*x;

	for (x = w->watchers; x != NULL; x = x->watch_next)
		if (!x->closing) {
			send_present_raw(x, key, ip16, port, flags);
			conn_flush_later(x);
		}
}

void
session_peer_left(struct worker *w, const uint8_t key[DERP_KEY_LEN])
{
	struct conn	*x;

	for (x = w->watchers; x != NULL; x = x->watch_next)
		if (!x->closing) {
			send_gone(x, key, DERP_PEER_GONE_DISCONNECTED);
			conn_flush_later(x);
		}
}

void
session_notify_gone(struct conn *to, const uint8_t key[DERP_KEY_LEN])
{
	if (to->closing)
		return;
	send_gone(to, key, DERP_PEER_GONE_DISCONNECTED);
	conn_flush_later(to);
}

static void
client_info(struct conn *c, const uint8_t *payload, size_t len)
{
	struct worker	*w = c->w;

	if (derp_client_info_open(payload, len, w->priv, c->key, &c->box,
	    &c->info) < 0) {
		conn_close(c, "client_info_invalid");
		return;
	}
	c->can_mesh = w->has_mesh_key && c->info.has_mesh_key &&
	    CRYPTO_memcmp(c->info.mesh_key, w->mesh_key, DERP_KEY_LEN) == 0;
	sodium_memzero(c->info.mesh_key, sizeof(c->info.mesh_key));
	/* Admission (5.14): mesh peers skip it; an answer still to come
	 * resumes the session from admit.c. */
	if (c->can_mesh || admit_begin(c) == 1)
		session_admitted(c);
}

void
session_admitted(struct conn *c)
{
	struct worker	*w = c->w;
	struct derp_server_info si = { .version = DERP_PROTO_VERSION };
	uint8_t		 out[256];
	ssize_t		 n;
	char		 ks[DERP_KEY_SHORT_MAX];

	if (c->closing || admit_full(c))
		return;
	n = derp_server_info_frame(out, sizeof(out), &si, &c->box);
	derp_box_wipe(&c->box);
	if (n < 0) {
		conn_close(c, "server_info_failed");
		return;
	}
	/* ServerInfo is queued before registration, so it is the first
	 * frame after ServerKey whatever arrives next. */
	if (conn_send_ctrl(c, out, (size_t)n) < 0)
		return;
	c->stamp = loop_clock_ns();
	if (registry_add(w, c) < 0) {
		conn_close(c, "out_of_memory");
		return;
	}
	node_publish(w, c, BUS_ADD);
	loop_timer_cancel(w->loop, &c->deadline);
	c->state = ST_DERP;
	c->registered_ms = loop_now(w->loop);
	c->gone_tokens = GONE_BURST;
	c->gone_ms = c->registered_ms;
	w->m->current_connections++;
	if (c->not_ideal)
		w->m->current_notideal_connections++;
	derp_key_format_short(ks, c->key);
	log_info_conn("client_registered", "conn=%" PRIu64 " peer=%s key=%s "
	    "mesh=%d prober=%d fast_start=%d", c->id, c->addr, ks,
	    c->can_mesh, c->info.is_prober, c->fast_start);
	session_watchers_present(w, c->key, c->ip16, c->port,
	    session_flags(c));
	keepalive_arm(c);
}

void
session_end(struct conn *c)
{
	struct worker	*w = c->w;
	struct conn	**pp;
	struct pkt	*p;
	int		 k;

	if (c->watcher) {
		for (pp = &w->watchers; *pp != NULL; pp = &(*pp)->watch_next)
			if (*pp == c) {
				*pp = c->watch_next;
				break;
			}
		w->m->watchers--;
		watch_stop(c);
	}
	for (k = 0; k < KIND_N; k++)
		while ((p = c->q[k].head) != NULL) {
			c->q[k].head = p->next;
			w->m->packets_dropped[DROP_GONE_DISCONNECTED][k]++;
			w->m->bytes_dropped[DROP_GONE_DISCONNECTED][k] +=
			    p->len - DERP_RECV_HDR_LEN;
			c->tr.drops++;
			pkt_free(w, p);
		}
	memset(c->q, 0, sizeof(c->q));
	w->m->current_connections--;
	if (c->not_ideal)
		w->m->current_notideal_connections--;
	if (c->preferred)
		w->m->current_home_connections--;
	registry_forget_saw(c);
	node_publish(w, c, BUS_DEL);
	registry_remove(w, c);
}

/* ---- send queues (5.8) ---- */

static void
drop(struct worker *w, enum drop_reason r, int kind, size_t bytes)
{
	w->m->packets_dropped[r][kind]++;
	w->m->bytes_dropped[r][kind] += bytes;
}

/* A packet for dst lost: node counters and dst's traffic line. */
static void
drop_to(struct conn *dst, enum drop_reason r, int kind, size_t bytes)
{
	drop(dst->w, r, kind, bytes);
	dst->tr.drops++;
}

static void
enqueue(struct conn *dst, const uint8_t src[DERP_KEY_LEN],
    const uint8_t *pkt, size_t len, int kind)
{
	struct worker	*w = dst->w;
	struct pktq	*q = &dst->q[kind];
	struct pkt	*p, *old;
	size_t		 flen = DERP_RECV_HDR_LEN + len;
	int		 i;

	if (dst->closing) {
		drop_to(dst, DROP_GONE_DISCONNECTED, kind, len);
		return;
	}
	for (i = 0; i < ENQUEUE_ATTEMPTS; i++) {
		if (q->n < (uint32_t)w->cfg.queue_packets &&
		    q->bytes + flen <= (size_t)w->cfg.queue_bytes)
			break;
		/* Full within one round: write what is queued now (one
		 * coalesced write) before evicting anything; only a
		 * receiver that really does not keep up loses packets. */
		if (i == 0 && !dst->closing) {
			conn_flush(dst);
			if (dst->closing) {
				drop_to(dst, DROP_GONE_DISCONNECTED, kind,
				    len);
				return;
			}
			continue;
		}
		if ((old = q->head) == NULL)
			break;
		q->head = old->next;
		if (q->head == NULL)
			q->tail = NULL;
		q->n--;
		q->bytes -= old->len;
		drop_to(dst, DROP_QUEUE_HEAD, kind, old->len -
		    DERP_RECV_HDR_LEN);
		pkt_free(w, old);
	}
	if (i == ENQUEUE_ATTEMPTS || (p = pkt_alloc(w, flen)) == NULL) {
		drop_to(dst, DROP_QUEUE_TAIL, kind, len);
		return;
	}
	derp_enc_recv_packet_hdr(p->frame, src, len);
	memcpy(p->frame + DERP_RECV_HDR_LEN, pkt, len);
	p->len = (uint32_t)flen;
	p->enq_ms = loop_now(w->loop);
	p->next = NULL;
	if (q->tail != NULL)
		q->tail->next = p;
	else
		q->head = p;
	q->tail = p;
	q->n++;
	q->bytes += (uint32_t)flen;
	conn_flush_later(dst);
}

/* Move queued frames into the coalescing buffer (disco first, then
 * alternate), or hand one large frame to the writer in place. */
int
session_fill(struct conn *c)
{
	struct worker	*w = c->w;
	struct pkt	*p;
	struct pktq	*q;
	int		 k, tries, rc;
	uint64_t	 us;

	for (;;) {
		for (tries = 0; tries < KIND_N; tries++) {
			k = (c->next_q + tries) % KIND_N;
			if (c->q[k].head != NULL)
				break;
		}
		if (tries == KIND_N)
			return 0;
		q = &c->q[k];
		p = q->head;
		if (bbuf_len(&c->out) + p->len > WK_OUT_CAP) {
			if (bbuf_len(&c->out) > 0)
				return 0;
		}
		q->head = p->next;
		if (q->head == NULL)
			q->tail = NULL;
		q->n--;
		q->bytes -= p->len;
		c->next_q = (uint8_t)((k + 1) % KIND_N);
		w->m->packets_sent++;
		w->m->bytes_sent += p->len - DERP_RECV_HDR_LEN;
		c->tr.sent_packets++;
		c->tr.sent_bytes += p->len - DERP_RECV_HDR_LEN;
		us = (loop_now(w->loop) - p->enq_ms) * 1000;
		w->m->avg_queue_us = (w->m->avg_queue_us * 9 + us) / 10;
		if (p->len > WK_OUT_CAP) {
			c->cur = p;
			c->cur_off = 0;
			return 0;
		}
		rc = bbuf_append(&c->out, p->frame, p->len, WK_OUT_CAP);
		pkt_free(w, p);
		if (rc < 0)
			return rc;
	}
}

/* ---- routing (5.4, 5.5) ---- */

static bool
gone_allowed(struct conn *c)
{
	uint64_t	now = loop_now(c->w->loop);

	c->gone_tokens += (double)(now - c->gone_ms) / 1000.0 * GONE_RATE;
	if (c->gone_tokens > GONE_BURST)
		c->gone_tokens = GONE_BURST;
	c->gone_ms = now;
	if (c->gone_tokens < 1.0)
		return false;
	c->gone_tokens -= 1.0;
	return true;
}

static void
route(struct conn *from, const uint8_t src[DERP_KEY_LEN],
    const uint8_t dst[DERP_KEY_LEN], const uint8_t *pkt, size_t len,
    bool forwarded)
{
	struct worker	*w = from->w;
	struct peer	*p = registry_get(w->reg, dst);
	struct conn	*to = NULL;
	int		 kind = derp_looks_disco(pkt, len) ? KIND_DISCO :
			    KIND_OTHER;
	int		 sib = p != NULL ? registry_route(w->reg, p, &to) :
			    -1;
	int		 fwd;

	log_debug("route", "conn=%" PRIu64 " local=%" PRIu64 " sibling=%d "
	    "nconns=%zu", from->id, to != NULL ? to->id : 0, sib,
	    p != NULL ? registry_nconns(w->reg, p) : 0);

	if (to != NULL) {
		if (!forwarded)
			registry_note_saw(w, to, from->peer);
		enqueue(to, src, pkt, len, kind);
		return;
	}
	if (sib >= 0) {
		/* On a sibling worker: one copy into the shared ring. */
		if (node_send(w, sib, dst, src, pkt, len) < 0)
			w->m->ring_drops++;
		return;
	}
	/* Known only through a mesh peer: one hop, never for a packet
	 * that itself came from the mesh (5.4, 5.5). */
	if (!forwarded && p != NULL && registry_nconns(w->reg, p) == 0 &&
	    (fwd = registry_forwarder(w->reg, p)) >= 0 &&
	    fwd < w->nlinks) {
		if (mesh_link_forward(w->links[fwd], src, dst, pkt, len) == 0)
			w->m->packets_forwarded_out++;
		else
			drop(w, DROP_QUEUE_FULL, kind, len);
		return;
	}
	if (p != NULL && registry_nconns(w->reg, p) > 1) {
		drop(w, DROP_DUP_CLIENT, kind, len);
		return;
	}
	drop(w, forwarded ? DROP_UNKNOWN_DEST_ON_FWD : DROP_UNKNOWN_DEST,
	    kind, len);
	if (kind == KIND_DISCO && gone_allowed(from))
		send_gone(from, dst, DERP_PEER_GONE_NOT_HERE);
}

void
session_deliver(struct worker *w, const uint8_t dst[DERP_KEY_LEN],
    const uint8_t src[DERP_KEY_LEN], const uint8_t *pkt, size_t len)
{
	struct peer	*p = registry_get(w->reg, dst);
	struct conn	*to = p != NULL ? registry_local_target(w->reg, p) :
			    NULL;
	int		 kind = derp_looks_disco(pkt, len) ? KIND_DISCO :
			    KIND_OTHER;

	if (to == NULL) {
		drop(w, DROP_GONE_DISCONNECTED, kind, len);
		return;
	}
	registry_note_saw_key(w, to, src);
	enqueue(to, src, pkt, len, kind);
}

static void
watch_conns(struct conn *c)
{
	struct worker	*w = c->w;

	if (c->watcher || derp_key_equal(c->key, w->pub))
		return;
	c->watcher = true;
	/* Live changes first, then the list in steps (watch.c). */
	c->watch_next = w->watchers;
	w->watchers = c;
	w->m->watchers++;
	if (watch_start(c) < 0)
		conn_close(c, "out_of_memory");
}

static void
note_preferred(struct conn *c, bool pref)
{
	struct worker	*w = c->w;
	bool		 late = loop_now(w->loop) - c->registered_ms >
			    HOME_MOVE_GRACE_MS;

	if (pref == c->preferred)
		return;
	c->preferred = pref;
	if (pref) {
		w->m->current_home_connections++;
		if (late)
			w->m->home_moves_in++;
	} else {
		w->m->current_home_connections--;
		if (late)
			w->m->home_moves_out++;
	}
}

/* Handle one complete frame of an established session. */
static void
frame(struct conn *c, const struct derp_frame *f)
{
	struct worker	*w = c->w;
	uint8_t		 pong[DERP_PING_FRAME_LEN];

	if (registry_note_activity(w, c))
		node_publish(w, c, BUS_ACTIVE);
	switch (f->type) {
	case DERP_FRAME_SEND_PACKET:
		if (f->len < DERP_KEY_LEN) {
			conn_close(c, "frame_invalid");
			return;
		}
		w->m->packets_received++;
		w->m->bytes_received += f->len - DERP_KEY_LEN;
		c->tr.recv_packets++;
		c->tr.recv_bytes += f->len - DERP_KEY_LEN;
		w->m->packets_received_kind[derp_looks_disco(f->payload +
		    DERP_KEY_LEN, f->len - DERP_KEY_LEN) ? KIND_DISCO :
		    KIND_OTHER]++;
		route(c, c->key, f->payload, f->payload + DERP_KEY_LEN,
		    f->len - DERP_KEY_LEN, false);
		break;
	case DERP_FRAME_FORWARD_PACKET:
		if (f->len < 2 * DERP_KEY_LEN) {
			conn_close(c, "frame_invalid");
			return;
		}
		w->m->packets_forwarded_in++;
		c->tr.recv_packets++;
		c->tr.recv_bytes += f->len - 2 * DERP_KEY_LEN;
		route(c, f->payload, f->payload + DERP_KEY_LEN,
		    f->payload + 2 * DERP_KEY_LEN, f->len - 2 * DERP_KEY_LEN,
		    true);
		break;
	case DERP_FRAME_NOTE_PREFERRED:
		if (f->len != 1) {
			conn_close(c, "frame_invalid");
			return;
		}
		note_preferred(c, f->payload[0] != 0);
		break;
	case DERP_FRAME_PING:
		if (f->len < DERP_PING_LEN || f->len > DERP_MAX_PING) {
			conn_close(c, "frame_invalid");
			return;
		}
		w->m->got_ping++;
		/* One pong in flight at most: a flood is not answered. */
		if (bbuf_len(&c->ctrl) > 1024)
			break;
		derp_enc_ping(pong, DERP_FRAME_PONG, f->payload);
		if (conn_send_ctrl(c, pong, sizeof(pong)) == 0)
			w->m->sent_pong++;
		break;
	case DERP_FRAME_WATCH_CONNS:
		if (f->len != 0) {
			conn_close(c, "frame_invalid");
			return;
		}
		if (!c->can_mesh) {
			conn_close(c, "not_mesh");
			return;
		}
		watch_conns(c);
		break;
	case DERP_FRAME_CLOSE_PEER:
		if (f->len != DERP_KEY_LEN) {
			conn_close(c, "frame_invalid");
			return;
		}
		if (!c->can_mesh) {
			conn_close(c, "not_mesh");
			return;
		}
		node_close_key(w, f->payload);
		registry_close_key(w, f->payload);
		break;
	default:
		/* Unknown and server-to-client types are skipped (3.5). */
		break;
	}
}

void
session_input(struct conn *c)
{
	struct bbuf		*in = &c->in;
	struct derp_frame	 f;
	ssize_t			 n;
	size_t			 avail;
	int			 frames = 0;

	/* While admission is asked, later frames wait in the buffer. */
	while (!c->closing && !c->throttled && c->admit == NULL &&
	    (avail = bbuf_len(in)) > 0) {
		const uint8_t	*p = in->p + in->off;

		if (avail >= DERP_FRAME_HDR_LEN) {
			uint8_t	type = p[0];

			if (c->state == ST_HELLO &&
			    type != DERP_FRAME_CLIENT_INFO) {
				conn_close(c, "client_info_invalid");
				return;
			}
			if (c->state == ST_HELLO &&
			    wire_load_u32(p + 1) < DERP_MIN_CLIENT_INFO) {
				conn_close(c, "client_info_invalid");
				return;
			}
			/* Privilege before payload (3.4). */
			if (c->state == ST_DERP &&
			    type == DERP_FRAME_FORWARD_PACKET &&
			    !c->can_mesh) {
				conn_close(c, "not_mesh");
				return;
			}
		}
		n = derp_frame_parse(p, avail, avail >= DERP_FRAME_HDR_LEN ?
		    derp_frame_server_limit(p[0]) : DERP_MAX_UNKNOWN_FRAME, &f);
		if (n == -EMSGSIZE) {
			/* Fixed-size frames with the wrong length are
			 * malformed; anything else is merely too big. */
			conn_close(c, c->state == ST_HELLO ?
			    "client_info_invalid" :
			    derp_frame_server_limit(p[0]) <= DERP_MAX_PING ?
			    "frame_invalid" : "frame_too_large");
			return;
		}
		if (n <= 0)
			break;
		/* Receive rate (5.13): charge before handling; when short,
		 * the frame waits in the buffer and reads pause. */
		if (c->state == ST_DERP && !limits_charge(c, (size_t)n))
			break;
		if (c->state == ST_HELLO)
			client_info(c, f.payload, f.len);
		else
			frame(c, &f);
		bbuf_consume(in, (size_t)n);
		frames++;
	}
	if (c->admit != NULL)
		admit_hold(c);
	if (frames > 0 && !c->closing)
		conn_flush_later(c);
}

void
session_keepalive(struct loop_timer *t)
{
	struct conn	*c = t->arg;
	uint8_t		 ka[DERP_FRAME_HDR_LEN];

	if (c->closing || c->state != ST_DERP)
		return;
	derp_enc_keep_alive(ka);
	if (conn_send_ctrl(c, ka, sizeof(ka)) < 0)
		return;
	conn_flush_later(c);
	keepalive_arm(c);
}

void
session_restarting(struct conn *c)
{
	uint8_t	f[DERP_RESTARTING_FRAME_LEN];

	if (c->closing || c->state != ST_DERP)
		return;
	derp_enc_restarting(f, (uint32_t)c->w->cfg.restart_reconnect_ms,
	    (uint32_t)c->w->cfg.restart_try_for_ms);
	if (conn_send_ctrl(c, f, sizeof(f)) < 0)
		return;
	c->close_after_write = true;
	conn_flush_later(c);
}

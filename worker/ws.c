/*
 * WebSocket DERP (PROTOCOL.md 2.7) through wslay's event API: the 101
 * answer, then a byte-stream adapter under conn_read/conn_write.  Binary
 * message payloads become the DERP input stream; DERP output leaves as
 * binary messages.  Owns struct ws; knows nothing of DERP frames.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wslay/wslay.h>

#include "common/log.h"
#include "mesh/websocket.h"
#include "worker/wk.h"

#define WS_MSG_MAX	(128 * 1024)	/* inbound message cap (U4) */
#define WS_OUT_MSG	WK_OUT_CAP	/* outbound message payload */
#define WS_REC		16384		/* a full TLS record */
#define WS_WIRE_CAP	(2 * WS_REC + 512)	/* framed bytes to the socket */
#define WS_CTRL_MAX	32		/* queued pongs before we stop */

static const char NO_DERP_REASON[] = "client must speak the derp subprotocol";

struct ws {
	wslay_event_context_ptr	 ev;
	struct conn		*c;
	struct bbuf		 wire;	/* framed output for the socket */
	struct bbuf		 pre;	/* raw bytes that followed the head */
	uint8_t			*dst;	/* ws_read's buffer, during recv */
	size_t			 dst_len, dst_cap;
	uint64_t		 msg_len;	/* data message so far */
	bool			 in_ctrl;	/* frame being read: control */
	bool			 sock_again;	/* socket read would block */
	bool			 sock_eof;
	bool			 ctrl_stop;	/* reads paused: pongs queued */
	bool			 dead;		/* socket failed: no more I/O */
	int			 sock_err;
	uint16_t		 fail_code;	/* our close code: 1003, 1009 */
	const char		*fail_reason;	/* conn close reason */
};

static void
ws_fail(struct ws *ws, uint16_t code, const char *reason)
{
	if (ws->fail_code != 0)
		return;
	ws->fail_code = code;
	ws->fail_reason = reason;
	/* Queue ours first: wslay's own checks on the rest of this frame
	 * (UTF-8 of a text frame) must not pick another code. */
	(void)wslay_event_queue_close(ws->ev, code, NULL, 0);
	wslay_event_shutdown_read(ws->ev);
}

static ssize_t
recv_cb(wslay_event_context_ptr ev, uint8_t *buf, size_t len, int flags,
    void *arg)
{
	struct ws	*ws = arg;
	size_t		 room;
	ssize_t		 r;

	(void)flags;
	/* Payload never exceeds what is read, so reading at most the room
	 * left in the caller's buffer bounds what the chunks deliver. */
	room = ws->dst != NULL ? ws->dst_cap - ws->dst_len : 0;
	if (room == 0 || wslay_event_get_queued_msg_count(ev) >= WS_CTRL_MAX) {
		ws->ctrl_stop = room > 0;
		wslay_event_set_error(ev, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (len > room)
		len = room;
	if (bbuf_len(&ws->pre) > 0) {
		if (len > bbuf_len(&ws->pre))
			len = bbuf_len(&ws->pre);
		memcpy(buf, ws->pre.p + ws->pre.off, len);
		bbuf_consume(&ws->pre, len);
		if (bbuf_len(&ws->pre) == 0)
			bbuf_free(&ws->pre);
		return (ssize_t)len;
	}
	r = conn_sock_read(ws->c, buf, len);
	if (r > 0)
		return r;
	if (r == -EAGAIN) {
		ws->sock_again = true;
		wslay_event_set_error(ev, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (r == 0)
		ws->sock_eof = true;
	else
		ws->sock_err = (int)r;
	wslay_event_set_error(ev, WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

static ssize_t
send_cb(wslay_event_context_ptr ev, const uint8_t *data, size_t len,
    int flags, void *arg)
{
	struct ws	*ws = arg;
	size_t		 room = WS_WIRE_CAP - bbuf_len(&ws->wire);

	(void)flags;
	if (room == 0) {
		wslay_event_set_error(ev, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (len > room)
		len = room;
	if (bbuf_append(&ws->wire, data, len, WS_WIRE_CAP) < 0) {
		wslay_event_set_error(ev, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

static void
frame_start_cb(wslay_event_context_ptr ev,
    const struct wslay_event_on_frame_recv_start_arg *a, void *arg)
{
	struct ws	*ws = arg;

	(void)ev;
	ws->in_ctrl = wslay_is_ctrl_frame(a->opcode);
	if (ws->in_ctrl)
		return;		/* ping, pong, close: wslay's */
	if (a->opcode == WSLAY_TEXT_FRAME) {
		ws_fail(ws, WSLAY_CODE_UNSUPPORTED_DATA, "ws_text_message");
		return;
	}
	if (a->opcode == WSLAY_BINARY_FRAME)
		ws->msg_len = 0;
	/* Boundaries mean nothing to us, but a message has a cap. */
	if (a->payload_length > WS_MSG_MAX - ws->msg_len) {
		ws_fail(ws, WSLAY_CODE_MESSAGE_TOO_BIG, "ws_message_too_big");
		return;
	}
	ws->msg_len += a->payload_length;
}

static void
frame_chunk_cb(wslay_event_context_ptr ev,
    const struct wslay_event_on_frame_recv_chunk_arg *a, void *arg)
{
	struct ws	*ws = arg;

	(void)ev;
	if (ws->in_ctrl || ws->fail_code != 0 || a->data_length == 0)
		return;
	if (ws->dst == NULL || a->data_length > ws->dst_cap - ws->dst_len) {
		/* Cannot happen: reads are capped by the room (recv_cb). */
		ws_fail(ws, WSLAY_CODE_INTERNAL_SERVER_ERROR, "ws_overflow");
		return;
	}
	memcpy(ws->dst + ws->dst_len, a->data, a->data_length);
	ws->dst_len += a->data_length;
}

static const struct wslay_event_callbacks callbacks = {
	.recv_callback = recv_cb,
	.send_callback = send_cb,
	.on_frame_recv_start_callback = frame_start_cb,
	.on_frame_recv_chunk_callback = frame_chunk_cb,
};

/* Write the wire buffer: all of it, or only whole records' worth so that
 * consecutive messages share full TLS records.  0, -EAGAIN or -errno
 * (the socket is then dead).  The length never shrinks between retries
 * (OpenSSL's rule for a write that must be repeated). */
static int
ws_push(struct ws *ws, bool all)
{
	size_t	len;
	ssize_t	r;

	for (;;) {
		len = bbuf_len(&ws->wire);
		if (!all)
			len -= len % WS_REC;
		if (len == 0)
			return 0;
		r = conn_sock_write(ws->c, ws->wire.p + ws->wire.off, len);
		if (r == -EAGAIN)
			return -EAGAIN;
		if (r < 0) {
			ws->dead = true;
			return (int)r;
		}
		bbuf_consume(&ws->wire, (size_t)r);
	}
}

/* Frame what wslay has queued into the wire buffer. */
static int
ws_frame(struct ws *ws)
{
	if (wslay_event_want_write(ws->ev) && wslay_event_send(ws->ev) < 0) {
		ws->dead = true;
		return -ENOMEM;
	}
	return 0;
}

/* Frame and write everything: 0 when all is out, -EAGAIN, -errno. */
static int
ws_pump(struct ws *ws)
{
	int	rc;

	if (ws->dead)
		return -EPIPE;
	for (;;) {
		if ((rc = ws_push(ws, true)) < 0)
			return rc;
		if (!wslay_event_want_write(ws->ev)) {
			bbuf_free(&ws->wire);
			return 0;
		}
		if ((rc = ws_frame(ws)) < 0)
			return rc;
		if (bbuf_len(&ws->wire) == 0)
			return 0;
	}
}

int
ws_start(struct conn *c, const char *key, const char *protocols,
    bool not_ideal)
{
	struct ws	*ws;
	char		 accept[WEBSOCKET_ACCEPT_LEN + 1], head[256];
	bool		 derp = websocket_has_token(protocols, "derp");
	int		 n;

	if (websocket_accept_key(key, accept) < 0)
		return -EINVAL;
	if ((ws = calloc(1, sizeof(*ws))) == NULL)
		return -ENOMEM;
	ws->c = c;
	if (wslay_event_context_server_init(&ws->ev, &callbacks, ws) != 0) {
		free(ws);
		return -ENOMEM;
	}
	wslay_event_config_set_no_buffering(ws->ev, 1);
	/* Our own cap (frame_start_cb) applies across fragments. */
	wslay_event_config_set_max_recv_msg_length(ws->ev, UINT64_MAX);
	/* No permessage-deflate: no Sec-WebSocket-Extensions answer. */
	n = snprintf(head, sizeof(head), "HTTP/1.1 101 Switching Protocols\r\n"
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Accept: %s\r\n%s\r\n", accept,
	    derp ? "Sec-WebSocket-Protocol: derp\r\n" : "");
	/* The head goes out unframed, before any message; bytes the client
	 * sent behind its request are frames for wslay. */
	if (bbuf_append(&ws->wire, head, (size_t)n, WS_WIRE_CAP) < 0 ||
	    bbuf_append(&ws->pre, c->in.p + c->in.off, bbuf_len(&c->in),
	    WK_HTTP_HEAD_MAX + bbuf_len(&c->in)) < 0) {
		wslay_event_context_free(ws->ev);
		bbuf_free(&ws->wire);
		free(ws);
		return -ENOMEM;
	}
	bbuf_consume(&c->in, bbuf_len(&c->in));
	c->ws = ws;
	if (!derp) {
		/* "derp" only as a substring: Go's server upgrades, then
		 * refuses with 1008 (PROTOCOL.md 2.7). */
		(void)wslay_event_queue_close(ws->ev,
		    WSLAY_CODE_POLICY_VIOLATION,
		    (const uint8_t *)NO_DERP_REASON,
		    sizeof(NO_DERP_REASON) - 1);
		wslay_event_shutdown_read(ws->ev);
		c->close_after_write = true;
		c->close_reason = "ws_no_derp_subprotocol";
		conn_flush_later(c);
		return 0;
	}
	c->w->m->websocket_accepts++;
	log_debug("ws_accepted", "conn=%" PRIu64 " peer=%s", c->id, c->addr);
	/* Never fast start: the client waits for ServerKey. */
	session_start(c, false, not_ideal);
	return 0;
}

/* The read side is closed (handshake refused, close under way): drain
 * and drop what the peer still sends so the socket does not stay
 * readable. */
static ssize_t
ws_discard(struct conn *c, uint8_t *p, size_t n)
{
	ssize_t	r = conn_sock_read(c, p, n);

	if (r > 0) {
		conn_read_again(c);
		return -EAGAIN;
	}
	return r;
}

ssize_t
ws_read(struct conn *c, uint8_t *p, size_t n)
{
	struct ws	*ws = c->ws;
	int		 rc;

	if (ws->sock_eof || wslay_event_get_close_received(ws->ev))
		return 0;
	if (ws->sock_err != 0)
		return ws->sock_err;
	if (!wslay_event_get_read_enabled(ws->ev))
		return ws_discard(c, p, n);
	ws->dst = p;
	ws->dst_len = 0;
	ws->dst_cap = n;
	ws->sock_again = ws->ctrl_stop = false;
	rc = wslay_event_recv(ws->ev);
	ws->dst = NULL;
	if (ws->fail_code != 0) {
		conn_close(c, ws->fail_reason);
		return -EPROTO;
	}
	if (ws->sock_err != 0)
		return ws->sock_err;
	if (rc < 0 && !ws->sock_eof) {
		conn_close(c, "out_of_memory");
		return -ENOMEM;
	}
	if (wslay_event_get_close_received(ws->ev)) {
		/* 1000 and 1001 are a plain EOF; any other code ends the
		 * session the same way. */
		log_debug("ws_close_received", "conn=%" PRIu64 " code=%u",
		    c->id, wslay_event_get_status_code_received(ws->ev));
	} else if (!ws->sock_eof && !wslay_event_get_read_enabled(ws->ev)) {
		/* wslay refused a frame (unmasked, bad opcode or length,
		 * bad close payload) and queued its close (1002, 1007). */
		conn_close(c, "ws_protocol_error");
		return -EPROTO;
	}
	/* Pongs and the close reply leave now, or with the next flush. */
	if ((rc = ws_pump(ws)) < 0 && rc != -EAGAIN)
		return rc;
	if (rc == -EAGAIN && ws->ctrl_stop) {
		conn_close(c, "ws_control_flood");
		return -EPROTO;
	}
	if (ws->dst_len > 0)
		return (ssize_t)ws->dst_len;
	if (ws->sock_eof || wslay_event_get_close_received(ws->ev))
		return 0;
	if (!ws->sock_again)
		conn_read_again(c);	/* paused for pongs: resume soon */
	return -EAGAIN;
}

ssize_t
ws_write(struct conn *c, const uint8_t *p, size_t n)
{
	struct ws		*ws = c->ws;
	struct wslay_event_msg	 m;
	int			 rc, i;

	if (ws->dead)
		return -EPIPE;
	if (n == 0)
		return ws_pump(ws);	/* end of a flush: write it all */
	/* Take a message only when less than a record waits.  wslay stops
	 * framing only when its queue is empty or the wire is full, so two
	 * rounds leave at most one earlier message behind in wslay: the
	 * copies stay bounded and the wire within WS_WIRE_CAP. */
	for (i = 0; i < 2; i++) {
		if ((rc = ws_frame(ws)) < 0)
			return rc;
		if (bbuf_len(&ws->wire) >= WS_REC &&
		    (rc = ws_push(ws, false)) < 0)
			return rc;
	}
	if (n > WS_OUT_MSG)
		n = WS_OUT_MSG;
	/* After a close frame nothing more may be sent; the connection
	 * ends next (PROTOCOL.md 2.7: close is EOF). */
	if (!wslay_event_get_write_enabled(ws->ev) ||
	    wslay_event_get_close_received(ws->ev))
		return (ssize_t)n;
	m.opcode = WSLAY_BINARY_FRAME;
	m.msg = p;
	m.msg_length = n;
	if ((rc = wslay_event_queue_msg(ws->ev, &m)) != 0)
		return rc == WSLAY_ERR_NOMEM ? -ENOMEM : -EPIPE;
	if ((rc = ws_frame(ws)) < 0 ||
	    ((rc = ws_push(ws, false)) < 0 && rc != -EAGAIN))
		return rc;
	return (ssize_t)n;
}

bool
ws_want_write(const struct conn *c)
{
	const struct ws	*ws = c->ws;

	return !ws->dead && (bbuf_len(&ws->wire) > 0 ||
	    wslay_event_want_write(ws->ev));
}

void
ws_close(struct conn *c)
{
	struct ws	*ws = c->ws;

	/* A session that ends says 1000; a failure already queued its own
	 * code, and a close reply may be queued: then this is a no-op. */
	(void)wslay_event_queue_close(ws->ev, WSLAY_CODE_NORMAL_CLOSURE,
	    NULL, 0);
	(void)ws_pump(ws);	/* best effort: the socket closes next */
}

void
ws_free(struct conn *c)
{
	struct ws	*ws = c->ws;

	if (ws == NULL)
		return;
	wslay_event_context_free(ws->ev);
	bbuf_free(&ws->wire);
	bbuf_free(&ws->pre);
	free(ws);
	c->ws = NULL;
}

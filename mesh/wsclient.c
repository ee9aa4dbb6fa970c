/*
 * WebSocket client transport through wslay's event API (client side):
 * the upgrade headers and the 101 check, masked messages out, binary
 * payloads in as a byte stream, ping answered, the server's close code
 * kept.  I/O goes through the caller's wsclient_io; nothing blocks here.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>
#include <wslay/wslay.h>

#include "mesh/websocket.h"
#include "mesh/wsclient.h"

#define WIRE_CAP	16384

struct wsclient {
	wslay_event_context_ptr	 ev;
	struct wsclient_io	 io;
	char			 key[WEBSOCKET_KEY_LEN + 1];
	uint8_t			*pre;		/* bytes behind the 101 */
	size_t			 pre_off, pre_len;
	uint8_t			*dst;		/* read target, during recv */
	size_t			 room, got;
	uint8_t			 wire[WIRE_CAP];	/* framed output */
	size_t			 wire_len;
	short			 want;
	bool			 up;		/* the 101 was accepted */
	bool			 again, eof, bad, in_ctrl;
	int			 err;
	unsigned		 pongs;
};

static ssize_t
recv_cb(wslay_event_context_ptr ev, uint8_t *buf, size_t len, int flags,
    void *arg)
{
	struct wsclient	*w = arg;
	size_t		 room = w->dst != NULL ? w->room - w->got : 0;
	short		 want = POLLIN;
	int		 r;

	(void)flags;
	/* Payload never exceeds what is read: reading at most the room
	 * left bounds what the chunks deliver. */
	if (room == 0) {
		wslay_event_set_error(ev, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (len > room)
		len = room;
	if (w->pre_off < w->pre_len) {
		if (len > w->pre_len - w->pre_off)
			len = w->pre_len - w->pre_off;
		memcpy(buf, w->pre + w->pre_off, len);
		w->pre_off += len;
		return (ssize_t)len;
	}
	r = w->io.read(w->io.arg, buf, len, &want);
	if (r > 0)
		return r;
	if (r == -EAGAIN) {
		w->again = true;
		w->want = want;
		wslay_event_set_error(ev, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (r == 0)
		w->eof = true;
	else
		w->err = r;
	wslay_event_set_error(ev, WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

static ssize_t
send_cb(wslay_event_context_ptr ev, const uint8_t *data, size_t len,
    int flags, void *arg)
{
	struct wsclient	*w = arg;
	size_t		 room = WIRE_CAP - w->wire_len;

	(void)flags;
	if (room == 0) {
		wslay_event_set_error(ev, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (len > room)
		len = room;
	memcpy(w->wire + w->wire_len, data, len);
	w->wire_len += len;
	return (ssize_t)len;
}

static int
genmask_cb(wslay_event_context_ptr ev, uint8_t *buf, size_t len, void *arg)
{
	(void)ev;
	(void)arg;
	randombytes_buf(buf, len);	/* RFC 6455 5.3: unpredictable */
	return 0;
}

static void
start_cb(wslay_event_context_ptr ev,
    const struct wslay_event_on_frame_recv_start_arg *a, void *arg)
{
	struct wsclient	*w = arg;

	w->in_ctrl = wslay_is_ctrl_frame(a->opcode);
	if (a->opcode == WSLAY_TEXT_FRAME) {
		w->bad = true;		/* the server sends binary only */
		wslay_event_shutdown_read(ev);
	}
}

static void
chunk_cb(wslay_event_context_ptr ev,
    const struct wslay_event_on_frame_recv_chunk_arg *a, void *arg)
{
	struct wsclient	*w = arg;

	if (w->in_ctrl || w->bad || a->data_length == 0)
		return;
	if (w->dst == NULL || a->data_length > w->room - w->got) {
		w->bad = true;		/* cannot happen: see recv_cb */
		wslay_event_shutdown_read(ev);
		return;
	}
	memcpy(w->dst + w->got, a->data, a->data_length);
	w->got += a->data_length;
}

static void
msg_cb(wslay_event_context_ptr ev, const struct wslay_event_on_msg_recv_arg *a,
    void *arg)
{
	struct wsclient	*w = arg;

	(void)ev;
	if (a->opcode == WSLAY_PONG)
		w->pongs++;
}

static const struct wslay_event_callbacks callbacks = {
	.recv_callback = recv_cb,
	.send_callback = send_cb,
	.genmask_callback = genmask_cb,
	.on_frame_recv_start_callback = start_cb,
	.on_frame_recv_chunk_callback = chunk_cb,
	.on_msg_recv_callback = msg_cb,
};

struct wsclient *
wsclient_new(const struct wsclient_io *io)
{
	struct wsclient	*w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	w->io = *io;
	if (wslay_event_context_client_init(&w->ev, &callbacks, w) != 0) {
		free(w);
		errno = ENOMEM;
		return NULL;
	}
	wslay_event_config_set_no_buffering(w->ev, 1);
	return w;
}

/* Frame and write everything wslay has queued. */
static int
flush(struct wsclient *w, int64_t deadline)
{
	int	r;

	while (wslay_event_want_write(w->ev)) {
		w->wire_len = 0;
		if (wslay_event_send(w->ev) < 0)
			return -EPROTO;
		if (w->wire_len == 0)
			break;
		if ((r = w->io.write_all(w->io.arg, w->wire, w->wire_len,
		    deadline)) < 0)
			return r;
	}
	w->wire_len = 0;
	return 0;
}

void
wsclient_free(struct wsclient *w)
{
	if (w == NULL)
		return;
	if (w->up && !w->eof && !w->bad && w->err == 0 &&
	    wslay_event_queue_close(w->ev, WSLAY_CODE_NORMAL_CLOSURE, NULL,
	    0) == 0)
		(void)flush(w, 0);
	wslay_event_context_free(w->ev);
	free(w->pre);
	free(w);
}

void
wsclient_request(struct wsclient *w, char *out, size_t cap)
{
	websocket_new_key(w->key);
	snprintf(out, cap, "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
	    "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Protocol: derp\r\n",
	    w->key);
}

/* Whether head has header name with a value equal to want
 * (case-insensitive, blanks trimmed). */
static bool
head_has(const char *head, const char *name, const char *want)
{
	const char	*p = head;
	size_t		 nl = strlen(name), wl = strlen(want), vl;

	while ((p = strstr(p, "\r\n")) != NULL) {
		p += 2;
		if (strncasecmp(p, name, nl) != 0 || p[nl] != ':')
			continue;
		p += nl + 1;
		while (*p == ' ' || *p == '\t')
			p++;
		vl = strcspn(p, "\r");
		while (vl > 0 && (p[vl - 1] == ' ' || p[vl - 1] == '\t'))
			vl--;
		if (vl == wl && strncasecmp(p, want, wl) == 0)
			return true;
	}
	return false;
}

int
wsclient_upgraded(struct wsclient *w, const char *head, const uint8_t *rest,
    size_t n)
{
	char	accept[WEBSOCKET_ACCEPT_LEN + 1];

	if (websocket_accept_key(w->key, accept) < 0 ||
	    !head_has(head, "Sec-WebSocket-Accept", accept) ||
	    !head_has(head, "Sec-WebSocket-Protocol", "derp"))
		return -EPROTO;
	if (n > 0) {
		if ((w->pre = malloc(n)) == NULL)
			return -ENOMEM;
		memcpy(w->pre, rest, n);
		w->pre_len = n;
	}
	w->up = true;
	return 0;
}

int
wsclient_send(struct wsclient *w, int opcode, const uint8_t *p, size_t n,
    int64_t deadline)
{
	struct wslay_event_msg	m = { .opcode = (uint8_t)opcode, .msg = p,
				    .msg_length = n };
	int			r;

	if (opcode < 0 || opcode > 0xf)
		return -EINVAL;
	if ((r = wslay_event_queue_msg(w->ev, &m)) != 0)
		return r == WSLAY_ERR_NOMEM ? -ENOMEM : r ==
		    WSLAY_ERR_INVALID_ARGUMENT ? -EINVAL : -EPIPE;
	return flush(w, deadline);
}

int
wsclient_read(struct wsclient *w, uint8_t *dst, size_t room,
    int64_t deadline)
{
	int	rc, r;

	for (;;) {
		if (w->eof || wslay_event_get_close_received(w->ev))
			return 0;
		w->dst = dst;
		w->room = room;
		w->got = 0;
		w->again = false;
		rc = wslay_event_recv(w->ev);
		w->dst = NULL;
		/* Pongs leave at once; after the server's close nothing
		 * is written (its socket may be gone: no EPIPE). */
		r = wslay_event_get_close_received(w->ev) ? 0 :
		    flush(w, deadline);
		if (w->got > 0)
			return (int)w->got;
		if (w->eof || wslay_event_get_close_received(w->ev))
			return 0;
		if (w->err != 0)
			return w->err;
		if (rc < 0 || w->bad || !w->again ||
		    !wslay_event_get_read_enabled(w->ev))
			return -EPROTO;
		if (r < 0)
			return r;
		if ((r = w->io.wait(w->io.arg, w->want, deadline)) < 0)
			return r == -ETIMEDOUT ? -EAGAIN : r;
	}
}

int
wsclient_close_code(const struct wsclient *w)
{
	if (!wslay_event_get_close_received(w->ev))
		return 0;
	return wslay_event_get_status_code_received(w->ev);
}

unsigned
wsclient_pongs(const struct wsclient *w)
{
	return w->pongs;
}

/*
 * The WebSocket transport of the DERP client (mesh/client.c), on wslay's
 * client side: masked messages out, binary payloads in as one byte
 * stream (PROTOCOL.md 2.7).  It does no I/O of its own: the caller's
 * socket layer (TLS or plain, non-blocking) comes in as wsclient_io.
 */
#ifndef MESH_WSCLIENT_H
#define MESH_WSCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "derp/frame.h"

/* One message carries at most a maximal SendPacket (PROTOCOL.md U4). */
#define WSCLIENT_MSG_MAX	(DERP_SEND_HDR_LEN + DERP_MAX_PACKET)
#define WSCLIENT_BINARY		2

struct wsclient;

struct wsclient_io {
	void	*arg;
	/* Never blocks: > 0 bytes, 0 at EOF, -EAGAIN (*want: POLLIN or
	 * POLLOUT) or -errno. */
	int	(*read)(void *arg, uint8_t *p, size_t n, short *want);
	/* All of p before the deadline (ms, CLOCK_MONOTONIC; 0 = no
	 * waiting): 0 or -errno. */
	int	(*write_all)(void *arg, const uint8_t *p, size_t n,
		    int64_t deadline);
	/* Wait for want before the deadline: 0, -ETIMEDOUT or -errno. */
	int	(*wait)(void *arg, short want, int64_t deadline);
};

/* NULL on ENOMEM.  io is copied. */
struct wsclient	*wsclient_new(const struct wsclient_io *io);
/* Says goodbye with close 1000 when the connection is still up (best
 * effort, no waiting).  NULL-safe. */
void		 wsclient_free(struct wsclient *w);

/* The upgrade request's WebSocket headers (CRLF-terminated lines), with
 * a fresh Sec-WebSocket-Key offering the "derp" subprotocol. */
void	wsclient_request(struct wsclient *w, char *out, size_t cap);
/*
 * Check a 101 response head (NUL-terminated, without the blank line) for
 * the accept key and the derp subprotocol, and keep the bytes that came
 * behind it (rest, n) as the start of the frame stream.  0, -EPROTO or
 * -ENOMEM.
 */
int	wsclient_upgraded(struct wsclient *w, const char *head,
	    const uint8_t *rest, size_t n);

/* Send one message (opcode 1 text, 2 binary, 9 ping, ...), masked, and
 * whatever wslay has queued before it: 0, -EINVAL or -errno. */
int	wsclient_send(struct wsclient *w, int opcode, const uint8_t *p,
	    size_t n, int64_t deadline);
/*
 * Decode binary payload into dst[0..room): > 0 bytes, 0 at the server's
 * close (or EOF), -EAGAIN when the deadline passed, -EPROTO (text or a
 * malformed frame) or -errno.  Pings are answered on the way.
 */
int	wsclient_read(struct wsclient *w, uint8_t *dst, size_t room,
	    int64_t deadline);

/* The code of the server's close frame, 0 before one came. */
int		wsclient_close_code(const struct wsclient *w);
unsigned	wsclient_pongs(const struct wsclient *w);

#endif

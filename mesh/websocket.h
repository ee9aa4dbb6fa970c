/*
 * WebSocket helpers shared by the DERP client (mesh/client.c) and the
 * server (worker/ws.c): the RFC 6455 opening-handshake keys and the
 * subprotocol token match.  Pure functions; framing itself is wslay's.
 */
#ifndef MESH_WEBSOCKET_H
#define MESH_WEBSOCKET_H

#include <stdbool.h>
#include <stddef.h>

#define WEBSOCKET_KEY_LEN	24	/* base64 of 16 random bytes */
#define WEBSOCKET_ACCEPT_LEN	28	/* base64 of a SHA-1 digest */

/*
 * Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (RFC 6455 4.2.2):
 * base64(SHA-1(key || 258EAFA5-E914-47DA-95CA-C5AB0DC85B11)).  Trailing
 * blanks of key are ignored.  Returns 0, or -EINVAL when key is not the
 * base64 encoding of 16 bytes (the handshake must then fail).
 */
int	websocket_accept_key(const char *key,
	    char out[WEBSOCKET_ACCEPT_LEN + 1]);

/* A fresh random Sec-WebSocket-Key (client side). */
void	websocket_new_key(char out[WEBSOCKET_KEY_LEN + 1]);

/*
 * Whether the comma-separated token list of a Sec-WebSocket-Protocol value
 * holds tok, compared case-insensitively after trimming blanks.
 */
bool	websocket_has_token(const char *list, const char *tok);

#endif

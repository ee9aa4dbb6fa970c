/*
 * DERP wire constants shared by every module: frame types, sizes, limits
 * and PeerPresent flags (PROTOCOL.md sections 0 and 3).  Constants only.
 */
#ifndef DERP_DERP_H
#define DERP_DERP_H

#include <stddef.h>
#include <stdint.h>

#ifndef MUST_CHECK
#define MUST_CHECK __attribute__((warn_unused_result))
#endif

#define DERP_KEY_LEN		32
#define DERP_NONCE_LEN		24
#define DERP_BOX_OVERHEAD	16
#define DERP_FRAME_HDR_LEN	5
#define DERP_MAGIC		"DERP\xF0\x9F\x94\x91"
#define DERP_MAGIC_LEN		8
#define DERP_PROTO_VERSION	2
#define DERP_MAX_PACKET		65536		/* user payload */
#define DERP_MAX_CLIENT_INFO	262144		/* ClientInfo payload */
#define DERP_MIN_CLIENT_INFO	56		/* key + nonce */
#define DERP_MAX_CLIENT_FRAME	1048576		/* any frame a client accepts */
#define DERP_MAX_SERVER_KEY	1024
#define DERP_MAX_PING		1000
#define DERP_PING_LEN		8
#define DERP_MAX_UNKNOWN_FRAME	1048576		/* server: skip cap */

enum derp_frame_type {
	DERP_FRAME_SERVER_KEY = 0x01,
	DERP_FRAME_CLIENT_INFO = 0x02,
	DERP_FRAME_SERVER_INFO = 0x03,
	DERP_FRAME_SEND_PACKET = 0x04,
	DERP_FRAME_RECV_PACKET = 0x05,
	DERP_FRAME_KEEP_ALIVE = 0x06,
	DERP_FRAME_NOTE_PREFERRED = 0x07,
	DERP_FRAME_PEER_GONE = 0x08,
	DERP_FRAME_PEER_PRESENT = 0x09,
	DERP_FRAME_FORWARD_PACKET = 0x0a,
	DERP_FRAME_WATCH_CONNS = 0x10,
	DERP_FRAME_CLOSE_PEER = 0x11,
	DERP_FRAME_PING = 0x12,
	DERP_FRAME_PONG = 0x13,
	DERP_FRAME_HEALTH = 0x14,
	DERP_FRAME_RESTARTING = 0x15,
};

enum derp_peer_gone_reason {
	DERP_PEER_GONE_DISCONNECTED = 0x00,
	DERP_PEER_GONE_NOT_HERE = 0x01,
	DERP_PEER_GONE_MESH_CONN_BROKE = 0xf0,	/* local only, never sent */
};

enum derp_peer_flags {
	DERP_PEER_IS_REGULAR = 0x01,
	DERP_PEER_IS_MESH_PEER = 0x02,
	DERP_PEER_IS_PROBER = 0x04,
	DERP_PEER_NOT_IDEAL = 0x08,
};

#endif

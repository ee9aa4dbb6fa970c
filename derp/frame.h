/*
 * DERP frame codec: incremental parsing of the 5-byte-header stream and
 * encoders for every fixed-layout frame (PROTOCOL.md section 3).  Sealed
 * handshake frames live in info.h.  No I/O, no allocation.
 */
#ifndef DERP_FRAME_H
#define DERP_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "derp/derp.h"

struct derp_frame {
	uint8_t		 type;
	uint32_t	 len;		/* payload length */
	const uint8_t	*payload;	/* borrows from the input */
};

/*
 * Parse one frame from in[0..len).  A header announcing more than max_len
 * payload bytes fails at once with -EMSGSIZE, before the payload arrives.
 * Returns bytes consumed (> 0), 0 if incomplete, or -EMSGSIZE.
 */
ssize_t	derp_frame_parse(const uint8_t *in, size_t len, size_t max_len,
	    struct derp_frame *f);

/*
 * Largest payload a server accepts for a client-sent frame of this type
 * (SendPacket 32+64 KiB, ForwardPacket 64+64 KiB, ClientInfo 256 KiB, Ping
 * 1000, NotePreferred 1, WatchConns 0, ClosePeer 32, others the skip cap).
 */
size_t	derp_frame_server_limit(uint8_t type);

/* Encoders: each writes a whole frame (header included) and returns its
 * length.  Output buffers must have the stated size. */
#define DERP_SERVER_KEY_FRAME_LEN	(5 + 8 + 32)
#define DERP_RECV_HDR_LEN		(5 + 32)
#define DERP_SEND_HDR_LEN		(5 + 32)
#define DERP_FORWARD_HDR_LEN		(5 + 64)
#define DERP_PEER_GONE_FRAME_LEN	(5 + 33)
#define DERP_PEER_PRESENT_FRAME_LEN	(5 + 51)
#define DERP_PING_FRAME_LEN		(5 + 8)
#define DERP_RESTARTING_FRAME_LEN	(5 + 8)

size_t	derp_frame_header(uint8_t out[5], uint8_t type, uint32_t len);
size_t	derp_enc_server_key(uint8_t out[DERP_SERVER_KEY_FRAME_LEN],
	    const uint8_t pub[DERP_KEY_LEN]);
/* Header plus key of a RecvPacket / SendPacket carrying pkt_len bytes;
 * the caller appends the packet. */
size_t	derp_enc_recv_packet_hdr(uint8_t out[DERP_RECV_HDR_LEN],
	    const uint8_t src[DERP_KEY_LEN], size_t pkt_len);
size_t	derp_enc_send_packet_hdr(uint8_t out[DERP_SEND_HDR_LEN],
	    const uint8_t dst[DERP_KEY_LEN], size_t pkt_len);
size_t	derp_enc_forward_packet_hdr(uint8_t out[DERP_FORWARD_HDR_LEN],
	    const uint8_t src[DERP_KEY_LEN], const uint8_t dst[DERP_KEY_LEN],
	    size_t pkt_len);
size_t	derp_enc_keep_alive(uint8_t out[5]);
size_t	derp_enc_note_preferred(uint8_t out[6], bool preferred);
size_t	derp_enc_peer_gone(uint8_t out[DERP_PEER_GONE_FRAME_LEN],
	    const uint8_t key[DERP_KEY_LEN], uint8_t reason);
/* ip16 is the 16-byte address (IPv4 v4-mapped), port in host order. */
size_t	derp_enc_peer_present(uint8_t out[DERP_PEER_PRESENT_FRAME_LEN],
	    const uint8_t key[DERP_KEY_LEN], const uint8_t ip16[16],
	    uint16_t port, uint8_t flags);
size_t	derp_enc_watch_conns(uint8_t out[5]);
size_t	derp_enc_close_peer(uint8_t out[5 + 32],
	    const uint8_t key[DERP_KEY_LEN]);
size_t	derp_enc_ping(uint8_t out[DERP_PING_FRAME_LEN], uint8_t type,
	    const uint8_t data[DERP_PING_LEN]);	/* type PING or PONG */
size_t	derp_enc_restarting(uint8_t out[DERP_RESTARTING_FRAME_LEN],
	    uint32_t reconnect_in_ms, uint32_t try_for_ms);
/* Health frame with text; returns 0 if cap is too small. */
size_t	derp_enc_health(uint8_t *out, size_t cap, const char *text,
	    size_t len);

/* Decoders for payloads (header already stripped).  0 or -EPROTO. */
struct derp_peer_present {
	uint8_t		key[DERP_KEY_LEN];
	uint8_t		ip16[16];	/* zero when absent */
	uint16_t	port;
	uint8_t		flags;		/* 0 when absent */
	bool		has_addr;
};
int	derp_dec_server_key(const uint8_t *p, size_t len,
	    uint8_t key[DERP_KEY_LEN]);
int	derp_dec_peer_gone(const uint8_t *p, size_t len,
	    uint8_t key[DERP_KEY_LEN], uint8_t *reason);
int	derp_dec_peer_present(const uint8_t *p, size_t len,
	    struct derp_peer_present *pp);
int	derp_dec_restarting(const uint8_t *p, size_t len,
	    uint32_t *reconnect_in_ms, uint32_t *try_for_ms);

#endif

/*
 * DERP frame codec: the 5-byte header stream parser with per-type size
 * limits, and encoders / decoders for the fixed-layout frames
 * (PROTOCOL.md 3).  No allocation; payloads borrow from the input.
 */
#include <errno.h>
#include <string.h>

#include "derp/frame.h"
#include "derp/wire.h"

ssize_t
derp_frame_parse(const uint8_t *in, size_t len, size_t max_len,
    struct derp_frame *f)
{
	uint32_t	plen;

	if (len < DERP_FRAME_HDR_LEN)
		return 0;
	plen = wire_load_u32(in + 1);
	if (plen > max_len)
		return -EMSGSIZE;
	if (len - DERP_FRAME_HDR_LEN < plen)
		return 0;
	f->type = in[0];
	f->len = plen;
	f->payload = in + DERP_FRAME_HDR_LEN;
	return (ssize_t)(DERP_FRAME_HDR_LEN + plen);
}

size_t
derp_frame_server_limit(uint8_t type)
{
	switch (type) {
	case DERP_FRAME_SEND_PACKET:
		return DERP_KEY_LEN + DERP_MAX_PACKET;
	case DERP_FRAME_FORWARD_PACKET:
		return 2 * DERP_KEY_LEN + DERP_MAX_PACKET;
	case DERP_FRAME_CLIENT_INFO:
		return DERP_MAX_CLIENT_INFO;
	case DERP_FRAME_PING:
		return DERP_MAX_PING;
	case DERP_FRAME_NOTE_PREFERRED:
		return 1;
	case DERP_FRAME_WATCH_CONNS:
		return 0;
	case DERP_FRAME_CLOSE_PEER:
		return DERP_KEY_LEN;
	default:
		return DERP_MAX_UNKNOWN_FRAME;
	}
}

size_t
derp_frame_header(uint8_t out[5], uint8_t type, uint32_t len)
{
	out[0] = type;
	wire_store_u32(out + 1, len);
	return DERP_FRAME_HDR_LEN;
}

size_t
derp_enc_server_key(uint8_t out[DERP_SERVER_KEY_FRAME_LEN],
    const uint8_t pub[DERP_KEY_LEN])
{
	derp_frame_header(out, DERP_FRAME_SERVER_KEY,
	    DERP_MAGIC_LEN + DERP_KEY_LEN);
	memcpy(out + 5, DERP_MAGIC, DERP_MAGIC_LEN);
	memcpy(out + 5 + DERP_MAGIC_LEN, pub, DERP_KEY_LEN);
	return DERP_SERVER_KEY_FRAME_LEN;
}

static size_t
key_hdr(uint8_t *out, uint8_t type, const uint8_t key[DERP_KEY_LEN],
    size_t pkt_len)
{
	derp_frame_header(out, type, (uint32_t)(DERP_KEY_LEN + pkt_len));
	memcpy(out + 5, key, DERP_KEY_LEN);
	return 5 + DERP_KEY_LEN;
}

size_t
derp_enc_recv_packet_hdr(uint8_t out[DERP_RECV_HDR_LEN],
    const uint8_t src[DERP_KEY_LEN], size_t pkt_len)
{
	return key_hdr(out, DERP_FRAME_RECV_PACKET, src, pkt_len);
}

size_t
derp_enc_send_packet_hdr(uint8_t out[DERP_SEND_HDR_LEN],
    const uint8_t dst[DERP_KEY_LEN], size_t pkt_len)
{
	return key_hdr(out, DERP_FRAME_SEND_PACKET, dst, pkt_len);
}

size_t
derp_enc_forward_packet_hdr(uint8_t out[DERP_FORWARD_HDR_LEN],
    const uint8_t src[DERP_KEY_LEN], const uint8_t dst[DERP_KEY_LEN],
    size_t pkt_len)
{
	derp_frame_header(out, DERP_FRAME_FORWARD_PACKET,
	    (uint32_t)(2 * DERP_KEY_LEN + pkt_len));
	memcpy(out + 5, src, DERP_KEY_LEN);
	memcpy(out + 5 + DERP_KEY_LEN, dst, DERP_KEY_LEN);
	return DERP_FORWARD_HDR_LEN;
}

size_t
derp_enc_keep_alive(uint8_t out[5])
{
	return derp_frame_header(out, DERP_FRAME_KEEP_ALIVE, 0);
}

size_t
derp_enc_note_preferred(uint8_t out[6], bool preferred)
{
	derp_frame_header(out, DERP_FRAME_NOTE_PREFERRED, 1);
	out[5] = preferred ? 1 : 0;
	return 6;
}

size_t
derp_enc_peer_gone(uint8_t out[DERP_PEER_GONE_FRAME_LEN],
    const uint8_t key[DERP_KEY_LEN], uint8_t reason)
{
	derp_frame_header(out, DERP_FRAME_PEER_GONE, DERP_KEY_LEN + 1);
	memcpy(out + 5, key, DERP_KEY_LEN);
	out[5 + DERP_KEY_LEN] = reason;
	return DERP_PEER_GONE_FRAME_LEN;
}

size_t
derp_enc_peer_present(uint8_t out[DERP_PEER_PRESENT_FRAME_LEN],
    const uint8_t key[DERP_KEY_LEN], const uint8_t ip16[16], uint16_t port,
    uint8_t flags)
{
	uint8_t	*p = out + 5;

	derp_frame_header(out, DERP_FRAME_PEER_PRESENT, DERP_KEY_LEN + 19);
	memcpy(p, key, DERP_KEY_LEN);
	memcpy(p + 32, ip16, 16);
	p[48] = (uint8_t)(port >> 8);
	p[49] = (uint8_t)port;
	p[50] = flags;
	return DERP_PEER_PRESENT_FRAME_LEN;
}

size_t
derp_enc_watch_conns(uint8_t out[5])
{
	return derp_frame_header(out, DERP_FRAME_WATCH_CONNS, 0);
}

size_t
derp_enc_close_peer(uint8_t out[5 + 32], const uint8_t key[DERP_KEY_LEN])
{
	derp_frame_header(out, DERP_FRAME_CLOSE_PEER, DERP_KEY_LEN);
	memcpy(out + 5, key, DERP_KEY_LEN);
	return 5 + DERP_KEY_LEN;
}

size_t
derp_enc_ping(uint8_t out[DERP_PING_FRAME_LEN], uint8_t type,
    const uint8_t data[DERP_PING_LEN])
{
	derp_frame_header(out, type, DERP_PING_LEN);
	memcpy(out + 5, data, DERP_PING_LEN);
	return DERP_PING_FRAME_LEN;
}

size_t
derp_enc_restarting(uint8_t out[DERP_RESTARTING_FRAME_LEN],
    uint32_t reconnect_in_ms, uint32_t try_for_ms)
{
	derp_frame_header(out, DERP_FRAME_RESTARTING, 8);
	wire_store_u32(out + 5, reconnect_in_ms);
	wire_store_u32(out + 9, try_for_ms);
	return DERP_RESTARTING_FRAME_LEN;
}

size_t
derp_enc_health(uint8_t *out, size_t cap, const char *text, size_t len)
{
	if (cap < DERP_FRAME_HDR_LEN || cap - DERP_FRAME_HDR_LEN < len ||
	    len > UINT32_MAX)
		return 0;
	derp_frame_header(out, DERP_FRAME_HEALTH, (uint32_t)len);
	if (len > 0)
		memcpy(out + 5, text, len);
	return DERP_FRAME_HDR_LEN + len;
}

int
derp_dec_server_key(const uint8_t *p, size_t len, uint8_t key[DERP_KEY_LEN])
{
	if (len < DERP_MAGIC_LEN + DERP_KEY_LEN || len > DERP_MAX_SERVER_KEY ||
	    memcmp(p, DERP_MAGIC, DERP_MAGIC_LEN) != 0)
		return -EPROTO;
	memcpy(key, p + DERP_MAGIC_LEN, DERP_KEY_LEN);
	return 0;
}

int
derp_dec_peer_gone(const uint8_t *p, size_t len, uint8_t key[DERP_KEY_LEN],
    uint8_t *reason)
{
	if (len < DERP_KEY_LEN)
		return -EPROTO;
	memcpy(key, p, DERP_KEY_LEN);
	*reason = len > DERP_KEY_LEN ? p[DERP_KEY_LEN] :
	    DERP_PEER_GONE_DISCONNECTED;
	return 0;
}

int
derp_dec_peer_present(const uint8_t *p, size_t len,
    struct derp_peer_present *pp)
{
	memset(pp, 0, sizeof(*pp));
	if (len < DERP_KEY_LEN)
		return -EPROTO;
	memcpy(pp->key, p, DERP_KEY_LEN);
	if (len >= DERP_KEY_LEN + 18) {
		memcpy(pp->ip16, p + 32, 16);
		pp->port = (uint16_t)(p[48] << 8 | p[49]);
		pp->has_addr = true;
	}
	if (len >= DERP_KEY_LEN + 19)
		pp->flags = p[50];
	return 0;
}

int
derp_dec_restarting(const uint8_t *p, size_t len, uint32_t *reconnect_in_ms,
    uint32_t *try_for_ms)
{
	if (len < 8)
		return -EPROTO;
	*reconnect_in_ms = wire_load_u32(p);
	*try_for_ms = wire_load_u32(p + 4);
	return 0;
}

/*
 * STUN binding codec (PROTOCOL.md 7): request validation in Tailscale
 * mode (SOFTWARE "tailnode" + trailing FINGERPRINT) or RFC 5389 mode,
 * XOR-MAPPED-ADDRESS responses, and the client side used by probes.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "derp/stun.h"
#include "derp/wire.h"

#define STUN_HDR_LEN		20
#define STUN_BINDING_REQUEST	0x0001
#define STUN_BINDING_SUCCESS	0x0101
#define ATTR_MAPPED_ADDRESS	0x0001
#define ATTR_XOR_MAPPED		0x0020
#define ATTR_XOR_MAPPED_ALT	0x8020
#define ATTR_SOFTWARE		0x8022
#define ATTR_FINGERPRINT	0x8028
#define FINGERPRINT_XOR		0x5354554eu

static const uint8_t	cookie[4] = { 0x21, 0x12, 0xa4, 0x42 };

static uint32_t
crc32_ieee(const uint8_t *p, size_t n)
{
	uint32_t	c = 0xffffffffu;
	size_t		i;
	int		k;

	for (i = 0; i < n; i++) {
		c ^= p[i];
		for (k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
	}
	return c ^ 0xffffffffu;
}

static bool
header_ok(const uint8_t *pkt, size_t len)
{
	return len >= STUN_HDR_LEN && (pkt[0] & 0xc0) == 0 &&
	    memcmp(pkt + 4, cookie, 4) == 0;
}

int
stun_parse_request(const uint8_t *pkt, size_t len, bool any_client,
    uint8_t txid[STUN_TXID_LEN])
{
	size_t		off = STUN_HDR_LEN, last_off = 0;
	uint16_t	type, alen, last_type = 0;
	bool		software = false, any_attr = false;

	if (!header_ok(pkt, len) || pkt[0] != 0x00 || pkt[1] != 0x01)
		return -EPROTO;
	if (any_client && (size_t)(pkt[2] << 8 | pkt[3]) + STUN_HDR_LEN != len)
		return -EPROTO;
	while (off < len) {
		if (len - off < 4)
			return -EPROTO;
		type = (uint16_t)(pkt[off] << 8 | pkt[off + 1]);
		alen = (uint16_t)(pkt[off + 2] << 8 | pkt[off + 3]);
		if (len - off - 4 < ((size_t)alen + 3) / 4 * 4)
			return -EPROTO;
		if (type == ATTR_SOFTWARE && alen == 8 &&
		    memcmp(pkt + off + 4, "tailnode", 8) == 0)
			software = true;
		last_type = type;
		last_off = off;
		any_attr = true;
		off += 4 + ((size_t)alen + 3) / 4 * 4;
	}
	if (any_attr && last_type == ATTR_FINGERPRINT) {
		uint16_t	flen = (uint16_t)(pkt[last_off + 2] << 8 |
				    pkt[last_off + 3]);

		if (flen != 4 || (crc32_ieee(pkt, last_off) ^ FINGERPRINT_XOR) !=
		    wire_load_u32(pkt + last_off + 4))
			return -EPROTO;
	} else if (!any_client) {
		return -EPROTO;
	}
	if (!any_client && !software)
		return -EPROTO;
	memcpy(txid, pkt + 8, STUN_TXID_LEN);
	return 0;
}

ssize_t
stun_build_response(uint8_t out[STUN_RESPONSE_MAX],
    const uint8_t txid[STUN_TXID_LEN], const struct sockaddr *addr)
{
	uint8_t		ip[16];
	size_t		iplen, i;
	uint16_t	port;

	if (addr->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)addr;

		memcpy(ip, &s4->sin_addr, 4);
		iplen = 4;
		port = ntohs(s4->sin_port);
	} else if (addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)addr;

		port = ntohs(s6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			memcpy(ip, (const uint8_t *)&s6->sin6_addr + 12, 4);
			iplen = 4;
		} else {
			memcpy(ip, &s6->sin6_addr, 16);
			iplen = 16;
		}
	} else {
		return -EAFNOSUPPORT;
	}
	out[0] = 0x01;
	out[1] = 0x01;
	out[2] = 0;
	out[3] = (uint8_t)(8 + iplen);
	memcpy(out + 4, cookie, 4);
	memcpy(out + 8, txid, STUN_TXID_LEN);
	out[20] = 0x00;
	out[21] = 0x20;
	out[22] = 0;
	out[23] = (uint8_t)(4 + iplen);
	out[24] = 0;
	out[25] = iplen == 4 ? 0x01 : 0x02;
	port ^= 0x2112;
	out[26] = (uint8_t)(port >> 8);
	out[27] = (uint8_t)port;
	for (i = 0; i < iplen; i++)
		out[28 + i] = ip[i] ^ (i < 4 ? cookie[i] : txid[i - 4]);
	return (ssize_t)(28 + iplen);
}

size_t
stun_build_request(uint8_t out[STUN_REQUEST_LEN],
    const uint8_t txid[STUN_TXID_LEN])
{
	static const uint8_t	head[] = { 0x00, 0x01, 0x00, 0x14 };

	memcpy(out, head, 4);
	memcpy(out + 4, cookie, 4);
	memcpy(out + 8, txid, STUN_TXID_LEN);
	out[20] = 0x80;
	out[21] = 0x22;
	out[22] = 0x00;
	out[23] = 0x08;
	memcpy(out + 24, "tailnode", 8);
	out[32] = 0x80;
	out[33] = 0x28;
	out[34] = 0x00;
	out[35] = 0x04;
	wire_store_u32(out + 36, crc32_ieee(out, 32) ^ FINGERPRINT_XOR);
	return STUN_REQUEST_LEN;
}

static int
decode_addr(const uint8_t *v, uint16_t alen, bool xor,
    const uint8_t txid[STUN_TXID_LEN], struct sockaddr_storage *ss)
{
	uint8_t		ip[16];
	uint16_t	port;
	size_t		iplen, i;

	if (alen < 4)
		return -EPROTO;
	iplen = v[1] == 0x01 ? 4 : v[1] == 0x02 ? 16 : 0;
	if (iplen == 0 || alen < 4 + iplen)
		return -EPROTO;
	port = (uint16_t)(v[2] << 8 | v[3]);
	memcpy(ip, v + 4, iplen);
	if (xor) {
		port ^= 0x2112;
		for (i = 0; i < iplen; i++)
			ip[i] ^= i < 4 ? cookie[i] : txid[i - 4];
	}
	memset(ss, 0, sizeof(*ss));
	if (iplen == 16 && !IN6_IS_ADDR_V4MAPPED((struct in6_addr *)ip)) {
		struct sockaddr_in6	*s6 = (void *)ss;

		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, ip, 16);
		s6->sin6_port = htons(port);
	} else {
		struct sockaddr_in	*s4 = (void *)ss;

		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, iplen == 16 ? ip + 12 : ip, 4);
		s4->sin_port = htons(port);
	}
	return 0;
}

int
stun_parse_response(const uint8_t *pkt, size_t len,
    const uint8_t txid[STUN_TXID_LEN], struct sockaddr_storage *addr)
{
	size_t		off = STUN_HDR_LEN;
	uint16_t	type, alen;
	int		found = -EPROTO;

	if (!header_ok(pkt, len) || pkt[0] != 0x01 || pkt[1] != 0x01 ||
	    memcmp(pkt + 8, txid, STUN_TXID_LEN) != 0)
		return -EPROTO;
	while (off + 4 <= len) {
		type = (uint16_t)(pkt[off] << 8 | pkt[off + 1]);
		alen = (uint16_t)(pkt[off + 2] << 8 | pkt[off + 3]);
		if (len - off - 4 < alen)
			return -EPROTO;
		if (type == ATTR_XOR_MAPPED || type == ATTR_XOR_MAPPED_ALT)
			return decode_addr(pkt + off + 4, alen, true, txid,
			    addr);
		if (type == ATTR_MAPPED_ADDRESS && found < 0)
			found = decode_addr(pkt + off + 4, alen, false, txid,
			    addr);
		off += 4 + ((size_t)alen + 3) / 4 * 4;
	}
	return found;
}

/*
 * STUN binding codec (PROTOCOL.md section 7): validate a request, build
 * the XOR-MAPPED-ADDRESS response, and the client side (request builder,
 * response parser) for probes.  Pure: no sockets.
 */
#ifndef DERP_STUN_H
#define DERP_STUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define STUN_TXID_LEN		12
#define STUN_REQUEST_LEN	40
#define STUN_RESPONSE_MAX	44

/*
 * Validate a binding request.  any_client=false: Tailscale shape only
 * (SOFTWARE "tailnode" + valid trailing FINGERPRINT, 7.3).  any_client=true:
 * every well-formed RFC 5389 binding request (FINGERPRINT checked if
 * present and last).  0 and txid filled, or -EPROTO.
 */
int	stun_parse_request(const uint8_t *pkt, size_t len, bool any_client,
	    uint8_t txid[STUN_TXID_LEN]);
/* Response for addr (AF_INET, AF_INET6; v4-mapped v6 answered as IPv4).
 * Returns length (32 or 44) or -EAFNOSUPPORT. */
ssize_t	stun_build_response(uint8_t out[STUN_RESPONSE_MAX],
	    const uint8_t txid[STUN_TXID_LEN], const struct sockaddr *addr);
/* Tailscale-shaped 40-byte request. */
size_t	stun_build_request(uint8_t out[STUN_REQUEST_LEN],
	    const uint8_t txid[STUN_TXID_LEN]);
/* Parse a binding success response for txid; fills addr (sockaddr_in or
 * sockaddr_in6, v4-mapped unmapped).  0 or -EPROTO. */
int	stun_parse_response(const uint8_t *pkt, size_t len,
	    const uint8_t txid[STUN_TXID_LEN], struct sockaddr_storage *addr);

#endif

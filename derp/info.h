/*
 * Handshake payloads: NaCl box (libsodium crypto_box, PROTOCOL.md 1.2),
 * ClientInfo / ServerInfo JSON through jansson (4.3, 4.4) and the sealed
 * ClientInfo / ServerInfo frames.  Pure: no I/O.
 */
#ifndef DERP_INFO_H
#define DERP_INFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "derp/derp.h"

#define DERP_APP_NAME_MAX	64

struct derp_client_info {
	int		version;
	bool		can_ack_pings;
	bool		is_prober;
	bool		has_mesh_key;
	uint8_t		mesh_key[DERP_KEY_LEN];
	char		app_name[DERP_APP_NAME_MAX];	/* truncated */
};

struct derp_server_info {
	int		version;
	uint64_t	token_bucket_bytes_per_second;
	uint64_t	token_bucket_bytes_burst;
};

/*
 * The box key of one pair of keys (crypto_box_beforenm: one X25519).  A
 * server handshake opens ClientInfo and seals ServerInfo under the same
 * pair, so it computes the key once and holds it until ServerInfo is
 * sealed; derp_box_wipe() when done.
 */
struct derp_box {
	uint8_t	k[32];
};

/* -EINVAL for a zero or degenerate (small-order) peer key. */
int	derp_box_key(struct derp_box *b, const uint8_t peer_pub[DERP_KEY_LEN],
	    const uint8_t my_priv[DERP_KEY_LEN]);
void	derp_box_wipe(struct derp_box *b);
/* As derp_box_seal_nonce / derp_box_open under a computed box key. */
ssize_t	derp_box_seal_with(uint8_t *out, size_t cap, const uint8_t *msg,
	    size_t len, const uint8_t nonce[DERP_NONCE_LEN],
	    const struct derp_box *b);
ssize_t	derp_box_open_with(uint8_t *out, size_t cap, const uint8_t *in,
	    size_t len, const struct derp_box *b);

/* Seal: out = nonce(24) || crypto_box_easy(msg).  Returns bytes written
 * or -ENOBUFS / -EINVAL.  Random nonce. */
ssize_t	derp_box_seal(uint8_t *out, size_t cap, const uint8_t *msg,
	    size_t len, const uint8_t peer_pub[DERP_KEY_LEN],
	    const uint8_t my_priv[DERP_KEY_LEN]);
/* As derp_box_seal with a caller-chosen nonce: only for test vectors;
 * real traffic must use random nonces. */
ssize_t	derp_box_seal_nonce(uint8_t *out, size_t cap, const uint8_t *msg,
	    size_t len, const uint8_t nonce[DERP_NONCE_LEN],
	    const uint8_t peer_pub[DERP_KEY_LEN],
	    const uint8_t my_priv[DERP_KEY_LEN]);
/* Open nonce || box.  Returns plaintext length or -EPROTO (short, bad
 * tag, zero or small-order key) / -ENOBUFS. */
ssize_t	derp_box_open(uint8_t *out, size_t cap, const uint8_t *in,
	    size_t len, const uint8_t peer_pub[DERP_KEY_LEN],
	    const uint8_t my_priv[DERP_KEY_LEN]);

/*
 * Make jansson zero every block before it frees it: a ClientInfo's
 * meshKey passes through the lexer's buffers (grown by copying) and the
 * string it decodes, all freed without a wipe otherwise.  Wraps the
 * allocator installed before, whose blocks must be malloc's (the wipe
 * length is malloc_usable_size).  Idempotent; derp_crypto_init() calls
 * it.  Not thread-safe against concurrent jansson use.
 */
void	derp_json_wipe_on_free(void);

/* JSON.  Keys case-insensitive; unknown keys ignored; wrong types and a
 * malformed meshKey are -EPROTO; "meshKey": null means absent. */
int	derp_client_info_parse(const char *json, size_t len,
	    struct derp_client_info *ci);
/* Go's byte layout: {"meshKey":..,"version":2,"CanAckPings":b[,"IsProber":true]} */
ssize_t	derp_client_info_format(char *out, size_t cap,
	    const struct derp_client_info *ci);
int	derp_server_info_parse(const char *json, size_t len,
	    struct derp_server_info *si);
/* {"version":2} plus non-zero token bucket fields. */
ssize_t	derp_server_info_format(char *out, size_t cap,
	    const struct derp_server_info *si);

/*
 * Whole frames (header included).  Client side seals ClientInfo with its
 * private key to the server key; server side opens it from the payload.
 */
ssize_t	derp_client_info_frame(uint8_t *out, size_t cap,
	    const struct derp_client_info *ci,
	    const uint8_t client_priv[DERP_KEY_LEN],
	    const uint8_t server_pub[DERP_KEY_LEN]);
/* Open a ClientInfo payload: writes the client key, the box key of the
 * pair (for derp_server_info_frame) and info.  -EPROTO on short/long
 * payload, zero key, box failure or bad JSON (box then wiped). */
int	derp_client_info_open(const uint8_t *payload, size_t len,
	    const uint8_t server_priv[DERP_KEY_LEN],
	    uint8_t client_pub[DERP_KEY_LEN], struct derp_box *box,
	    struct derp_client_info *ci);
/* ServerInfo sealed under the box key derp_client_info_open gave. */
ssize_t	derp_server_info_frame(uint8_t *out, size_t cap,
	    const struct derp_server_info *si, const struct derp_box *box);
int	derp_server_info_open(const uint8_t *payload, size_t len,
	    const uint8_t client_priv[DERP_KEY_LEN],
	    const uint8_t server_pub[DERP_KEY_LEN],
	    struct derp_server_info *si);

#endif

/*
 * Outbound DERP client: TCP (+ TLS through OpenSSL), the HTTP upgrade with
 * the meta-certificate fast start, and the handshake (PROTOCOL.md 2, 4,
 * 6.7).  Blocking with deadlines (poll), for tools and tests; the mesh
 * links build on the same codec.  One client per thread.
 */
#ifndef MESH_CLIENT_H
#define MESH_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "derp/derp.h"
#include "derp/frame.h"
#include "derp/info.h"

struct client;

struct client_opts {
	const char	*host;		/* address to dial (IP literal or name) */
	uint16_t	 port;
	const char	*server_name;	/* SNI and Host; NULL = host */
	const char	*bind_addr;	/* local source IP or NULL */
	bool		 tls;
	bool		 tls_insecure;	/* skip chain/hostname verification */
	const char	*ca_file;	/* NULL = system store */
	bool		 no_fast_start;	/* ignore the meta-cert */
	const uint8_t	*priv;		/* DERP_KEY_LEN bytes; NULL = random */
	struct derp_client_info info;	/* version 0 -> 2 */
	const char	*ideal_node;	/* Ideal-Node header or NULL */
	bool		 watch_conns;	/* send WatchConns right after ClientInfo */
	int		 timeout_ms;	/* whole connect + handshake; 0 = 10 s */
	bool		 websocket;	/* DERP in WebSocket binary messages
					 * (PROTOCOL.md 2.7): no fast start */
	int		 tls_max_version; /* e.g. TLS1_2_VERSION; 0 = any */
	SSL_CTX		*tls_ctx;	/* shared, from client_tls_ctx_new
					 * (borrowed); NULL = one per
					 * connection, CA file read each time */
};

/* A client TLS context for o's verification settings (tls_insecure,
 * ca_file), to share between connections: set it as o->tls_ctx, free
 * it with SSL_CTX_free after the last client.  No session resumption:
 * every connection does a full handshake.  NULL on failure. */
SSL_CTX		*client_tls_ctx_new(const struct client_opts *o);

/* A received frame.  Pointers borrow from the client until the next
 * client_recv or client_free. */
struct client_msg {
	uint8_t		 type;		/* enum derp_frame_type */
	uint8_t		 key[DERP_KEY_LEN];	/* src / gone / present key */
	const uint8_t	*data;		/* packet, ping data, health text */
	size_t		 len;
	uint8_t		 reason;	/* PeerGone */
	struct derp_peer_present present;
	uint32_t	 reconnect_in_ms, try_for_ms;	/* Restarting */
};

/*
 * Connect and complete the handshake: returns once ServerInfo has been
 * received and opened (frames that followed it stay buffered).  NULL and
 * *err = -errno on failure (-ETIMEDOUT, -ECONNREFUSED, -EPROTO: bad
 * greeting or status, -ECONNRESET: closed during the handshake).
 */
struct client	*client_connect(const struct client_opts *o, int *err);
void		 client_free(struct client *c);

int		 client_fd(const struct client *c);
/* The TLS connection (NULL in plain mode), e.g. for SSL_key_update. */
struct ssl_st	*client_ssl(const struct client *c);
const uint8_t	*client_public_key(const struct client *c);
const uint8_t	*client_server_key(const struct client *c);
bool		 client_fast_started(const struct client *c);
const struct derp_server_info *client_server_info(const struct client *c);

/* Queue frames into the output buffer without I/O: 0 or -ENOBUFS.  */
int	client_queue_packet(struct client *c, const uint8_t dst[DERP_KEY_LEN],
	    const void *pkt, size_t len);
int	client_queue_frame(struct client *c, uint8_t type, const void *payload,
	    size_t len);
int	client_queue_raw(struct client *c, const void *bytes, size_t len);
/* Write out everything queued; 0, -ETIMEDOUT or -errno. */
int	client_flush(struct client *c, int timeout_ms);

/* Queue + flush conveniences (timeout: the client's timeout_ms). */
int	client_send_packet(struct client *c, const uint8_t dst[DERP_KEY_LEN],
	    const void *pkt, size_t len);
int	client_forward_packet(struct client *c, const uint8_t src[DERP_KEY_LEN],
	    const uint8_t dst[DERP_KEY_LEN], const void *pkt, size_t len);
int	client_note_preferred(struct client *c, bool preferred);
int	client_ping(struct client *c, const uint8_t data[DERP_PING_LEN]);
int	client_watch_conns(struct client *c);
int	client_close_peer(struct client *c, const uint8_t key[DERP_KEY_LEN]);

/*
 * Receive one frame, waiting up to timeout_ms (0 = poll, -1 = forever).
 * Answers Ping with Pong when CanAckPings was declared.  Returns 0,
 * -EAGAIN (timeout 0, nothing), -ETIMEDOUT, -ECONNRESET (EOF),
 * -EPROTO (malformed) or -errno.
 */
int	client_recv(struct client *c, struct client_msg *m, int timeout_ms);

/*
 * WebSocket mode only (tests): send one message with the given opcode
 * (1 text, 2 binary, 9 ping), masked, bypassing DERP framing; write bytes
 * to the transport below any WebSocket framing; the close code the
 * server sent (0 before a close frame); pongs received so far.
 */
int	client_ws_send(struct client *c, int opcode, const void *p, size_t n);
int	client_write_wire(struct client *c, const void *p, size_t n);
int	client_ws_close_code(const struct client *c);
unsigned client_ws_pongs(const struct client *c);

/* Fetch an HTTP(S) path on a fresh connection with opts' transport; the
 * status is returned (>= 100), headers+body copied into out (NUL-
 * terminated, truncated).  For tests of the HTTP surface. */
int	client_http_get(const struct client_opts *o, const char *method,
	    const char *path, const char *extra_headers, char *out,
	    size_t outlen);

#endif

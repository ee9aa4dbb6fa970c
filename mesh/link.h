/*
 * A worker's outbound link to one mesh peer (PROTOCOL.md 6): a
 * non-blocking DERP client on the worker's event loop that authenticates
 * with the mesh key, watches the peer's presence and carries
 * ForwardPackets through a bounded queue.  Reconnects with backoff and
 * jitter; a link that reaches this node itself stops for good.
 */
#ifndef MESH_LINK_H
#define MESH_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "common/loop.h"
#include "common/traffic.h"
#include "derp/derp.h"

struct mesh_link;

struct mesh_link_cb {
	/* The peer announced / withdrew key (forwarder add / remove). */
	void	(*present)(void *arg, int idx, const uint8_t key[DERP_KEY_LEN]);
	void	(*gone)(void *arg, int idx, const uint8_t key[DERP_KEY_LEN]);
	/* The link broke: forget every key learnt through it. */
	void	(*down)(void *arg, int idx);
	void	*arg;
};

struct mesh_link_conf {
	const char	*peer;		/* "host[:port][/dialhost[:port]]" */
	const uint8_t	*priv;		/* node key */
	const uint8_t	*psk;		/* mesh key */
	SSL_CTX		*ctx;		/* client context (verification set) */
	int		 idx;		/* reported back in callbacks */
	int		 queue_bytes;	/* forward queue bound */
	int		 write_timeout_ms;
	int		 connect_timeout_ms;	/* resolve, and again TCP to
						 * ServerInfo; 0 = 10 s */
};

struct mesh_link	*mesh_link_new(struct loop *l,
			    const struct mesh_link_conf *lc,
			    const struct mesh_link_cb *cb);
void			 mesh_link_free(struct mesh_link *lk);
/* Queue a ForwardPacket: 0, -ENOTCONN (link down) or -ENOBUFS (full);
 * the caller counts the drop. */
int			 mesh_link_forward(struct mesh_link *lk,
			    const uint8_t src[DERP_KEY_LEN],
			    const uint8_t dst[DERP_KEY_LEN], const uint8_t *pkt,
			    size_t len);
/* Write what is queued (ForwardPackets, handshake) in as few TLS
 * records as the socket takes; call once per loop round, after the
 * round's packets were routed.  EPOLLOUT is armed only on EAGAIN. */
void			 mesh_link_flush(struct mesh_link *lk);
bool			 mesh_link_up(const struct mesh_link *lk);
/* What /debug/traffic and the traffic dump report about a link. */
struct mesh_link_stats {
	const char		*host;		/* configured peer name */
	char			 addr[64];	/* "ip:port" once connected */
	bool			 up;
	bool			 has_key;	/* the peer's key is known */
	uint8_t			 key[DERP_KEY_LEN];
	uint64_t		 up_ms;		/* loop time it came up */
	struct traffic_ctr	 tr;		/* cumulative over reconnects */
};
void			 mesh_link_stats(const struct mesh_link *lk,
			    struct mesh_link_stats *out);
/* Build the client TLS context for links: system store or ca_file,
 * or no verification when insecure.  NULL on error. */
SSL_CTX			*mesh_tls_ctx(const char *ca_file, bool insecure);

#endif

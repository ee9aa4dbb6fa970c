/*
 * Worker internals shared by the worker/ sources: the worker, connection, queued
 * packet and registry types.  Not part of the worker's public API
 * (worker.h); nothing outside worker/ includes this.
 */
#ifndef WORKER_WK_H
#define WORKER_WK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include <http_parser.h>
#include <openssl/ssl.h>

#include "common/loop.h"
#include "common/traffic.h"
#include "conf/conf.h"
#include "derp/derp.h"
#include "derp/info.h"
#include "worker/metrics.h"

#define WK_READ_BUDGET		(64 * 1024)	/* bytes per wakeup per conn:
						 * bounds a turn's work */
#define WK_ACCEPTS_PER_WAKEUP	64
#define WK_OUT_CAP		(16 * 1024)	/* coalesced write size */
#define WK_FLUSH_BUDGET		(256 * 1024)	/* bytes per flush: a large
						 * response or presence
						 * burst over many turns */
#define WK_IN_CAP		(DERP_FRAME_HDR_LEN + 64 + DERP_MAX_PACKET + 64)
#define WK_HTTP_HEAD_MAX	8192
#define WK_CTRL_CAP		(256 * 1024)	/* non-watcher control bytes */
#define WK_WATCH_CTRL_CAP	(32 * 1024 * 1024)
#define WK_PKT_SMALL		2048		/* pooled frame size */
#define WK_POOL_MAX		4096

enum listen_role {
	ROLE_DERP,	/* main listener: DERP + endpoints */
	ROLE_PORT80,	/* TLS mode's plain port: 204, redirects */
	ROLE_METRICS,	/* metrics.listen: Prometheus text only */
};

enum conn_state {
	ST_TLS,		/* TLS handshake */
	ST_HTTP,	/* reading a request head */
	ST_HELLO,	/* ServerKey sent, waiting ClientInfo */
	ST_DERP,	/* registered session */
};

/* A RecvPacket frame waiting in a destination's queue. */
struct pkt {
	struct pkt	*next;
	uint64_t	 enq_ms;
	uint32_t	 len;		/* whole frame */
	uint32_t	 cap;
	uint8_t		 frame[];
};

struct pktq {
	struct pkt	*head, *tail;
	uint32_t	 n;
	uint32_t	 bytes;
};

/* Growable byte buffer with a hard cap; data is p[off..len). */
struct bbuf {
	uint8_t		*p;
	size_t		 off, len, cap;
};

/* membuf.c: the idle-buffer scan in bounded steps (one per loop turn). */
struct membuf {
	const struct conn *cursor;	/* next to count; NULL: idle */
	bool		 active;
	uint64_t	 in, out, ctrl, http;	/* counted so far */
	struct loop_timer step;
};

struct peer;
struct saw_edge;
struct ws;
struct watch_walk;
struct mesh_link;
struct traffic;
struct traffic_req;
struct tlsrec;
struct tls_secrets;
struct tlsrec_pool;

struct conn {
	struct loop_io	 io;
	struct worker	*w;
	uint64_t	 id;
	int		 fd;
	SSL		*ssl;
	enum listen_role role;
	enum conn_state	 state;
	bool		 closing;
	bool		 close_after_write;	/* HTTP: Connection: close */
	const char	*close_reason;		/* logged when that close
						 * is not routine */
	bool		 in_again;		/* on the read-again list */
	bool		 flush_pending;		/* on the flush list */
	bool		 want_write_on_read;	/* TLS wants read to write */
	char		 addr[64];		/* "ip:port" for logs */
	uint8_t		 ip16[16];
	uint16_t	 port;

	struct bbuf	 in;		/* received, unparsed bytes */
	struct bbuf	 out;		/* being written (coalesced) */
	struct bbuf	 ctrl;		/* control frames to send */
	struct pkt	*cur;		/* large frame written in place */
	size_t		 cur_off;
	struct pktq	 q[2];		/* KIND_DISCO, KIND_OTHER */
	uint8_t		 next_q;

	struct loop_timer deadline;	/* http / handshake / write stall */
	struct loop_timer keepalive;
	struct conn	*close_next;	/* worker close list */
	struct conn	*again_next;	/* worker read-again list */
	struct conn	*flush_next;	/* worker flush list */
	struct conn	*prev, *next;	/* worker's all-conns list */

	/* HTTP */
	http_parser	 hp;
	struct http_req	*req;

	/* DERP session */
	uint8_t		 key[DERP_KEY_LEN];
	struct derp_client_info info;
	struct derp_box	 box;	/* ClientInfo to ServerInfo only, then wiped */
	struct peer	*peer;		/* registry entry of key */
	bool		 can_mesh;
	bool		 not_ideal;
	bool		 preferred;
	bool		 fast_start;
	bool		 watcher;
	uint32_t	 skip;		/* unknown-frame bytes to discard */
	bool		 throttled;	/* receive rate: reads paused */
	double		 rate_tokens;	/* receive rate bucket, bytes */
	uint64_t	 rate_ms;
	struct loop_timer rate_timer;
	bool		 ip_counted;	/* holds a per-IP slot */
	uint64_t	 registered_ms;
	uint64_t	 spoke_seq;	/* dup sets: last time it sent */
	uint64_t	 stamp;		/* node-wide dups: last activity, ns */
	double		 gone_tokens;	/* PeerGone(NotHere) limiter */
	uint64_t	 gone_ms;
	struct saw_edge	*saw;		/* sources this conn received from */
	struct peer	*saw_last;	/* cache for the hot path */
	struct conn	*watch_next;	/* worker watcher list */
	struct watch_walk *wwalk;	/* watch.c: first presence list */

	/* traffic.c: counters, bumped without locks on the hot path */
	struct traffic_ctr tr;
	struct traffic_ctr tr_dumped;	/* as of its last dump line */
	struct traffic_req *treq;	/* /debug/traffic awaiting siblings */
	bool		 big_ctrl;	/* large debug response queued */
	struct ws	*ws;		/* WebSocket framing, or NULL */
	struct admit_req *admit;	/* admission request in flight */
	bool		 admit_hold;	/* reads paused while it is */
	/* tls.c, tlsrec.c: the record layer once OpenSSL is freed; the
	 * secrets captured during the handshake until then. */
	struct tlsrec	*rec;
	struct tls_secrets *rec_keys;
	bool		 peer_gone;	/* EOF, reset or an I/O error seen:
					 * no close_notify at close */
	bool		 ktls;		/* ktls.c: the kernel frames them */
};

struct worker {
	struct loop	*loop;
	struct config	 cfg;
	const char	*cfg_path;
	uint8_t		 priv[DERP_KEY_LEN];
	uint8_t		 pub[DERP_KEY_LEN];
	char		 pub_hex[DERP_KEY_LEN * 2 + 1];
	bool		 has_mesh_key;
	uint8_t		 mesh_key[DERP_KEY_LEN];
	SSL_CTX		*ssl_ctx;
	struct certwatch *cw;		/* certificate file watch */

	struct loop_io	 lis_https, lis_http, lis_stun, lis_metrics, sig_io,
			 ctl_io;
	struct loop_timer beat;
	int		 id, nworkers;
	bool		 shared;	/* listeners shared with siblings */
	bool		 ready_sent;
	bool		 accept_paused;
	struct loop_timer accept_resume;
	double		 accept_tokens;
	uint64_t	 accept_ms;
	struct ipcount	*ipc;		/* per source IP connection counts */
	struct loop_timer stop_timer;
	bool		 stopping;

	uint64_t	 next_conn_id;
	uint64_t	 spoke_clock;
	struct conn	*conns;		/* all live connections */
	size_t		 nconns;
	struct conn	*close_list;
	struct conn	*again_list;
	struct conn	*flush_list;	/* written once per round */
	struct conn	*watchers;
	struct registry	*reg;

	struct pkt	*pool;		/* free small packets */
	size_t		 npool;
	uint8_t		*scratch;	/* WK_IN_CAP bytes */
	struct metrics	*m;		/* this worker's slot (shared) */
	struct metrics	 m_local;	/* the slot when unsupervised */
	struct metrics	*m_all;		/* every worker's slot, or NULL */
	struct node	*node;		/* bus + rings; NULL when alone */
	struct mesh_link *links[CONF_MAX_PEERS];
	int		 nlinks;
	SSL_CTX		*mesh_ctx;
	uint64_t	 start_ms;
	struct traffic	*traffic;	/* traffic.c: dump, queries */
	struct bootdns	*bootdns;	/* /bootstrap-dns cache */
	struct admit	*adm;		/* admission lists + controller */
	const int	*stun_fds;	/* every slot's STUN socket, or NULL */
	struct loop_io	*stun_adopted;	/* nworkers; fd -1 = not served */
	struct membuf	 mb;		/* membuf.c */
	struct tlsrec_pool *recpool;	/* tlsrec scratch + AEAD contexts */
	unsigned	 ktls_suites;	/* ktls_probe() at start */
	bool		 ktls_probed;
};

/* bbuf (worker.c) */
int	bbuf_reserve(struct bbuf *b, size_t need, size_t cap);
int	bbuf_append(struct bbuf *b, const void *p, size_t n, size_t cap);
void	bbuf_consume(struct bbuf *b, size_t n);
void	bbuf_free(struct bbuf *b);
static inline size_t
bbuf_len(const struct bbuf *b)
{
	return b->len - b->off;
}

/* limits.c: accept rate, per-IP cap, per-client receive rate */
bool	limits_accept(struct worker *w);
int	limits_ip_acquire(struct worker *w, const uint8_t ip16[16]);
void	limits_ip_release(struct worker *w, const uint8_t ip16[16]);
/* Charge cost bytes before handling a frame; false: throttled (reads
 * paused, resumed by timer). */
bool	limits_charge(struct conn *c, size_t cost);
void	limits_fini(struct worker *w);

/* admit.c: admission control (PROTOCOL.md 5.14) */
struct admit_lists;
/* Load cfg's allow/deny files; err gets "file:line: message". */
int	admit_lists_load(const struct config *cfg, struct admit_lists **out,
	    char *err, size_t errlen) __attribute__((warn_unused_result));
void	admit_lists_free(struct admit_lists *l);
/* Install l (takes ownership) for new connections. */
void	admit_lists_set(struct worker *w, struct admit_lists *l);
int	admit_init(struct worker *w);
void	admit_fini(struct worker *w);
void	admit_after(struct worker *w);	/* after each dispatch round */
/* Decide c (ClientInfo opened, not a mesh peer): 1 admitted now, 0 in
 * flight (session_admitted or conn_close follows), -1 refused (c is
 * closed). */
int	admit_begin(struct conn *c);
/* While c's request is in flight: stop reading once enough is held. */
void	admit_hold(struct conn *c);
/* c is closing: drop its request, if any. */
void	admit_cancel(struct conn *c);
/* Node-wide derp.max_clients reached (mesh peers are exempt): true when
 * c was refused and closed. */
bool	admit_full(struct conn *c);

/* conn.c: transport */
void	conn_accept(struct worker *w, int lfd, enum listen_role role);
/* TCP options of accepted connections (PROTOCOL.md 2.8), set on the
 * listeners, which Linux copies into every accepted socket (TCP_NODELAY,
 * SO_KEEPALIVE, TCP_KEEPIDLE/INTVL/CNT, TCP_USER_TIMEOUT: test_tcp reads
 * them back): at start and on reload, for connections accepted after. */
void	conn_tune_listeners(struct worker *w);
void	conn_close(struct conn *c, const char *reason);
void	conn_free(struct conn *c);
/* A new connection's fields, callbacks and HTTP parser on fd, in the
 * HTTP state, neither watched nor linked (0 or -ENOMEM; on failure the
 * caller frees c with http_end).  conn_link adds it to w->conns.  Used
 * by conn_new and by the fuzz targets' fake connections. */
int	conn_init(struct conn *c, struct worker *w, int fd,
	    enum listen_role role) __attribute__((warn_unused_result));
void	conn_link(struct conn *c);
/* Write what is queued: up to WK_FLUSH_BUDGET bytes a call, the rest
 * when epoll next reports the socket writable. */
void	conn_flush(struct conn *c);
/* Flush at the end of this dispatch round, coalescing what is queued
 * meanwhile into large writes. */
void	conn_flush_later(struct conn *c);
int	conn_send_ctrl(struct conn *c, const void *p, size_t n);
void	conn_read_again(struct conn *c);
void	conn_on_readable(struct conn *c);
/* The socket (TLS or plain) below any WebSocket framing: a count, 0 at
 * EOF, -EAGAIN or -errno. */
ssize_t	conn_sock_read(struct conn *c, uint8_t *p, size_t n);
ssize_t	conn_sock_write(struct conn *c, const uint8_t *p, size_t n);

/* ws.c: WebSocket DERP (PROTOCOL.md 2.7) */
/* Answer the upgrade and start the session over WebSocket: 0, -EINVAL
 * (bad Sec-WebSocket-Key: nothing sent, the caller answers 400) or
 * -ENOMEM. */
int	ws_start(struct conn *c, const char *key, const char *protocols,
	    bool not_ideal);
/* conn_read/conn_write of a WebSocket connection: the DERP byte stream
 * in and out of binary messages.  ws_write(c, NULL, 0) flushes frames
 * of the WebSocket layer's own (pong, close). */
ssize_t	ws_read(struct conn *c, uint8_t *p, size_t n);
ssize_t	ws_write(struct conn *c, const uint8_t *p, size_t n);
bool	ws_want_write(const struct conn *c);
void	ws_close(struct conn *c);	/* from conn_close */
void	ws_free(struct conn *c);	/* NULL-safe */

/* http.c */
struct http_req;
int	http_begin(struct conn *c);
void	http_end(struct conn *c);
/* Consume bytes in c->in; may switch c to ST_HELLO. */
void	http_input(struct conn *c);

/* session.c: DERP */
void	session_start(struct conn *c, bool fast_start, bool not_ideal);
void	session_input(struct conn *c);
void	session_end(struct conn *c);
/* Admission passed: register c and send ServerInfo. */
void	session_admitted(struct conn *c);
void	session_keepalive(struct loop_timer *t);
int	session_fill(struct conn *c);	/* move queued packets into out */
void	session_restarting(struct conn *c);
uint8_t	session_flags(const struct conn *c);	/* PeerPresent flags */
void	session_watchers_present(struct worker *w,
	    const uint8_t key[DERP_KEY_LEN], const uint8_t ip16[16],
	    uint16_t port, uint8_t flags);
/* A packet from a sibling worker's ring, for a client here. */
void	session_deliver(struct worker *w, const uint8_t dst[DERP_KEY_LEN],
	    const uint8_t src[DERP_KEY_LEN], const uint8_t *pkt, size_t len);

/* watch.c: a new watcher's first presence list, in bounded steps.
 * watch_start sends the first step and continues on later turns;
 * watch_more sends up to budget more keys (tests), true when the list
 * is complete; watch_writable after c's writes drained its buffers;
 * watch_stop (session_end) drops the walk.  start: 0 or -ENOMEM. */
int	watch_start(struct conn *c);
bool	watch_more(struct conn *c, size_t budget);
void	watch_writable(struct conn *c);
void	watch_stop(struct conn *c);

/* node.c: node-wide presence (bus) and sibling packets (rings) */
struct worker_env;
int	node_init(struct worker *w, const struct worker_env *env);
void	node_fini(struct worker *w);
void	node_publish(struct worker *w, const struct conn *c, int ev);
/* ClosePeer reaches the key's connections on every sibling too. */
void	node_close_key(struct worker *w, const uint8_t key[DERP_KEY_LEN]);
int	node_send(struct worker *w, int sib, const uint8_t dst[DERP_KEY_LEN],
	    const uint8_t src[DERP_KEY_LEN], const uint8_t *pkt, size_t len);
/* Each round: deliver sibling packets (before the flush), then ring
 * doorbells and raise the sleep flags (after it). */
void	node_drain(struct worker *w);
void	node_after(struct worker *w);
/* Deliver up to NODE_RING_BUDGET records (a few ms of work at most)
 * from sibling sib's ring; records of a bad type or length are skipped
 * and counted, an inconsistent ring is emptied and counted.  true when
 * the budget ran out first. */
struct ring_ref;
#define NODE_RING_BUDGET	512
bool	node_ring_drain(struct worker *w, struct ring_ref r, int sib);
bool	node_synced(const struct worker *w);
/* Sibling `dead` is gone: drop its clients now, resync its successor. */
void	node_worker_down(struct worker *w, int dead);
/* Bus snapshots for siblings are served NODE_SNAP_STEP connections per
 * loop turn; node_snapshot_step serves up to budget more of each, true
 * when none is left; node_forget before c leaves w->conns. */
#define NODE_SNAP_STEP	256
bool	node_snapshot_step(struct worker *w, size_t budget);
void	node_forget(struct worker *w, const struct conn *c);
void	worker_check_ready(struct worker *w);
/* Registry callbacks: key left the node / tell one receiver. */
void	session_peer_left(struct worker *w, const uint8_t key[DERP_KEY_LEN]);
void	session_notify_gone(struct conn *to, const uint8_t key[DERP_KEY_LEN]);

/* registry.c */
struct registry	*registry_new(void);
void		 registry_free(struct registry *r);
struct peer	*registry_get(struct registry *r, const uint8_t key[32]);
size_t		 registry_count(const struct registry *r);
/* Keys known only through mesh links (no connection on this node). */
size_t		 registry_mesh_only(const struct registry *r);
/* Connections node-wide: local plus those reported by siblings. */
size_t		 registry_node_conns(const struct registry *r);
/* Add c to key's set; returns the set's size after. */
int		 registry_add(struct worker *w, struct conn *c);
void		 registry_remove(struct worker *w, struct conn *c);
struct conn	*registry_active(const struct peer *p);
/* Connections of the key node-wide (local + sibling workers; not those
 * of a dead or resynchronised sibling that wait to be reaped). */
size_t		 registry_nconns(const struct registry *r,
		    const struct peer *p);
/* Where a packet for p goes: -1 with *local set (or NULL: nowhere
 * active), or the sibling worker holding the node-wide target. */
int		 registry_route(const struct registry *r, const struct peer *p,
		    struct conn **local);
/* The local connection a sibling's packet for p is delivered to. */
struct conn	*registry_local_target(const struct registry *r,
		    const struct peer *p);
/* A frame arrived from c; true when c became the node-wide target and
 * siblings must be told (BUS_ACTIVE). */
bool		 registry_note_activity(struct worker *w, struct conn *c);
/* Sibling presence, from the bus.  add: 1 new (or back before its
 * leftover was reaped), 0 updated, -ENOMEM, -EINVAL (worker >= 256). */
struct bus_client;
int		 registry_remote_add(struct worker *w,
		    const struct bus_client *bc);
void		 registry_remote_del(struct worker *w,
		    const struct bus_client *bc);
void		 registry_remote_active(struct worker *w,
		    const struct bus_client *bc);
/* A resync of sibling `worker` begins: what the snapshot does not
 * confirm (add) before the sweep goes then.  The sweep (all: the
 * sibling died) takes those entries out of routing at once and arms
 * the reap; both are O(1). */
void		 registry_remote_mark(struct worker *w, int worker);
void		 registry_remote_sweep(struct worker *w, int worker, bool all);
/* Mesh forwarders (PROTOCOL.md 6.4): link idx reaches key. */
int		 registry_fwd_add(struct worker *w,
		    const uint8_t key[DERP_KEY_LEN], int idx);
void		 registry_fwd_del(struct worker *w,
		    const uint8_t key[DERP_KEY_LEN], int idx);
/* Link idx went down: its forwarders stop routing at once, and go over
 * later turns (keys it announces again meanwhile stay). */
void		 registry_fwd_clear(struct worker *w, int idx);
/* The mesh link to forward p's packets through, or -1. */
int		 registry_forwarder(const struct registry *r,
		    const struct peer *p);
/* Remove up to budget more entries left by sweeps (each a remote) and
 * visit up to that many peers of forwarder clears; PeerGone goes out
 * for each key that leaves.  true when no work is left.  A 1 ms timer
 * runs REGISTRY_REAP_STEP a turn; tests call it directly. */
#define REGISTRY_REAP_STEP	1024
bool		 registry_reap(struct worker *w, size_t budget);
/* The keys present node-wide in steps (a watcher's first list): a
 * cursor starts at the oldest key; keys added later are reached too,
 * one removed before it is reached is skipped.  Each step calls fn for
 * up to budget more keys, those present with their target's address
 * and flags; true when the end is reached. */
typedef void	(*registry_present_fn)(void *arg,
		    const uint8_t key[DERP_KEY_LEN], const uint8_t ip16[16],
		    uint16_t port, uint8_t flags);
struct reg_cursor;
struct reg_cursor *registry_cursor_new(struct registry *r);
void		 registry_cursor_free(struct registry *r,
		    struct reg_cursor *k);
bool		 registry_cursor_present(struct registry *r,
		    struct reg_cursor *k, size_t budget,
		    registry_present_fn fn, void *arg);
void		 registry_note_saw(struct worker *w, struct conn *dst,
		    struct peer *src);
/* The same, by source key (a sibling's packet): cached per dst. */
void		 registry_note_saw_key(struct worker *w, struct conn *dst,
		    const uint8_t src[DERP_KEY_LEN]);
void		 registry_forget_saw(struct conn *c);
/* Close every conn of key (ClosePeer). */
void		 registry_close_key(struct worker *w, const uint8_t key[32]);

/* traffic.c: /debug/traffic (node-wide) and the periodic dump */
int	traffic_init(struct worker *w);
void	traffic_fini(struct worker *w);	/* flushes the dump */
void	traffic_reload(struct worker *w);	/* after w->cfg changed */
void	traffic_http(struct conn *c);	/* GET /debug/traffic, allowed */
/* c is closing: its final dump line; a waiting query is dropped. */
void	traffic_conn_closed(struct conn *c);
/* Before c leaves w->conns: the dump's walk moves past it. */
void	traffic_forget(struct worker *w, const struct conn *c);
/* Sibling `to` asked for this worker's table (node.c, bus callback):
 * answered over as many loop turns as the walk takes. */
void	traffic_answer(struct worker *w, int to, uint32_t req);
void	traffic_on_data(struct worker *w, int sib, uint32_t req,
	    const uint8_t *p, size_t n, bool last);
/* node.c: ask the siblings; returns how many were asked. */
int	node_traffic_request(struct worker *w, uint32_t req);
int	node_traffic_reply(struct worker *w, int to, uint32_t req,
	    const void *p, size_t n, bool last);
/* registry.c: distinct sources c currently receives from. */
size_t	registry_saw_count(const struct conn *c);
/* http.c: queue a whole debug response on c, with the security
 * headers; extra (at most 512 bytes of header lines) may be NULL. */
void	http_respond_debug(struct conn *c, int status, const char *reason,
	    const char *ctype, const char *extra, const char *body,
	    size_t blen);
/* The same with a body built in a buffer, which it takes (and leaves
 * empty): queued without a copy when nothing else waits on c. */
void	http_respond_debug_take(struct conn *c, int status,
	    const char *reason, const char *ctype, const char *extra,
	    struct bbuf *body);

/* tls.c */
/* The handshake finished: hand the record layer to tlsrec (c->ssl is
 * then freed and NULL, c->rec set) when TLS 1.3 allows it. */
void	tls_offload(struct conn *c);
/* tls.record_layer "kernel": which suites kTLS takes (before the
 * sandbox: the probe binds a loopback socket); logs the outcome. */
void	tls_kernel_probe(struct worker *w);
void	tls_conn_end(struct conn *c);	/* conn_free: drop rec state */
/* conn_close: close_notify (RFC 8446 6.1) on a connection past its
 * handshake whose peer is not gone; one non-blocking attempt. */
void	tls_close_notify(struct conn *c);
SSL_CTX	*tls_ctx_new(const struct config *cfg, const uint8_t pub[32],
	    char *err, size_t errlen);
/* The leaf's notAfter (Unix time), 0 if unknown. */
time_t	tls_ctx_not_after(SSL_CTX *ctx);
/* The leaf's subject and issuer CNs ("" if none), for logs. */
void	tls_ctx_describe(SSL_CTX *ctx, char *subject, char *issuer,
	    size_t len);
/* Why a handshake failed, from SSL_get_error(), the first queued
 * OpenSSL error (ERR_peek_error()) and errno. */
enum tls_fail tls_fail_classify(int ssl_error, unsigned long err,
	    int sys_errno);

/* certwatch.c: reload the certificate when its files change (inotify,
 * debounced), refuse a bad one, expiry gauge.  Identities are taken
 * before a load so a change racing it is never mistaken as loaded. */
struct cert_ident {
	uint64_t	 v[2][5];	/* cert, key: dev ino size mtime ctime */
};
void	cert_ident_get(const struct config *cfg, struct cert_ident *id);
/* After the first context is built; watching per tls.watch. */
int	certwatch_start(struct worker *w, const struct cert_ident *id);
/* After SIGHUP installed a new context built from files seen as id. */
void	certwatch_loaded(struct worker *w, const struct cert_ident *id);
void	certwatch_stop(struct worker *w);

/* metrics.c */
void	metrics_snapshot(struct worker *w, struct metrics *out);
/* membuf.c: count the DERP connections holding buffers into w->m, at
 * most MEMBUF_STEP per loop turn; the gauges change once a scan has
 * covered every connection.  membuf_scan starts one (no-op while one
 * runs); membuf_step counts up to budget more, true when done (tests
 * call it directly); membuf_forget before c leaves w->conns. */
#define MEMBUF_STEP	256
void	membuf_scan(struct worker *w);
bool	membuf_step(struct worker *w, size_t budget);
void	membuf_forget(struct worker *w, const struct conn *c);
void	membuf_stop(struct worker *w);

/* pool (worker.c) */
struct pkt	*pkt_alloc(struct worker *w, size_t frame_len);
void		 pkt_free(struct worker *w, struct pkt *p);

#endif

/*
 * Relay counters, named and labelled as Go derper's /debug/varz
 * (PROTOCOL.md 8.9), and their Prometheus text rendering.  Plain
 * structs so that a node-wide view can sum several workers' copies.
 */
#ifndef WORKER_METRICS_H
#define WORKER_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/loop.h"

enum drop_reason {
	DROP_UNKNOWN_DEST,
	DROP_UNKNOWN_DEST_ON_FWD,
	DROP_GONE_DISCONNECTED,
	DROP_QUEUE_HEAD,
	DROP_QUEUE_TAIL,
	DROP_WRITE_ERROR,
	DROP_DUP_CLIENT,
	DROP_QUEUE_FULL,	/* mesh link queue full (derpd) */
	DROP_NREASONS
};

enum pkt_kind {
	KIND_DISCO,
	KIND_OTHER,
	KIND_N
};

/* Why a TLS handshake failed (derpd_tls_handshake_failures{reason}). */
enum tls_fail {
	TLS_FAIL_TIMEOUT,	/* handshake deadline passed */
	TLS_FAIL_EOF,		/* client closed or reset mid-handshake */
	TLS_FAIL_SNI,		/* SNI names another host */
	TLS_FAIL_VERSION,	/* no common protocol version */
	TLS_FAIL_CIPHER,	/* no common cipher, group or sigalg */
	TLS_FAIL_NOT_TLS,	/* bytes that are not a TLS record */
	TLS_FAIL_PEER_ALERT,	/* client aborted with an alert (e.g. its
				 * verdict on our certificate) */
	TLS_FAIL_OTHER,
	TLS_FAIL_N
};

/* Every field is a uint64_t (metrics_snapshot sums them as an array). */
struct metrics {
	uint64_t	accepts;
	uint64_t	current_connections;
	uint64_t	current_home_connections;
	uint64_t	current_notideal_connections;
	uint64_t	clients_local;
	uint64_t	clients_total;
	uint64_t	current_dup_client_keys;
	uint64_t	current_dup_client_conns;
	uint64_t	total_dup_client_conns;
	uint64_t	bytes_received;
	uint64_t	bytes_sent;
	uint64_t	packets_received;
	uint64_t	packets_sent;
	uint64_t	packets_received_kind[KIND_N];
	uint64_t	packets_dropped[DROP_NREASONS][KIND_N];
	uint64_t	bytes_dropped[DROP_NREASONS][KIND_N];
	uint64_t	unknown_frames;
	uint64_t	home_moves_in;
	uint64_t	home_moves_out;
	uint64_t	got_ping;
	uint64_t	sent_pong;
	uint64_t	peer_gone_disconnected_frames;
	uint64_t	peer_gone_not_here_frames;
	uint64_t	packets_forwarded_out;
	uint64_t	packets_forwarded_in;
	uint64_t	sclient_write_timeouts;
	uint64_t	watchers;
	uint64_t	avg_queue_us;		/* EMA, microseconds */
	uint64_t	websocket_accepts;
	uint64_t	tls_handshake_failures[TLS_FAIL_N];
	uint64_t	http_requests;
	uint64_t	conns_closed_error;
	uint64_t	stun_success;
	uint64_t	stun_not_stun;
	uint64_t	ring_drops;		/* sibling ring full */
	uint64_t	ring_in;		/* packets from siblings */
	uint64_t	ring_out;
	uint64_t	ring_bad;		/* bad type or length, skipped */
	uint64_t	ring_resets;		/* inconsistent ring dropped */
	uint64_t	ring_doorbells;		/* sibling woken (eventfd) */
	uint64_t	ring_wakeups;		/* woken by a sibling */
	uint64_t	bus_resyncs;
	uint64_t	bus_gaps;
	uint64_t	bus_replayed;		/* deltas applied after a snapshot */
	uint64_t	bus_pending_dropped;	/* held deltas lost: buffer full */
	uint64_t	respawns;		/* supervisor slot */
	uint64_t	node_keys;		/* this worker's node-wide view */
	uint64_t	node_conns;
	uint64_t	packet_forwarder_delete_other_value;
	uint64_t	mesh_links_up;
	uint64_t	accepts_rejected;	/* accept rate limiter */
	uint64_t	accepts_rejected_ip;	/* per-IP cap */
	uint64_t	rate_limit_waits;	/* receive rate pauses */
	uint64_t	tls_accepted;
	uint64_t	traffic_dump_lines;	/* traffic.c */
	uint64_t	traffic_dump_early_flushes;
	uint64_t	traffic_dump_errors;
	/* /bootstrap-dns (PROTOCOL.md 8.5) */
	uint64_t	bootdns_requests;
	uint64_t	bootdns_pub_hits;
	uint64_t	bootdns_pub_misses;
	uint64_t	bootdns_unpub_hits;
	uint64_t	bootdns_unpub_misses;
	uint64_t	bootdns_unpub_pct_misses;
	uint64_t	bootdns_queried;	/* names remembered (set) */
	uint64_t	workers;		/* configured (snapshot only) */
	/* certificates (worker/certwatch.c); reloads count per worker */
	uint64_t	tls_cert_reloads_ok;
	uint64_t	tls_cert_reloads_refused;
	uint64_t	tls_cert_not_after;	/* gauge, Unix s; min of
						 * the workers' */
	uint64_t	acme_challenges_served;
	/* admission control (admit.c) */
	uint64_t	admission_requests;	/* asked the controller */
	uint64_t	admission_allowed;	/* it said Allow:true */
	uint64_t	admission_denied;	/* it said Allow:false */
	uint64_t	admission_errors;	/* non-200, bad body, failure */
	uint64_t	admission_timeouts;	/* of which timed out */
	uint64_t	admission_fail_open;	/* admitted by fail_open */
	uint64_t	admission_overflow;	/* too many in flight */
	uint64_t	admission_inflight;
	uint64_t	admission_list_refused;	/* deny / allow file */
	uint64_t	clients_refused_max;	/* derp.max_clients */
	/* membuf.c: DERP connections holding a buffer, as of the last
	 * scan (each beat); an idle connection holds none. */
	uint64_t	conn_buf_in;		/* partial frame */
	uint64_t	conn_buf_out;		/* unwritten bytes */
	uint64_t	conn_buf_ctrl;		/* queued control frames */
	uint64_t	conn_buf_http;		/* request state kept */
	uint64_t	conn_buf_scans;
	/* registry.c: leftovers of dead or resynchronised siblings and
	 * broken mesh links, removed after they stopped routing */
	uint64_t	registry_reaped;
	uint64_t	registry_reap_steps;	/* turns that did it */
	/* registry.c: keys that left having been known only through mesh
	 * links: no PeerGone to watchers, never told of them */
	uint64_t	registry_mesh_gone;
	/* tls.c, tlsrec.c: the record layer after TLS handshakes */
	uint64_t	tls_rec_offloaded;	/* derpd frames the records */
	uint64_t	tls_rec_tls12;		/* TLS 1.2: OpenSSL keeps it */
	uint64_t	tls_rec_other;		/* another reason, or off */
	uint64_t	tls_rec_kernel;		/* kernel TLS frames them */
	uint64_t	tls_key_updates;	/* KeyUpdates received */
	uint64_t	tls_key_updates_sent;	/* our own */
	/* loop.c: the worker's loop turns (max_ns: the longest of any) */
	struct loop_turns loop_turns;
};

/* Render in Prometheus text format; returns bytes written (truncated at
 * cap, NUL-terminated). */
size_t	metrics_render(const struct metrics *m, char *out, size_t cap);
/* The reason label of derpd_tls_handshake_failures. */
const char *metrics_tls_fail_name(enum tls_fail f);
/* Per-worker series (one slot per worker); appends, returns new length. */
size_t	metrics_render_workers(const struct metrics *slots, int n, char *out,
	    size_t len, size_t cap);

#endif

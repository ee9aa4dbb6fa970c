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
	uint64_t	tls_handshake_failures;
	uint64_t	http_requests;
	uint64_t	conns_closed_error;
	uint64_t	stun_success;
	uint64_t	stun_not_stun;
	uint64_t	ring_drops;		/* sibling ring full */
	uint64_t	ring_in;		/* packets from siblings */
	uint64_t	ring_out;
	uint64_t	bus_resyncs;
	uint64_t	bus_gaps;
	uint64_t	respawns;		/* supervisor slot */
	uint64_t	node_keys;		/* this worker's node-wide view */
	uint64_t	node_conns;
	uint64_t	packet_forwarder_delete_other_value;
	uint64_t	mesh_links_up;
	uint64_t	accepts_rejected;	/* accept rate limiter */
	uint64_t	accepts_rejected_ip;	/* per-IP cap */
	uint64_t	rate_limit_waits;	/* receive rate pauses */
	uint64_t	tls_accepted;
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
};

/* Render in Prometheus text format; returns bytes written (truncated at
 * cap, NUL-terminated). */
size_t	metrics_render(const struct metrics *m, char *out, size_t cap);
/* Per-worker series (one slot per worker); appends, returns new length. */
size_t	metrics_render_workers(const struct metrics *slots, int n, char *out,
	    size_t len, size_t cap);

#endif

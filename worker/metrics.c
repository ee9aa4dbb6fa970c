/*
 * Prometheus text rendering of struct metrics with Go derper's names,
 * types and labels (PROTOCOL.md 8.9); derpd-only series use derpd_.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "worker/wk.h"

struct out {
	char	*p;
	size_t	 cap, len;
};

static void
put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
put(struct out *o, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	if (o->len >= o->cap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len += (size_t)n;
	if (o->len >= o->cap)
		o->len = o->cap - 1;
}

/* HELP text of every series (promtool wants one; Prometheus shows it).
 * Kept apart from the series tables so that adding a series is one
 * line there and one here; the Prometheus integration test fails on a
 * series without help. */
static const struct {
	const char	*name, *help;
} helps[] = {
	{ "derp_accepts", "Connections that entered the DERP handshake." },
	{ "derp_current_connections", "Registered DERP connections, "
	    "duplicates counted individually." },
	{ "derp_current_home_connections", "Connections whose last "
	    "NotePreferred was true." },
	{ "derp_current_notideal_connections", "Connections that sent "
	    "Ideal-Node." },
	{ "derp_clients_total", "Keys known node-wide." },
	{ "derp_clients_local", "Distinct keys connected to this node." },
	{ "derp_clients_remote", "Keys reachable only through the mesh." },
	{ "derp_current_dup_client_keys", "Keys with two or more local "
	    "connections." },
	{ "derp_current_dup_client_conns", "Connections of keys with two or "
	    "more local connections." },
	{ "derp_total_dup_client_conns", "Duplicate connections ever "
	    "accepted." },
	{ "derp_bytes_received", "SendPacket payload bytes received." },
	{ "derp_bytes_sent", "RecvPacket payload bytes written." },
	{ "derp_packets_received", "SendPacket frames received." },
	{ "derp_packets_sent", "RecvPacket frames written." },
	{ "derp_packets_received_kind", "SendPacket frames received, by "
	    "kind." },
	{ "derp_packets_dropped", "Packets dropped, by reason and kind." },
	{ "derp_bytes_dropped", "Bytes of dropped packets, by reason and "
	    "kind." },
	{ "derp_unknown_frames", "Unknown frames (never counted, as Go)." },
	{ "derp_home_moves_in", "Clients that made this node their home." },
	{ "derp_home_moves_out", "Clients that moved their home away." },
	{ "derp_got_ping", "Ping frames received." },
	{ "derp_sent_pong", "Pong frames queued." },
	{ "derp_peer_gone_disconnected_frames", "PeerGone(Disconnected) "
	    "frames written." },
	{ "derp_peer_gone_not_here_frames", "PeerGone(NotHere) frames "
	    "written." },
	{ "derp_packets_forwarded_out", "SendPackets handed to a mesh "
	    "forwarder." },
	{ "derp_packets_forwarded_in", "ForwardPacket frames received." },
	{ "derp_sclient_write_timeouts", "Connections closed by a write "
	    "deadline." },
	{ "derp_watchers", "Current WatchConns watchers." },
	{ "derp_websocket_accepts", "WebSocket DERP connections." },
	{ "derp_packet_forwarder_delete_other_value", "Forwarder removals "
	    "that did not match the current forwarder." },
	{ "derp_rate_limit_per_client_waited", "Pauses of a client's reads "
	    "by its receive rate limit." },
	{ "derp_average_queue_duration_ms", "Moving average of the time a "
	    "packet waits in a send queue, in milliseconds." },
	{ "tls_listener_accepted_connections", "Connections let through by "
	    "the accept limiter." },
	{ "tls_listener_rejected_connections", "Connections closed by the "
	    "accept rate limiter." },
	{ "stun_requests", "STUN requests, by disposition." },
	{ "bootstrap_dns_requests", "Requests to /bootstrap-dns." },
	{ "bootstrap_dns_published_hits", "?q= names published and "
	    "resolved." },
	{ "bootstrap_dns_published_misses", "?q= names published but not "
	    "resolved." },
	{ "bootstrap_dns_unpublished_hits", "?q= names unpublished and "
	    "resolved." },
	{ "bootstrap_dns_unpublished_misses", "?q= names neither published "
	    "nor answered." },
	{ "bootstrap_dns_unpublished_percent_misses", "?q= unpublished names "
	    "withheld by their rollout percentage." },
	{ "bootstrap_dns_queried_domains", "Distinct ?q= names remembered "
	    "(per worker, summed)." },
	{ "derpd_tls_handshake_failures", "TLS handshakes that failed, by "
	    "reason." },
	{ "derpd_tls_cert_reloads", "Certificate reloads after a file change, "
	    "per worker, by result." },
	{ "derpd_tls_cert_not_after_seconds", "Expiry (Unix time) of the "
	    "served certificate; the earliest over the workers." },
	{ "derpd_acme_challenges_served", "ACME HTTP-01 challenge files "
	    "served from acme.webroot." },
	{ "derpd_tls_record_offload", "Completed TLS handshakes by who frames "
	    "the records next: derpd (offloaded), kernel TLS (kernel), OpenSSL "
	    "for TLS 1.2, or OpenSSL for another reason (other)." },
	{ "derpd_tls_key_updates_received", "TLS 1.3 KeyUpdate messages "
	    "received on offloaded connections." },
	{ "derpd_tls_key_updates_sent", "TLS 1.3 KeyUpdate messages derpd's "
	    "record layer sent (tls.key_update_records)." },
	{ "derpd_loop_turn_seconds", "Event loop turns of the workers by how "
	    "long each took (from the wait's return to the end of its work): "
	    "every packet waits for the turn it arrived in." },
	{ "derpd_loop_turn_max_seconds", "The longest event loop turn of any "
	    "worker since it started." },
	{ "derpd_http_requests", "HTTP requests served." },
	{ "derpd_ring_packets_out", "Packets sent to sibling workers." },
	{ "derpd_ring_packets_in", "Packets received from sibling workers." },
	{ "derpd_ring_doorbells", "Doorbells rung to wake a sleeping sibling "
	    "worker for its ring (one per sleep at most, not per packet)." },
	{ "derpd_ring_wakeups", "Times this node's workers were woken by a "
	    "sibling's doorbell." },
	{ "derpd_ring_drops", "Packets dropped because a sibling ring was "
	    "full." },
	{ "derpd_ring_bad_records", "Ring records from a sibling with a bad "
	    "type or length, skipped." },
	{ "derpd_ring_resets", "Sibling rings found inconsistent and "
	    "emptied." },
	{ "derpd_bus_resyncs", "Presence bus snapshot resynchronisations." },
	{ "derpd_bus_gaps", "Presence bus sequence gaps seen." },
	{ "derpd_bus_replayed", "Presence deltas held behind a snapshot and "
	    "applied after it." },
	{ "derpd_bus_pending_dropped", "Presence deltas dropped because the "
	    "buffer behind a snapshot was full (a resync follows)." },
	{ "derpd_worker_respawns", "Workers respawned by the supervisor." },
	{ "derpd_workers", "Configured worker processes." },
	{ "derpd_mesh_links_up", "Mesh links up, summed over workers (each "
	    "worker links to every peer)." },
	{ "derpd_accepts_rejected_per_ip", "Connections closed by the "
	    "per-IP cap." },
	{ "derpd_traffic_dump_lines", "Lines written to traffic.dump_file." },
	{ "derpd_traffic_dump_early_flushes", "Traffic dump periods written "
	    "early because traffic.max_entries was reached." },
	{ "derpd_traffic_dump_errors", "Traffic dump writes that failed." },
	{ "derpd_admission_requests", "Admission requests sent to "
	    "admission.url." },
	{ "derpd_admission_allowed", "Clients the admission controller "
	    "allowed." },
	{ "derpd_admission_denied", "Clients the admission controller "
	    "denied." },
	{ "derpd_admission_errors", "Admission requests that failed (non-200, "
	    "bad body or transport)." },
	{ "derpd_admission_timeouts", "Admission requests that timed out." },
	{ "derpd_admission_fail_open", "Clients admitted because the "
	    "controller was unreachable and fail_open is set." },
	{ "derpd_admission_overflow", "Admissions decided by fail_open "
	    "because max_in_flight requests were pending." },
	{ "derpd_admission_in_flight", "Admission requests pending." },
	{ "derpd_admission_list_refused", "Clients refused by the deny or "
	    "allow key list." },
	{ "derpd_clients_refused_max", "Clients refused by derp.max_clients." },
	{ "derpd_worker_node_keys", "Keys in each worker's node-wide view." },
	{ "derpd_worker_node_conns", "Connections in each worker's node-wide "
	    "view." },
	{ "derpd_worker_connections", "Registered DERP connections on each "
	    "worker." },
	{ "derpd_conn_buffers_in", "DERP connections holding a partial "
	    "frame (read buffer), at the last scan." },
	{ "derpd_conn_buffers_out", "DERP connections holding unwritten "
	    "bytes (write buffer), at the last scan." },
	{ "derpd_conn_buffers_ctrl", "DERP connections holding queued "
	    "control frames, at the last scan." },
	{ "derpd_conn_buffers_http", "DERP connections still holding HTTP "
	    "request state, at the last scan." },
	{ "derpd_conn_buffer_scans", "Scans of the connections' buffers "
	    "(each worker, once a second)." },
	{ "derpd_registry_reaped", "Entries of dead or resynchronised "
	    "sibling workers and broken mesh links removed from a worker's "
	    "table after they stopped routing." },
	{ "derpd_registry_reap_steps", "Loop turns that removed them, a "
	    "bounded number each." },
	{ "derpd_registry_mesh_gone", "Keys known only through mesh links "
	    "that left a worker's table (watchers get no PeerGone for "
	    "them: they were never told of them)." },
};

/* HELP and TYPE lines of a series (type NULL: untyped, as Go). */
static void
head(struct out *o, const char *name, const char *type)
{
	size_t	i;

	for (i = 0; i < sizeof(helps) / sizeof(helps[0]); i++)
		if (strcmp(helps[i].name, name) == 0) {
			put(o, "# HELP %s %s\n", name, helps[i].help);
			break;
		}
	if (type != NULL)
		put(o, "# TYPE %s %s\n", name, type);
}

static void
metric(struct out *o, const char *name, const char *type, uint64_t v)
{
	head(o, name, type);
	put(o, "%s %" PRIu64 "\n", name, v);
}

struct series {
	const char	*name, *type;
	size_t		 off;
};

#define S(n, t, f)	{ n, t, offsetof(struct metrics, f) }

/* Go derper's unlabelled series, in its order (PROTOCOL.md 8.9). */
static const struct series plain[] = {
	S("derp_accepts", "counter", accepts),
	S("derp_current_connections", "gauge", current_connections),
	S("derp_current_home_connections", "gauge", current_home_connections),
	S("derp_current_notideal_connections", "gauge",
	    current_notideal_connections),
	S("derp_clients_total", "gauge", clients_total),
	S("derp_clients_local", "gauge", clients_local),
	S("derp_current_dup_client_keys", "gauge", current_dup_client_keys),
	S("derp_current_dup_client_conns", "gauge", current_dup_client_conns),
	S("derp_total_dup_client_conns", "counter", total_dup_client_conns),
	S("derp_bytes_received", "counter", bytes_received),
	S("derp_bytes_sent", "counter", bytes_sent),
	S("derp_packets_received", "counter", packets_received),
	S("derp_packets_sent", "counter", packets_sent),
	S("derp_unknown_frames", "counter", unknown_frames),
	S("derp_home_moves_in", "counter", home_moves_in),
	S("derp_home_moves_out", "counter", home_moves_out),
	S("derp_got_ping", "counter", got_ping),
	S("derp_sent_pong", "counter", sent_pong),
	S("derp_peer_gone_disconnected_frames", "counter",
	    peer_gone_disconnected_frames),
	S("derp_peer_gone_not_here_frames", "counter",
	    peer_gone_not_here_frames),
	S("derp_packets_forwarded_out", "counter", packets_forwarded_out),
	S("derp_packets_forwarded_in", "counter", packets_forwarded_in),
	S("derp_sclient_write_timeouts", "counter", sclient_write_timeouts),
	S("derp_watchers", "gauge", watchers),
	S("derp_websocket_accepts", "counter", websocket_accepts),
	S("derp_packet_forwarder_delete_other_value", "counter",
	    packet_forwarder_delete_other_value),
	S("derp_rate_limit_per_client_waited", "counter", rate_limit_waits),
	S("tls_listener_accepted_connections", "counter", tls_accepted),
	S("tls_listener_rejected_connections", "counter", accepts_rejected),
};

/* Go's bootstrap_dns group (counter_ prefix: all counters). */
static const struct series bootdns[] = {
	S("bootstrap_dns_requests", "counter", bootdns_requests),
	S("bootstrap_dns_published_hits", "counter", bootdns_pub_hits),
	S("bootstrap_dns_published_misses", "counter", bootdns_pub_misses),
	S("bootstrap_dns_unpublished_hits", "counter", bootdns_unpub_hits),
	S("bootstrap_dns_unpublished_misses", "counter", bootdns_unpub_misses),
	S("bootstrap_dns_unpublished_percent_misses", "counter",
	    bootdns_unpub_pct_misses),
	S("bootstrap_dns_queried_domains", "counter", bootdns_queried),
};

/* derpd's own series. */
static const struct series derpd[] = {
	S("derpd_http_requests", "counter", http_requests),
	S("derpd_ring_packets_out", "counter", ring_out),
	S("derpd_ring_packets_in", "counter", ring_in),
	S("derpd_ring_drops", "counter", ring_drops),
	S("derpd_ring_bad_records", "counter", ring_bad),
	S("derpd_ring_resets", "counter", ring_resets),
	S("derpd_ring_doorbells", "counter", ring_doorbells),
	S("derpd_ring_wakeups", "counter", ring_wakeups),
	S("derpd_bus_resyncs", "counter", bus_resyncs),
	S("derpd_bus_gaps", "counter", bus_gaps),
	S("derpd_bus_replayed", "counter", bus_replayed),
	S("derpd_bus_pending_dropped", "counter", bus_pending_dropped),
	S("derpd_worker_respawns", "counter", respawns),
	S("derpd_workers", "gauge", workers),
	S("derpd_mesh_links_up", "gauge", mesh_links_up),
	S("derpd_conn_buffers_in", "gauge", conn_buf_in),
	S("derpd_conn_buffers_out", "gauge", conn_buf_out),
	S("derpd_conn_buffers_ctrl", "gauge", conn_buf_ctrl),
	S("derpd_conn_buffers_http", "gauge", conn_buf_http),
	S("derpd_conn_buffer_scans", "counter", conn_buf_scans),
	S("derpd_registry_reaped", "counter", registry_reaped),
	S("derpd_registry_reap_steps", "counter", registry_reap_steps),
	S("derpd_registry_mesh_gone", "counter", registry_mesh_gone),
	S("derpd_accepts_rejected_per_ip", "counter", accepts_rejected_ip),
	S("derpd_traffic_dump_lines", "counter", traffic_dump_lines),
	S("derpd_traffic_dump_early_flushes", "counter",
	    traffic_dump_early_flushes),
	S("derpd_traffic_dump_errors", "counter", traffic_dump_errors),
	S("derpd_tls_cert_not_after_seconds", "gauge", tls_cert_not_after),
	S("derpd_acme_challenges_served", "counter", acme_challenges_served),
	S("derpd_admission_requests", "counter", admission_requests),
	S("derpd_admission_allowed", "counter", admission_allowed),
	S("derpd_admission_denied", "counter", admission_denied),
	S("derpd_admission_errors", "counter", admission_errors),
	S("derpd_admission_timeouts", "counter", admission_timeouts),
	S("derpd_admission_fail_open", "counter", admission_fail_open),
	S("derpd_admission_overflow", "counter", admission_overflow),
	S("derpd_admission_in_flight", "gauge", admission_inflight),
	S("derpd_admission_list_refused", "counter", admission_list_refused),
	S("derpd_clients_refused_max", "counter", clients_refused_max),
	S("derpd_tls_key_updates_received", "counter", tls_key_updates),
	S("derpd_tls_key_updates_sent", "counter", tls_key_updates_sent),
};

#undef S

static void
series(struct out *o, const struct series *t, size_t n,
    const struct metrics *m)
{
	size_t	i;

	for (i = 0; i < n; i++)
		metric(o, t[i].name, t[i].type, *(const uint64_t *)(const void *)
		    ((const char *)m + t[i].off));
}

static const char *const drop_names[DROP_NREASONS] = {
	"unknown_dest", "unknown_dest_on_fwd", "gone_disconnected",
	"queue_head", "queue_tail", "write_error", "dup_client", "queue_full",
};
static const char *const kind_names[KIND_N] = { "disco", "other" };
static const char *const tls_fail_names[TLS_FAIL_N] = {
	"timeout", "eof", "sni", "version", "cipher", "not_tls", "peer_alert",
	"other",
};

const char *
metrics_tls_fail_name(enum tls_fail f)
{
	return f < TLS_FAIL_N ? tls_fail_names[f] : "other";
}

/* A Prometheus histogram: cumulative buckets, le in seconds. */
static void
render_turns(struct out *o, const struct loop_turns *t)
{
	uint64_t	cum = 0;
	size_t		i;

	head(o, "derpd_loop_turn_seconds", "histogram");
	for (i = 0; i < LOOP_TURN_BUCKETS - 1; i++) {
		cum += t->bucket[i];
		put(o, "derpd_loop_turn_seconds_bucket{le=\"%" PRIu64 ".%06"
		    PRIu64 "\"} %" PRIu64 "\n", loop_turn_bounds_us[i] /
		    1000000, loop_turn_bounds_us[i] % 1000000, cum);
	}
	cum += t->bucket[LOOP_TURN_BUCKETS - 1];
	put(o, "derpd_loop_turn_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n"
	    "derpd_loop_turn_seconds_sum %" PRIu64 ".%09" PRIu64 "\n"
	    "derpd_loop_turn_seconds_count %" PRIu64 "\n", cum,
	    t->sum_ns / 1000000000, t->sum_ns % 1000000000, cum);
	head(o, "derpd_loop_turn_max_seconds", "gauge");
	put(o, "derpd_loop_turn_max_seconds %" PRIu64 ".%09" PRIu64 "\n",
	    t->max_ns / 1000000000, t->max_ns % 1000000000);
}

size_t
metrics_render(const struct metrics *m, char *buf, size_t cap)
{
	struct out	o = { buf, cap, 0 };
	int		r, k;

	if (cap == 0)
		return 0;
	buf[0] = '\0';
	series(&o, plain, sizeof(plain) / sizeof(plain[0]), m);
	metric(&o, "derp_clients_remote", "gauge",
	    m->clients_total - m->clients_local);
	head(&o, "derp_packets_received_kind", "counter");
	for (k = 0; k < KIND_N; k++)
		put(&o, "derp_packets_received_kind{kind=\"%s\"} %" PRIu64 "\n",
		    kind_names[k], m->packets_received_kind[k]);
	head(&o, "derp_packets_dropped", "counter");
	for (r = 0; r < DROP_NREASONS; r++)
		for (k = 0; k < KIND_N; k++)
			put(&o, "derp_packets_dropped{reason=\"%s\",kind=\"%s\"}"
			    " %" PRIu64 "\n", drop_names[r], kind_names[k],
			    m->packets_dropped[r][k]);
	head(&o, "derp_bytes_dropped", "counter");
	for (r = 0; r < DROP_NREASONS; r++)
		for (k = 0; k < KIND_N; k++)
			put(&o, "derp_bytes_dropped{reason=\"%s\",kind=\"%s\"}"
			    " %" PRIu64 "\n", drop_names[r], kind_names[k],
			    m->bytes_dropped[r][k]);
	head(&o, "derp_average_queue_duration_ms", NULL);
	put(&o, "derp_average_queue_duration_ms %" PRIu64 ".%03" PRIu64 "\n",
	    m->avg_queue_us / 1000, m->avg_queue_us % 1000);
	head(&o, "stun_requests", "counter");
	put(&o, "stun_requests{disposition=\"success\"} %" PRIu64 "\n"
	    "stun_requests{disposition=\"not_stun\"} %" PRIu64 "\n",
	    m->stun_success, m->stun_not_stun);
	series(&o, bootdns, sizeof(bootdns) / sizeof(bootdns[0]), m);
	series(&o, derpd, sizeof(derpd) / sizeof(derpd[0]), m);
	head(&o, "derpd_tls_handshake_failures", "counter");
	for (r = 0; r < TLS_FAIL_N; r++)
		put(&o, "derpd_tls_handshake_failures{reason=\"%s\"} %" PRIu64
		    "\n", tls_fail_names[r], m->tls_handshake_failures[r]);
	head(&o, "derpd_tls_record_offload", "counter");
	put(&o, "derpd_tls_record_offload{result=\"offloaded\"} %" PRIu64 "\n"
	    "derpd_tls_record_offload{result=\"kernel\"} %" PRIu64 "\n"
	    "derpd_tls_record_offload{result=\"tls12\"} %" PRIu64 "\n"
	    "derpd_tls_record_offload{result=\"other\"} %" PRIu64 "\n",
	    m->tls_rec_offloaded, m->tls_rec_kernel, m->tls_rec_tls12,
	    m->tls_rec_other);
	head(&o, "derpd_tls_cert_reloads", "counter");
	put(&o, "derpd_tls_cert_reloads{result=\"ok\"} %" PRIu64 "\n"
	    "derpd_tls_cert_reloads{result=\"refused\"} %" PRIu64 "\n",
	    m->tls_cert_reloads_ok, m->tls_cert_reloads_refused);
	render_turns(&o, &m->loop_turns);
	return o.len;
}

size_t
metrics_render_workers(const struct metrics *slots, int n, char *buf,
    size_t len, size_t cap)
{
	struct out	o = { buf, cap, len };
	int		i;

	head(&o, "derpd_worker_node_keys", "gauge");
	for (i = 0; i < n; i++)
		put(&o, "derpd_worker_node_keys{worker=\"%d\"} %" PRIu64 "\n",
		    i, slots[i].node_keys);
	head(&o, "derpd_worker_node_conns", "gauge");
	for (i = 0; i < n; i++)
		put(&o, "derpd_worker_node_conns{worker=\"%d\"} %" PRIu64 "\n",
		    i, slots[i].node_conns);
	head(&o, "derpd_worker_connections", "gauge");
	for (i = 0; i < n; i++)
		put(&o, "derpd_worker_connections{worker=\"%d\"} %" PRIu64
		    "\n", i, slots[i].current_connections);
	return o.len;
}

void
metrics_snapshot(struct worker *w, struct metrics *out)
{
	const uint64_t	*src;
	uint64_t	*dst = (uint64_t *)out;
	size_t		 k, i, nf = sizeof(*out) / sizeof(uint64_t);
	int		 slots = w->m_all != NULL ? w->nworkers + 1 : 1;

	/* Every field is a uint64_t: sum the slots field by field.  The
	 * node-wide key counts come from this worker's own table, which
	 * already covers the whole node. */
	memset(out, 0, sizeof(*out));
	for (i = 0; i < (size_t)slots; i++) {
		src = (const uint64_t *)(w->m_all != NULL ? &w->m_all[i] : w->m);
		for (k = 0; k < nf; k++)
			dst[k] += src[k];
	}
	/* A gauge, not a sum: the earliest expiry any worker serves. */
	out->tls_cert_not_after = 0;
	for (i = 0; i < (size_t)slots; i++) {
		uint64_t	na = w->m_all != NULL ?
				    w->m_all[i].tls_cert_not_after :
				    w->m->tls_cert_not_after;

		if (na != 0 && (out->tls_cert_not_after == 0 ||
		    na < out->tls_cert_not_after))
			out->tls_cert_not_after = na;
	}
	/* The longest turn of any worker, not their sum. */
	out->loop_turns.max_ns = 0;
	for (i = 0; i < (size_t)slots; i++) {
		uint64_t	mx = w->m_all != NULL ?
				    w->m_all[i].loop_turns.max_ns :
				    w->m->loop_turns.max_ns;

		if (mx > out->loop_turns.max_ns)
			out->loop_turns.max_ns = mx;
	}
	/* As Go: total is every key known, local those with a
	 * connection on this node, remote (rendered) the difference. */
	out->clients_total = registry_count(w->reg);
	out->clients_local = out->clients_total -
	    registry_mesh_only(w->reg);
	out->avg_queue_us = w->m->avg_queue_us;
	out->workers = (uint64_t)w->nworkers;
}

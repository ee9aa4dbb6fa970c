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

static void
metric(struct out *o, const char *name, const char *type, uint64_t v)
{
	put(o, "# TYPE %s %s\n%s %" PRIu64 "\n", name, type, name, v);
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

/* derpd's own series. */
static const struct series derpd[] = {
	S("derpd_tls_handshake_failures", "counter", tls_handshake_failures),
	S("derpd_http_requests", "counter", http_requests),
	S("derpd_ring_packets_out", "counter", ring_out),
	S("derpd_ring_packets_in", "counter", ring_in),
	S("derpd_ring_drops", "counter", ring_drops),
	S("derpd_bus_resyncs", "counter", bus_resyncs),
	S("derpd_bus_gaps", "counter", bus_gaps),
	S("derpd_worker_respawns", "counter", respawns),
	S("derpd_mesh_links_up", "gauge", mesh_links_up),
	S("derpd_accepts_rejected_per_ip", "counter", accepts_rejected_ip),
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
	put(&o, "# TYPE derp_packets_received_kind counter\n");
	for (k = 0; k < KIND_N; k++)
		put(&o, "derp_packets_received_kind{kind=\"%s\"} %" PRIu64 "\n",
		    kind_names[k], m->packets_received_kind[k]);
	put(&o, "# TYPE derp_packets_dropped counter\n");
	for (r = 0; r < DROP_NREASONS; r++)
		for (k = 0; k < KIND_N; k++)
			put(&o, "derp_packets_dropped{reason=\"%s\",kind=\"%s\"}"
			    " %" PRIu64 "\n", drop_names[r], kind_names[k],
			    m->packets_dropped[r][k]);
	put(&o, "# TYPE derp_bytes_dropped counter\n");
	for (r = 0; r < DROP_NREASONS; r++)
		for (k = 0; k < KIND_N; k++)
			put(&o, "derp_bytes_dropped{reason=\"%s\",kind=\"%s\"}"
			    " %" PRIu64 "\n", drop_names[r], kind_names[k],
			    m->bytes_dropped[r][k]);
	put(&o, "derp_average_queue_duration_ms %" PRIu64 ".%03" PRIu64 "\n",
	    m->avg_queue_us / 1000, m->avg_queue_us % 1000);
	put(&o, "# TYPE stun_requests counter\n"
	    "stun_requests{disposition=\"success\"} %" PRIu64 "\n"
	    "stun_requests{disposition=\"not_stun\"} %" PRIu64 "\n",
	    m->stun_success, m->stun_not_stun);
	series(&o, derpd, sizeof(derpd) / sizeof(derpd[0]), m);
	return o.len;
}

size_t
metrics_render_workers(const struct metrics *slots, int n, char *buf,
    size_t len, size_t cap)
{
	struct out	o = { buf, cap, len };
	int		i;

	put(&o, "# TYPE derpd_worker_node_keys gauge\n");
	for (i = 0; i < n; i++)
		put(&o, "derpd_worker_node_keys{worker=\"%d\"} %" PRIu64 "\n",
		    i, slots[i].node_keys);
	put(&o, "# TYPE derpd_worker_node_conns gauge\n");
	for (i = 0; i < n; i++)
		put(&o, "derpd_worker_node_conns{worker=\"%d\"} %" PRIu64 "\n",
		    i, slots[i].node_conns);
	put(&o, "# TYPE derpd_worker_connections gauge\n");
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
	out->clients_local = registry_count(w->reg);
	out->clients_total = out->clients_local;
	out->avg_queue_us = w->m->avg_queue_us;
}

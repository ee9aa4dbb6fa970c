/*
 * Prometheus text rendering of struct metrics with Go derper's names,
 * types and labels (PROTOCOL.md 8.9); derpd-only series use derpd_.
 */
#include <inttypes.h>
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

static const char *const drop_names[DROP_NREASONS] = {
	"unknown_dest", "unknown_dest_on_fwd", "gone_disconnected",
	"queue_head", "queue_tail", "write_error", "dup_client",
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
	metric(&o, "derp_accepts", "counter", m->accepts);
	metric(&o, "derp_current_connections", "gauge",
	    m->current_connections);
	metric(&o, "derp_current_home_connections", "gauge",
	    m->current_home_connections);
	metric(&o, "derp_current_notideal_connections", "gauge",
	    m->current_notideal_connections);
	metric(&o, "derp_clients_total", "gauge", m->clients_total);
	metric(&o, "derp_clients_local", "gauge", m->clients_local);
	metric(&o, "derp_clients_remote", "gauge",
	    m->clients_total - m->clients_local);
	metric(&o, "derp_current_dup_client_keys", "gauge",
	    m->current_dup_client_keys);
	metric(&o, "derp_current_dup_client_conns", "gauge",
	    m->current_dup_client_conns);
	metric(&o, "derp_total_dup_client_conns", "counter",
	    m->total_dup_client_conns);
	metric(&o, "derp_bytes_received", "counter", m->bytes_received);
	metric(&o, "derp_bytes_sent", "counter", m->bytes_sent);
	metric(&o, "derp_packets_received", "counter", m->packets_received);
	metric(&o, "derp_packets_sent", "counter", m->packets_sent);
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
	metric(&o, "derp_unknown_frames", "counter", m->unknown_frames);
	metric(&o, "derp_home_moves_in", "counter", m->home_moves_in);
	metric(&o, "derp_home_moves_out", "counter", m->home_moves_out);
	metric(&o, "derp_got_ping", "counter", m->got_ping);
	metric(&o, "derp_sent_pong", "counter", m->sent_pong);
	metric(&o, "derp_peer_gone_disconnected_frames", "counter",
	    m->peer_gone_disconnected_frames);
	metric(&o, "derp_peer_gone_not_here_frames", "counter",
	    m->peer_gone_not_here_frames);
	metric(&o, "derp_packets_forwarded_out", "counter",
	    m->packets_forwarded_out);
	metric(&o, "derp_packets_forwarded_in", "counter",
	    m->packets_forwarded_in);
	metric(&o, "derp_sclient_write_timeouts", "counter",
	    m->sclient_write_timeouts);
	put(&o, "derp_average_queue_duration_ms %" PRIu64 ".%03" PRIu64 "\n",
	    m->avg_queue_us / 1000, m->avg_queue_us % 1000);
	metric(&o, "derp_watchers", "gauge", m->watchers);
	metric(&o, "derp_websocket_accepts", "counter", m->websocket_accepts);
	put(&o, "# TYPE stun_requests counter\n"
	    "stun_requests{disposition=\"success\"} %" PRIu64 "\n"
	    "stun_requests{disposition=\"not_stun\"} %" PRIu64 "\n",
	    m->stun_success, m->stun_not_stun);
	metric(&o, "derpd_tls_handshake_failures", "counter",
	    m->tls_handshake_failures);
	metric(&o, "derpd_http_requests", "counter", m->http_requests);
	metric(&o, "derpd_ring_packets_out", "counter", m->ring_out);
	metric(&o, "derpd_ring_packets_in", "counter", m->ring_in);
	metric(&o, "derpd_ring_drops", "counter", m->ring_drops);
	metric(&o, "derpd_bus_resyncs", "counter", m->bus_resyncs);
	metric(&o, "derpd_bus_gaps", "counter", m->bus_gaps);
	metric(&o, "derpd_worker_respawns", "counter", m->respawns);
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

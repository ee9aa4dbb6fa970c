/*
 * JSON-lines rendering of traffic counters (common/traffic.h).  Every
 * value is a number, a boolean, hex or an address we formatted
 * ourselves; the one configured string (a mesh peer's name) goes
 * through jansson so that it is always escaped.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "common/traffic.h"
#include "derp/key.h"

void
traffic_sub(struct traffic_ctr *d, const struct traffic_ctr *now,
    const struct traffic_ctr *then)
{
	d->recv_packets = now->recv_packets - then->recv_packets;
	d->recv_bytes = now->recv_bytes - then->recv_bytes;
	d->recv_wire = now->recv_wire - then->recv_wire;
	d->sent_packets = now->sent_packets - then->sent_packets;
	d->sent_bytes = now->sent_bytes - then->sent_bytes;
	d->sent_wire = now->sent_wire - then->sent_wire;
	d->drops = now->drops - then->drops;
}

bool
traffic_equal(const struct traffic_ctr *a, const struct traffic_ctr *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

struct out {
	char	*p;
	size_t	 cap, len;
	bool	 full;
};

static void
put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
put(struct out *o, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	if (o->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len) {
		o->full = true;
		return;
	}
	o->len += (size_t)n;
}

static void
counters(struct out *o, const struct traffic_ctr *t)
{
	put(o, "\"RecvBytes\":%" PRIu64 ",\"RecvPackets\":%" PRIu64
	    ",\"SentBytes\":%" PRIu64 ",\"SentPackets\":%" PRIu64
	    ",\"RecvWireBytes\":%" PRIu64 ",\"SentWireBytes\":%" PRIu64
	    ",\"Drops\":%" PRIu64, t->recv_bytes, t->recv_packets,
	    t->sent_bytes, t->sent_packets, t->recv_wire, t->sent_wire,
	    t->drops);
}

static void
time_field(struct out *o, int64_t ms)
{
	struct tm	tm;
	time_t		s = (time_t)(ms / 1000);
	char		buf[32];

	if (gmtime_r(&s, &tm) == NULL ||
	    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		o->full = true;
		return;
	}
	put(o, "\"Time\":\"%s.%03dZ\",", buf, (int)(ms % 1000));
}

static void
peer_field(struct out *o, const char *peer)
{
	json_t	*s = json_string(peer);
	char	*enc = s != NULL ? json_dumps(s, JSON_ENCODE_ANY) : NULL;

	/* Invalid UTF-8 in the configured name: say so, never raw. */
	put(o, ",\"Peer\":%s", enc != NULL ? enc : "\"?\"");
	free(enc);
	json_decref(s);
}

ssize_t
traffic_format(char *buf, size_t cap, const struct traffic_rec *r)
{
	struct out	o = { buf, cap, 0, false };
	char		hex[DERP_KEY_HEX_LEN + 1];

	if (cap == 0)
		return -ENOSPC;
	put(&o, "{");
	if (r->time_ms >= 0)
		time_field(&o, r->time_ms);
	if (r->key != NULL) {
		derp_key_format_hex(hex, r->key);
		put(&o, "\"Key\":\"nodekey:%s\",", hex);
	}
	if (r->link >= 0)
		put(&o, "\"Link\":%d,", r->link);
	else
		put(&o, "\"Conn\":%" PRIu64 ",", r->conn);
	put(&o, "\"Worker\":%d,\"Addr\":\"%s\",\"Mesh\":%s,", r->worker,
	    r->addr != NULL ? r->addr : "", r->mesh ? "true" : "false");
	counters(&o, &r->tot);
	put(&o, ",\"Sent\":%" PRIu64 ",\"Recv\":%" PRIu64
	    ",\"ConnectedSec\":%" PRIu64, r->tot.sent_wire, r->tot.recv_wire,
	    r->connected_s);
	if (r->link < 0)
		put(&o, ",\"UniqueSenders\":%" PRIu64, r->unique_senders);
	if (r->link >= 0) {
		put(&o, ",\"Up\":%s", r->up ? "true" : "false");
		if (r->peer != NULL)
			peer_field(&o, r->peer);
	}
	if (r->delta != NULL) {
		put(&o, ",\"Closed\":%s,\"Delta\":{", r->closed ? "true" :
		    "false");
		counters(&o, r->delta);
		put(&o, "}");
	}
	put(&o, "}\n");
	if (o.full)
		return -ENOSPC;
	return (ssize_t)o.len;
}

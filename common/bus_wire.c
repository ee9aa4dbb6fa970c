/*
 * The presence bus's message codec: one message (version, type,
 * publisher, epoch, sequence number and the type's fields, in network
 * byte order through the wire cursor) and a batch of deltas.  No
 * sockets and no state: common/bus.c owns those.
 */
#include <errno.h>
#include <string.h>

#include "common/bus.h"
#include "common/bus_wire.h"
#include "derp/wire.h"

/* 64-bit fields travel as two big-endian halves, high first. */
static uint64_t
get_u64(struct wire *w)
{
	uint64_t	hi = wire_u32(w);

	return hi << 32 | wire_u32(w);
}

static void
put_u64(struct wire_out *o, uint64_t v)
{
	wire_put_u32(o, (uint32_t)(v >> 32));
	wire_put_u32(o, (uint32_t)v);
}

size_t
bus_encode(uint8_t *out, const struct bus_msg *m)
{
	struct wire_out	o;

	wire_out_init(&o, out, MSG_MAX);
	wire_put_u8(&o, BUS_VERSION);
	wire_put_u8(&o, m->type);
	wire_put_u16(&o, m->pub);
	put_u64(&o, m->epoch);
	put_u64(&o, m->seq);
	switch (m->type) {
	case M_ADD:
	case M_SNAP_ADD:
	case M_DEL:
	case M_ACTIVE:
	case M_CLOSE:
		wire_put_bytes(&o, m->c.key, 32);
		wire_put_u16(&o, m->c.worker);
		put_u64(&o, m->c.conn_id);
		put_u64(&o, m->c.stamp);
		wire_put_u8(&o, m->c.flags);
		wire_put_bytes(&o, m->c.ip16, 16);
		wire_put_u16(&o, m->c.port);
		break;
	case M_SNAP_REQ:
		wire_put_u16(&o, m->worker);
		wire_put_u32(&o, m->req);
		break;
	case M_SNAP_END:
	case M_TRAFFIC_REQ:
		wire_put_u32(&o, m->req);
		break;
	default:
		break;
	}
	if (m->type == M_SNAP_ADD)
		wire_put_u32(&o, m->req);
	return o.err ? 0 : o.off;
}

int
bus_decode(const uint8_t *p, size_t len, struct bus_msg *m)
{
	struct wire	w;

	memset(m, 0, sizeof(*m));
	wire_init(&w, p, len);
	if (wire_u8(&w) != BUS_VERSION)
		return -EPROTO;
	m->type = wire_u8(&w);
	m->pub = wire_u16(&w);
	m->epoch = get_u64(&w);
	m->seq = get_u64(&w);
	switch (m->type) {
	case M_ADD:
	case M_SNAP_ADD:
	case M_DEL:
	case M_ACTIVE:
	case M_CLOSE:
		wire_copy(&w, m->c.key, 32);
		m->c.worker = wire_u16(&w);
		m->c.conn_id = get_u64(&w);
		m->c.stamp = get_u64(&w);
		m->c.flags = wire_u8(&w);
		wire_copy(&w, m->c.ip16, 16);
		m->c.port = wire_u16(&w);
		if (m->type == M_SNAP_ADD)
			m->req = wire_u32(&w);
		break;
	case M_SNAP_REQ:
		m->worker = wire_u16(&w);
		m->req = wire_u32(&w);
		break;
	case M_SNAP_END:
	case M_TRAFFIC_REQ:
		m->req = wire_u32(&w);
		break;
	case M_TRAFFIC_DATA:
		m->req = wire_u32(&w);
		m->last = wire_u8(&w) != 0;
		m->dlen = wire_u32(&w);
		if (w.err || m->dlen > BUS_TRAFFIC_CHUNK ||
		    m->dlen != wire_left(&w))
			return -EPROTO;
		m->data = p + (len - m->dlen);
		return 0;
	case M_HEARTBEAT:
		break;
	default:
		return -EPROTO;
	}
	if (w.err || wire_left(&w) != 0)
		return -EPROTO;
	return 0;
}

int
bus_decode_batch(const uint8_t *p, size_t len,
    void (*fn)(void *, const struct bus_msg *), void *arg)
{
	struct bus_msg	m;
	size_t		off = 2, l;
	int		n = 0;

	if (len < 2 || p[0] != BUS_VERSION || p[1] != M_BATCH)
		return -EPROTO;
	while (off < len) {
		l = p[off++];
		if (l > len - off || bus_decode(p + off, l, &m) < 0 ||
		    (m.type != M_ADD && m.type != M_DEL && m.type != M_ACTIVE &&
		    m.type != M_CLOSE))
			return -EPROTO;
		fn(arg, &m);
		n++;
		off += l;
	}
	return n;
}

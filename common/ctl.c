/*
 * Control-channel codec and non-blocking send/receive.  Any malformed
 * message is a bug on one side: the receiver reports -EPROTO and the
 * supervisor restarts that worker.
 */
#include <errno.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "common/ctl.h"
#include "derp/wire.h"

size_t
ctl_encode(uint8_t out[CTL_MAX], const struct ctl_msg *m)
{
	struct wire_out	o;
	bool		has_worker = m->type == CTL_WORKER_DOWN ||
			    m->type == CTL_STUN_ADOPT ||
			    m->type == CTL_STUN_RELEASE;
	uint16_t	len = m->type == CTL_HEARTBEAT ? 8 :
			    has_worker ? 2 : 0;

	wire_out_init(&o, out, CTL_MAX);
	wire_put_u16(&o, m->type);
	wire_put_u16(&o, len);
	if (m->type == CTL_HEARTBEAT) {
		wire_put_u32(&o, m->clients);
		wire_put_u32(&o, m->conns);
	} else if (has_worker) {
		wire_put_u16(&o, m->worker);
	}
	return o.off;
}

int
ctl_decode(const uint8_t *p, size_t len, struct ctl_msg *m)
{
	struct wire	w;
	uint16_t	plen;

	wire_init(&w, p, len);
	m->type = wire_u16(&w);
	plen = wire_u16(&w);
	m->clients = m->conns = 0;
	m->worker = 0;
	if (w.err || plen != wire_left(&w))
		return -EPROTO;
	switch (m->type) {
	case CTL_READY:
		return plen == 0 ? 0 : -EPROTO;
	case CTL_HEARTBEAT:
		if (plen != 8)
			return -EPROTO;
		m->clients = wire_u32(&w);
		m->conns = wire_u32(&w);
		return w.err ? -EPROTO : 0;
	case CTL_WORKER_DOWN:
	case CTL_STUN_ADOPT:
	case CTL_STUN_RELEASE:
		if (plen != 2)
			return -EPROTO;
		m->worker = wire_u16(&w);
		return w.err ? -EPROTO : 0;
	default:
		return -EPROTO;
	}
}

int
ctl_send(int fd, const struct ctl_msg *m)
{
	uint8_t	buf[CTL_MAX];
	size_t	n = ctl_encode(buf, m);

	if (send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)n)
		return errno == EAGAIN ? -EAGAIN : -errno;
	return 0;
}

int
ctl_recv(int fd, struct ctl_msg *m)
{
	uint8_t	buf[CTL_MAX];
	ssize_t	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
	if (n == 0)
		return -ECONNRESET;
	return ctl_decode(buf, (size_t)n, m);
}

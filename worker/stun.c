/*
 * STUN responder: bounded batch of datagrams per wakeup, validation and
 * reply building by derp/stun.c, replies sent from the address the
 * request arrived on (IP_PKTINFO / IPV6_PKTINFO) so multi-homed hosts
 * answer correctly.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/log.h"
#include "derp/stun.h"
#include "worker/stun.h"
#include "worker/wk.h"

#define STUN_PER_WAKEUP	64

static void
stun_read(struct loop_io *io, unsigned events)
{
	struct worker		*w = io->arg;
	uint8_t			 buf[2048], out[STUN_RESPONSE_MAX];
	uint8_t			 txid[STUN_TXID_LEN];
	union {
		struct cmsghdr	 h;
		uint8_t		 b[CMSG_SPACE(sizeof(struct in6_pktinfo))];
	}			 cm;
	struct sockaddr_storage	 ss;
	struct iovec		 iov;
	struct msghdr		 mh;
	struct cmsghdr		*ch;
	ssize_t			 n, rn;
	int			 i;

	(void)events;
	for (i = 0; i < STUN_PER_WAKEUP; i++) {
		iov.iov_base = buf;
		iov.iov_len = sizeof(buf);
		memset(&mh, 0, sizeof(mh));
		mh.msg_name = &ss;
		mh.msg_namelen = sizeof(ss);
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cm.b;
		mh.msg_controllen = sizeof(cm.b);
		if ((n = recvmsg(io->fd, &mh, MSG_DONTWAIT)) < 0)
			return;		/* EAGAIN, or a transient error */
		if (stun_parse_request(buf, (size_t)n, w->cfg.stun_any_client,
		    txid) < 0) {
			w->m->stun_not_stun++;
			continue;
		}
		if ((rn = stun_build_response(out, txid,
		    (struct sockaddr *)&ss)) < 0) {
			w->m->stun_not_stun++;
			continue;
		}
		/* Reply with the arrival address as source. */
		for (ch = CMSG_FIRSTHDR(&mh); ch != NULL;
		    ch = CMSG_NXTHDR(&mh, ch))
			if (ch->cmsg_level == IPPROTO_IP &&
			    ch->cmsg_type == IP_PKTINFO) {
				struct in_pktinfo	*pi = (void *)CMSG_DATA(ch);

				pi->ipi_spec_dst = pi->ipi_addr;
				pi->ipi_ifindex = 0;
			}
		iov.iov_base = out;
		iov.iov_len = (size_t)rn;
		mh.msg_flags = 0;
		if (sendmsg(io->fd, &mh, MSG_DONTWAIT) == rn)
			w->m->stun_success++;
	}
}

static void
want_pktinfo(int fd)
{
	int	on = 1;

	/* One of the two applies, depending on the socket family. */
	(void)setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof(on));
	(void)setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof(on));
}

int
stun_init(struct worker *w, int fd)
{
	int	i;

	loop_io_init(&w->lis_stun, fd, stun_read, w);
	if (w->stun_fds != NULL) {
		w->stun_adopted = calloc((size_t)w->nworkers,
		    sizeof(*w->stun_adopted));
		if (w->stun_adopted == NULL)
			return -ENOMEM;
		for (i = 0; i < w->nworkers; i++)
			loop_io_init(&w->stun_adopted[i], -1, stun_read, w);
	}
	if (fd < 0)
		return 0;
	want_pktinfo(fd);
	return loop_io_add(w->loop, &w->lis_stun, LOOP_IN);
}

void
stun_adopt(struct worker *w, int worker, bool on)
{
	struct loop_io	*io;
	int		 fd, rc;

	if (w->stun_adopted == NULL || worker < 0 || worker >= w->nworkers ||
	    worker == w->id || (fd = w->stun_fds[worker]) < 0)
		return;
	io = &w->stun_adopted[worker];
	if (on && io->fd < 0) {
		want_pktinfo(fd);
		loop_io_init(io, fd, stun_read, w);
		if ((rc = loop_io_add(w->loop, io, LOOP_IN)) < 0) {
			log_warn("stun_adopt_failed", "sibling=%d err=%s",
			    worker, strerror(-rc));
			io->fd = -1;
			return;
		}
		log_info("stun_adopted", "sibling=%d", worker);
	} else if (!on && io->fd >= 0) {
		loop_io_del(w->loop, io);
		io->fd = -1;
		log_info("stun_released", "sibling=%d", worker);
	}
}

void
stun_fini(struct worker *w)
{
	int	i;

	if (w->lis_stun.fd >= 0 && w->loop != NULL)
		loop_io_del(w->loop, &w->lis_stun);
	for (i = 0; w->stun_adopted != NULL && i < w->nworkers; i++)
		stun_adopt(w, i, false);
	free(w->stun_adopted);
	w->stun_adopted = NULL;
}

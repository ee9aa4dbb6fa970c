/*
 * Supervisor <-> worker control messages over a SOCK_SEQPACKET pair:
 * { u16 type, u16 len } + payload in network byte order (STYLE.md 8).
 */
#ifndef COMMON_CTL_H
#define COMMON_CTL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum ctl_type {
	CTL_READY = 1,		/* w->s: loop running, accepting */
	CTL_HEARTBEAT = 2,	/* w->s: u32 clients, u32 conns */
	CTL_WORKER_DOWN = 3,	/* s->w: u16 worker that died */
	CTL_STUN_ADOPT = 4,	/* s->w: u16 worker whose STUN socket to
				 * serve while it is down */
	CTL_STUN_RELEASE = 5,	/* s->w: u16 worker serving its own again */
};

#define CTL_HDR_LEN	4
#define CTL_MAX		64

struct ctl_msg {
	uint16_t	type;
	uint32_t	clients;
	uint32_t	conns;
	uint16_t	worker;		/* WORKER_DOWN, STUN_ADOPT/RELEASE */
};

/* Encode into out[CTL_MAX]; returns the length. */
size_t	ctl_encode(uint8_t out[CTL_MAX], const struct ctl_msg *m);
/* 0, or -EPROTO for an unknown type or a length that does not match. */
int	ctl_decode(const uint8_t *p, size_t len, struct ctl_msg *m);
/* Non-blocking send / receive of one message: 0, -EAGAIN, -errno. */
int	ctl_send(int fd, const struct ctl_msg *m);
int	ctl_recv(int fd, struct ctl_msg *m);

#endif

/*
 * STUN service on the worker's UDP socket (PROTOCOL.md 7): every worker
 * reads the shared socket and answers binding requests itself.
 */
#ifndef WORKER_STUN_H
#define WORKER_STUN_H

#include <stdbool.h>

struct worker;

/* Register fd (or nothing when fd < 0); 0 or -errno. */
int	stun_init(struct worker *w, int fd);
void	stun_fini(struct worker *w);

/*
 * Serve (on) or stop serving sibling worker's STUN socket: while a
 * worker is down its socket stays in the SO_REUSEPORT group and keeps
 * its share of requests, so the supervisor has the live ones answer
 * them.  Out-of-range or own ids are ignored.
 */
void	stun_adopt(struct worker *w, int worker, bool on);

#endif

/*
 * STUN service on the worker's UDP socket (PROTOCOL.md 7): every worker
 * reads the shared socket and answers binding requests itself.
 */
#ifndef WORKER_STUN_H
#define WORKER_STUN_H

struct worker;

/* Register fd (or nothing when fd < 0); 0 or -errno. */
int	stun_init(struct worker *w, int fd);
void	stun_fini(struct worker *w);

#endif

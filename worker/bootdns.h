/*
 * /bootstrap-dns (PROTOCOL.md 8.5): the worker's cache of resolved
 * names, refreshed on the loop without blocking, and the answer to a
 * request.  The DNS reply parser is exported for its tests and fuzzer.
 */
#ifndef WORKER_BOOTDNS_H
#define WORKER_BOOTDNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct worker;
struct bootdns;

/* Resolve w->cfg's bootstrap_dns names now and every refresh_s after.
 * NULL with errno on failure. */
struct bootdns	*bootdns_new(struct worker *w);
/* Cancels what is in flight; NULL is a no-op. */
void		 bootdns_free(struct bootdns *bd);
/* w->cfg changed (SIGHUP): take the new lists and resolve at once; names
 * kept keep their cached answers until then. */
void		 bootdns_reload(struct bootdns *bd);
/*
 * Answer GET /bootstrap-dns from a client at ip16; query is the raw
 * text after '?' or NULL.  On success *body is malloc'd JSON (NULL with
 * *len 0 when nothing is resolved) and counters are updated.  0 or
 * -ENOMEM.
 */
int		 bootdns_answer(struct bootdns *bd, const char *query,
		    const uint8_t ip16[16], char **body, size_t *len)
		    __attribute__((warn_unused_result));
/*
 * Parse a DNS reply (untrusted bytes) to our TXT query `id` for qname.
 * 0: a definitive answer, *pct is the rollout percentage 0..100 (0 when
 * the name does not exist or holds no number in range); -EAGAIN: the
 * server failed (truncated, SERVFAIL, ...); -EPROTO: not a well-formed
 * reply to this query (ignore it, keep waiting).
 */
int		 bootdns_parse_txt(const uint8_t *msg, size_t len,
		    uint16_t id, const char *qname, int *pct)
		    __attribute__((warn_unused_result));
/* The rollout draw: deterministic per client IP (across workers and
 * restarts); true when ip16 falls inside pct percent. */
bool		 bootdns_rollout(const uint8_t ip16[16], int pct);

#endif

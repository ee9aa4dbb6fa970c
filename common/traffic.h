/*
 * Per-connection traffic counters (issue 5 item 6) and their JSON-lines
 * rendering for /debug/traffic and the periodic dump.  Pure: no I/O, no
 * clock, no allocation; the worker and the mesh links own the counters
 * and bump them without locks (one thread per worker).
 */
#ifndef COMMON_TRAFFIC_H
#define COMMON_TRAFFIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Seen from the server: "recv" is what the peer sent us. */
struct traffic_ctr {
	uint64_t	recv_packets;	/* SendPacket / ForwardPacket frames */
	uint64_t	recv_bytes;	/* their packet payloads */
	uint64_t	recv_wire;	/* every byte read (after TLS) */
	uint64_t	sent_packets;	/* RecvPacket / ForwardPacket frames */
	uint64_t	sent_bytes;	/* their packet payloads */
	uint64_t	sent_wire;	/* every byte written (before TLS) */
	uint64_t	drops;		/* packets for this peer dropped */
};

/* One line: a DERP connection (link < 0) or an outbound mesh link. */
struct traffic_rec {
	const uint8_t	*key;		/* 32 bytes; NULL: unknown yet */
	uint64_t	 conn;		/* connection id (link: 0) */
	int		 worker;
	int		 link;		/* mesh link index, or -1 */
	const char	*addr;		/* "ip:port", formatted by us */
	const char	*peer;		/* link: configured name (escaped) */
	bool		 mesh;		/* mesh peer (inbound) or link */
	bool		 up;		/* link: connected */
	bool		 closed;	/* dump: final line of a connection */
	uint64_t	 connected_s;
	uint64_t	 unique_senders; /* sources it currently hears */
	struct traffic_ctr tot;
	const struct traffic_ctr *delta; /* dump: since the last line */
	int64_t		 time_ms;	/* unix ms for "Time"; <0 = omit */
};

/* delta = now - then, field by field. */
void	traffic_sub(struct traffic_ctr *delta, const struct traffic_ctr *now,
	    const struct traffic_ctr *then);
bool	traffic_equal(const struct traffic_ctr *a,
	    const struct traffic_ctr *b);

/*
 * Render r as one JSON object and a newline into out[0..cap).  Returns
 * the length (without NUL), or -ENOSPC when it does not fit (nothing
 * useful is left in out).
 */
ssize_t	traffic_format(char *out, size_t cap, const struct traffic_rec *r)
	    __attribute__((warn_unused_result));

/* A line is never longer than this (a 255-byte peer name of control
 * characters, escaped, and every counter at UINT64_MAX). */
#define TRAFFIC_LINE_MAX	4096

#endif

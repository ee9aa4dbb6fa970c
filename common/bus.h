/*
 * The presence bus: how the workers of one node share which DERP clients
 * are connected where, over ZeroMQ ipc endpoints under the runtime
 * directory (DESIGN.md 3).  Broker-less clone pattern: every worker
 * publishes its own client ADD / DEL / ACTIVE events with a per-publisher
 * epoch and sequence number; every worker subscribes to all the others
 * (WORKER_DOWN comes from the supervisor over the control channel).  A joining or lagging subscriber
 * asks the publisher for a snapshot; a gap in sequence numbers, a new
 * epoch or a heartbeat ahead of what it has seen triggers a resync.
 * Control only: packets never cross the bus.
 */
#ifndef COMMON_BUS_H
#define COMMON_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bus;

struct bus_client {
	uint8_t		key[32];
	uint16_t	worker;
	uint64_t	conn_id;
	uint64_t	stamp;		/* last activity, CLOCK_MONOTONIC ns */
	uint8_t		flags;		/* PeerPresent flags */
	uint8_t		ip16[16];
	uint16_t	port;
};

enum bus_event {
	BUS_ADD,	/* a client connected on another worker */
	BUS_DEL,	/* it disconnected */
	BUS_ACTIVE,	/* it spoke (duplicate keys: last writer wins) */
	BUS_CLOSE,	/* a mesh peer asked to close every connection of key */
};

struct bus_callbacks {
	void	(*event)(void *arg, enum bus_event ev,
		    const struct bus_client *c);
	/* Snapshot of worker w begins: mark its entries stale; the
	 * snapshot's ADDs and the replayed deltas after it refresh them;
	 * at sync_end (after the last replayed delta: the view is w's
	 * now) the rest are gone.  A resync before that skips sync_end;
	 * sync_begin comes again. */
	void	(*sync_begin)(void *arg, int worker);
	void	(*sync_end)(void *arg, int worker);
	/* Worker w is gone: drop all of its entries now. */
	void	(*worker_down)(void *arg, int worker);
	/* Worker `to` asks for a snapshot: bus_snapshot_add() per local
	 * client, now or over later loop turns, then bus_snapshot_end().
	 * Called again when `to` asks again: the old one is void. */
	void	(*snapshot)(void *arg, struct bus *b, int to);
	/* Traffic query (/debug/traffic) from worker `to`: answer with
	 * bus_traffic_reply(), now or over later loop turns. */
	void	(*traffic_req)(void *arg, struct bus *b, int to, uint32_t req);
	/* A chunk of a sibling's answer; last ends that sibling's part. */
	void	(*traffic_data)(void *arg, int worker, uint32_t req,
		    const uint8_t *p, size_t n, bool last);
	void	*arg;
};

struct bus_stats {
	uint64_t	published, received, gaps, resyncs, snapshots_served;
	uint64_t	send_dropped, bad_messages;
	uint64_t	batches;	/* PUB messages carrying deltas */
	uint64_t	replayed;	/* deltas taken from pending */
	uint64_t	pending_dropped; /* a full pending buffer's, resynced */
};

/*
 * Open the bus for worker self (0..n-1).  Creates its own ZeroMQ
 * context: call after fork, in the worker.  NULL and errno on failure.
 */
struct bus	*bus_open(const char *runtime_dir, int self, int n,
		    const struct bus_callbacks *cb);
void		 bus_close(struct bus *b);
/* Remove stale endpoint files (supervisor, before the first fork). */
void		 bus_cleanup_dir(const char *runtime_dir, int n);

/* File descriptors to watch for readability (edge-triggered ZMQ_FDs);
 * returns the count written (at most max). */
int		 bus_fds(struct bus *b, int *fds, int max);
/* Drain everything readable; call on any bus fd wakeup and from a
 * periodic tick.  Also retries stalled snapshot requests, and replays
 * up to BUS_REPLAY_STEP of the deltas that arrived during a snapshot
 * (in order, with those arriving meanwhile behind them; the
 * publisher's sync_end after its last one). */
#define BUS_REPLAY_STEP	2048
void		 bus_process(struct bus *b);
/* True while deltas wait for replay: call bus_process() again on a
 * later loop turn, whether or not a bus fd wakes. */
bool		 bus_replaying(const struct bus *b);
/* The same for a wakeup of one of bus_fds(): drains only the socket
 * behind fd, unless a send or a resync since the last full pass may
 * have taken another socket's edge (then everything, as bus_process);
 * one replay step either way. */
void		 bus_process_fd(struct bus *b, int fd);
/* Once a second: heartbeat with the current sequence number. */
void		 bus_tick(struct bus *b);

/* Queue a delta; the queue goes out as one message at bus_flush() (the
 * worker's end of turn), before a heartbeat, or when BUS_BATCH_MAX
 * deltas wait.  0, or -errno when a send failed (a gap the subscribers
 * resync from). */
#define BUS_BATCH_MAX	64
int		 bus_publish(struct bus *b, enum bus_event ev,
		    const struct bus_client *c);
int		 bus_flush(struct bus *b);
/* Worker w died (the supervisor says so): drop its entries now
 * (worker_down callback) and resync with its successor. */
void		 bus_worker_down(struct bus *b, int w);
/* One local client into the snapshot being served to worker to.  0,
 * -ESRCH when none is (ended, replaced or abandoned: stop serving it),
 * or -errno when the send failed (the snapshot is abandoned; to asks
 * again).  Clients that come and go meanwhile need no care: the END
 * carries the sequence number of the request's arrival, and to replays
 * every event published since over what the snapshot gave it. */
int		 bus_snapshot_add(struct bus *b, int to,
		    const struct bus_client *c)
		    __attribute__((warn_unused_result));
int		 bus_snapshot_end(struct bus *b, int to);

/* Ask every sibling for its traffic table (/debug/traffic); returns
 * how many were asked.  Answers arrive through traffic_data. */
int		 bus_traffic_request(struct bus *b, uint32_t req);
/* One chunk (at most BUS_TRAFFIC_CHUNK bytes) of the answer to worker
 * to's query req.  0 or -errno (the requester times out). */
#define BUS_TRAFFIC_CHUNK	(60 * 1024)
int		 bus_traffic_reply(struct bus *b, int to, uint32_t req,
		    const void *p, size_t n, bool last);

const struct bus_stats *bus_stats(const struct bus *b);
/* True when every publisher has been synchronised at least once. */
bool		 bus_synced(const struct bus *b);

/* Message codec, exposed for the fuzzer.  0 or -EPROTO. */
struct bus_msg {
	uint8_t			type;
	uint16_t		pub;
	uint64_t		epoch, seq;
	uint16_t		worker;		/* SNAP_REQ */
	struct bus_client	c;
	uint32_t		req;		/* SNAP_*, TRAFFIC_* */
	bool			last;		/* TRAFFIC_DATA */
	const uint8_t		*data;		/* TRAFFIC_DATA, borrowed */
	size_t			dlen;
};
int		 bus_decode(const uint8_t *p, size_t len, struct bus_msg *m);
/* A batch of deltas (what bus_flush sends): each through fn in order.
 * The count, or -EPROTO for a malformed batch (fn saw the records
 * before the fault) or anything but a batch. */
int		 bus_decode_batch(const uint8_t *p, size_t len,
		    void (*fn)(void *, const struct bus_msg *), void *arg);

#endif

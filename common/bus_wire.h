/*
 * The presence bus's wire format, shared by common/bus.c and its codec
 * (common/bus_wire.c).  bus_decode() and bus_decode_batch(), which the
 * fuzzer drives, are declared in common/bus.h.
 */
#ifndef COMMON_BUS_WIRE_H
#define COMMON_BUS_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "common/bus.h"

#define BUS_VERSION	1
#define MSG_MAX		128	/* any message but TRAFFIC_DATA, encoded */

enum msg_type {
	M_ADD = 1, M_DEL, M_ACTIVE, M_HEARTBEAT, M_RESERVED5,
	M_SNAP_REQ, M_SNAP_ADD, M_SNAP_END, M_CLOSE,
	M_TRAFFIC_REQ, M_TRAFFIC_DATA,	/* /debug/traffic across workers */
	M_BATCH,			/* deltas: [u8 length, delta]... */
};

/* m into out (MSG_MAX bytes): the length, or 0 when it does not fit. */
size_t	bus_encode(uint8_t *out, const struct bus_msg *m);

#endif

/*
 * Disco detection (PROTOCOL.md 1.5): the server never decrypts disco, it
 * only routes it to a separate queue and answers PeerGone(NotHere).
 */
#ifndef DERP_DISCO_H
#define DERP_DISCO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DERP_DISCO_MAGIC	"TS\xF0\x9F\x92\xAC"
#define DERP_DISCO_MAGIC_LEN	6
#define DERP_DISCO_MIN_LEN	(6 + 32 + 24)

static inline bool
derp_looks_disco(const uint8_t *p, size_t len)
{
	return len >= DERP_DISCO_MIN_LEN && p[0] == 'T' && p[1] == 'S' &&
	    p[2] == 0xF0 && p[3] == 0x9F && p[4] == 0x92 && p[5] == 0xAC;
}

#endif

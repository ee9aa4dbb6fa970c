/*
 * Bounds-checked cursors for reading and writing big-endian wire data.
 * A read or write past the end sets a sticky error and turns every later
 * call into a no-op (reads return 0 / NULL), so a parser checks once.
 */
#ifndef DERP_WIRE_H
#define DERP_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wire {
	const uint8_t	*p;
	size_t		 len;
	size_t		 off;
	bool		 err;
};

struct wire_out {
	uint8_t		*p;
	size_t		 cap;
	size_t		 off;
	bool		 err;
};

void		 wire_init(struct wire *w, const uint8_t *p, size_t len);
uint8_t		 wire_u8(struct wire *w);
uint16_t	 wire_u16(struct wire *w);
uint32_t	 wire_u32(struct wire *w);
/* Borrow n bytes; NULL (and sticky error) if fewer remain. */
const uint8_t	*wire_bytes(struct wire *w, size_t n);
void		 wire_copy(struct wire *w, void *dst, size_t n);
size_t		 wire_left(const struct wire *w);

void		 wire_out_init(struct wire_out *o, uint8_t *p, size_t cap);
void		 wire_put_u8(struct wire_out *o, uint8_t v);
void		 wire_put_u16(struct wire_out *o, uint16_t v);
void		 wire_put_u32(struct wire_out *o, uint32_t v);
void		 wire_put_bytes(struct wire_out *o, const void *src, size_t n);

static inline uint32_t
wire_load_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline void
wire_store_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

#endif

/*
 * Bounds-checked big-endian cursors.  A short read or write sets a sticky
 * error; later calls do nothing, so parsers check once at the end.
 */
#include <string.h>

#include "derp/wire.h"

void
wire_init(struct wire *w, const uint8_t *p, size_t len)
{
	w->p = p;
	w->len = len;
	w->off = 0;
	w->err = false;
}

const uint8_t *
wire_bytes(struct wire *w, size_t n)
{
	const uint8_t	*p;

	if (w->err || w->len - w->off < n) {
		w->err = true;
		return NULL;
	}
	p = w->p + w->off;
	w->off += n;
	return p;
}

uint8_t
wire_u8(struct wire *w)
{
	const uint8_t	*p = wire_bytes(w, 1);

	return p ? p[0] : 0;
}

uint16_t
wire_u16(struct wire *w)
{
	const uint8_t	*p = wire_bytes(w, 2);

	return p ? (uint16_t)(p[0] << 8 | p[1]) : 0;
}

uint32_t
wire_u32(struct wire *w)
{
	const uint8_t	*p = wire_bytes(w, 4);

	return p ? wire_load_u32(p) : 0;
}

void
wire_copy(struct wire *w, void *dst, size_t n)
{
	const uint8_t	*p = wire_bytes(w, n);

	if (p != NULL)
		memcpy(dst, p, n);
	else
		memset(dst, 0, n);
}

size_t
wire_left(const struct wire *w)
{
	return w->err ? 0 : w->len - w->off;
}

void
wire_out_init(struct wire_out *o, uint8_t *p, size_t cap)
{
	o->p = p;
	o->cap = cap;
	o->off = 0;
	o->err = false;
}

void
wire_put_bytes(struct wire_out *o, const void *src, size_t n)
{
	if (o->err || o->cap - o->off < n) {
		o->err = true;
		return;
	}
	if (n > 0)
		memcpy(o->p + o->off, src, n);
	o->off += n;
}

void
wire_put_u8(struct wire_out *o, uint8_t v)
{
	wire_put_bytes(o, &v, 1);
}

void
wire_put_u16(struct wire_out *o, uint16_t v)
{
	uint8_t	b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	wire_put_bytes(o, b, 2);
}

void
wire_put_u32(struct wire_out *o, uint32_t v)
{
	uint8_t	b[4];

	wire_store_u32(b, v);
	wire_put_bytes(o, b, 4);
}

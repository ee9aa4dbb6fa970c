/*
 * Fuzz the TLS record layer's receive path (worker/tlsrec.c) with fixed
 * keys.  The first byte picks the mode: even, the rest are raw bytes off
 * the wire (stopped at the tag, or before); odd, the rest describe
 * records that the peer seals with the right keys, so the fuzzer reaches
 * the inner type, padding, alerts and KeyUpdate logic behind the tag.
 * Chunk sizes for the socket and the reader's room also come from the
 * input.  After the input, a write checks the state still seals.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "worker/tlsrec.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT	(256 * 1024)
#define MAX_SEALED	(32 * 1024)	/* keeps a run fast */
#define MAX_WRITES	64		/* socket writes per input, at most */
#define MAX_READS	256		/* and reads of the smallest room */

static struct tlsrec_pool	*pool;

static void
keys(struct tlsrec_keys *k, uint16_t suite, bool mirror)
{
	size_t	i;

	memset(k, 0, sizeof(*k));
	k->suite = suite;
	k->secret_len = suite == TLSREC_AES_256_GCM_SHA384 ? 48 : 32;
	for (i = 0; i < k->secret_len; i++) {
		k->rx_secret[i] = (uint8_t)(mirror ? 0x40 + i : 0x80 + i);
		k->tx_secret[i] = (uint8_t)(mirror ? 0x80 + i : 0x40 + i);
	}
}

/* Read what is there, in pieces of `room`: false once the state is
 * dead or at EOF. */
static bool
drain(struct tlsrec *t, int fd, size_t room)
{
	static uint8_t	buf[70000];
	ssize_t		r;

	if (room == 0 || room > sizeof(buf))
		room = sizeof(buf);
	for (;;) {
		r = tlsrec_read(t, fd, buf, room);
		if (r == -EAGAIN)
			return true;
		if (r <= 0)
			return false;
	}
}

/* Odd mode: [type][pad][len hi][len lo] then len content bytes (taken
 * from the input, repeated if it runs short), per record. */
static size_t
seal_records(struct tlsrec *peer, const uint8_t *in, size_t n, uint8_t *out,
    size_t cap)
{
	static uint8_t	content[TLSREC_MAX_PT];
	size_t		i = 0, len = 0, m, j;
	ssize_t		r;

	while (i + 4 <= n && cap - len >= TLSREC_MAX_REC + 300) {
		m = ((size_t)in[i + 2] << 8 | in[i + 3]) % (TLSREC_MAX_PT + 1);
		for (j = 0; j < m; j++)
			content[j] = i + 4 + j < n ? in[i + 4 + j] : (uint8_t)j;
		r = tlsrec_seal(peer, in[i] % 4 == 0 ? TLSREC_APPDATA :
		    in[i] % 4 == 1 ? TLSREC_HANDSHAKE : in[i] % 4 == 2 ?
		    TLSREC_ALERT : in[i], content, m, in[i + 1] %
		    (TLSREC_MAX_PT + 1 - m < 256 ? TLSREC_MAX_PT + 1 - m : 256),
		    out + len, cap - len);
		if (r < 0)
			break;
		len += (size_t)r;
		i += 4 + (m < n - i - 4 ? m : n - i - 4);
	}
	return len;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t	 suite_ids[] = { TLSREC_AES_128_GCM_SHA256,
				    TLSREC_AES_256_GCM_SHA384,
				    TLSREC_CHACHA20_POLY1305_SHA256 };
	static uint8_t		 wire[MAX_SEALED + 2 * TLSREC_MAX_REC];
	struct tlsrec_keys	 k;
	struct tlsrec		*t = NULL, *peer = NULL;
	const uint8_t		*in;
	size_t			 len, off = 0, chunk, room;
	uint16_t		 suite;
	int			 sv[2] = { -1, -1 };
	bool			 alive = true;

	if (size < 3 || size > MAX_INPUT)
		return 0;
	if (pool == NULL && (pool = tlsrec_pool_new()) == NULL)
		abort();
	suite = suite_ids[(data[0] >> 1) % 3];
	chunk = (size_t)data[1] * 97 + 1;	/* bytes per write */
	room = (size_t)data[2] * 301 + 1;	/* reader's room */
	keys(&k, suite, false);
	t = tlsrec_new(pool, &k);
	keys(&k, suite, true);
	peer = tlsrec_new(pool, &k);
	if (t == NULL || peer == NULL ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
		abort();
	if (data[0] & 1) {
		len = seal_records(peer, data + 3, size - 3, wire,
		    sizeof(wire));
		in = wire;
	} else {
		len = size - 3;
		in = data + 3;
	}
	/* Tiny pieces of a long input cost a system call each and find
	 * nothing a short input split the same way does not. */
	if (len / chunk > MAX_WRITES)
		chunk = len / MAX_WRITES + 1;
	if (len / room > MAX_READS)
		room = len / MAX_READS + 1;
	while (alive && off < len) {
		ssize_t	w = write(sv[1], in + off, len - off < chunk ?
			    len - off : chunk);

		if (w <= 0)
			abort();
		off += (size_t)w;
		alive = drain(t, sv[0], room);
	}
	if (alive) {
		/* Still usable: a reply (with a KeyUpdate if one was asked
		 * for) opens at the peer. */
		if (tlsrec_write(t, sv[0], (const uint8_t *)"ok", 2) != 2 ||
		    !drain(peer, sv[1], 0))
			abort();
	}
	tlsrec_free(t);
	tlsrec_free(peer);
	close(sv[0]);
	close(sv[1]);
	return 0;
}

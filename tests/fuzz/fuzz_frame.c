/*
 * Fuzz the frame stream parser with every server limit, and every payload
 * decoder on what it yields.
 */
#include <stddef.h>
#include <stdint.h>

#include "derp/frame.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct derp_frame		f;
	struct derp_peer_present	pp;
	uint8_t				key[DERP_KEY_LEN], reason;
	uint32_t			a, b;
	size_t				off = 0;
	ssize_t				n;

	while (off < size) {
		n = derp_frame_parse(data + off, size - off,
		    derp_frame_server_limit(data[off]), &f);
		if (n <= 0)
			break;
		(void)derp_dec_server_key(f.payload, f.len, key);
		(void)derp_dec_peer_gone(f.payload, f.len, key, &reason);
		(void)derp_dec_peer_present(f.payload, f.len, &pp);
		(void)derp_dec_restarting(f.payload, f.len, &a, &b);
		off += (size_t)n;
	}
	return 0;
}

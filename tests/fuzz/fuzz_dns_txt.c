/*
 * Fuzz the /bootstrap-dns rollout TXT reply parser (worker/bootdns.c):
 * the reply's own id is taken as ours so the fuzzer gets past the header.
 */
#include <stddef.h>
#include <stdint.h>

#include "worker/bootdns.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint16_t	id = size >= 2 ? (uint16_t)(data[0] << 8 | data[1]) : 0;
	int		pct = -1;

	if (bootdns_parse_txt(data, size, id, "_rollout.example.com",
	    &pct) == 0 && (pct < 0 || pct > 100))
		__builtin_trap();
	return 0;
}

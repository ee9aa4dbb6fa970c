/*
 * Fuzz the derper key-file JSON parser and the mesh PSK parser.
 */
#include <stddef.h>
#include <stdint.h>

#include "derp/key.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t	k[DERP_KEY_LEN];
	int	ok = 0;

	ok += derp_keyfile_parse((const char *)data, size, k) == 0;
	ok += derp_psk_parse((const char *)data, size, k) == 0;
	ok += derp_key_parse_public((const char *)data, size, k) == 0;
	return ok < 0;
}

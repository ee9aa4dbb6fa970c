/*
 * Fuzz the STUN request validator in both modes and the response parser.
 */
#include <stddef.h>
#include <stdint.h>

#include "derp/stun.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t			txid[STUN_TXID_LEN];
	struct sockaddr_storage	ss;

	(void)stun_parse_request(data, size, false, txid);
	if (stun_parse_request(data, size, true, txid) == 0 && size >= 20)
		(void)stun_parse_response(data, size, txid, &ss);
	if (size >= 20)
		(void)stun_parse_response(data, size, data + 8, &ss);
	return 0;
}

/*
 * Fuzz ClientInfo: the JSON parser on raw bytes, and the sealed-frame
 * opener (which must reject everything it cannot open) with a fixed key.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "derp/info.h"
#include "derp/key.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t		priv[DERP_KEY_LEN];
	static int		init;
	struct derp_client_info	ci;
	struct derp_server_info	si;
	uint8_t			key[DERP_KEY_LEN];
	struct derp_box		bx;

	if (!init) {
		if (derp_crypto_init() < 0)
			return 0;
		memset(priv, 0x42, sizeof(priv));
		init = 1;
	}
	(void)derp_client_info_parse((const char *)data, size, &ci);
	(void)derp_server_info_parse((const char *)data, size, &si);
	(void)derp_client_info_open(data, size, priv, key, &bx, &ci);
	return 0;
}

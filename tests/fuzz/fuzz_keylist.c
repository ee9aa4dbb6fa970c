/*
 * Fuzz the admission key-list parser (worker/admit.c): any bytes give a
 * set or a line number, and every key in a parsed set is found again.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "worker/admit.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct keyset	*ks = NULL;
	uint8_t		 k[DERP_KEY_LEN] = { 0 };
	size_t		 line = 0;
	int		 rc;

	rc = admit_keys_parse((const char *)data, size, &ks, &line);
	if (rc == 0) {
		if (ks == NULL || line != 0)
			abort();
		(void)admit_keys_has(ks, k);
		admit_keys_free(ks);
	} else if (ks != NULL || line == 0) {
		abort();
	}
	return 0;
}

/*
 * Fuzz the admission controller's response-body decoder (worker/admit.c):
 * an error never allows.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "worker/admit.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool	allow = true;

	if (admit_response_parse((const char *)data, size, &allow) < 0 &&
	    allow)
		abort();
	return 0;
}

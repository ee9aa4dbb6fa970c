/*
 * Fuzz the configuration loader (libconfig text plus our schema).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config	c;
	char		err[512], *text;

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (conf_parse_string(text, "fuzz", &c, err, sizeof(err)) == 0)
		(void)conf_restart_needed(&c, &c);
	free(text);
	return 0;
}

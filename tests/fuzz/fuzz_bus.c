/*
 * Fuzz the presence-bus message decoder and the control-channel decoder.
 */
#include <stddef.h>
#include <stdint.h>

#include "common/bus.h"
#include "common/ctl.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bus_msg	m;
	struct ctl_msg	c;

	(void)bus_decode(data, size, &m);
	(void)ctl_decode(data, size, &c);
	return 0;
}

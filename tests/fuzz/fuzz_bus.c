/*
 * Fuzz the presence-bus message and batch decoders and the control-channel
 * decoder.
 */
#include <stddef.h>
#include <stdint.h>

#include "common/bus.h"
#include "common/ctl.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
each(void *arg, const struct bus_msg *m)
{
	(*(size_t *)arg) += m->c.port;	/* touch what was decoded */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bus_msg	m;
	struct ctl_msg	c;
	size_t		sum = 0;

	(void)bus_decode(data, size, &m);
	(void)bus_decode_batch(data, size, each, &sum);
	(void)ctl_decode(data, size, &c);
	return 0;
}

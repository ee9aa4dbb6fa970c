/*
 * Fuzz the DERP map JSON parser (derp/derpmap.c): a map comes from a file
 * or an HTTPS URL an operator names, so it is untrusted input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "derp/derpmap.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct derp_map	*m;
	char			 err[256];
	size_t			 i;

	if (m == NULL && (m = malloc(sizeof(*m))) == NULL)
		return 0;
	if (derp_map_parse(m, (const char *)data, size, err, sizeof(err)) < 0)
		return 0;
	/* Invariants a caller relies on. */
	for (i = 0; i < m->nregions; i++) {
		if (m->regions[i].first + m->regions[i].nnodes > m->nnodes ||
		    (i > 0 && m->regions[i - 1].id >= m->regions[i].id))
			abort();
	}
	for (i = 0; i < m->nnodes; i++) {
		if (m->nodes[i].name[0] == '\0' ||
		    memchr(m->nodes[i].host, '\0', sizeof(m->nodes[i].host)) ==
		    NULL || m->nodes[i].stun_port < -1 ||
		    m->nodes[i].stun_port > 65535 ||
		    m->nodes[i].derp_port < 1 || m->nodes[i].derp_port > 65535)
			abort();
		(void)derp_map_node_ip(&m->nodes[i], AF_INET);
		(void)derp_map_node_ip(&m->nodes[i], AF_INET6);
	}
	return 0;
}

/*
 * DERP map JSON (PROTOCOL.md 10, Tailscale's tailcfg.DERPMap): parse and
 * validate into a flat, bounded structure for probes.  Pure: jansson
 * only, no sockets, no logging.
 */
#ifndef DERP_DERPMAP_H
#define DERP_DERPMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "derp/derp.h"

#define DERP_MAP_MAX_REGIONS	256
#define DERP_MAP_MAX_NODES	1024		/* whole map */
#define DERP_MAP_MAX_JSON	(4 * 1024 * 1024)
#define DERP_MAP_NAME_MAX	64
#define DERP_MAP_HOST_MAX	256
#define DERP_MAP_IP_MAX		48
#define DERP_MAP_STUN_DEFAULT	3478
#define DERP_MAP_DERP_DEFAULT	443

struct derp_map_node {
	char	 name[DERP_MAP_NAME_MAX];
	int64_t	 region_id;
	char	 host[DERP_MAP_HOST_MAX];	/* HostName */
	char	 cert_name[DERP_MAP_HOST_MAX];	/* CertName, "" = host */
	char	 ipv4[DERP_MAP_IP_MAX];		/* "", "none" or literal */
	char	 ipv6[DERP_MAP_IP_MAX];
	char	 stun_test_ip[DERP_MAP_IP_MAX];
	int	 stun_port;			/* resolved: -1 = off */
	int	 derp_port;			/* resolved: 0 -> 443 */
	bool	 stun_only;
	bool	 can_port80;
	bool	 insecure_for_tests;
	bool	 plain_http;	/* not JSON: a derpd config without TLS */
	int	 port80;	/* not JSON: its port-80 listener, 0 = 80 */
};

struct derp_map_region {
	int64_t	 id;
	char	 code[DERP_MAP_NAME_MAX];
	char	 name[DERP_MAP_HOST_MAX];
	bool	 avoid;
	bool	 no_measure_no_home;
	size_t	 first;			/* index into nodes[] */
	size_t	 nnodes;
};

struct derp_map {
	bool			 omit_default_regions;
	size_t			 nregions;
	size_t			 nnodes;
	struct derp_map_region	 regions[DERP_MAP_MAX_REGIONS];
	struct derp_map_node	 nodes[DERP_MAP_MAX_NODES];
};

/*
 * Parse a DERP map from json[0..len).  Field names match case-
 * insensitively; unknown fields are ignored (forward compatibility).
 * Checks: types, string lengths, IP literals (or "none"), port ranges,
 * region key == RegionID, node RegionID == its region, node names
 * non-empty and unique across the map, a HostName or an address per
 * node, the caps above.  Regions come out sorted by ID, nodes in map
 * order.  0, or -EINVAL with a message in err; -ENOMEM.
 */
int	derp_map_parse(struct derp_map *m, const char *json, size_t len,
	    char *err, size_t errlen) MUST_CHECK;

/* The address family field a probe should use, or NULL when it is
 * empty or "none". */
const char	*derp_map_node_ip(const struct derp_map_node *n, int family);

#endif

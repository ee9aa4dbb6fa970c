/*
 * derpprobe's map sources: a DERP map JSON file, an http(s):// URL, or a
 * derpd config file; plus the region/node filters (derpprobe_map.c).
 */
#ifndef TOOLS_DERPPROBE_MAP_H
#define TOOLS_DERPPROBE_MAP_H

#include <limits.h>
#include <stdbool.h>

#include "derp/derpmap.h"
#include "tools/derpprobe.h"

struct map_source {
	const char		*path;		/* file, file://, http(s):// */
	bool			 is_config;	/* path is a derpd.conf */
	int			 timeout_ms;	/* URL fetch */
	const char		*ca_file;	/* --ca, also for the fetch */
	const char		*regions;	/* "code,id,..." or NULL */
	const char		*nodes;		/* "name,..." or NULL */
	bool			 mesh_psk_given;
	struct probe_opts	*o;		/* config: mesh key, insecure */
	char			*ca_buf;	/* config: its mesh.ca_file */
	size_t			 ca_len;
};

/* Load, parse and filter into m.  0 or -errno with err filled. */
int	map_load(const struct map_source *s, struct derp_map *m, char *err,
	    size_t errlen) MUST_CHECK;

#endif

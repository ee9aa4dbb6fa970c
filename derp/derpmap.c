/*
 * DERP map JSON parser (PROTOCOL.md 10) on jansson.  Owns validation of
 * the untrusted map (fetched over HTTPS or read from a file) into the
 * bounded struct derp_map; what to probe and how is the tool's business.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "derp/derpmap.h"

#define MAX_REGION_ID	((int64_t)1 << 53)

static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Case-insensitive member lookup (Go's encoding/json matching). */
static json_t *
member(json_t *obj, const char *name)
{
	const char	*k;
	json_t		*v;

	json_object_foreach(obj, k, v) {
		if (strcasecmp(k, name) == 0)
			return v;
	}
	return NULL;
}

static int
get_str(json_t *obj, const char *name, char *out, size_t cap, char *err,
    size_t errlen, const char *where)
{
	json_t	*v = member(obj, name);

	out[0] = '\0';
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return fail(err, errlen, "%s: %s: not a string", where, name);
	if (json_string_length(v) >= cap ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return fail(err, errlen, "%s: %s: too long or has NUL", where,
		    name);
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

static int
get_int(json_t *obj, const char *name, int64_t lo, int64_t hi, int64_t *out,
    char *err, size_t errlen, const char *where)
{
	json_t	*v = member(obj, name);

	*out = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v))
		return fail(err, errlen, "%s: %s: not an integer", where, name);
	*out = json_integer_value(v);
	if (*out < lo || *out > hi)
		return fail(err, errlen, "%s: %s: %" PRId64 " out of range",
		    where, name, *out);
	return 0;
}

static int
get_bool(json_t *obj, const char *name, bool *out, char *err, size_t errlen,
    const char *where)
{
	json_t	*v = member(obj, name);

	*out = false;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return fail(err, errlen, "%s: %s: not a boolean", where, name);
	*out = json_is_true(v);
	return 0;
}

static int
check_ip(const char *s, int af, char *err, size_t errlen, const char *where,
    const char *name)
{
	unsigned char	buf[16];

	if (s[0] == '\0' || strcmp(s, "none") == 0 ||
	    inet_pton(af, s, buf) == 1)
		return 0;
	return fail(err, errlen, "%s: %s: \"%s\" is not an IPv%d address",
	    where, name, s, af == AF_INET ? 4 : 6);
}

static int
parse_node(struct derp_map *m, json_t *jn, const struct derp_map_region *r,
    char *err, size_t errlen)
{
	struct derp_map_node	*n = &m->nodes[m->nnodes];
	char			 where[96];
	int64_t			 v;
	size_t			 i;
	int			 rc;

	memset(n, 0, sizeof(*n));
	snprintf(where, sizeof(where), "region %" PRId64 " node %zu", r->id,
	    r->nnodes);
	if (!json_is_object(jn))
		return fail(err, errlen, "%s: not an object", where);
	if ((rc = get_str(jn, "Name", n->name, sizeof(n->name), err, errlen,
	    where)) < 0 ||
	    (rc = get_str(jn, "HostName", n->host, sizeof(n->host), err,
	    errlen, where)) < 0 ||
	    (rc = get_str(jn, "CertName", n->cert_name, sizeof(n->cert_name),
	    err, errlen, where)) < 0 ||
	    (rc = get_str(jn, "IPv4", n->ipv4, sizeof(n->ipv4), err, errlen,
	    where)) < 0 ||
	    (rc = get_str(jn, "IPv6", n->ipv6, sizeof(n->ipv6), err, errlen,
	    where)) < 0 ||
	    (rc = get_str(jn, "STUNTestIP", n->stun_test_ip,
	    sizeof(n->stun_test_ip), err, errlen, where)) < 0 ||
	    (rc = get_bool(jn, "STUNOnly", &n->stun_only, err, errlen,
	    where)) < 0 ||
	    (rc = get_bool(jn, "CanPort80", &n->can_port80, err, errlen,
	    where)) < 0 ||
	    (rc = get_bool(jn, "InsecureForTests", &n->insecure_for_tests,
	    err, errlen, where)) < 0)
		return rc;
	if (n->name[0] == '\0')
		return fail(err, errlen, "%s: Name is empty", where);
	snprintf(where, sizeof(where), "node \"%s\"", n->name);
	if ((rc = get_int(jn, "RegionID", 0, MAX_REGION_ID, &v, err, errlen,
	    where)) < 0)
		return rc;
	if (v != 0 && v != r->id)
		return fail(err, errlen, "%s: RegionID %" PRId64 " is not its "
		    "region %" PRId64, where, v, r->id);
	n->region_id = r->id;
	if ((rc = get_int(jn, "STUNPort", -1, 65535, &v, err, errlen,
	    where)) < 0)
		return rc;
	n->stun_port = v == 0 ? DERP_MAP_STUN_DEFAULT : (int)v;
	if ((rc = get_int(jn, "DERPPort", 0, 65535, &v, err, errlen,
	    where)) < 0)
		return rc;
	n->derp_port = v == 0 ? DERP_MAP_DERP_DEFAULT : (int)v;
	if ((rc = check_ip(n->ipv4, AF_INET, err, errlen, where, "IPv4")) < 0 ||
	    (rc = check_ip(n->ipv6, AF_INET6, err, errlen, where, "IPv6")) < 0)
		return rc;
	if (n->host[0] == '\0' && derp_map_node_ip(n, AF_INET) == NULL &&
	    derp_map_node_ip(n, AF_INET6) == NULL)
		return fail(err, errlen, "%s: no HostName and no address",
		    where);
	for (i = 0; i < m->nnodes; i++)
		if (strcmp(m->nodes[i].name, n->name) == 0)
			return fail(err, errlen, "%s: duplicate node name",
			    where);
	m->nnodes++;
	return 0;
}

static int
parse_region(struct derp_map *m, const char *key, json_t *jr, char *err,
    size_t errlen)
{
	struct derp_map_region	*r = &m->regions[m->nregions];
	json_t			*nodes, *jn;
	char			 where[96], *end;
	long long		 kid;
	int64_t			 id;
	size_t			 i;
	int			 rc;

	memset(r, 0, sizeof(*r));
	snprintf(where, sizeof(where), "region \"%.40s\"", key);
	errno = 0;
	kid = strtoll(key, &end, 10);
	if (key[0] == '\0' || *end != '\0' || errno != 0 || kid < 1 ||
	    kid > MAX_REGION_ID)
		return fail(err, errlen, "%s: key is not a region ID", where);
	if (!json_is_object(jr))
		return fail(err, errlen, "%s: not an object", where);
	if ((rc = get_int(jr, "RegionID", 0, MAX_REGION_ID, &id, err, errlen,
	    where)) < 0)
		return rc;
	if (id != 0 && id != kid)
		return fail(err, errlen, "%s: RegionID %" PRId64 " differs from "
		    "its key", where, id);
	r->id = kid;
	if ((rc = get_str(jr, "RegionCode", r->code, sizeof(r->code), err,
	    errlen, where)) < 0 ||
	    (rc = get_str(jr, "RegionName", r->name, sizeof(r->name), err,
	    errlen, where)) < 0 ||
	    (rc = get_bool(jr, "Avoid", &r->avoid, err, errlen, where)) < 0 ||
	    (rc = get_bool(jr, "NoMeasureNoHome", &r->no_measure_no_home, err,
	    errlen, where)) < 0)
		return rc;
	for (i = 0; i < m->nregions; i++)
		if (m->regions[i].id == r->id)
			return fail(err, errlen, "%s: duplicate region", where);
	r->first = m->nnodes;
	nodes = member(jr, "Nodes");
	if (nodes != NULL && !json_is_null(nodes) && !json_is_array(nodes))
		return fail(err, errlen, "%s: Nodes: not an array", where);
	if (nodes != NULL && json_is_array(nodes)) {
		json_array_foreach(nodes, i, jn) {
			if (m->nnodes >= DERP_MAP_MAX_NODES)
				return fail(err, errlen, "more than %d nodes",
				    DERP_MAP_MAX_NODES);
			if ((rc = parse_node(m, jn, r, err, errlen)) < 0)
				return rc;
			r->nnodes++;
		}
	}
	m->nregions++;
	return 0;
}

/* Sort regions by ID, moving their node blocks along. */
static int
sort_regions(struct derp_map *m)
{
	struct derp_map_node	*tmp;
	struct derp_map_region	 t;
	size_t			 i, j, at;

	for (i = 1; i < m->nregions; i++) {
		t = m->regions[i];
		for (j = i; j > 0 && m->regions[j - 1].id > t.id; j--)
			m->regions[j] = m->regions[j - 1];
		m->regions[j] = t;
	}
	if ((tmp = malloc(sizeof(*tmp) * (m->nnodes ? m->nnodes : 1))) ==
	    NULL)
		return -ENOMEM;
	for (i = 0, at = 0; i < m->nregions; i++) {
		memcpy(tmp + at, m->nodes + m->regions[i].first,
		    m->regions[i].nnodes * sizeof(*tmp));
		m->regions[i].first = at;
		at += m->regions[i].nnodes;
	}
	memcpy(m->nodes, tmp, at * sizeof(*tmp));
	free(tmp);
	return 0;
}

int
derp_map_parse(struct derp_map *m, const char *json, size_t len, char *err,
    size_t errlen)
{
	json_error_t	 je;
	json_t		*root, *regions, *jr, *v;
	const char	*key;
	int		 rc = 0;

	memset(m, 0, offsetof(struct derp_map, regions));
	m->nregions = m->nnodes = 0;
	if (len > DERP_MAP_MAX_JSON)
		return fail(err, errlen, "map larger than %d bytes",
		    DERP_MAP_MAX_JSON);
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL)
		return fail(err, errlen, "JSON: line %d: %s", je.line,
		    je.text);
	if (!json_is_object(root)) {
		rc = fail(err, errlen, "map is not a JSON object");
		goto out;
	}
	v = member(root, "omitDefaultRegions");
	m->omit_default_regions = v != NULL && json_is_true(v);
	regions = member(root, "Regions");
	if (regions == NULL || !json_is_object(regions)) {
		rc = fail(err, errlen, "Regions: missing or not an object");
		goto out;
	}
	json_object_foreach(regions, key, jr) {
		if (m->nregions >= DERP_MAP_MAX_REGIONS) {
			rc = fail(err, errlen, "more than %d regions",
			    DERP_MAP_MAX_REGIONS);
			goto out;
		}
		if ((rc = parse_region(m, key, jr, err, errlen)) < 0)
			goto out;
	}
	rc = sort_regions(m);
out:
	json_decref(root);
	if (rc < 0)
		m->nregions = m->nnodes = 0;
	return rc;
}

const char *
derp_map_node_ip(const struct derp_map_node *n, int family)
{
	const char	*s = family == AF_INET ? n->ipv4 : n->ipv6;

	return s[0] == '\0' || strcmp(s, "none") == 0 ? NULL : s;
}

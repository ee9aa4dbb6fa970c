/*
 * Where derpprobe's DERP map comes from: a JSON file, an http(s):// URL
 * (libcurl, bounded size and time), or a derpd config (its own node and
 * its mesh peers as one region); then the --region / --node filters.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include "conf/conf.h"
#include "derp/key.h"
#include "tools/derpprobe_map.h"

struct fetch_buf {
	char	*p;
	size_t	 len;
	bool	 too_big;
};

static size_t
fetch_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct fetch_buf	*b = arg;
	size_t			 n = size * nmemb;
	char			*np;

	if (b->len + n > DERP_MAP_MAX_JSON) {
		b->too_big = true;
		return 0;	/* aborts the transfer */
	}
	if ((np = realloc(b->p, b->len + n + 1)) == NULL)
		return 0;
	b->p = np;
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return n;
}

static int
fetch_url(const struct map_source *s, struct fetch_buf *b, char *err,
    size_t errlen)
{
	CURL		*c;
	CURLcode	 cc;
	long		 status = 0;
	char		 ebuf[CURL_ERROR_SIZE] = "";

	if ((c = curl_easy_init()) == NULL)
		return -ENOMEM;
	curl_easy_setopt(c, CURLOPT_URL, s->path);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 3L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)s->timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "derpprobe");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fetch_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
	if (s->ca_file != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, s->ca_file);
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	if (b->too_big) {
		snprintf(err, errlen, "%s: larger than %d bytes", s->path,
		    DERP_MAP_MAX_JSON);
		return -EMSGSIZE;
	}
	if (cc != CURLE_OK) {
		snprintf(err, errlen, "%s: %s", s->path, ebuf[0] ? ebuf :
		    curl_easy_strerror(cc));
		return -EIO;
	}
	if (status != 200) {
		snprintf(err, errlen, "%s: HTTP status %ld", s->path, status);
		return -EIO;
	}
	return 0;
}

static int
read_file(const char *path, struct fetch_buf *b, char *err, size_t errlen)
{
	FILE	*f;
	char	 chunk[8192];
	size_t	 n;
	int	 rc = 0;

	if ((f = fopen(path, "r")) == NULL) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (fetch_write(chunk, 1, n, b) != n) {
			snprintf(err, errlen, "%s: larger than %d bytes", path,
			    DERP_MAP_MAX_JSON);
			rc = -EMSGSIZE;
			break;
		}
	if (rc == 0 && ferror(f)) {
		rc = -EIO;
		snprintf(err, errlen, "%s: read error", path);
	}
	fclose(f);
	return rc;
}

/* Fill the node's IPv4/IPv6 from an IP literal or a name lookup. */
static void
fill_addrs(struct derp_map_node *n, const char *name)
{
	struct addrinfo	 hints, *ai = NULL, *a;
	unsigned char	 b[16];
	char		*dst;

	if (inet_pton(AF_INET, name, b) == 1) {
		snprintf(n->ipv4, sizeof(n->ipv4), "%s", name);
		return;
	}
	if (inet_pton(AF_INET6, name, b) == 1) {
		snprintf(n->ipv6, sizeof(n->ipv6), "%s", name);
		return;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_DGRAM;
	if (getaddrinfo(name, NULL, &hints, &ai) != 0) {
		fprintf(stderr, "derpprobe: %s: cannot resolve; its STUN "
		    "probe is skipped\n", name);
		return;
	}
	for (a = ai; a != NULL; a = a->ai_next) {
		dst = a->ai_family == AF_INET ? n->ipv4 : a->ai_family ==
		    AF_INET6 ? n->ipv6 : NULL;
		if (dst == NULL || dst[0] != '\0')
			continue;
		if (a->ai_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)
			    a->ai_addr)->sin_addr, dst, DERP_MAP_IP_MAX);
		else
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)
			    a->ai_addr)->sin6_addr, dst, DERP_MAP_IP_MAX);
	}
	freeaddrinfo(ai);
}

/* "host[:port][/dialhost[:port]]" as mesh/link.c reads it. */
static int
split_peer(const char *spec, char *host, size_t hl, char *dial, size_t dl,
    int *port)
{
	char	 buf[CONF_STR_MAX], *slash, *colon;

	snprintf(buf, sizeof(buf), "%s", spec);
	*port = 443;
	if ((slash = strchr(buf, '/')) != NULL)
		*slash++ = '\0';
	if ((colon = strrchr(buf, ':')) != NULL && strchr(buf, ']') == NULL) {
		*colon = '\0';
		*port = atoi(colon + 1);
	}
	snprintf(host, hl, "%s", buf);
	snprintf(dial, dl, "%s", slash != NULL ? slash : buf);
	if (slash != NULL && (colon = strrchr(dial, ':')) != NULL) {
		*colon = '\0';
		*port = atoi(colon + 1);
	}
	return host[0] != '\0' && *port > 0 && *port < 65536 ? 0 : -EINVAL;
}

static void
name_node(struct derp_map_node *n, const char *host, int port)
{
	if (port == 443)
		snprintf(n->name, sizeof(n->name), "%.40s", host);
	else
		snprintf(n->name, sizeof(n->name), "%.40s:%d", host, port);
}

static int
own_node(const struct config *c, struct derp_map_node *n, char *err,
    size_t errlen)
{
	char		host[CONF_STR_MAX];
	uint16_t	port;
	bool		tls = c->listen_https[0] != '\0';

	memset(n, 0, sizeof(*n));
	if (conf_split_hostport(tls ? c->listen_https : c->listen_http, host,
	    sizeof(host), &port) < 0 || port == 0) {
		snprintf(err, errlen, "config: no DERP listener");
		return -EINVAL;
	}
	n->plain_http = !tls;
	n->derp_port = port;
	snprintf(n->host, sizeof(n->host), "%s", c->hostname);
	name_node(n, c->hostname, port);
	/* A wildcard listener: dial the hostname. */
	fill_addrs(n, host[0] && strcmp(host, "::") && strcmp(host, "0.0.0.0")
	    ? host : c->hostname);
	/* The plain listener plays port 80 (/generate_204). */
	if (c->listen_http[0] != '\0' && conf_split_hostport(
	    c->listen_http, host, sizeof(host), &port) == 0) {
		n->can_port80 = true;
		n->port80 = port;
	}
	n->stun_port = -1;
	if (c->listen_stun[0] != '\0' && conf_split_hostport(c->listen_stun,
	    host, sizeof(host), &port) == 0)
		n->stun_port = port;
	return 0;
}

static int
config_map(const struct map_source *s, struct derp_map *m, char *err,
    size_t errlen)
{
	struct config		 c;
	struct derp_map_node	*n;
	char			 host[CONF_STR_MAX], dial[CONF_STR_MAX];
	int			 i, port, rc;
	size_t			 j;

	if ((rc = conf_load(s->path, &c, err, errlen)) < 0)
		return rc;
	memset(m, 0, offsetof(struct derp_map, nodes));
	m->nregions = 1;
	m->regions[0].id = 900;
	snprintf(m->regions[0].code, sizeof(m->regions[0].code), "derpd");
	snprintf(m->regions[0].name, sizeof(m->regions[0].name), "%s",
	    c.hostname);
	if ((rc = own_node(&c, &m->nodes[0], err, errlen)) < 0)
		return rc;
	m->nnodes = 1;
	for (i = 0; i < c.mesh_npeers; i++) {
		if (split_peer(c.mesh_peers[i], host, sizeof(host), dial,
		    sizeof(dial), &port) < 0) {
			snprintf(err, errlen, "config: bad mesh peer \"%s\"",
			    c.mesh_peers[i]);
			return -EINVAL;
		}
		n = &m->nodes[m->nnodes];
		memset(n, 0, sizeof(*n));
		name_node(n, host, port);
		for (j = 0; j < m->nnodes; j++)
			if (strcmp(m->nodes[j].name, n->name) == 0)
				break;
		if (j < m->nnodes)
			continue;	/* the node itself, or listed twice */
		snprintf(n->host, sizeof(n->host), "%s", host);
		n->derp_port = port;
		fill_addrs(n, dial);
		/* Peers share the deployment's config: same STUN and
		 * port-80 listeners. */
		n->stun_port = m->nodes[0].stun_port;
		n->can_port80 = m->nodes[0].can_port80;
		n->port80 = m->nodes[0].port80;
		m->nnodes++;
	}
	for (j = 0; j < m->nnodes; j++)
		m->nodes[j].region_id = 900;
	m->regions[0].nnodes = m->nnodes;
	if (!s->mesh_psk_given && c.mesh_psk_file[0] != '\0' &&
	    derp_psk_load(c.mesh_psk_file, s->o->mesh_key) == 0)
		s->o->has_mesh_key = true;
	if (s->ca_file == NULL && s->ca_buf != NULL && c.mesh_ca_file[0] != '\0')
		snprintf(s->ca_buf, s->ca_len, "%s", c.mesh_ca_file);
	if (c.mesh_insecure)
		s->o->insecure = true;
	return 0;
}

static bool
in_list(const char *list, const char *a, const char *b)
{
	char	 buf[1024], *tok, *save = NULL;

	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save))
		if (strcasecmp(tok, a) == 0 || (b && strcasecmp(tok, b) == 0))
			return true;
	return false;
}

static int
filter(const struct map_source *s, const struct derp_map *in,
    struct derp_map *out, char *err, size_t errlen)
{
	const struct derp_map_region	*r;
	struct derp_map_region		*o;
	char				 id[24];
	size_t				 i, j;

	memset(out, 0, offsetof(struct derp_map, regions));
	out->omit_default_regions = in->omit_default_regions;
	for (i = 0; i < in->nregions; i++) {
		r = &in->regions[i];
		snprintf(id, sizeof(id), "%lld", (long long)r->id);
		if (s->regions != NULL && !in_list(s->regions, r->code, id))
			continue;
		o = &out->regions[out->nregions];
		*o = *r;
		o->first = out->nnodes;
		o->nnodes = 0;
		for (j = r->first; j < r->first + r->nnodes; j++) {
			if (s->nodes != NULL && !in_list(s->nodes,
			    in->nodes[j].name, NULL))
				continue;
			out->nodes[out->nnodes++] = in->nodes[j];
			o->nnodes++;
		}
		if (o->nnodes > 0)
			out->nregions++;
	}
	if (out->nnodes == 0) {
		snprintf(err, errlen, "no node matches the map and filters");
		return -ENOENT;
	}
	return 0;
}

int
map_load(const struct map_source *s, struct derp_map *m, char *err,
    size_t errlen)
{
	struct fetch_buf	 b = { 0 };
	struct derp_map		*raw;
	const char		*p = s->path;
	int			 rc;

	if ((raw = malloc(sizeof(*raw))) == NULL)
		return -ENOMEM;
	if (s->is_config)
		rc = config_map(s, raw, err, errlen);
	else if (strncasecmp(p, "https://", 8) == 0 ||
	    strncasecmp(p, "http://", 7) == 0)
		rc = fetch_url(s, &b, err, errlen);
	else
		rc = read_file(strncmp(p, "file://", 7) == 0 ? p + 7 : p, &b,
		    err, errlen);
	if (rc == 0 && !s->is_config) {
		if ((rc = derp_map_parse(raw, b.p ? b.p : "", b.len, err,
		    errlen)) < 0) {
			char	tmp[256];

			snprintf(tmp, sizeof(tmp), "%s", err);
			snprintf(err, errlen, "%s: %s", p, tmp);
		}
	}
	if (rc == 0)
		rc = filter(s, raw, m, err, errlen);
	free(b.p);
	free(raw);
	return rc;
}

/*
 * netcheck mode, after Tailscale's netcheck: UDP reachability per family,
 * the public address and whether the NAT mapping varies by destination
 * (one socket per family against every STUN server), STUN and HTTPS
 * (/derp/latency-check) latency per region, the /generate_204 captive-
 * portal check, and the preferred (lowest latency) region.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "mesh/client.h"
#include "tools/derpprobe.h"

struct nc_region {
	int64_t	 id;
	char	 code[DERP_MAP_NAME_MAX];
	double	 stun_ms[2];		/* best v4, v6; < 0 none */
	double	 https_ms;
	char	 https_err[96];
	bool	 measured;
};

struct nc_family {
	int	 fd;
	bool	 ok;
	char	 global[80];		/* first mapped address */
	char	 first_server[80];
	int	 servers;		/* distinct servers that answered */
	bool	 varies;
};

struct netcheck {
	struct nc_region	 r[DERP_MAP_MAX_REGIONS];
	size_t			 nr;
	struct nc_family	 f[2];
	int			 captive;	/* -1 unknown, 0 no, 1 yes */
	char			 captive_note[160];
	int64_t			 preferred;	/* 0 = none */
	bool			 preferred_by_https;
};

static void
stun_node(struct netcheck *nc, struct nc_region *r,
    const struct derp_map_node *n, int fi, int timeout_ms)
{
	struct nc_family	*f = &nc->f[fi];
	const char		*ip = derp_map_node_ip(n, fi ? AF_INET6 :
				    AF_INET);
	struct sockaddr_storage	 dst, mapped;
	socklen_t		 dl;
	double			 ms;
	char			 ma[80], server[80];

	if (f->fd < 0 || ip == NULL || n->stun_port < 0)
		return;
	if (n->stun_test_ip[0])
		ip = n->stun_test_ip;
	if (net_addr(ip, (uint16_t)n->stun_port, &dst, &dl) < 0 ||
	    dst.ss_family != (fi ? AF_INET6 : AF_INET))
		return;
	if (net_stun(f->fd, (struct sockaddr *)&dst, dl, timeout_ms, &ms,
	    &mapped) < 0)
		return;
	net_format(&mapped, ma, sizeof(ma));
	net_format(&dst, server, sizeof(server));
	if (!f->ok) {
		f->ok = true;
		snprintf(f->global, sizeof(f->global), "%s", ma);
		snprintf(f->first_server, sizeof(f->first_server), "%s",
		    server);
		f->servers = 1;
	} else if (strcmp(server, f->first_server) != 0) {
		f->servers++;
		if (strcmp(ma, f->global) != 0)
			f->varies = true;
	}
	if (r->stun_ms[fi] < 0 || ms < r->stun_ms[fi])
		r->stun_ms[fi] = ms;
}

static void
node_opts(const struct derp_map_node *n, const struct probe_opts *po,
    struct client_opts *o)
{
	const char	*ip = derp_map_node_ip(n, AF_INET);

	memset(o, 0, sizeof(*o));
	if (ip == NULL)
		ip = derp_map_node_ip(n, AF_INET6);
	o->host = ip != NULL ? ip : n->host;
	o->port = (uint16_t)n->derp_port;
	o->server_name = n->host[0] ? n->host : NULL;
	o->tls = !n->plain_http;
	o->tls_insecure = po->insecure || n->insecure_for_tests ||
	    n->cert_name[0] != '\0';
	o->ca_file = po->ca_file;
	o->timeout_ms = po->timeout_ms;
}

static void
https_region(struct nc_region *r, const struct derp_map_node *n,
    const struct probe_opts *po)
{
	struct client_opts	o;
	char			resp[2048];
	double			t0;
	int			st;

	node_opts(n, po, &o);
	t0 = now_mono_ms();
	st = client_http_get(&o, "GET", "/derp/latency-check", NULL, resp,
	    sizeof(resp));
	if (st >= 200 && st <= 299) {
		r->https_ms = now_mono_ms() - t0;
		return;
	}
	if (st < 0)
		snprintf(r->https_err, sizeof(r->https_err), "%s",
		    strerror(-st));
	else
		snprintf(r->https_err, sizeof(r->https_err), "HTTP %d", st);
}

/* Find the exact X-Tailscale-Response header line. */
static bool
has_response(const char *resp, const char *want)
{
	const char	*p = resp, *eol;
	size_t		 wl = strlen(want);

	while ((eol = strstr(p, "\r\n")) != NULL && eol != p) {
		if (strncasecmp(p, "X-Tailscale-Response:", 21) == 0) {
			const char *v = p + 21;

			while (*v == ' ')
				v++;
			return (size_t)(eol - v) == wl &&
			    memcmp(v, want, wl) == 0;
		}
		p = eol + 2;
	}
	return false;
}

static void
captive_check(struct netcheck *nc, const struct derp_map *m,
    const struct probe_opts *po)
{
	const struct derp_map_node	*n = NULL;
	struct client_opts		 o;
	char				 path[64], hdr[160], want[100];
	char				 resp[4096];
	const char			*ip;
	size_t				 i;
	int				 st;

	nc->captive = -1;
	/* A node of the preferred region first, else the first at all. */
	for (i = 0; i < m->nnodes && n == NULL; i++)
		if (m->nodes[i].can_port80 && !m->nodes[i].stun_only &&
		    m->nodes[i].region_id == nc->preferred)
			n = &m->nodes[i];
	for (i = 0; i < m->nnodes && n == NULL; i++)
		if (m->nodes[i].can_port80 && !m->nodes[i].stun_only)
			n = &m->nodes[i];
	if (n == NULL) {
		snprintf(nc->captive_note, sizeof(nc->captive_note),
		    "no node with CanPort80");
		return;
	}
	node_opts(n, po, &o);
	o.tls = false;
	o.port = (uint16_t)(po->captive_port ? po->captive_port : n->port80 ?
	    n->port80 : 80);
	o.server_name = NULL;
	ip = o.host;
	snprintf(path, sizeof(path), "/generate_204?t=%lld",
	    (long long)time(NULL));
	snprintf(hdr, sizeof(hdr), "X-Tailscale-Challenge: ts_%.64s\r\n", ip);
	snprintf(want, sizeof(want), "response ts_%.64s", ip);
	st = client_http_get(&o, "GET", path, hdr, resp, sizeof(resp));
	if (st < 0) {
		snprintf(nc->captive_note, sizeof(nc->captive_note), "node %s "
		    "port %u: %s", n->name, o.port, strerror(-st));
		return;
	}
	nc->captive = !(st == 204 && has_response(resp, want));
	snprintf(nc->captive_note, sizeof(nc->captive_note), "node %s port "
	    "%u: HTTP %d%s", n->name, o.port, st, nc->captive ?
	    ", challenge not answered" : "");
}

static void
measure(struct netcheck *nc, const struct derp_map *m,
    const struct probe_opts *po)
{
	const struct derp_map_region	*mr;
	struct nc_region		*r;
	double				 best = -1, v;
	size_t				 i, j;
	int				 fi;

	for (i = 0; i < m->nregions; i++) {
		mr = &m->regions[i];
		r = &nc->r[nc->nr++];
		r->id = mr->id;
		snprintf(r->code, sizeof(r->code), "%s", mr->code);
		r->stun_ms[0] = r->stun_ms[1] = r->https_ms = -1;
		if (mr->no_measure_no_home)
			continue;
		r->measured = true;
		for (j = mr->first; j < mr->first + mr->nnodes; j++)
			for (fi = 0; fi < 2; fi++)
				stun_node(nc, r, &m->nodes[j], fi,
				    po->timeout_ms);
		/* Always measured, as when UDP is blocked. */
		for (j = mr->first; j < mr->first + mr->nnodes; j++)
			if (!m->nodes[j].stun_only) {
				https_region(r, &m->nodes[j], po);
				break;
			}
	}
	for (i = 0; i < nc->nr; i++) {
		r = &nc->r[i];
		v = r->stun_ms[0] >= 0 && (r->stun_ms[1] < 0 ||
		    r->stun_ms[0] <= r->stun_ms[1]) ? r->stun_ms[0] :
		    r->stun_ms[1];
		if (v >= 0 && (best < 0 || v < best)) {
			best = v;
			nc->preferred = r->id;
		}
	}
	for (i = 0; best < 0 && i < nc->nr; i++)
		if (nc->r[i].https_ms >= 0)
			nc->preferred_by_https = true;
	for (i = 0; nc->preferred_by_https && i < nc->nr; i++) {
		v = nc->r[i].https_ms;
		if (v >= 0 && (best < 0 || v < best)) {
			best = v;
			nc->preferred = nc->r[i].id;
		}
	}
}

static int
verdict(const struct netcheck *nc)
{
	if (nc->preferred == 0)
		return 2;
	if (!(nc->f[0].ok || nc->f[1].ok) || nc->captive == 1)
		return 1;
	return 0;
}

static json_t *
ms_json(double v)
{
	return v >= 0 ? json_real(v) : json_null();
}

static int
print_json(const struct netcheck *nc, FILE *out)
{
	json_t	*root = json_object(), *regs = json_array(), *r;
	char	*s;
	size_t	 i;
	int	 fi, v = verdict(nc);

	if (root == NULL || regs == NULL)
		goto fail;
	json_object_set_new(root, "status", json_string(v == 0 ? "ok" :
	    v == 1 ? "warning" : "critical"));
	json_object_set_new(root, "exit", json_integer(v));
	json_object_set_new(root, "udp", json_boolean(nc->f[0].ok ||
	    nc->f[1].ok));
	for (fi = 0; fi < 2; fi++) {
		const struct nc_family *f = &nc->f[fi];

		json_object_set_new(root, fi ? "ipv6" : "ipv4",
		    json_boolean(f->ok));
		json_object_set_new(root, fi ? "global_v6" : "global_v4",
		    f->ok ? json_string(f->global) : json_null());
	}
	json_object_set_new(root, "mapping_varies_by_dest_ip",
	    nc->f[0].servers >= 2 ? json_boolean(nc->f[0].varies) :
	    json_null());
	json_object_set_new(root, "captive_portal", nc->captive < 0 ?
	    json_null() : json_boolean(nc->captive));
	json_object_set_new(root, "captive_portal_detail",
	    json_string(nc->captive_note));
	json_object_set_new(root, "preferred_region", nc->preferred ?
	    json_integer(nc->preferred) : json_null());
	json_object_set_new(root, "preferred_by", json_string(
	    nc->preferred == 0 ? "none" : nc->preferred_by_https ? "https" :
	    "stun"));
	for (i = 0; i < nc->nr; i++) {
		if ((r = json_object()) == NULL)
			goto fail;
		json_object_set_new(r, "id", json_integer(nc->r[i].id));
		json_object_set_new(r, "code", json_string(nc->r[i].code));
		json_object_set_new(r, "measured", json_boolean(
		    nc->r[i].measured));
		json_object_set_new(r, "stun_v4_ms", ms_json(
		    nc->r[i].stun_ms[0]));
		json_object_set_new(r, "stun_v6_ms", ms_json(
		    nc->r[i].stun_ms[1]));
		json_object_set_new(r, "https_ms", ms_json(nc->r[i].https_ms));
		if (nc->r[i].https_err[0])
			json_object_set_new(r, "https_error", json_string(
			    nc->r[i].https_err));
		json_array_append_new(regs, r);
	}
	json_object_set(root, "regions", regs);
	if ((s = json_dumps(root, JSON_INDENT(2) | JSON_ENSURE_ASCII)) == NULL)
		goto fail;
	fprintf(out, "%s\n", s);
	free(s);
	json_decref(regs);
	json_decref(root);
	return v;
fail:
	json_decref(regs);
	json_decref(root);
	fprintf(stderr, "derpprobe: out of memory\n");
	return 3;
}

static void
print_ms(FILE *out, const char *what, double v)
{
	if (v >= 0)
		fprintf(out, "  %8.2fms %s", v, what);
	else
		fprintf(out, "  %8s   %s", "-", what);
}

static int
print_text(const struct netcheck *nc, FILE *out)
{
	size_t	i;
	int	fi;

	fprintf(out, "Report:\n\t* UDP: %s\n", nc->f[0].ok || nc->f[1].ok ?
	    "true" : "false");
	for (fi = 0; fi < 2; fi++)
		fprintf(out, "\t* IPv%d: %s%s\n", fi ? 6 : 4,
		    nc->f[fi].ok ? "yes, " : "no", nc->f[fi].global);
	fprintf(out, "\t* MappingVariesByDestIP: %s\n", nc->f[0].servers < 2
	    ? "unknown (fewer than 2 STUN servers answered)" :
	    nc->f[0].varies ? "true" : "false");
	fprintf(out, "\t* CaptivePortal: %s (%s)\n", nc->captive < 0 ?
	    "unknown" : nc->captive ? "true" : "false", nc->captive_note);
	if (nc->preferred)
		fprintf(out, "\t* Nearest DERP: region %lld (by %s)\n",
		    (long long)nc->preferred, nc->preferred_by_https ?
		    "HTTPS" : "STUN");
	else
		fprintf(out, "\t* Nearest DERP: none reachable\n");
	fprintf(out, "\t* DERP latency:\n");
	for (i = 0; i < nc->nr; i++) {
		fprintf(out, "\t\t- %lld %-12s", (long long)nc->r[i].id,
		    nc->r[i].code);
		if (!nc->r[i].measured) {
			fprintf(out, " not measured (NoMeasureNoHome)\n");
			continue;
		}
		print_ms(out, "stun4", nc->r[i].stun_ms[0]);
		print_ms(out, "stun6", nc->r[i].stun_ms[1]);
		print_ms(out, "https", nc->r[i].https_ms);
		fprintf(out, "%s%s\n", nc->r[i].https_err[0] ? " " : "",
		    nc->r[i].https_err);
	}
	return verdict(nc);
}

int
netcheck_run(const struct derp_map *m, const struct probe_opts *o,
    bool json, FILE *out)
{
	struct netcheck	*nc;
	int		 fi, rc;

	if ((nc = calloc(1, sizeof(*nc))) == NULL)
		return 3;
	nc->f[0].fd = net_udp_open(AF_INET);
	nc->f[1].fd = net_udp_open(AF_INET6);
	measure(nc, m, o);
	captive_check(nc, m, o);
	rc = json ? print_json(nc, out) : print_text(nc, out);
	for (fi = 0; fi < 2; fi++)
		if (nc->f[fi].fd >= 0)
			close(nc->f[fi].fd);
	free(nc);
	return rc;
}

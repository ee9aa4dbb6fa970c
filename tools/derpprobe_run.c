/*
 * One probe round over a DERP map: per node STUN (v4/v6), TLS and a DERP
 * connect; per region every ordered node pair (self pairs included) gets
 * a packet through the mesh, and optionally a bandwidth push.  Results
 * only; printing is derpprobe_out.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "derp/key.h"
#include "mesh/client.h"
#include "tools/derpprobe.h"

#define TOKEN_LEN	16
#define RESEND_MS	200
#define BW_CHUNK	16384
#define BW_WINDOW	4

struct region_ctx {
	const struct derp_map		*m;
	const struct derp_map_region	*r;
	const struct probe_opts		*o;
	struct probe_report		*rep;
	struct client			*c1[DERP_MAP_MAX_NODES];
	struct client			*c2[DERP_MAP_MAX_NODES];
	char				 why[DERP_MAP_MAX_NODES][96];
};

const char *
probe_class_name(enum probe_class c)
{
	static const char *const names[] = { "tls", "derp_udp",
	    "derp_connect", "derp_mesh", "derp_bw" };

	return names[c];
}

const char *
probe_verdict_name(enum probe_verdict v)
{
	return v == PROBE_OK ? "ok" : v == PROBE_WARN ? "warning" : "critical";
}

void
probe_report_fini(struct probe_report *rep)
{
	free(rep->res);
	memset(rep, 0, sizeof(*rep));
}

enum probe_verdict
probe_report_verdict(const struct probe_report *rep)
{
	enum probe_verdict	v = PROBE_OK;
	size_t			i;

	for (i = 0; i < rep->n; i++)
		if (rep->res[i].verdict > v)
			v = rep->res[i].verdict;
	return v;
}

static struct probe_result *
add(struct region_ctx *x, enum probe_class cls, size_t from, size_t to,
    const char *suffix)
{
	const struct derp_map_node	*a = &x->m->nodes[from];
	const struct derp_map_node	*b = &x->m->nodes[to];
	struct probe_report		*rep = x->rep;
	struct probe_result		*p;
	void				*np;
	bool				 pair = cls == PROBE_MESH ||
					    cls == PROBE_BW;

	if (rep->n == rep->cap) {
		rep->cap = rep->cap ? rep->cap * 2 : 64;
		if ((np = realloc(rep->res, rep->cap * sizeof(*p))) == NULL)
			return NULL;
		rep->res = np;
	}
	p = &rep->res[rep->n++];
	memset(p, 0, sizeof(*p));
	p->cls = cls;
	p->region_id = x->r->id;
	snprintf(p->region, sizeof(p->region), "%s", x->r->code[0] ?
	    x->r->code : "-");
	snprintf(p->host, sizeof(p->host), "%s", a->host);
	snprintf(p->from, sizeof(p->from), "%s", a->name);
	if (pair)
		snprintf(p->to, sizeof(p->to), "%s", b->name);
	if (x->r->code[0])
		snprintf(p->name, sizeof(p->name), "derp/%s/%s%s%s/%s",
		    x->r->code, a->name, pair ? "/" : "", pair ? b->name : "",
		    suffix);
	else
		snprintf(p->name, sizeof(p->name), "derp/%lld/%s%s%s/%s",
		    (long long)x->r->id, a->name, pair ? "/" : "",
		    pair ? b->name : "", suffix);
	p->latency_ms = -1;
	p->cert_days = -1;
	return p;
}

/* Set the verdict from an error (or none) and the latency threshold. */
static void
finish(struct probe_result *p, const struct probe_opts *o, int rc)
{
	p->end_unix = now_unix();
	if (rc < 0) {
		p->verdict = PROBE_FAIL;
		if (p->detail[0] == '\0')
			snprintf(p->detail, sizeof(p->detail), "%s",
			    strerror(-rc));
		return;
	}
	p->verdict = PROBE_OK;
	if (o->warn_latency_ms > 0 && p->latency_ms > o->warn_latency_ms &&
	    p->cls != PROBE_BW) {
		p->verdict = PROBE_WARN;
		snprintf(p->detail, sizeof(p->detail), "latency %.1f ms over "
		    "%d ms", p->latency_ms, o->warn_latency_ms);
	}
}

static const char *
dial_host(const struct derp_map_node *n)
{
	const char	*ip = derp_map_node_ip(n, AF_INET);

	if (ip == NULL)
		ip = derp_map_node_ip(n, AF_INET6);
	return ip != NULL ? ip : n->host;
}

static int
probe_udp(struct region_ctx *x, size_t ni, int family)
{
	const struct derp_map_node	*n = &x->m->nodes[ni];
	const char			*ip = derp_map_node_ip(n, family);
	struct sockaddr_storage		 dst, mapped;
	struct probe_result		*p;
	socklen_t			 dl;
	char				 ms[80];
	int				 fd, rc;

	if (n->stun_port < 0 || ip == NULL)
		return 0;	/* STUN off or family "none"/unset: skip */
	if (n->stun_test_ip[0] != '\0')
		ip = n->stun_test_ip;
	if ((p = add(x, PROBE_UDP, ni, ni, family == AF_INET ? "udp" :
	    "udp6")) == NULL)
		return -ENOMEM;
	p->family = family == AF_INET ? 4 : 6;
	if ((rc = net_addr(ip, (uint16_t)n->stun_port, &dst, &dl)) == 0 &&
	    (rc = fd = net_udp_open(dst.ss_family)) >= 0) {
		/* Connected: an ICMP port unreachable fails fast. */
		rc = connect(fd, (struct sockaddr *)&dst, dl) < 0 ? -errno : 0;
		if (rc == 0)
			rc = net_stun(fd, (struct sockaddr *)&dst, dl,
			    x->o->timeout_ms, &p->latency_ms, &mapped);
		close(fd);
		if (rc == 0) {
			net_format(&mapped, ms, sizeof(ms));
			snprintf(p->detail, sizeof(p->detail), "mapped %s",
			    ms);
		} else {
			snprintf(p->detail, sizeof(p->detail), "stun %s:%d: "
			    "%s", ip, n->stun_port, rc == -ETIMEDOUT ?
			    "no response" : strerror(-rc));
		}
	}
	finish(p, x->o, rc);
	return 0;
}

static bool
insecure(const struct region_ctx *x, const struct derp_map_node *n)
{
	return x->o->insecure || n->insecure_for_tests;
}

static int
probe_tls(struct region_ctx *x, size_t ni)
{
	const struct derp_map_node	*n = &x->m->nodes[ni];
	struct probe_result		*p;
	struct tls_probe		 t;
	int				 rc;

	if ((p = add(x, PROBE_TLS, ni, ni, "tls")) == NULL)
		return -ENOMEM;
	memset(&t, 0, sizeof(t));
	t.dial = dial_host(n);
	t.port = (uint16_t)n->derp_port;
	t.sni = n->host[0] ? n->host : t.dial;
	t.cert_name = n->cert_name;
	t.ca_file = x->o->ca_file;
	t.insecure = insecure(x, n);
	t.timeout_ms = x->o->timeout_ms;
	rc = net_tls(&t, &p->latency_ms, &p->cert_days, p->detail,
	    sizeof(p->detail));
	finish(p, x->o, rc);
	if (rc == 0 && p->cert_days < x->o->cert_warn_days) {
		p->verdict = PROBE_WARN;
		snprintf(p->detail, sizeof(p->detail), "certificate expires "
		    "in %.1f days", p->cert_days);
	} else if (rc == 0 && p->verdict == PROBE_OK) {
		snprintf(p->detail, sizeof(p->detail), "certificate %.0f days "
		    "left%s", p->cert_days, t.insecure ? ", not verified" : "");
	}
	return 0;
}

static struct client *
dial(struct region_ctx *x, const struct derp_map_node *n, bool prober,
    int *err)
{
	struct client_opts	o;

	memset(&o, 0, sizeof(o));
	o.host = dial_host(n);
	o.port = (uint16_t)n->derp_port;
	o.server_name = n->host[0] ? n->host : NULL;
	o.tls = !n->plain_http;
	/* CertName (a pin or another name) is checked by the tls probe. */
	o.tls_insecure = insecure(x, n) || n->cert_name[0] != '\0';
	o.ca_file = x->o->ca_file;
	o.info.can_ack_pings = true;
	o.info.is_prober = prober;
	if (x->o->has_mesh_key) {
		memcpy(o.info.mesh_key, x->o->mesh_key, DERP_KEY_LEN);
		o.info.has_mesh_key = true;
	}
	o.timeout_ms = x->o->timeout_ms;
	return client_connect(&o, err);
}

static int
probe_connect(struct region_ctx *x, size_t ni)
{
	const struct derp_map_node	*n = &x->m->nodes[ni];
	struct probe_result		*p;
	size_t				 k = ni - x->r->first;
	double				 t0;
	int				 rc = 0;

	if ((p = add(x, PROBE_CONNECT, ni, ni, "connect")) == NULL)
		return -ENOMEM;
	t0 = now_mono_ms();
	if ((x->c1[k] = dial(x, n, true, &rc)) != NULL) {
		p->latency_ms = now_mono_ms() - t0;
		x->c2[k] = dial(x, n, true, &rc);
	}
	if (rc < 0) {
		snprintf(p->detail, sizeof(p->detail), "derp connect %s:%d: %s",
		    dial_host(n), n->derp_port, rc == -EPROTO ?
		    "protocol error (not a DERP server?)" : strerror(-rc));
		snprintf(x->why[k], sizeof(x->why[k]), "node %s: connect "
		    "failed", n->name);
		client_free(x->c1[k]);
		x->c1[k] = NULL;
	} else if (client_fast_started(x->c1[k])) {
		snprintf(p->detail, sizeof(p->detail), "fast start");
	}
	finish(p, x->o, rc);
	return 0;
}

/* Wait on dst for the packet tok from src; 0, -ETIMEDOUT, -errno. */
static int
await(struct client *dst, const uint8_t *src, const uint8_t *tok, size_t len,
    double until)
{
	struct client_msg	m;
	double			l;
	int			rc;

	for (;;) {
		l = until - now_mono_ms();
		if (l <= 0)
			return -ETIMEDOUT;
		if ((rc = client_recv(dst, &m, (int)l + 1)) < 0)
			return rc;
		if (m.type == DERP_FRAME_RECV_PACKET && m.len == len &&
		    memcmp(m.key, src, DERP_KEY_LEN) == 0 &&
		    memcmp(m.data, tok, len) == 0)
			return 0;
	}
}

static int
mesh_once(struct client *a, struct client *b, double deadline, double *ms)
{
	uint8_t	tok[TOKEN_LEN];
	double	sent, until;
	int	rc;

	/* Resend until delivered: presence may still be crossing the
	 * mesh.  Each attempt carries a fresh token. */
	for (;;) {
		randombytes_buf(tok, sizeof(tok));
		sent = now_mono_ms();
		if ((rc = client_send_packet(a, client_public_key(b), tok,
		    sizeof(tok))) < 0)
			return rc;
		until = sent + RESEND_MS < deadline ? sent + RESEND_MS :
		    deadline;
		rc = await(b, client_public_key(a), tok, sizeof(tok), until);
		if (rc == 0) {
			*ms = now_mono_ms() - sent;
			return 0;
		}
		if (rc != -ETIMEDOUT || now_mono_ms() >= deadline)
			return rc;
	}
}

/* Push bytes a -> b in BW_CHUNK packets, BW_WINDOW in flight, checking
 * order by the sequence number in the first 8 bytes. */
static int
bw_once(struct client *a, struct client *b, size_t bytes, double deadline,
    char *err, size_t errlen)
{
	static uint8_t		pkt[BW_CHUNK];
	struct client_msg	m;
	uint64_t		seq = 0, got = 0, want, s;
	double			l;
	int			rc, i;

	want = (bytes + BW_CHUNK - 1) / BW_CHUNK;
	randombytes_buf(pkt, sizeof(pkt));
	while (got < want) {
		while (seq < want && seq - got < BW_WINDOW) {
			for (i = 0; i < 8; i++)
				pkt[i] = (uint8_t)(seq >> (56 - 8 * i));
			if ((rc = client_send_packet(a, client_public_key(b),
			    pkt, sizeof(pkt))) < 0)
				return rc;
			seq++;
		}
		if ((l = deadline - now_mono_ms()) <= 0) {
			snprintf(err, errlen, "%llu of %llu packets in time",
			    (unsigned long long)got, (unsigned long long)want);
			return -ETIMEDOUT;
		}
		if ((rc = client_recv(b, &m, (int)l + 1)) < 0)
			return rc;
		if (m.type != DERP_FRAME_RECV_PACKET || m.len != sizeof(pkt) ||
		    memcmp(m.key, client_public_key(a), DERP_KEY_LEN) != 0)
			continue;
		for (i = 0, s = 0; i < 8; i++)
			s = s << 8 | m.data[i];
		if (s != got || memcmp(m.data + 8, pkt + 8, sizeof(pkt) - 8)) {
			snprintf(err, errlen, "packet %llu out of order or "
			    "corrupt (expected %llu)", (unsigned long long)s,
			    (unsigned long long)got);
			return -EPROTO;
		}
		got++;
	}
	return 0;
}

static int
probe_pair(struct region_ctx *x, size_t ai, size_t bi, enum probe_class cls)
{
	size_t			 ka = ai - x->r->first, kb = bi - x->r->first;
	struct client		*a = x->c1[ka];
	struct client		*b = ai == bi ? x->c2[kb] : x->c1[kb];
	struct probe_result	*p;
	double			 t0, dl = now_mono_ms() + x->o->timeout_ms;
	int			 rc;

	if ((p = add(x, cls, ai, bi, cls == PROBE_MESH ? "mesh" : "bw")) ==
	    NULL)
		return -ENOMEM;
	if (a == NULL || b == NULL) {
		snprintf(p->detail, sizeof(p->detail), "%s", a == NULL ?
		    x->why[ka] : x->why[kb]);
		finish(p, x->o, -ENOTCONN);
		return 0;
	}
	if (cls == PROBE_MESH) {
		rc = mesh_once(a, b, dl, &p->latency_ms);
		if (rc == -ETIMEDOUT)
			snprintf(p->detail, sizeof(p->detail), "packet %s -> "
			    "%s not delivered in %d ms%s", p->from, p->to,
			    x->o->timeout_ms, ai == bi ? "" :
			    " (mesh link down?)");
	} else {
		t0 = now_mono_ms();
		rc = bw_once(a, b, x->o->bw_bytes, dl, p->detail,
		    sizeof(p->detail));
		p->latency_ms = now_mono_ms() - t0;
		if (rc == 0 && p->latency_ms > 0) {
			p->bytes_per_sec = (double)x->o->bw_bytes * 1e3 /
			    p->latency_ms;
			snprintf(p->detail, sizeof(p->detail), "%zu bytes, "
			    "%.1f Mbit/s", x->o->bw_bytes,
			    p->bytes_per_sec * 8 / 1e6);
		}
	}
	if (rc < 0 && rc != -ETIMEDOUT && p->detail[0] == '\0')
		snprintf(p->detail, sizeof(p->detail), "%s", strerror(-rc));
	finish(p, x->o, rc);
	return 0;
}

static int
probe_region(struct region_ctx *x)
{
	const struct derp_map_region	*r = x->r;
	size_t				 i, j, a, b;
	int				 rc = 0;

	for (i = 0; i < r->nnodes && rc == 0; i++) {
		const struct derp_map_node *n = &x->m->nodes[r->first + i];

		snprintf(x->why[i], sizeof(x->why[i]), "node %s: STUN only",
		    n->name);
		if ((rc = probe_udp(x, r->first + i, AF_INET)) < 0 ||
		    (rc = probe_udp(x, r->first + i, AF_INET6)) < 0)
			break;
		if (n->stun_only)
			continue;
		if (!n->plain_http && (rc = probe_tls(x, r->first + i)) < 0)
			break;
		rc = probe_connect(x, r->first + i);
	}
	for (i = 0; i < r->nnodes && rc == 0; i++)
		for (j = 0; j < r->nnodes && rc == 0; j++) {
			a = r->first + i;
			b = r->first + j;
			if (x->m->nodes[a].stun_only ||
			    x->m->nodes[b].stun_only)
				continue;
			rc = probe_pair(x, a, b, PROBE_MESH);
			if (rc == 0 && x->o->bw_bytes > 0)
				rc = probe_pair(x, a, b, PROBE_BW);
		}
	for (i = 0; i < r->nnodes; i++) {
		client_free(x->c1[i]);
		client_free(x->c2[i]);
		x->c1[i] = x->c2[i] = NULL;
	}
	return rc;
}

int
probe_run(const struct derp_map *m, const struct probe_opts *o,
    struct probe_report *rep)
{
	struct region_ctx	*x;
	double			 t0 = now_mono_ms();
	size_t			 i;
	int			 rc = 0;

	if ((x = calloc(1, sizeof(*x))) == NULL)
		return -ENOMEM;
	x->m = m;
	x->o = o;
	x->rep = rep;
	rep->started_unix = now_unix();
	for (i = 0; i < m->nregions && rc == 0; i++) {
		x->r = &m->regions[i];
		rc = probe_region(x);
	}
	rep->duration_ms = now_mono_ms() - t0;
	free(x);
	return rc;
}

/*
 * /bootstrap-dns: resolves the configured names with getaddrinfo_a and
 * the rollout TXT records with one UDP query each (res_nmkquery, parsed
 * by ns_initparse/ns_parserr), all on the worker's loop, every refresh_s
 * with a 1 min timeout; a name whose lookup fails keeps its last good
 * answer.  Serves the cached JSON.  Each worker resolves for itself.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "common/log.h"
#include "worker/bootdns.h"
#include "worker/wk.h"

#define MAX_ENTS	(2 * CONF_MAX_NAMES)
#define MAX_ADDRS	32
#define TIMEOUT_MS	60000		/* per refresh, as Go */
#define POLL_MS		25	/* getaddrinfo_a completion poll */
#define RESEND_MS	3000		/* TXT query retransmission */
#define QUERIED_MAX	500	/* q names remembered, then cleared */

struct ent {
	char	 name[CONF_STR_MAX];
	char	 txt[CONF_STR_MAX];	/* rollout TXT, "" = 100 % */
	bool	 published;
	int	 naddrs;
	char	 addrs[MAX_ADDRS][INET6_ADDRSTRLEN];
	int	 pct;			/* last good rollout, 0..100 */
};

/* The getaddrinfo_a requests of one refresh.  Owns copies of the names:
 * a request glibc cannot cancel keeps pointing into it, so an abandoned
 * batch is kept on the orphan list until glibc is done with it. */
struct batch {
	int		 n;
	struct addrinfo	 hints;
	struct gaicb	 cb[MAX_ENTS];
	struct gaicb	*list[MAX_ENTS];
	char		 names[MAX_ENTS][CONF_STR_MAX];
	int		 ent[MAX_ENTS];
	struct batch	*next;
};

struct txtq {
	struct bootdns	*bd;
	struct loop_io	 io;
	int		 ent;
	bool		 done;
	int		 rc;		/* 0, -EAGAIN, -ETIMEDOUT */
	int		 pct;
	uint16_t	 id;
	uint8_t		 q[NS_PACKETSZ];
	size_t		 qlen;
	uint64_t	 sent_ms;
};

struct bootdns {
	struct worker	*w;
	struct ent	 ents[MAX_ENTS];
	int		 nents;
	struct loop_timer timer;	/* next refresh, or poll while busy */
	struct batch	*batch;		/* refresh in flight */
	struct batch	*orphans;
	struct txtq	 txt[MAX_ENTS];
	int		 ntxt;
	bool		 busy;		/* a refresh is in flight */
	uint64_t	 started_ms;
	char		*pub;	/* published map JSON, or NULL */
	size_t		 pub_len;
	uint64_t	 queried[QUERIED_MAX + 1];
	size_t		 nqueried;
	uint8_t		 qkey[crypto_shorthash_KEYBYTES];
};

static void	on_timer(struct loop_timer *t);

/* ---- TXT queries on the loop ---- */

/* The resolver: bootstrap_dns.txt_resolver, or the first nameserver of
 * resolv.conf (read once per refresh, not per request). */
static int
resolver_addr(const struct config *cfg, struct sockaddr_storage *ss,
    socklen_t *sl, struct __res_state *st)
{
	char			 host[CONF_STR_MAX];
	uint16_t		 port;
	struct sockaddr_in	*s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (cfg->bootdns_txt_resolver[0] != '\0') {
		if (conf_split_hostport(cfg->bootdns_txt_resolver, host,
		    sizeof(host), &port) < 0)
			return -EINVAL;
		if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
			s4->sin_family = AF_INET;
			s4->sin_port = htons(port);
			*sl = sizeof(*s4);
			return 0;
		}
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return -EINVAL;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*sl = sizeof(*s6);
		return 0;
	}
	if (st->nscount < 1)
		return -ENOENT;
	if (st->nsaddr_list[0].sin_family == AF_INET) {
		memcpy(s4, &st->nsaddr_list[0], sizeof(*s4));
		*sl = sizeof(*s4);
		return 0;
	}
	if (st->_u._ext.nsaddrs[0] == NULL)
		return -ENOENT;
	memcpy(s6, st->_u._ext.nsaddrs[0], sizeof(*s6));
	*sl = sizeof(*s6);
	return 0;
}

static void
txt_close(struct txtq *t)
{
	struct loop	*l = t->bd->w->loop;

	if (t->io.fd >= 0) {
		loop_io_del(l, &t->io);
		close(t->io.fd);
		t->io.fd = -1;
	}
}

static void
on_txt(struct loop_io *io, unsigned events)
{
	struct txtq	*t = io->arg;
	uint8_t		 buf[NS_MAXMSG < 4096 ? NS_MAXMSG : 4096];
	ssize_t		 n;
	int		 i, rc, pct = 0;

	(void)events;
	for (i = 0; i < 8 && !t->done; i++) {
		if ((n = recv(io->fd, buf, sizeof(buf), 0)) < 0)
			return;		/* EAGAIN or refused: resent */
		rc = bootdns_parse_txt(buf, (size_t)n, t->id,
		    t->bd->ents[t->ent].txt, &pct);
		if (rc == -EPROTO)
			continue;	/* not our reply */
		t->done = true;
		t->rc = rc;
		t->pct = pct;
		txt_close(t);
	}
}

static void
txt_send(struct txtq *t, uint64_t now)
{
	t->sent_ms = now;
	/* Loss is handled by resending; nothing else to do on error. */
	(void)send(t->io.fd, t->q, t->qlen, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static int
txt_start(struct bootdns *bd, int ent, struct __res_state *st,
    const struct sockaddr_storage *ns, socklen_t nsl)
{
	struct txtq	*t = &bd->txt[bd->ntxt];
	int		 n, fd;

	memset(t, 0, sizeof(*t));
	t->bd = bd;
	t->ent = ent;
	t->io.fd = -1;
	n = res_nmkquery(st, ns_o_query, bd->ents[ent].txt, ns_c_in,
	    ns_t_txt, NULL, 0, NULL, t->q, sizeof(t->q));
	if (n < NS_HFIXEDSZ)
		return -EINVAL;
	t->qlen = (size_t)n;
	t->id = (uint16_t)randombytes_uniform(65536);
	t->q[0] = (uint8_t)(t->id >> 8);
	t->q[1] = (uint8_t)t->id;
	fd = socket(ns->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd < 0)
		return -errno;
	/* Connected: the kernel drops datagrams from anyone else. */
	if (connect(fd, (const struct sockaddr *)ns, nsl) < 0) {
		n = -errno;
		close(fd);
		return n;
	}
	loop_io_init(&t->io, fd, on_txt, t);
	if ((n = loop_io_add(bd->w->loop, &t->io, LOOP_IN)) < 0) {
		close(fd);
		t->io.fd = -1;
		return n;
	}
	bd->ntxt++;
	txt_send(t, loop_now(bd->w->loop));
	return 0;
}

static void
txts_start(struct bootdns *bd)
{
	struct __res_state	st;
	struct sockaddr_storage	ns;
	socklen_t		nsl = 0;
	int			i, rc;

	bd->ntxt = 0;
	for (i = 0; i < bd->nents && bd->ents[i].txt[0] == '\0'; i++)
		;
	if (i == bd->nents)
		return;
	memset(&st, 0, sizeof(st));
	if (res_ninit(&st) < 0) {
		log_warn("bootdns_no_resolver", "err=%s", strerror(ENOENT));
		return;		/* no res_nclose without init */
	}
	if ((rc = resolver_addr(&bd->w->cfg, &ns, &nsl, &st)) < 0) {
		log_warn("bootdns_no_resolver", "err=%s", strerror(-rc));
		res_nclose(&st);
		return;
	}
	for (i = 0; i < bd->nents; i++)
		if (bd->ents[i].txt[0] != '\0' &&
		    (rc = txt_start(bd, i, &st, &ns, nsl)) < 0)
			log_warn("bootdns_txt_failed", "name=%s err=%s",
			    bd->ents[i].txt, strerror(-rc));
	res_nclose(&st);
}

/* ---- getaddrinfo_a batches ---- */

/* Try to let go of b: true when glibc no longer references it. */
static bool
batch_release(struct batch *b)
{
	int	i;

	for (i = 0; i < b->n; i++) {
		if (b->list[i] == NULL)
			continue;
		if (gai_error(b->list[i]) == EAI_INPROGRESS &&
		    gai_cancel(b->list[i]) == EAI_NOTCANCELED)
			return false;
		freeaddrinfo(b->cb[i].ar_result);
		b->cb[i].ar_result = NULL;
		b->list[i] = NULL;
	}
	return true;
}

static void
orphans_sweep(struct bootdns *bd)
{
	struct batch	**pp = &bd->orphans, *b;

	while ((b = *pp) != NULL) {
		if (batch_release(b)) {
			*pp = b->next;
			free(b);
		} else {
			pp = &b->next;
		}
	}
}

static void
batch_abandon(struct bootdns *bd)
{
	struct batch	*b = bd->batch;

	bd->batch = NULL;
	if (b == NULL)
		return;
	if (batch_release(b)) {
		free(b);
		return;
	}
	b->next = bd->orphans;
	bd->orphans = b;
}

static int
batch_start(struct bootdns *bd)
{
	struct batch	*b;
	int		 i;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		return -ENOMEM;
	b->hints.ai_socktype = SOCK_STREAM;	/* one entry per address */
	for (i = 0; i < bd->nents; i++) {
		snprintf(b->names[i], sizeof(b->names[i]), "%s",
		    bd->ents[i].name);
		b->cb[i].ar_name = b->names[i];
		b->cb[i].ar_request = &b->hints;
		b->list[i] = &b->cb[i];
		b->ent[i] = i;
	}
	b->n = bd->nents;
	bd->batch = b;
	if (getaddrinfo_a(GAI_NOWAIT, b->list, b->n, NULL) != 0) {
		/* Some requests may have been queued: let go carefully. */
		batch_abandon(bd);
		return -EAGAIN;
	}
	return 0;
}

/* ---- results ---- */

static void
shuffle(struct ent *e)
{
	char		tmp[INET6_ADDRSTRLEN];
	uint32_t	j;
	int		i;

	for (i = e->naddrs - 1; i > 0; i--) {
		j = randombytes_uniform((uint32_t)i + 1);
		memcpy(tmp, e->addrs[i], sizeof(tmp));
		memcpy(e->addrs[i], e->addrs[j], sizeof(tmp));
		memcpy(e->addrs[j], tmp, sizeof(tmp));
	}
}

/* Replace e's addresses by those of ai (deduplicated, shuffled). */
static void
apply_addrs(struct ent *e, const struct addrinfo *ai)
{
	char	s[INET6_ADDRSTRLEN];
	int	i, n = 0;

	for (; ai != NULL && n < MAX_ADDRS; ai = ai->ai_next) {
		const void	*a;

		if (ai->ai_family == AF_INET)
			a = &((const struct sockaddr_in *)(const void *)
			    ai->ai_addr)->sin_addr;
		else if (ai->ai_family == AF_INET6)
			a = &((const struct sockaddr_in6 *)(const void *)
			    ai->ai_addr)->sin6_addr;
		else
			continue;
		if (inet_ntop(ai->ai_family, a, s, sizeof(s)) == NULL)
			continue;
		for (i = 0; i < n && strcmp(e->addrs[i], s) != 0; i++)
			;
		if (i == n)
			memcpy(e->addrs[n++], s, sizeof(s));
	}
	if (n == 0)
		return;		/* nothing usable: keep the last */
	e->naddrs = n;
	shuffle(e);
}

/* JSON as Go's MarshalIndent(v, "", "\t") writes it: jansson indents
 * with one space per level, turned into tabs (JSON strings hold no raw
 * newline, so every leading space is indentation). */
static char *
dump(json_t *obj, size_t *len)
{
	char	*s, *d, *p;
	bool	 bol = true;

	if ((s = json_dumps(obj, JSON_INDENT(1) | JSON_SORT_KEYS)) == NULL)
		return NULL;
	for (p = d = s; *p != '\0'; p++) {
		char	ch = *p;	/* d may be p: read first */

		*d++ = bol && ch == ' ' ? '\t' : ch;
		bol = ch == '\n' || (bol && ch == ' ');
	}
	*d = '\0';
	*len = (size_t)(d - s);
	return s;
}

static int
put_ent(json_t *obj, const struct ent *e)
{
	json_t	*a = json_array();
	int	 i;

	if (a == NULL)
		return -ENOMEM;
	for (i = 0; i < e->naddrs; i++)
		if (json_array_append_new(a, json_string(e->addrs[i])) < 0) {
			json_decref(a);
			return -ENOMEM;
		}
	return json_object_set_new(obj, e->name, a) < 0 ? -ENOMEM : 0;
}

static void
render_published(struct bootdns *bd)
{
	json_t	*obj;
	char	*s = NULL;
	size_t	 len = 0;
	int	 i;

	if ((obj = json_object()) == NULL)
		goto oom;
	for (i = 0; i < bd->nents; i++)
		if (bd->ents[i].published && bd->ents[i].naddrs > 0 &&
		    put_ent(obj, &bd->ents[i]) < 0)
			goto oom;
	if (json_object_size(obj) > 0 && (s = dump(obj, &len)) == NULL)
		goto oom;
	json_decref(obj);
	free(bd->pub);
	bd->pub = s;
	bd->pub_len = len;
	return;
oom:
	json_decref(obj);	/* NULL-safe */
	log_warn("bootdns_render_failed", "err=%s", strerror(ENOMEM));
}

/* Take what the refresh produced; unfinished lookups keep their last
 * answer. */
static void
refresh_finish(struct bootdns *bd)
{
	struct batch	*b = bd->batch;
	int		 i, ok = 0, failed = 0, rc;

	for (i = 0; b != NULL && i < b->n; i++) {
		rc = gai_error(b->list[i]);
		if (rc == 0) {
			apply_addrs(&bd->ents[b->ent[i]], b->cb[i].ar_result);
			ok++;
		} else {
			log_warn("bootdns_lookup_failed", "name=%s err=\"%s\"",
			    b->names[i], rc == EAI_INPROGRESS ? "timeout" :
			    gai_strerror(rc));
			failed++;
		}
	}
	batch_abandon(bd);
	for (i = 0; i < bd->ntxt; i++) {
		struct txtq	*t = &bd->txt[i];

		txt_close(t);
		if (t->done && t->rc == 0)
			bd->ents[t->ent].pct = t->pct;
		else
			log_warn("bootdns_txt_failed", "name=%s err=%s",
			    bd->ents[t->ent].txt, t->done ? "server_failure" :
			    "timeout");
	}
	bd->ntxt = 0;
	bd->busy = false;
	render_published(bd);
	log_info("bootdns_refreshed", "resolved=%d failed=%d ms=%" PRIu64, ok,
	    failed, loop_now(bd->w->loop) - bd->started_ms);
	(void)loop_timer_set(bd->w->loop, &bd->timer,
	    (uint64_t)bd->w->cfg.bootdns_refresh_s * 1000);
}

static bool
refresh_done(struct bootdns *bd, uint64_t now)
{
	int	i;

	for (i = 0; i < bd->ntxt; i++) {
		if (bd->txt[i].done)
			continue;
		if (now - bd->txt[i].sent_ms >= RESEND_MS)
			txt_send(&bd->txt[i], now);
		return false;
	}
	for (i = 0; bd->batch != NULL && i < bd->batch->n; i++)
		if (gai_error(bd->batch->list[i]) == EAI_INPROGRESS)
			return false;
	return true;
}

static void
refresh_start(struct bootdns *bd)
{
	int	rc;

	orphans_sweep(bd);
	if (bd->nents == 0)
		return;		/* nothing configured: no timer at all */
	bd->busy = true;
	bd->started_ms = loop_now(bd->w->loop);
	if ((rc = batch_start(bd)) < 0)
		log_warn("bootdns_lookup_failed", "err=%s", strerror(-rc));
	txts_start(bd);
	(void)loop_timer_set(bd->w->loop, &bd->timer, POLL_MS);
}

static void
on_timer(struct loop_timer *t)
{
	struct bootdns	*bd = t->arg;
	uint64_t	 now = loop_now(bd->w->loop);

	if (!bd->busy)
		refresh_start(bd);
	else if (refresh_done(bd, now) || now - bd->started_ms >= TIMEOUT_MS)
		refresh_finish(bd);
	else
		(void)loop_timer_set(bd->w->loop, &bd->timer, POLL_MS);
}

/* ---- requests ---- */

static int
unhex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decode one form-encoded component [s, s+n) into out; false when it
 * is malformed or too long (Go's ParseQuery drops such a pair). */
static bool
form_decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t	i, o = 0;
	int	hi, lo;

	for (i = 0; i < n; i++) {
		char	ch = s[i];

		if (ch == '%') {
			if (i + 2 >= n)
				return false;
			if ((hi = unhex((unsigned char)s[i + 1])) < 0 ||
			    (lo = unhex((unsigned char)s[i + 2])) < 0)
				return false;
			ch = (char)(hi << 4 | lo);
			i += 2;
		} else if (ch == '+') {
			ch = ' ';
		}
		if (o + 1 >= cap)
			return false;
		out[o++] = ch;
	}
	out[o] = '\0';
	return true;
}

/* The first well-formed q= value of the query string, if any. */
static bool
query_q(const char *query, char *q, size_t cap)
{
	const char	*p = query, *amp, *eq;
	char		 key[8];

	while (p != NULL && *p != '\0') {
		amp = strchr(p, '&');
		if (amp == NULL)
			amp = p + strlen(p);
		eq = memchr(p, '=', (size_t)(amp - p));
		if (eq == NULL)
			eq = amp;
		if (form_decode(p, (size_t)(eq - p), key, sizeof(key)) &&
		    strcmp(key, "q") == 0 && form_decode(eq + (eq < amp),
		    (size_t)(amp - eq - (eq < amp)), q, cap))
			return true;
		p = *amp != '\0' ? amp + 1 : NULL;
	}
	return false;
}

/* The set of names asked for, for bootstrap_dns_queried_domains. */
static void
remember(struct bootdns *bd, const char *q)
{
	uint8_t		h[crypto_shorthash_BYTES];
	uint64_t	v = 0;
	size_t		i;

	crypto_shorthash(h, (const uint8_t *)q, strlen(q), bd->qkey);
	memcpy(&v, h, sizeof(v));
	for (i = 0; i < bd->nqueried; i++)
		if (bd->queried[i] == v)
			return;
	bd->queried[bd->nqueried++] = v;
	if (bd->nqueried > QUERIED_MAX)
		bd->nqueried = 0;	/* defensive, as Go */
	bd->w->m->bootdns_queried = bd->nqueried;
}

static const struct ent *
find(const struct bootdns *bd, const char *name, bool published)
{
	int	i;

	for (i = 0; i < bd->nents; i++)
		if (bd->ents[i].published == published &&
		    strcmp(bd->ents[i].name, name) == 0)
			return &bd->ents[i];
	return NULL;
}

/* ?q=name: an unpublished name inside its rollout gets its own answer;
 * everything else counts a hit or miss and gets the published map. */
static int
answer_q(struct bootdns *bd, const char *q, const uint8_t ip16[16],
    char **body, size_t *len)
{
	struct metrics		*m = bd->w->m;
	const struct ent	*e;
	json_t			*obj;

	remember(bd, q);
	if ((e = find(bd, q, false)) != NULL && e->naddrs > 0) {
		m->bootdns_unpub_hits++;
		if (bootdns_rollout(ip16, e->txt[0] != '\0' ? e->pct : 100)) {
			if ((obj = json_object()) == NULL || put_ent(obj, e) <
			    0 || (*body = dump(obj, len)) == NULL) {
				json_decref(obj);
				return -ENOMEM;
			}
			json_decref(obj);
			return 1;
		}
		m->bootdns_unpub_pct_misses++;
	}
	if ((e = find(bd, q, true)) == NULL)
		m->bootdns_unpub_misses++;
	else if (e->naddrs > 0)
		m->bootdns_pub_hits++;
	else
		m->bootdns_pub_misses++;
	return 0;
}

int
bootdns_answer(struct bootdns *bd, const char *query, const uint8_t ip16[16],
    char **body, size_t *len)
{
	char	q[CONF_STR_MAX];
	int	rc;

	*body = NULL;
	*len = 0;
	bd->w->m->bootdns_requests++;
	if (query != NULL && query_q(query, q, sizeof(q)) && q[0] != '\0' &&
	    (rc = answer_q(bd, q, ip16, body, len)) != 0)
		return rc < 0 ? rc : 0;
	if (bd->pub == NULL)
		return 0;
	if ((*body = malloc(bd->pub_len + 1)) == NULL)
		return -ENOMEM;
	memcpy(*body, bd->pub, bd->pub_len + 1);
	*len = bd->pub_len;
	return 0;
}

/* ---- lifecycle ---- */

static void
load_ents(struct bootdns *bd, const struct config *cfg)
{
	struct ent	old[MAX_ENTS];
	int		i, j, nold = bd->nents;
	const char	*slash;

	memcpy(old, bd->ents, sizeof(old));
	memset(bd->ents, 0, sizeof(bd->ents));
	bd->nents = 0;
	for (i = 0; i < cfg->bootdns_nnames; i++) {
		struct ent	*e = &bd->ents[bd->nents++];

		snprintf(e->name, sizeof(e->name), "%s", cfg->bootdns_names[i]);
		e->published = true;
	}
	for (i = 0; i < cfg->bootdns_nunpub; i++) {
		struct ent	*e = &bd->ents[bd->nents++];
		const char	*u = cfg->bootdns_unpublished[i];

		slash = strchr(u, '/');
		snprintf(e->name, sizeof(e->name), "%.*s", slash != NULL ?
		    (int)(slash - u) : (int)strlen(u), u);
		if (slash != NULL)
			snprintf(e->txt, sizeof(e->txt), "%s", slash + 1);
	}
	/* A name kept across a reload keeps its answer until refreshed. */
	for (i = 0; i < bd->nents; i++)
		for (j = 0; j < nold; j++)
			if (old[j].published == bd->ents[i].published &&
			    strcmp(old[j].name, bd->ents[i].name) == 0) {
				memcpy(bd->ents[i].addrs, old[j].addrs,
				    sizeof(old[j].addrs));
				bd->ents[i].naddrs = old[j].naddrs;
				if (strcmp(old[j].txt, bd->ents[i].txt) == 0)
					bd->ents[i].pct = old[j].pct;
				break;
			}
}

static void
stop_refresh(struct bootdns *bd)
{
	int	i;

	loop_timer_cancel(bd->w->loop, &bd->timer);
	batch_abandon(bd);
	for (i = 0; i < bd->ntxt; i++)
		txt_close(&bd->txt[i]);
	bd->ntxt = 0;
	bd->busy = false;
}

struct bootdns *
bootdns_new(struct worker *w)
{
	struct bootdns	*bd;

	if ((bd = calloc(1, sizeof(*bd))) == NULL)
		return NULL;
	bd->w = w;
	crypto_shorthash_keygen(bd->qkey);
	loop_timer_init(&bd->timer, on_timer, bd);
	load_ents(bd, &w->cfg);
	if (bd->nents > 0 && loop_timer_set(w->loop, &bd->timer, 0) < 0) {
		free(bd);
		errno = ENOMEM;
		return NULL;
	}
	return bd;
}

void
bootdns_reload(struct bootdns *bd)
{
	stop_refresh(bd);
	load_ents(bd, &bd->w->cfg);
	render_published(bd);
	if (bd->nents > 0)
		(void)loop_timer_set(bd->w->loop, &bd->timer, 0);
}

void
bootdns_free(struct bootdns *bd)
{
	if (bd == NULL)
		return;
	stop_refresh(bd);
	orphans_sweep(bd);
	/* A lookup glibc could not cancel keeps its batch: glibc still
	 * points into it, so it is left to the process exit. */
	free(bd->pub);
	free(bd);
}

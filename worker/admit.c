/*
 * Admission control (PROTOCOL.md 5.14): the deny and allow key lists
 * (hash sets keyed with crypto_shorthash), the node-wide client cap, and
 * the admission controller, asked over HTTP through libcurl's multi
 * interface driven by the worker's loop.  A connection waiting for its
 * answer holds its later frames (bounded) and nothing else waits.  Owns
 * no connection: the verdict goes to session_admitted() or conn_close().
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "common/log.h"
#include "derp/key.h"
#include "worker/admit.h"
#include "worker/wk.h"

#define ADMIT_HOLD_MAX		(64 * 1024)	/* bytes held while asking */

/* ---- key sets ---- */

struct keyset {
	uint8_t		 hkey[crypto_shorthash_KEYBYTES];
	uint8_t		(*slot)[DERP_KEY_LEN];
	uint8_t		*used;
	size_t		 mask, n;
};

static size_t
ks_hash(const struct keyset *ks, const uint8_t key[DERP_KEY_LEN])
{
	uint64_t	h;

	crypto_shorthash((unsigned char *)&h, key, DERP_KEY_LEN, ks->hkey);
	return (size_t)h;
}

bool
admit_keys_has(const struct keyset *ks, const uint8_t key[DERP_KEY_LEN])
{
	size_t	i;

	if (ks == NULL || ks->n == 0)
		return false;
	for (i = ks_hash(ks, key) & ks->mask; ks->used[i];
	    i = (i + 1) & ks->mask)
		if (memcmp(ks->slot[i], key, DERP_KEY_LEN) == 0)
			return true;
	return false;
}

size_t
admit_keys_count(const struct keyset *ks)
{
	return ks != NULL ? ks->n : 0;
}

void
admit_keys_free(struct keyset *ks)
{
	if (ks == NULL)
		return;
	free(ks->slot);
	free(ks->used);
	free(ks);
}

/* A set sized for at most max keys (load factor <= 1/2). */
static struct keyset *
ks_new(size_t max)
{
	struct keyset	*ks;
	size_t		 cap = 16;

	while (cap < 2 * max)
		cap *= 2;
	if ((ks = calloc(1, sizeof(*ks))) == NULL)
		return NULL;
	ks->slot = calloc(cap, DERP_KEY_LEN);
	ks->used = calloc(cap, 1);
	if (ks->slot == NULL || ks->used == NULL) {
		admit_keys_free(ks);
		return NULL;
	}
	ks->mask = cap - 1;
	randombytes_buf(ks->hkey, sizeof(ks->hkey));
	return ks;
}

static void
ks_add(struct keyset *ks, const uint8_t key[DERP_KEY_LEN])
{
	size_t	i;

	for (i = ks_hash(ks, key) & ks->mask; ks->used[i];
	    i = (i + 1) & ks->mask)
		if (memcmp(ks->slot[i], key, DERP_KEY_LEN) == 0)
			return;		/* listed twice */
	memcpy(ks->slot[i], key, DERP_KEY_LEN);
	ks->used[i] = 1;
	ks->n++;
}

static bool
blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r';
}

/* One line, comment stripped: 1 key, 0 nothing, -EINVAL. */
static int
parse_line(const char *s, size_t n, uint8_t key[DERP_KEY_LEN])
{
	const char	*hash = memchr(s, '#', n);

	if (hash != NULL)
		n = (size_t)(hash - s);
	while (n > 0 && blank(*s)) {
		s++;
		n--;
	}
	while (n > 0 && blank(s[n - 1]))
		n--;
	if (n == 0)
		return 0;
	if (n == DERP_KEY_HEX_LEN)
		return derp_key_parse_hex(s, n, key) < 0 ? -EINVAL : 1;
	return derp_key_parse_public(s, n, key) < 0 ? -EINVAL : 1;
}

int
admit_keys_parse(const char *text, size_t len, struct keyset **out,
    size_t *line)
{
	struct keyset	*ks;
	const char	*p = text, *end = text + len, *nl;
	uint8_t		 key[DERP_KEY_LEN];
	size_t		 lines = 0;
	int		 rc;

	*out = NULL;
	*line = 0;
	/* A key line is at least 64 bytes: this bounds the set. */
	if ((ks = ks_new(len / DERP_KEY_HEX_LEN + 1)) == NULL)
		return -ENOMEM;
	while (p < end) {
		lines++;
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		if ((rc = parse_line(p, (size_t)(nl - p), key)) < 0) {
			*line = lines;
			admit_keys_free(ks);
			return rc;
		}
		if (rc == 1)
			ks_add(ks, key);
		p = nl + 1;
	}
	*out = ks;
	return 0;
}

int
admit_keys_load(const char *path, struct keyset **out, char *err,
    size_t errlen)
{
	struct stat	 st;
	char		*buf = NULL;
	size_t		 got = 0, line;
	ssize_t		 r;
	int		 fd, rc;

	*out = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size > ADMIT_LIST_MAX) {
		snprintf(err, errlen, "%s: not a regular file of at most %d "
		    "bytes", path, ADMIT_LIST_MAX);
		close(fd);
		return -EINVAL;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		snprintf(err, errlen, "%s: %s", path, strerror(ENOMEM));
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size &&
	    (r = read(fd, buf + got, (size_t)st.st_size - got)) != 0) {
		if (r < 0) {
			rc = -errno;
			snprintf(err, errlen, "%s: %s", path, strerror(-rc));
			close(fd);
			free(buf);
			return rc;
		}
		got += (size_t)r;
	}
	close(fd);
	rc = admit_keys_parse(buf, got, out, &line);
	free(buf);
	if (rc == -EINVAL)
		snprintf(err, errlen, "%s:%zu: not a node public key "
		    "(nodekey:<64 hex> or 64 hex digits)", path, line);
	else if (rc < 0)
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
	return rc;
}

/* ---- controller response ---- */

int
admit_response_parse(const char *body, size_t len, bool *allow)
{
	json_error_t	 e;
	json_t		*root, *v;
	const char	*k;
	int		 rc = 0;

	*allow = false;
	if (len > ADMIT_BODY_MAX)
		len = ADMIT_BODY_MAX;
	/* Only the first value counts: trailing bytes are not read. */
	if ((root = json_loadb(body, len, JSON_DECODE_ANY |
	    JSON_DISABLE_EOF_CHECK, &e)) == NULL)
		return -EPROTO;
	if (json_is_object(root)) {
		json_object_foreach(root, k, v) {
			if (strcasecmp(k, "allow") != 0 || json_is_null(v))
				continue;
			if (!json_is_boolean(v)) {
				rc = -EPROTO;
				break;
			}
			*allow = json_is_true(v);
		}
	} else if (!json_is_null(root)) {
		rc = -EPROTO;	/* null decodes to Allow:false, as in Go */
	}
	json_decref(root);
	if (rc < 0)
		*allow = false;
	return rc;
}

/* ---- worker state ---- */

struct admit_lists {
	struct keyset	*allow, *deny;	/* NULL: file not set */
};

struct asock {
	struct loop_io	 io;
	struct admit	*a;
	bool		 dead;
	struct asock	*dead_next;
};

struct admit_req {
	struct admit	*a;
	struct conn	*c;
	CURL		*easy;
	char		*post;
	bool		 fail_open;
	bool		 body_full;
	size_t		 blen;
	char		 body[ADMIT_BODY_MAX];
};

struct admit {
	struct worker		*w;
	struct admit_lists	*lists;
	CURLM			*multi;
	struct curl_slist	*headers;
	struct loop_timer	 timer;
	struct asock		*dead;
	bool			 curl_ready;
	size_t			 inflight;
};

void
admit_lists_free(struct admit_lists *l)
{
	if (l == NULL)
		return;
	admit_keys_free(l->allow);
	admit_keys_free(l->deny);
	free(l);
}

int
admit_lists_load(const struct config *cfg, struct admit_lists **out,
    char *err, size_t errlen)
{
	struct admit_lists	*l;
	int			 rc = 0;

	*out = NULL;
	if (cfg->admission_url[0] != '\0' &&
	    strncmp(cfg->admission_url, "http://", 7) != 0 &&
	    strncmp(cfg->admission_url, "https://", 8) != 0) {
		snprintf(err, errlen, "admission.url: not an http(s) URL");
		return -EINVAL;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return -ENOMEM;
	if (cfg->admission_allow_file[0] != '\0')
		rc = admit_keys_load(cfg->admission_allow_file, &l->allow,
		    err, errlen);
	if (rc == 0 && cfg->admission_deny_file[0] != '\0')
		rc = admit_keys_load(cfg->admission_deny_file, &l->deny,
		    err, errlen);
	if (rc < 0) {
		admit_lists_free(l);
		return rc;
	}
	*out = l;
	return 0;
}

void
admit_lists_set(struct worker *w, struct admit_lists *l)
{
	admit_lists_free(w->adm->lists);
	w->adm->lists = l;
	log_notice("admission_lists", "allow=%zu deny=%zu allow_file=%d",
	    admit_keys_count(l->allow), admit_keys_count(l->deny),
	    l->allow != NULL);
}

/* ---- libcurl on the loop ---- */

static void	check_done(struct admit *a);

static void
on_sock(struct loop_io *io, unsigned events)
{
	struct asock	*as = io->arg;
	struct admit	*a = as->a;
	int		 running, mask = 0;

	if (as->dead)
		return;		/* removed earlier in this round */
	if (events & LOOP_IN)
		mask |= CURL_CSELECT_IN;
	if (events & LOOP_OUT)
		mask |= CURL_CSELECT_OUT;
	if (events & LOOP_ERR)
		mask |= CURL_CSELECT_ERR;
	(void)curl_multi_socket_action(a->multi, io->fd, mask, &running);
	check_done(a);
}

static int
sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct admit	*a = userp;
	struct asock	*as = socketp;
	unsigned	 ev = 0;

	(void)e;
	if (what == CURL_POLL_REMOVE) {
		if (as != NULL) {
			/* Freed after the round: an event for it may still
			 * be pending in this one. */
			loop_io_del(a->w->loop, &as->io);
			as->dead = true;
			as->dead_next = a->dead;
			a->dead = as;
			(void)curl_multi_assign(a->multi, s, NULL);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		ev |= LOOP_IN;
	if (what & CURL_POLL_OUT)
		ev |= LOOP_OUT;
	if (as == NULL) {
		if ((as = calloc(1, sizeof(*as))) == NULL)
			return -1;
		as->a = a;
		loop_io_init(&as->io, s, on_sock, as);
		if (loop_io_add(a->w->loop, &as->io, ev) < 0) {
			free(as);
			return -1;
		}
		(void)curl_multi_assign(a->multi, s, as);
		return 0;
	}
	return loop_io_mod(a->w->loop, &as->io, ev) < 0 ? -1 : 0;
}

static void
on_timer(struct loop_timer *t)
{
	struct admit	*a = t->arg;
	int		 running;

	(void)curl_multi_socket_action(a->multi, CURL_SOCKET_TIMEOUT, 0,
	    &running);
	check_done(a);
}

static int
timer_cb(CURLM *m, long ms, void *userp)
{
	struct admit	*a = userp;

	(void)m;
	if (ms < 0) {
		loop_timer_cancel(a->w->loop, &a->timer);
		return 0;
	}
	return loop_timer_set(a->w->loop, &a->timer, (uint64_t)ms) < 0 ?
	    -1 : 0;
}

static size_t
on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct admit_req	*r = arg;
	size_t			 n = size * nmemb;
	size_t			 room = sizeof(r->body) - r->blen;

	if (n > room) {
		/* Only the first 4 KiB are decoded: stop reading here. */
		memcpy(r->body + r->blen, p, room);
		r->blen += room;
		r->body_full = true;
		return 0;
	}
	memcpy(r->body + r->blen, p, n);
	r->blen += n;
	return n;
}

static int
curl_start(struct admit *a)
{
	if (a->curl_ready)
		return 0;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -ENOMEM;
	if ((a->multi = curl_multi_init()) == NULL ||
	    (a->headers = curl_slist_append(NULL,
	    "Content-Type: application/json")) == NULL) {
		curl_multi_cleanup(a->multi);
		a->multi = NULL;
		curl_global_cleanup();
		return -ENOMEM;
	}
	(void)curl_multi_setopt(a->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	(void)curl_multi_setopt(a->multi, CURLMOPT_SOCKETDATA, a);
	(void)curl_multi_setopt(a->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	(void)curl_multi_setopt(a->multi, CURLMOPT_TIMERDATA, a);
	a->curl_ready = true;
	return 0;
}

int
admit_init(struct worker *w)
{
	char	err[512];
	int	rc;

	if ((w->adm = calloc(1, sizeof(*w->adm))) == NULL)
		return -ENOMEM;
	w->adm->w = w;
	loop_timer_init(&w->adm->timer, on_timer, w->adm);
	if ((rc = admit_lists_load(&w->cfg, &w->adm->lists, err,
	    sizeof(err))) < 0) {
		log_err("admission_lists_invalid", "err=\"%s\"", err);
		return rc;
	}
	return 0;
}

static void
req_free(struct admit_req *r)
{
	struct admit	*a = r->a;

	/* Never called from inside a libcurl callback. */
	(void)curl_multi_remove_handle(a->multi, r->easy);
	curl_easy_cleanup(r->easy);
	free(r->post);
	if (r->c != NULL)
		r->c->admit = NULL;
	a->inflight--;
	a->w->m->admission_inflight--;
	free(r);
}

void
admit_after(struct worker *w)
{
	struct asock	*as;

	if (w->adm == NULL)
		return;
	while ((as = w->adm->dead) != NULL) {
		w->adm->dead = as->dead_next;
		free(as);
	}
}

void
admit_fini(struct worker *w)
{
	struct admit	*a = w->adm;
	struct conn	*c;

	if (a == NULL)
		return;
	/* Connections are closed by now; drop any request still held. */
	for (c = w->conns; c != NULL; c = c->next)
		admit_cancel(c);
	if (a->curl_ready) {
		loop_timer_cancel(w->loop, &a->timer);
		curl_multi_cleanup(a->multi);
		curl_slist_free_all(a->headers);
		curl_global_cleanup();
	}
	admit_after(w);
	admit_lists_free(a->lists);
	free(a);
	w->adm = NULL;
}

/* ---- decisions ---- */

static void
refuse(struct conn *c, const char *reason, const char *detail)
{
	char	ks[DERP_KEY_SHORT_MAX];

	derp_key_format_short(ks, c->key);
	log_info_conn("client_refused", "conn=%" PRIu64 " peer=%s key=%s "
	    "reason=%s%s", c->id, c->addr, ks, reason, detail);
	conn_close(c, reason);
}

/* Release held reads and go on with the buffered frames. */
static void
resume(struct conn *c)
{
	if (c->admit_hold) {
		c->admit_hold = false;
		c->throttled = false;
		(void)loop_io_mod(c->w->loop, &c->io, LOOP_IN);
	}
	session_admitted(c);
	if (!c->closing && bbuf_len(&c->in) > 0)
		session_input(c);
	if (!c->closing && !c->throttled)
		conn_on_readable(c);
}

/* The controller answered, failed or timed out: decide c. */
static void
verdict(struct admit_req *r, CURLcode res)
{
	struct metrics	*m = r->a->w->m;
	struct conn	*c = r->c;
	long		 status = 0;
	bool		 answered, allow = false, fail_open = r->fail_open;
	int		 prc = -EPROTO;
	char		 detail[96] = "";

	answered = res == CURLE_OK || (res == CURLE_WRITE_ERROR &&
	    r->body_full);
	if (answered) {
		(void)curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE,
		    &status);
		if (status == 200)
			prc = admit_response_parse(r->body, r->blen, &allow);
	}
	req_free(r);		/* clears c->admit */
	if (answered && status == 200 && prc == 0 && allow) {
		m->admission_allowed++;
		resume(c);
		return;
	}
	if (answered && status == 200 && prc == 0) {
		m->admission_denied++;
		refuse(c, "admission_denied", "");
		return;
	}
	if (answered) {
		/* A non-200 status is never fail-open (5.14). */
		m->admission_errors++;
		snprintf(detail, sizeof(detail), status == 200 ?
		    " err=bad_response" : " status=%ld", status);
		refuse(c, "admission_error", detail);
		return;
	}
	m->admission_errors++;
	if (res == CURLE_OPERATION_TIMEDOUT)
		m->admission_timeouts++;
	snprintf(detail, sizeof(detail), " err=\"%s\"",
	    curl_easy_strerror(res));
	if (fail_open) {
		char	ks[DERP_KEY_SHORT_MAX];

		m->admission_fail_open++;
		derp_key_format_short(ks, c->key);
		log_info_conn("client_admitted_fail_open", "conn=%" PRIu64
		    " key=%s%s", c->id, ks, detail);
		resume(c);
		return;
	}
	refuse(c, "admission_error", detail);
}

static void
check_done(struct admit *a)
{
	struct admit_req	*r;
	CURLMsg			*msg;
	int			 left;

	while ((msg = curl_multi_info_read(a->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		r = NULL;
		if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
		    &r) != CURLE_OK || r == NULL)
			continue;
		verdict(r, msg->data.result);
	}
}

static char *
request_body(const struct conn *c)
{
	char	 nk[DERP_KEY_TEXT_MAX], ip[INET6_ADDRSTRLEN] = "";
	json_t	*o;
	char	*s;

	derp_key_format_public(nk, c->key);
	if (memcmp(c->ip16, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0)
		inet_ntop(AF_INET, c->ip16 + 12, ip, sizeof(ip));
	else if (c->port != 0)
		inet_ntop(AF_INET6, c->ip16, ip, sizeof(ip));
	if ((o = json_pack("{s:s,s:s}", "NodePublic", nk, "Source",
	    ip)) == NULL)
		return NULL;
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

static int
ask(struct conn *c)
{
	struct admit		*a = c->w->adm;
	const struct config	*cfg = &c->w->cfg;
	struct admit_req	*r;
	CURL			*e;

	if (curl_start(a) < 0 || (r = calloc(1, sizeof(*r))) == NULL)
		return -ENOMEM;
	r->a = a;
	r->c = c;
	r->fail_open = cfg->admission_fail_open;
	if ((r->post = request_body(c)) == NULL ||
	    (e = r->easy = curl_easy_init()) == NULL) {
		free(r->post);
		free(r);
		return -ENOMEM;
	}
	(void)curl_easy_setopt(e, CURLOPT_URL, cfg->admission_url);
	(void)curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	(void)curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->post);
	(void)curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(r->post));
	(void)curl_easy_setopt(e, CURLOPT_HTTPHEADER, a->headers);
	(void)curl_easy_setopt(e, CURLOPT_USERAGENT, "derpd");
	(void)curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
	    (long)cfg->admission_timeout_ms);
	(void)curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	(void)curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	(void)curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	(void)curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	if (curl_multi_add_handle(a->multi, e) != CURLM_OK) {
		curl_easy_cleanup(e);
		free(r->post);
		free(r);
		return -ENOMEM;
	}
	c->admit = r;
	a->inflight++;
	c->w->m->admission_inflight++;
	c->w->m->admission_requests++;
	return 0;
}

bool
admit_full(struct conn *c)
{
	struct worker	*w = c->w;

	if (c->can_mesh || w->cfg.max_clients <= 0 ||
	    registry_node_conns(w->reg) < (size_t)w->cfg.max_clients)
		return false;
	w->m->clients_refused_max++;
	refuse(c, "max_clients", "");
	return true;
}

int
admit_begin(struct conn *c)
{
	struct worker		*w = c->w;
	struct admit		*a = w->adm;
	const struct admit_lists *l = a->lists;
	int			 rc;

	if (admit_full(c))
		return -1;
	if (l != NULL && admit_keys_has(l->deny, c->key)) {
		w->m->admission_list_refused++;
		refuse(c, "deny_list", "");
		return -1;
	}
	if (l != NULL && l->allow != NULL && !admit_keys_has(l->allow,
	    c->key)) {
		w->m->admission_list_refused++;
		refuse(c, "not_allowed", "");
		return -1;
	}
	if (w->cfg.admission_url[0] == '\0')
		return 1;
	if (a->inflight >= (size_t)w->cfg.admission_max_in_flight) {
		/* Too many questions at once: the policy answers. */
		w->m->admission_overflow++;
		if (w->cfg.admission_fail_open) {
			w->m->admission_fail_open++;
			return 1;
		}
		refuse(c, "admission_error", " err=too_many_requests");
		return -1;
	}
	if ((rc = ask(c)) < 0) {
		w->m->admission_errors++;
		if (w->cfg.admission_fail_open) {
			w->m->admission_fail_open++;
			return 1;
		}
		refuse(c, "admission_error", " err=out_of_memory");
		return -1;
	}
	return 0;
}

/* Called by session_input while c's request is in flight: hold what
 * arrives, and stop reading once the hold is full. */
void
admit_hold(struct conn *c)
{
	if (c->admit == NULL || c->admit_hold || c->closing ||
	    bbuf_len(&c->in) < ADMIT_HOLD_MAX)
		return;
	c->admit_hold = true;
	c->throttled = true;
	(void)loop_io_mod(c->w->loop, &c->io, c->io.events &
	    ~(unsigned)LOOP_IN);
}

void
admit_cancel(struct conn *c)
{
	struct admit_req	*r = c->admit;

	if (r == NULL)
		return;
	c->admit = NULL;
	c->admit_hold = false;
	r->c = NULL;
	req_free(r);
}

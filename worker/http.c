/*
 * HTTP/1.1 front through http-parser: request heads with a size cap,
 * keep-alive for ordinary requests, the endpoints of PROTOCOL.md 8 and
 * the /derp decision table (2.3).  Hands upgraded connections to
 * session.c with any bytes that followed the head.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "worker/bootdns.h"
#include "worker/acme.h"
#include "worker/wk.h"

#define HDR_SMALL	128

struct http_req {
	char	 url[2048];
	size_t	 url_len;
	size_t	 head_bytes;
	char	 field[40];
	size_t	 field_len;
	bool	 in_value;
	char	*target;	/* header value being collected, or NULL */
	size_t	 target_cap;
	bool	 target_set;
	bool	 done;
	bool	 has_xff;
	char	 upgrade[HDR_SMALL];
	char	 fast_start[8];
	char	 ideal_node[HDR_SMALL];
	char	 challenge[HDR_SMALL];
	char	 host[256];
	char	 ws_protocol[HDR_SMALL];
	char	 ws_key[HDR_SMALL];
	char	 ws_version[8];
	bool	 challenge_long;
};

static const char SECURITY_HEADERS[] =
    "Strict-Transport-Security: max-age=63072000; includeSubDomains\r\n"
    "Content-Security-Policy: default-src 'self'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'self'; block-all-mixed-content; "
    "object-src 'none'\r\n"
    "X-Frame-Options: DENY\r\n"
    "X-Content-Type-Options: nosniff\r\n";

static const char HOME_PAGE[] =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">"
    "<title>DERP server</title></head>\n<body>\n"
    "<h1>DERP</h1>\n<p>This is a <a href=\"https://tailscale.com/\">"
    "Tailscale</a> DERP server, run by derpd.</p>\n"
    "<p>It provides STUN, interactive connectivity establishment, and "
    "relaying of end-to-end encrypted traffic for Tailscale clients.</p>\n"
    "<p>Documentation:</p>\n<ul>\n"
    "<li><a href=\"https://tailscale.com/kb/1232/derp-servers\">"
    "About DERP</a></li>\n"
    "<li><a href=\"https://pkg.go.dev/tailscale.com/derp\">"
    "Protocol &amp; Go docs</a></li>\n</ul>\n</body>\n</html>\n";

static const char DEBUG_INDEX[] =
    "<html><body><h1>derpd debug</h1>"
    "<a href=\"/debug/varz\">/debug/varz</a><br>"
    "<a href=\"/debug/traffic\">/debug/traffic</a></body></html>\n";

static int
on_message_begin(http_parser *p)
{
	struct conn	*c = p->data;
	struct http_req	*r = c->req;

	memset(r, 0, sizeof(*r));
	return 0;
}

static int
on_url(http_parser *p, const char *at, size_t len)
{
	struct http_req	*r = ((struct conn *)p->data)->req;

	if (r->url_len + len >= sizeof(r->url))
		return -1;
	memcpy(r->url + r->url_len, at, len);
	r->url_len += len;
	r->url[r->url_len] = '\0';
	return 0;
}

static void
pick_target(struct http_req *r)
{
	static const struct {
		const char	*name;
		size_t		 off, cap;
	} hs[] = {
#define H(n, f) { n, offsetof(struct http_req, f), \
	    sizeof(((struct http_req *)0)->f) }
		H("upgrade", upgrade),
		H("derp-fast-start", fast_start),
		H("ideal-node", ideal_node),
		H("x-tailscale-challenge", challenge),
		H("host", host),
		H("sec-websocket-protocol", ws_protocol),
		H("sec-websocket-key", ws_key),
		H("sec-websocket-version", ws_version),
#undef H
	};
	size_t	i;

	r->target = NULL;
	r->field[r->field_len < sizeof(r->field) ? r->field_len :
	    sizeof(r->field) - 1] = '\0';
	if (strcasecmp(r->field, "x-forwarded-for") == 0)
		r->has_xff = true;
	for (i = 0; i < sizeof(hs) / sizeof(hs[0]); i++) {
		char	*dst = (char *)r + hs[i].off;

		if (strcasecmp(r->field, hs[i].name) != 0)
			continue;
		if (dst[0] != '\0')
			return;		/* first value wins */
		r->target = dst;
		r->target_cap = hs[i].cap;
		return;
	}
}

static int
on_header_field(http_parser *p, const char *at, size_t len)
{
	struct http_req	*r = ((struct conn *)p->data)->req;

	if (r->in_value) {
		r->in_value = false;
		r->field_len = 0;
	}
	if (r->field_len + len < sizeof(r->field))
		memcpy(r->field + r->field_len, at, len);
	r->field_len += len;
	return 0;
}

static int
on_header_value(http_parser *p, const char *at, size_t len)
{
	struct http_req	*r = ((struct conn *)p->data)->req;
	size_t		 have;

	if (!r->in_value) {
		r->in_value = true;
		pick_target(r);
	}
	if (r->target == NULL)
		return 0;
	have = strlen(r->target);
	if (r->target == r->challenge && have + len > 64)
		r->challenge_long = true;
	if (have + len >= r->target_cap)
		len = r->target_cap - 1 - have;
	memcpy(r->target + have, at, len);
	r->target[have + len] = '\0';
	return 0;
}

static int
on_message_complete(http_parser *p)
{
	struct http_req	*r = ((struct conn *)p->data)->req;

	r->done = true;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_message_complete = on_message_complete,
};

int
http_begin(struct conn *c)
{
	if (c->req == NULL && (c->req = calloc(1, sizeof(*c->req))) == NULL)
		return -ENOMEM;
	http_parser_init(&c->hp, HTTP_REQUEST);
	c->hp.data = c;
	return 0;
}

void
http_end(struct conn *c)
{
	free(c->req);
	c->req = NULL;
}

/* A response's status line and headers into head[0..cap): the length,
 * or -1 when they do not fit. */
static int
head_format(struct conn *c, char *head, size_t cap, int status,
    const char *reason, const char *ctype, const char *extra, size_t blen)
{
	int	n;

	if (!http_should_keep_alive(&c->hp))
		c->close_after_write = true;
	n = snprintf(head, cap,
	    "HTTP/1.1 %d %s\r\n%s%s%sContent-Length: %zu\r\n%s%s\r\n",
	    status, reason, ctype ? "Content-Type: " : "", ctype ? ctype : "",
	    ctype ? "\r\n" : "", blen, extra ? extra : "",
	    c->close_after_write ? "Connection: close\r\n" : "");
	return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* Queue a complete response.  extra: additional header lines. */
static void
respond(struct conn *c, int status, const char *reason, const char *ctype,
    const char *extra, const char *body, size_t blen)
{
	char	 head[1024];
	int	 n;
	bool	 head_only = c->hp.method == HTTP_HEAD;

	if ((n = head_format(c, head, sizeof(head), status, reason, ctype,
	    extra, blen)) < 0) {
		conn_close(c, "http_response_too_large");
		return;
	}
	if (conn_send_ctrl(c, head, (size_t)n) < 0)
		return;
	if (!head_only && blen > 0)
		(void)conn_send_ctrl(c, body, blen);
}

void
http_respond_debug(struct conn *c, int status, const char *reason,
    const char *ctype, const char *extra, const char *body, size_t blen)
{
	char	hdrs[sizeof(SECURITY_HEADERS) + 512];

	snprintf(hdrs, sizeof(hdrs), "%s%s", SECURITY_HEADERS,
	    extra != NULL ? extra : "");
	respond(c, status, reason, ctype, hdrs, body, blen);
}

void
http_respond_debug_take(struct conn *c, int status, const char *reason,
    const char *ctype, const char *extra, struct bbuf *body)
{
	char	hdrs[sizeof(SECURITY_HEADERS) + 512], head[1024];
	int	n;

	/* Nothing else queued: the head goes first through the write
	 * buffer and the body becomes the control buffer as it is.  A
	 * copy of megabytes (and its page faults) was a turn of its own. */
	if (c->closing || c->hp.method == HTTP_HEAD ||
	    bbuf_len(&c->out) > 0 || c->cur != NULL ||
	    bbuf_len(&c->ctrl) > 0) {
		http_respond_debug(c, status, reason, ctype, extra,
		    bbuf_len(body) > 0 ? (const char *)body->p + body->off :
		    "", bbuf_len(body));
		bbuf_free(body);
		return;
	}
	snprintf(hdrs, sizeof(hdrs), "%s%s", SECURITY_HEADERS,
	    extra != NULL ? extra : "");
	if ((n = head_format(c, head, sizeof(head), status, reason, ctype,
	    hdrs, bbuf_len(body))) < 0) {
		bbuf_free(body);
		conn_close(c, "http_response_too_large");
		return;
	}
	if (bbuf_append(&c->out, head, (size_t)n, WK_OUT_CAP) < 0) {
		bbuf_free(body);
		conn_close(c, "out_of_memory");
		return;
	}
	bbuf_free(&c->ctrl);
	c->ctrl = *body;
	memset(body, 0, sizeof(*body));
}

static void
respond_text(struct conn *c, int status, const char *reason,
    const char *extra, const char *body)
{
	respond(c, status, reason, "text/plain; charset=utf-8", extra, body,
	    strlen(body));
}

static bool
is_loopback(const struct conn *c)
{
	static const uint8_t v6lo[16] = { [15] = 1 };

	if (c->ip16[10] == 0xff && c->ip16[11] == 0xff &&
	    memcmp(c->ip16, v6lo, 10) == 0)
		return c->ip16[12] == 127;
	return memcmp(c->ip16, v6lo, 16) == 0;
}

static bool
debug_allowed(const struct conn *c)
{
	return !c->req->has_xff && is_loopback(c);
}

static bool
challenge_ok(const char *s)
{
	size_t	i;

	for (i = 0; s[i] != '\0'; i++)
		if (!isalnum((unsigned char)s[i]) && strchr("._:-", s[i]) ==
		    NULL)
			return false;
	return i > 0 && i <= 64;
}

static void
serve_204(struct conn *c)
{
	char	extra[256];

	snprintf(extra, sizeof(extra), "Cache-Control: no-cache, no-store, "
	    "must-revalidate, no-transform, max-age=0\r\n");
	if (!c->req->challenge_long && challenge_ok(c->req->challenge)) {
		size_t	n = strlen(extra);

		snprintf(extra + n, sizeof(extra) - n,
		    "X-Tailscale-Response: response %s\r\n",
		    c->req->challenge);
	}
	respond(c, 204, "No Content", NULL, extra, NULL, 0);
}

static void
serve_metrics(struct conn *c)
{
	struct metrics	 m;
	char		*body;
	size_t		 n;

	if ((body = malloc(64 * 1024)) == NULL) {
		conn_close(c, "out_of_memory");
		return;
	}
	metrics_snapshot(c->w, &m);
	n = metrics_render(&m, body, 64 * 1024);
	if (c->w->m_all != NULL)
		n = metrics_render_workers(c->w->m_all, c->w->nworkers, body, n,
		    64 * 1024);
	respond(c, 200, "OK", "text/plain; version=0.0.4", NULL, body, n);
	free(body);
}

static void
serve_debug(struct conn *c, const char *path)
{
	if (!debug_allowed(c)) {
		respond_text(c, 403, "Forbidden", NULL,
		    "debug access denied\n");
		return;
	}
	if (strcmp(path, "/debug/traffic") == 0) {
		traffic_http(c);
		return;
	}
	if (strcmp(path, "/debug/varz") != 0) {
		respond(c, 200, "OK", "text/html; charset=utf-8",
		    SECURITY_HEADERS, DEBUG_INDEX, sizeof(DEBUG_INDEX) - 1);
		return;
	}
	serve_metrics(c);
}

static void
serve_bootdns(struct conn *c)
{
	const char	*q = strchr(c->req->url, '?');
	char		*body;
	size_t		 len;

	/* Lookups come from everywhere, once: no keep-alive (as Go). */
	c->close_after_write = true;
	if (bootdns_answer(c->w->bootdns, q != NULL ? q + 1 : NULL, c->ip16,
	    &body, &len) < 0) {
		conn_close(c, "out_of_memory");
		return;
	}
	respond(c, 200, "OK", "application/json", SECURITY_HEADERS, body, len);
	free(body);
}

static void
serve_home(struct conn *c)
{
	const char	*home = c->w->cfg.home;
	char		 extra[CONF_STR_MAX + 32];

	if (strcmp(home, "blank") == 0) {
		respond(c, 200, "OK", "text/html; charset=utf-8",
		    SECURITY_HEADERS, "", 0);
	} else if (home[0] != '\0') {
		snprintf(extra, sizeof(extra), "Location: %s\r\n", home);
		respond(c, 302, "Found", NULL, extra, NULL, 0);
	} else {
		respond(c, 200, "OK", "text/html; charset=utf-8",
		    SECURITY_HEADERS, HOME_PAGE, sizeof(HOME_PAGE) - 1);
	}
}

static void
serve_derp(struct conn *c)
{
	struct http_req	*r = c->req;
	char		 up[HDR_SMALL];
	size_t		 i;
	int		 rc;

	for (i = 0; r->upgrade[i] != '\0'; i++)
		up[i] = (char)tolower((unsigned char)r->upgrade[i]);
	up[i] = '\0';
	if (strcmp(up, "websocket") == 0 && strstr(r->ws_protocol, "derp")) {
		/* WebSocket DERP (2.7); bad requests answered as Go's
		 * WebSocket library does (400, RFC 6455 4.4). */
		if (strcmp(r->ws_version, "13") != 0) {
			respond_text(c, 400, "Bad Request",
			    "Sec-WebSocket-Version: 13\r\n",
			    "unsupported WebSocket version\n");
		} else if ((rc = ws_start(c, r->ws_key, r->ws_protocol,
		    r->ideal_node[0] != '\0')) == -EINVAL) {
			respond_text(c, 400, "Bad Request", NULL,
			    "invalid Sec-WebSocket-Key\n");
		} else if (rc < 0) {
			conn_close(c, "out_of_memory");
		}
		return;
	}
	if (strcmp(up, "derp") != 0 && strcmp(up, "websocket") != 0) {
		respond_text(c, 426, "Upgrade Required",
		    "X-Content-Type-Options: nosniff\r\n",
		    "DERP requires connection upgrade\n");
		return;
	}
	session_start(c, strcmp(r->fast_start, "1") == 0,
	    r->ideal_node[0] != '\0');
}

/* Port 80 in TLS mode (PROTOCOL.md 8.8).  Returns false for a /debug
 * request-URI, which the main table serves (its access rules apply). */
static bool
route_port80(struct conn *c, const char *path)
{
	struct http_req	*r = c->req;
	char		 extra[2400 + 300];
	unsigned	 m = c->hp.method;
	const char	*target = r->url;

	if (strcmp(path, "/generate_204") == 0) {
		serve_204(c);
		return true;
	}
	if (strncmp(r->url, "/debug", 6) == 0)
		return false;
	if (m != HTTP_GET && m != HTTP_HEAD) {
		respond_text(c, 400, "Bad Request",
		    "X-Content-Type-Options: nosniff\r\n", "Use HTTPS\n");
	} else if (r->host[0] == '\0' || strpbrk(r->host, "\r\n") != NULL) {
		respond_text(c, 400, "Bad Request", NULL, "missing Host\n");
	} else {
		/* The exact request-URI "/" from a debug-allowed client goes
		 * to the debug index, as Go's Port80Handler does. */
		if (strcmp(r->url, "/") == 0 && debug_allowed(c))
			target = "/debug/";
		snprintf(extra, sizeof(extra), "Location: https://%s%s\r\n",
		    r->host, target);
		respond(c, 302, "Found", NULL, extra, NULL, 0);
	}
	return true;
}

/* ACME HTTP-01 from acme.webroot, on every listener but metrics: port
 * 80 in TLS mode, the plain DERP listener, and the TLS one for
 * validators that follow a redirect.  false: not a challenge path. */
static bool
serve_acme(struct conn *c, const char *path)
{
	char		body[ACME_BODY_MAX];
	size_t		blen = 0;
	unsigned	m = c->hp.method;
	int		st;

	if (c->role == ROLE_METRICS || (st = acme_challenge(
	    c->w->cfg.acme_webroot, path, body, sizeof(body), &blen)) == 0)
		return false;
	if (m != HTTP_GET && m != HTTP_HEAD) {
		respond_text(c, 405, "Method Not Allowed",
		    "Allow: GET, HEAD\r\n", "method not allowed\n");
	} else if (st == 200) {
		c->w->m->acme_challenges_served++;
		log_info_conn("acme_challenge_served", "conn=%" PRIu64
		    " peer=%s path=%s", c->id, c->addr, path);
		respond(c, 200, "OK", "text/plain", NULL, body, blen);
	} else if (st == 400) {
		respond_text(c, 400, "Bad Request", NULL, "bad token\n");
	} else {
		respond_text(c, 404, "Not Found", NULL, "not found\n");
	}
	return true;
}

static void
route(struct conn *c)
{
	struct http_req	*r = c->req;
	char		 path[sizeof(r->url)];
	char		*q;
	unsigned	 m = c->hp.method;

	c->w->m->http_requests++;
	snprintf(path, sizeof(path), "%s", r->url);
	if ((q = strchr(path, '?')) != NULL)
		*q = '\0';
	if (serve_acme(c, path))
		return;
	if (c->role == ROLE_PORT80 && route_port80(c, path))
		return;
	if (c->role == ROLE_METRICS) {
		/* Access is the operator's choice of metrics.listen. */
		if (strcmp(path, "/metrics") == 0 ||
		    strcmp(path, "/debug/varz") == 0)
			serve_metrics(c);
		else
			respond_text(c, 404, "Not Found", NULL, "not found\n");
		return;
	}
	if (m == HTTP_CONNECT) {
		c->close_after_write = true;
		respond_text(c, 403, "Forbidden", NULL, "CONNECT not enabled\n");
	} else if (strcmp(path, "/derp") == 0) {
		serve_derp(c);
	} else if (strcmp(path, "/derp/probe") == 0 ||
	    strcmp(path, "/derp/latency-check") == 0) {
		if (m == HTTP_GET || m == HTTP_HEAD)
			respond(c, 200, "OK", NULL,
			    "Access-Control-Allow-Origin: *\r\n", NULL, 0);
		else
			respond_text(c, 405, "Method Not Allowed", NULL,
			    "bogus probe method\n");
	} else if (strcmp(path, "/generate_204") == 0) {
		serve_204(c);
	} else if (strcmp(path, "/bootstrap-dns") == 0) {
		serve_bootdns(c);
	} else if (strcmp(path, "/robots.txt") == 0) {
		respond(c, 200, "OK", "text/plain; charset=utf-8",
		    SECURITY_HEADERS, "User-agent: *\nDisallow: /\n", 26);
	} else if (strncmp(path, "/debug/", 7) == 0 ||
	    strcmp(path, "/debug") == 0) {
		serve_debug(c, path);
	} else {
		serve_home(c);
	}
}

void
http_input(struct conn *c)
{
	struct bbuf	*in = &c->in;
	struct http_req	*r = c->req;
	size_t		 n, len;
	enum http_errno	 e;

	while (c->state == ST_HTTP && !c->closing && !c->close_after_write &&
	    c->treq == NULL && (len = bbuf_len(in)) > 0) {
		if (len > WK_HTTP_HEAD_MAX - r->head_bytes)
			len = WK_HTTP_HEAD_MAX - r->head_bytes;
		n = http_parser_execute(&c->hp, &settings,
		    (const char *)in->p + in->off, len);
		e = HTTP_PARSER_ERRNO(&c->hp);
		if (e == HPE_PAUSED) {
			http_parser_pause(&c->hp, 0);
		} else if (e != HPE_OK) {
			conn_close(c, "http_bad_request");
			return;
		}
		bbuf_consume(in, n);
		r->head_bytes += n;
		if (!r->done) {
			if (r->head_bytes >= WK_HTTP_HEAD_MAX) {
				c->close_after_write = true;
				c->close_reason = "http_header_too_large";
				respond_text(c, 431, "Request Header Fields "
				    "Too Large", NULL, "request too large\n");
			}
			return;
		}
		route(c);
		if (c->state != ST_HTTP || c->closing)
			return;
		/* Keep-alive: the next request gets a fresh deadline. */
		http_parser_init(&c->hp, HTTP_REQUEST);
		c->hp.data = c;
		r->done = false;
		r->head_bytes = 0;
		(void)loop_timer_set(c->w->loop, &c->deadline,
		    (uint64_t)c->w->cfg.http_timeout_ms);
	}
}

/*
 * Request reading for derpprobe --daemon: http-parser drives a bounded
 * request line and header section, GET and HEAD only, no request body,
 * the three pages, keep-alive and pipelining.  Owns no socket and no
 * memory: derpprobe_daemon.c does the I/O and the deadlines.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tools/derpprobe_http.h"

static const struct {
	const char	*path;
	enum phttp_page	 page;
} pages[] = {
	{ "/", PHTTP_PAGE_STATUS },
	{ "/metrics", PHTTP_PAGE_METRICS },
	{ "/healthz", PHTTP_PAGE_HEALTHZ },
};

static int
on_message_begin(http_parser *hp)
{
	struct phttp	*p = hp->data;

	p->url_len = 0;
	p->url[0] = '\0';
	p->nfields = 0;
	p->in_field = false;
	p->headers_done = false;
	p->page = PHTTP_PAGE_NONE;
	return 0;
}

static int
on_url(http_parser *hp, const char *at, size_t len)
{
	struct phttp	*p = hp->data;

	if (len > PHTTP_URL_MAX - p->url_len) {
		p->status = 414;
		return -1;
	}
	memcpy(p->url + p->url_len, at, len);
	p->url_len += len;
	p->url[p->url_len] = '\0';
	return 0;
}

/* Field names only count: no page needs a header. */
static int
on_header_field(http_parser *hp, const char *at, size_t len)
{
	struct phttp	*p = hp->data;

	(void)at;
	(void)len;
	if (!p->in_field && ++p->nfields > PHTTP_FIELDS_MAX) {
		p->status = 431;
		return -1;
	}
	p->in_field = true;
	return 0;
}

static int
on_header_value(http_parser *hp, const char *at, size_t len)
{
	(void)at;
	(void)len;
	((struct phttp *)hp->data)->in_field = false;
	return 0;
}

/* The page for the request target's path, or PHTTP_PAGE_NONE.  -1 if
 * the target is no URL. */
static int
target_page(const char *url, size_t len, enum phttp_page *page)
{
	struct http_parser_url	u;
	const char		*path = "/";
	size_t			 plen = 1, i;

	http_parser_url_init(&u);
	if (http_parser_parse_url(url, len, 0, &u) != 0)
		return -1;
	if (u.field_set & (1 << UF_PATH)) {
		path = url + u.field_data[UF_PATH].off;
		plen = u.field_data[UF_PATH].len;
	}
	*page = PHTTP_PAGE_NONE;
	for (i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
		if (strlen(pages[i].path) == plen &&
		    memcmp(pages[i].path, path, plen) == 0)
			*page = pages[i].page;
	return 0;
}

/* Refusals decided on the head, before any body is read. */
static int
on_headers_complete(http_parser *hp)
{
	struct phttp	*p = hp->data;

	p->headers_done = true;
	if (hp->http_major != 1)
		p->status = 400;
	else if (hp->method != HTTP_GET && hp->method != HTTP_HEAD)
		p->status = 405;
	else if ((hp->flags & F_CHUNKED) || (hp->content_length > 0 &&
	    hp->content_length != UINT64_MAX))
		p->status = 413;	/* no page takes a body */
	else if (target_page(p->url, p->url_len, &p->page) < 0)
		p->status = 400;
	return p->status != 0 ? -1 : 0;
}

static int
on_message_complete(http_parser *hp)
{
	struct phttp	*p = hp->data;

	p->done = true;
	http_parser_pause(hp, 1);
	return 0;
}

static const http_parser_settings settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_message_complete = on_message_complete,
};

void
phttp_init(struct phttp *p)
{
	memset(p, 0, sizeof(*p));
	http_parser_init(&p->hp, HTTP_REQUEST);
	p->hp.data = p;
}

static void
answer(const struct phttp *p, struct phttp_req *r)
{
	memset(r, 0, sizeof(*r));
	if (p->status != 0) {
		r->status = p->status;
		return;
	}
	r->head = p->hp.method == HTTP_HEAD;
	r->page = p->page;
	r->status = p->page == PHTTP_PAGE_NONE ? 404 : 200;
	/* After an upgrade request the bytes that follow are no HTTP. */
	r->keep_alive = http_should_keep_alive(&p->hp) && !p->hp.upgrade;
}

int
phttp_feed(struct phttp *p, const char *in, size_t len, size_t *used,
    struct phttp_req *r)
{
	size_t		off = 0, take, n;
	enum http_errno	e;

	*used = 0;
	if (p->status != 0) {
		answer(p, r);
		return 1;
	}
	if (p->done) {
		/* The last request was answered: go on with the next. */
		p->done = false;
		p->head_bytes = 0;
		http_parser_pause(&p->hp, 0);
	}
	while (off < len) {
		take = len - off;
		if (!p->headers_done) {
			if (p->head_bytes == PHTTP_HEAD_MAX) {
				p->status = 431;
				break;
			}
			if (take > PHTTP_HEAD_MAX - p->head_bytes)
				take = PHTTP_HEAD_MAX - p->head_bytes;
		}
		n = http_parser_execute(&p->hp, &settings, in + off, take);
		e = HTTP_PARSER_ERRNO(&p->hp);
		p->head_bytes += n;	/* checked only while in the head */
		off += n;
		if (p->done)
			break;
		if (e != HPE_OK || n != take) {
			if (p->status == 0)
				p->status = 400;
			break;
		}
	}
	*used = off;
	if (p->status != 0 || p->done) {
		answer(p, r);
		return 1;
	}
	return 0;
}

const char *
phttp_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Error";
	}
}

ssize_t
phttp_head(char *buf, size_t cap, int status, const char *ctype,
    size_t blen, bool keep_alive)
{
	int	n;

	n = snprintf(buf, cap, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\nCache-Control: no-store\r\n%s"
	    "Connection: %s\r\n\r\n", status, phttp_reason(status), ctype,
	    blen, status == 405 ? "Allow: GET, HEAD\r\n" : "",
	    keep_alive ? "keep-alive" : "close");
	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	return n;
}

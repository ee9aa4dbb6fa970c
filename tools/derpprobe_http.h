/*
 * The derpprobe daemon's HTTP request reader: http-parser with bounded
 * request line and header section, the page table, and response heads.
 * No sockets and no allocation, so the unit tests and the fuzz target
 * drive it with bytes alone.
 */
#ifndef DERPPROBE_HTTP_H
#define DERPPROBE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <http_parser.h>

#ifndef MUST_CHECK
#define MUST_CHECK	__attribute__((warn_unused_result))
#endif

#define PHTTP_URL_MAX		1024	/* request target; longer: 414 */
#define PHTTP_HEAD_MAX		8192	/* request line + fields; over: 431 */
#define PHTTP_FIELDS_MAX	64	/* header fields; more: 431 */

enum phttp_page {
	PHTTP_PAGE_NONE = 0,
	PHTTP_PAGE_STATUS,		/* /: the HTML status page */
	PHTTP_PAGE_METRICS,		/* /metrics: Prometheus text */
	PHTTP_PAGE_HEALTHZ,		/* /healthz */
};

/* What to answer one request with. */
struct phttp_req {
	int		 status;	/* 200, 404, or a refusal (4xx) */
	enum phttp_page	 page;		/* with status 200 */
	bool		 head;		/* HEAD: the head without the body */
	bool		 keep_alive;	/* false after any refusal */
};

/* One connection's parser; caller storage, no resources. */
struct phttp {
	http_parser	 hp;
	size_t		 head_bytes;	/* of the current request */
	size_t		 nfields;
	bool		 in_field;
	bool		 headers_done;
	bool		 done;		/* a request ended; paused */
	int		 status;	/* fatal refusal, 0 if none */
	enum phttp_page	 page;
	size_t		 url_len;
	char		 url[PHTTP_URL_MAX + 1];
};

void	phttp_init(struct phttp *p);

/*
 * Feed in[0..len) of the connection's byte stream.  Sets *used to the
 * bytes consumed.  Returns 1 when a request is complete or refused: r
 * says how to answer, and bytes past *used belong to the next request
 * (pipelining), fed again after the answer.  Returns 0 when the bytes
 * so far are an incomplete request (then *used == len).  A refusal
 * (r->keep_alive false) is final: later calls return it again.
 */
int	phttp_feed(struct phttp *p, const char *in, size_t len, size_t *used,
	    struct phttp_req *r) MUST_CHECK;

/* The reason phrase of status ("Not Found"); "Error" if unknown. */
const char	*phttp_reason(int status);

/*
 * Format a response head into buf[0..cap): status line, Content-Type
 * (ctype), Content-Length blen, no-store, Connection, and Allow on 405.
 * Returns its length, or -ENOSPC.
 */
ssize_t	phttp_head(char *buf, size_t cap, int status, const char *ctype,
	    size_t blen, bool keep_alive) MUST_CHECK;

#endif

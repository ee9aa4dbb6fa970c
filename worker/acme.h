/*
 * ACME HTTP-01 challenge responses from a webroot (PROTOCOL.md 15 item 5):
 * derpd runs no ACME client; certbot --webroot or uacme's hook writes
 * <webroot>/.well-known/acme-challenge/<token> and derpd serves it.
 */
#ifndef WORKER_ACME_H
#define WORKER_ACME_H

#include <stddef.h>

#define ACME_PREFIX		"/.well-known/acme-challenge/"
#define ACME_TOKEN_MAX		255	/* RFC 8555 tokens are ~43 */
#define ACME_BODY_MAX		8192	/* a key authorization is ~87 */

/*
 * Classify a request path.  Returns 0 when path is not under
 * ACME_PREFIX, 1 with *tok pointing at a valid token
 * ([A-Za-z0-9_-]{1,ACME_TOKEN_MAX}) inside path, -EINVAL for a bad or
 * empty token (traversal, dots, escapes).
 */
int	acme_token(const char *path, const char **tok);

/*
 * Answer a challenge path from webroot ("" = feature off).  Returns 0
 * when the request is not ours (the caller routes it as usual), else
 * the HTTP status: 200 with the file's bytes in body[0..*blen), 400 for
 * a bad token, 404 when absent (or not a regular file, a symlink, or
 * larger than cap).  Opens with O_NOFOLLOW relative to directory fds and
 * reads at most cap bytes: a bounded, small read on the loop.
 */
int	acme_challenge(const char *webroot, const char *path, char *body,
	    size_t cap, size_t *blen);

#endif

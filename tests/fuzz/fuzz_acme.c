/*
 * Fuzz the ACME challenge path check: any request path either is not a
 * challenge path, is refused, or yields a token that cannot leave the
 * challenge directory (no '/', no '.', bounded, non-empty).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "worker/acme.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		 path[2048], body[64];
	const char	*tok = NULL;
	size_t		 blen, n = size < sizeof(path) - 1 ? size :
			    sizeof(path) - 1;
	int		 rc;

	memcpy(path, data, n);
	path[n] = '\0';
	rc = acme_token(path, &tok);
	if (rc == 1 && (tok == NULL || tok[0] == '\0' || strpbrk(tok, "/.%")
	    != NULL || strlen(tok) > ACME_TOKEN_MAX ||
	    strncmp(path, ACME_PREFIX, strlen(ACME_PREFIX)) != 0))
		abort();
	if (rc == 0 && strncmp(path, ACME_PREFIX, strlen(ACME_PREFIX)) == 0)
		abort();
	/* A webroot that does not exist: every answer is 0, 400 or 404. */
	rc = acme_challenge("/nonexistent-derpd-fuzz", path, body,
	    sizeof(body), &blen);
	if (rc != 0 && rc != 400 && rc != 404)
		abort();
	return 0;
}

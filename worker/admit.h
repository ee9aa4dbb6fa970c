/*
 * Admission control's pure parts (PROTOCOL.md 5.14): node-key list files
 * loaded into a hash set, and the controller's response body.  No I/O
 * beyond reading a list file; the worker side (libcurl on the loop) is
 * declared in wk.h.
 */
#ifndef WORKER_ADMIT_H
#define WORKER_ADMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "derp/derp.h"

#define ADMIT_BODY_MAX		4096	/* response bytes decoded (as Go) */
#define ADMIT_LIST_MAX		(64 * 1024 * 1024)	/* list file bytes */

struct keyset;

/*
 * Parse a key list: one node public key a line, "nodekey:<64 hex>" or
 * bare 64 hex digits; '#' starts a comment; blank lines and surrounding
 * blanks are ignored.  Returns 0 and a new set in *out, or -EINVAL with
 * the 1-based number of the first bad line in *line, or -ENOMEM.
 */
int		 admit_keys_parse(const char *text, size_t len,
		    struct keyset **out, size_t *line)
		    __attribute__((warn_unused_result));
/* Read and parse path; on failure err holds "path:line: message". */
int		 admit_keys_load(const char *path, struct keyset **out,
		    char *err, size_t errlen)
		    __attribute__((warn_unused_result));
bool		 admit_keys_has(const struct keyset *ks,
		    const uint8_t key[DERP_KEY_LEN]);
size_t		 admit_keys_count(const struct keyset *ks);
void		 admit_keys_free(struct keyset *ks);

/*
 * Decode a controller's 200 body (at most ADMIT_BODY_MAX bytes are
 * looked at): the first JSON value, an object whose "Allow" key (any
 * case) is a boolean.  0 with *allow set (false when the key is absent),
 * or -EPROTO for anything else (the caller rejects).
 */
int		 admit_response_parse(const char *body, size_t len,
		    bool *allow) __attribute__((warn_unused_result));

#endif

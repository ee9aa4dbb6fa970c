/*
 * ACME HTTP-01 from a webroot: validates the token, opens
 * <webroot>/.well-known/acme-challenge/<token> without following a
 * symlink at the token, and returns its bounded contents.  It knows
 * nothing of HTTP framing; http.c turns the result into a response.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "worker/acme.h"

int
acme_token(const char *path, const char **tok)
{
	const char	*t;
	size_t		 i;

	if (strncmp(path, ACME_PREFIX, sizeof(ACME_PREFIX) - 1) != 0)
		return 0;
	t = path + sizeof(ACME_PREFIX) - 1;
	for (i = 0; t[i] != '\0'; i++) {
		char	ch = t[i];

		if (i >= ACME_TOKEN_MAX || !((ch >= 'A' && ch <= 'Z') ||
		    (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '_'))
			return -EINVAL;
	}
	if (i == 0)
		return -EINVAL;
	*tok = t;
	return 1;
}

/* Open the token's file: every step relative to a directory fd, the
 * token itself never through a symlink, never blocking (a FIFO). */
static int
open_token(const char *webroot, const char *tok)
{
	int	root, dir, fd, e;

	root = open(webroot, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root == -1)
		return -errno;
	dir = openat(root, ".well-known/acme-challenge", O_PATH | O_DIRECTORY |
	    O_CLOEXEC);
	e = errno;
	close(root);
	if (dir == -1)
		return -e;
	fd = openat(dir, tok, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
	    O_CLOEXEC);
	e = errno;
	close(dir);
	return fd == -1 ? -e : fd;
}

static int
read_bounded(int fd, char *body, size_t cap, size_t *blen)
{
	struct stat	st;
	size_t		n = 0;
	ssize_t		r;

	if (fstat(fd, &st) == -1)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((size_t)st.st_size > cap)
		return -EFBIG;
	while (n < cap && (r = read(fd, body + n, cap - n)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		n += (size_t)r;
	}
	*blen = n;
	return 0;
}

/* One event kind, two causes: one budget. */
static struct log_limit	unreadable = LOG_LIMIT_INIT(LOG_LIMIT_BURST,
			    LOG_LIMIT_INTERVAL_MS);

int
acme_challenge(const char *webroot, const char *path, char *body,
    size_t cap, size_t *blen)
{
	const char	*tok = NULL;
	int		 rc, fd;

	if (webroot[0] == '\0' || (rc = acme_token(path, &tok)) == 0)
		return 0;
	if (rc < 0)
		return 400;
	if ((fd = open_token(webroot, tok)) < 0) {
		if (fd != -ENOENT && fd != -ENOTDIR)
			log_msg_limited(&unreadable, LOG_WARNING,
			    "acme_challenge_unreadable", "token=%s err=%s",
			    tok, fd == -ELOOP ? "symlink refused" :
			    strerror(-fd));
		return 404;
	}
	rc = read_bounded(fd, body, cap, blen);
	close(fd);
	if (rc < 0) {
		log_msg_limited(&unreadable, LOG_WARNING,
		    "acme_challenge_unreadable", "token=%s err=%s", tok,
		    rc == -EINVAL ? "not a regular file" :
		    rc == -EFBIG ? "file too large" : strerror(-rc));
		return 404;
	}
	return 200;
}

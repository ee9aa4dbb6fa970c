/*
 * Certificate files on disk: each worker watches the directories of its
 * certificate and key (and their symlink targets) with inotify, and after
 * a quiet period installs a changed pair or refuses a bad one (the old
 * stays).  Keeps the notAfter gauge.  SIGHUP reloads stay in worker.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "worker/wk.h"

#define CW_DEBOUNCE_MS	1000	/* after the last event: cert before key */
#define CW_MAX_WAIT_MS	10000	/* a busy directory cannot starve a reload */
#define CW_MAX_WATCH	4	/* both files' directories, and targets' */
/* Not IN_MODIFY: a log file appended to in the same directory would
 * re-arm the quiet period forever; writers close (IN_CLOSE_WRITE). */
#define CW_MASK		(IN_CLOSE_WRITE | IN_ATTRIB | \
			 IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | \
			 IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

struct certwatch {
	struct worker		*w;
	struct loop_io		 io;		/* inotify fd, -1 = off */
	struct loop_timer	 debounce;
	int			 wd[CW_MAX_WATCH];
	int			 nwd;
	struct cert_ident	 loaded;	/* files of the served ctx */
	struct cert_ident	 refused;	/* last refused, not retried */
	bool			 has_refused;
	uint64_t		 burst_ms;	/* first event not yet acted on */
};

static void
ident_one(const char *path, uint64_t v[5])
{
	struct stat	st;

	memset(v, 0, 5 * sizeof(v[0]));
	if (path[0] == '\0' || stat(path, &st) == -1)
		return;		/* missing: all zero */
	v[0] = (uint64_t)st.st_dev;
	v[1] = (uint64_t)st.st_ino;
	v[2] = (uint64_t)st.st_size;
	v[3] = (uint64_t)st.st_mtim.tv_sec * 1000000000u +
	    (uint64_t)st.st_mtim.tv_nsec;
	v[4] = (uint64_t)st.st_ctim.tv_sec * 1000000000u +
	    (uint64_t)st.st_ctim.tv_nsec;
}

void
cert_ident_get(const struct config *cfg, struct cert_ident *id)
{
	ident_one(cfg->tls_certificate, id->v[0]);
	ident_one(cfg->tls_private_key, id->v[1]);
}

static bool
ident_eq(const struct cert_ident *a, const struct cert_ident *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

/* Publish the served certificate's expiry; warn when it has passed. */
static void
note_expiry(struct certwatch *cw)
{
	struct worker	*w = cw->w;
	time_t		 na = tls_ctx_not_after(w->ssl_ctx);

	w->m->tls_cert_not_after = na > 0 ? (uint64_t)na : 0;
	if (na > 0 && na <= time(NULL))
		log_warn("tls_cert_expired", "path=%s not_after=%" PRId64,
		    w->cfg.tls_certificate, (int64_t)na);
}

static int
add_dir(struct certwatch *cw, const char *file, int *wds, int n)
{
	char	copy[PATH_MAX];
	int	wd, i;

	snprintf(copy, sizeof(copy), "%s", file);
	if ((wd = inotify_add_watch(cw->io.fd, dirname(copy), CW_MASK)) < 0) {
		log_debug("tls_watch_skipped", "path=%s err=%s", copy,
		    strerror(errno));
		return n;
	}
	for (i = 0; i < n; i++)
		if (wds[i] == wd)
			return n;	/* the same directory */
	wds[n] = wd;
	return n + 1;
}

/* Watch the directories now in play (renewals swap symlinks, so the
 * targets' directories move), then drop the watches no longer needed. */
static void
rewatch(struct certwatch *cw)
{
	const struct config	*cfg = &cw->w->cfg;
	const char		*files[2] = { cfg->tls_certificate,
				    cfg->tls_private_key };
	char			 real[PATH_MAX];
	int			 wds[CW_MAX_WATCH], n = 0, i, j;

	for (i = 0; i < 2; i++) {
		n = add_dir(cw, files[i], wds, n);
		if (realpath(files[i], real) != NULL &&
		    strcmp(real, files[i]) != 0)
			n = add_dir(cw, real, wds, n);
	}
	for (i = 0; i < cw->nwd; i++) {
		for (j = 0; j < n && wds[j] != cw->wd[i]; j++)
			;
		if (j == n)
			(void)inotify_rm_watch(cw->io.fd, cw->wd[i]);
	}
	memcpy(cw->wd, wds, sizeof(wds));
	cw->nwd = n;
	if (n == 0)
		log_warn("tls_watch_failed", "path=%s reason=no_directory",
		    cfg->tls_certificate);
}

static void	watch_off(struct certwatch *cw);

static void
refuse(struct certwatch *cw, const struct cert_ident *id, const char *err)
{
	cw->refused = *id;
	cw->has_refused = true;
	cw->w->m->tls_cert_reloads_refused++;
	log_warn("tls_cert_refused", "path=%s err=\"%s\" action=kept_old",
	    cw->w->cfg.tls_certificate, err);
}

static void
on_debounce(struct loop_timer *t)
{
	struct certwatch	*cw = t->arg;
	struct worker		*w = cw->w;
	struct cert_ident	 id;
	SSL_CTX			*ctx;
	time_t			 na;
	char			 err[512], subj[128], iss[128];

	rewatch(cw);
	cert_ident_get(&w->cfg, &id);	/* before the load: see wk.h */
	if (ident_eq(&id, &cw->loaded) ||
	    (cw->has_refused && ident_eq(&id, &cw->refused)))
		return;
	if ((ctx = tls_ctx_new(&w->cfg, w->pub, err, sizeof(err))) == NULL) {
		refuse(cw, &id, err);
		return;
	}
	na = tls_ctx_not_after(ctx);
	if (na > 0 && na <= time(NULL)) {
		SSL_CTX_free(ctx);
		refuse(cw, &id, "certificate has expired");
		return;
	}
	/* Live connections hold a reference to the old context. */
	SSL_CTX_free(w->ssl_ctx);
	w->ssl_ctx = ctx;
	cw->loaded = id;
	cw->has_refused = false;
	w->m->tls_cert_reloads_ok++;
	note_expiry(cw);
	tls_ctx_describe(ctx, subj, iss, sizeof(subj));
	log_notice("tls_cert_reloaded", "path=%s subject=\"%s\" issuer=\"%s\" "
	    "not_after=%" PRId64, w->cfg.tls_certificate, subj, iss,
	    (int64_t)na);
}

static void
on_inotify(struct loop_io *io, unsigned events)
{
	struct certwatch	*cw = io->arg;
	char			 buf[4096]
				    __attribute__((aligned(__alignof__(
				    struct inotify_event))));
	ssize_t			 r;
	bool			 any = false;
	uint64_t		 now, wait;

	(void)events;
	/* Which name changed does not matter: the identity check after the
	 * quiet period decides (certbot swaps symlinks in live/, uacme
	 * renames cert.pem.tmp, Kubernetes swaps a ..data link). */
	while ((r = read(io->fd, buf, sizeof(buf))) > 0)
		any = true;
	if (r < 0 && errno != EAGAIN && errno != EINTR) {
		/* Level-triggered: stop rather than spin; SIGHUP re-arms. */
		log_warn("tls_watch_failed", "err=%s action=stopped",
		    strerror(errno));
		watch_off(cw);
		return;
	}
	if (!any)
		return;
	now = loop_now(cw->w->loop);
	if (!loop_timer_armed(&cw->debounce))
		cw->burst_ms = now;
	wait = CW_DEBOUNCE_MS;
	if (cw->burst_ms + CW_MAX_WAIT_MS < now + wait)
		wait = cw->burst_ms + CW_MAX_WAIT_MS > now ?
		    cw->burst_ms + CW_MAX_WAIT_MS - now : 0;
	if (loop_timer_set(cw->w->loop, &cw->debounce, wait) < 0)
		log_warn("tls_watch_timer_failed", "err=%s", strerror(ENOMEM));
}

static void
watch_off(struct certwatch *cw)
{
	loop_timer_cancel(cw->w->loop, &cw->debounce);
	if (cw->io.fd < 0)
		return;
	loop_io_del(cw->w->loop, &cw->io);
	close(cw->io.fd);
	cw->io.fd = -1;
	cw->nwd = 0;
}

static void
watch_on(struct certwatch *cw)
{
	int	fd;

	if (cw->io.fd < 0) {
		if ((fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0) {
			log_warn("tls_watch_failed", "err=%s", strerror(errno));
			return;
		}
		loop_io_init(&cw->io, fd, on_inotify, cw);
		if (loop_io_add(cw->w->loop, &cw->io, LOOP_IN) < 0) {
			log_warn("tls_watch_failed", "err=%s",
			    strerror(ENOMEM));
			close(fd);
			cw->io.fd = -1;
			return;
		}
	}
	rewatch(cw);
}

int
certwatch_start(struct worker *w, const struct cert_ident *id)
{
	struct certwatch	*cw;

	if ((cw = calloc(1, sizeof(*cw))) == NULL)
		return -ENOMEM;
	cw->w = w;
	cw->io.fd = -1;
	loop_timer_init(&cw->debounce, on_debounce, cw);
	w->cw = cw;
	certwatch_loaded(w, id);
	return 0;
}

void
certwatch_loaded(struct worker *w, const struct cert_ident *id)
{
	struct certwatch	*cw = w->cw;

	if (cw == NULL)
		return;
	cw->loaded = *id;
	cw->has_refused = false;
	note_expiry(cw);
	if (w->cfg.tls_watch)
		watch_on(cw);
	else
		watch_off(cw);
}

void
certwatch_stop(struct worker *w)
{
	if (w->cw == NULL)
		return;
	watch_off(w->cw);
	free(w->cw);
	w->cw = NULL;
}

/*
 * worker_main(): builds the worker (keys, TLS context, registry, loop),
 * accepts on the listening sockets it is handed, answers STUN, handles
 * SIGTERM (graceful: Restarting, drain, exit) and SIGHUP (reload), and
 * frees closed connections after each dispatch round.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <sodium.h>

#include "common/ctl.h"
#include "common/log.h"
#include "common/rand.h"
#include "derp/key.h"
#include "mesh/link.h"
#include "worker/bootdns.h"
#include "worker/sandbox.h"
#include "worker/stun.h"
#include "worker/worker.h"
#include "worker/tlsrec.h"
#include "worker/wk.h"

#define STOP_GRACE_MS	5000

struct pkt *
pkt_alloc(struct worker *w, size_t frame_len)
{
	struct pkt	*p;
	size_t		 cap = frame_len <= WK_PKT_SMALL ? WK_PKT_SMALL :
			    frame_len;

	if (cap == WK_PKT_SMALL && (p = w->pool) != NULL) {
		w->pool = p->next;
		w->npool--;
		return p;
	}
	if ((p = malloc(sizeof(*p) + cap)) == NULL)
		return NULL;
	p->cap = (uint32_t)cap;
	return p;
}

void
pkt_free(struct worker *w, struct pkt *p)
{
	if (p->cap == WK_PKT_SMALL && w->npool < WK_POOL_MAX) {
		p->next = w->pool;
		w->pool = p;
		w->npool++;
		return;
	}
	free(p);
}

static void
flush_all(struct worker *w)
{
	struct conn	*c;

	while ((c = w->flush_list) != NULL) {
		w->flush_list = c->flush_next;
		c->flush_pending = false;
		conn_flush(c);
	}
}

/*
 * After each dispatch round: write what the round queued, then read
 * once more from the connections that used up their read budget (bytes
 * left inside TLS never wake epoll), then write what that queued.
 * Writing first keeps a packet's wait to one read pass: re-reading
 * before writing held every packet of the round behind a second budget
 * of reads from every busy sender (measured: turns of 9 ms of worker
 * CPU under backlog, about 40 % of it in the second pass).
 */
static void
after_dispatch(void *arg)
{
	struct worker	*w = arg;
	struct conn	*c, *again;
	int		 i;

	node_drain(w);	/* sibling packets, flushed with the round's own */
	flush_all(w);
	again = w->again_list;
	w->again_list = NULL;
	while ((c = again) != NULL) {
		again = c->again_next;
		c->in_again = false;
		if (!c->closing)
			conn_on_readable(c);
	}
	if (w->again_list != NULL)
		loop_wake(w->loop);
	flush_all(w);
	for (i = 0; i < w->nlinks; i++)
		if (w->links[i] != NULL)
			mesh_link_flush(w->links[i]);
	node_after(w);
	admit_after(w);
	while ((c = w->close_list) != NULL) {
		w->close_list = c->close_next;
		conn_free(c);
	}
	if (w->stopping && w->nconns == 0)
		loop_stop(w->loop);
}

static void
on_accept(struct loop_io *io, unsigned events)
{
	struct worker	*w = io->arg;

	(void)events;
	conn_accept(w, io->fd, io == &w->lis_metrics ? ROLE_METRICS :
	    io == &w->lis_http && w->lis_https.fd >= 0 ? ROLE_PORT80 :
	    ROLE_DERP);
}

static void
stop_timeout(struct loop_timer *t)
{
	struct worker	*w = t->arg;
	struct conn	*c;

	log_notice("stop_forced", "conns=%zu", w->nconns);
	for (c = w->conns; c != NULL; c = c->next)
		conn_close(c, "shutdown");
}

static void
begin_stop(struct worker *w)
{
	struct conn	*c, *next;

	if (w->stopping)
		return;
	w->stopping = true;
	log_notice("stopping", "conns=%zu", w->nconns);
	if (w->lis_https.fd >= 0)
		loop_io_del(w->loop, &w->lis_https);
	if (w->lis_http.fd >= 0)
		loop_io_del(w->loop, &w->lis_http);
	if (w->lis_metrics.fd >= 0)
		loop_io_del(w->loop, &w->lis_metrics);
	for (c = w->conns; c != NULL; c = next) {
		next = c->next;
		if (c->state == ST_DERP)
			session_restarting(c);
		else
			conn_close(c, "shutdown");
	}
	loop_timer_init(&w->stop_timer, stop_timeout, w);
	if (loop_timer_set(w->loop, &w->stop_timer, STOP_GRACE_MS) < 0)
		stop_timeout(&w->stop_timer);
}

static void
reload(struct worker *w)
{
	struct config	 nc;
	char		 err[512];
	const char	*why;
	SSL_CTX		*ctx = NULL;
	struct cert_ident id;
	struct admit_lists *al;

	if (w->cfg_path == NULL) {
		log_notice("reload_skipped", "reason=no_config_file");
		return;
	}
	if (conf_load(w->cfg_path, &nc, err, sizeof(err)) < 0) {
		log_warn("reload_refused", "err=\"%s\"", err);
		return;
	}
	nc.dev = w->cfg.dev;
	if ((why = conf_restart_needed(&w->cfg, &nc)) != NULL) {
		log_warn("reload_refused", "setting=%s reason=needs_restart",
		    why);
		return;
	}
	if (admit_lists_load(&nc, &al, err, sizeof(err)) < 0) {
		log_warn("reload_refused", "err=\"%s\"", err);
		return;
	}
	cert_ident_get(&nc, &id);	/* before the load: see wk.h */
	if (w->ssl_ctx != NULL && (ctx = tls_ctx_new(&nc, w->pub, err,
	    sizeof(err))) == NULL) {
		log_warn("reload_refused", "err=\"%s\"", err);
		admit_lists_free(al);
		return;
	}
	if (strcmp(nc.tls_record_layer, "kernel") == 0 && !w->ktls_probed &&
	    w->ssl_ctx != NULL)
		log_warn("ktls_not_probed", "reason=\"tls.record_layer "
		    "kernel needs a restart\" fallback=derpd");
	w->cfg = nc;
	conn_tune_listeners(w);
	traffic_reload(w);
	admit_lists_set(w, al);
	if (ctx != NULL) {
		/* Live connections keep a reference to the old context. */
		SSL_CTX_free(w->ssl_ctx);
		w->ssl_ctx = ctx;
		/* The SNI check's name pointed into nc, on this stack. */
		SSL_CTX_set_tlsext_servername_arg(ctx,
		    (void *)(uintptr_t)w->cfg.hostname);
		certwatch_loaded(w, &id);
	}
	log_set_level(nc.log_level);
	log_set_conn_limit((uint32_t)nc.log_conn_burst,
	    (uint32_t)nc.log_conn_rate);
	bootdns_reload(w->bootdns);
	log_notice("reloaded", "path=%s", w->cfg_path);
}

static void
on_signal(struct loop_io *io, unsigned events)
{
	struct worker		*w = io->arg;
	struct signalfd_siginfo	 si;

	(void)events;
	while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP)
			reload(w);
		else
			begin_stop(w);
	}
}

/* ---- mesh links (PROTOCOL.md 6) ---- */

static void
on_link_present(void *arg, int idx, const uint8_t key[DERP_KEY_LEN])
{
	if (registry_fwd_add(arg, key, idx) < 0)
		log_warn_limited("forwarder_add_failed", "err=%s", strerror(ENOMEM));
}

static void
on_link_gone(void *arg, int idx, const uint8_t key[DERP_KEY_LEN])
{
	registry_fwd_del(arg, key, idx);
}

static void
on_link_down(void *arg, int idx)
{
	registry_fwd_clear(arg, idx);
}

static int
links_start(struct worker *w)
{
	struct mesh_link_cb	cb = { on_link_present, on_link_gone,
				    on_link_down, w };
	struct mesh_link_conf	lc;
	int			i;

	if (w->cfg.mesh_npeers == 0 || !w->has_mesh_key)
		return 0;
	if ((w->mesh_ctx = mesh_tls_ctx(w->cfg.mesh_ca_file,
	    w->cfg.mesh_insecure)) == NULL) {
		log_err("mesh_tls_failed", "ca_file=%s", w->cfg.mesh_ca_file);
		return -EINVAL;
	}
	for (i = 0; i < w->cfg.mesh_npeers; i++) {
		memset(&lc, 0, sizeof(lc));
		lc.peer = w->cfg.mesh_peers[i];
		lc.priv = w->priv;
		lc.psk = w->mesh_key;
		lc.ctx = w->mesh_ctx;
		lc.idx = i;
		lc.queue_bytes = 4 * 1024 * 1024;
		lc.write_timeout_ms = w->cfg.mesh_write_timeout_ms;
		if ((w->links[i] = mesh_link_new(w->loop, &lc, &cb)) == NULL) {
			log_err("mesh_peer_invalid", "peer=%s", lc.peer);
			return -EINVAL;
		}
		w->nlinks = i + 1;
	}
	return 0;
}

static int
add_listener(struct worker *w, struct loop_io *io, int fd, loop_io_fn fn)
{
	loop_io_init(io, fd, fn, w);
	if (fd < 0)
		return 0;
	/* A socket shared by siblings (socket activation) wakes one of
	 * them per connection; otherwise each has its own SO_REUSEPORT
	 * socket and the kernel spreads connections. */
	return loop_io_add(w->loop, io, LOOP_IN |
	    (w->shared ? LOOP_EXCLUSIVE : 0));
}

static void
send_beat(struct worker *w)
{
	struct ctl_msg	m = { .type = CTL_HEARTBEAT };

	m.clients = (uint32_t)registry_count(w->reg);
	m.conns = (uint32_t)w->nconns;
	(void)ctl_send(w->ctl_io.fd, &m);	/* the next beat retries */
}

/* READY once this worker's view of the node is complete: every sibling
 * has been synchronised over the bus at least once. */
void
worker_check_ready(struct worker *w)
{
	struct ctl_msg	m = { .type = CTL_READY };

	if (w->ready_sent || w->ctl_io.fd < 0 || !node_synced(w))
		return;
	w->ready_sent = true;
	log_notice("ready", "worker=%d", w->id);
	if (ctl_send(w->ctl_io.fd, &m) < 0)
		log_warn("ctl_send_failed", "type=ready");
	send_beat(w);
}

static void
on_beat(struct loop_timer *t)
{
	struct worker	*w = t->arg;
	int		 i, up = 0;

	for (i = 0; i < w->nlinks; i++)
		up += mesh_link_up(w->links[i]);
	w->m->mesh_links_up = (uint64_t)up;
	membuf_scan(w);
	send_beat(w);
	/* Held-back per-connection lines no later line reported. */
	(void)log_limit_flush();
	(void)loop_timer_set(w->loop, &w->beat, 1000);
}

/* WORKER_DOWN and STUN_ADOPT/RELEASE from the supervisor; EOF means
 * it is gone. */
static void
on_ctl(struct loop_io *io, unsigned events)
{
	struct worker	*w = io->arg;
	struct ctl_msg	 m;
	int		 rc;

	(void)events;
	while ((rc = ctl_recv(io->fd, &m)) == 0)
		if (m.type == CTL_WORKER_DOWN)
			node_worker_down(w, m.worker);
		else if (m.type == CTL_STUN_ADOPT ||
		    m.type == CTL_STUN_RELEASE)
			stun_adopt(w, m.worker, m.type == CTL_STUN_ADOPT);
	if (rc != -EAGAIN) {
		loop_io_del(w->loop, io);
		log_warn("supervisor_gone", "err=%s", strerror(-rc));
		begin_stop(w);
	}
}

static void
worker_free(struct worker *w)
{
	struct conn	*c;
	struct pkt	*p;
	int		 i;

	while ((c = w->conns) != NULL) {
		if (!c->closing)
			conn_close(c, "shutdown");
		while ((c = w->close_list) != NULL) {
			w->close_list = c->close_next;
			conn_free(c);
		}
	}
	traffic_fini(w);	/* after the connections' final lines */
	membuf_stop(w);
	while ((p = w->pool) != NULL) {
		w->pool = p->next;
		free(p);
	}
	if (w->sig_io.fd >= 0)
		close(w->sig_io.fd);
	if (w->ctl_io.fd >= 0)
		close(w->ctl_io.fd);
	stun_fini(w);
	bootdns_free(w->bootdns);
	for (i = 0; i < w->nlinks; i++)
		mesh_link_free(w->links[i]);
	SSL_CTX_free(w->mesh_ctx);
	admit_fini(w);
	node_fini(w);
	registry_free(w->reg);
	limits_fini(w);
	certwatch_stop(w);
	SSL_CTX_free(w->ssl_ctx);
	tlsrec_pool_free(w->recpool);	/* after the last conn_free */
	loop_free(w->loop);
	free(w->scratch);
	sodium_memzero(w->priv, sizeof(w->priv));
	sodium_memzero(w->mesh_key, sizeof(w->mesh_key));
	free(w);
}

int
worker_check_config(const struct config *cfg, char *err, size_t errlen)
{
	uint8_t	 pub[DERP_KEY_LEN] = { 0 };
	SSL_CTX	*ctx;
	struct admit_lists *al;

	if (admit_lists_load(cfg, &al, err, errlen) < 0)
		return -EINVAL;
	admit_lists_free(al);
	if (cfg->listen_https[0] == '\0')
		return 0;
	if ((ctx = tls_ctx_new(cfg, pub, err, errlen)) == NULL)
		return -EINVAL;
	SSL_CTX_free(ctx);
	return 0;
}

static int
worker_init(struct worker *w, const struct config *cfg, const char *cfg_path,
    const uint8_t priv[DERP_KEY_LEN], const struct worker_listeners *ls,
    const struct worker_env *env)
{
	char		err[512];
	sigset_t	sigs;
	int		rc, sfd;
	struct cert_ident id;

	/* Nonces and jitter from a per-worker stream, not a getrandom()
	 * each (common/rand.c). */
	if ((rc = rand_install()) < 0) {
		log_err("rand_failed", "err=%s", strerror(-rc));
		return rc;
	}
	w->cfg = *cfg;
	w->cfg_path = cfg_path;
	w->sig_io.fd = -1;
	w->lis_https.fd = w->lis_http.fd = w->lis_stun.fd = -1;
	w->lis_metrics.fd = -1;
	w->ctl_io.fd = env != NULL ? env->ctl_fd : -1;
	w->id = env != NULL ? env->id : 0;
	w->nworkers = env != NULL ? env->nworkers : 1;
	w->shared = env != NULL && env->shared_listeners && w->nworkers > 1;
	w->stun_fds = env != NULL && !w->shared ? env->stun_fds : NULL;
	w->m = &w->m_local;
	if (env != NULL && env->metrics != NULL) {
		w->m_all = env->metrics;
		w->m = &env->metrics[w->id];
		memset(w->m, 0, sizeof(*w->m));	/* a respawn starts over */
	}
	memcpy(w->priv, priv, DERP_KEY_LEN);
	if ((rc = derp_key_public(w->pub, w->priv)) < 0) {
		log_err("bad_node_key", "err=%s", strerror(-rc));
		return rc;
	}
	derp_key_format_hex(w->pub_hex, w->pub);
	if (cfg->mesh_psk_file[0] != '\0') {
		if ((rc = derp_psk_load(cfg->mesh_psk_file, w->mesh_key)) < 0) {
			log_err("mesh_psk_invalid", "path=%s err=%s",
			    cfg->mesh_psk_file, strerror(-rc));
			return rc;
		}
		w->has_mesh_key = true;
	}
	cert_ident_get(cfg, &id);
	if (ls->https >= 0 && (w->ssl_ctx = tls_ctx_new(cfg, w->pub, err,
	    sizeof(err))) == NULL) {
		log_err("tls_config_failed", "err=\"%s\"", err);
		return -EINVAL;
	}
	if ((w->loop = loop_new()) == NULL || (w->reg = registry_new()) ==
	    NULL || (w->scratch = malloc(WK_IN_CAP)) == NULL)
		return -ENOMEM;
	loop_set_turns(w->loop, &w->m->loop_turns);
	w->start_ms = loop_now(w->loop);
	if ((rc = traffic_init(w)) < 0)
		return rc;
	if (w->ssl_ctx != NULL && (rc = certwatch_start(w, &id)) < 0)
		return rc;
	loop_set_after(w->loop, after_dispatch, w);
	if ((rc = add_listener(w, &w->lis_https, ls->https, on_accept)) < 0 ||
	    (rc = add_listener(w, &w->lis_http, ls->http, on_accept)) < 0 ||
	    (rc = add_listener(w, &w->lis_metrics, ls->metrics, on_accept)) < 0 ||
	    (rc = stun_init(w, ls->stun)) < 0)
		return rc;
	conn_tune_listeners(w);
	if ((rc = admit_init(w)) < 0)
		return rc;
	if ((rc = node_init(w, env)) < 0 || (rc = links_start(w)) < 0)
		return rc;
	if ((w->bootdns = bootdns_new(w)) == NULL)
		return -errno;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	if ((sfd = loop_signalfd(&sigs)) < 0)
		return sfd;
	loop_io_init(&w->sig_io, sfd, on_signal, w);
	if ((rc = loop_io_add(w->loop, &w->sig_io, LOOP_IN)) < 0)
		return rc;
	if (w->ctl_io.fd >= 0) {
		/* A worker never outlives its supervisor. */
		(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
		loop_io_init(&w->ctl_io, w->ctl_io.fd, on_ctl, w);
		if ((rc = loop_io_add(w->loop, &w->ctl_io, LOOP_IN)) < 0)
			return rc;
		loop_timer_init(&w->beat, on_beat, w);
		(void)loop_timer_set(w->loop, &w->beat, 1000);
	}
	tls_kernel_probe(w);
	/* Last: everything above opened what it needs. */
	if (cfg->sandbox_seccomp && (rc = sandbox_apply(w->id)) < 0) {
		log_err("seccomp_failed", "err=%s", strerror(-rc));
		return rc;
	}
	return 0;
}

int
worker_main(const struct config *cfg, const char *cfg_path,
    const uint8_t priv[DERP_KEY_LEN], const struct worker_listeners *ls,
    const struct worker_env *env)
{
	struct worker	*w;
	int		 rc;
	uint64_t	 accepts;
	char		 ks[DERP_KEY_TEXT_MAX];

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return 1;
	if ((rc = worker_init(w, cfg, cfg_path, priv, ls, env)) < 0) {
		log_err("worker_init_failed", "err=%s", strerror(-rc));
		worker_free(w);
		return 1;
	}
	derp_key_format_public(ks, w->pub);
	log_notice("serving", "pubkey=%s tls=%d", ks, w->ssl_ctx != NULL);
	worker_check_ready(w);
	rc = loop_run(w->loop);
	if (rc < 0)
		log_err("loop_failed", "err=%s", strerror(-rc));
	accepts = w->m->accepts;
	worker_free(w);
	/* Last: worker_free's conn_closed lines are counted too. */
	(void)log_limit_flush();
	log_notice("stopped", "accepts=%" PRIu64, accepts);
	return rc < 0 ? 1 : 0;
}

/*
 * Fuzz the worker's HTTP front alone: http-parser callbacks, header
 * capture, route() with its tables (main, port 80, metrics), upgrade
 * detection, /debug gating, ACME, /bootstrap-dns, keep-alive and
 * pipelining, on the fake worker.  An upgrade ends the input (fuzz_conn
 * and fuzz_ws go on into the session), so every byte goes to the head.
 * data[0]: bits 0-1 role (DERP, port 80, metrics), bit 2 loopback peer,
 * bit 3 an ACME webroot, bit 4 home = "blank"; data[1]: bytes per read
 * (0 = all at once), so requests arrive split as TCP delivers them.
 * The connection has a socketpair as its socket: responses are written
 * and thrown away, so keep-alive runs as on a real socket.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "common/log.h"
#include "tests/fuzz/fake_worker.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char	webroot[64];

static void
rm_webroot(void)
{
	char	p[160];

	snprintf(p, sizeof(p), "%s/.well-known/acme-challenge/x", webroot);
	(void)unlink(p);
	snprintf(p, sizeof(p), "%s/.well-known/acme-challenge", webroot);
	(void)rmdir(p);
	snprintf(p, sizeof(p), "%s/.well-known", webroot);
	(void)rmdir(p);
	(void)rmdir(webroot);
}

/* A webroot with one token, x. */
static int
make_webroot(void)
{
	char	p[160];
	int	fd;

	snprintf(webroot, sizeof(webroot), "/tmp/fuzz_http_XXXXXX");
	if (mkdtemp(webroot) == NULL)
		return -1;
	atexit(rm_webroot);
	snprintf(p, sizeof(p), "%s/.well-known", webroot);
	(void)mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/.well-known/acme-challenge", webroot);
	(void)mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/.well-known/acme-challenge/x", webroot);
	if ((fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0)
		return -1;
	if (write(fd, "x.thumbprint", 12) != 12) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static void
discard(int fd)
{
	char	buf[16384];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

static void
set_peer(struct conn *c, bool loopback)
{
	memset(c->ip16, 0, sizeof(c->ip16));
	c->ip16[10] = c->ip16[11] = 0xff;
	c->ip16[12] = loopback ? 127 : 192;
	c->ip16[14] = loopback ? 0 : 2;
	c->ip16[15] = loopback ? 1 : 7;
	snprintf(c->addr, sizeof(c->addr), "%s:40000",
	    loopback ? "127.0.0.1" : "192.0.2.7");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum listen_role roles[4] = { ROLE_DERP, ROLE_PORT80,
	    ROLE_METRICS, ROLE_DERP };
	static int	 init;
	struct worker	*w;
	struct conn	*c;
	size_t		 off, step, n;
	int		 sv[2] = { -1, -1 };

	if (!init) {
		log_init("fuzz", LOG_EMERG);
		if (derp_crypto_init() < 0 || make_webroot() < 0)
			return 0;
		init = 1;
	}
	if (size < 2)
		return 0;
	w = fake_worker();
	if (data[0] & 8)
		snprintf(w->cfg.acme_webroot, sizeof(w->cfg.acme_webroot), "%s",
		    webroot);
	if (data[0] & 16)
		snprintf(w->cfg.home, sizeof(w->cfg.home), "blank");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		goto out;
	if ((c = fake_conn_new(w, sv[0])) == NULL) {
		close(sv[0]);
		goto out;
	}
	c->role = roles[data[0] & 3];
	set_peer(c, data[0] & 4);
	step = data[1] ? data[1] : size;
	for (off = 2; off < size; off += n) {
		n = size - off < step ? size - off : step;
		if (bbuf_append(&c->in, data + off, n, WK_IN_CAP) < 0)
			break;
		http_input(c);
		if (c->closing || c->state != ST_HTTP)
			break;		/* closed, or upgraded: head done */
		fake_worker_drain(w);	/* may free c (a failed flush) */
		discard(sv[1]);
		if (w->nconns == 0)
			break;
	}
	fake_worker_drain(w);
	discard(sv[1]);
out:
	fake_worker_reset(w);
	if (sv[1] >= 0)
		close(sv[1]);
	return 0;
}

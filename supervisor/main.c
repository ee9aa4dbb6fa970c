/*
 * derpd: parse the command line, load and check the configuration, load
 * or create the node key, bind the listeners, and run the worker.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <sodium.h>

#include "common/log.h"
#include "conf/conf.h"
#include "derp/key.h"
#include "supervisor/listen.h"
#include "supervisor/sd.h"
#include "supervisor/sup.h"
#include "worker/worker.h"

#define DERPD_VERSION	"0.1.0"

static void
usage(FILE *f)
{
	fprintf(f, "usage: derpd [-c FILE] [-t] [--dev] [-V]\n"
	    "  -c, --config FILE  configuration file "
	    "(default /etc/derpd/derpd.conf)\n"
	    "  -t, --check        check the configuration and exit\n"
	    "      --dev          local development relay: plain HTTP on "
	    "127.0.0.1:3340,\n"
	    "                     STUN on 127.0.0.1:3478, ephemeral key\n"
	    "  -V, --version      print the version and exit\n");
}

static void
raise_nofile(void)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);	/* best effort */
	}
}

/*
 * A node key or mesh PSK others can read is logged (path and mode only),
 * not refused: Go's derper checks nothing.  The node key is read here,
 * as root, so no one else needs it; the PSK is read by the workers as
 * user, so a file of root's group-shared with that user is normal.
 */
static void
warn_exposed(const char *path, unsigned mask)
{
	int	m;

	if (path[0] != '\0' && (m = derp_secret_file_exposed(path, mask)) > 0)
		log_warn("secret_file_exposed", "path=%s mode=0%03o "
		    "hint=\"chmod %s\"", path, (unsigned)m,
		    mask == 077 ? "600" : "o-rwx");
}

/* One set of listeners per worker, bound with SO_REUSEPORT when there
 * are several, so the kernel spreads connections evenly. */
static int
open_listeners(const struct config *cfg, struct worker_listeners *ls, int n)
{
	char	err[256];
	bool	rp = n > 1;
	int	i;

	for (i = 0; i < n; i++) {
		ls[i].https = ls[i].http = ls[i].stun = ls[i].metrics = -1;
		if (cfg->listen_https[0] != '\0' && (ls[i].https =
		    listen_tcp(cfg->listen_https, rp, err, sizeof(err))) < 0)
			goto fail;
		if (cfg->listen_http[0] != '\0' && (ls[i].http =
		    listen_tcp(cfg->listen_http, rp, err, sizeof(err))) < 0)
			goto fail;
		if (cfg->listen_stun[0] != '\0' && (ls[i].stun =
		    listen_udp(cfg->listen_stun, rp, err, sizeof(err))) < 0)
			goto fail;
		if (cfg->metrics_listen[0] != '\0' && (ls[i].metrics =
		    listen_tcp(cfg->metrics_listen, rp, err, sizeof(err))) < 0)
			goto fail;
	}
	log_notice("listening", "https=%s http=%s stun=%s sockets=%d",
	    cfg->listen_https[0] ? cfg->listen_https : "off",
	    cfg->listen_http[0] ? cfg->listen_http : "off",
	    cfg->listen_stun[0] ? cfg->listen_stun : "off", n);
	return 0;
fail:
	log_err("listen_failed", "err=\"%s\"", err);
	return -1;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 't' },
		{ "dev", no_argument, NULL, 'd' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char		*path = NULL;
	bool			 check = false, dev = false, shared = false;
	struct config		 cfg;
	struct worker_listeners	*ls;
	uint8_t			 priv[DERP_KEY_LEN];
	char			 err[512];
	int			 ch, rc;

	while ((ch = getopt_long(argc, argv, "c:tVh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 't':
			check = true;
			break;
		case 'd':
			dev = true;
			break;
		case 'V':
			printf("derpd %s\n", DERPD_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (dev && path == NULL) {
		conf_dev(&cfg);
	} else {
		if (path == NULL)
			path = "/etc/derpd/derpd.conf";
		if (conf_load(path, &cfg, err, sizeof(err)) < 0) {
			fprintf(stderr, "derpd: %s\n", err);
			return 1;
		}
		cfg.dev = dev;
	}
	if (worker_check_config(&cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "derpd: %s\n", err);
		return 1;
	}
	if (check) {
		printf("derpd: configuration %s is valid\n",
		    path ? path : "(dev)");
		return 0;
	}
	log_init("sup", cfg.log_level);
	/* Workers inherit it at fork, and set it again on reload. */
	log_set_conn_limit((uint32_t)cfg.log_conn_burst,
	    (uint32_t)cfg.log_conn_rate);
	if (derp_crypto_init() < 0) {
		log_err("crypto_init_failed", "err=%s", strerror(EIO));
		return 1;
	}
	if (cfg.node_key_file[0] == '\0') {
		derp_key_generate(priv);
	} else if ((rc = derp_keyfile_load(cfg.node_key_file, true,
	    priv)) < 0) {
		log_err("node_key_failed", "path=%s err=%s", cfg.node_key_file,
		    rc == -EINVAL ? "invalid key file" : strerror(-rc));
		return 1;
	}
	warn_exposed(cfg.node_key_file, 077);
	warn_exposed(cfg.mesh_psk_file, 007);
	raise_nofile();
	/* OpenSSL writes with write(2): a peer that vanished mid-write must
	 * cost only its connection (EPIPE), never the worker. */
	signal(SIGPIPE, SIG_IGN);
	if ((ls = calloc((size_t)sup_nworkers(&cfg), sizeof(*ls))) == NULL)
		return 1;
	ls[0].metrics = -1;
	if ((rc = sd_sockets(&cfg, &ls[0].https, &ls[0].http, &ls[0].stun)) > 0) {
		log_notice("socket_activation", "fds=%d", rc);
		shared = true;
		if (cfg.metrics_listen[0] != '\0' && (ls[0].metrics =
		    listen_tcp(cfg.metrics_listen, false, err, sizeof(err))) < 0) {
			log_err("listen_failed", "err=\"%s\"", err);
			free(ls);
			return 1;
		}
	} else if (open_listeners(&cfg, ls, sup_nworkers(&cfg)) < 0) {
		free(ls);
		return 1;
	}
	rc = sup_run(&cfg, path, priv, ls, shared);
	free(ls);
	sodium_memzero(priv, sizeof(priv));
	return rc;
}

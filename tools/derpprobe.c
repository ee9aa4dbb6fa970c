/*
 * derpprobe: health checks for DERP regions (ours or Tailscale's) from a
 * DERP map or a derpd config: STUN, TLS, DERP connect, packets across
 * the mesh, bandwidth; netcheck; one-shot (Nagios exit codes, table or
 * JSON) or a daemon serving Prometheus metrics.  Options and wiring.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <curl/curl.h>

#include "common/log.h"
#include "derp/key.h"
#include "tools/derpprobe.h"
#include "tools/derpprobe_map.h"

#define EXIT_UNKNOWN	3

static void
usage(FILE *f)
{
	fprintf(f,
"usage: derpprobe (--derp-map FILE|URL | --config DERPD.CONF) [options]\n"
"\n"
"Probe every node of a DERP map (Tailscale's JSON format, from a file or an\n"
"https:// URL) or of a derpd config (the node and its mesh peers, one region).\n"
"\n"
"Per node: STUN over IPv4/IPv6, the TLS handshake and certificate expiry,\n"
"the DERP connect, a packet between two clients on the node; per region: a\n"
"packet from a client on A to a client on B for every ordered pair (mesh).\n"
"\n"
"Map and filters:\n"
"  --derp-map FILE|URL     DERP map JSON: a path, file://PATH or http(s)://URL\n"
"  --config FILE           a derpd.conf: uses its mesh PSK (if readable),\n"
"                          mesh.ca_file and mesh.insecure_skip_verify\n"
"  --region LIST           only these regions (codes or IDs, comma-separated)\n"
"  --node LIST             only these nodes (names, comma-separated)\n"
"Probing:\n"
"  --timeout MS            per probe (default 5000)\n"
"  --ca FILE               CA bundle for TLS (default: system trust store)\n"
"  --insecure              do not verify certificates (as InsecureForTests)\n"
"  --mesh-psk FILE         present the mesh key (needed with verify-clients)\n"
"  --bandwidth BYTES       also push BYTES from A to B for every pair\n"
"  --warn-latency MS       warning above this latency (default 1000; 0 off)\n"
"  --cert-warn-days N      warning when a certificate expires sooner (14)\n"
"Modes:\n"
"  (default)               probe once, print a table, exit with the verdict\n"
"  --json                  print a JSON report instead of the table\n"
"  --netcheck              client view: UDP, IPv4/IPv6, public address,\n"
"                          mapping variation, STUN and HTTPS latency per\n"
"                          region, captive portal, preferred region\n"
"  --captive-port PORT     netcheck: port of /generate_204 (default 80, or\n"
"                          the config's plain listener next to TLS)\n"
"  --daemon                probe every --interval, serve /metrics, / and\n"
"                          /healthz on --listen\n"
"  --listen ADDR:PORT      daemon listen address (default 127.0.0.1:8030)\n"
"  --interval S            daemon probe interval (default 15)\n"
"\n"
"Exit status (one-shot and netcheck): 0 ok, 1 warning (slow, certificate\n"
"expiring soon, netcheck: UDP blocked or captive portal), 2 critical (a probe\n"
"failed, netcheck: no region reachable), 3 usage or map error.\n");
}

struct args {
	struct map_source	 src;
	struct probe_opts	 o;
	bool			 json, netcheck, daemon;
	const char		*listen;
	int			 interval;
	char			 ca_buf[PATH_MAX];
};

static int
num(const char *s, long lo, long hi, const char *what)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "derpprobe: %s: \"%s\" is not a number in "
		    "%ld..%ld\n", what, s, lo, hi);
		exit(EXIT_UNKNOWN);
	}
	return (int)v;
}

static void
parse_args(struct args *a, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "derp-map", required_argument, NULL, 'm' },
		{ "config", required_argument, NULL, 'c' },
		{ "region", required_argument, NULL, 'r' },
		{ "node", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ "ca", required_argument, NULL, 'a' },
		{ "insecure", no_argument, NULL, 'k' },
		{ "mesh-psk", required_argument, NULL, 'p' },
		{ "bandwidth", required_argument, NULL, 'b' },
		{ "warn-latency", required_argument, NULL, 'w' },
		{ "cert-warn-days", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "netcheck", no_argument, NULL, 'N' },
		{ "captive-port", required_argument, NULL, 'P' },
		{ "daemon", no_argument, NULL, 'D' },
		{ "listen", required_argument, NULL, 'l' },
		{ "interval", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char	*psk = NULL;
	int		 ch, rc;

	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'm': a->src.path = optarg; a->src.is_config = false;
			break;
		case 'c': a->src.path = optarg; a->src.is_config = true;
			break;
		case 'r': a->src.regions = optarg; break;
		case 'n': a->src.nodes = optarg; break;
		case 't': a->o.timeout_ms = num(optarg, 100, 600000,
		    "--timeout"); break;
		case 'a': a->o.ca_file = a->src.ca_file = optarg; break;
		case 'k': a->o.insecure = true; break;
		case 'p': psk = optarg; break;
		case 'b': a->o.bw_bytes = (size_t)num(optarg, 1, 1 << 30,
		    "--bandwidth"); break;
		case 'w': a->o.warn_latency_ms = num(optarg, 0, 600000,
		    "--warn-latency"); break;
		case 'd': a->o.cert_warn_days = num(optarg, 0, 3650,
		    "--cert-warn-days"); break;
		case 'j': a->json = true; break;
		case 'N': a->netcheck = true; break;
		case 'P': a->o.captive_port = num(optarg, 1, 65535,
		    "--captive-port"); break;
		case 'D': a->daemon = true; break;
		case 'l': a->listen = optarg; break;
		case 'i': a->interval = num(optarg, 1, 86400, "--interval");
			break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(EXIT_UNKNOWN);
		}
	}
	if (optind != argc || a->src.path == NULL) {
		fprintf(stderr, "derpprobe: %s\n", optind != argc ?
		    "unexpected argument" : "--derp-map or --config is needed");
		usage(stderr);
		exit(EXIT_UNKNOWN);
	}
	if (psk != NULL) {
		if ((rc = derp_psk_load(psk, a->o.mesh_key)) < 0) {
			fprintf(stderr, "derpprobe: %s: %s\n", psk,
			    strerror(-rc));
			exit(EXIT_UNKNOWN);
		}
		a->o.has_mesh_key = true;
		a->src.mesh_psk_given = true;
	}
}

static int
reload(struct derp_map *m, void *arg)
{
	struct args	*a = arg;
	char		 err[512];
	int		 rc;

	if ((rc = map_load(&a->src, m, err, sizeof(err))) < 0)
		log_warn("map_load_failed", "err=\"%s\" action=kept_previous",
		    err);
	return rc;
}

int
main(int argc, char **argv)
{
	static struct args	 a;
	struct derp_map		*m;
	struct probe_report	 rep;
	char			 err[512], *js;
	int			 rc;

	a.o.timeout_ms = 5000;
	a.o.warn_latency_ms = 1000;
	a.o.cert_warn_days = 14;
	a.listen = "127.0.0.1:8030";
	a.interval = 15;
	a.src.o = &a.o;
	a.src.ca_buf = a.ca_buf;
	a.src.ca_len = sizeof(a.ca_buf);
	parse_args(&a, argc, argv);
	a.src.timeout_ms = a.o.timeout_ms;
	log_init("derpprobe", LOG_INFO);
	if (derp_crypto_init() < 0 ||
	    curl_global_init(CURL_GLOBAL_DEFAULT) != 0 ||
	    (m = malloc(sizeof(*m))) == NULL) {
		fprintf(stderr, "derpprobe: initialisation failed\n");
		return EXIT_UNKNOWN;
	}
	if ((rc = map_load(&a.src, m, err, sizeof(err))) < 0) {
		fprintf(stderr, "derpprobe: %s\n", err);
		free(m);
		return EXIT_UNKNOWN;
	}
	if (a.o.ca_file == NULL && a.ca_buf[0] != '\0')
		a.o.ca_file = a.ca_buf;
	if (a.daemon) {
		rc = daemon_run(m, &a.o, a.listen, a.interval, reload, &a);
	} else if (a.netcheck) {
		rc = netcheck_run(m, &a.o, a.json, stdout);
	} else {
		memset(&rep, 0, sizeof(rep));
		if (probe_run(m, &a.o, &rep) < 0) {
			fprintf(stderr, "derpprobe: out of memory\n");
			rc = EXIT_UNKNOWN;
		} else if (a.json) {
			if ((js = out_json(&rep)) == NULL) {
				rc = EXIT_UNKNOWN;
			} else {
				printf("%s\n", js);
				free(js);
				rc = (int)probe_report_verdict(&rep);
			}
		} else {
			out_table(&rep, stdout);
			rc = (int)probe_report_verdict(&rep);
		}
		probe_report_fini(&rep);
	}
	free(m);
	curl_global_cleanup();
	return rc;
}

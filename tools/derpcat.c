/*
 * derpcat: a small DERP client for poking at a server: print the key,
 * send a packet, receive packets, ping, or watch presence with the mesh
 * key.  Built on mesh/client.c.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "derp/key.h"
#include "mesh/client.h"

static void
usage(void)
{
	fprintf(stderr,
	    "usage: derpcat [--tls] [--ws] [--insecure] [--ca FILE] "
	    "[--sni NAME]\n"
	    "               [--key FILE | --privkey privkey:HEX] "
	    "[--mesh-psk FILE] [--prober]\n"
	    "               [--timeout MS] HOST:PORT COMMAND [ARGS]\n"
	    "commands: pubkey | send NODEKEY [TEXT] | recv [COUNT] | ping | "
	    "watch [COUNT]\n");
	exit(2);
}

static int
die(const char *what, int err)
{
	fprintf(stderr, "derpcat: %s: %s\n", what, strerror(-err));
	return 1;
}

static void
print_msg(const struct client_msg *m)
{
	char	k[DERP_KEY_TEXT_MAX];
	size_t	i;

	derp_key_format_public(k, m->key);
	switch (m->type) {
	case DERP_FRAME_RECV_PACKET:
		printf("packet from=%s len=%zu data=", k, m->len);
		for (i = 0; i < m->len && i < 64; i++)
			putchar(m->data[i] >= 0x20 && m->data[i] < 0x7f ?
			    m->data[i] : '.');
		putchar('\n');
		break;
	case DERP_FRAME_PEER_GONE:
		printf("peer_gone key=%s reason=%u\n", k, m->reason);
		break;
	case DERP_FRAME_PEER_PRESENT:
		printf("peer_present key=%s port=%u flags=0x%02x\n", k,
		    m->present.port, m->present.flags);
		break;
	case DERP_FRAME_KEEP_ALIVE:
		printf("keepalive\n");
		break;
	case DERP_FRAME_RESTARTING:
		printf("restarting reconnect_in_ms=%u try_for_ms=%u\n",
		    m->reconnect_in_ms, m->try_for_ms);
		break;
	default:
		printf("frame type=0x%02x len=%zu\n", m->type, m->len);
		break;
	}
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tls", no_argument, NULL, 't' },
		{ "ws", no_argument, NULL, 'w' },
		{ "insecure", no_argument, NULL, 'k' },
		{ "ca", required_argument, NULL, 'a' },
		{ "sni", required_argument, NULL, 's' },
		{ "key", required_argument, NULL, 'f' },
		{ "privkey", required_argument, NULL, 'p' },
		{ "mesh-psk", required_argument, NULL, 'm' },
		{ "prober", no_argument, NULL, 'P' },
		{ "timeout", required_argument, NULL, 'T' },
		{ NULL, 0, NULL, 0 },
	};
	struct client_opts	 o;
	struct client		*c;
	struct client_msg	 m;
	uint8_t			 priv[DERP_KEY_LEN], dst[DERP_KEY_LEN];
	char			 host[256], *colon, k[DERP_KEY_TEXT_MAX];
	char			 buf[65536];
	const char		*cmd;
	bool			 have_priv = false;
	int			 ch, err, rc, count, n;

	memset(&o, 0, sizeof(o));
	signal(SIGPIPE, SIG_IGN);	/* a closed server is an error return */
	o.info.can_ack_pings = true;
	if (derp_crypto_init() < 0)
		return 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 't': o.tls = true; break;
		case 'w': o.websocket = true; break;
		case 'k': o.tls_insecure = true; break;
		case 'a': o.ca_file = optarg; break;
		case 's': o.server_name = optarg; break;
		case 'f':
			if ((rc = derp_keyfile_load(optarg, true, priv)) < 0)
				return die(optarg, rc);
			have_priv = true;
			break;
		case 'p':
			if (derp_key_parse_private(optarg, strlen(optarg),
			    priv) < 0)
				return die("--privkey", -EINVAL);
			have_priv = true;
			break;
		case 'm':
			if ((rc = derp_psk_load(optarg, o.info.mesh_key)) < 0)
				return die(optarg, rc);
			o.info.has_mesh_key = true;
			break;
		case 'P': o.info.is_prober = true; break;
		case 'T': o.timeout_ms = atoi(optarg); break;
		default: usage();
		}
	}
	if (argc - optind < 2)
		usage();
	snprintf(host, sizeof(host), "%s", argv[optind]);
	if ((colon = strrchr(host, ':')) == NULL)
		usage();
	*colon = '\0';
	o.host = host[0] == '[' ? host + 1 : host;
	if (host[0] == '[' && colon[-1] == ']')
		colon[-1] = '\0';
	o.port = (uint16_t)atoi(colon + 1);
	cmd = argv[optind + 1];
	if (!have_priv)
		derp_key_generate(priv);
	o.priv = priv;
	if (strcmp(cmd, "watch") == 0)
		o.watch_conns = true;
	if ((c = client_connect(&o, &err)) == NULL)
		return die("connect", err);
	rc = 0;
	if (strcmp(cmd, "pubkey") == 0) {
		derp_key_format_public(k, client_public_key(c));
		printf("%s\n", k);
	} else if (strcmp(cmd, "send") == 0 && argc - optind >= 3) {
		const char	*dk = argv[optind + 2];

		if (derp_key_parse_public(dk, strlen(dk), dst) < 0)
			rc = die("bad NODEKEY", -EINVAL);
		else {
			if (argc - optind >= 4)
				n = snprintf(buf, sizeof(buf), "%s",
				    argv[optind + 3]);
			else
				n = (int)fread(buf, 1, sizeof(buf), stdin);
			if ((err = client_send_packet(c, dst, buf,
			    (size_t)n)) < 0)
				rc = die("send", err);
		}
	} else if (strcmp(cmd, "recv") == 0 || strcmp(cmd, "watch") == 0) {
		count = argc - optind >= 3 ? atoi(argv[optind + 2]) : -1;
		while (count != 0 && (err = client_recv(c, &m, -1)) == 0) {
			print_msg(&m);
			if (count > 0 && (m.type == DERP_FRAME_RECV_PACKET ||
			    m.type == DERP_FRAME_PEER_PRESENT))
				count--;
		}
		if (count != 0)
			rc = die("recv", err);
	} else if (strcmp(cmd, "ping") == 0) {
		uint8_t		data[DERP_PING_LEN] = "derpcat";
		struct timespec	a, b;

		clock_gettime(CLOCK_MONOTONIC, &a);
		if ((err = client_ping(c, data)) < 0)
			rc = die("ping", err);
		while (rc == 0 && (err = client_recv(c, &m, 5000)) == 0 &&
		    m.type != DERP_FRAME_PONG)
			;
		if (rc == 0 && err < 0)
			rc = die("pong", err);
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (rc == 0)
			printf("pong rtt_ms=%.3f\n", (double)(b.tv_sec -
			    a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec)
			    / 1e6);
	} else {
		client_free(c);
		usage();
	}
	client_free(c);
	return rc;
}

/*
 * derpprobe internals shared by its files: probe options, results and
 * reports (derpprobe_run.c), the low-level network probes
 * (derpprobe_net.c), netcheck (derpprobe_netcheck.c), output formats
 * (derpprobe_out.c) and the daemon's HTTP server (derpprobe_daemon.c).
 */
#ifndef TOOLS_DERPPROBE_H
#define TOOLS_DERPPROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "derp/derp.h"
#include "derp/derpmap.h"

enum probe_class {
	PROBE_TLS,		/* derp/<r>/<n>/tls */
	PROBE_UDP,		/* derp/<r>/<n>/udp, udp6: STUN */
	PROBE_CONNECT,		/* derp/<r>/<n>/connect: DERP handshake */
	PROBE_MESH,		/* derp/<r>/<a>/<b>/mesh: a packet a -> b */
	PROBE_BW,		/* derp/<r>/<a>/<b>/bw */
};

enum probe_verdict {
	PROBE_OK,
	PROBE_WARN,
	PROBE_FAIL,
};

struct probe_opts {
	int		 timeout_ms;		/* per probe */
	const char	*ca_file;		/* NULL = system store */
	bool		 insecure;		/* every node InsecureForTests */
	int		 warn_latency_ms;	/* 0 = off */
	int		 cert_warn_days;
	size_t		 bw_bytes;		/* 0 = no bandwidth probe */
	bool		 has_mesh_key;
	uint8_t		 mesh_key[DERP_KEY_LEN];
	int		 captive_port;		/* netcheck, default 80 */
};

struct probe_result {
	char			 name[320];
	enum probe_class	 cls;
	int64_t			 region_id;
	char			 region[DERP_MAP_NAME_MAX];	/* code */
	char			 host[DERP_MAP_HOST_MAX];	/* from's */
	char			 from[DERP_MAP_NAME_MAX];
	char			 to[DERP_MAP_NAME_MAX];		/* pairs */
	int			 family;	/* 4 or 6 (udp), else 0 */
	enum probe_verdict	 verdict;
	double			 latency_ms;	/* < 0: none */
	double			 cert_days;	/* tls */
	double			 bytes_per_sec;	/* bw */
	double			 end_unix;
	char			 detail[200];	/* error or note */
};

struct probe_report {
	struct probe_result	*res;
	size_t			 n, cap;
	double			 started_unix;
	double			 duration_ms;
};

/* Run every probe for every node and ordered node pair of m.  Results
 * are appended to rep (which the caller zeroes first).  0 or -ENOMEM. */
int	probe_run(const struct derp_map *m, const struct probe_opts *o,
	    struct probe_report *rep) MUST_CHECK;
void	probe_report_fini(struct probe_report *rep);
enum probe_verdict probe_report_verdict(const struct probe_report *rep);
const char	*probe_class_name(enum probe_class c);
const char	*probe_verdict_name(enum probe_verdict v);

/* derpprobe_net.c */
double	now_mono_ms(void);
double	now_unix(void);
/* A non-blocking UDP socket of family; fd or -errno. */
int	net_udp_open(int family);
/* Resolve an IP literal and port into ss; 0 or -EINVAL. */
int	net_addr(const char *ip, uint16_t port, struct sockaddr_storage *ss,
	    socklen_t *sl) MUST_CHECK;
/* One STUN binding round trip on fd to dst, resending each second until
 * timeout_ms; fills rtt and the mapped address.  0, -ETIMEDOUT, -errno. */
int	net_stun(int fd, const struct sockaddr *dst, socklen_t dl,
	    int timeout_ms, double *rtt_ms, struct sockaddr_storage *mapped)
	    MUST_CHECK;

struct tls_probe {
	const char	*dial;		/* IP literal or name */
	uint16_t	 port;
	const char	*sni;		/* HostName */
	const char	*cert_name;	/* name to verify, or sha256-raw:hex */
	const char	*ca_file;
	bool		 insecure;
	int		 timeout_ms;
};
/* TLS handshake: time, leaf certificate days left (meta-cert skipped).
 * 0 or -errno with err filled. */
int	net_tls(const struct tls_probe *t, double *ms, double *days,
	    char *err, size_t errlen) MUST_CHECK;

/* Format a sockaddr as "ip:port" / "[ip]:port". */
void	net_format(const struct sockaddr_storage *ss, char *out, size_t cap);

/* derpprobe_netcheck.c */
int	netcheck_run(const struct derp_map *m, const struct probe_opts *o,
	    bool json, FILE *out);

/* derpprobe_out.c */
void	out_table(const struct probe_report *rep, FILE *f);
/* JSON report; NULL on ENOMEM.  Caller frees. */
char	*out_json(const struct probe_report *rep);
/* Prometheus text / HTML into a malloc'd string; NULL on ENOMEM. */
char	*out_metrics(const struct probe_report *rep, double interval_s,
	    uint64_t rounds, uint64_t map_failures);
char	*out_html(const struct probe_report *rep);

/* derpprobe_daemon.c: serve until SIGTERM/SIGINT.  load reloads the map
 * before each round (NULL: keep m).  Returns the exit code. */
typedef int (*map_load_fn)(struct derp_map *m, void *arg);
int	daemon_run(struct derp_map *m, const struct probe_opts *o,
	    const char *listen, int interval_s, map_load_fn load, void *arg);

#endif

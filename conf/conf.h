/*
 * derpd configuration: the validated struct every process works from,
 * and the libconfig loader that fills it (the only user of libconfig).
 * Workers receive a copy at fork; strings are fixed arrays so the struct
 * can be copied by value.
 */
#ifndef CONF_CONF_H
#define CONF_CONF_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONF_STR_MAX	256
#define CONF_MAX_PEERS	16
#define CONF_MAX_NAMES	16	/* per bootstrap_dns list */

struct config {
	char	 hostname[CONF_STR_MAX];	/* TLS hostname / SNI check */
	int	 workers;			/* 0 = online CPUs */
	int	 worker_hang_timeout_ms;	/* no heartbeat: kill */
	char	 listen_https[CONF_STR_MAX];	/* "" = off; "host:port" */
	char	 listen_http[CONF_STR_MAX];
	char	 listen_stun[CONF_STR_MAX];
	char	 tls_certificate[PATH_MAX];
	char	 tls_private_key[PATH_MAX];
	bool	 tls_watch;			/* reload on file change */
	char	 tls_record_layer[16];	/* "derpd" | "kernel" | "openssl" */
	int	 tls_key_update_records;	/* our KeyUpdate's interval */
	char	 acme_webroot[PATH_MAX];	/* "" = no challenge path */
	char	 node_key_file[PATH_MAX];	/* "" = ephemeral key */
	char	 runtime_dir[PATH_MAX];
	char	 home[CONF_STR_MAX];		/* "", "blank" or http(s) URL */
	char	 user[CONF_STR_MAX];		/* "" = keep */
	char	 group[CONF_STR_MAX];
	int	 log_level;			/* LOG_* */
	int	 log_conn_burst;		/* per-connection lines, 50 */
	int	 log_conn_rate;			/* then a second, 10; 0 = all */

	/* derp */
	int	 keepalive_ms;			/* 60000 */
	int	 write_timeout_ms;		/* 2000, 0 = none */
	int	 mesh_write_timeout_ms;		/* 30000 */
	int	 handshake_timeout_ms;		/* 10000 */
	int	 http_timeout_ms;		/* 30000 */
	int	 idle_timeout_ms;		/* 0 = none (as Go) */
	int	 queue_packets;			/* per queue, 32 */
	int	 queue_bytes;			/* per queue, 48 KiB */
	int	 max_clients;			/* per node, 0 = unlimited */
	int	 restart_reconnect_ms;		/* Restarting frame fields */
	int	 restart_try_for_ms;
	int	 tcp_keepalive_s;		/* 600 */
	int	 tcp_user_timeout_ms;		/* 15000 */

	/* mesh */
	char	 mesh_psk_file[PATH_MAX];
	char	 mesh_peers[CONF_MAX_PEERS][CONF_STR_MAX];
	int	 mesh_npeers;
	char	 mesh_ca_file[PATH_MAX];
	bool	 mesh_insecure;

	/* stun */
	bool	 stun_any_client;

	/* limits (reloadable) */
	double	 accept_rate;			/* per node, conn/s; 0 = off */
	int	 accept_burst;			/* 0 = max(1, rate) */
	int	 client_rate_bytes;		/* per client, 0 = off */
	int	 client_burst_bytes;		/* >= 65568 */
	int	 max_per_ip;			/* per worker; 0 = off */

	/* admission (PROTOCOL.md 5.14, reloadable) */
	char	 admission_url[CONF_STR_MAX];	/* "" = no controller */
	int	 admission_timeout_ms;		/* 5000 */
	bool	 admission_fail_open;		/* transport failure admits */
	int	 admission_max_in_flight;	/* per worker, 256 */
	char	 admission_allow_file[PATH_MAX];	/* "" = everyone */
	char	 admission_deny_file[PATH_MAX];	/* "" = no one */

	/* metrics */
	char	 metrics_listen[CONF_STR_MAX];

	/* traffic dump (reloadable) */
	char	 traffic_dump_file[PATH_MAX];	/* "" = off */
	int	 traffic_interval_s;		/* 60 */
	int	 traffic_max_entries;		/* lines per period, 10000 */
	/* bootstrap_dns (reloadable) */
	char	 bootdns_names[CONF_MAX_NAMES][CONF_STR_MAX];
	int	 bootdns_nnames;
	char	 bootdns_unpublished[CONF_MAX_NAMES][CONF_STR_MAX];
	int	 bootdns_nunpub;
	int	 bootdns_refresh_s;		/* 600 */
	char	 bootdns_txt_resolver[CONF_STR_MAX];	/* "" = resolv.conf */
	/* sandbox (restart) */
	bool	 sandbox_seccomp;		/* worker syscall allow-list */

	bool	 dev;				/* set by --dev, not the file */
};

/* Defaults for every field (what an empty file yields). */
void	conf_defaults(struct config *c);
/* The --dev configuration: plain HTTP on 127.0.0.1:3340, STUN on
 * 127.0.0.1:3478, ephemeral key, temporary runtime dir left to caller. */
void	conf_dev(struct config *c);
/*
 * Load and validate path into c (defaults first).  On failure returns
 * -EINVAL (or -errno) and writes "file:line: message" into err.
 */
int	conf_load(const char *path, struct config *c, char *err,
	    size_t errlen) __attribute__((warn_unused_result));
/* Parse a config held in memory (tests, fuzzing); name is used in
 * messages. */
int	conf_parse_string(const char *text, const char *name,
	    struct config *c, char *err, size_t errlen)
	    __attribute__((warn_unused_result));
/* Split "host:port", "[v6]:port", ":port" into a sockaddr-friendly host
 * ("" = wildcard) and port.  0 or -EINVAL. */
int	conf_split_hostport(const char *s, char *host, size_t hostlen,
	    uint16_t *port) __attribute__((warn_unused_result));
/* Settings whose change needs a restart differ between a and b: returns
 * the first such key, or NULL. */
const char *conf_restart_needed(const struct config *a,
	    const struct config *b);

#endif

/*
 * Configuration loader: a schema table drives defaults, types, ranges,
 * the reload/restart split and unknown-key detection (STYLE.md 9).  The
 * only user of libconfig; errors are "file:line: message".
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <libconfig.h>

#include "common/log.h"
#include "conf/conf.h"

enum conf_type {
	CONF_INT,
	CONF_FLOAT,
	CONF_BOOL,
	CONF_STR,
	CONF_LEVEL,	/* string -> LOG_* */
	CONF_GROUP,
	CONF_LIST,	/* list of strings, checked one by one */
};

enum { CONF_RELOAD, CONF_RESTART };

struct conf_item {
	const char	*path;
	enum conf_type	 type;
	size_t		 off, size;
	long		 min, max;
	long		 dflt;
	const char	*sdflt;
	int		 when;
};

#define F(f)	offsetof(struct config, f), sizeof(((struct config *)0)->f)
#define G(p)	{ p, CONF_GROUP, 0, 0, 0, 0, 0, NULL, CONF_RELOAD }
#define S(p, f, d, w)	{ p, CONF_STR, F(f), 0, 0, 0, d, w }
#define I(p, f, lo, hi, d, w)	{ p, CONF_INT, F(f), lo, hi, d, NULL, w }
#define B(p, f, d, w)	{ p, CONF_BOOL, F(f), 0, 1, d, NULL, w }
/* A list of at most max strings into char f[max][CONF_STR_MAX]; its
 * count field and entry check are in conf_lists[]. */
#define L(p, f, max, w)	{ p, CONF_LIST, F(f), 0, max, 0, NULL, w }

static const struct conf_item conf_items[] = {
	S("hostname", hostname, "", CONF_RELOAD),
	I("workers", workers, 0, 256, 0, CONF_RESTART),
	I("worker_hang_timeout_ms", worker_hang_timeout_ms, 2000, 600000, 5000,
	    CONF_RELOAD),
	G("listen"),
	S("listen.https", listen_https, "[::]:443", CONF_RESTART),
	S("listen.http", listen_http, "[::]:80", CONF_RESTART),
	S("listen.stun", listen_stun, "[::]:3478", CONF_RESTART),
	G("tls"),
	S("tls.certificate", tls_certificate, "/etc/derpd/tls/fullchain.pem",
	    CONF_RELOAD),
	S("tls.private_key", tls_private_key, "/etc/derpd/tls/privkey.pem",
	    CONF_RELOAD),
	B("tls.watch", tls_watch, 1, CONF_RELOAD),
	/* "derpd": TLS 1.3 records framed by derpd after the handshake
	 * (worker/tlsrec.c); "openssl": OpenSSL keeps the connection. */
	S("tls.record_layer", tls_record_layer, "derpd", CONF_RELOAD),
	/* = TLSREC_REKEY_SEQ (worker/tlsrec.h), the default and the most. */
	I("tls.key_update_records", tls_key_update_records, 64, 16777216,
	    16777216, CONF_RELOAD),
	G("acme"),
	S("acme.webroot", acme_webroot, "", CONF_RELOAD),
	S("node_key_file", node_key_file, "/var/lib/derpd/derpd.key",
	    CONF_RESTART),
	S("runtime_dir", runtime_dir, "/run/derpd", CONF_RESTART),
	S("home", home, "", CONF_RELOAD),
	S("user", user, "derpd", CONF_RESTART),
	S("group", group, "derpd", CONF_RESTART),
	G("log"),
	{ "log.level", CONF_LEVEL, F(log_level), 0, 0, LOG_INFO, NULL,
	    CONF_RELOAD },
	/* Per-connection lines, per worker and event (common/log.h). */
	I("log.conn_burst", log_conn_burst, 1, 100000, LOG_CONN_BURST,
	    CONF_RELOAD),
	I("log.conn_rate", log_conn_rate, 0, 100000, LOG_CONN_RATE,
	    CONF_RELOAD),
	G("derp"),
	I("derp.keepalive_ms", keepalive_ms, 100, 3600000, 60000, CONF_RELOAD),
	I("derp.write_timeout_ms", write_timeout_ms, 0, 600000, 2000,
	    CONF_RELOAD),
	I("derp.mesh_write_timeout_ms", mesh_write_timeout_ms, 100, 600000,
	    30000, CONF_RELOAD),
	I("derp.handshake_timeout_ms", handshake_timeout_ms, 100, 600000,
	    10000, CONF_RELOAD),
	I("derp.http_timeout_ms", http_timeout_ms, 100, 600000, 30000,
	    CONF_RELOAD),
	I("derp.idle_timeout_ms", idle_timeout_ms, 0, 86400000, 0,
	    CONF_RELOAD),
	I("derp.queue_packets", queue_packets, 1, 4096, 32, CONF_RELOAD),
	I("derp.queue_bytes", queue_bytes, 65600, 67108864, 98304,
	    CONF_RELOAD),
	I("derp.max_clients", max_clients, 0, 10000000, 0, CONF_RELOAD),
	I("derp.restart_reconnect_ms", restart_reconnect_ms, 0, 3600000, 1000,
	    CONF_RELOAD),
	I("derp.restart_try_for_ms", restart_try_for_ms, 0, 3600000, 30000,
	    CONF_RELOAD),
	I("derp.tcp_keepalive_s", tcp_keepalive_s, 0, 86400, 600,
	    CONF_RELOAD),
	I("derp.tcp_user_timeout_ms", tcp_user_timeout_ms, 0, 600000, 15000,
	    CONF_RELOAD),
	G("mesh"),
	S("mesh.psk_file", mesh_psk_file, "", CONF_RESTART),
	L("mesh.peers", mesh_peers, CONF_MAX_PEERS, CONF_RELOAD),
	S("mesh.ca_file", mesh_ca_file, "", CONF_RELOAD),
	B("mesh.insecure_skip_verify", mesh_insecure, 0, CONF_RELOAD),
	G("stun"),
	B("stun.any_client", stun_any_client, 0, CONF_RELOAD),
	G("limits"),
	{ "limits.accept_rate", CONF_FLOAT, F(accept_rate), 0, 1000000, 0,
	    NULL, CONF_RELOAD },
	I("limits.accept_burst", accept_burst, 0, 1000000, 0, CONF_RELOAD),
	I("limits.client_rate_bytes", client_rate_bytes, 0, 2000000000, 0,
	    CONF_RELOAD),
	I("limits.client_burst_bytes", client_burst_bytes, 65568, 2000000000,
	    65568, CONF_RELOAD),
	I("limits.max_per_ip", max_per_ip, 0, 1000000, 0, CONF_RELOAD),
	G("admission"),
	S("admission.url", admission_url, "", CONF_RELOAD),
	I("admission.timeout_ms", admission_timeout_ms, 100, 600000, 5000,
	    CONF_RELOAD),
	B("admission.fail_open", admission_fail_open, 1, CONF_RELOAD),
	I("admission.max_in_flight", admission_max_in_flight, 1, 65536, 256,
	    CONF_RELOAD),
	S("admission.allow_keys_file", admission_allow_file, "", CONF_RELOAD),
	S("admission.deny_keys_file", admission_deny_file, "", CONF_RELOAD),
	G("metrics"),
	S("metrics.listen", metrics_listen, "127.0.0.1:9090", CONF_RESTART),
	G("traffic"),
	S("traffic.dump_file", traffic_dump_file, "", CONF_RELOAD),
	I("traffic.interval_s", traffic_interval_s, 1, 86400, 60, CONF_RELOAD),
	I("traffic.max_entries", traffic_max_entries, 1, 1000000, 10000,
	    CONF_RELOAD),
	G("bootstrap_dns"),
	L("bootstrap_dns.names", bootdns_names, CONF_MAX_NAMES, CONF_RELOAD),
	L("bootstrap_dns.unpublished", bootdns_unpublished, CONF_MAX_NAMES,
	    CONF_RELOAD),
	I("bootstrap_dns.refresh_s", bootdns_refresh_s, 1, 86400, 600,
	    CONF_RELOAD),
	S("bootstrap_dns.txt_resolver", bootdns_txt_resolver, "", CONF_RELOAD),
	G("sandbox"),
	B("sandbox.seccomp", sandbox_seccomp, 0, CONF_RESTART),
};

#define NITEMS	(sizeof(conf_items) / sizeof(conf_items[0]))

static const char *const level_names[] = {
	[LOG_ERR] = "err", [LOG_WARNING] = "warn", [LOG_NOTICE] = "notice",
	[LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void
conf_defaults(struct config *c)
{
	size_t	i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < NITEMS; i++) {
		const struct conf_item	*it = &conf_items[i];
		char			*dst = (char *)c + it->off;

		switch (it->type) {
		case CONF_INT:
		case CONF_LEVEL:
			*(int *)(void *)dst = (int)it->dflt;
			break;
		case CONF_BOOL:
			*(bool *)(void *)dst = it->dflt != 0;
			break;
		case CONF_FLOAT:
			*(double *)(void *)dst = (double)it->dflt;
			break;
		case CONF_STR:
			snprintf(dst, it->size, "%s", it->sdflt);
			break;
		default:
			break;
		}
	}
}

void
conf_dev(struct config *c)
{
	conf_defaults(c);
	snprintf(c->hostname, sizeof(c->hostname), "localhost");
	c->listen_https[0] = '\0';
	snprintf(c->listen_http, sizeof(c->listen_http), "127.0.0.1:3340");
	snprintf(c->listen_stun, sizeof(c->listen_stun), "127.0.0.1:3478");
	c->node_key_file[0] = '\0';
	c->runtime_dir[0] = '\0';
	c->user[0] = c->group[0] = '\0';
	c->metrics_listen[0] = '\0';
	c->workers = 1;
	c->dev = true;
}

int
conf_split_hostport(const char *s, char *host, size_t hostlen,
    uint16_t *port)
{
	const char	*colon, *h = s;
	size_t		 hl;
	char		*end;
	long		 p;
	unsigned char	 buf[16];

	if (s[0] == '[') {
		const char	*rb = strchr(s, ']');

		if (rb == NULL || rb[1] != ':')
			return -EINVAL;
		h = s + 1;
		hl = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL ||
		    memchr(s, ':', (size_t)(colon - s)) != NULL)
			return -EINVAL;
		hl = (size_t)(colon - s);
	}
	if (hl >= hostlen || strpbrk(colon + 1, " \t") != NULL)
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (s[0] == '[' && inet_pton(AF_INET6, host, buf) != 1)
		return -EINVAL;
	if (strpbrk(host, " \t/[]") != NULL)
		return -EINVAL;
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno != 0 || end == colon + 1 || *end != '\0' || p < 1 ||
	    p > 65535)
		return -EINVAL;
	*port = (uint16_t)p;
	return 0;
}

static const struct conf_item *
item_find(const char *path)
{
	size_t	i;

	for (i = 0; i < NITEMS; i++)
		if (strcmp(conf_items[i].path, path) == 0)
			return &conf_items[i];
	return NULL;
}

static int
fail(char *err, size_t errlen, const char *file, int line, const char *fmt,
    const char *a, const char *b)
{
	char	msg[1024];

	snprintf(msg, sizeof(msg), fmt, a, b);
	if (line > 0)
		snprintf(err, errlen, "%s:%d: %s", file, line, msg);
	else
		snprintf(err, errlen, "%s: %s", file, msg);
	return -EINVAL;
}

static int
check_peer(const char *p)
{
	const char	*slash = strchr(p, '/');
	char		 host[CONF_STR_MAX];
	uint16_t	 port;

	if (p[0] == '\0' || strpbrk(p, " \t") != NULL ||
	    (slash != NULL && strchr(slash + 1, '/') != NULL) ||
	    slash == p || (slash != NULL && slash[1] == '\0'))
		return -EINVAL;
	/* host[:port]: a colon form must parse as host:port. */
	if (slash == NULL && strchr(p, ':') != NULL && p[0] != '[')
		return conf_split_hostport(p, host, sizeof(host), &port);
	return 0;
}

/* A hostname for the resolver: 1..253 of [A-Za-z0-9._-]. */
static int
check_dns_name(const char *p)
{
	size_t	n = strlen(p);

	if (n == 0 || n > 253 || p[0] == '.' || p[0] == '-' ||
	    strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._-") != n || strstr(p, "..") != NULL)
		return -EINVAL;
	return 0;
}

/* "name" or "name/txtname". */
static int
check_unpublished(const char *p)
{
	const char	*slash = strchr(p, '/');
	char		 name[CONF_STR_MAX];

	if (slash == NULL)
		return check_dns_name(p);
	if ((size_t)(slash - p) >= sizeof(name))
		return -EINVAL;
	memcpy(name, p, (size_t)(slash - p));
	name[slash - p] = '\0';
	if (check_dns_name(name) < 0)
		return -EINVAL;
	return check_dns_name(slash + 1);
}

/* "ip:port" or "[ip6]:port", a numeric address. */
static int
check_ip_port(const char *v)
{
	char		host[CONF_STR_MAX];
	unsigned char	a[16];
	uint16_t	port;

	if (conf_split_hostport(v, host, sizeof(host), &port) < 0)
		return -EINVAL;
	if (inet_pton(AF_INET, host, a) != 1 && inet_pton(AF_INET6, host,
	    a) != 1)
		return -EINVAL;
	return 0;
}

/* The CONF_LIST items: where the count goes and how an entry is
 * checked (the syntax is quoted in errors). */
static const struct conf_list {
	const char	*path;
	size_t		 noff;
	int		(*check)(const char *v);
	const char	*syntax;
} conf_lists[] = {
	{ "mesh.peers", offsetof(struct config, mesh_npeers), check_peer,
	    "host[:port][/dialhost[:port]]" },
	{ "bootstrap_dns.names", offsetof(struct config, bootdns_nnames),
	    check_dns_name, "a DNS name" },
	{ "bootstrap_dns.unpublished", offsetof(struct config,
	    bootdns_nunpub), check_unpublished, "name or name/txtname" },
};

static const struct conf_list *
list_find(const char *path)
{
	size_t	i;

	for (i = 0; i < sizeof(conf_lists) / sizeof(conf_lists[0]); i++)
		if (strcmp(conf_lists[i].path, path) == 0)
			return &conf_lists[i];
	return NULL;
}

static int
load_setting(config_setting_t *s, const char *path, struct config *c,
    const char *file, char *err, size_t errlen)
{
	const struct conf_item	*it = item_find(path);
	int			 line = config_setting_source_line(s);
	char			*dst;
	const char		*v;
	long			 iv;
	int			 i, n, rc;
	char			 host[CONF_STR_MAX];
	uint16_t		 port;

	if (it == NULL)
		return fail(err, errlen, file, line, "unknown setting \"%s\"%s",
		    path, "");
	dst = (char *)c + it->off;
	switch (it->type) {
	case CONF_GROUP:
		if (config_setting_type(s) != CONFIG_TYPE_GROUP)
			return fail(err, errlen, file, line,
			    "\"%s\" must be a group { ... }%s", path, "");
		n = config_setting_length(s);
		for (i = 0; i < n; i++) {
			config_setting_t	*ch = config_setting_get_elem(s,
						    (unsigned)i);
			char			 sub[128];

			snprintf(sub, sizeof(sub), "%s.%s", path,
			    config_setting_name(ch));
			if ((rc = load_setting(ch, sub, c, file, err,
			    errlen)) < 0)
				return rc;
		}
		return 0;
	case CONF_INT:
		if (config_setting_type(s) != CONFIG_TYPE_INT &&
		    config_setting_type(s) != CONFIG_TYPE_INT64)
			return fail(err, errlen, file, line,
			    "\"%s\" must be an integer%s", path, "");
		iv = (long)config_setting_get_int64(s);
		if (iv < it->min || iv > it->max) {
			char	range[64];

			snprintf(range, sizeof(range), " (%ld..%ld)", it->min,
			    it->max);
			return fail(err, errlen, file, line,
			    "\"%s\" is out of range%s", path, range);
		}
		*(int *)(void *)dst = (int)iv;
		return 0;
	case CONF_FLOAT: {
		double	d;

		if (config_setting_type(s) == CONFIG_TYPE_FLOAT)
			d = config_setting_get_float(s);
		else if (config_setting_type(s) == CONFIG_TYPE_INT ||
		    config_setting_type(s) == CONFIG_TYPE_INT64)
			d = (double)config_setting_get_int64(s);
		else
			return fail(err, errlen, file, line,
			    "\"%s\" must be a number%s", path, "");
		if (d < (double)it->min || d > (double)it->max) {
			char	range[64];

			snprintf(range, sizeof(range), " (%ld..%ld)", it->min,
			    it->max);
			return fail(err, errlen, file, line,
			    "\"%s\" is out of range%s", path, range);
		}
		*(double *)(void *)dst = d;
		return 0;
	}
	case CONF_BOOL:
		if (config_setting_type(s) != CONFIG_TYPE_BOOL)
			return fail(err, errlen, file, line,
			    "\"%s\" must be true or false%s", path, "");
		*(bool *)(void *)dst = config_setting_get_bool(s);
		return 0;
	case CONF_STR:
	case CONF_LEVEL:
		if (config_setting_type(s) != CONFIG_TYPE_STRING)
			return fail(err, errlen, file, line,
			    "\"%s\" must be a string%s", path, "");
		v = config_setting_get_string(s);
		if (it->type == CONF_LEVEL) {
			for (i = LOG_ERR; i <= LOG_DEBUG; i++)
				if (level_names[i] != NULL &&
				    strcmp(v, level_names[i]) == 0)
					break;
			if (i > LOG_DEBUG)
				return fail(err, errlen, file, line,
				    "\"%s\": unknown level \"%s\" (err, warn, "
				    "notice, info, debug)", path, v);
			*(int *)(void *)dst = i;
			return 0;
		}
		if (strlen(v) >= it->size)
			return fail(err, errlen, file, line,
			    "\"%s\" is too long%s", path, "");
		if ((strncmp(path, "listen.", 7) == 0 ||
		    strcmp(path, "metrics.listen") == 0) && v[0] != '\0' &&
		    conf_split_hostport(v, host, sizeof(host), &port) < 0)
			return fail(err, errlen, file, line,
			    "\"%s\": bad address \"%s\" (host:port, "
			    "[v6]:port or :port)", path, v);
		if (strcmp(path, "bootstrap_dns.txt_resolver") == 0 &&
		    v[0] != '\0' && check_ip_port(v) < 0)
			return fail(err, errlen, file, line,
			    "\"%s\": bad address \"%s\" (ip:port or "
			    "[ip6]:port)", path, v);
		if (strcmp(path, "tls.record_layer") == 0 &&
		    strcmp(v, "derpd") != 0 && strcmp(v, "openssl") != 0 &&
		    strcmp(v, "kernel") != 0)
			return fail(err, errlen, file, line, "\"%s\" must be "
			    "\"derpd\", \"kernel\" or \"openssl\", not "
			    "\"%s\"", path, v);
		if (strcmp(path, "acme.webroot") == 0 && v[0] != '\0' &&
		    v[0] != '/')
			return fail(err, errlen, file, line, "\"%s\" must be an "
			    "absolute path, not \"%s\"", path, v);
		if (strcmp(path, "home") == 0 && v[0] != '\0' &&
		    strcmp(v, "blank") != 0 && strncmp(v, "http://", 7) != 0 &&
		    strncmp(v, "https://", 8) != 0)
			return fail(err, errlen, file, line, "\"home\" must be "
			    "\"\", \"blank\" or an http(s) URL, not \"%s\"%s",
			    v, "");
		memcpy(dst, v, strlen(v) + 1);
		return 0;
	case CONF_LIST: {
		const struct conf_list	*cl = list_find(path);
		size_t			 width;

		assert(cl != NULL);	/* every CONF_LIST has an entry */
		width = it->size / (size_t)it->max;

		if (config_setting_type(s) != CONFIG_TYPE_LIST &&
		    config_setting_type(s) != CONFIG_TYPE_ARRAY)
			return fail(err, errlen, file, line,
			    "\"%s\" must be a list of strings%s", path, "");
		n = config_setting_length(s);
		if (n > it->max)
			return fail(err, errlen, file, line,
			    "\"%s\" has too many entries%s", path, "");
		for (i = 0; i < n; i++) {
			config_setting_t	*e = config_setting_get_elem(s,
						    (unsigned)i);

			if (config_setting_type(e) != CONFIG_TYPE_STRING)
				return fail(err, errlen, file, line,
				    "\"%s\" must be a list of strings%s", path,
				    "");
			v = config_setting_get_string(e);
			if (strlen(v) >= width || cl->check(v) < 0) {
				char	what[128];

				snprintf(what, sizeof(what), "\"%s\" (%s)", v,
				    cl->syntax);
				return fail(err, errlen, file,
				    config_setting_source_line(e),
				    "\"%s\": bad entry %s", path, what);
			}
			snprintf(dst + (size_t)i * width, width, "%s", v);
		}
		*(int *)(void *)((char *)c + cl->noff) = n;
		return 0;
	}
	}
	return -EINVAL;
}

/* Cross-field rules, checked once everything is loaded. */
static int
validate(const config_t *lc, struct config *c, const char *file, char *err,
    size_t errlen)
{
	const config_setting_t	*s;

	if (c->mesh_npeers > 0 && c->mesh_psk_file[0] == '\0') {
		s = config_lookup(lc, "mesh.peers");
		return fail(err, errlen, file, s ?
		    config_setting_source_line(s) : 0,
		    "\"mesh.peers\" requires \"mesh.psk_file\"%s%s", "", "");
	}
	if (c->listen_https[0] == '\0' && c->listen_http[0] == '\0') {
		s = config_lookup(lc, "listen");
		return fail(err, errlen, file, s ?
		    config_setting_source_line(s) : 0,
		    "no listener: set listen.https or listen.http%s%s", "", "");
	}
	return 0;
}

static int
load(config_t *lc, const char *name, struct config *c, char *err,
    size_t errlen)
{
	config_setting_t	*root = config_root_setting(lc);
	int			 i, n, rc;

	conf_defaults(c);
	n = config_setting_length(root);
	for (i = 0; i < n; i++) {
		config_setting_t	*s = config_setting_get_elem(root,
					    (unsigned)i);

		if ((rc = load_setting(s, config_setting_name(s), c, name, err,
		    errlen)) < 0)
			return rc;
	}
	return validate(lc, c, name, err, errlen);
}

int
conf_parse_string(const char *text, const char *name, struct config *c,
    char *err, size_t errlen)
{
	config_t	lc;
	int		rc;

	config_init(&lc);
	if (config_read_string(&lc, text) != CONFIG_TRUE) {
		snprintf(err, errlen, "%s:%d: %s", name, config_error_line(&lc),
		    config_error_text(&lc));
		config_destroy(&lc);
		return -EINVAL;
	}
	rc = load(&lc, name, c, err, errlen);
	config_destroy(&lc);
	return rc;
}

int
conf_load(const char *path, struct config *c, char *err, size_t errlen)
{
	config_t	lc;
	int		rc;
	FILE		*f;

	if ((f = fopen(path, "re")) == NULL) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	config_init(&lc);
	if (config_read(&lc, f) != CONFIG_TRUE) {
		snprintf(err, errlen, "%s:%d: %s", path, config_error_line(&lc),
		    config_error_text(&lc));
		config_destroy(&lc);
		fclose(f);
		return -EINVAL;
	}
	fclose(f);
	rc = load(&lc, path, c, err, errlen);
	config_destroy(&lc);
	return rc;
}

const char *
conf_restart_needed(const struct config *a, const struct config *b)
{
	size_t	i;

	for (i = 0; i < NITEMS; i++) {
		const struct conf_item	*it = &conf_items[i];

		if (it->when != CONF_RESTART || it->size == 0)
			continue;
		if (it->type == CONF_STR ? strcmp((const char *)a + it->off,
		    (const char *)b + it->off) != 0 :
		    memcmp((const char *)a + it->off, (const char *)b + it->off,
		    it->size) != 0)
			return it->path;
	}
	return NULL;
}

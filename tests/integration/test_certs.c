/*
 * Certificates (issue 5 item 7): reload when the files change on disk
 * (inotify, debounced) with live connections kept, bad replacements
 * refused, the ACME HTTP-01 webroot path, TLS handshake failures by
 * reason, and a real issuance: pebble validating HTTP-01 against derpd's
 * port-80 listener for uacme, then derpd serving pebble's certificate
 * without a restart.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "harness.h"

static char	buf[65536];

static int	tls_try(const struct node *n, const char *sni, int max_version,
		    const char *ciphers, bool verify);

static void
pause_ms(int ms)
{
	/* Poll interval while waiting for a condition, not a sync sleep. */
	poll(NULL, 0, ms);
}

static void
run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
run(const char *fmt, ...)
{
	char	cmd[4096];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd) != 0)
		fail_msg("command failed: %s", cmd);
}

/* A self-signed P-256 pair, as the harness makes them. */
static void
make_pair(const char *crt, const char *key, const char *cn)
{
	run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1"
	    " -nodes -keyout %s -out %s -days 3 -subj /CN=%s -addext "
	    "subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null", key, crt,
	    cn);
}

/* Install src at dst atomically, as uacme and certbot do. */
static void
install(const char *src, const char *dst)
{
	char	tmp[600];

	snprintf(tmp, sizeof(tmp), "%s.tmp", dst);
	run("cp '%s' '%s'", src, tmp);
	assert_int_equal(rename(tmp, dst), 0);
}

static void
file_write(const char *path, const char *text)
{
	FILE	*f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static X509 *
file_cert(const char *path)
{
	FILE	*f = fopen(path, "r");
	X509	*x;

	assert_non_null(f);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	return x;
}

static void
cert_fp(X509 *x, uint8_t fp[32])
{
	unsigned int	n = 32;

	assert_int_equal(X509_digest(x, EVP_sha256(), fp, &n), 1);
}

static void
file_fp(const char *path, uint8_t fp[32])
{
	X509	*x = file_cert(path);

	cert_fp(x, fp);
	X509_free(x);
}

static int
tcp_connect(uint16_t port)
{
	struct timeval	tv = { .tv_sec = 5 };
	int		fd = raw_connect(port);

	if (fd >= 0) {
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	return fd;
}

/* The leaf a fresh handshake presents (no verification: this is what
 * the test checks); its issuer CN into issuer.  0 or -1. */
static int
served_cert(uint16_t port, uint8_t fp[32], char *issuer, size_t len)
{
	SSL_CTX	*ctx = SSL_CTX_new(TLS_client_method());
	SSL	*ssl = NULL;
	X509	*x = NULL;
	int	 fd, rc = -1;

	assert_non_null(ctx);
	if ((fd = tcp_connect(port)) < 0)
		goto out;
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1 || (x = SSL_get1_peer_certificate(ssl)) ==
	    NULL)
		goto out;
	cert_fp(x, fp);
	if (issuer != NULL)
		X509_NAME_get_text_by_NID(X509_get_issuer_name(x),
		    NID_commonName, issuer, (int)len);
	rc = 0;
out:
	X509_free(x);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	if (fd >= 0)
		close(fd);
	ERR_clear_error();
	return rc;
}

/* Wait until new handshakes present the certificate in path. */
static bool
wait_served(const struct node *n, const char *path, int timeout_ms)
{
	uint64_t	deadline = now_ms() + (uint64_t)timeout_ms;
	uint8_t		want[32], got[32];

	file_fp(path, want);
	do {
		if (served_cert(n->port, got, NULL, 0) == 0 &&
		    memcmp(got, want, 32) == 0)
			return true;
		pause_ms(20);
	} while (now_ms() < deadline);
	return false;
}

static long
wait_metric(const struct node *n, const char *name, long want,
    int timeout_ms)
{
	uint64_t	deadline = now_ms() + (uint64_t)timeout_ms;
	long		v;

	while ((v = node_metric(n, name)) < want && now_ms() < deadline)
		pause_ms(10);
	return v;
}

/* Metrics on their own plain listener: node_metric() over TLS verifies
 * against the certificate file, which these tests replace. */
static struct node *
start(struct node *n, const char *extra)
{
	char	conf[1024];

	n->metrics_port = free_tcp_port();
	snprintf(conf, sizeof(conf), "metrics = { listen = \"127.0.0.1:%u\"; "
	    "};\n%s", n->metrics_port, extra != NULL ? extra : "");
	return node_start_in(n, true, conf);
}

static void
test_certs_inotify_reload_keeps_connections(void **state)
{
	/* Two workers: each watches and reloads its own context. */
	struct node	*n = node_start(true, "workers = 2;\n");
	struct client	*a = node_client(n), *b = node_client(n), *c;
	char		 crt[400], key[400];
	X509		*x;
	struct tm	 tm;

	(void)state;
	reach(a, b);
	assert_true(wait_served(n, n->cert, 1000));
	snprintf(crt, sizeof(crt), "%s/new.crt", n->dir);
	snprintf(key, sizeof(key), "%s/new.key", n->dir);
	make_pair(crt, key, "renewed");
	/* The certificate lands a moment before its key, as with a
	 * renewal tool writing one file after the other: the quiet period
	 * must keep derpd from loading (and refusing) the half-pair. */
	install(crt, n->cert);
	pause_ms(200);
	snprintf(buf, sizeof(buf), "%s/key.pem", n->dir);
	install(key, buf);
	assert_true(wait_served(n, crt, 10000));
	assert_int_equal(wait_metric(n,
	    "derpd_tls_cert_reloads{result=\"ok\"}", 2, 5000), 2);
	assert_int_equal(node_log_count(n, "event=tls_cert_reloaded"), 2);
	assert_int_equal(node_log_count(n, "subject=\"renewed\""), 2);
	assert_int_equal(node_metric(n,
	    "derpd_tls_cert_reloads{result=\"refused\"}"), 0);
	x = file_cert(crt);
	assert_int_equal(ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm), 1);
	assert_int_equal(node_metric(n, "derpd_tls_cert_not_after_seconds"),
	    (long)timegm(&tm));
	X509_free(x);
	/* Connections from before the swap still relay, and a new client
	 * verifies the new certificate (its CA file is the new one). */
	reach(a, b);
	assert_int_equal(node_log_count(n, "event=worker_started"), 2);
	c = node_client(n);
	reach(c, a);
	client_free(c);
	client_free(a);
	client_free(b);
	node_stop(n);
	node_free(n);
}

/* tls.watch = false (applied by SIGHUP) stops the watch; SIGHUP itself
 * still reloads the files. */
static void
test_certs_watch_off_then_sighup(void **state)
{
	struct node	*n = start(node_new(), NULL);
	char		 crt[400], key[400], orig[400];
	uint64_t	 until;

	(void)state;
	snprintf(orig, sizeof(orig), "%s/orig.crt", n->dir);
	snprintf(crt, sizeof(crt), "%s/new.crt", n->dir);
	snprintf(key, sizeof(key), "%s/new.key", n->dir);
	run("cp '%s' '%s'", n->cert, orig);
	run("sed -i 's/^tls = { /tls = { watch = false; /' '%s' && "
	    "grep -q 'watch = false' '%s'", n->conf, n->conf);
	kill(n->pid, SIGHUP);
	assert_true(node_log_wait(n, "worker=0 event=reloaded", 5000));
	make_pair(crt, key, "by_sighup");
	snprintf(buf, sizeof(buf), "%s/key.pem", n->dir);
	install(key, buf);
	install(crt, n->cert);
	/* Not picked up: twice the quiet period, still the old one. */
	until = now_ms() + 2500;
	while (now_ms() < until) {
		assert_true(wait_served(n, orig, 1000));
		pause_ms(100);
	}
	assert_int_equal(node_log_count(n, "event=tls_cert_reloaded"), 0);
	kill(n->pid, SIGHUP);
	assert_true(wait_served(n, crt, 5000));
	/* The reloaded context still checks SNI against hostname. */
	assert_int_equal(tls_try(n, "localhost", 0, NULL, false), 1);
	assert_true(tls_try(n, "wrong.example.net", 0, NULL, false) != 1);
	assert_int_equal(node_metric(n, "derpd_tls_cert_reloads{result=\"ok\"}"),
	    0);
	node_stop(n);
	node_free(n);
}

/* A certificate that expired yesterday, with its key. */
static void
write_expired_pair(const char *crt, const char *key)
{
	EVP_PKEY	*pk = EVP_EC_gen("P-256");
	X509		*x = X509_new();
	FILE		*f;

	assert_non_null(pk);
	assert_non_null(x);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), -2 * 86400);
	X509_gmtime_adj(X509_getm_notAfter(x), -86400);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (const unsigned char *)"expired", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_set_pubkey(x, pk);
	assert_true(X509_sign(x, pk, EVP_sha256()) > 0);
	assert_non_null(f = fopen(crt, "w"));
	PEM_write_X509(f, x);
	fclose(f);
	assert_non_null(f = fopen(key, "w"));
	PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(pk);
}

static void
wait_refused(const struct node *n, int count)
{
	uint64_t	deadline = now_ms() + 10000;

	while (node_log_count(n, "event=tls_cert_refused") < count &&
	    now_ms() < deadline)
		pause_ms(10);
	assert_int_equal(node_log_count(n, "event=tls_cert_refused"), count);
}

static void
test_certs_bad_replacement_refused(void **state)
{
	struct node	*n = start(node_new(), NULL);
	struct client	*a = node_client(n), *b = node_client(n);
	char		 orig[400], crt[400], key[400], keypath[400];

	(void)state;
	snprintf(orig, sizeof(orig), "%s/orig.crt", n->dir);
	snprintf(crt, sizeof(crt), "%s/other.crt", n->dir);
	snprintf(key, sizeof(key), "%s/other.key", n->dir);
	snprintf(keypath, sizeof(keypath), "%s/key.pem", n->dir);
	run("cp '%s' '%s'", n->cert, orig);
	reach(a, b);

	/* 1. A certificate whose key is not the one on disk. */
	make_pair(crt, key, "mismatch");
	install(crt, n->cert);
	wait_refused(n, 1);
	assert_int_equal(node_log_count(n, "key values mismatch"), 1);
	assert_true(wait_served(n, orig, 1000));

	/* 2. Garbage. */
	snprintf(buf, sizeof(buf), "%s/garbage", n->dir);
	file_write(buf, "-----BEGIN CERTIFICATE-----\nnot base64!\n");
	install(buf, n->cert);
	wait_refused(n, 2);
	assert_true(wait_served(n, orig, 1000));

	/* 3. A matching pair that has expired. */
	write_expired_pair(crt, key);
	install(crt, n->cert);
	install(key, keypath);
	wait_refused(n, 3);
	assert_int_equal(node_log_count(n, "certificate has expired"), 1);
	assert_true(wait_served(n, orig, 1000));
	assert_int_equal(node_metric(n,
	    "derpd_tls_cert_reloads{result=\"refused\"}"), 3);
	assert_int_equal(node_metric(n,
	    "derpd_tls_cert_reloads{result=\"ok\"}"), 0);
	assert_int_equal(node_log_count(n, "action=kept_old"), 3);
	/* Nothing was dropped, and a good pair still loads afterwards. */
	reach(a, b);
	make_pair(crt, key, "good");
	install(key, keypath);
	install(crt, n->cert);
	assert_true(wait_served(n, crt, 10000));
	assert_int_equal(node_metric(n,
	    "derpd_tls_cert_reloads{result=\"ok\"}"), 1);
	reach(b, a);
	client_free(a);
	client_free(b);
	node_stop(n);
	node_free(n);
}

static int
get(const struct node *n, uint16_t port, bool tls, const char *method,
    const char *path)
{
	struct client_opts	o;

	node_opts(n, &o);
	o.port = port;
	o.tls = tls;
	return client_http_get(&o, method, path, NULL, buf, sizeof(buf));
}

static const char *
body(void)
{
	char	*p = strstr(buf, "\r\n\r\n");

	return p != NULL ? p + 4 : "";
}

#define CH	"/.well-known/acme-challenge/"

static void
make_webroot(struct node *n, char *root, size_t len)
{
	char	dir[400], big[9000];

	snprintf(root, len, "%s/www", n->dir);
	snprintf(dir, sizeof(dir), "%s/.well-known/acme-challenge", root);
	run("mkdir -p '%s' '%s/adir' && mkfifo '%s/fifo' && "
	    "ln -s /etc/hostname '%s/link' && echo secret > '%s/.hidden' && "
	    "echo secret > '%s/secret'", dir, dir, dir, dir, dir, root);
	snprintf(buf, sizeof(buf), "%s/tok_EN-123", dir);
	file_write(buf, "tok_EN-123.thumbprint");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	snprintf(buf, sizeof(buf), "%s/big", dir);
	file_write(buf, big);
}

static void
test_certs_acme_challenge(void **state)
{
	struct node	*n = node_new();
	char		 root[400], extra[600];
	uint16_t	 p80;

	(void)state;
	make_webroot(n, root, sizeof(root));
	snprintf(extra, sizeof(extra), "acme = { webroot = \"%s\"; };\n",
	    root);
	node_start_in(n, true, extra);
	p80 = n->http_port;
	assert_int_equal(get(n, p80, false, "GET", CH "tok_EN-123"), 200);
	assert_string_equal(body(), "tok_EN-123.thumbprint");
	assert_non_null(strstr(buf, "Content-Type: text/plain\r\n"));
	assert_int_equal(get(n, p80, false, "GET", CH "tok_EN-123?x=1"), 200);
	assert_int_equal(get(n, p80, false, "HEAD", CH "tok_EN-123"), 200);
	assert_string_equal(body(), "");
	assert_int_equal(get(n, p80, false, "POST", CH "tok_EN-123"), 405);
	/* Validators that follow a redirect to HTTPS are served too. */
	assert_int_equal(get(n, n->port, true, "GET", CH "tok_EN-123"), 200);
	assert_string_equal(body(), "tok_EN-123.thumbprint");
	/* Absent, or not a small regular file reached without a symlink. */
	assert_int_equal(get(n, p80, false, "GET", CH "nope"), 404);
	assert_int_equal(get(n, p80, false, "GET", CH "link"), 404);
	assert_int_equal(get(n, p80, false, "GET", CH "fifo"), 404);
	assert_int_equal(get(n, p80, false, "GET", CH "adir"), 404);
	assert_int_equal(get(n, p80, false, "GET", CH "big"), 404);
	/* Bad tokens: traversal, dots, escapes, empty. */
	assert_int_equal(get(n, p80, false, "GET", CH "../../secret"), 400);
	assert_int_equal(get(n, p80, false, "GET", CH "..%2f..%2fsecret"),
	    400);
	assert_int_equal(get(n, p80, false, "GET", CH ".hidden"), 400);
	assert_int_equal(get(n, p80, false, "GET", CH "a.b"), 400);
	assert_int_equal(get(n, p80, false, "GET", CH), 400);
	assert_int_equal(get(n, p80, false, "GET", CH "adir/x"), 400);
	assert_null(strstr(buf, "secret"));
	/* Everything else on port 80 is as before. */
	assert_int_equal(get(n, p80, false, "GET", "/.well-known/other"), 302);
	assert_int_equal(node_metric(n, "derpd_acme_challenges_served"), 4);
	assert_int_equal(node_log_count(n, "event=acme_challenge_served"), 4);
	node_stop(n);
	node_free(n);

	/* Plain mode: the DERP listener serves it; no webroot: not served. */
	n = node_new();
	make_webroot(n, root, sizeof(root));
	snprintf(extra, sizeof(extra), "acme = { webroot = \"%s\"; };\n",
	    root);
	node_start_in(n, false, extra);
	assert_int_equal(get(n, n->port, false, "GET", CH "tok_EN-123"), 200);
	assert_string_equal(body(), "tok_EN-123.thumbprint");
	node_stop(n);
	node_free(n);
	n = node_start(true, NULL);
	assert_int_equal(get(n, n->http_port, false, "GET", CH "tok_EN-123"),
	    302);
	node_stop(n);
	node_free(n);
}

static long
fails(const struct node *n, const char *reason)
{
	char	name[128];

	snprintf(name, sizeof(name),
	    "derpd_tls_handshake_failures{reason=\"%s\"}", reason);
	return node_metric(n, name);
}

static long
wait_fails(const struct node *n, const char *reason, long want)
{
	char	name[128];

	snprintf(name, sizeof(name),
	    "derpd_tls_handshake_failures{reason=\"%s\"}", reason);
	return wait_metric(n, name, want, 5000);
}

/* A TLS client configured by the caller's hook; returns SSL_connect's
 * result (the server side is what is checked). */
static int
tls_try(const struct node *n, const char *sni, int max_version,
    const char *ciphers, bool verify)
{
	SSL_CTX	*ctx = SSL_CTX_new(TLS_client_method());
	SSL	*ssl;
	int	 fd = tcp_connect(n->port), r;

	assert_non_null(ctx);
	assert_true(fd >= 0);
	if (max_version != 0) {
		SSL_CTX_set_security_level(ctx, 0);
		SSL_CTX_set_min_proto_version(ctx, 0);
		SSL_CTX_set_max_proto_version(ctx, max_version);
	}
	if (ciphers != NULL)
		assert_int_equal(SSL_CTX_set_cipher_list(ctx, ciphers), 1);
	if (verify) {
		/* The system store does not know the test's self-signed
		 * certificate: the client aborts with an alert. */
		SSL_CTX_set_default_verify_paths(ctx);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (sni != NULL)
		SSL_set_tlsext_host_name(ssl, sni);
	r = SSL_connect(ssl);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	ERR_clear_error();
	return r;
}

static void
test_certs_handshake_failure_reasons(void **state)
{
	struct node	*n = node_start(true,
			    "derp = { http_timeout_ms = 300; };\n");
	static const char garbage[] = "\x01\x02\x03 not TLS at all, sorry\r\n";
	static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	uint8_t		 in[256];
	int		 fd;

	(void)state;
	/* Timeout: connect and say nothing. */
	assert_true((fd = raw_connect(n->port)) >= 0);
	assert_true(raw_read_until_eof(fd, in, sizeof(in), 5000) >= 0);
	close(fd);
	assert_int_equal(wait_fails(n, "timeout", 1), 1);
	/* EOF: leave before the ClientHello is complete. */
	assert_true((fd = raw_connect(n->port)) >= 0);
	assert_int_equal(write(fd, "\x16\x03\x01\x02\x00\x01", 6), 6);
	close(fd);
	assert_int_equal(wait_fails(n, "eof", 1), 1);
	/* Garbage and plain HTTP on the TLS port. */
	assert_true((fd = raw_connect(n->port)) >= 0);
	assert_int_equal(write(fd, garbage, sizeof(garbage) - 1),
	    sizeof(garbage) - 1);
	assert_true(raw_read_until_eof(fd, in, sizeof(in), 5000) >= 0);
	close(fd);
	assert_true((fd = raw_connect(n->port)) >= 0);
	assert_int_equal(write(fd, http, sizeof(http) - 1), sizeof(http) - 1);
	assert_true(raw_read_until_eof(fd, in, sizeof(in), 5000) >= 0);
	close(fd);
	assert_int_equal(wait_fails(n, "not_tls", 2), 2);
	/* A name this server is not. */
	assert_true(tls_try(n, "wrong.example.net", 0, NULL, false) != 1);
	assert_int_equal(wait_fails(n, "sni", 1), 1);
	/* TLS 1.1 at most, below the server's minimum. */
	assert_true(tls_try(n, NULL, TLS1_1_VERSION, "DEFAULT:@SECLEVEL=0",
	    false) != 1);
	assert_int_equal(wait_fails(n, "version", 1), 1);
	/* Only RSA suites against an EC certificate. */
	assert_true(tls_try(n, NULL, TLS1_2_VERSION,
	    "ECDHE-RSA-AES128-GCM-SHA256", false) != 1);
	assert_int_equal(wait_fails(n, "cipher", 1), 1);
	/* The client refuses our certificate. */
	assert_true(tls_try(n, "localhost", 0, NULL, true) != 1);
	assert_int_equal(wait_fails(n, "peer_alert", 1), 1);
	/* Each counted once, under its own reason; a good client is not
	 * counted at all. */
	client_free(node_client(n));
	assert_int_equal(fails(n, "timeout"), 1);
	assert_int_equal(fails(n, "eof"), 1);
	assert_int_equal(fails(n, "not_tls"), 2);
	assert_int_equal(fails(n, "other"), 0);
	node_stop(n);
	node_free(n);
}

/* ---- a real ACME issuance: pebble + uacme against derpd ---- */

static pid_t	pebble_pid = -1;

/* Whatever assertion ended the test, pebble does not outlive it. */
static int
pebble_teardown(void **state)
{
	(void)state;
	if (pebble_pid > 0) {
		kill(pebble_pid, SIGKILL);
		waitpid(pebble_pid, NULL, 0);
		pebble_pid = -1;
	}
	return 0;
}

static pid_t
pebble_start(const char dir[300], const char *conf)
{
	char	log[320];
	pid_t	pid;
	int	fd;

	snprintf(log, sizeof(log), "%s/pebble.log", dir);
	if ((pid = fork()) == 0) {
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 1);
		dup2(fd, 2);
		/* Real validation: never PEBBLE_VA_ALWAYS_VALID. */
		unsetenv("PEBBLE_VA_ALWAYS_VALID");
		setenv("PEBBLE_VA_NOSLEEP", "1", 1);
		setenv("PEBBLE_WFE_NONCEREJECT", "0", 1);
		execlp("pebble", "pebble", "-config", conf, (char *)NULL);
		_exit(127);
	}
	assert_true(pid > 0);
	return pid;
}

static void
test_certs_pebble_uacme_issue(void **state)
{
	struct node	*n = node_new();
	struct client	*a, *b;
	char		 root[300], extra[800], acme[300], conf[400], pki[300];
	char		 hook[400], crt[400];
	char		 issuer[128] = "";
	uint8_t		 fp[32];
	uint16_t	 dir_port = free_tcp_port(), mgmt_port = free_tcp_port();
	uint64_t	 deadline;
	pid_t		 pebble;
	int		 fd, status;

	(void)state;
	if (system("command -v pebble uacme unshare >/dev/null 2>&1") != 0 ||
	    system("unshare -m true 2>/dev/null") != 0) {
		/* CI installs them and runs as root: missing is a failure. */
		node_free(n);
		fail_msg("pebble, uacme or a mount namespace unavailable");
	}
	/* uacme's layout (CONFDIR/IDENT/cert.pem, CONFDIR/private/IDENT/
	 * key.pem) with a self-signed placeholder, and derpd's files as
	 * symlinks into it, the way certbot's live/ links into archive/. */
	snprintf(acme, sizeof(acme), "%s/uacme", n->dir);
	run("mkdir -p '%s/127.0.0.1' && mkdir -m 0700 -p "
	    "'%s/private/127.0.0.1'", acme, acme);
	snprintf(crt, sizeof(crt), "%s/127.0.0.1/cert.pem", acme);
	snprintf(conf, sizeof(conf), "%s/private/127.0.0.1/key.pem", acme);
	make_pair(crt, conf, "placeholder");
	snprintf(n->cert, sizeof(n->cert), "%s/cert.pem", n->dir);
	run("ln -s '%s' '%s' && ln -s '%s' '%s/key.pem'", crt, n->cert, conf,
	    n->dir);
	snprintf(root, sizeof(root), "%s/www", n->dir);
	run("mkdir -p '%s/.well-known/acme-challenge'", root);
	snprintf(extra, sizeof(extra), "acme = { webroot = \"%s\"; };\n",
	    root);
	start(n, extra);
	a = node_client(n);
	b = node_client(n);
	reach(a, b);

	/* Pebble's ACME endpoint needs a certificate uacme trusts: a
	 * throw-away CA of the test's own. */
	snprintf(pki, sizeof(pki), "%s/pki", n->dir);
	run("mkdir -p '%s/trust' && cd '%s' && "
	    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1"
	    " -nodes -keyout ca.key -out trust/ca-certificates.crt -days 2 "
	    "-subj /CN=itest-acme-ca 2>/dev/null && "
	    "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
	    "-nodes -keyout pebble.key -out pebble.csr -subj /CN=127.0.0.1 "
	    "2>/dev/null && printf 'subjectAltName=IP:127.0.0.1\\n' > ext && "
	    "openssl x509 -req -in pebble.csr -CA trust/ca-certificates.crt "
	    "-CAkey ca.key -CAcreateserial -out pebble.pem -days 2 "
	    "-extfile ext 2>/dev/null", pki, pki);
	snprintf(conf, sizeof(conf), "%s/pebble.json", pki);
	snprintf(buf, sizeof(buf), "{\"pebble\":{\"listenAddress\":"
	    "\"127.0.0.1:%u\",\"managementListenAddress\":\"127.0.0.1:%u\","
	    "\"certificate\":\"%s/pebble.pem\",\"privateKey\":"
	    "\"%s/pebble.key\",\"httpPort\":%u,\"tlsPort\":%u,"
	    "\"ocspResponderURL\":\"\",\"externalAccountBindingRequired\":"
	    "false}}\n", dir_port, mgmt_port, pki, pki, n->http_port,
	    free_tcp_port());
	file_write(conf, buf);
	pebble_pid = pebble = pebble_start(pki, conf);
	deadline = now_ms() + 15000;
	while ((fd = raw_connect(dir_port)) < 0 && now_ms() < deadline &&
	    waitpid(pebble, &status, WNOHANG) == 0)
		pause_ms(20);
	if (fd < 0)
		fail_msg("pebble did not start; see %s/pebble.log", pki);
	close(fd);

	/* Debian's uacme hook, pointed at the webroot.  uacme (libcurl)
	 * trusts only the system store: give it the test CA in a private
	 * mount namespace, so no system file changes. */
	snprintf(hook, sizeof(hook), "%s/hook.sh", pki);
	snprintf(extra, sizeof(extra), "#!/bin/sh\nUACME_CHALLENGE_PATH="
	    "'%s/.well-known/acme-challenge' exec /usr/share/uacme/uacme.sh "
	    "\"$@\"\n", root);
	file_write(hook, extra);
	assert_int_equal(chmod(hook, 0755), 0);
	{
		char	cmd[3000];

		snprintf(cmd, sizeof(cmd), "timeout 40 unshare -m sh -c "
		    "'mount --bind %s/trust /etc/ssl/certs && "
		    "uacme -v -c %s -a https://127.0.0.1:%u/dir -y new && "
		    "uacme -v -c %s -a https://127.0.0.1:%u/dir -h %s -f -o "
		    "issue 127.0.0.1' > %s/uacme.log 2>&1", pki, acme,
		    dir_port, acme, dir_port, hook, pki);
		status = system(cmd);
	}
	kill(pebble, SIGTERM);
	waitpid(pebble, NULL, 0);
	pebble_pid = -1;
	if (status != 0)
		fail_msg("uacme failed (%d); see %s/uacme.log", status, pki);
	/* Pebble fetched the key authorization from derpd's port 80. */
	assert_true(node_metric(n, "derpd_acme_challenges_served") >= 1);
	/* derpd picks the renewal up by itself. */
	assert_true(wait_served(n, crt, 10000));
	assert_int_equal(served_cert(n->port, fp, issuer, sizeof(issuer)), 0);
	assert_int_equal(strncmp(issuer, "Pebble Intermediate CA", 22), 0);
	assert_int_equal(node_metric(n,
	    "derpd_tls_cert_reloads{result=\"ok\"}"), 1);
	/* No restart, no dropped connection. */
	assert_int_equal(node_log_count(n, "event=worker_started"), 1);
	reach(a, b);
	client_free(a);
	client_free(b);
	node_stop(n);
	node_free(n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_certs_inotify_reload_keeps_connections),
		cmocka_unit_test(test_certs_bad_replacement_refused),
		cmocka_unit_test(test_certs_watch_off_then_sighup),
		cmocka_unit_test(test_certs_acme_challenge),
		cmocka_unit_test(test_certs_handshake_failure_reasons),
		cmocka_unit_test_teardown(test_certs_pebble_uacme_issue,
		    pebble_teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * derpprobe's low-level probes: a STUN binding round trip over UDP and a
 * TLS handshake with certificate inspection.  Blocking with poll()
 * deadlines (the tool is not an event loop); every wait is bounded.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "derp/stun.h"
#include "tools/derpprobe.h"

double
now_mono_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

double
now_unix(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
left(double deadline)
{
	double	l = deadline - now_mono_ms();

	return l <= 0 ? 0 : (int)l + 1;
}

static int
wait_fd(int fd, short ev, double deadline)
{
	struct pollfd	p = { .fd = fd, .events = ev };
	int		r;

	do {
		r = poll(&p, 1, left(deadline));
	} while (r == -1 && errno == EINTR);
	if (r == 0)
		return -ETIMEDOUT;
	return r < 0 ? -errno : 0;
}

int
net_udp_open(int family)
{
	int	fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	return fd < 0 ? -errno : fd;
}

int
net_addr(const char *ip, uint16_t port, struct sockaddr_storage *ss,
    socklen_t *sl)
{
	struct sockaddr_in	*s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		*sl = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*sl = sizeof(*s6);
		return 0;
	}
	return -EINVAL;
}

void
net_format(const struct sockaddr_storage *ss, char *out, size_t cap)
{
	char	ip[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &s->sin_addr, ip, sizeof(ip));
		snprintf(out, cap, "%s:%u", ip, ntohs(s->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof(ip));
		snprintf(out, cap, "[%s]:%u", ip, ntohs(s->sin6_port));
	} else {
		snprintf(out, cap, "?");
	}
}

int
net_stun(int fd, const struct sockaddr *dst, socklen_t dl, int timeout_ms,
    double *rtt_ms, struct sockaddr_storage *mapped)
{
	uint8_t	req[STUN_REQUEST_LEN], txid[STUN_TXID_LEN], buf[1500];
	double	deadline = now_mono_ms() + timeout_ms, sent, resend;
	ssize_t	n;
	int	rc;

	while (now_mono_ms() < deadline) {
		randombytes_buf(txid, sizeof(txid));
		stun_build_request(req, txid);
		sent = now_mono_ms();
		if (sendto(fd, req, sizeof(req), 0, dst, dl) < 0)
			return -errno;
		/* Retry after a second without an answer (as Go's prober). */
		resend = sent + 1000 < deadline ? sent + 1000 : deadline;
		for (;;) {
			if ((rc = wait_fd(fd, POLLIN, resend)) == -ETIMEDOUT)
				break;
			if (rc < 0)
				return rc;
			n = recv(fd, buf, sizeof(buf), 0);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n < 0)
				return -errno;
			if (stun_parse_response(buf, (size_t)n, txid,
			    mapped) == 0) {
				*rtt_ms = now_mono_ms() - sent;
				return 0;
			}
			/* Stale reply or noise: keep waiting. */
		}
	}
	return -ETIMEDOUT;
}

static int
tcp_dial(const char *host, uint16_t port, double deadline)
{
	struct addrinfo	 hints, *ai = NULL, *a;
	char		 ps[8];
	int		 fd = -1, rc = -EHOSTUNREACH, err, on = 1;
	socklen_t	 el = sizeof(err);

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	snprintf(ps, sizeof(ps), "%u", port);
	if (getaddrinfo(host, ps, &hints, &ai) != 0)
		return -EHOSTUNREACH;
	for (a = ai; a != NULL; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		if (fd < 0) {
			rc = -errno;
			continue;
		}
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		rc = -errno;
		if (errno == EINPROGRESS &&
		    (rc = wait_fd(fd, POLLOUT, deadline)) == 0) {
			el = sizeof(err);
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0
			    && err == 0)
				break;
			rc = -err;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd >= 0 ? fd : rc;
}

/* The leaf: the first certificate that is not the derpkey meta-cert. */
static X509 *
leaf_cert(SSL *ssl)
{
	STACK_OF(X509)	*chain = SSL_get_peer_cert_chain(ssl);
	char		 cn[256];
	int		 i;

	for (i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
		X509	*x = sk_X509_value(chain, i);

		if (X509_NAME_get_text_by_NID(X509_get_subject_name(x),
		    NID_commonName, cn, sizeof(cn)) > 0 &&
		    strncmp(cn, "derpkey", 7) == 0)
			continue;
		return x;
	}
	return NULL;
}

static int
check_pin(X509 *leaf, const char *hex, char *err, size_t errlen)
{
	unsigned char	 md[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen = 0;
	char		 got[2 * EVP_MAX_MD_SIZE + 1];
	unsigned int	 i;

	if (X509_digest(leaf, EVP_sha256(), md, &mdlen) != 1)
		return -ENOMEM;
	for (i = 0; i < mdlen; i++)
		snprintf(got + 2 * i, 3, "%02x", md[i]);
	if (strcasecmp(got, hex) == 0)
		return 0;
	snprintf(err, errlen, "certificate sha256 %s does not match the pin",
	    got);
	return -EPERM;
}

static int
tls_setup(SSL_CTX **ctx, SSL **ssl, int fd, const struct tls_probe *t,
    const char *pin)
{
	unsigned char	 b[16];
	const char	*vn = t->cert_name && *t->cert_name ? t->cert_name :
			    t->sni;
	bool		 ip = inet_pton(AF_INET, vn, b) == 1 ||
			    inet_pton(AF_INET6, vn, b) == 1;

	if ((*ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		return -ENOMEM;
	SSL_CTX_set_min_proto_version(*ctx, TLS1_2_VERSION);
	if (!t->insecure && pin == NULL && (t->ca_file != NULL ?
	    SSL_CTX_load_verify_locations(*ctx, t->ca_file, NULL) :
	    SSL_CTX_set_default_verify_paths(*ctx)) != 1)
		return -EINVAL;
	if ((*ssl = SSL_new(*ctx)) == NULL || SSL_set_fd(*ssl, fd) != 1)
		return -ENOMEM;
	if (inet_pton(AF_INET, t->sni, b) != 1 &&
	    inet_pton(AF_INET6, t->sni, b) != 1)
		SSL_set_tlsext_host_name(*ssl, t->sni);
	if (!t->insecure && pin == NULL) {
		X509_VERIFY_PARAM	*vp = SSL_get0_param(*ssl);

		if ((ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, vn) :
		    X509_VERIFY_PARAM_set1_host(vp, vn, 0)) != 1)
			return -EINVAL;
	}
	return 0;
}

static int
tls_handshake(SSL *ssl, int fd, double deadline)
{
	int	r, e;

	for (;;) {
		ERR_clear_error();
		if ((r = SSL_connect(ssl)) == 1)
			return 0;
		e = SSL_get_error(ssl, r);
		if (e == SSL_ERROR_WANT_READ)
			r = wait_fd(fd, POLLIN, deadline);
		else if (e == SSL_ERROR_WANT_WRITE)
			r = wait_fd(fd, POLLOUT, deadline);
		else
			return -EPROTO;
		if (r < 0)
			return r;
	}
}

int
net_tls(const struct tls_probe *t, double *ms, double *days, char *err,
    size_t errlen)
{
	double		 deadline = now_mono_ms() + t->timeout_ms, start;
	const char	*pin = NULL;
	SSL_CTX		*ctx = NULL;
	SSL		*ssl = NULL;
	X509		*leaf;
	long		 vr;
	int		 fd, rc, d = 0, s = 0;

	if (t->cert_name != NULL && strncmp(t->cert_name, "sha256-raw:",
	    11) == 0)
		pin = t->cert_name + 11;
	if ((fd = tcp_dial(t->dial, t->port, deadline)) < 0) {
		snprintf(err, errlen, "tcp connect: %s", strerror(-fd));
		return fd;
	}
	if ((rc = tls_setup(&ctx, &ssl, fd, t, pin)) < 0) {
		snprintf(err, errlen, "tls setup: %s", strerror(-rc));
		goto out;
	}
	start = now_mono_ms();
	if ((rc = tls_handshake(ssl, fd, deadline)) < 0) {
		vr = SSL_get_verify_result(ssl);
		if (rc == -EPROTO && vr != X509_V_OK)
			snprintf(err, errlen, "certificate: %s",
			    X509_verify_cert_error_string(vr));
		else if (rc == -EPROTO)
			snprintf(err, errlen, "tls handshake: %s",
			    ERR_reason_error_string(ERR_peek_last_error()) ?
			    ERR_reason_error_string(ERR_peek_last_error()) :
			    "failed");
		else
			snprintf(err, errlen, "tls handshake: %s",
			    strerror(-rc));
		goto out;
	}
	*ms = now_mono_ms() - start;
	if ((leaf = leaf_cert(ssl)) == NULL) {
		snprintf(err, errlen, "no certificate");
		rc = -EPROTO;
		goto out;
	}
	if (pin != NULL && (rc = check_pin(leaf, pin, err, errlen)) < 0)
		goto out;
	if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0) {
		snprintf(err, errlen, "certificate not yet valid");
		rc = -EPROTO;
		goto out;
	}
	if (ASN1_TIME_diff(&d, &s, NULL, X509_get0_notAfter(leaf)) != 1) {
		snprintf(err, errlen, "certificate: bad notAfter");
		rc = -EPROTO;
		goto out;
	}
	*days = (double)d + (double)s / 86400.0;
	rc = 0;
out:
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	return rc;
}

/*
 * Kernel TLS for TLS 1.3 after the hand-off (doc/design.md, "Kernel
 * TLS").  The kernel is given each direction's key, the IV split as it
 * wants it (AES-GCM: a 4-byte salt and an 8-byte IV; ChaCha20-Poly1305:
 * all 12 bytes) and the next sequence number; it then frames, seals and
 * opens RFC 8446 records itself, and hands non-data records (alerts,
 * handshake messages) to recvmsg with their type in a control message.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/tls.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "worker/ktls.h"

#ifndef SOL_TLS
#define SOL_TLS		282
#endif

#define REC_ALERT	21
#define REC_APPDATA	23
#define PROBE_MS	1000

union crypto_info {
	struct tls_crypto_info				base;
	struct tls12_crypto_info_aes_gcm_128		g128;
	struct tls12_crypto_info_aes_gcm_256		g256;
	struct tls12_crypto_info_chacha20_poly1305	cc;
};

static const uint16_t probe_suites[] = {
	TLSREC_AES_128_GCM_SHA256, TLSREC_AES_256_GCM_SHA384,
	TLSREC_CHACHA20_POLY1305_SHA256,
};

unsigned
ktls_suite_bit(uint16_t suite)
{
	switch (suite) {
	case TLSREC_AES_128_GCM_SHA256:		return 1u;
	case TLSREC_AES_256_GCM_SHA384:		return 2u;
	case TLSREC_CHACHA20_POLY1305_SHA256:	return 4u;
	default:				return 0;
	}
}

static void
put_seq(unsigned char out[8], uint64_t seq)
{
	int	i;

	for (i = 0; i < 8; i++)
		out[i] = (unsigned char)(seq >> (56 - 8 * i));
}

ssize_t
ktls_crypto_info(struct tlsrec_pool *pool, uint16_t suite,
    const uint8_t *secret, size_t secret_len, uint64_t seq, void *out,
    size_t cap)
{
	union crypto_info	ci;
	uint8_t			key[TLSREC_KEY_MAX], iv[TLSREC_IV_LEN];
	size_t			klen, len;
	int			rc;

	if ((rc = tlsrec_traffic_key(pool, suite, secret, secret_len, key,
	    &klen, iv)) < 0)
		return rc;
	memset(&ci, 0, sizeof(ci));
	ci.base.version = TLS_1_3_VERSION;
	switch (suite) {
	case TLSREC_AES_128_GCM_SHA256:
		ci.base.cipher_type = TLS_CIPHER_AES_GCM_128;
		memcpy(ci.g128.salt, iv, sizeof(ci.g128.salt));
		memcpy(ci.g128.iv, iv + 4, sizeof(ci.g128.iv));
		memcpy(ci.g128.key, key, sizeof(ci.g128.key));
		put_seq(ci.g128.rec_seq, seq);
		len = sizeof(ci.g128);
		break;
	case TLSREC_AES_256_GCM_SHA384:
		ci.base.cipher_type = TLS_CIPHER_AES_GCM_256;
		memcpy(ci.g256.salt, iv, sizeof(ci.g256.salt));
		memcpy(ci.g256.iv, iv + 4, sizeof(ci.g256.iv));
		memcpy(ci.g256.key, key, sizeof(ci.g256.key));
		put_seq(ci.g256.rec_seq, seq);
		len = sizeof(ci.g256);
		break;
	default:	/* tlsrec_traffic_key knows no other */
		ci.base.cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
		memcpy(ci.cc.iv, iv, sizeof(ci.cc.iv));
		memcpy(ci.cc.key, key, sizeof(ci.cc.key));
		put_seq(ci.cc.rec_seq, seq);
		len = sizeof(ci.cc);
		break;
	}
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(iv, sizeof(iv));
	if (cap < len) {
		OPENSSL_cleanse(&ci, sizeof(ci));
		return -EINVAL;
	}
	memcpy(out, &ci, len);
	OPENSSL_cleanse(&ci, sizeof(ci));
	return (ssize_t)len;
}

static int
set_dir(struct tlsrec_pool *pool, int fd, int dir, uint16_t suite,
    const uint8_t *secret, size_t secret_len, uint64_t seq)
{
	union crypto_info	ci;
	ssize_t			len;
	int			rc = 0;

	if ((len = ktls_crypto_info(pool, suite, secret, secret_len, seq, &ci,
	    sizeof(ci))) < 0)
		return (int)len;
	if (setsockopt(fd, SOL_TLS, dir, &ci, (socklen_t)len) < 0)
		rc = -errno;
	OPENSSL_cleanse(&ci, sizeof(ci));
	return rc;
}

int
ktls_install(struct tlsrec_pool *pool, int fd, const struct tlsrec_keys *k)
{
	int	rc;

	if (ktls_suite_bit(k->suite) == 0)
		return -EINVAL;
	/* Attaching the ULP alone changes nothing on the wire. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", 3) < 0)
		return -errno;
	if ((rc = set_dir(pool, fd, TLS_TX, k->suite, k->tx_secret,
	    k->secret_len, k->tx_seq)) < 0)
		return rc;
	if (set_dir(pool, fd, TLS_RX, k->suite, k->rx_secret, k->secret_len,
	    k->rx_seq) < 0)
		return -EPROTO;
	return 0;
}

ssize_t
ktls_read(int fd, uint8_t *p, size_t n)
{
	union {
		char		buf[CMSG_SPACE(sizeof(unsigned char))];
		struct cmsghdr	align;
	}		 cb;
	struct iovec	 iov = { .iov_base = p, .iov_len = n };
	struct msghdr	 mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cb.buf, .msg_controllen = sizeof(cb.buf),
	};
	struct cmsghdr	*cm;
	unsigned char	 type = REC_APPDATA;
	ssize_t		 r;

	if ((r = recvmsg(fd, &mh, 0)) < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return -EAGAIN;
		/* The kernel's verdicts on a record: bad tag, bad length,
		 * bad inner type. */
		if (errno == EBADMSG || errno == EMSGSIZE || errno == EINVAL ||
		    errno == EIO)
			return -EPROTO;
		return -errno;
	}
	for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_TLS &&
		    cm->cmsg_type == TLS_GET_RECORD_TYPE)
			type = *CMSG_DATA(cm);
	if (type == REC_APPDATA)
		return r;
	/* An alert is level then description; close_notify is 0. */
	if (type == REC_ALERT && r == 2 && p[1] == 0)
		return 0;
	return -EPROTO;
}

ssize_t
ktls_write(int fd, const uint8_t *p, size_t n)
{
	ssize_t	r = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (r >= 0)
		return r;
	return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
}

void
ktls_close_notify(int fd)
{
	union {
		char		buf[CMSG_SPACE(sizeof(unsigned char))];
		struct cmsghdr	align;
	}		 cb;
	unsigned char	 alert[2] = { 1, 0 };	/* warning, close_notify */
	struct iovec	 iov = { .iov_base = alert, .iov_len = sizeof(alert) };
	struct msghdr	 mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cb.buf, .msg_controllen = sizeof(cb.buf),
	};
	struct cmsghdr	*cm = CMSG_FIRSTHDR(&mh);

	cm->cmsg_level = SOL_TLS;
	cm->cmsg_type = TLS_SET_RECORD_TYPE;
	cm->cmsg_len = CMSG_LEN(sizeof(unsigned char));
	*CMSG_DATA(cm) = REC_ALERT;
	(void)sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* ---- the probe ---- */

/* A connected loopback TCP pair, both ends non-blocking. */
static int
tcp_pair(int fds[2])
{
	struct sockaddr_in	sa = { .sin_family = AF_INET };
	socklen_t		sl = sizeof(sa);
	int			l, rc = -EIO;

	fds[0] = fds[1] = -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if (bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&sa, &sl) < 0 ||
	    (fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(fds[0], (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    (fds[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK))
	    < 0) {
		rc = -errno;
		goto fail;
	}
	if (fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0) {
		rc = -errno;
		goto fail;
	}
	close(l);
	return 0;
fail:
	close(l);
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	fds[0] = fds[1] = -1;
	return rc;
}

static bool
readable(int fd)
{
	struct pollfd	pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, PROBE_MS) == 1;
}

/* Read until want bytes came or the peer is quiet for PROBE_MS. */
static bool
read_all(int fd, bool kernel, struct tlsrec *t, uint8_t *buf, size_t want)
{
	size_t	got = 0;
	ssize_t	r;

	while (got < want) {
		if (!readable(fd))
			return false;
		r = kernel ? ktls_read(fd, buf + got, want - got) :
		    tlsrec_read(t, fd, buf + got, want - got);
		if (r == -EAGAIN)
			continue;
		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	return true;
}

/* One suite, both directions: fds[0] is the kernel's end. */
static int
probe_suite(struct tlsrec_pool *pool, uint16_t suite)
{
	static const uint8_t	 out[] = "derpd kTLS probe: kernel seals";
	static const uint8_t	 in[] = "derpd kTLS probe: kernel opens";
	struct tlsrec_keys	 k, peer;
	struct tlsrec		*t = NULL;
	uint8_t			 buf[64];
	int			 fds[2], rc;

	memset(&k, 0, sizeof(k));
	k.suite = suite;
	k.secret_len = suite == TLSREC_AES_256_GCM_SHA384 ? 48 : 32;
	/* Keys used once, on loopback; the sequence numbers not at 0, so
	 * the kernel is seen to take them. */
	if (RAND_bytes(k.rx_secret, (int)k.secret_len) != 1 ||
	    RAND_bytes(k.tx_secret, (int)k.secret_len) != 1)
		return -EIO;
	k.rx_seq = 5;
	k.tx_seq = 7;
	peer = k;
	memcpy(peer.rx_secret, k.tx_secret, k.secret_len);
	memcpy(peer.tx_secret, k.rx_secret, k.secret_len);
	peer.rx_seq = k.tx_seq;
	peer.tx_seq = k.rx_seq;
	if ((rc = tcp_pair(fds)) < 0)
		goto done;
	if ((rc = ktls_install(pool, fds[0], &k)) < 0)
		goto done;
	if ((t = tlsrec_new(pool, &peer)) == NULL) {
		rc = -EIO;
		goto done;
	}
	rc = -EBADMSG;
	if (ktls_write(fds[0], out, sizeof(out)) != (ssize_t)sizeof(out) ||
	    !read_all(fds[1], false, t, buf, sizeof(out)) ||
	    memcmp(buf, out, sizeof(out)) != 0)
		goto done;
	if (tlsrec_write(t, fds[1], in, sizeof(in)) != (ssize_t)sizeof(in) ||
	    !read_all(fds[0], true, NULL, buf, sizeof(in)) ||
	    memcmp(buf, in, sizeof(in)) != 0)
		goto done;
	rc = 0;
done:
	tlsrec_free(t);
	OPENSSL_cleanse(&k, sizeof(k));
	OPENSSL_cleanse(&peer, sizeof(peer));
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	return rc;
}

unsigned
ktls_probe(struct tlsrec_pool *pool, char *why, size_t len)
{
	unsigned	bits = 0;
	size_t		i;
	int		rc;

	snprintf(why, len, "no suite");
	for (i = 0; i < sizeof(probe_suites) / sizeof(probe_suites[0]); i++) {
		if ((rc = probe_suite(pool, probe_suites[i])) == 0) {
			bits |= ktls_suite_bit(probe_suites[i]);
			continue;
		}
		if (rc == -ENOENT || rc == -ENOPROTOOPT) {
			snprintf(why, len, "TCP_ULP tls: %s (a kernel without "
			    "CONFIG_TLS, or the tls module not loaded)",
			    strerror(-rc));
			return 0;
		}
		snprintf(why, len, "suite 0x%04x: %s", probe_suites[i],
		    rc == -EBADMSG ? "kernel records disagree with derpd's" :
		    strerror(-rc));
	}
	return bits;
}

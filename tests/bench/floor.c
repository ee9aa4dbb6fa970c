/*
 * The handshake floor: what one reconnect-storm handshake costs the
 * server in libraries alone, measured in process with no socket, so
 * make bench can set the storm's server CPU per handshake against what
 * no server code could avoid.  Three figures, each a median over BATCH
 * batches of this thread's CPU time, server side only (the client's
 * work is not timed):
 *   openssl_us	 OpenSSL's TLS 1.3 server handshake (SSL_new to SSL_free)
 *		 with derpd's own server context (worker/tls.c), memory
 *		 BIOs, X25519 key share and the P-256 certificate given;
 *   keylog_us	 what of that the key log callback costs (the record
 *		 layer hand-off's price): the same with tls.record_layer
 *		 "openssl", subtracted;
 *   derp_us	 the DERP handshake's crypto: open a ClientInfo (one
 *		 X25519 and a box) and seal the ServerInfo.
 * Usage: floor CERT KEY [HANDSHAKES]; one JSON line on stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "derp/info.h"
#include "derp/key.h"
#include "worker/wk.h"

#define BATCHES	9

static double
now_us(void)
{
	struct timespec	ts;

	/* CPU time, not wall: a busy machine preempting us adds nothing. */
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int
cmp_double(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[n / 2];
}

/* Move what one side wrote to the other side's read BIO. */
static void
pump(BIO *from, BIO *to)
{
	char	buf[16384];
	int	n;

	while ((n = BIO_read(from, buf, sizeof(buf))) > 0)
		if (BIO_write(to, buf, n) != n)
			abort();
}

/* One handshake; returns the server's microseconds, or -1. */
static double
handshake(SSL_CTX *sctx, SSL_CTX *cctx)
{
	SSL	*s, *c;
	double	 t, us = 0;
	int	 i, sdone = 0, cdone = 0;

	t = now_us();
	if ((s = SSL_new(sctx)) == NULL)
		return -1;
	SSL_set_bio(s, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
	SSL_set_accept_state(s);
	us += now_us() - t;
	if ((c = SSL_new(cctx)) == NULL) {
		SSL_free(s);
		return -1;
	}
	SSL_set_bio(c, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
	SSL_set_connect_state(c);
	(void)SSL_set_tlsext_host_name(c, "localhost");
	for (i = 0; i < 8 && !(sdone && cdone); i++) {
		if (!cdone && SSL_do_handshake(c) == 1)
			cdone = 1;
		pump(SSL_get_wbio(c), SSL_get_rbio(s));
		t = now_us();
		if (!sdone && SSL_do_handshake(s) == 1)
			sdone = 1;
		us += now_us() - t;
		pump(SSL_get_wbio(s), SSL_get_rbio(c));
	}
	t = now_us();
	SSL_free(s);
	us += now_us() - t;
	SSL_free(c);
	return sdone && cdone ? us : -1;
}

static double
tls_batch(SSL_CTX *sctx, SSL_CTX *cctx, int n)
{
	double	sum = 0, us;
	int	i;

	for (i = 0; i < n; i++) {
		if ((us = handshake(sctx, cctx)) < 0) {
			ERR_print_errors_fp(stderr);
			fprintf(stderr, "floor: handshake failed\n");
			exit(1);
		}
		sum += us;
	}
	return sum / n;
}

/* Batches of the two contexts in turn, so drift hits both alike. */
static void
tls_floor(SSL_CTX *a, SSL_CTX *b, SSL_CTX *cctx, int n, double *ua,
    double *ub)
{
	double	va[BATCHES], vb[BATCHES];
	int	i;

	for (i = 0; i < BATCHES; i++) {
		va[i] = tls_batch(a, cctx, n / BATCHES);
		vb[i] = tls_batch(b, cctx, n / BATCHES);
	}
	*ua = median(va, BATCHES);
	*ub = median(vb, BATCHES);
}

static double
derp_floor(int n)
{
	struct derp_client_info	ci = { .version = DERP_PROTO_VERSION };
	struct derp_server_info	si = { .version = DERP_PROTO_VERSION };
	struct derp_client_info	got;
	struct derp_box		box;
	uint8_t			spriv[DERP_KEY_LEN], spub[DERP_KEY_LEN];
	uint8_t			cpriv[DERP_KEY_LEN], cpub[DERP_KEY_LEN];
	uint8_t			frame[512], out[512], key[DERP_KEY_LEN];
	double			v[BATCHES], t;
	ssize_t			len;
	int			b, i;

	derp_key_generate(spriv);
	if (derp_key_public(spub, spriv) < 0)
		abort();
	for (b = 0; b < BATCHES; b++) {
		double	sum = 0;

		for (i = 0; i < n / BATCHES; i++) {
			derp_key_generate(cpriv);	/* a new client */
			if (derp_key_public(cpub, cpriv) < 0 ||
			    (len = derp_client_info_frame(frame,
			    sizeof(frame), &ci, cpriv, spub)) < DERP_FRAME_HDR_LEN)
				abort();
			t = now_us();
			if (derp_client_info_open(frame + DERP_FRAME_HDR_LEN,
			    (size_t)len - DERP_FRAME_HDR_LEN, spriv, key, &box,
			    &got) < 0 ||
			    derp_server_info_frame(out, sizeof(out), &si,
			    &box) < 0)
				abort();
			derp_box_wipe(&box);
			sum += now_us() - t;
		}
		v[b] = sum / (n / BATCHES);
	}
	return median(v, BATCHES);
}

static SSL_CTX *
server_ctx(const char *cert, const char *key, const char *layer)
{
	struct config	cfg;
	uint8_t		priv[DERP_KEY_LEN], pub[DERP_KEY_LEN];
	char		err[512];
	SSL_CTX		*ctx;

	conf_defaults(&cfg);
	snprintf(cfg.hostname, sizeof(cfg.hostname), "localhost");
	snprintf(cfg.tls_certificate, sizeof(cfg.tls_certificate), "%s",
	    cert);
	snprintf(cfg.tls_private_key, sizeof(cfg.tls_private_key), "%s", key);
	snprintf(cfg.tls_record_layer, sizeof(cfg.tls_record_layer), "%s",
	    layer);
	derp_key_generate(priv);
	if (derp_key_public(pub, priv) < 0)
		abort();
	if ((ctx = tls_ctx_new(&cfg, pub, err, sizeof(err))) == NULL) {
		fprintf(stderr, "floor: %s\n", err);
		exit(1);
	}
	return ctx;
}

int
main(int argc, char **argv)
{
	SSL_CTX	*derpd, *plain, *cctx;
	double	 with_keylog, without, derp;
	int	 n;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: floor CERT KEY [HANDSHAKES]\n");
		return 2;
	}
	n = argc == 4 ? atoi(argv[3]) : 5000;
	if (n < BATCHES)
		n = BATCHES;
	if (derp_crypto_init() < 0)
		return 1;
	derpd = server_ctx(argv[1], argv[2], "derpd");
	plain = server_ctx(argv[1], argv[2], "openssl");
	/* A Go client as Tailscale's: TLS 1.3, an X25519 key share. */
	if ((cctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(cctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set1_groups_list(cctx, "X25519:P-256") != 1)
		return 1;
	SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
	(void)tls_batch(derpd, cctx, n / 10);	/* warm up */
	tls_floor(derpd, plain, cctx, n, &with_keylog, &without);
	derp = derp_floor(n);
	printf("{\"bench\":\"handshake_floor\",\"handshakes\":%d,"
	    "\"openssl_us\":%.1f,\"keylog_us\":%.1f,\"derp_us\":%.1f}\n",
	    n, with_keylog, with_keylog - without, derp);
	SSL_CTX_free(derpd);
	SSL_CTX_free(plain);
	SSL_CTX_free(cctx);
	return 0;
}

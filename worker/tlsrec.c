/*
 * The TLS 1.3 record layer after the hand-off (RFC 8446 section 5):
 * record framing, nonces from the sequence numbers, inner content type
 * and padding, alerts, KeyUpdate.  Ciphers and HKDF-Expand-Label are
 * OpenSSL's (EVP, EVP_KDF "TLS13-KDF"); the handshake stays OpenSSL's.
 * Buffers exist only while bytes wait; idle connections hold none.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "worker/tlsrec.h"

#define SCRATCH_LEN	(TLSREC_READ_MAX + TLSREC_MAX_REC)
#define IV_LEN		TLSREC_IV_LEN
#define KEY_MAX		TLSREC_KEY_MAX
#define KU_LEN		5	/* KeyUpdate: type, 3-byte length, 1 byte */
#define HS_KEY_UPDATE	24
/* KeyUpdates a peer may send with no application data between (each
 * costs three HKDF expansions and a re-key); BoringSSL allows 32. */
#define KU_RUN_MAX	32

/* Alerts (RFC 8446 6). */
#define AL_WARNING		1	/* AlertLevel */
#define AL_FATAL		2
#define AD_NONE			(-1)
#define AD_UNEXPECTED_MESSAGE	10
#define AD_BAD_RECORD_MAC	20
#define AD_RECORD_OVERFLOW	22
#define AD_ILLEGAL_PARAMETER	47
#define AD_DECODE_ERROR		50
#define AD_PROTOCOL_VERSION	70
#define AD_USER_CANCELED	90

struct suite {
	uint16_t	 id;
	const char	*cipher;	/* EVP fetch names */
	const char	*md;
	size_t		 key_len;
	size_t		 hash_len;
};

static const struct suite suites[] = {
	{ TLSREC_AES_128_GCM_SHA256, "AES-128-GCM", "SHA256", 16, 32 },
	{ TLSREC_AES_256_GCM_SHA384, "AES-256-GCM", "SHA384", 32, 48 },
	{ TLSREC_CHACHA20_POLY1305_SHA256, "ChaCha20-Poly1305", "SHA256",
	    32, 32 },
};
#define NSUITES	(sizeof(suites) / sizeof(suites[0]))

/* One direction's traffic secret and what is derived from it. */
struct dir {
	uint8_t		 secret[TLSREC_SECRET_MAX];
	uint8_t		 key[KEY_MAX];
	uint8_t		 iv[IV_LEN];
	uint64_t	 seq;
	uint64_t	 gen;		/* pool-unique id of this key */
};

struct tlsrec_pool {
	uint8_t		*scratch;	/* SCRATCH_LEN, lent per call */
	EVP_CIPHER	*ciph[NSUITES];
	EVP_KDF		*kdf;
	EVP_CIPHER_CTX	*ctx[2];	/* [0] open, [1] seal */
	uint64_t	 loaded[2];	/* gen of the key in ctx[i] */
	uint64_t	 next_gen;
	uint64_t	 rekeys;
};

struct tlsrec {
	struct tlsrec_pool *pool;
	const struct suite *s;
	size_t		 si;
	struct dir	 rx, tx;
	/* Received and held (rh_cap bytes): rh[pt_off..+rh_pt) plaintext
	 * not yet taken, then rh[raw_off..+rh_raw) bytes not yet opened
	 * (records, the last possibly partial), opened where they lie. */
	uint8_t		*rh;
	size_t		 rh_cap, pt_off, rh_pt, raw_off, rh_raw;
	/* To send: th[th_off..th_len) of records the socket has not taken,
	 * standing for th_pt bytes of the caller's plaintext. */
	uint8_t		*th;
	size_t		 th_off, th_len, th_pt;
	uint8_t		 hs[KU_LEN];	/* a handshake message so far */
	size_t		 hs_len;
	bool		 ku_send;	/* our KeyUpdate before the next one */
	bool		 ku_req;	/* ... with update_requested */
	bool		 eof;
	bool		 closed;	/* our close_notify went out */
	int		 err;		/* sticky, negative */
	int		 alert;		/* to send with err, or AD_NONE */
	unsigned	 ku_run;	/* KeyUpdates since application data */
	uint64_t	 key_updates, key_updates_sent;
	uint64_t	 rekey_at;	/* tx records under one key */
};

/* ---- keys ---- */

static int
expand_label(struct tlsrec_pool *pl, const struct suite *s,
    const uint8_t *secret, const char *label, uint8_t *out, size_t len)
{
	EVP_KDF_CTX	*kc;
	OSSL_PARAM	 prm[6];
	int		 mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY, rc;

	if ((kc = EVP_KDF_CTX_new(pl->kdf)) == NULL)
		return -ENOMEM;
	prm[0] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
	prm[1] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
	    (char *)(uintptr_t)s->md, 0);
	prm[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
	    (void *)(uintptr_t)secret, s->hash_len);
	prm[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PREFIX,
	    (void *)(uintptr_t)"tls13 ", 6);
	prm[4] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_LABEL,
	    (void *)(uintptr_t)label, strlen(label));
	prm[5] = OSSL_PARAM_construct_end();
	rc = EVP_KDF_derive(kc, out, len, prm) == 1 ? 0 : -EIO;
	EVP_KDF_CTX_free(kc);
	return rc;
}

/* Key and IV from d->secret (RFC 8446 7.3); a new key id, sequence 0
 * unless the caller sets it. */
static int
dir_install(struct tlsrec *t, struct dir *d)
{
	int	rc;

	if ((rc = expand_label(t->pool, t->s, d->secret, "key", d->key,
	    t->s->key_len)) < 0 ||
	    (rc = expand_label(t->pool, t->s, d->secret, "iv", d->iv,
	    IV_LEN)) < 0)
		return rc;
	d->gen = ++t->pool->next_gen;
	d->seq = 0;
	return 0;
}

/* application_traffic_secret_N+1 (RFC 8446 7.2). */
static int
dir_update(struct tlsrec *t, struct dir *d)
{
	uint8_t	next[TLSREC_SECRET_MAX];
	int	rc;

	if ((rc = expand_label(t->pool, t->s, d->secret, "traffic upd", next,
	    t->s->hash_len)) < 0)
		return rc;
	memcpy(d->secret, next, t->s->hash_len);
	OPENSSL_cleanse(next, sizeof(next));
	return dir_install(t, d);
}

/* The shared context with d's key loaded; enc 1 seals, 0 opens. */
static EVP_CIPHER_CTX *
ctx_for(struct tlsrec *t, const struct dir *d, int enc)
{
	struct tlsrec_pool	*pl = t->pool;
	EVP_CIPHER_CTX		*ctx = pl->ctx[enc];
	const EVP_CIPHER	*want = pl->ciph[t->si];

	if (pl->loaded[enc] == d->gen)
		return ctx;
	pl->loaded[enc] = 0;
	/* Passing the cipher again would rebuild the provider context. */
	if (EVP_CipherInit_ex(ctx, EVP_CIPHER_CTX_get0_cipher(ctx) == want ?
	    NULL : want, NULL, d->key, NULL, enc) != 1)
		return NULL;
	pl->loaded[enc] = d->gen;
	pl->rekeys++;
	return ctx;
}

static void
nonce_of(const struct dir *d, uint8_t nonce[IV_LEN])
{
	int	i;

	memcpy(nonce, d->iv, IV_LEN);
	for (i = 0; i < 8; i++)
		nonce[IV_LEN - 8 + i] ^= (uint8_t)(d->seq >> (56 - 8 * i));
}

/* ---- records ---- */

static void
hdr_put(uint8_t *h, size_t clen)
{
	h[0] = TLSREC_APPDATA;
	h[1] = 3;
	h[2] = 3;
	h[3] = (uint8_t)(clen >> 8);
	h[4] = (uint8_t)clen;
}

ssize_t
tlsrec_seal(struct tlsrec *t, uint8_t type, const void *p, size_t n,
    size_t pad, uint8_t *out, size_t cap)
{
	EVP_CIPHER_CTX	*ctx;
	uint8_t		 nonce[IV_LEN], tail[1 + 256];
	size_t		 inner = n + 1 + pad, clen = inner + TLSREC_TAG;
	int		 outl;

	if (n > TLSREC_MAX_PT || inner > TLSREC_MAX_PT + 1 || pad > 255 ||
	    cap < TLSREC_HDR + clen)
		return -EMSGSIZE;
	if (t->tx.seq == UINT64_MAX)
		return -EOVERFLOW;	/* never reused under one key */
	if ((ctx = ctx_for(t, &t->tx, 1)) == NULL)
		return -EIO;
	hdr_put(out, clen);
	tail[0] = type;
	memset(tail + 1, 0, pad);
	nonce_of(&t->tx, nonce);
	if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, 1) != 1 ||
	    EVP_CipherUpdate(ctx, NULL, &outl, out, TLSREC_HDR) != 1 ||
	    (n > 0 && EVP_CipherUpdate(ctx, out + TLSREC_HDR, &outl, p,
	    (int)n) != 1) ||
	    EVP_CipherUpdate(ctx, out + TLSREC_HDR + n, &outl, tail,
	    (int)(1 + pad)) != 1 ||
	    EVP_CipherFinal_ex(ctx, out + TLSREC_HDR + inner, &outl) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TLSREC_TAG,
	    out + TLSREC_HDR + inner) != 1) {
		t->pool->loaded[1] = 0;
		return -EIO;
	}
	t->tx.seq++;
	return (ssize_t)(TLSREC_HDR + clen);
}

static int
fail(struct tlsrec *t, int alert, int rc)
{
	t->alert = alert;
	t->err = rc;
	return rc;
}

/* The length of the whole record at b (0: header incomplete) after
 * checking its header; <0 on a bad one. */
static ssize_t
rec_len(struct tlsrec *t, const uint8_t *b, size_t len)
{
	size_t	clen;

	if (len < TLSREC_HDR)
		return 0;
	if (b[0] != TLSREC_APPDATA)
		return fail(t, AD_UNEXPECTED_MESSAGE, -EPROTO);
	if (b[1] != 3 || b[2] != 3)
		return fail(t, AD_PROTOCOL_VERSION, -EPROTO);
	clen = (size_t)b[3] << 8 | b[4];
	/* Our AEADs expand by the tag alone: more than 2^14 + 1 bytes of
	 * inner plaintext is record_overflow (RFC 8446 5.2, 5.4). */
	if (clen > TLSREC_MAX_CT || clen > TLSREC_MAX_PT + 1 + TLSREC_TAG)
		return fail(t, AD_RECORD_OVERFLOW, -EMSGSIZE);
	if (clen < TLSREC_TAG + 1)
		return fail(t, AD_DECODE_ERROR, -EPROTO);
	return (ssize_t)(TLSREC_HDR + clen);
}

/* Open the record rec[0..rl) into dst (rec + TLSREC_HDR or room for
 * rl - HDR - TAG bytes elsewhere): the content's length, its type in
 * *type.  Nothing of dst is used unless the tag verified. */
static ssize_t
rec_open(struct tlsrec *t, const uint8_t *rec, size_t rl, uint8_t *dst,
    uint8_t *type)
{
	EVP_CIPHER_CTX	*ctx;
	uint8_t		 nonce[IV_LEN];
	size_t		 inner = rl - TLSREC_HDR - TLSREC_TAG, i;
	int		 outl;

	if (t->rx.seq == UINT64_MAX)
		return fail(t, AD_NONE, -EOVERFLOW);
	if ((ctx = ctx_for(t, &t->rx, 0)) == NULL)
		return fail(t, AD_NONE, -EIO);
	nonce_of(&t->rx, nonce);
	if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, 0) != 1 ||
	    EVP_CipherUpdate(ctx, NULL, &outl, rec, TLSREC_HDR) != 1 ||
	    EVP_CipherUpdate(ctx, dst, &outl, rec + TLSREC_HDR, (int)inner)
	    != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TLSREC_TAG,
	    (void *)(uintptr_t)(rec + TLSREC_HDR + inner)) != 1 ||
	    EVP_CipherFinal_ex(ctx, dst + inner, &outl) != 1) {
		t->pool->loaded[0] = 0;
		OPENSSL_cleanse(dst, inner);
		return fail(t, AD_BAD_RECORD_MAC, -EBADMSG);
	}
	t->rx.seq++;
	/* Inner plaintext: content, type, zeros (RFC 8446 5.4). */
	for (i = inner; i > 0 && dst[i - 1] == 0; i--)
		;
	if (i == 0)
		return fail(t, AD_UNEXPECTED_MESSAGE, -EPROTO);
	*type = dst[i - 1];
	return (ssize_t)(i - 1);
}

/* Handshake bytes after the handshake: KeyUpdate alone (RFC 8446
 * 4.6.3), possibly split over records, ending at a record's end. */
static int
rec_handshake(struct tlsrec *t, const uint8_t *q, size_t m)
{
	size_t	i;
	int	rc;

	if (m == 0)
		return fail(t, AD_UNEXPECTED_MESSAGE, -EPROTO);
	for (i = 0; i < m; i++) {
		t->hs[t->hs_len++] = q[i];
		if (t->hs_len == 4 && (t->hs[0] != HS_KEY_UPDATE ||
		    t->hs[1] != 0 || t->hs[2] != 0 || t->hs[3] != 1))
			return fail(t, AD_UNEXPECTED_MESSAGE, -EPROTO);
		if (t->hs_len < KU_LEN)
			continue;
		/* Messages before a key change end at a record boundary. */
		if (i + 1 != m)
			return fail(t, AD_UNEXPECTED_MESSAGE, -EPROTO);
		if (t->hs[4] > 1)
			return fail(t, AD_ILLEGAL_PARAMETER, -EPROTO);
		if (++t->ku_run > KU_RUN_MAX)
			return fail(t, AD_UNEXPECTED_MESSAGE, -EPROTO);
		if ((rc = dir_update(t, &t->rx)) < 0)
			return fail(t, AD_NONE, rc);
		t->key_updates++;
		if (t->hs[4] == 1)
			t->ku_send = true;	/* one reply covers many */
		t->hs_len = 0;
	}
	return 0;
}

/* One opened record: the application bytes it carries (>= 0). */
static ssize_t
rec_handle(struct tlsrec *t, uint8_t type, const uint8_t *q, size_t m)
{
	int	rc;

	if (t->hs_len > 0 && type != TLSREC_HANDSHAKE)
		return fail(t, AD_UNEXPECTED_MESSAGE, -EPROTO);
	switch (type) {
	case TLSREC_APPDATA:
		if (m > 0)
			t->ku_run = 0;
		return (ssize_t)m;
	case TLSREC_ALERT:
		if (m != 2)
			return fail(t, AD_DECODE_ERROR, -EPROTO);
		if (q[1] == TLSREC_CLOSE_NOTIFY) {
			t->eof = true;
			return 0;
		}
		if (q[1] == AD_USER_CANCELED)
			return 0;	/* close_notify follows */
		return fail(t, AD_NONE, -ECONNRESET);
	case TLSREC_HANDSHAKE:
		rc = rec_handshake(t, q, m);
		return rc < 0 ? rc : 0;
	default:
		return fail(t, AD_UNEXPECTED_MESSAGE, -EPROTO);
	}
}

/* ---- buffers ---- */

static void
rhold_free(struct tlsrec *t)
{
	if (t->rh != NULL && t->rh_pt > 0)
		OPENSSL_cleanse(t->rh + t->pt_off, t->rh_pt);
	free(t->rh);
	t->rh = NULL;
	t->rh_cap = t->pt_off = t->rh_pt = t->raw_off = t->rh_raw = 0;
}

/* Hold plaintext pt[0..ptn) and raw bytes raw[0..rawn) in a new
 * buffer (nothing is held before). */
static int
rhold_put(struct tlsrec *t, const uint8_t *pt, size_t ptn,
    const uint8_t *raw, size_t rawn)
{
	if (ptn + rawn == 0)
		return 0;
	if ((t->rh = malloc(ptn + rawn)) == NULL)
		return -ENOMEM;
	if (ptn > 0)
		memcpy(t->rh, pt, ptn);
	if (rawn > 0)
		memcpy(t->rh + ptn, raw, rawn);
	t->rh_cap = ptn + rawn;
	t->pt_off = 0;
	t->rh_pt = ptn;
	t->raw_off = ptn;
	t->rh_raw = rawn;
	return 0;
}

static size_t
rhold_take(struct tlsrec *t, uint8_t *p, size_t n)
{
	size_t	k = n < t->rh_pt ? n : t->rh_pt;

	memcpy(p, t->rh + t->pt_off, k);
	OPENSSL_cleanse(t->rh + t->pt_off, k);
	t->pt_off += k;
	t->rh_pt -= k;
	if (t->rh_pt == 0 && t->rh_raw == 0)
		rhold_free(t);
	return k;
}

static void
thold_free(struct tlsrec *t)
{
	free(t->th);
	t->th = NULL;
	t->th_off = t->th_len = t->th_pt = 0;
}

/* Best effort: a fatal alert, unless it would land inside a record the
 * socket has only partly taken. */
static void
send_alert(struct tlsrec *t, int fd, int desc)
{
	uint8_t	rec[TLSREC_HDR + 3 + TLSREC_TAG];
	uint8_t	body[2] = { AL_FATAL, (uint8_t)desc };
	ssize_t	n;

	if (desc == AD_NONE || t->th_len > 0)
		return;
	n = tlsrec_seal(t, TLSREC_ALERT, body, sizeof(body), 0, rec,
	    sizeof(rec));
	if (n > 0 && write(fd, rec, (size_t)n) < 0)
		return;	/* the connection is closing anyway */
}

static ssize_t
die(struct tlsrec *t, int fd)
{
	if (t->alert != AD_NONE) {
		send_alert(t, fd, t->alert);
		t->alert = AD_NONE;
	}
	rhold_free(t);
	return t->err;
}

/* ---- the API ---- */

struct tlsrec_pool *
tlsrec_pool_new(void)
{
	struct tlsrec_pool	*pl;
	size_t			 i;

	if ((pl = calloc(1, sizeof(*pl))) == NULL)
		return NULL;
	if ((pl->scratch = malloc(SCRATCH_LEN)) == NULL ||
	    (pl->kdf = EVP_KDF_fetch(NULL, "TLS13-KDF", NULL)) == NULL ||
	    (pl->ctx[0] = EVP_CIPHER_CTX_new()) == NULL ||
	    (pl->ctx[1] = EVP_CIPHER_CTX_new()) == NULL)
		goto fail;
	for (i = 0; i < NSUITES; i++)
		if ((pl->ciph[i] = EVP_CIPHER_fetch(NULL, suites[i].cipher,
		    NULL)) == NULL)
			goto fail;
	return pl;
fail:
	tlsrec_pool_free(pl);
	errno = ENOMEM;
	return NULL;
}

void
tlsrec_pool_free(struct tlsrec_pool *pl)
{
	size_t	i;

	if (pl == NULL)
		return;
	if (pl->scratch != NULL)
		OPENSSL_cleanse(pl->scratch, SCRATCH_LEN);
	free(pl->scratch);
	for (i = 0; i < NSUITES; i++)
		EVP_CIPHER_free(pl->ciph[i]);
	EVP_KDF_free(pl->kdf);
	EVP_CIPHER_CTX_free(pl->ctx[0]);
	EVP_CIPHER_CTX_free(pl->ctx[1]);
	free(pl);
}

uint64_t
tlsrec_pool_rekeys(const struct tlsrec_pool *pl)
{
	return pl->rekeys;
}

struct tlsrec *
tlsrec_new(struct tlsrec_pool *pool, const struct tlsrec_keys *k)
{
	struct tlsrec	*t;
	size_t		 i;

	for (i = 0; i < NSUITES && suites[i].id != k->suite; i++)
		;
	if (i == NSUITES || k->secret_len != suites[i].hash_len) {
		errno = EINVAL;
		return NULL;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->pool = pool;
	t->s = &suites[i];
	t->si = i;
	t->alert = AD_NONE;
	memcpy(t->rx.secret, k->rx_secret, k->secret_len);
	memcpy(t->tx.secret, k->tx_secret, k->secret_len);
	if (dir_install(t, &t->rx) < 0 || dir_install(t, &t->tx) < 0) {
		tlsrec_free(t);
		errno = EIO;
		return NULL;
	}
	t->rx.seq = k->rx_seq;
	t->tx.seq = k->tx_seq;
	t->rekey_at = TLSREC_REKEY_SEQ;
	return t;
}

void
tlsrec_free(struct tlsrec *t)
{
	if (t == NULL)
		return;
	rhold_free(t);
	thold_free(t);
	/* The pool's contexts may still hold these keys: forget them. */
	if (t->pool->loaded[0] == t->rx.gen)
		t->pool->loaded[0] = 0;
	if (t->pool->loaded[1] == t->tx.gen)
		t->pool->loaded[1] = 0;
	OPENSSL_cleanse(t, sizeof(*t));
	free(t);
}

/* Open the complete record at rec (rl bytes): its application bytes go
 * to p[*out..n), or, when they may not fit, are opened in place and
 * what does not fit is held: where it lies when rec is in the hold,
 * else copied with the rest[0..restn) of the bytes read.  1: go on,
 * 0: stop (p full or EOF), 2: plaintext held, <0 error. */
static int
rx_one(struct tlsrec *t, uint8_t *rec, size_t rl, uint8_t *p, size_t n,
    size_t *out, const uint8_t *rest, size_t restn)
{
	size_t	 inner = rl - TLSREC_HDR - TLSREC_TAG, k;
	bool	 direct = inner <= n - *out;
	uint8_t	*dst = direct ? p + *out : rec + TLSREC_HDR, type;
	ssize_t	 r;

	if ((r = rec_open(t, rec, rl, dst, &type)) < 0 ||
	    (r = rec_handle(t, type, dst, (size_t)r)) < 0)
		return (int)r;
	if (direct) {
		*out += (size_t)r;
	} else if (r > 0) {
		k = n - *out < (size_t)r ? n - *out : (size_t)r;
		memcpy(p + *out, dst, k);
		OPENSSL_cleanse(dst, k);	/* opened in place: wipe */
		*out += k;
		if (k < (size_t)r) {
			if (t->rh != NULL && rec >= t->rh &&
			    rec < t->rh + t->rh_cap) {
				t->pt_off = (size_t)(dst + k - t->rh);
				t->rh_pt = (size_t)r - k;
				return 2;
			}
			if (rhold_put(t, dst + k, (size_t)r - k, rest, restn)
			    < 0)
				return fail(t, AD_NONE, -ENOMEM);
			OPENSSL_cleanse(dst, (size_t)r);
			return 2;
		}
	}
	return t->eof || *out == n ? 0 : 1;
}

/* Records complete in the hold, opened where they lie.  1: go on to the
 * socket, 0: return *out, <0 error. */
static int
rx_held(struct tlsrec *t, uint8_t *p, size_t n, size_t *out)
{
	uint8_t	*b;
	ssize_t	 rl;
	int	 rc;

	while (t->rh_raw > 0) {
		b = t->rh + t->raw_off;
		if ((rl = rec_len(t, b, t->rh_raw)) < 0)
			return (int)rl;
		if (rl == 0 || (size_t)rl > t->rh_raw)
			break;
		t->raw_off += (size_t)rl;
		t->rh_raw -= (size_t)rl;
		if ((rc = rx_one(t, b, (size_t)rl, p, n, out, NULL, 0)) < 0)
			return rc;
		if (rc == 2)
			return 0;
		if (t->rh_raw == 0)
			rhold_free(t);
		if (rc == 0) {
			if (t->eof)
				rhold_free(t);
			return 0;
		}
	}
	return *out > 0 ? 0 : 1;
}

/* A partial record with a whole header is held: read the rest of that
 * record into the hold (no copy per read).  1: it is complete, 0: not
 * yet (-EAGAIN for the caller), <0 error. */
static int
rx_fill(struct tlsrec *t, int fd)
{
	ssize_t	 rl, r;
	uint8_t	*np;

	rl = rec_len(t, t->rh + t->raw_off, t->rh_raw);
	if (rl <= 0)
		return rl < 0 ? (int)rl : fail(t, AD_NONE, -EIO);
	if (t->raw_off > 0) {
		memmove(t->rh, t->rh + t->raw_off, t->rh_raw);
		t->raw_off = 0;
	}
	if (t->rh_cap < (size_t)rl) {
		if ((np = realloc(t->rh, (size_t)rl)) == NULL)
			return fail(t, AD_NONE, -ENOMEM);
		t->rh = np;
		t->rh_cap = (size_t)rl;
	}
	r = read(fd, t->rh + t->rh_raw, (size_t)rl - t->rh_raw);
	if (r > 0) {
		t->rh_raw += (size_t)r;
		return t->rh_raw == (size_t)rl ? 1 : 0;
	}
	if (r == 0)	/* EOF inside a record */
		return fail(t, AD_NONE, -EPROTO);
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return 0;
	return fail(t, AD_NONE, -errno);
}

ssize_t
tlsrec_read(struct tlsrec *t, int fd, uint8_t *p, size_t n)
{
	uint8_t	*w = t->pool->scratch;
	size_t	 len = 0, pos = 0, out = 0;
	ssize_t	 rl, r;
	bool	 did_read = false;
	int	 rc;

	if (t->err != 0)
		return t->err;
	if (n == 0)
		return -EINVAL;
	if (t->rh_pt > 0)
		return (ssize_t)rhold_take(t, p, n);
	if (t->eof)
		return 0;
	if ((rc = rx_held(t, p, n, &out)) <= 0)
		return rc < 0 ? die(t, fd) : out > 0 ? (ssize_t)out :
		    t->eof ? 0 : -EAGAIN;
	if (t->rh_raw >= TLSREC_HDR) {
		if ((rc = rx_fill(t, fd)) < 0)
			return die(t, fd);
		if (rc == 0)
			return -EAGAIN;
		if ((rc = rx_held(t, p, n, &out)) < 0)
			return die(t, fd);
		if (out > 0 || t->eof || t->rh_pt > 0)
			return out > 0 ? (ssize_t)out : t->eof ? 0 : -EAGAIN;
		did_read = true;	/* once per call: back to epoll */
	}
	if (t->rh_raw > 0) {	/* less than a header */
		len = t->rh_raw;
		memcpy(w, t->rh + t->raw_off, len);
		rhold_free(t);
	}
	for (;;) {
		if ((rl = rec_len(t, w + pos, len - pos)) < 0)
			return die(t, fd);
		if (rl > 0 && (size_t)rl <= len - pos) {
			pos += (size_t)rl;
			rc = rx_one(t, w + pos - (size_t)rl, (size_t)rl, p, n,
			    &out, w + pos, len - pos);
			if (rc < 0)
				return die(t, fd);
			if (rc == 2)
				return (ssize_t)out;
			if (rc == 0)
				break;
			continue;
		}
		if (out > 0 || did_read)
			break;
		if (pos > 0) {
			memmove(w, w + pos, len - pos);
			len -= pos;
			pos = 0;
		}
		/* No more than n and a record: what is held stays small. */
		r = read(fd, w + len, (n < TLSREC_READ_MAX ?
		    n + TLSREC_MAX_REC : SCRATCH_LEN) - len);
		did_read = true;
		if (r > 0) {
			len += (size_t)r;
			continue;
		}
		if (r == 0) {
			if (len > 0) {	/* EOF inside a record */
				(void)fail(t, AD_NONE, -EPROTO);
				return die(t, fd);
			}
			t->eof = true;
			return 0;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			break;
		(void)fail(t, AD_NONE, -errno);
		return die(t, fd);
	}
	if (!t->eof && rhold_put(t, NULL, 0, w + pos, len - pos) < 0) {
		(void)fail(t, AD_NONE, -ENOMEM);
		return die(t, fd);
	}
	return out > 0 ? (ssize_t)out : t->eof ? 0 : -EAGAIN;
}

/* Write what the socket did not take: 0 when all of it is out. */
static int
tx_push(struct tlsrec *t, int fd)
{
	ssize_t	r;

	while (t->th_off < t->th_len) {
		r = write(fd, t->th + t->th_off, t->th_len - t->th_off);
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == EINTR)
				return -EAGAIN;
			return fail(t, AD_NONE, -errno);
		}
		t->th_off += (size_t)r;
	}
	thold_free(t);
	return 0;
}

/* Our KeyUpdate under the current keys into out, then the new tx key. */
static ssize_t
seal_key_update(struct tlsrec *t, uint8_t *out, size_t cap)
{
	uint8_t	msg[KU_LEN] = { HS_KEY_UPDATE, 0, 0, 1, t->ku_req };
	ssize_t	r;
	int	rc;

	if ((r = tlsrec_seal(t, TLSREC_HANDSHAKE, msg, sizeof(msg), 0, out,
	    cap)) < 0)
		return r;
	if ((rc = dir_update(t, &t->tx)) < 0)
		return rc;
	t->ku_send = t->ku_req = false;
	t->key_updates_sent++;
	return r;
}

ssize_t
tlsrec_write(struct tlsrec *t, int fd, const uint8_t *p, size_t n)
{
	uint8_t	*w = t->pool->scratch;
	size_t	 len = 0, chunk, done;
	ssize_t	 r;
	int	 rc;

	if (t->err != 0)
		return t->err;
	if (t->closed)
		return -EPIPE;
	if (t->th_len > 0) {
		done = t->th_pt;	/* tx_push forgets it */
		if ((rc = tx_push(t, fd)) < 0)
			return rc;
		if (done > n)	/* not a retry of the same bytes */
			return fail(t, AD_NONE, -EPROTO);
		if (done > 0)
			return (ssize_t)done;
	}
	if (t->tx.seq >= t->rekey_at)
		t->ku_send = true;
	if (n == 0 && !t->ku_send)
		return 0;
	if (t->ku_send) {
		if ((r = seal_key_update(t, w, SCRATCH_LEN)) < 0)
			return fail(t, AD_NONE, (int)r);
		len = (size_t)r;
	}
	chunk = n < TLSREC_MAX_PT ? n : TLSREC_MAX_PT;
	if (chunk > 0) {
		if ((r = tlsrec_seal(t, TLSREC_APPDATA, p, chunk, 0, w + len,
		    SCRATCH_LEN - len)) < 0)
			return fail(t, AD_NONE, (int)r);
		len += (size_t)r;
	}
	r = write(fd, w, len);
	if (r < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return fail(t, AD_NONE, -errno);
		r = 0;
	}
	if ((size_t)r == len)
		return (ssize_t)chunk;
	/* Sealed records are never sealed again: keep the rest. */
	if ((t->th = malloc(len - (size_t)r)) == NULL)
		return fail(t, AD_NONE, -ENOMEM);
	memcpy(t->th, w + r, len - (size_t)r);
	t->th_off = 0;
	t->th_len = len - (size_t)r;
	t->th_pt = chunk;
	return -EAGAIN;
}

int
tlsrec_close_notify(struct tlsrec *t, int fd)
{
	uint8_t	rec[TLSREC_HDR + 3 + TLSREC_TAG];
	uint8_t	body[2] = { AL_WARNING, TLSREC_CLOSE_NOTIFY };
	ssize_t	n, r;
	int	rc;

	if (t->err != 0)
		return t->err;
	if (t->closed)	/* the rest of our alert, if any is held */
		return t->th_len > 0 ? tx_push(t, fd) : -EPIPE;
	if (t->th_len > 0 && (rc = tx_push(t, fd)) < 0)
		return rc;	/* inside a record: nothing may follow */
	if ((n = tlsrec_seal(t, TLSREC_ALERT, body, sizeof(body), 0, rec,
	    sizeof(rec))) < 0)
		return fail(t, AD_NONE, (int)n);
	t->closed = true;
	r = send(fd, rec, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (r < 0 && errno == ENOTSOCK)
		r = write(fd, rec, (size_t)n);
	if (r < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return fail(t, AD_NONE, -errno);
		r = 0;
	}
	if (r == n)
		return 0;
	/* Sealed once: what the socket did not take waits for a retry. */
	if ((t->th = malloc((size_t)(n - r))) == NULL)
		return fail(t, AD_NONE, -ENOMEM);
	memcpy(t->th, rec + r, (size_t)(n - r));
	t->th_off = 0;
	t->th_len = (size_t)(n - r);
	t->th_pt = 0;
	return -EAGAIN;
}

void
tlsrec_key_update(struct tlsrec *t, bool update_requested)
{
	t->ku_send = true;
	t->ku_req = t->ku_req || update_requested;
}

void
tlsrec_set_key_update_records(struct tlsrec *t, uint64_t records)
{
	assert(records >= 1 && records <= TLSREC_REKEY_SEQ);
	t->rekey_at = records;
}

uint64_t
tlsrec_key_updates(const struct tlsrec *t)
{
	return t->key_updates;
}

uint64_t
tlsrec_key_updates_sent(const struct tlsrec *t)
{
	return t->key_updates_sent;
}

void
tlsrec_held(const struct tlsrec *t, size_t *rx, size_t *tx)
{
	*rx = t->rh != NULL ? t->rh_cap : 0;
	*tx = t->th != NULL ? t->th_len : 0;
}

void
tlsrec_seqs(const struct tlsrec *t, uint64_t *rx, uint64_t *tx)
{
	*rx = t->rx.seq;
	*tx = t->tx.seq;
}

int
tlsrec_traffic_key(struct tlsrec_pool *pool, uint16_t suite,
    const uint8_t *secret, size_t secret_len, uint8_t key[TLSREC_KEY_MAX],
    size_t *key_len, uint8_t iv[TLSREC_IV_LEN])
{
	size_t	i;
	int	rc;

	for (i = 0; i < NSUITES && suites[i].id != suite; i++)
		;
	if (i == NSUITES || secret_len != suites[i].hash_len)
		return -EINVAL;
	if ((rc = expand_label(pool, &suites[i], secret, "key", key,
	    suites[i].key_len)) < 0 ||
	    (rc = expand_label(pool, &suites[i], secret, "iv", iv,
	    TLSREC_IV_LEN)) < 0) {
		OPENSSL_cleanse(key, TLSREC_KEY_MAX);
		return rc;
	}
	*key_len = suites[i].key_len;
	return 0;
}

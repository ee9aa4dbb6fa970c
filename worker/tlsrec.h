/*
 * TLS 1.3 record layer (RFC 8446 section 5) for connections whose
 * handshake OpenSSL has finished: framing, sequence numbers, padding,
 * KeyUpdate.  The AEAD and HKDF-Expand-Label are OpenSSL's (EVP).
 * Knows nothing of the worker: an fd, a pool and bytes.
 */
#ifndef WORKER_TLSREC_H
#define WORKER_TLSREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TLSREC_HDR		5
#define TLSREC_TAG		16
#define TLSREC_MAX_PT		16384		/* plaintext per record */
#define TLSREC_MAX_CT		(16384 + 256)	/* TLSCiphertext.length */
#define TLSREC_MAX_REC		(TLSREC_HDR + TLSREC_MAX_CT)
#define TLSREC_READ_MAX		65536		/* read() per call */
#define TLSREC_SECRET_MAX	48
#define TLSREC_KEY_MAX		32
#define TLSREC_IV_LEN		12
/* Our own KeyUpdate after this many records under one key: far inside
 * the AES-GCM limit of RFC 8446 5.5 (2^24.5 full records).  The most,
 * and the default, of tlsrec_set_key_update_records. */
#define TLSREC_REKEY_SEQ	(UINT64_C(1) << 24)

/* TLS 1.3 cipher suites (RFC 8446 B.4). */
#define TLSREC_AES_128_GCM_SHA256	0x1301
#define TLSREC_AES_256_GCM_SHA384	0x1302
#define TLSREC_CHACHA20_POLY1305_SHA256	0x1303

/* Record content types and the alerts we send or act on. */
#define TLSREC_ALERT		21
#define TLSREC_HANDSHAKE	22
#define TLSREC_APPDATA		23
#define TLSREC_CLOSE_NOTIFY	0

/* Keys at the hand-off.  rx is what the peer sends (a server: the
 * client's application traffic secret), tx what we send; the sequence
 * numbers are the next ones to use (0 right after the handshake). */
struct tlsrec_keys {
	uint16_t	 suite;
	size_t		 secret_len;	/* the suite's hash length */
	uint8_t		 rx_secret[TLSREC_SECRET_MAX];
	uint8_t		 tx_secret[TLSREC_SECRET_MAX];
	uint64_t	 rx_seq, tx_seq;
};

/* What one worker shares among its connections: the read/seal scratch
 * buffer and one AEAD context per direction, re-keyed only when another
 * connection's key was loaded last (doc/design.md: why not one context
 * per connection). */
struct tlsrec_pool;
struct tlsrec;

struct tlsrec_pool	*tlsrec_pool_new(void);
void			 tlsrec_pool_free(struct tlsrec_pool *p);
/* AEAD key loads so far (a context re-keyed for another connection). */
uint64_t		 tlsrec_pool_rekeys(const struct tlsrec_pool *p);

/* Record state from k (copied; the caller wipes its copy).  NULL with
 * errno EINVAL (unknown suite, secret length not the suite's hash) or
 * ENOMEM.  The pool must outlive it. */
struct tlsrec	*tlsrec_new(struct tlsrec_pool *pool,
		    const struct tlsrec_keys *k);
void		 tlsrec_free(struct tlsrec *t);	/* wipes; NULL-safe */

/*
 * Read from fd (non-blocking) and decrypt: up to n plaintext bytes into
 * p.  A count, 0 at EOF (close_notify, or the peer's FIN at a record
 * boundary), -EAGAIN, or -EPROTO / -EMSGSIZE / -EBADMSG / -errno (the
 * connection is dead; an alert was sent when it could be).  Plaintext
 * is never returned before its tag verifies.  A partial record, and
 * plaintext that did not fit, stay buffered in t and are freed when
 * consumed: call again until -EAGAIN.
 */
ssize_t		 tlsrec_read(struct tlsrec *t, int fd, uint8_t *p,
		    size_t n);

/*
 * Encrypt p[0..n) into records of at most TLSREC_MAX_PT bytes and write
 * them to fd: returns the plaintext bytes whose records were written
 * whole, -EAGAIN when none were, or -errno.  A record the socket took
 * only part of is kept (never re-encrypted) and counts once it is out;
 * as with SSL_write, the caller retries with the same bytes first, so n
 * on a retry is at least what is pending.  n == 0 only flushes.
 */
ssize_t		 tlsrec_write(struct tlsrec *t, int fd, const uint8_t *p,
		    size_t n);

/* Protect one record of inner content type `type` with pad zero bytes
 * of padding under the tx key (its sequence number advances) into
 * out[0..cap).  Returns the record's length or -EMSGSIZE / -EOVERFLOW /
 * -EIO.  For tests and fuzzing; tlsrec_write uses it. */
ssize_t		 tlsrec_seal(struct tlsrec *t, uint8_t type,
		    const void *p, size_t n, size_t pad, uint8_t *out,
		    size_t cap);

/*
 * End our side (RFC 8446 6.1): seal alert(warning, close_notify) once
 * and write it to fd, non-blocking, never waiting for the peer's.  Not
 * after an error of this state (a fatal alert may have gone instead),
 * nor while a record the socket took only part of is still held (that
 * is pushed first, if the socket takes it now).  Writes fail with
 * -EPIPE after it.  0 when the alert is out, -EAGAIN when the socket
 * did not take all of it (held: a later call pushes the rest, as
 * tlsrec_write would), -EPIPE once it is out, else the error.  derpd
 * calls it once as it closes (best effort).
 */
int		 tlsrec_close_notify(struct tlsrec *t, int fd);

/* Start a KeyUpdate of our own before the next record (update_requested
 * asks the peer to update too). */
void		 tlsrec_key_update(struct tlsrec *t, bool update_requested);

/* Our own KeyUpdate (update_not_requested) once `records` records went
 * out under one key: 1 .. TLSREC_REKEY_SEQ, which tlsrec_new starts
 * with (tls.key_update_records). */
void		 tlsrec_set_key_update_records(struct tlsrec *t,
		    uint64_t records);

/* One direction's write key and IV from its traffic secret (RFC 8446
 * 7.3), for a record layer elsewhere (kernel TLS): 0, -EINVAL (unknown
 * suite, secret length not the suite's hash) or -EIO.  *key_len is the
 * suite's key length; the caller wipes key. */
int		 tlsrec_traffic_key(struct tlsrec_pool *pool, uint16_t suite,
		    const uint8_t *secret, size_t secret_len,
		    uint8_t key[TLSREC_KEY_MAX], size_t *key_len,
		    uint8_t iv[TLSREC_IV_LEN]);

/* KeyUpdates received and sent, and the bytes buffered for each
 * direction (memory this connection holds beyond the struct). */
uint64_t	 tlsrec_key_updates(const struct tlsrec *t);
uint64_t	 tlsrec_key_updates_sent(const struct tlsrec *t);
void		 tlsrec_held(const struct tlsrec *t, size_t *rx, size_t *tx);
/* Next sequence numbers (tests). */
void		 tlsrec_seqs(const struct tlsrec *t, uint64_t *rx,
		    uint64_t *tx);

#endif

/*
 * randombytes implementation for libsodium: ChaCha20 (IETF, libsodium's
 * crypto_stream_chacha20_ietf) with fast key erasure.  Each draw runs
 * the stream under the current key and a fresh counter nonce, takes the
 * first 32 bytes as the next key and hands out the rest, then wipes what
 * it produced: earlier output cannot be recomputed from the state.  The
 * key comes from getrandom() once per process; a fork handler clears it
 * in the child so two workers never share a stream.  libsodium's default
 * (sysrandom) makes one getrandom() per call: per connection that was a
 * ServerInfo nonce and a keepalive jitter.  OpenSSL's RAND_bytes would
 * do too, but checks getpid() (a system call) on every draw.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>

#include <sodium.h>

#include "common/rand.h"

#define KEY_LEN		crypto_stream_chacha20_ietf_KEYBYTES
#define NONCE_LEN	crypto_stream_chacha20_ietf_NONCEBYTES
#define BLOCK		256	/* one draw of up to BLOCK - KEY_LEN bytes */

static struct {
	bool		seeded;
	uint8_t		key[KEY_LEN];
	uint64_t	ctr;
} rs;

static int
seed(void)
{
	ssize_t	n;
	size_t	got = 0;

	while (got < KEY_LEN) {
		n = getrandom(rs.key + got, KEY_LEN - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		got += (size_t)n;
	}
	rs.ctr = 0;
	rs.seeded = true;
	return 0;
}

static void
next_nonce(uint8_t nonce[NONCE_LEN])
{
	uint64_t	c = rs.ctr++;
	int		i;

	memset(nonce, 0, NONCE_LEN);
	for (i = 0; i < 8; i++)
		nonce[i] = (uint8_t)(c >> (8 * i));
}

static void
rand_buf(void *const p, const size_t n)
{
	uint8_t	nonce[NONCE_LEN], blk[BLOCK];

	if (!rs.seeded && seed() < 0)
		sodium_misuse();	/* aborts, as libsodium's own does */
	next_nonce(nonce);
	if (n <= BLOCK - KEY_LEN) {
		crypto_stream_chacha20_ietf(blk, KEY_LEN + n, nonce, rs.key);
		memcpy(rs.key, blk, KEY_LEN);
		if (n > 0)
			memcpy(p, blk + KEY_LEN, n);
		sodium_memzero(blk, KEY_LEN + n);
		return;
	}
	/* Large: the output under one nonce, the next key under another. */
	crypto_stream_chacha20_ietf(p, n, nonce, rs.key);
	next_nonce(nonce);
	crypto_stream_chacha20_ietf(blk, KEY_LEN, nonce, rs.key);
	memcpy(rs.key, blk, KEY_LEN);
	sodium_memzero(blk, KEY_LEN);
}

static uint32_t
rand_random(void)
{
	uint32_t	v;

	rand_buf(&v, sizeof(v));
	return v;
}

static void
rand_stir(void)
{
	sodium_memzero(rs.key, sizeof(rs.key));
	rs.seeded = false;
}

static int
rand_close(void)
{
	rand_stir();
	return 0;
}

static const char *
rand_name(void)
{
	return "derpd-chacha20";
}

static void
at_fork_child(void)
{
	/* The child must not continue the parent's stream. */
	rand_stir();
}

/* Not const: randombytes_set_implementation() takes a plain pointer. */
static struct randombytes_implementation impl = {
	.implementation_name = rand_name,
	.random = rand_random,
	.stir = rand_stir,
	.uniform = NULL,	/* libsodium's, on top of random() */
	.buf = rand_buf,
	.close = rand_close,
};

int
rand_install(void)
{
	static bool	installed;
	int		rc;

	if (installed && rs.seeded)
		return 0;
	if ((rc = seed()) < 0)
		return rc;
	if (installed)
		return 0;
	if ((rc = pthread_atfork(NULL, NULL, at_fork_child)) != 0)
		return -rc;
	(void)randombytes_set_implementation(&impl);
	installed = true;
	return 0;
}

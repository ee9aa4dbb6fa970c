/*
 * A userspace CSPRNG behind libsodium's randombytes_*(): ChaCha20 keyed
 * from one getrandom() per process (and again in a forked child), so a
 * nonce or a jitter costs no system call.
 */
#ifndef COMMON_RAND_H
#define COMMON_RAND_H

/*
 * Make randombytes_buf(), randombytes_random() and randombytes_uniform()
 * draw from the ChaCha20 generator in this process: seeds it now (one
 * getrandom) and registers a fork handler that reseeds the child before
 * its first draw.  Call once, early, in a single-threaded process (the
 * worker, after fork); 0 or -errno (no kernel entropy: nothing changed).
 */
int	rand_install(void) __attribute__((warn_unused_result));

#endif

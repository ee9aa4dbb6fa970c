/*
 * Kernel TLS (Linux kTLS: TCP_ULP "tls", SOL_TLS) for TLS 1.3
 * connections after the hand-off from OpenSSL: the kernel seals and
 * opens the records, derpd reads and writes plaintext with recvmsg and
 * send.  Keys come from the traffic secrets through tlsrec's KDF.  Knows
 * nothing of the worker: an fd, a pool and keys.
 */
#ifndef WORKER_KTLS_H
#define WORKER_KTLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "worker/tlsrec.h"

/* The suites as bits, for ktls_probe's answer. */
unsigned	ktls_suite_bit(uint16_t suite);

/*
 * Which suites this kernel takes over, as ktls_suite_bit() bits: for
 * each, a loopback TCP pair where the kernel seals and opens under one
 * set of keys and derpd's own record layer (tlsrec, checked against RFC
 * 8448) does the other end, both directions.  0 with why filled when
 * none (a kernel without CONFIG_TLS says so at TCP_ULP).  Needs bind and
 * listen: call it before the sandbox.  Blocks for at most about a
 * second per suite.
 */
unsigned	ktls_probe(struct tlsrec_pool *pool, char *why, size_t len);

/*
 * Install both directions of k on fd (sequence numbers k->rx_seq and
 * k->tx_seq).  0; or -errno with the socket unchanged for its records
 * (the ULP refused, or TLS_TX refused): another record layer may take
 * it; or -EPROTO when the kernel took the transmit keys and refused the
 * receive ones: close the connection.
 */
int		ktls_install(struct tlsrec_pool *pool, int fd,
		    const struct tlsrec_keys *k);

/*
 * Plaintext from a kTLS socket: a count, 0 at EOF (close_notify, or the
 * peer's FIN), -EAGAIN, or -EPROTO for anything but application data
 * (a KeyUpdate included: this kernel interface is not asked to re-key)
 * and for records the kernel refused (bad tag, bad length), or -errno.
 */
ssize_t		ktls_read(int fd, uint8_t *p, size_t n);
/* As send(2): the kernel frames what it takes.  -EAGAIN or -errno. */
ssize_t		ktls_write(int fd, const uint8_t *p, size_t n);
/* A close_notify alert record, best effort, never blocking. */
void		ktls_close_notify(int fd);

/*
 * The struct tls12_crypto_info_* the kernel gets for one direction
 * (secret, next sequence number) into out (at least 64 bytes): its
 * length, or -EINVAL / -EIO.  For ktls_install and tests.
 */
ssize_t		ktls_crypto_info(struct tlsrec_pool *pool, uint16_t suite,
		    const uint8_t *secret, size_t secret_len, uint64_t seq,
		    void *out, size_t cap);

#endif

/*
 * Node keys (X25519 through libsodium) and their text forms: "nodekey:"
 * and "privkey:" + 64 hex digits, the untyped hex form and the debug short
 * form (PROTOCOL.md 1.1); the derper key file (1.3) and the mesh PSK (1.4).
 */
#ifndef DERP_KEY_H
#define DERP_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "derp/derp.h"

#define DERP_KEY_HEX_LEN	64
#define DERP_KEY_TEXT_MAX	(8 + 64 + 1)	/* "privkey:" + hex + NUL */
#define DERP_KEY_SHORT_MAX	(1 + 5 + 1 + 1)	/* "[abcde]" + NUL */

/* Call once per process before any other derp_ crypto call; 0 or -EIO.
 * Also has jansson wipe what it frees (derp_json_wipe_on_free()). */
int	derp_crypto_init(void) MUST_CHECK;

/* 32 random bytes, clamped. */
void	derp_key_generate(uint8_t priv[DERP_KEY_LEN]);
int	derp_key_public(uint8_t pub[DERP_KEY_LEN],
	    const uint8_t priv[DERP_KEY_LEN]) MUST_CHECK;
bool	derp_key_is_zero(const uint8_t k[DERP_KEY_LEN]);
/* Constant-time equality. */
bool	derp_key_equal(const uint8_t a[DERP_KEY_LEN],
	    const uint8_t b[DERP_KEY_LEN]);

/* Parsers: exact prefix, exactly 64 hex digits of either case.
 * 0 or -EINVAL. */
int	derp_key_parse_public(const char *s, size_t len,
	    uint8_t out[DERP_KEY_LEN]) MUST_CHECK;
int	derp_key_parse_private(const char *s, size_t len,
	    uint8_t out[DERP_KEY_LEN]) MUST_CHECK;
int	derp_key_parse_hex(const char *s, size_t len,
	    uint8_t out[DERP_KEY_LEN]) MUST_CHECK;

/* Formatters (lowercase, NUL-terminated). */
void	derp_key_format_public(char out[DERP_KEY_TEXT_MAX],
	    const uint8_t k[DERP_KEY_LEN]);
void	derp_key_format_private(char out[DERP_KEY_TEXT_MAX],
	    const uint8_t k[DERP_KEY_LEN]);
void	derp_key_format_hex(char out[DERP_KEY_HEX_LEN + 1],
	    const uint8_t k[DERP_KEY_LEN]);
/* "[" + first 5 chars of std base64 + "]": the only form fit for logs. */
void	derp_key_format_short(char out[DERP_KEY_SHORT_MAX],
	    const uint8_t k[DERP_KEY_LEN]);

/*
 * derper key file: {"PrivateKey": "privkey:<hex>"}, field name matched
 * case-insensitively, unknown fields ignored.
 */
int	derp_keyfile_parse(const char *json, size_t len,
	    uint8_t priv[DERP_KEY_LEN]) MUST_CHECK;
/* Read path; if absent and create is set, generate a key and write it
 * atomically (temp + rename), mode 0600, creating the parent directory.
 * 0, -ENOENT, -EINVAL (bad contents), or another -errno. */
int	derp_keyfile_load(const char *path, bool create,
	    uint8_t priv[DERP_KEY_LEN]) MUST_CHECK;

/* Mesh PSK: trimmed, exactly 64 hex digits of either case. */
int	derp_psk_parse(const char *s, size_t len,
	    uint8_t psk[DERP_KEY_LEN]) MUST_CHECK;
int	derp_psk_load(const char *path, uint8_t psk[DERP_KEY_LEN]) MUST_CHECK;

/* The permission bits of a secret file among mask (077: group and
 * others, 007: others) that let someone other than its owner at it:
 * 0 when none, or negative errno from stat. */
int	derp_secret_file_exposed(const char *path, unsigned mask) MUST_CHECK;

#endif

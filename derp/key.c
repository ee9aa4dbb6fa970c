/*
 * Node keys and their text forms (PROTOCOL.md 1.1), the derper key file
 * (1.3) and the mesh pre-shared key file (1.4).  X25519 and randomness
 * come from libsodium; JSON from jansson.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "derp/info.h"
#include "derp/key.h"

#define KEYFILE_MAX	65536

int
derp_crypto_init(void)
{
	if (sodium_init() < 0)
		return -EIO;
	derp_json_wipe_on_free();	/* meshKey copies inside jansson */
	return 0;
}

void
derp_key_generate(uint8_t priv[DERP_KEY_LEN])
{
	randombytes_buf(priv, DERP_KEY_LEN);
	priv[0] &= 248;
	priv[31] = (priv[31] & 127) | 64;
}

int
derp_key_public(uint8_t pub[DERP_KEY_LEN], const uint8_t priv[DERP_KEY_LEN])
{
	return crypto_scalarmult_base(pub, priv) == 0 ? 0 : -EINVAL;
}

bool
derp_key_is_zero(const uint8_t k[DERP_KEY_LEN])
{
	return sodium_is_zero(k, DERP_KEY_LEN) == 1;
}

bool
derp_key_equal(const uint8_t a[DERP_KEY_LEN], const uint8_t b[DERP_KEY_LEN])
{
	return sodium_memcmp(a, b, DERP_KEY_LEN) == 0;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
derp_key_parse_hex(const char *s, size_t len, uint8_t out[DERP_KEY_LEN])
{
	size_t	i;
	int	hi, lo;

	if (len != DERP_KEY_HEX_LEN)
		return -EINVAL;
	for (i = 0; i < DERP_KEY_LEN; i++) {
		if ((hi = hexval(s[2 * i])) < 0 ||
		    (lo = hexval(s[2 * i + 1])) < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static int
parse_prefixed(const char *prefix, const char *s, size_t len,
    uint8_t out[DERP_KEY_LEN])
{
	size_t	n = strlen(prefix);

	if (len < n || memcmp(s, prefix, n) != 0)
		return -EINVAL;
	return derp_key_parse_hex(s + n, len - n, out);
}

int
derp_key_parse_public(const char *s, size_t len, uint8_t out[DERP_KEY_LEN])
{
	return parse_prefixed("nodekey:", s, len, out);
}

int
derp_key_parse_private(const char *s, size_t len, uint8_t out[DERP_KEY_LEN])
{
	return parse_prefixed("privkey:", s, len, out);
}

void
derp_key_format_hex(char out[DERP_KEY_HEX_LEN + 1],
    const uint8_t k[DERP_KEY_LEN])
{
	static const char	digits[] = "0123456789abcdef";
	size_t			i;

	for (i = 0; i < DERP_KEY_LEN; i++) {
		out[2 * i] = digits[k[i] >> 4];
		out[2 * i + 1] = digits[k[i] & 15];
	}
	out[DERP_KEY_HEX_LEN] = '\0';
}

void
derp_key_format_public(char out[DERP_KEY_TEXT_MAX],
    const uint8_t k[DERP_KEY_LEN])
{
	memcpy(out, "nodekey:", 8);
	derp_key_format_hex(out + 8, k);
}

void
derp_key_format_private(char out[DERP_KEY_TEXT_MAX],
    const uint8_t k[DERP_KEY_LEN])
{
	memcpy(out, "privkey:", 8);
	derp_key_format_hex(out + 8, k);
}

void
derp_key_format_short(char out[DERP_KEY_SHORT_MAX],
    const uint8_t k[DERP_KEY_LEN])
{
	char	b64[sodium_base64_ENCODED_LEN(DERP_KEY_LEN,
		    sodium_base64_VARIANT_ORIGINAL)];

	sodium_bin2base64(b64, sizeof(b64), k, DERP_KEY_LEN,
	    sodium_base64_VARIANT_ORIGINAL);
	out[0] = '[';
	memcpy(out + 1, b64, 5);
	out[6] = ']';
	out[7] = '\0';
}

int
derp_keyfile_parse(const char *json, size_t len, uint8_t priv[DERP_KEY_LEN])
{
	json_t		*root, *v;
	const char	*k, *s = NULL;
	int		 rc = -EINVAL;

	if ((root = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL)) ==
	    NULL)
		return -EINVAL;
	if (json_is_object(root)) {
		json_object_foreach(root, k, v) {
			if (strcasecmp(k, "PrivateKey") != 0)
				continue;
			if (!json_is_string(v))
				goto out;
			s = json_string_value(v);
			break;
		}
	}
	if (s != NULL)
		rc = derp_key_parse_private(s, strlen(s), priv);
out:
	json_decref(root);
	return rc;
}

static ssize_t
read_small_file(const char *path, char *buf, size_t cap)
{
	int	fd;
	ssize_t	n, total = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -errno;
	while ((size_t)total < cap &&
	    (n = read(fd, buf + total, cap - (size_t)total)) > 0)
		total += n;
	close(fd);
	if ((size_t)total >= cap)
		return -EFBIG;
	return total;
}

static int
write_keyfile(const char *path, const uint8_t priv[DERP_KEY_LEN])
{
	char	 dir[PATH_MAX], tmp[PATH_MAX + 16], text[128], *slash;
	int	 fd, n, rc = 0;

	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) == -1 && errno != EEXIST)
			return -errno;
	}
	n = snprintf(text, sizeof(text), "{\n\t\"PrivateKey\": \"privkey:");
	derp_key_format_hex(text + n, priv);
	n += DERP_KEY_HEX_LEN;
	n += snprintf(text + n, sizeof(text) - (size_t)n, "\"\n}");
	snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		sodium_memzero(text, sizeof(text));
		return -errno;
	}
	if (fchmod(fd, 0600) == -1 || write(fd, text, (size_t)n) != n ||
	    fsync(fd) == -1)
		rc = -errno;
	sodium_memzero(text, sizeof(text));
	if (close(fd) == -1 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) == -1)
		rc = -errno;
	if (rc < 0)
		unlink(tmp);
	return rc;
}

int
derp_keyfile_load(const char *path, bool create, uint8_t priv[DERP_KEY_LEN])
{
	char	buf[KEYFILE_MAX];
	ssize_t	n = read_small_file(path, buf, sizeof(buf));
	int	rc;

	if (n == -ENOENT && create) {
		derp_key_generate(priv);
		return write_keyfile(path, priv);
	}
	if (n < 0)
		return (int)n;
	rc = derp_keyfile_parse(buf, (size_t)n, priv);
	sodium_memzero(buf, sizeof(buf));
	return rc;
}

int
derp_psk_parse(const char *s, size_t len, uint8_t psk[DERP_KEY_LEN])
{
	while (len > 0 && (*s == ' ' || *s == '\t' || *s == '\n' ||
	    *s == '\r')) {
		s++;
		len--;
	}
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' ||
	    s[len - 1] == '\n' || s[len - 1] == '\r'))
		len--;
	return derp_key_parse_hex(s, len, psk);
}

int
derp_psk_load(const char *path, uint8_t psk[DERP_KEY_LEN])
{
	char	buf[256];
	ssize_t	n = read_small_file(path, buf, sizeof(buf));
	int	rc;

	if (n < 0)
		return n == -EFBIG ? -EINVAL : (int)n;
	rc = derp_psk_parse(buf, (size_t)n, psk);
	sodium_memzero(buf, sizeof(buf));
	return rc;
}

int
derp_secret_file_exposed(const char *path, unsigned mask)
{
	struct stat	st;

	if (stat(path, &st) == -1)
		return -errno;
	return (int)(st.st_mode & mask & 0777);
}

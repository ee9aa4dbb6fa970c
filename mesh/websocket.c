/*
 * RFC 6455 handshake helpers: Sec-WebSocket-Key validation and the accept
 * value (SHA-1 and base64 from OpenSSL), client key generation, and the
 * subprotocol token match.  No I/O, no allocation.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "mesh/websocket.h"

static const char WS_GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static size_t
trimmed_len(const char *s)
{
	size_t	n = strlen(s);

	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	return n;
}

int
websocket_accept_key(const char *key, char out[WEBSOCKET_ACCEPT_LEN + 1])
{
	unsigned char	buf[WEBSOCKET_KEY_LEN + sizeof(WS_GUID)];
	unsigned char	md[EVP_MAX_MD_SIZE], dec[WEBSOCKET_KEY_LEN];
	unsigned int	mdlen = 0;
	size_t		n = trimmed_len(key);

	/* 16 bytes encode to 22 characters and "==". */
	if (n != WEBSOCKET_KEY_LEN || key[22] != '=' || key[23] != '=' ||
	    EVP_DecodeBlock(dec, (const unsigned char *)key, (int)n) != 18)
		return -EINVAL;
	memcpy(buf, key, n);
	memcpy(buf + n, WS_GUID, sizeof(WS_GUID) - 1);
	if (EVP_Digest(buf, n + sizeof(WS_GUID) - 1, md, &mdlen, EVP_sha1(),
	    NULL) != 1 || mdlen != 20)
		return -EINVAL;
	if (EVP_EncodeBlock((unsigned char *)out, md, 20) !=
	    WEBSOCKET_ACCEPT_LEN)
		return -EINVAL;
	return 0;
}

void
websocket_new_key(char out[WEBSOCKET_KEY_LEN + 1])
{
	unsigned char	raw[16];

	randombytes_buf(raw, sizeof(raw));
	(void)EVP_EncodeBlock((unsigned char *)out, raw, sizeof(raw));
}

bool
websocket_has_token(const char *list, const char *tok)
{
	size_t		 tl = strlen(tok), n;
	const char	*p = list, *e;

	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if ((e = strchr(p, ',')) == NULL)
			e = p + strlen(p);
		n = (size_t)(e - p);
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == tl && n > 0 && strncasecmp(p, tok, n) == 0)
			return true;
		p = e;
	}
	return false;
}

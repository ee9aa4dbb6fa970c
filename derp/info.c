/*
 * Handshake payloads: NaCl crypto_box (libsodium, byte-identical to Go's
 * nacl/box), ClientInfo / ServerInfo JSON with Go's case-insensitive
 * field matching (jansson), and the sealed frames built from them
 * (PROTOCOL.md 1.2, 4.3, 4.4).
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <sodium.h>

#include "derp/frame.h"
#include "derp/info.h"
#include "derp/key.h"

#define JSON_MAX	(DERP_MAX_CLIENT_INFO)

int
derp_box_key(struct derp_box *b, const uint8_t peer_pub[DERP_KEY_LEN],
    const uint8_t my_priv[DERP_KEY_LEN])
{
	if (derp_key_is_zero(peer_pub) ||
	    crypto_box_beforenm(b->k, peer_pub, my_priv) != 0) {
		derp_box_wipe(b);
		return -EINVAL;	/* a degenerate key, as crypto_box refuses */
	}
	return 0;
}

void
derp_box_wipe(struct derp_box *b)
{
	sodium_memzero(b->k, sizeof(b->k));
}

ssize_t
derp_box_seal_with(uint8_t *out, size_t cap, const uint8_t *msg, size_t len,
    const uint8_t nonce[DERP_NONCE_LEN], const struct derp_box *b)
{
	if (cap < DERP_NONCE_LEN + DERP_BOX_OVERHEAD ||
	    cap - DERP_NONCE_LEN - DERP_BOX_OVERHEAD < len)
		return -ENOBUFS;
	memcpy(out, nonce, DERP_NONCE_LEN);
	if (crypto_box_easy_afternm(out + DERP_NONCE_LEN, msg, len, nonce,
	    b->k) != 0)
		return -EINVAL;
	return (ssize_t)(DERP_NONCE_LEN + DERP_BOX_OVERHEAD + len);
}

ssize_t
derp_box_open_with(uint8_t *out, size_t cap, const uint8_t *in, size_t len,
    const struct derp_box *b)
{
	size_t	plen;

	if (len < DERP_NONCE_LEN + DERP_BOX_OVERHEAD)
		return -EPROTO;
	plen = len - DERP_NONCE_LEN - DERP_BOX_OVERHEAD;
	if (plen > cap)
		return -ENOBUFS;
	if (crypto_box_open_easy_afternm(out, in + DERP_NONCE_LEN,
	    len - DERP_NONCE_LEN, in, b->k) != 0)
		return -EPROTO;
	return (ssize_t)plen;
}

static json_free_t	json_next_free;

static void
json_wipe_free(void *p)
{
	if (p == NULL)
		return;
	sodium_memzero(p, malloc_usable_size(p));
	json_next_free(p);
}

void
derp_json_wipe_on_free(void)
{
	json_malloc_t	m;
	json_free_t	f;

	json_get_alloc_funcs(&m, &f);
	if (f == json_wipe_free)
		return;
	json_next_free = f;
	json_set_alloc_funcs(m, json_wipe_free);
}

ssize_t
derp_box_seal_nonce(uint8_t *out, size_t cap, const uint8_t *msg, size_t len,
    const uint8_t nonce[DERP_NONCE_LEN], const uint8_t peer_pub[DERP_KEY_LEN],
    const uint8_t my_priv[DERP_KEY_LEN])
{
	struct derp_box	bx;
	ssize_t		r;

	if (cap < DERP_NONCE_LEN + DERP_BOX_OVERHEAD ||
	    cap - DERP_NONCE_LEN - DERP_BOX_OVERHEAD < len)
		return -ENOBUFS;
	if (derp_box_key(&bx, peer_pub, my_priv) < 0)
		return -EINVAL;
	r = derp_box_seal_with(out, cap, msg, len, nonce, &bx);
	derp_box_wipe(&bx);
	return r;
}

ssize_t
derp_box_seal(uint8_t *out, size_t cap, const uint8_t *msg, size_t len,
    const uint8_t peer_pub[DERP_KEY_LEN], const uint8_t my_priv[DERP_KEY_LEN])
{
	uint8_t	nonce[DERP_NONCE_LEN];

	randombytes_buf(nonce, sizeof(nonce));
	return derp_box_seal_nonce(out, cap, msg, len, nonce, peer_pub,
	    my_priv);
}

ssize_t
derp_box_open(uint8_t *out, size_t cap, const uint8_t *in, size_t len,
    const uint8_t peer_pub[DERP_KEY_LEN], const uint8_t my_priv[DERP_KEY_LEN])
{
	struct derp_box	bx;
	ssize_t		r;

	if (len < DERP_NONCE_LEN + DERP_BOX_OVERHEAD)
		return -EPROTO;
	if (len - DERP_NONCE_LEN - DERP_BOX_OVERHEAD > cap)
		return -ENOBUFS;
	if (derp_box_key(&bx, peer_pub, my_priv) < 0)
		return -EPROTO;
	r = derp_box_open_with(out, cap, in, len, &bx);
	derp_box_wipe(&bx);
	return r;
}

/* Go's encoding/json decodes a number into an int only when integral. */
static int
json_int(json_t *v, int *out)
{
	double	d;

	if (json_is_integer(v)) {
		json_int_t	i = json_integer_value(v);

		if (i < -2147483647 || i > 2147483647)
			return -EPROTO;
		*out = (int)i;
		return 0;
	}
	if (!json_is_real(v))
		return -EPROTO;
	d = json_real_value(v);
	/* Range first: converting an out-of-range double to int is
	 * undefined (fuzz_client_info, {"version":7.7e101}). */
	if (!(d >= -2147483647.0 && d <= 2147483647.0) || d != (double)(int)d)
		return -EPROTO;
	*out = (int)d;
	return 0;
}

static int
json_bool(json_t *v, bool *out)
{
	if (!json_is_boolean(v))
		return -EPROTO;
	*out = json_is_true(v);
	return 0;
}

static int
json_u64(json_t *v, uint64_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -EPROTO;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

int
derp_client_info_parse(const char *json, size_t len,
    struct derp_client_info *ci)
{
	json_t		*root, *v;
	const char	*k, *s;
	int		 rc = 0;

	memset(ci, 0, sizeof(*ci));
	if (len > JSON_MAX || (root = json_loadb(json, len, JSON_DECODE_ANY,
	    NULL)) == NULL)
		return -EPROTO;
	if (json_is_null(root)) {
		json_decref(root);
		return 0;	/* Go decodes "null" into a zero value */
	}
	if (!json_is_object(root)) {
		json_decref(root);
		return -EPROTO;
	}
	json_object_foreach(root, k, v) {
		if (json_is_null(v))
			continue;	/* null leaves the field unset */
		if (strcasecmp(k, "meshKey") == 0) {
			if (!json_is_string(v) || (s = json_string_value(v),
			    derp_key_parse_hex(s, json_string_length(v),
			    ci->mesh_key) < 0)) {
				rc = -EPROTO;
				break;
			}
			ci->has_mesh_key = !derp_key_is_zero(ci->mesh_key);
		} else if (strcasecmp(k, "version") == 0) {
			rc = json_int(v, &ci->version);
		} else if (strcasecmp(k, "CanAckPings") == 0) {
			rc = json_bool(v, &ci->can_ack_pings);
		} else if (strcasecmp(k, "IsProber") == 0) {
			rc = json_bool(v, &ci->is_prober);
		} else if (strcasecmp(k, "AppName") == 0) {
			if (!json_is_string(v))
				rc = -EPROTO;
			else
				snprintf(ci->app_name, sizeof(ci->app_name),
				    "%s", json_string_value(v));
		}
		if (rc < 0)
			break;
	}
	json_decref(root);
	if (rc < 0)
		sodium_memzero(ci->mesh_key, sizeof(ci->mesh_key));
	return rc;
}

ssize_t
derp_client_info_format(char *out, size_t cap,
    const struct derp_client_info *ci)
{
	char	mk[DERP_KEY_HEX_LEN + 1] = "";
	size_t	n = 0;
	int	r;

#define PUT(...) do {							\
		r = snprintf(out + n, cap - n, __VA_ARGS__);		\
		if (r < 0 || (size_t)r >= cap - n)			\
			return -ENOBUFS;				\
		n += (size_t)r;						\
	} while (0)
	if (cap == 0)
		return -ENOBUFS;
	PUT("{");
	if (ci->has_mesh_key) {
		derp_key_format_hex(mk, ci->mesh_key);
		PUT("\"meshKey\":\"%s\",", mk);
		sodium_memzero(mk, sizeof(mk));
	}
	if (ci->version != 0)
		PUT("\"version\":%d,", ci->version);
	PUT("\"CanAckPings\":%s", ci->can_ack_pings ? "true" : "false");
	if (ci->is_prober)
		PUT(",\"IsProber\":true");
	if (ci->app_name[0] != '\0') {
		json_t	*s = json_string(ci->app_name);
		char	*enc = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;

		json_decref(s);
		if (enc == NULL)
			return -EINVAL;
		r = snprintf(out + n, cap - n, ",\"AppName\":%s", enc);
		free(enc);
		if (r < 0 || (size_t)r >= cap - n)
			return -ENOBUFS;
		n += (size_t)r;
	}
	PUT("}");
#undef PUT
	return (ssize_t)n;
}

int
derp_server_info_parse(const char *json, size_t len,
    struct derp_server_info *si)
{
	json_t		*root, *v;
	const char	*k;
	int		 rc = 0;

	memset(si, 0, sizeof(*si));
	if ((root = json_loadb(json, len, JSON_DECODE_ANY, NULL)) == NULL)
		return -EPROTO;
	if (!json_is_object(root)) {
		rc = json_is_null(root) ? 0 : -EPROTO;
		json_decref(root);
		return rc;
	}
	json_object_foreach(root, k, v) {
		if (json_is_null(v))
			continue;
		if (strcasecmp(k, "version") == 0)
			rc = json_int(v, &si->version);
		else if (strcasecmp(k, "TokenBucketBytesPerSecond") == 0)
			rc = json_u64(v, &si->token_bucket_bytes_per_second);
		else if (strcasecmp(k, "TokenBucketBytesBurst") == 0)
			rc = json_u64(v, &si->token_bucket_bytes_burst);
		if (rc < 0)
			break;
	}
	json_decref(root);
	return rc;
}

ssize_t
derp_server_info_format(char *out, size_t cap,
    const struct derp_server_info *si)
{
	int	r;

	r = snprintf(out, cap, "{\"version\":%d", si->version);
	if (r < 0 || (size_t)r >= cap)
		return -ENOBUFS;
	if (si->token_bucket_bytes_per_second != 0)
		r += snprintf(out + r, cap - (size_t)r,
		    ",\"TokenBucketBytesPerSecond\":%llu",
		    (unsigned long long)si->token_bucket_bytes_per_second);
	if ((size_t)r < cap && si->token_bucket_bytes_burst != 0)
		r += snprintf(out + r, cap - (size_t)r,
		    ",\"TokenBucketBytesBurst\":%llu",
		    (unsigned long long)si->token_bucket_bytes_burst);
	if ((size_t)r >= cap)
		return -ENOBUFS;
	r += snprintf(out + r, cap - (size_t)r, "}");
	if ((size_t)r >= cap)
		return -ENOBUFS;
	return r;
}

ssize_t
derp_client_info_frame(uint8_t *out, size_t cap,
    const struct derp_client_info *ci, const uint8_t client_priv[DERP_KEY_LEN],
    const uint8_t server_pub[DERP_KEY_LEN])
{
	struct derp_client_info	 c = *ci;
	char			 json[512];
	ssize_t			 jl, bl;
	uint8_t			 pub[DERP_KEY_LEN];

	if (c.version == 0)
		c.version = DERP_PROTO_VERSION;
	jl = derp_client_info_format(json, sizeof(json), &c);
	sodium_memzero(c.mesh_key, sizeof(c.mesh_key));
	if (jl < 0)
		return jl;
	if (cap < DERP_FRAME_HDR_LEN + DERP_KEY_LEN ||
	    derp_key_public(pub, client_priv) < 0) {
		sodium_memzero(json, sizeof(json));
		return -ENOBUFS;
	}
	memcpy(out + DERP_FRAME_HDR_LEN, pub, DERP_KEY_LEN);
	bl = derp_box_seal(out + DERP_FRAME_HDR_LEN + DERP_KEY_LEN,
	    cap - DERP_FRAME_HDR_LEN - DERP_KEY_LEN, (const uint8_t *)json,
	    (size_t)jl, server_pub, client_priv);
	sodium_memzero(json, sizeof(json));
	if (bl < 0)
		return bl;
	derp_frame_header(out, DERP_FRAME_CLIENT_INFO,
	    (uint32_t)(DERP_KEY_LEN + (size_t)bl));
	return (ssize_t)(DERP_FRAME_HDR_LEN + DERP_KEY_LEN + (size_t)bl);
}

int
derp_client_info_open(const uint8_t *payload, size_t len,
    const uint8_t server_priv[DERP_KEY_LEN], uint8_t client_pub[DERP_KEY_LEN],
    struct derp_box *box, struct derp_client_info *ci)
{
	static __thread uint8_t	 plain[DERP_MAX_CLIENT_INFO];
	ssize_t			 n;
	int			 rc;

	if (len < DERP_MIN_CLIENT_INFO || len > DERP_MAX_CLIENT_INFO)
		return -EPROTO;
	memcpy(client_pub, payload, DERP_KEY_LEN);
	if (derp_key_is_zero(client_pub))
		return -EPROTO;
	if (derp_box_key(box, client_pub, server_priv) < 0)
		return -EPROTO;
	n = derp_box_open_with(plain, sizeof(plain), payload + DERP_KEY_LEN,
	    len - DERP_KEY_LEN, box);
	if (n < 0) {
		derp_box_wipe(box);
		return -EPROTO;
	}
	rc = derp_client_info_parse((const char *)plain, (size_t)n, ci);
	sodium_memzero(plain, (size_t)n);
	if (rc < 0)
		derp_box_wipe(box);
	return rc;
}

ssize_t
derp_server_info_frame(uint8_t *out, size_t cap,
    const struct derp_server_info *si, const struct derp_box *box)
{
	char	json[256];
	uint8_t	nonce[DERP_NONCE_LEN];
	ssize_t	jl, bl;

	if ((jl = derp_server_info_format(json, sizeof(json), si)) < 0)
		return jl;
	if (cap < DERP_FRAME_HDR_LEN)
		return -ENOBUFS;
	randombytes_buf(nonce, sizeof(nonce));
	bl = derp_box_seal_with(out + DERP_FRAME_HDR_LEN,
	    cap - DERP_FRAME_HDR_LEN, (const uint8_t *)json, (size_t)jl, nonce,
	    box);
	if (bl < 0)
		return bl;
	derp_frame_header(out, DERP_FRAME_SERVER_INFO, (uint32_t)bl);
	return (ssize_t)(DERP_FRAME_HDR_LEN + (size_t)bl);
}

int
derp_server_info_open(const uint8_t *payload, size_t len,
    const uint8_t client_priv[DERP_KEY_LEN],
    const uint8_t server_pub[DERP_KEY_LEN], struct derp_server_info *si)
{
	uint8_t	plain[4096];
	ssize_t	n;

	if (len > DERP_MAX_CLIENT_FRAME)
		return -EPROTO;
	n = derp_box_open(plain, sizeof(plain), payload, len, server_pub,
	    client_priv);
	if (n < 0)
		return -EPROTO;
	return derp_server_info_parse((const char *)plain, (size_t)n, si);
}

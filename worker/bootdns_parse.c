/*
 * The pure parts of /bootstrap-dns: the parser of DNS replies to the
 * rollout TXT query (untrusted bytes, through libresolv's ns_initparse /
 * ns_parserr, which bound every read) and the per-client rollout draw.
 */
#include <arpa/nameser.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "worker/bootdns.h"

static bool
name_eq(const char *a, const char *b)
{
	size_t	la = strlen(a), lb = strlen(b);

	if (la > 0 && a[la - 1] == '.')
		la--;
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0;
}

/* One TXT record: its character-strings joined, then a number 0..100 as
 * Go's strconv.Atoi would read it (digits only here). */
static void
txt_value(const uint8_t *rd, size_t rdlen, int *pct)
{
	char	s[256];
	size_t	off = 0, sl = 0, l, i;
	long	v;

	while (off < rdlen) {
		l = rd[off++];
		if (l > rdlen - off)
			return;			/* malformed: ignore */
		if (sl + l >= sizeof(s))
			return;	/* too long to be a number */
		memcpy(s + sl, rd + off, l);
		sl += l;
		off += l;
	}
	if (sl == 0 || sl > 8)
		return;
	for (i = 0; i < sl; i++)
		if (!isdigit((unsigned char)s[i]))
			return;
	s[sl] = '\0';
	v = strtol(s, NULL, 10);
	if (v <= 100)
		*pct = (int)v;
}

int
bootdns_parse_txt(const uint8_t *msg, size_t len, uint16_t id,
    const char *qname, int *pct)
{
	ns_msg	h;
	ns_rr	rr;
	int	i, n, v = 0;

	if (len > NS_MAXMSG || ns_initparse(msg, (int)len, &h) < 0)
		return -EPROTO;
	if (ns_msg_id(h) != id || !ns_msg_getflag(h, ns_f_qr) ||
	    ns_msg_getflag(h, ns_f_opcode) != ns_o_query ||
	    ns_msg_count(h, ns_s_qd) != 1)
		return -EPROTO;
	if (ns_parserr(&h, ns_s_qd, 0, &rr) < 0 ||
	    !name_eq(ns_rr_name(rr), qname) || ns_rr_type(rr) != ns_t_txt ||
	    ns_rr_class(rr) != ns_c_in)
		return -EPROTO;
	if (ns_msg_getflag(h, ns_f_rcode) == ns_r_nxdomain) {
		*pct = 0;
		return 0;
	}
	if (ns_msg_getflag(h, ns_f_rcode) != ns_r_noerror ||
	    ns_msg_getflag(h, ns_f_tc))
		return -EAGAIN;
	n = ns_msg_count(h, ns_s_an);
	for (i = 0; i < n; i++) {
		if (ns_parserr(&h, ns_s_an, i, &rr) < 0)
			return -EPROTO;
		/* The last valid value wins, as in Go; CNAMEs are skipped. */
		if (ns_rr_type(rr) == ns_t_txt && ns_rr_class(rr) == ns_c_in)
			txt_value(ns_rr_rdata(rr), ns_rr_rdlen(rr), &v);
	}
	*pct = v;
	return 0;
}

bool
bootdns_rollout(const uint8_t ip16[16], int pct)
{
	/* A fixed key: the same client gets the same draw from every
	 * worker and after a restart. */
	static const uint8_t	key[crypto_shorthash_KEYBYTES] =
				    "derpd-rollout-k";
	uint8_t			h[crypto_shorthash_BYTES];
	uint64_t		v = 0;
	int			i;

	if (pct <= 0)
		return false;
	if (pct >= 100)
		return true;
	crypto_shorthash(h, ip16, 16, key);
	for (i = 0; i < 8; i++)
		v = v << 8 | h[i];
	/* 53 random bits as a double in [0, 1). */
	return (double)pct / 100.0 > (double)(v >> 11) / 9007199254740992.0;
}

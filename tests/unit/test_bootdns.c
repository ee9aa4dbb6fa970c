/*
 * Unit tests for worker/bootdns.c's untrusted-input parser (DNS replies
 * to the rollout TXT query) and the deterministic rollout draw.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "worker/bootdns.h"

#define ID	0x4d2a
#define QNAME	"_rollout.example.com"

struct msg {
	uint8_t	b[1024];
	size_t	n;
};

static void
put8(struct msg *m, unsigned v)
{
	m->b[m->n++] = (uint8_t)v;
}

static void
put16(struct msg *m, unsigned v)
{
	put8(m, v >> 8);
	put8(m, v & 0xff);
}

static void
put_name(struct msg *m, const char *name)
{
	const char	*p = name, *dot;

	while (*p != '\0') {
		dot = strchr(p, '.');
		if (dot == NULL)
			dot = p + strlen(p);
		put8(m, (unsigned)(dot - p));
		memcpy(m->b + m->n, p, (size_t)(dot - p));
		m->n += (size_t)(dot - p);
		p = *dot != '\0' ? dot + 1 : dot;
	}
	put8(m, 0);
}

/* Header and question; flags as on the wire (QR, opcode, TC, rcode). */
static void
begin(struct msg *m, unsigned id, unsigned flags, unsigned an,
    const char *qname, unsigned qtype)
{
	m->n = 0;
	put16(m, id);
	put16(m, flags);
	put16(m, 1);
	put16(m, an);
	put16(m, 0);
	put16(m, 0);
	put_name(m, qname);
	put16(m, qtype);
	put16(m, 1);
}

/* An answer owned by the question name (pointer 0xc00c) of type with
 * rdata made of the given character-strings. */
static void
answer(struct msg *m, unsigned type, int nstr, const char *const *strs)
{
	size_t	rdlen_at;
	int	i;

	put16(m, 0xc00c);
	put16(m, type);
	put16(m, 1);
	put16(m, 0);
	put16(m, 60);
	rdlen_at = m->n;
	put16(m, 0);
	for (i = 0; i < nstr; i++) {
		put8(m, (unsigned)strlen(strs[i]));
		memcpy(m->b + m->n, strs[i], strlen(strs[i]));
		m->n += strlen(strs[i]);
	}
	m->b[rdlen_at] = (uint8_t)((m->n - rdlen_at - 2) >> 8);
	m->b[rdlen_at + 1] = (uint8_t)(m->n - rdlen_at - 2);
}

static int
parse(const struct msg *m, int *pct)
{
	*pct = -1;
	return bootdns_parse_txt(m->b, m->n, ID, QNAME, pct);
}

static void
one(struct msg *m, const char *value)
{
	begin(m, ID, 0x8180, 1, QNAME, 16);
	answer(m, 16, 1, &value);
}

static void
test_bootdns_txt_values(void **state)
{
	struct msg	 m;
	int		 pct;
	const char	*split[] = { "5", "0" };
	const char	*two[] = { "7" }, *hundred[] = { "100" };

	(void)state;
	one(&m, "50");
	assert_int_equal(parse(&m, &pct), 0);
	assert_int_equal(pct, 50);
	one(&m, "0");
	assert_int_equal(parse(&m, &pct), 0);
	assert_int_equal(pct, 0);
	one(&m, "100");
	assert_int_equal(parse(&m, &pct), 0);
	assert_int_equal(pct, 100);
	/* Not a number in 0..100: 0 %. */
	one(&m, "101");
	assert_int_equal(parse(&m, &pct), 0);
	assert_int_equal(pct, 0);
	one(&m, "fifty");
	assert_int_equal(parse(&m, &pct), 0);
	assert_int_equal(pct, 0);
	one(&m, "");
	assert_int_equal(parse(&m, &pct), 0);
	assert_int_equal(pct, 0);
	one(&m, "-5");
	assert_int_equal(parse(&m, &pct), 0);
	assert_int_equal(pct, 0);
	/* Character-strings of one record are joined. */
	begin(&m, ID, 0x8180, 1, QNAME, 16);
	answer(&m, 16, 2, split);
	assert_int_equal(parse(&m, &pct), 0);
	assert_int_equal(pct, 50);
	/* Several records: the last valid one wins; other types skipped. */
	begin(&m, ID, 0x8180, 3, QNAME, 16);
	answer(&m, 16, 1, two);
	answer(&m, 16, 1, hundred);
	answer(&m, 5, 1, two);
	assert_int_equal(parse(&m, &pct), 0);
	assert_int_equal(pct, 100);
	/* The question name matches case-insensitively. */
	begin(&m, ID, 0x8180, 1, "_ROLLOUT.Example.COM", 16);
	answer(&m, 16, 1, two);
	assert_int_equal(parse(&m, &pct), 0);
	assert_int_equal(pct, 7);
}

static void
test_bootdns_txt_rcodes(void **state)
{
	struct msg	m;
	int		pct;

	(void)state;
	begin(&m, ID, 0x8183, 0, QNAME, 16);		/* NXDOMAIN */
	assert_int_equal(parse(&m, &pct), 0);
	assert_int_equal(pct, 0);
	begin(&m, ID, 0x8180, 0, QNAME, 16);		/* no records */
	assert_int_equal(parse(&m, &pct), 0);
	assert_int_equal(pct, 0);
	begin(&m, ID, 0x8182, 0, QNAME, 16);		/* SERVFAIL */
	assert_int_equal(parse(&m, &pct), -EAGAIN);
	begin(&m, ID, 0x8185, 0, QNAME, 16);		/* REFUSED */
	assert_int_equal(parse(&m, &pct), -EAGAIN);
	one(&m, "50");
	m.b[2] |= 0x02;					/* TC */
	assert_int_equal(parse(&m, &pct), -EAGAIN);
}

/* Replies that are not answers to our query are ignored (-EPROTO). */
static void
test_bootdns_txt_not_ours(void **state)
{
	struct msg	m;
	int		pct;

	(void)state;
	begin(&m, ID + 1, 0x8180, 0, QNAME, 16);	/* other id */
	assert_int_equal(parse(&m, &pct), -EPROTO);
	begin(&m, ID, 0x0100, 0, QNAME, 16);		/* a query */
	assert_int_equal(parse(&m, &pct), -EPROTO);
	begin(&m, ID, 0x8180, 0, "other.example.com", 16);
	assert_int_equal(parse(&m, &pct), -EPROTO);
	begin(&m, ID, 0x8180, 0, QNAME, 1);		/* qtype A */
	assert_int_equal(parse(&m, &pct), -EPROTO);
	begin(&m, ID, 0xa980, 0, QNAME, 16);		/* opcode 5 */
	assert_int_equal(parse(&m, &pct), -EPROTO);
	assert_int_equal(pct, -1);
}

static void
test_bootdns_txt_malformed(void **state)
{
	struct msg	m, full;
	size_t		cut, at;
	int		pct;

	(void)state;
	one(&full, "50");
	/* Every truncation of a valid reply is refused, never read past. */
	for (cut = 0; cut < full.n; cut++) {
		m = full;
		m.n = cut;
		assert_int_equal(parse(&m, &pct), -EPROTO);
	}
	/* A character-string longer than its rdata: no value (0 %). */
	m = full;
	m.b[m.n - 3] = 200;
	assert_int_equal(parse(&m, &pct), 0);
	assert_int_equal(pct, 0);
	/* rdlength past the end of the message. */
	m = full;
	m.b[m.n - 4] = 0x40;
	assert_int_equal(parse(&m, &pct), -EPROTO);
	/* A compression pointer to itself in the answer's owner name. */
	m = full;
	at = 12 + strlen(QNAME) + 2 + 4;	/* header, question */
	m.b[at] = (uint8_t)(0xc0 | (at >> 8));
	m.b[at + 1] = (uint8_t)at;
	assert_int_equal(parse(&m, &pct), -EPROTO);
	/* Counts that promise more than there is. */
	m = full;
	m.b[7] = 5;
	assert_int_equal(parse(&m, &pct), -EPROTO);
	assert_int_equal(bootdns_parse_txt(NULL, 0, ID, QNAME, &pct), -EPROTO);
}

static void
test_bootdns_rollout_deterministic(void **state)
{
	uint8_t	ip[16] = { [10] = 0xff, [11] = 0xff, 192, 0, 2, 1 };
	int	i, in = 0;
	bool	first;

	(void)state;
	assert_int_equal(sodium_init() >= 0, 1);
	assert_false(bootdns_rollout(ip, 0));
	assert_true(bootdns_rollout(ip, 100));
	first = bootdns_rollout(ip, 50);
	for (i = 0; i < 10; i++)
		assert_true(bootdns_rollout(ip, 50) == first);
	/* Monotonic in the percentage for one client. */
	for (i = 1; i < 100; i++)
		assert_true(!bootdns_rollout(ip, i) ||
		    bootdns_rollout(ip, i + 1));
	/* About half of many clients fall inside 50 %. */
	for (i = 0; i < 2000; i++) {
		ip[14] = (uint8_t)(i >> 8);
		ip[15] = (uint8_t)i;
		in += bootdns_rollout(ip, 50);
	}
	assert_in_range(in, 850, 1150);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bootdns_txt_values),
		cmocka_unit_test(test_bootdns_txt_rcodes),
		cmocka_unit_test(test_bootdns_txt_not_ours),
		cmocka_unit_test(test_bootdns_txt_malformed),
		cmocka_unit_test(test_bootdns_rollout_deterministic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Unit tests for worker/admit.c's parsers: node-key list files (both key
 * forms, comments, blanks, duplicates, the first bad line reported) and
 * the admission controller's response body (PROTOCOL.md 5.14).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "worker/admit.h"

#define HEX_A	"01010101010101010101010101010101" \
		"01010101010101010101010101010101"
#define HEX_B	"ABCDEFabcdef0123456789abcdef0123" \
		"456789abcdef0123456789abcdef0123"
#define HEX_C	"fefefefefefefefefefefefefefefefe" \
		"fefefefefefefefefefefefefefefefe"

static void
key_of(uint8_t k[DERP_KEY_LEN], uint8_t byte)
{
	memset(k, byte, DERP_KEY_LEN);
}

static struct keyset *
parse_ok(const char *text)
{
	struct keyset	*ks = NULL;
	size_t		 line = 99;

	assert_int_equal(admit_keys_parse(text, strlen(text), &ks, &line), 0);
	assert_non_null(ks);
	return ks;
}

static size_t
parse_bad(const char *text)
{
	struct keyset	*ks = (void *)1;
	size_t		 line = 0;

	assert_int_equal(admit_keys_parse(text, strlen(text), &ks, &line),
	    -EINVAL);
	assert_null(ks);
	return line;
}

static void
test_admit_keys_both_forms_comments_blanks(void **state)
{
	struct keyset	*ks;
	uint8_t		 k[DERP_KEY_LEN];

	(void)state;
	ks = parse_ok("# operators' list\n\n"
	    "nodekey:" HEX_A "\n"
	    "  \t" HEX_C "  # trailing comment\r\n"
	    "\t\n");
	assert_int_equal(admit_keys_count(ks), 2);
	key_of(k, 0x01);
	assert_true(admit_keys_has(ks, k));
	key_of(k, 0xfe);
	assert_true(admit_keys_has(ks, k));
	key_of(k, 0x02);
	assert_false(admit_keys_has(ks, k));
	admit_keys_free(ks);
}

static void
test_admit_keys_mixed_case_and_no_final_newline(void **state)
{
	struct keyset	*ks = parse_ok("nodekey:" HEX_B);
	uint8_t		 k[DERP_KEY_LEN];
	size_t		 i;

	(void)state;
	assert_int_equal(admit_keys_count(ks), 1);
	for (i = 0; i < 32; i++) {
		unsigned	v;

		assert_int_equal(sscanf(HEX_B + 2 * i, "%2x", &v), 1);
		k[i] = (uint8_t)v;
	}
	assert_true(admit_keys_has(ks, k));
	admit_keys_free(ks);
}

static void
test_admit_keys_duplicates_counted_once(void **state)
{
	struct keyset	*ks = parse_ok(HEX_A "\nnodekey:" HEX_A "\n" HEX_A);

	(void)state;
	assert_int_equal(admit_keys_count(ks), 1);
	admit_keys_free(ks);
}

static void
test_admit_keys_empty_file_is_empty_set(void **state)
{
	struct keyset	*ks = parse_ok("");
	uint8_t		 k[DERP_KEY_LEN];

	(void)state;
	key_of(k, 0);
	assert_int_equal(admit_keys_count(ks), 0);
	assert_false(admit_keys_has(ks, k));
	assert_false(admit_keys_has(NULL, k));
	admit_keys_free(ks);
	admit_keys_free(NULL);
}

static void
test_admit_keys_bad_lines_report_line(void **state)
{
	(void)state;
	assert_int_equal(parse_bad("garbage\n"), 1);
	assert_int_equal(parse_bad(HEX_A "\n\n# c\nnodekey:" HEX_A "0\n"), 4);
	assert_int_equal(parse_bad(HEX_A "\nnodekey:" "0101\n"), 2);
	assert_int_equal(parse_bad("privkey:" HEX_A "\n"), 1);
	assert_int_equal(parse_bad("nodekey: " HEX_A "\n"), 1);
	assert_int_equal(parse_bad("NODEKEY:" HEX_A "\n"), 1);
	/* 64 characters, one not hex. */
	assert_int_equal(parse_bad(HEX_A "\n"
	    "g101010101010101010101010101010101010101010101010101010101010101"),
	    2);
	assert_int_equal(parse_bad(HEX_A " " HEX_A "\n"), 1);
}

static void
test_admit_keys_many_keys(void **state)
{
	struct keyset	*ks;
	char		*text = malloc(1000 * 65 + 1), *p = text;
	uint8_t		 k[DERP_KEY_LEN];
	size_t		 line;
	int		 i, j;

	(void)state;
	assert_non_null(text);
	for (i = 0; i < 1000; i++) {
		for (j = 0; j < 32; j++)
			p += sprintf(p, "%02x", j == 0 ? i & 0xff :
			    j == 1 ? i >> 8 : 0x5a);
		*p++ = '\n';
	}
	assert_int_equal(admit_keys_parse(text, (size_t)(p - text), &ks,
	    &line), 0);
	assert_int_equal(admit_keys_count(ks), 1000);
	memset(k, 0x5a, sizeof(k));
	for (i = 0; i < 1000; i++) {
		k[0] = (uint8_t)(i & 0xff);
		k[1] = (uint8_t)(i >> 8);
		assert_true(admit_keys_has(ks, k));
	}
	k[1] = 0x7f;
	assert_false(admit_keys_has(ks, k));
	admit_keys_free(ks);
	free(text);
}

static void
test_admit_keys_load_reports_file_and_line(void **state)
{
	char		 path[] = "/tmp/test_admit_XXXXXX", err[512];
	struct keyset	*ks;
	int		 fd;
	const char	*text = "# list\n" HEX_A "\nbogus\n";

	(void)state;
	assert_true((fd = mkstemp(path)) >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(admit_keys_load(path, &ks, err, sizeof(err)),
	    -EINVAL);
	assert_null(ks);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, ":3:"));
	unlink(path);
	assert_int_equal(admit_keys_load(path, &ks, err, sizeof(err)),
	    -ENOENT);
	assert_non_null(strstr(err, path));
}

static int
resp(const char *body, bool *allow)
{
	*allow = true;	/* must be overwritten */
	return admit_response_parse(body, strlen(body), allow);
}

static void
test_admit_response_allow_and_deny(void **state)
{
	bool	a;

	(void)state;
	assert_int_equal(resp("{\"Allow\":true}", &a), 0);
	assert_true(a);
	assert_int_equal(resp(" {\"allow\": true, \"Other\": 3}\n", &a), 0);
	assert_true(a);
	assert_int_equal(resp("{\"ALLOW\":true}", &a), 0);
	assert_true(a);
	assert_int_equal(resp("{\"Allow\":false}", &a), 0);
	assert_false(a);
	/* Absent or null: not allowed, but not an error (Go decodes it). */
	assert_int_equal(resp("{}", &a), 0);
	assert_false(a);
	assert_int_equal(resp("{\"Allow\":null}", &a), 0);
	assert_false(a);
	assert_int_equal(resp("null", &a), 0);
	assert_false(a);
	/* The last matching key wins, as Go's decoder fills the field. */
	assert_int_equal(resp("{\"allow\":true,\"Allow\":false}", &a), 0);
	assert_false(a);
	/* Trailing bytes after the first value are not read. */
	assert_int_equal(resp("{\"Allow\":true} garbage", &a), 0);
	assert_true(a);
}

static void
test_admit_response_bad_bodies(void **state)
{
	bool	a;

	(void)state;
	assert_int_equal(resp("", &a), -EPROTO);
	assert_false(a);
	assert_int_equal(resp("{\"Allow\":", &a), -EPROTO);
	assert_false(a);
	assert_int_equal(resp("{\"Allow\":\"true\"}", &a), -EPROTO);
	assert_false(a);
	assert_int_equal(resp("{\"Allow\":1}", &a), -EPROTO);
	assert_false(a);
	assert_int_equal(resp("[true]", &a), -EPROTO);
	assert_false(a);
	assert_int_equal(resp("true", &a), -EPROTO);
	assert_false(a);
	assert_int_equal(resp("<html>", &a), -EPROTO);
	assert_false(a);
}

static void
test_admit_response_only_first_4k(void **state)
{
	char	*body = malloc(ADMIT_BODY_MAX + 64);
	bool	 a;
	size_t	 n;

	(void)state;
	assert_non_null(body);
	/* The object closes past 4 KiB: what is decoded is truncated. */
	n = (size_t)sprintf(body, "{\"Allow\":true,\"pad\":\"");
	memset(body + n, 'x', ADMIT_BODY_MAX);
	strcpy(body + n + ADMIT_BODY_MAX, "\"}");
	assert_int_equal(admit_response_parse(body, strlen(body), &a),
	    -EPROTO);
	assert_false(a);
	/* Padding before a small object is fine within the limit. */
	memset(body, ' ', ADMIT_BODY_MAX - 20);
	strcpy(body + ADMIT_BODY_MAX - 20, "{\"Allow\":true}");
	assert_int_equal(admit_response_parse(body, strlen(body), &a), 0);
	assert_true(a);
	free(body);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_admit_keys_both_forms_comments_blanks),
		cmocka_unit_test(
		    test_admit_keys_mixed_case_and_no_final_newline),
		cmocka_unit_test(test_admit_keys_duplicates_counted_once),
		cmocka_unit_test(test_admit_keys_empty_file_is_empty_set),
		cmocka_unit_test(test_admit_keys_bad_lines_report_line),
		cmocka_unit_test(test_admit_keys_many_keys),
		cmocka_unit_test(test_admit_keys_load_reports_file_and_line),
		cmocka_unit_test(test_admit_response_allow_and_deny),
		cmocka_unit_test(test_admit_response_bad_bodies),
		cmocka_unit_test(test_admit_response_only_first_4k),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

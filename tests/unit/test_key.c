/*
 * Unit tests for derp/key.c: Appendix A.1 keys, text forms and their
 * malformed variants, the derper key file and the mesh PSK file.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "derp/key.h"

#define SRV_PRIV "privkey:f0c28686025fd561a878202466819bfb888b8a5e7706bb8bdb1f06168cb3017b"
#define SRV_PUB  "nodekey:b2169426383adad2a86b2b8829a3ce788b0f68d6947c3729a4b45e2db394e600"
#define CLI_PRIV "privkey:a03751d9fe7c212507872d7dc5d8781ecf5fad195057be40de9301b0b06e9e47"
#define CLI_PUB  "nodekey:042c63d7b8d2d3809ff9fd574d265264d26f6c4aaa2c5d296ca216b924c57f08"

static int
setup(void **state)
{
	(void)state;
	return derp_crypto_init();
}

static void
check_pair(const char *priv_s, const char *pub_s)
{
	uint8_t	priv[32], pub[32], want[32];
	char	out[DERP_KEY_TEXT_MAX];

	assert_int_equal(derp_key_parse_private(priv_s, strlen(priv_s), priv),
	    0);
	assert_int_equal(derp_key_public(pub, priv), 0);
	assert_int_equal(derp_key_parse_public(pub_s, strlen(pub_s), want), 0);
	assert_memory_equal(pub, want, 32);
	derp_key_format_public(out, pub);
	assert_string_equal(out, pub_s);
	derp_key_format_private(out, priv);
	assert_string_equal(out, priv_s);
}

static void
test_key_appendix_a1(void **state)
{
	(void)state;
	check_pair(SRV_PRIV, SRV_PUB);
	check_pair(CLI_PRIV, CLI_PUB);
}

static void
test_key_parse_rejects_malformed(void **state)
{
	uint8_t		k[32];
	char		s[100];
	const char	*bad[] = {
		"", "nodekey:", "nodekey:00",
		"042c63d7b8d2d3809ff9fd574d265264d26f6c4aaa2c5d296ca216b924c57f08",
		"nodekey:042c63d7b8d2d3809ff9fd574d265264d26f6c4aaa2c5d296ca216b924c57f0",
		"nodekey:042c63d7b8d2d3809ff9fd574d265264d26f6c4aaa2c5d296ca216b924c57f080",
		"nodekey:042c63d7b8d2d3809ff9fd574d265264d26f6c4aaa2c5d296ca216b924c57fg8",
		"NODEKEY:042c63d7b8d2d3809ff9fd574d265264d26f6c4aaa2c5d296ca216b924c57f08",
		"privkey:042c63d7b8d2d3809ff9fd574d265264d26f6c4aaa2c5d296ca216b924c57f08",
		" nodekey:042c63d7b8d2d3809ff9fd574d265264d26f6c4aaa2c5d296ca216b924c57f08",
	};
	size_t		i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(derp_key_parse_public(bad[i], strlen(bad[i]),
		    k), -EINVAL);
	/* Upper-case hex is accepted. */
	snprintf(s, sizeof(s), "nodekey:%s",
	    "042C63D7B8D2D3809FF9FD574D265264D26F6C4AAA2C5D296CA216B924C57F08");
	assert_int_equal(derp_key_parse_public(s, strlen(s), k), 0);
	assert_int_equal(k[0], 0x04);
	assert_int_equal(k[31], 0x08);
}

static void
test_key_generate_clamped_and_short(void **state)
{
	uint8_t	k[32], z[32] = { 0 };
	char	sh[DERP_KEY_SHORT_MAX];
	int	i;

	(void)state;
	for (i = 0; i < 100; i++) {
		derp_key_generate(k);
		assert_int_equal(k[0] & 7, 0);
		assert_int_equal(k[31] & 0xc0, 0x40);
	}
	assert_true(derp_key_is_zero(z));
	assert_false(derp_key_is_zero(k));
	assert_true(derp_key_equal(k, k));
	assert_false(derp_key_equal(k, z));
	memset(k, 0, sizeof(k));
	derp_key_format_short(sh, k);
	assert_string_equal(sh, "[AAAAA]");
}

static void
test_key_keyfile_parse(void **state)
{
	uint8_t		k[32];
	const char	*good = "{\n\t\"PrivateKey\": \"" SRV_PRIV "\"\n}";
	const char	*ci = "{\"privatekey\":\"" SRV_PRIV "\",\"x\":1}";
	const char	*bad[] = {
		"", "{}", "[]", "{\"PrivateKey\": 5}",
		"{\"PrivateKey\": \"nodekey:00\"}", "{\"PrivateKey\": \"" SRV_PUB
		"\"}", "{\"PrivateKey\": \"" SRV_PRIV "\"", "null",
	};
	size_t		i;

	(void)state;
	assert_int_equal(derp_keyfile_parse(good, strlen(good), k), 0);
	assert_int_equal(k[0], 0xf0);
	assert_int_equal(derp_keyfile_parse(ci, strlen(ci), k), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(derp_keyfile_parse(bad[i], strlen(bad[i]), k),
		    -EINVAL);
}

static void
test_key_keyfile_create_0600_and_reload(void **state)
{
	char		dir[] = "/tmp/derpd-keyXXXXXX", path[128], text[256];
	uint8_t		a[32], b[32];
	struct stat	st;
	int		fd;
	ssize_t		n;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sub/derpd.key", dir);
	assert_int_equal(derp_keyfile_load(path, false, a), -ENOENT);
	assert_int_equal(derp_keyfile_load(path, true, a), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(derp_keyfile_load(path, true, b), 0);
	assert_memory_equal(a, b, 32);
	fd = open(path, O_RDONLY);
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	text[n] = '\0';
	assert_int_equal(strncmp(text, "{\n\t\"PrivateKey\": \"privkey:", 26),
	    0);
	assert_int_equal(text[n - 1], '}');	/* no trailing newline */
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, "garbage", 7), 7);
	close(fd);
	assert_int_equal(derp_keyfile_load(path, true, a), -EINVAL);
	unlink(path);
	snprintf(text, sizeof(text), "%s/sub", dir);
	rmdir(text);
	rmdir(dir);
}

/* Created 0600 whatever the umask; exposure reported by mode bits. */
static void
test_key_keyfile_umask_and_exposure(void **state)
{
	char		dir[] = "/tmp/derpd-keyXXXXXX", path[128];
	uint8_t		a[32];
	struct stat	st;
	mode_t		old;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/derpd.key", dir);
	old = umask(0);
	assert_int_equal(derp_keyfile_load(path, true, a), 0);
	umask(old);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(derp_secret_file_exposed(path, 077), 0);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(derp_secret_file_exposed(path, 077), 044);
	assert_int_equal(derp_secret_file_exposed(path, 007), 004);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(derp_secret_file_exposed(path, 007), 0);
	assert_int_equal(derp_secret_file_exposed("/nonexistent/k", 077),
	    -ENOENT);
	unlink(path);
	rmdir(dir);
}

static void
test_key_psk(void **state)
{
	uint8_t		k[32];
	const char	*hex =
	    "8fb454e8a4747af1bbc2f421ad3c8aca9e0416cc60a7102983692f34dc153b2a";
	char		s[100];

	(void)state;
	snprintf(s, sizeof(s), "  %s\n", hex);
	assert_int_equal(derp_psk_parse(s, strlen(s), k), 0);
	assert_int_equal(k[0], 0x8f);
	assert_int_equal(derp_psk_parse(hex, 63, k), -EINVAL);
	snprintf(s, sizeof(s), "%s0", hex);	/* 65 digits (v1.80 allowed) */
	assert_int_equal(derp_psk_parse(s, strlen(s), k), -EINVAL);
	assert_int_equal(derp_psk_parse("", 0, k), -EINVAL);
	assert_int_equal(derp_psk_load("/nonexistent/psk", k), -ENOENT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_appendix_a1),
		cmocka_unit_test(test_key_parse_rejects_malformed),
		cmocka_unit_test(test_key_generate_clamped_and_short),
		cmocka_unit_test(test_key_keyfile_parse),
		cmocka_unit_test(test_key_keyfile_create_0600_and_reload),
		cmocka_unit_test(test_key_keyfile_umask_and_exposure),
		cmocka_unit_test(test_key_psk),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}

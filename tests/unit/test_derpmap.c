/*
 * Unit tests for derp/derpmap.c: Tailscale's DERP map JSON (PROTOCOL.md
 * 10) into struct derp_map: defaults, case-insensitive fields, sorting,
 * and every validation error.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "derp/derpmap.h"

static struct derp_map	*m;
static char		 err[256];

static int
parse(const char *json)
{
	err[0] = '\0';
	return derp_map_parse(m, json, strlen(json), err, sizeof(err));
}

static void
test_derpmap_parse_example(void **state)
{
	const struct derp_map_node	*n;

	(void)state;
	assert_int_equal(parse("{\"Regions\":{\"900\":{\"RegionID\":900,"
	    "\"RegionCode\":\"myderp\",\"RegionName\":\"My DERP\",\"Nodes\":["
	    "{\"Name\":\"900a\",\"RegionID\":900,\"HostName\":"
	    "\"derp1.example.com\",\"IPv4\":\"192.0.2.1\",\"IPv6\":"
	    "\"2001:db8::1\",\"CanPort80\":true}]}},\"omitDefaultRegions\":"
	    "true}"), 0);
	assert_true(m->omit_default_regions);
	assert_int_equal(m->nregions, 1);
	assert_int_equal(m->regions[0].id, 900);
	assert_string_equal(m->regions[0].code, "myderp");
	assert_string_equal(m->regions[0].name, "My DERP");
	assert_int_equal(m->regions[0].nnodes, 1);
	n = &m->nodes[m->regions[0].first];
	assert_string_equal(n->name, "900a");
	assert_string_equal(n->host, "derp1.example.com");
	assert_string_equal(derp_map_node_ip(n, AF_INET), "192.0.2.1");
	assert_string_equal(derp_map_node_ip(n, AF_INET6), "2001:db8::1");
	/* 0 means the defaults. */
	assert_int_equal(n->stun_port, 3478);
	assert_int_equal(n->derp_port, 443);
	assert_true(n->can_port80);
	assert_false(n->stun_only);
	assert_false(n->insecure_for_tests);
}

static void
test_derpmap_fields_case_insensitive_and_none(void **state)
{
	const struct derp_map_node	*n;

	(void)state;
	assert_int_equal(parse("{\"regions\":{\"7\":{\"nodes\":[{\"name\":"
	    "\"7a\",\"hostname\":\"h\",\"ipv4\":\"none\",\"ipv6\":\"none\","
	    "\"stunport\":-1,\"derpport\":8443,\"insecurefortests\":true,"
	    "\"stunonly\":true,\"certname\":\"sha256-raw:ab\","
	    "\"FutureField\":{\"x\":1}}]}}}"), 0);
	n = &m->nodes[0];
	assert_int_equal(n->region_id, 7);	/* from the region */
	assert_null(derp_map_node_ip(n, AF_INET));
	assert_null(derp_map_node_ip(n, AF_INET6));
	assert_int_equal(n->stun_port, -1);
	assert_int_equal(n->derp_port, 8443);
	assert_true(n->insecure_for_tests);
	assert_true(n->stun_only);
	assert_string_equal(n->cert_name, "sha256-raw:ab");
}

static void
test_derpmap_regions_sorted_nodes_follow(void **state)
{
	(void)state;
	assert_int_equal(parse("{\"Regions\":{"
	    "\"20\":{\"Nodes\":[{\"Name\":\"20a\",\"HostName\":\"a\"},"
	    "{\"Name\":\"20b\",\"HostName\":\"b\"}]},"
	    "\"3\":{\"Nodes\":[{\"Name\":\"3a\",\"HostName\":\"c\"}]},"
	    "\"11\":{\"Nodes\":[]}}}"), 0);
	assert_int_equal(m->nregions, 3);
	assert_int_equal(m->nnodes, 3);
	assert_int_equal(m->regions[0].id, 3);
	assert_int_equal(m->regions[1].id, 11);
	assert_int_equal(m->regions[2].id, 20);
	assert_string_equal(m->nodes[m->regions[0].first].name, "3a");
	assert_int_equal(m->regions[1].nnodes, 0);
	assert_int_equal(m->regions[2].nnodes, 2);
	assert_string_equal(m->nodes[m->regions[2].first].name, "20a");
	assert_string_equal(m->nodes[m->regions[2].first + 1].name, "20b");
}

static void
test_derpmap_rejects_bad_input(void **state)
{
	static const char *const bad[] = {
		"",
		"[]",
		"{\"Regions\":[]}",
		"{}",
		"{\"Regions\":{\"x\":{}}}",
		"{\"Regions\":{\"0\":{}}}",
		"{\"Regions\":{\"-5\":{}}}",
		"{\"Regions\":{\"1\":{\"RegionID\":2}}}",
		"{\"Regions\":{\"1\":{\"RegionCode\":5}}}",
		"{\"Regions\":{\"1\":{\"Nodes\":{}}}}",
		"{\"Regions\":{\"1\":{\"Nodes\":[5]}}}",
		"{\"Regions\":{\"1\":{\"Nodes\":[{\"HostName\":\"h\"}]}}}",
		"{\"Regions\":{\"1\":{\"Nodes\":[{\"Name\":\"a\"}]}}}",
		"{\"Regions\":{\"1\":{\"Nodes\":[{\"Name\":\"a\",\"HostName\":"
		    "\"h\",\"RegionID\":2}]}}}",
		"{\"Regions\":{\"1\":{\"Nodes\":[{\"Name\":\"a\",\"HostName\":"
		    "\"h\",\"DERPPort\":65536}]}}}",
		"{\"Regions\":{\"1\":{\"Nodes\":[{\"Name\":\"a\",\"HostName\":"
		    "\"h\",\"STUNPort\":-2}]}}}",
		"{\"Regions\":{\"1\":{\"Nodes\":[{\"Name\":\"a\",\"HostName\":"
		    "\"h\",\"STUNPort\":\"3478\"}]}}}",
		"{\"Regions\":{\"1\":{\"Nodes\":[{\"Name\":\"a\",\"IPv4\":"
		    "\"2001:db8::1\"}]}}}",
		"{\"Regions\":{\"1\":{\"Nodes\":[{\"Name\":\"a\",\"IPv6\":"
		    "\"192.0.2.1\"}]}}}",
		"{\"Regions\":{\"1\":{\"Nodes\":[{\"Name\":\"a\",\"HostName\":"
		    "\"h\",\"STUNOnly\":1}]}}}",
		"{\"Regions\":{\"1\":{\"Nodes\":[{\"Name\":\"a\",\"HostName\":"
		    "\"h\"},{\"Name\":\"a\",\"HostName\":\"h\"}]}}}",
		"{\"Regions\":{\"1\":{\"Nodes\":[{\"Name\":\"a\",\"HostName\":"
		    "\"h\"}]},\"2\":{\"Nodes\":[{\"Name\":\"a\",\"HostName\":"
		    "\"i\"}]}}}",
		"{\"Regions\":{\"1\":{},\"1\":{}}}",
		"{\"Regions\":{\"1\":{\"Nodes\":[{\"Name\":\"a\\u0000b\","
		    "\"HostName\":\"h\"}]}}}",
		"{\"Regions\":{\"1\":{}}",
	};
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i]) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
		assert_true(err[0] != '\0');
		assert_int_equal(m->nnodes, 0);
	}
}

static void
test_derpmap_long_strings_and_caps(void **state)
{
	char	*json, *p;
	size_t	 i;

	(void)state;
	json = malloc(DERP_MAP_MAX_JSON + 64);
	assert_non_null(json);
	/* A name one byte over the cap. */
	p = json + sprintf(json, "{\"Regions\":{\"1\":{\"Nodes\":[{\"Name\":"
	    "\"");
	memset(p, 'n', DERP_MAP_NAME_MAX);
	p += DERP_MAP_NAME_MAX;
	strcpy(p, "\",\"HostName\":\"h\"}]}}}");
	assert_int_equal(parse(json), -EINVAL);
	assert_non_null(strstr(err, "too long"));
	/* More regions than the cap. */
	p = json + sprintf(json, "{\"Regions\":{");
	for (i = 1; i <= DERP_MAP_MAX_REGIONS + 1; i++)
		p += sprintf(p, "%s\"%zu\":{}", i > 1 ? "," : "", i);
	strcpy(p, "}}");
	assert_int_equal(parse(json), -EINVAL);
	assert_non_null(strstr(err, "regions"));
	/* Larger than the JSON cap, refused before parsing. */
	memset(json, ' ', DERP_MAP_MAX_JSON + 1);
	assert_int_equal(derp_map_parse(m, json, DERP_MAP_MAX_JSON + 1, err,
	    sizeof(err)), -EINVAL);
	free(json);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_derpmap_parse_example),
		cmocka_unit_test(test_derpmap_fields_case_insensitive_and_none),
		cmocka_unit_test(test_derpmap_regions_sorted_nodes_follow),
		cmocka_unit_test(test_derpmap_rejects_bad_input),
		cmocka_unit_test(test_derpmap_long_strings_and_caps),
	};
	int	rc;

	m = malloc(sizeof(*m));
	assert_non_null(m);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	free(m);
	return rc;
}

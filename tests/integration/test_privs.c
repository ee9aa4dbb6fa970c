/*
 * Privileges (issue 9): derpd started as root with user = "nobody" and
 * group = "nogroup" runs its supervisor and every worker (respawned ones
 * too) as nobody with empty capability sets, no_new_privs, not
 * dumpable, and still relays over TLS, reads the mesh PSK (a mesh-key
 * watcher is served), uses its runtime directory (the bus between two
 * workers) and reloads.
 * The node key stays root's 0600: the supervisor reads it before the
 * switch.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
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
#include "harness.h"

#define PSK	"5d2b0fe4a1c377e2c3d8a9b1e0f46a7c9d2e81b3a4c5d6e7f8091a2b3c4d5e6f"

static uid_t	nobody_uid;
static gid_t	nogroup_gid;

/* The value of one /proc/<pid>/status field, tabs kept. */
static void
status_field(pid_t pid, const char *name, char *out, size_t cap)
{
	char	path[64], line[512];
	size_t	nl = strlen(name);
	FILE	*f;

	out[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	assert_non_null(f = fopen(path, "r"));
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, name, nl) == 0 && line[nl] == ':') {
			snprintf(out, cap, "%s", line + nl + 2);
			out[strcspn(out, "\n")] = '\0';
		}
	fclose(f);
}

static void
assert_unprivileged(pid_t pid)
{
	static const char *const caps[] = { "CapInh", "CapPrm", "CapEff",
	    "CapAmb" };
	char		v[256], want[128];
	size_t		i;
	struct stat	st;

	assert_true(pid > 0);
	snprintf(want, sizeof(want), "%u\t%u\t%u\t%u", (unsigned)nobody_uid,
	    (unsigned)nobody_uid, (unsigned)nobody_uid, (unsigned)nobody_uid);
	status_field(pid, "Uid", v, sizeof(v));
	assert_string_equal(v, want);
	snprintf(want, sizeof(want), "%u\t%u\t%u\t%u", (unsigned)nogroup_gid,
	    (unsigned)nogroup_gid, (unsigned)nogroup_gid,
	    (unsigned)nogroup_gid);
	status_field(pid, "Gid", v, sizeof(v));
	assert_string_equal(v, want);
	/* setgroups: root's supplementary groups are gone. */
	status_field(pid, "Groups", v, sizeof(v));
	snprintf(want, sizeof(want), "%u", (unsigned)nogroup_gid);
	assert_string_equal(v[0] ? strtok(v, " ") : v, want);
	for (i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		status_field(pid, caps[i], v, sizeof(v));
		if (strcmp(v, "0000000000000000") != 0)
			fail_msg("pid %d %s %s", (int)pid, caps[i], v);
	}
	status_field(pid, "NoNewPrivs", v, sizeof(v));
	assert_string_equal(v, "1");
	/* Non-dumpable: the kernel gives its /proc files to root. */
	snprintf(v, sizeof(v), "/proc/%d/status", (int)pid);
	assert_int_equal(stat(v, &st), 0);
	assert_int_equal(st.st_uid, 0);
}

static void
test_privs_nobody(void **state)
{
	struct node		*n = node_new();
	struct client		*c[4], *w;
	struct client_msg	 m;
	struct stat		 st;
	char			 path[512], extra[1024];
	pid_t			 old;
	FILE			*f;
	int			 i;

	(void)state;
	/* The files a worker reads itself (TLS pair, PSK) belong to it;
	 * the config must be readable for reload. */
	assert_int_equal(chmod(n->dir, 0755), 0);
	node_make_cert(n);
	snprintf(path, sizeof(path), "%s/key.pem", n->dir);
	assert_int_equal(chown(path, nobody_uid, nogroup_gid), 0);
	snprintf(path, sizeof(path), "%s/mesh.psk", n->dir);
	assert_non_null(f = fopen(path, "w"));
	fprintf(f, "%s\n", PSK);
	fclose(f);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(chown(path, nobody_uid, nogroup_gid), 0);
	snprintf(extra, sizeof(extra), "workers = 2;\nuser = \"nobody\";\n"
	    "group = \"nogroup\";\nmesh = { psk_file = \"%s\"; };\n", path);
	node_start_in(n, true, extra);

	/* The key the supervisor made before the switch: root's, 0600. */
	snprintf(path, sizeof(path), "%s/derpd.key", n->dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_uid, 0);
	/* The runtime directory is the workers'. */
	snprintf(path, sizeof(path), "%s/run", n->dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, nobody_uid);

	assert_unprivileged(n->pid);
	assert_unprivileged(node_worker_pid(n, 0));
	assert_unprivileged(node_worker_pid(n, 1));
	assert_int_not_equal(node_worker_pid(n, 0), node_worker_pid(n, 1));

	/* TLS relay, across the two workers' bus and rings. */
	for (i = 0; i < 4; i++)
		c[i] = node_client(n);
	for (i = 1; i < 4; i++) {
		reach(c[0], c[i]);
		reach(c[i], c[0]);
	}
	/* The PSK was read as nobody: a mesh-key watcher is served. */
	w = node_mesh_client(n, PSK, true);
	assert_int_equal(recv_type(w, DERP_FRAME_PEER_PRESENT, &m, 5000), 0);
	client_free(w);

	/* Reload as nobody (config re-read, TLS pair re-checked). */
	assert_int_equal(kill(n->pid, SIGHUP), 0);
	assert_true(node_log_wait(n, "event=reloaded", 5000));
	assert_int_equal(node_log_count(n, "event=reload_refused"), 0);

	/* A respawned worker, forked by the unprivileged supervisor, is
	 * unprivileged too and serves. */
	old = node_worker_pid(n, 1);
	assert_int_equal(kill(old, SIGTERM), 0);
	for (i = 0; i < 500 && node_worker_pid(n, 1) == old; i++)
		node_log_wait(n, "event=__never__", 10);
	assert_int_not_equal(node_worker_pid(n, 1), old);
	assert_true(node_log_wait(n, "event=worker_ready worker=1", 5000));
	assert_unprivileged(node_worker_pid(n, 1));
	for (i = 0; i < 4; i++)
		client_free(c[i]);
	c[0] = node_client(n);
	c[1] = node_client(n);
	reach(c[0], c[1]);
	client_free(c[0]);
	client_free(c[1]);
	assert_int_equal(node_log_count(n, "drop_privileges_failed"), 0);
	node_stop(n);
	node_free(n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_privs_nobody),
	};
	struct passwd	*pw = getpwnam("nobody");
	struct group	*gr = getgrnam("nogroup");

	if (geteuid() != 0 || pw == NULL || gr == NULL) {
		printf("test_privs: needs root, nobody and nogroup; skipped\n");
		return 0;
	}
	nobody_uid = pw->pw_uid;
	nogroup_gid = gr->gr_gid;
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Privilege drop for the supervisor and its workers (see privs.h).
 */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdbool.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "supervisor/privs.h"

/* The target ids; *change is false when there is nothing to switch
 * (nothing configured, or started as that user already, e.g. systemd
 * User=). */
static int
resolve(const struct config *cfg, uid_t *uid, gid_t *gid, bool *change)
{
	struct passwd	*pw = NULL;
	struct group	*gr = NULL;

	*change = false;
	*uid = getuid();
	*gid = getgid();
	if (cfg->user[0] == '\0' && cfg->group[0] == '\0')
		return 0;
	if (cfg->group[0] != '\0' && (gr = getgrnam(cfg->group)) == NULL)
		return -ENOENT;
	if (cfg->user[0] != '\0' && (pw = getpwnam(cfg->user)) == NULL)
		return -ENOENT;
	if (pw != NULL)
		*uid = pw->pw_uid;
	if (gr != NULL)
		*gid = gr->gr_gid;
	else if (pw != NULL)
		*gid = pw->pw_gid;
	*change = *uid != getuid() || *gid != getgid() ||
	    geteuid() != getuid() || getegid() != getgid();
	return 0;
}

int
privs_chown(const struct config *cfg, const char *path)
{
	uid_t	uid;
	gid_t	gid;
	bool	change;
	int	rc;

	if ((rc = resolve(cfg, &uid, &gid, &change)) < 0)
		return rc;
	if (!change || geteuid() != 0)
		return 0;
	return chown(path, uid, gid) == -1 ? -errno : 0;
}

/*
 * Under systemd the service holds CAP_NET_BIND_SERVICE as an ambient
 * capability, which would survive into every process; clear it and
 * empty every set.  A root process (user = "", development) keeps its
 * capabilities: emptying them would not make uid 0 harmless anyway.
 */
static int
drop_capabilities(void)
{
	struct __user_cap_header_struct	hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct	data[2];

	if (geteuid() == 0)
		return 0;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == -1 &&
	    errno != EINVAL)
		return -errno;
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capset, &hdr, data) == -1)
		return -errno;
	return 0;
}

int
privs_drop(const struct config *cfg)
{
	uid_t	uid;
	gid_t	gid;
	bool	change;
	int	rc;

	if ((rc = resolve(cfg, &uid, &gid, &change)) < 0)
		return rc;
	if (change) {
		if (setgroups(1, &gid) == -1 ||
		    setresgid(gid, gid, gid) == -1 ||
		    setresuid(uid, uid, uid) == -1)
			return -errno;
		/* No way back: a saved root id would undo all of this. */
		if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
			return -EPERM;
	}
	if ((rc = drop_capabilities()) < 0)
		return rc;
	/* Not traceable by, and no core dump for, another process of the
	 * same user (setresuid does this only when ids change). */
	if (geteuid() != 0 && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		return -errno;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		return -errno;
	return 0;
}

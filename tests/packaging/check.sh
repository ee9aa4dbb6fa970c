#!/bin/sh
# make check-packaging: build the .deb and the .rpm, lint them, inspect
# their file lists and maintainer scripts, then install the .deb into a
# Debian 12 root made here (debootstrap) and boot that root under
# systemd-nspawn with a private network (only its own loopback), so the
# shipped unit runs with every hardening setting it has: it must reach
# READY, create its key, relay DERP over TLS, reload, and stop cleanly,
# with workers unprivileged.  Before that, the installed `derpd -t` is
# run against the shipped configuration (missing certificate: a clear
# error) and a broken one.
set -eu
cd "$(dirname "$0")/../.."

PKG=build/pkg
mkdir -p build
ROOT=$PKG/root
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
NSPAWN_PID=

fail() {
	echo "check-packaging: FAIL: $*" >&2
	if [ -n "$NSPAWN_PID" ]; then
		in_root journalctl -u derpd --no-pager 2>/dev/null | tail -40 >&2
	fi
	exit 1
}
step() { echo "== $*"; }
has() {	# has FILE-LIST PATH...
	list=$1; shift
	for p in "$@"; do	# a man page may be compressed either way
		grep -qxE -- "$p(\.gz|\.bz2|\.xz)?" "$list" ||
		    fail "package lacks $p"
	done
}

cleanup() {
	if [ -n "$NSPAWN_PID" ]; then
		kill "$NSPAWN_PID" 2>/dev/null || true
		wait "$NSPAWN_PID" 2>/dev/null || true
	fi
	for m in proc dev/pts dev; do
		umount "$ROOT/$m" 2>/dev/null || true
	done
}
trap cleanup EXIT INT TERM

# ---- build and lint ----
step "build the .deb"
make deb >$PKG.deb.log 2>&1 || { tail -30 $PKG.deb.log; fail "make deb"; }
DEB=$(ls $PKG/derpd_*_amd64.deb)
step "build the .rpm"
make rpm >$PKG.rpm.log 2>&1 || { tail -30 $PKG.rpm.log; fail "make rpm"; }
RPM=$(ls $PKG/rpm/RPMS/*/derpd-[0-9]*.rpm)

step "lintian $DEB"
lintian --fail-on error "$DEB" | tee $PKG/lintian.txt ||
    fail "lintian reports errors"
step "rpmlint $RPM"
rpmlint -r packaging/rpm/rpmlintrc "$RPM" 2>&1 | tee $PKG/rpmlint.txt || true
grep -Eq '[0-9]+ packages and [0-9]+ specfiles checked; 0 errors' \
    $PKG/rpmlint.txt || fail "rpmlint reports errors"

# ---- file lists and scripts ----
step "file lists"
dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's|^\./|/|; s|/$||' >$PKG/deb.files
rpm -qpl "$RPM" >$PKG/rpm.files
for l in $PKG/deb.files $PKG/rpm.files; do
	has $l /usr/sbin/derpd /usr/bin/derpcat /usr/bin/derpbench \
	    /usr/bin/derpprobe /etc/derpd/derpd.conf \
	    /usr/lib/sysusers.d/derpd.conf /usr/lib/tmpfiles.d/derpd.conf \
	    /usr/share/man/man8/derpd.8 /usr/share/man/man5/derpd.conf.5 \
	    /usr/share/man/man1/derpprobe.1
done
has $PKG/deb.files /lib/systemd/system/derpd.service \
    /lib/systemd/system/derpd.socket
has $PKG/rpm.files /usr/lib/systemd/system/derpd.service \
    /usr/lib/systemd/system/derpd.socket
dpkg-deb -I "$DEB" conffiles | grep -qx /etc/derpd/derpd.conf ||
    fail "derpd.conf is not a conffile"
rpm -qp --configfiles "$RPM" | grep -qx /etc/derpd/derpd.conf ||
    fail "derpd.conf is not %config in the rpm"
dpkg-deb -I "$DEB" postinst >$PKG/postinst
grep -q 'systemd-sysusers.*derpd.conf' $PKG/postinst || fail "postinst: no user"
grep -q "deb-systemd-helper enable 'derpd.service'" $PKG/postinst ||
    fail "postinst: service not enabled"
grep -q '_dh_action=restart' $PKG/postinst || fail "postinst: no restart on upgrade"
[ "$(awk '/systemd-sysusers/{print NR; exit}' $PKG/postinst)" -lt \
  "$(awk '/systemd-tmpfiles/{print NR; exit}' $PKG/postinst)" ] ||
    fail "postinst: tmpfiles runs before the user exists"
rpm -qp --scripts "$RPM" >$PKG/rpm.scripts
grep -q 'useradd -r' $PKG/rpm.scripts || fail "rpm: no user"
grep -q 'preset derpd.service' $PKG/rpm.scripts || fail "rpm: no preset"
grep -q 'try-restart derpd.service' $PKG/rpm.scripts || fail "rpm: no restart"

# ---- install into a Debian 12 root ----
in_root() { nsenter -t "$CPID" -a "$@"; }
step "debootstrap $ROOT"
rm -rf "$ROOT"
debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" >$PKG/debootstrap.log 2>&1 ||
    { tail -20 $PKG/debootstrap.log; fail debootstrap; }
cp "$DEB" "$ROOT/tmp/derpd.deb"
chroot "$ROOT" sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y \
    --no-install-recommends systemd systemd-sysv dbus /tmp/derpd.deb' \
    >$PKG/install.log 2>&1 || { tail -20 $PKG/install.log; fail "install"; }
step "installed package"
chroot "$ROOT" id derpd | grep -q 'uid=.*(derpd)' || fail "no derpd user"
[ -L "$ROOT/etc/systemd/system/multi-user.target.wants/derpd.service" ] ||
    fail "derpd.service not enabled"
step "systemd-analyze verify (the installed units)"
chroot "$ROOT" systemd-analyze verify --man=no derpd.service derpd.socket \
    >$PKG/verify.txt 2>&1 || { cat $PKG/verify.txt; fail "systemd-analyze verify"; }
[ ! -s $PKG/verify.txt ] || { cat $PKG/verify.txt; fail "systemd-analyze verify warns"; }

step "derpd -t: the shipped config without a certificate"
if out=$(chroot "$ROOT" derpd -t -c /etc/derpd/derpd.conf 2>&1); then
	fail "derpd -t accepted a config whose certificate is missing"
else
	rc=$?
fi
echo "   $out"
[ $rc -eq 1 ] || fail "derpd -t exited $rc (want 1)"
echo "$out" | grep -q '/etc/derpd/tls/fullchain.pem' ||
    fail "the error does not name the missing certificate"
step "derpd -t: a broken config"
printf 'listen = { https = "nonsense"; };\n' >"$ROOT/tmp/bad.conf"
if out=$(chroot "$ROOT" derpd -t -c /tmp/bad.conf 2>&1); then
	fail "derpd -t accepted a broken config"
else
	rc=$?
fi
echo "   $out"
[ $rc -eq 1 ] && echo "$out" | grep -q '^derpd: /tmp/bad.conf:1: ' ||
    fail "no file:line error for a broken config (exit $rc)"

step "certificate; derpd -t passes"
mkdir -p "$ROOT/etc/derpd/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$ROOT/etc/derpd/tls/privkey.pem" \
    -out "$ROOT/etc/derpd/tls/fullchain.pem" -days 2 \
    -subj /CN=derp.example.net 2>/dev/null
chroot "$ROOT" sh -c 'chgrp -R derpd /etc/derpd/tls &&
    chmod 0750 /etc/derpd/tls && chmod 0640 /etc/derpd/tls/*'
chroot "$ROOT" derpd -t -c /etc/derpd/derpd.conf || fail "derpd -t with a certificate"
# The workers' own seccomp filter, inside the unit's: both must hold.
sed -i 's/^\(\s*seccomp = \)false;/\1true;/' "$ROOT/etc/derpd/derpd.conf"
grep -q '^\s*seccomp = true;' "$ROOT/etc/derpd/derpd.conf" || fail "no sandbox setting to turn on"
chroot "$ROOT" derpd -t -c /etc/derpd/derpd.conf || fail "derpd -t with the sandbox"

# ---- boot it ----
step "boot the root under systemd-nspawn (private network)"
systemd-nspawn --register=no --keep-unit --private-network -D "$ROOT" -b \
    >$PKG/nspawn.log 2>&1 &
NSPAWN_PID=$!
CPID=
# A slow machine can take a minute to boot the root; the wait is bounded
# (3 minutes), and a failure says which stage it stopped at.
deadline=$(( $(date +%s) + 180 ))
# The container's init: the child of systemd-nspawn that has become
# systemd.  Not just any child: nspawn may fork a short-lived helper
# first, and nsenter into a pid that is gone answers nothing, forever
# (what CI once saw as "derpd.service is ").
while [ -z "$CPID" ] && [ "$(date +%s)" -lt $deadline ]; do
	CPID=$(pgrep -x -P $NSPAWN_PID systemd 2>/dev/null | head -1 || true)
	[ -n "$CPID" ] || sleep 0.2	# polling for the container to exist
done
[ -n "$CPID" ] || { tail $PKG/nspawn.log; fail "the container did not start"; }
state=
while [ "$(date +%s)" -lt $deadline ]; do
	state=$(in_root systemctl is-active derpd 2>$PKG/is-active.err || true)
	[ "$state" = active ] && break
	[ "$state" = failed ] && break
	kill -0 "$NSPAWN_PID" 2>/dev/null || break
	sleep 0.2	# polling systemd for the unit's state
done
if [ "$state" != active ]; then
	echo "-- systemd-nspawn's console (last 30 lines):" >&2
	tail -30 $PKG/nspawn.log >&2
	echo "-- systemctl is-active's stderr:" >&2
	cat $PKG/is-active.err >&2
	kill -0 "$NSPAWN_PID" 2>/dev/null || fail "systemd-nspawn exited early"
	echo "-- the container's system state and jobs:" >&2
	in_root systemctl is-system-running >&2 || true
	in_root systemctl list-jobs --no-pager >&2 || true
	fail "derpd.service is ${state:-unknown (systemd in the container did not answer)}"
fi
in_root systemctl show derpd -p Type -p StatusText -p MainPID -p WatchdogUSec \
    -p ProtectSystem -p NoNewPrivileges -p MemoryDenyWriteExecute \
    -p RestrictAddressFamilies -p SystemCallFilter -p User --no-pager |
    grep -v '^SystemCallFilter=' || true
step "the node key was created 0600 in the state directory"
[ "$(in_root stat -c '%a %U' /var/lib/derpd/derpd.key)" = "600 derpd" ] ||
    fail "node key not 0600 derpd"

step "workers run as derpd with no capabilities, in their seccomp sandbox"
MAIN=$(in_root systemctl show -p MainPID --value derpd)
DUID=$(chroot "$ROOT" id -u derpd)
nw=0
for w in $(in_root cat /proc/$MAIN/task/$MAIN/children); do
	st=$(in_root cat /proc/$w/status)
	echo "$st" | grep -q "^Uid:	$DUID	$DUID	" || fail "worker $w not derpd"
	echo "$st" | grep -q '^CapEff:	0000000000000000' || fail "worker $w has capabilities"
	echo "$st" | grep -q '^CapAmb:	0000000000000000' || fail "worker $w has ambient capabilities"
	echo "$st" | grep -q '^Seccomp:	2' || fail "worker $w has no seccomp filter"
	nw=$((nw + 1))
done
[ $nw -ge 1 ] || fail "no workers"
in_root cat /proc/$MAIN/status | grep -q "^Uid:	$DUID	$DUID	" ||
    fail "supervisor not running as derpd"

step "DERP over TLS through the installed service"
in_root derpcat --tls --insecure --sni derp.example.net 127.0.0.1:443 ping ||
    fail "DERP ping through the service"
in_root bash -c 'exec 3<>/dev/tcp/127.0.0.1/80 && printf "GET /generate_204 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" >&3 && head -1 <&3' |
    grep -q ' 204 ' || fail "port 80 /generate_204"

step "systemctl reload"
in_root systemctl reload derpd || fail "reload"
in_root journalctl -u derpd --no-pager | grep -q 'event=reloaded' ||
    fail "no reloaded event after systemctl reload"
step "systemctl stop"
in_root systemctl stop derpd
[ "$(in_root systemctl show -p ExecMainStatus --value derpd)" = 0 ] ||
    fail "derpd did not exit 0 on stop"
in_root journalctl -u derpd --no-pager | grep -E ' err |Segmentation|sanitizer' &&
    fail "error-level lines in the service log"
in_root systemctl poweroff || true
wait "$NSPAWN_PID" 2>/dev/null || true
NSPAWN_PID=
echo "check-packaging: all passed"

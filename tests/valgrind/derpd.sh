#!/bin/sh
# DERPD_BIN for `make check-valgrind`: derpd (DERPD_REAL) under memcheck.
# Workers are forked without exec, so memcheck follows them by itself;
# each process that has an error or a definite leak exits 99, which the
# harness sees as the supervisor's or a worker's failed exit status.
# DERPD_REAL defaults to build/derpd (systemd-socket-activate, in
# test_sdsocket, passes no environment).
# --vgdb=no: no gdbserver pipes in /tmp (a worker that dropped to
# another user cannot unlink them, which memcheck reports).
# --run-libc-freeres=no: glibc's exit-time freeres of getaddrinfo_a's
# state reads uninitialised memory (inside libc, found by the mesh test).
# VG_LOG_DIR: memcheck's reports go to VG_LOG_DIR/vg.<pid>.log rather
# than derpd's stderr (the test's node log, removed with the test).
log=""
[ -z "${VG_LOG_DIR:-}" ] || log="--log-file=$VG_LOG_DIR/vg.%p.log"
exec valgrind -q --error-exitcode=99 --leak-check=full \
    --run-libc-freeres=no \
    --errors-for-leak-kinds=definite --show-leak-kinds=definite \
    --trace-children=yes --track-fds=no --num-callers=30 --vgdb=no \
    $log ${VALGRIND_EXTRA:-} "${DERPD_REAL:-$(dirname "$0")/../../build/derpd}" "$@"

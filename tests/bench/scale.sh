#!/bin/sh
# make bench-scale: SCALE (100,000) concurrent idle TLS clients on one
# node of WORKERS (8) workers, each a process with its own fd limit
# (ulimit -Hn, 20,000 here, cannot be raised without CAP_SYS_RESOURCE);
# derpbench forks as many client processes as its own limit needs and
# spreads their source addresses over 127.1.0.1-127.254.255.254.  The
# keepalive interval is shortened to KEEPALIVE_MS (10,000) so that every
# client must receive keepalives during the HOLD (25 s); then each must
# answer a Ping.  Reports the server's RSS per connection and the
# connect rate; writes bench/results/scale-<UTC time>.json.
#
# Usage: tests/bench/scale.sh BUILD_DIR
set -eu
B=${1:-build}
SCALE=${SCALE:-100000}
WORKERS=${WORKERS:-8}
HOLD=${HOLD:-25}
KEEPALIVE_MS=${KEEPALIVE_MS:-10000}
for t in derpd derpbench; do
	[ -x "$B/$t" ] || { echo "scale.sh: no $B/$t: run make" >&2; exit 1; }
done
hard=$(ulimit -Hn)
per=$((SCALE / WORKERS + SCALE / WORKERS / 5 + 100))
if [ "$hard" != unlimited ] && [ "$per" -gt "$hard" ]; then
	echo "scale.sh: $SCALE clients over $WORKERS workers need about" \
	    "$per fds per worker; ulimit -Hn is $hard (set WORKERS)" >&2
	exit 1
fi
ME=scale.sh
. tests/bench/lib.sh
port=$(free_port tcp)
start_node scale "$port" "" "derp = { keepalive_ms = $KEEPALIVE_MS; };"
pid=$node_pid
pids=$node_pids
mkdir -p bench/results
out=bench/results/scale-$(date -u +%Y%m%dT%H%M%SZ).json
echo "scale: $SCALE idle TLS clients, $WORKERS workers, hold $HOLD s" >&2
rc=0
"$B/derpbench" --tls --ca-file "$dir/cert.pem" --server-name localhost \
    --idle "$SCALE" --hold "$HOLD" --threads 16 \
    --sources 127.1.0.1-127.254.255.254 --server-pid "$pids" --json \
    "127.0.0.1:$port" > "$out" || rc=$?
stop_node "$pid" || rc=1
echo "machine: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)," \
    "$(nproc) CPUs, Linux $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
cat "$out"
[ $rc -eq 0 ] || echo "scale.sh: not every client connected and stayed" \
    "up" >&2
exit $rc

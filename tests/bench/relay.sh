#!/bin/sh
# make bench: the standard scenarios, each RUNS times (default 5), on
# derpd over TLS on loopback:
#   relay, one node of WORKERS (2) workers: 10 pairs of 1,200-byte and of
#     64-byte packets, both ends on the same worker and on different ones;
#   latency: open loop (derpbench --rate) at half the packet rate the
#     same-worker 1,200-byte closed-loop runs reached (their median), for
#     LAT_SECS (60) s, 10 pairs, both ends on one worker: p50..max,
#     stalls over 10 ms, the load generator's own lateness; and again
#     with derpd (1 worker) pinned to CPU 0 and the generator to CPU 1,
#     at half of that setup's own maximum ("pinned");
#   relay across a 2-node mesh region: senders on node A, receivers on B;
#   IDLE (20,000) idle clients on a fresh node each run: RSS growth per
#     connection, connect rate;
#   STUN (stunbench);
#   a reconnect storm on the same node: STORM (3,000) connect + TLS + DERP
#     handshake + disconnect cycles, STORM_C (16) at a time: handshakes/s
#     and server CPU per handshake, against the bound `openssl speed`
#     gives (one ECDSA P-256 sign and two X25519 per handshake), and
#     the libraries' own floor (tests/bench/floor.c: OpenSSL's server
#     handshake and the DERP box, in process, no socket).
# Writes bench/results/relay-<UTC time>.{jsonl,md,png} (raw JSON lines,
# medians as Markdown, a gnuplot plot) and prints the Markdown.
#
# Usage: tests/bench/relay.sh BUILD_DIR [SECONDS]
# Environment: RUNS, SECS (3), WORKERS (2), IDLE (20000, 0 = skip),
# IDLE_RUNS (RUNS), HOLD (6), STORM (3000, 0 = skip), STORM_C (16),
# LAT_SECS (60, 0 = skip), LAT_RUNS (1), LAT_RATE (packets/s in all;
# default: half the measured maximum),
# STUN_ONLY=1 (just STUN).  100,000 clients: tests/bench/scale.sh.
set -eu
B=${1:-build}
SECS=${2:-${SECS:-3}}
RUNS=${RUNS:-5}
WORKERS=${WORKERS:-2}
IDLE=${IDLE:-20000}
IDLE_RUNS=${IDLE_RUNS:-$RUNS}
HOLD=${HOLD:-6}
STORM=${STORM:-3000}
STORM_C=${STORM_C:-16}
LAT_SECS=${LAT_SECS:-60}
LAT_RUNS=${LAT_RUNS:-1}

need() {
	command -v "$1" >/dev/null 2>&1 || {
		echo "relay.sh: $1 is missing: apt-get install $2" >&2
		exit 1
	}
}
need gnuplot gnuplot-nox
need openssl openssl
need python3 python3
need curl curl
for t in derpd derpbench stunbench tests/bench/floor; do
	[ -x "$B/$t" ] || { echo "relay.sh: no $B/$t: run make" >&2; exit 1; }
done

ME=relay.sh
. tests/bench/lib.sh
python3 -c 'import os; print(os.urandom(32).hex())' > "$dir/mesh.psk"

repeat() {	# N COMMAND...: run N times, JSON lines appended to $out.jsonl
	n=$1
	shift
	r=0
	while [ $r -lt "$n" ]; do
		"$@" >> "$out.jsonl"
		r=$((r + 1))
	done
}

mkdir -p bench/results
out=bench/results/relay-$(date -u +%Y%m%dT%H%M%SZ)
: > "$out.jsonl"
tls="--tls --ca-file $dir/cert.pem --server-name localhost"

# One node: relay between workers, and STUN.
port=$(free_port tcp)
sport=$(free_port udp)
start_node a "$port" "127.0.0.1:$sport" ""
a_pid=$node_pid
a_pids=$node_pids
if [ -z "${STUN_ONLY:-}" ]; then
	for sc in same:1200 cross:1200 same:64 cross:64; do
		topo=${sc%:*}
		size=${sc#*:}
		[ "$WORKERS" -gt 1 ] || topo=any
		echo "relay: $topo worker, 10 pairs, $size B, $RUNS x $SECS s" >&2
		repeat "$RUNS" "$B/derpbench" $tls --pairs 10 --size "$size" \
		    --seconds "$SECS" --server-pid "$a_pids" --json \
		    --topology "$topo" --server-log "$dir/a.log" \
		    "127.0.0.1:$port"
	done
fi
if [ -z "${STUN_ONLY:-}" ] && [ "$LAT_SECS" != 0 ]; then
	# Half the maximum: the median packet rate of the same-worker
	# 1,200 B closed-loop runs above (or LAT_RATE).
	topo=same
	[ "$WORKERS" -gt 1 ] || topo=any
	rate=${LAT_RATE:-$(python3 -c 'import json, statistics, sys
r = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
p = [x["pps"] for x in r if x.get("mode") == "relay" and
     x["size"] == 1200 and x["topology"] == sys.argv[2]]
print(int(statistics.median(p) / 2) if p else 0)' "$out.jsonl" "$topo")}
	if [ "$rate" -gt 0 ]; then
		echo "latency: open loop at $rate packets/s, 10 pairs, 1200 B," \
		    "$LAT_RUNS x $LAT_SECS s" >&2
		r=0
		while [ $r -lt "$LAT_RUNS" ]; do
			"$B/derpbench" $tls --pairs 10 --size 1200 \
			    --rate "$rate" --seconds "$LAT_SECS" \
			    --server-pid "$a_pids" --json --topology "$topo" \
			    --server-log "$dir/a.log" "127.0.0.1:$port" \
			    >> "$out.jsonl" || echo "relay.sh: latency run" \
			    "$((r + 1)): nothing arrived" >&2
			r=$((r + 1))
		done
	fi
fi
echo "stun: $RUNS x $SECS s" >&2
repeat "$RUNS" "$B/stunbench" --seconds "$SECS" --server-pid "$a_pids" \
    --json "127.0.0.1:$sport"
if [ -z "${STUN_ONLY:-}" ] && [ "$STORM" -gt 0 ]; then
	# The bound: what one core signs and agrees per second.
	openssl speed -seconds 2 ecdsap256 ecdhx25519 2>/dev/null | awk '
	    /ecdsa \(nistp256\)/ { sign = $(NF - 1) }
	    /ecdh \(X25519\)/ { x = $NF }
	    END { printf("{\"bench\":\"openssl_speed\",\"ecdsap256_sign_per_s\":%s,\"x25519_per_s\":%s}\n", sign, x) }' \
	    >> "$out.jsonl"
	# What the libraries alone cost per handshake, in process.
	"$B/tests/bench/floor" "$dir/cert.pem" "$dir/key.pem" 5000 \
	    >> "$out.jsonl"
	echo "storm: $STORM handshakes, $STORM_C at a time, $RUNS runs" >&2
	r=0
	while [ $r -lt "$RUNS" ]; do
		"$B/derpbench" $tls --storm "$STORM" --concurrency "$STORM_C" \
		    --sources 127.0.0.2-127.0.0.254 --server-pid "$a_pids" \
		    --json "127.0.0.1:$port" >> "$out.jsonl" ||
		    echo "relay.sh: storm run $((r + 1)): a handshake" \
			"failed (see $out.jsonl)" >&2
		r=$((r + 1))
	done
fi
stop_node "$a_pid"

# Latency with the generator off the server's core: one worker (and its
# supervisor) on CPU 0, derpbench on CPU 1; the maximum and half of it
# measured in that setup.  Rows are tagged topology "pinned".
if [ -z "${STUN_ONLY:-}" ] && [ "$LAT_SECS" != 0 ] &&
    [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
	pin() { sed 's/"topology":"[a-z]*"/"topology":"pinned"/'; }
	saved=$WORKERS
	WORKERS=1
	NODE_WRAP="taskset -c 0"
	pport=$(free_port tcp)
	mport=$(free_port tcp)
	METRICS_LISTEN="127.0.0.1:$mport"
	start_node p "$pport" "" ""
	WORKERS=$saved
	NODE_WRAP=""
	METRICS_LISTEN=""
	echo "latency, pinned: closed loop, $RUNS x $SECS s" >&2
	r=0
	while [ $r -lt "$RUNS" ]; do
		taskset -c 1 "$B/derpbench" $tls --pairs 10 --size 1200 \
		    --seconds "$SECS" --server-pid "$node_pids" --json \
		    "127.0.0.1:$pport" | pin >> "$out.jsonl"
		r=$((r + 1))
	done
	rate=$(python3 -c 'import json, statistics, sys
r = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
p = [x["pps"] for x in r if x.get("mode") == "relay" and
     x["topology"] == "pinned"]
print(int(statistics.median(p) / 2) if p else 0)' "$out.jsonl")
	if [ "$rate" -gt 0 ]; then
		echo "latency, pinned: open loop at $rate packets/s," \
		    "$LAT_SECS s" >&2
		turns "http://127.0.0.1:$mport/metrics" > "$dir/turns0"
		taskset -c 1 "$B/derpbench" $tls --pairs 10 --size 1200 \
		    --rate "$rate" --seconds "$LAT_SECS" \
		    --server-pid "$node_pids" --json "127.0.0.1:$pport" |
		    pin >> "$out.jsonl" || :
		turns "http://127.0.0.1:$mport/metrics" > "$dir/turns1"
		# The worker's loop turns during the run, by length.
		python3 -c 'import json, sys
a = dict(l.split() for l in open(sys.argv[1]))
b = dict(l.split() for l in open(sys.argv[2]))
d = {k: int(b[k]) - int(a.get(k, 0)) for k in b}
n = d["+Inf"]
over = {k: n - v for k, v in d.items() if k != "+Inf"}
print(json.dumps({"bench": "loop_turns", "topology": "pinned",
                  "turns": n, "over_s": over}))' "$dir/turns0" \
		    "$dir/turns1" >> "$out.jsonl" || :
	fi
	stop_node "$node_pid"
fi

if [ -z "${STUN_ONLY:-}" ]; then
	# A 2-node region: both nodes list both (self-dial is detected).
	pa=$(free_port tcp)
	pb=$(free_port tcp)
	mesh="mesh = { psk_file = \"$dir/mesh.psk\"; ca_file = \"$dir/cert.pem\";
	    peers = ( \"localhost:$pa/127.0.0.1:$pa\",
		      \"localhost:$pb/127.0.0.1:$pb\" ); };"
	start_node ma "$pa" "" "$mesh"
	ma_pid=$node_pid
	ma_pids=$node_pids
	start_node mb "$pb" "" "$mesh"
	mb_pid=$node_pid
	mb_pids=$node_pids
	echo "relay: cross node (mesh), 10 pairs, 1200 B, $RUNS x $SECS s" >&2
	repeat "$RUNS" "$B/derpbench" $tls --pairs 10 --size 1200 \
	    --seconds "$SECS" --server-pid "$ma_pids,$mb_pids" --json \
	    --topology mesh --peer "127.0.0.1:$pb" "127.0.0.1:$pa"
	stop_node "$ma_pid"
	stop_node "$mb_pid"
fi

if [ -z "${STUN_ONLY:-}" ] && [ "$IDLE" -gt 0 ]; then
	# Each worker must hold its share (SO_REUSEPORT spreads them) in its
	# fd limit: derpd raises the soft limit to the hard one.
	hard=$(ulimit -Hn)
	per=$((IDLE / WORKERS + IDLE / WORKERS / 10 + 100))
	if [ "$hard" != unlimited ] && [ "$per" -gt "$hard" ]; then
		echo "relay.sh: $IDLE idle clients over $WORKERS workers need" \
		    "about $per fds per worker; ulimit -Hn is $hard (raise it," \
		    "or set WORKERS or IDLE)" >&2
		exit 1
	fi
	# derp.max_clients is node-wide; the check above saw to each
	# worker's descriptors.
	maxc=$IDLE
	r=0
	while [ $r -lt "$IDLE_RUNS" ]; do
		echo "idle: $IDLE clients, hold $HOLD s, run $((r + 1))" \
		    "of $IDLE_RUNS" >&2
		port=$(free_port tcp)
		start_node idle "$port" "" \
		    "derp = { keepalive_ms = 5000; max_clients = $maxc; };"
		"$B/derpbench" $tls --idle "$IDLE" --hold "$HOLD" \
		    --sources 127.0.0.2-127.0.0.254 --server-pid "$node_pids" \
		    --json "127.0.0.1:$port" >> "$out.jsonl" ||
		    echo "relay.sh: idle run $((r + 1)): not every client" \
			"stayed up (see $out.jsonl)" >&2
		stop_node "$node_pid"
		r=$((r + 1))
	done
fi

cpu=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
machine="$cpu, $(nproc) CPUs, Linux $(uname -r); load generator on the same cores; $WORKERS workers; runs of $SECS s; derpd $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
python3 tests/bench/summary.py "$out.jsonl" "$machine" "$dir" > "$out.md"
if [ -s "$dir/relay.dat" ]; then
	gnuplot -e "dir='$dir'; out='$out.png'; title='derpd make bench $(date -u +%Y-%m-%d): $cpu, $(nproc) CPUs'" \
	    tests/bench/plot.gp
	echo "plot: $out.png" >&2
fi
cat "$out.md"

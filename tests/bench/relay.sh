#!/bin/sh
# make bench: start derpd over TLS on 127.0.0.1 and relay through it with
# derpbench.  Scenarios: 1 pair and 10 pairs of 1,200-byte packets, and
# 10 pairs of 64-byte packets.  Results (JSON lines and a Markdown table)
# go to bench/results/.  Then STUN: stunbench keeps requests in flight on
# several UDP sockets and reports responses/s.  STUN_ONLY=1 runs just
# that.  Usage: tests/bench/relay.sh BUILD_DIR [SECONDS]
set -eu
B=${1:-build}
SECS=${2:-5}
RUNS=${RUNS:-3}
dir=$(mktemp -d /tmp/derpd-bench-XXXXXX)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$dir/key.pem" -out "$dir/cert.pem" -days 2 -subj /CN=localhost \
	-addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 28443)
sport=$(python3 -c 'import socket; s=socket.socket(type=socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 28478)
cat > "$dir/derpd.conf" <<CONF
hostname = "localhost";
workers = ${WORKERS:-1};
listen = { https = "127.0.0.1:$port"; http = ""; stun = "127.0.0.1:$sport"; };
tls = { certificate = "$dir/cert.pem"; private_key = "$dir/key.pem"; };
node_key_file = ""; runtime_dir = "$dir/run"; user = ""; group = "";
log = { level = "info"; };
metrics = { listen = ""; };
CONF
"$B/derpd" -c "$dir/derpd.conf" 2> "$dir/log" &
pid=$!
i=0
until grep -q node_ready "$dir/log"; do
	i=$((i + 1)); [ $i -lt 500 ] || { cat "$dir/log"; exit 1; }
	sleep 0.01
done
wpid=$(sed -n 's/.*event=worker_started worker=[0-9]* pid=\([0-9]*\).*/\1/p' "$dir/log" | paste -sd, -)
out=bench/results/relay-$(date -u +%Y%m%dT%H%M%SZ)
: > "$out.jsonl"
# With several workers: same-worker against cross-worker pairs.
if [ -n "${STUN_ONLY:-}" ]; then
	scenarios=""
elif [ "${WORKERS:-1}" -gt 1 ]; then
	scenarios="same:10:1200 cross:10:1200"
else
	scenarios="any:1:1200 any:10:1200 any:10:64"
fi
for sc in $scenarios; do
	IFS=: read -r topo pairs size <<EOS
$sc
EOS
	r=0
	while [ $r -lt "$RUNS" ]; do
		"$B/derpbench" --tls --insecure --pairs "$pairs" --size "$size" \
		    --seconds "$SECS" --server-pid "$wpid" --json \
		    --topology "$topo" --server-log "$dir/log" \
		    "127.0.0.1:$port" >> "$out.jsonl"
		r=$((r + 1))
	done
done
python3 - "$out.jsonl" > "$out.md" <<'PY'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1])]
if not rows:
    sys.exit(0)	# STUN_ONLY
print("| topology | pairs | size | runs | packets/s (median) | MB/s | server CPU s/GB | loss % | p50 ms | p99 ms |")
print("|---|---|---|---|---|---|---|---|---|---|")
key = lambda r: (r.get("topology", "any"), r["pairs"], r["size"])
for k in sorted({key(r) for r in rows}):
    g = [r for r in rows if key(r) == k]
    med = lambda f: st.median(r[f] for r in g)
    print(f"| {k[0]} | {k[1]} | {k[2]} | {len(g)} | {med('pps'):.0f} | {med('mbytes_per_s'):.1f} | "
          f"{med('server_cpu_s_per_gb'):.2f} | {med('loss_pct'):.2f} | "
          f"{st.median(r['lat_ms']['p50'] for r in g):.3f} | {st.median(r['lat_ms']['p99'] for r in g):.3f} |")
cpu = {}
for r in rows:
    cpu.setdefault(r.get("topology"), []).append(r["server_cpu_s_per_gb"])
if "same" in cpu and "cross" in cpu:
    print(f"\ncross-worker / same-worker server CPU per GB: {st.median(cpu['cross']) / st.median(cpu['same']):.2f}")
PY
r=0
while [ $r -lt "$RUNS" ]; do
	"$B/stunbench" --seconds "$SECS" --server-pid "$wpid" --json \
	    "127.0.0.1:$sport" >> "$out.stun.jsonl"
	r=$((r + 1))
done
python3 - "$out.stun.jsonl" >> "$out.md" <<'PY'
import json, sys, statistics as st
g = [json.loads(l) for l in open(sys.argv[1])]
med = lambda f: st.median(r[f] for r in g)
print(f"\nSTUN: {med('responses_per_s'):.0f} requests/s answered (median of {len(g)} runs, "
      f"{g[0]['sockets']} sockets x {g[0]['window']} in flight), loss {med('loss_pct'):.3f} %, "
      f"rtt p50 {st.median(r['rtt_ms']['p50'] for r in g):.3f} ms p99 {st.median(r['rtt_ms']['p99'] for r in g):.3f} ms, "
      f"server CPU {med('server_cpu_us_per_req'):.2f} us/request")
PY
cat "$out.md"
if [ "${WORKERS:-1}" -gt 1 ]; then
	echo "accepts per worker:"
	grep -o 'worker=[0-9]* event=client_registered' "$dir/log" | sort | uniq -c
fi
echo "machine: $(nproc) CPUs, $(sed -n 's/model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"

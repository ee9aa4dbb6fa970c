#!/bin/sh
# The record layer A/B (doc/design.md, "TLS record layer"): for
# tls.record_layer = "openssl" and "derpd" in turn, a node of WORKERS (2)
# workers; RUNS (3) same-worker relay runs of SECS (3) s with 10 pairs of
# SIZE (1200) B packets, then IDLE (3000) idle TLS clients held HOLD (3)
# s.  Prints derpbench's JSON lines, each tagged with "layer".
# Usage: tests/bench/record_layer.sh [BUILD_DIR]
set -eu
B=${1:-build}
RUNS=${RUNS:-3}
SECS=${SECS:-3}
SIZE=${SIZE:-1200}
WORKERS=${WORKERS:-2}
IDLE=${IDLE:-3000}
HOLD=${HOLD:-3}
dir=$(mktemp -d /tmp/derpd-rl-XXXXXX)
pid=""
cleanup() {
	[ -z "$pid" ] || { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
	rm -rf "$dir"
}
trap cleanup EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$dir/key.pem" -out "$dir/cert.pem" -days 2 -subj /CN=localhost \
	-addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
start() {	# LAYER PORT
	cat > "$dir/n.conf" <<CONF
hostname = "localhost";
workers = $WORKERS;
listen = { https = "127.0.0.1:$2"; http = ""; stun = ""; };
tls = { certificate = "$dir/cert.pem"; private_key = "$dir/key.pem";
	record_layer = "$1"; };
node_key_file = "$dir/n.key"; runtime_dir = "$dir/run";
user = ""; group = "";
log = { level = "info"; };
metrics = { listen = ""; };
derp = { keepalive_ms = 5000; };
CONF
	"$B/derpd" -c "$dir/n.conf" 2> "$dir/n.log" &
	pid=$!
	i=0
	until grep -q event=node_ready "$dir/n.log" &&
	    [ "$(grep -c event=worker_started "$dir/n.log")" -ge "$WORKERS" ]; do
		i=$((i + 1))
		[ $i -lt 1000 ] && kill -0 $pid 2>/dev/null ||
		    { cat "$dir/n.log" >&2; exit 1; }
		sleep 0.01
	done
	sleep 0.2
	pids=$pid,$(sed -n 's/.*event=worker_started worker=[0-9]* pid=\([0-9]*\).*/\1/p' \
	    "$dir/n.log" | paste -sd, -)
}
stop() {
	kill "$pid"
	wait "$pid"
	pid=""
}
tls="--tls --ca-file $dir/cert.pem --server-name localhost"
for layer in openssl derpd; do
	p=$(port)
	start "$layer" "$p"
	r=0
	while [ $r -lt "$RUNS" ]; do
		"$B/derpbench" $tls --pairs 10 --size "$SIZE" --seconds "$SECS" \
		    --server-pid "$pids" --json --topology same \
		    --server-log "$dir/n.log" "127.0.0.1:$p" |
		    sed "s/^{/{\"layer\":\"$layer\",/"
		r=$((r + 1))
	done
	stop
	if [ "$IDLE" -gt 0 ]; then
		p=$(port)
		start "$layer" "$p"
		"$B/derpbench" $tls --idle "$IDLE" --hold "$HOLD" \
		    --server-pid "$pids" --json "127.0.0.1:$p" |
		    sed "s/^{/{\"layer\":\"$layer\",/"
		stop
	fi
done

# Shared by the make bench scripts (sourced): a scratch directory with a
# P-256 certificate, free ports, and derpd nodes started and stopped.
# The caller sets B (build dir), WORKERS and ME (its name, for messages)
# before sourcing; nodes started are killed on exit.
dir=$(mktemp -d "/tmp/derpd-$ME-XXXXXX")
started=""
NODE_WRAP=""
METRICS_LISTEN=""
cleanup() {
	for p in $started; do kill "$p" 2>/dev/null || :; done
	for p in $started; do wait "$p" 2>/dev/null || :; done
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$dir/key.pem" -out "$dir/cert.pem" -days 2 -subj /CN=localhost \
	-addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null

free_port() {	# tcp | udp
	python3 -c 'import socket, sys
s = socket.socket(type=socket.SOCK_DGRAM if sys.argv[1] == "udp" else socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' "$1"
}

# start_node NAME PORT STUN_PORT EXTRA: derpd with dir/NAME.conf, its log
# in dir/NAME.log, run under $NODE_WRAP (e.g. taskset), metrics on
# $METRICS_LISTEN ("" = none); sets $node_pid
# and $node_pids (supervisor + workers).
start_node() {
	cat > "$dir/$1.conf" <<CONF
hostname = "localhost";
workers = $WORKERS;
listen = { https = "127.0.0.1:$2"; http = ""; stun = "$3"; };
tls = { certificate = "$dir/cert.pem"; private_key = "$dir/key.pem"; };
node_key_file = "$dir/$1.key"; runtime_dir = "$dir/run-$1";
user = ""; group = "";
log = { level = "info"; };
metrics = { listen = "$METRICS_LISTEN"; };
$4
CONF
	$NODE_WRAP "$B/derpd" -c "$dir/$1.conf" 2> "$dir/$1.log" > /dev/null &
	node_pid=$!
	started="$started $node_pid"
	i=0
	until grep -q event=node_ready "$dir/$1.log"; do
		i=$((i + 1))
		if [ $i -ge 1000 ] || ! kill -0 $node_pid 2>/dev/null; then
			echo "$ME: derpd $1 did not start:" >&2
			cat "$dir/$1.log" >&2
			exit 1
		fi
		sleep 0.01
	done
	node_pids=$node_pid,$(sed -n \
	    's/.*event=worker_started worker=[0-9]* pid=\([0-9]*\).*/\1/p' \
	    "$dir/$1.log" | paste -sd, -)
}

# turns URL: the loop turn histogram's buckets, one "le count" a line.
turns() {
	curl -s "$1" | sed -n \
	    's/^derpd_loop_turn_seconds_bucket{le="\([^"]*\)"} \([0-9]*\)$/\1 \2/p'
}

stop_node() {	# PID: 0, or 1 with a message if derpd did not exit 0
	kill "$1"
	rc=0
	wait "$1" || rc=$?
	started=$(echo "$started" | sed "s/ $1\b//")
	[ $rc -eq 0 ] || { echo "$ME: derpd $1 exited with $rc" >&2; return 1; }
}

#!/usr/bin/env python3
"""make bench: medians of the raw JSON lines (derpbench relay and idle
rows, stunbench rows) as a Markdown report on stdout, and the data files
tests/bench/plot.gp draws.

usage: summary.py RESULTS.jsonl MACHINE_LINE PLOT_DATA_DIR
"""
import json
import os
import statistics as st
import sys

TOPO = {"same": "same worker", "cross": "cross worker",
        "mesh": "cross node (mesh)", "any": "any worker",
        "pinned": "1 worker on CPU 0, generator on CPU 1"}


def med(rows, *path):
    vals = []
    for r in rows:
        v = r
        for p in path:
            v = v[p]
        if v is not None:
            vals.append(v)
    return st.median(vals) if vals else float("nan")


def spread(rows, *path):
    vals = []
    for r in rows:
        v = r
        for p in path:
            v = v[p]
        vals.append(v)
    return min(vals), max(vals)


def main():
    src, machine, datadir = sys.argv[1], sys.argv[2], sys.argv[3]
    rows = [json.loads(line) for line in open(src) if line.strip()]
    relay = [r for r in rows if r.get("mode") == "relay"]
    idle = [r for r in rows if r.get("mode") == "idle"]
    stun = [r for r in rows if r.get("bench") == "stun"]
    storm = [r for r in rows if r.get("mode") == "storm"]
    lat = [r for r in rows if r.get("mode") == "latency"]
    speed = [r for r in rows if r.get("bench") == "openssl_speed"]
    floor = [r for r in rows if r.get("bench") == "handshake_floor"]
    turns = [r for r in rows if r.get("bench") == "loop_turns"]
    out = []
    out.append(f"Machine: {machine}")
    out.append("")
    if relay:
        groups = {}
        for r in relay:
            groups.setdefault((r["topology"], r["size"], r["pairs"]),
                              []).append(r)
        order = sorted(groups, key=lambda k: (k[0] == "mesh", -k[1],
                                              k[0] != "same", k[2]))
        out.append("Relay over TLS, closed loop (window "
                   f"{relay[0]['window']} per pair), medians of each "
                   "scenario's runs:")
        out.append("")
        out.append("| scenario | pairs | packet | runs | packets/s | MB/s "
                   "| Gbit/s | server CPU s/GB | loss % | p50 ms | p90 ms "
                   "| p99 ms | max ms |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        with open(os.path.join(datadir, "relay.dat"), "w") as dat:
            dat.write("# label pps pps_min pps_max cpu_gb p50 p90 p99\n")
            for k in order:
                g = groups[k]
                lo, hi = spread(g, "pps")
                out.append(
                    f"| {TOPO.get(k[0], k[0])} | {k[2]} | {k[1]} B "
                    f"| {len(g)} | {med(g, 'pps'):.0f} "
                    f"| {med(g, 'mbytes_per_s'):.1f} "
                    f"| {med(g, 'gbps'):.3f} "
                    f"| {med(g, 'server_cpu_s_per_gb'):.2f} "
                    f"| {med(g, 'loss_pct'):.3f} "
                    f"| {med(g, 'lat_ms', 'p50'):.3f} "
                    f"| {med(g, 'lat_ms', 'p90'):.3f} "
                    f"| {med(g, 'lat_ms', 'p99'):.3f} "
                    f"| {med(g, 'lat_ms', 'max'):.3f} |")
                label = f"{TOPO.get(k[0], k[0])}\\n{k[1]} B"
                dat.write(f"\"{label}\" {med(g, 'pps'):.0f} {lo:.0f} "
                          f"{hi:.0f} {med(g, 'server_cpu_s_per_gb'):.3f} "
                          f"{med(g, 'lat_ms', 'p50'):.3f} "
                          f"{med(g, 'lat_ms', 'p90'):.3f} "
                          f"{med(g, 'lat_ms', 'p99'):.3f}\n")
        cpu = {k[0]: med(groups[k], "server_cpu_s_per_gb")
               for k in groups if k[1] == 1200}
        if "same" in cpu and "cross" in cpu:
            out.append("")
            out.append("Server CPU per GB at 1,200 B, cross worker / same "
                       f"worker: {cpu['cross'] / cpu['same']:.2f}"
                       + (f"; cross node / same worker: "
                          f"{cpu['mesh'] / cpu['same']:.2f} (both nodes' "
                          "CPU)" if "mesh" in cpu else ""))
    if lat:
        out.append("")
        out.append(f"Latency over TLS, open loop at a fixed rate ({lat[0]['pairs']} "
                   f"pairs, {lat[0]['size']} B, {lat[0]['seconds']:.0f} s "
                   "runs, one-way, send time to arrival; target: p99 at "
                   "most 2x p50, no stall over 10 ms), each run:")
        out.append("")
        out.append("| scenario | rate packets/s | received/s | p50 ms "
                   "| p99 ms | p99/p50 | p99.9 ms | max ms | stalls>10ms "
                   "(server) | slow packets | generator lateness p99 / "
                   "max ms | server run-queue wait ms |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in lat:
            g = r["generator"]
            behind = " (fell behind)" if g["fell_behind"] else ""
            out.append(
                f"| {TOPO.get(r['topology'], r['topology'])} "
                f"| {r['rate']:.0f} | {r['pps']:.0f} "
                f"| {r['lat_ms']['p50']:.3f} | {r['lat_ms']['p99']:.3f} "
                f"| {r['p99_over_p50']:.2f} | {r['lat_ms']['p999']:.3f} "
                f"| {r['lat_ms']['max']:.3f} "
                f"| {r['stalls']} ({r['stalls_server']}) | {r['slow']} "
                f"| {g['late_ms']['p99']:.3f} / {g['late_ms']['max']:.3f}"
                f"{behind} | {r.get('server_runq_wait_ms') or 0:.1f} |")
        for r in turns:
            o = r["over_s"]
            out.append("")
            out.append(
                f"The worker's own loop turns during the "
                f"{TOPO.get(r['topology'], r['topology'])} run "
                f"(derpd_loop_turn_seconds): {r['turns']} turns, "
                f"{o.get('0.001000', 0)} over 1 ms, "
                f"{o.get('0.005000', 0)} over 5 ms, "
                f"{o.get('0.010000', 0)} over 10 ms")
    if idle:
        out.append("")
        out.append(f"Idle clients over TLS, held {idle[0]['hold_s']:.0f} s "
                   "on a fresh node each run, medians:")
        out.append("")
        out.append("| clients | runs | connected | up after hold | "
                   "connects/s | server CPU ms/connect | server RSS before "
                   "MiB | RSS held MiB | KiB per connection |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        out.append(
            f"| {idle[0]['clients']} | {len(idle)} "
            f"| {min(r['connected'] for r in idle)} (min) "
            f"| {min(r['alive'] for r in idle)} (min) "
            f"| {med(idle, 'connects_per_s'):.0f} "
            f"| {med(idle, 'server_cpu_ms_per_connect'):.3f} "
            f"| {med(idle, 'server_rss_kib_before') / 1024:.1f} "
            f"| {med(idle, 'server_rss_kib_after') / 1024:.1f} "
            f"| {med(idle, 'rss_kib_per_conn'):.2f} |")
        with open(os.path.join(datadir, "idle.dat"), "w") as dat:
            dat.write("# run kib_per_conn connects_per_s\n")
            for i, r in enumerate(idle, 1):
                dat.write(f"{i} {r['rss_kib_per_conn'] or 0:.3f} "
                          f"{r['connects_per_s']:.0f}\n")
    if stun:
        out.append("")
        out.append(
            f"STUN: {med(stun, 'responses_per_s'):.0f} requests/s answered "
            f"(median of {len(stun)} runs, {stun[0]['sockets']} sockets x "
            f"{stun[0]['window']} in flight), loss "
            f"{med(stun, 'loss_pct'):.3f} %, rtt p50 "
            f"{med(stun, 'rtt_ms', 'p50'):.3f} ms p99 "
            f"{med(stun, 'rtt_ms', 'p99'):.3f} ms, server CPU "
            f"{med(stun, 'server_cpu_us_per_req'):.2f} us/request")
    if storm:
        cpu = med(storm, "server_cpu_ms_per_handshake")
        out.append("")
        out.append(
            f"Reconnect storm: {med(storm, 'handshakes_per_s'):.0f} "
            f"handshakes/s (median of {len(storm)} runs of "
            f"{storm[0]['handshakes']}, {storm[0]['concurrency']} at a "
            f"time, failed {max(r['failed'] for r in storm)} at most), "
            f"latency p50 {med(storm, 'latency_ms_p50'):.2f} ms p99 "
            f"{med(storm, 'latency_ms_p99'):.2f} ms; server CPU "
            f"{cpu:.3f} ms per handshake = {1e3 / cpu:.0f} handshakes/s "
            f"per server core; client CPU "
            f"{med(storm, 'client_cpu_ms_per_handshake'):.3f} ms each on "
            "the same cores")
        if speed:
            s = speed[-1]
            bound = 1 / (1 / s["ecdsap256_sign_per_s"] +
                         2 / s["x25519_per_s"])
            out.append(
                f"Bound from openssl speed ({s['ecdsap256_sign_per_s']:.0f} "
                f"P-256 signs/s, {s['x25519_per_s']:.0f} X25519/s, one "
                f"sign + two X25519 per handshake): {bound:.0f} "
                f"handshakes/s per core; measured "
                f"{100 * 1e3 / cpu / bound:.0f} % of it")
        if speed and floor:
            f = floor[-1]
            lib = f["openssl_us"] + f["derp_us"]
            out.append(
                f"Library floor, in process with no socket "
                f"(tests/bench/floor.c, {f['handshakes']} handshakes): "
                f"OpenSSL's server handshake with derpd's context "
                f"{f['openssl_us']:.0f} us (the key log callback the "
                f"record layer needs: {f['keylog_us']:.0f} us of it), the "
                f"DERP box {f['derp_us']:.0f} us; {lib:.0f} us = "
                f"{1e6 / lib:.0f} handshakes/s per core, "
                f"{100 * 1e6 / lib / bound:.0f} % of the bound before "
                f"any socket or derpd code; the storm's server CPU is "
                f"{cpu * 1e3 / lib:.2f}x the floor")
    print("\n".join(out))


if __name__ == "__main__":
    main()

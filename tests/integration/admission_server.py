#!/usr/bin/env python3
"""Admission controller for derpd's integration tests (PROTOCOL.md 5.14).

    admission_server.py PORT MAPFILE

Listens on 127.0.0.1:PORT.  A POST must carry derpd's request body,
{"NodePublic":"nodekey:<64 hex>","Source":"<ip>"}; a malformed one gets
400.  The path picks the answer:

    /allow    200 {"Allow":true}
    /deny     200 {"Allow":false}
    /500      500
    /badjson  200 with a body that is not JSON
    /hang     accept, read the request, never answer
    /bykey    per node key, from MAPFILE (re-read each request): lines
              "nodekey:<hex> allow|deny|500|badjson|hang"; unknown: deny

Every request is appended to MAPFILE.log as "<NodePublic> <Source>".
"""
import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1])
MAPFILE = sys.argv[2]
FOREVER = threading.Event()
KEY = re.compile(r"^nodekey:[0-9a-f]{64}$")


def by_key(key):
    try:
        with open(MAPFILE) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[0] == key:
                    return parts[1]
    except FileNotFoundError:
        pass
    return "deny"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n) if 0 < n <= 65536 else b""
        try:
            req = json.loads(raw)
            key, src = req["NodePublic"], req["Source"]
            if not KEY.match(key) or not isinstance(src, str):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            self.answer(400, b"bad request\n")
            return
        with open(MAPFILE + ".log", "a") as f:
            f.write("%s %s\n" % (key, src))
        what = self.path.strip("/")
        if what == "bykey":
            what = by_key(key)
        if what == "allow":
            self.answer(200, b'{"Allow":true}')
        elif what == "deny":
            self.answer(200, b'{"allow":false}')
        elif what == "500":
            self.answer(500, b'{"Allow":true}')
        elif what == "badjson":
            self.answer(200, b"<html>Allow</html>")
        elif what == "hang":
            FOREVER.wait()
        else:
            self.answer(404, b"")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


if __name__ == "__main__":
    Server(("127.0.0.1", PORT), Handler).serve_forever()

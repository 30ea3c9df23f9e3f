#!/usr/bin/env python3
"""A static HTTP server for tests of slow peers (t45-limits.sh).

Usage: trickle_http.py DIR PORTFILE
Serves DIR on 127.0.0.1 (port 0; the port is written to PORTFILE). A file
named in DIR/.slow (one name a line) is answered with its full
Content-Length and then one byte every half second (a missing one as if it
had a million bytes "x"). Every request
is logged on stdout as "GET /name" so tests can count them.
"""
import http.server
import os
import sys
import time

ROOT, PORTFILE = sys.argv[1], sys.argv[2]


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        name = self.path.lstrip("/")
        print(f"GET /{name}", flush=True)
        path = os.path.join(ROOT, name)
        try:
            slow = open(os.path.join(ROOT, ".slow")).read().split()
        except FileNotFoundError:
            slow = []
        if name in slow:
            # The file's own bytes if it exists (a valid prefix), else "x"s.
            data = open(path, "rb").read() if os.path.isfile(path) else b"x" * 1000000
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                for i in range(len(data)):
                    self.wfile.write(data[i:i + 1])
                    self.wfile.flush()
                    time.sleep(0.5)
            except OSError:
                pass
            return
        if ".." in name or not os.path.isfile(path):
            self.send_error(404)
            return
        data = open(path, "rb").read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
with open(PORTFILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(PORTFILE + ".tmp", PORTFILE)
server.serve_forever()

#!/usr/bin/env python3
"""s3_proxy.py UPSTREAM PORTFILE LOG - a counting HTTP proxy between storefs
and an S3 server, for tests that count requests from outside storefs.

Listens on a free loopback port (written to PORTFILE once listening) and
forwards every request to UPSTREAM (http://HOST:PORT) as it came, Host
header included (SigV4 signs it, so the server checks the signature against
the proxy's address, which is what storefs signed). Appends one line per
request to LOG: "METHOD PATH STATUS REQUEST-BODY-BYTES RESPONSE-BODY-BYTES
IN-FLIGHT", IN-FLIGHT being how many requests of that method the proxy was
serving when this one came in, itself included.

Faults: while the file LOG.fail holds a line "METHOD STATUS SKIP", the
requests of METHOD after the first SKIP since the file appeared are
answered STATUS (no body, nothing forwarded); "METHOD drop SKIP" closes
their connections instead.
"""
import http.client
import os
import http.server
import sys
import threading
import urllib.parse

UPSTREAM = urllib.parse.urlsplit(sys.argv[1])
LOG = open(sys.argv[3], "a", buffering=1)
LOG_LOCK = threading.Lock()
HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "upgrade",
       "expect"}  # the proxy answers 100-continue itself


IN_FLIGHT = {}  # method -> requests being served; LOG_LOCK
SEEN = {}  # (LOG.fail version, method) -> requests; LOG_LOCK


def fault(method):
    """The fault LOG.fail asks for on this request: None, a status, or "drop"."""
    try:
        with open(sys.argv[3] + ".fail") as f:
            st = os.fstat(f.fileno())
            m, what, skip = f.read().split()
    except (OSError, ValueError):
        return None
    if m != method:
        return None
    # counted per version of the file, so a new one starts over
    key = (st.st_ino, st.st_mtime_ns, m)
    SEEN[key] = SEEN.get(key, 0) + 1
    return None if SEEN[key] <= int(skip) else what


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def forward(self):
        with LOG_LOCK:
            IN_FLIGHT[self.command] = IN_FLIGHT.get(self.command, 0) + 1
            flight = IN_FLIGHT[self.command]
            what = fault(self.command)
        try:
            self.serve(flight, what)
        finally:
            with LOG_LOCK:
                IN_FLIGHT[self.command] -= 1

    def serve(self, flight, what):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        if what is not None:
            with LOG_LOCK:
                LOG.write(f"{self.command} {self.path} {what} {n} 0 {flight}\n")
            if what == "drop":
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.send_response(int(what))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        up = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=120)
        try:
            up.request(self.command, self.path, body=body, headers=headers)
            res = up.getresponse()
            data = res.read()
        finally:
            up.close()
        self.send_response(res.status)
        for k, v in res.getheaders():
            if k.lower() not in HOP and k.lower() != "content-length":
                self.send_header(k, v)
        # HEAD: the object's length, with no body
        length = res.getheader("Content-Length") if self.command == "HEAD" else len(data)
        self.send_header("Content-Length", str(length or 0))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        with LOG_LOCK:
            LOG.write(f"{self.command} {self.path} {res.status} {n} {len(data)} {flight}\n")

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = forward


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
server.daemon_threads = True
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
server.serve_forever()

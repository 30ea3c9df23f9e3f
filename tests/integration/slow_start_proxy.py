#!/usr/bin/env python3
"""slow_start_proxy.py SOCKET PORTFILE DELAY - a TCP proxy on a free loopback port
(written to PORTFILE once listening) to the Unix socket SOCKET, which holds back
the first bytes of each connection's answer for DELAY seconds: a server slow to
complete the HTTP/2 handshake, as a loaded machine makes one (t62).
"""
import os
import socket
import sys
import threading
import time


def pipe(src, dst, delay):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if delay:
                time.sleep(delay)
                delay = 0
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def main():
    target, portfile, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(ls.getsockname()[1]))
    os.rename(portfile + ".tmp", portfile)
    while True:
        client, _ = ls.accept()
        server = socket.socket(socket.AF_UNIX)
        server.connect(target)
        threading.Thread(target=pipe, args=(client, server, 0), daemon=True).start()
        threading.Thread(target=pipe, args=(server, client, delay), daemon=True).start()


main()

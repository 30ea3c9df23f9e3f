#!/usr/bin/env python3
"""nar_dirs.py N [FILE] - writes a valid NAR with N distinct leaf
directories (and about sqrt(N) directories above them) to FILE or standard
output: the shape that makes ingest memory grow with the directory count.
Each leaf holds one symlink to its own number, so no two leaves are equal;
each directory above them holds a small file of its own too (one blob
each). Streams: constant memory."""
import math
import struct
import sys


def s(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack("<Q", len(b)) + b + b"\0" * (-len(b) % 8)


def main():
    n = int(sys.argv[1])
    out = open(sys.argv[2], "wb") if len(sys.argv) > 2 else sys.stdout.buffer
    per = max(1, math.isqrt(n))
    groups = (n + per - 1) // per
    w = out.write
    w(s("nix-archive-1") + s("(") + s("type") + s("directory"))
    leaf_head = s("node") + s("(") + s("type") + s("directory") + s("entry") + s("(") + \
        s("name") + s("l") + s("node") + s("(") + s("type") + s("symlink") + s("target")
    leaf_tail = s(")") + s(")") + s(")") + s(")")
    i = 0
    for g in range(groups):
        w(s("entry") + s("(") + s("name") + s("g%07d" % g) + s("node") + s("(") +
          s("type") + s("directory"))
        buf = []
        for k in range(min(per, n - i)):
            buf.append(s("entry") + s("(") + s("name") + s("d%07d" % k) + leaf_head +
                       s(str(i)) + leaf_tail)
            i += 1
        w(b"".join(buf))
        w(s("entry") + s("(") + s("name") + s("f") + s("node") + s("(") + s("type") +
          s("regular") + s("contents") + s("group %d\n" % g) + s(")") + s(")"))
        w(s(")") + s(")"))
    w(s(")"))
    out.flush()


main()

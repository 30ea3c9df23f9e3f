#!/usr/bin/env python3
"""sync_order.py STORE STRACE_LOG - the durability promise of an import
(docs/store-format.md "Durability"), read from `strace -f -y -ttt -e
trace=fsync,fdatasync` of it: every blob file now in STORE, its shard
directory blobs/ab/cd, blobs/ab and blobs/ were each fsynced with success,
by any thread, before the last commit of the index (fdatasync of
db/data.mdb, the one that registers the path) began. Prints what is missing
or late and exits 1."""
import os
import re
import sys

store, log = os.path.realpath(sys.argv[1]), sys.argv[2]
call = re.compile(r"^(\d+) +([\d.]+) (fsync|fdatasync)\(\d+<([^>]*)>(.*)$")
resumed = re.compile(r"^(\d+) +([\d.]+) <\.\.\. (fsync|fdatasync) resumed>.*= (-?\d+)")
pending = {}  # pid -> (name, path)
done = {}  # path -> end time of a successful fsync
commit_start = None
for line in open(log):
    m = call.match(line)
    if m:
        pid, t, name, path, rest = m.groups()
        if name == "fdatasync" and path == os.path.join(store, "db/data.mdb"):
            commit_start = float(t)
        if "<unfinished" in rest:
            pending[pid] = (name, path)
        elif name == "fsync" and rest.rstrip().endswith("= 0"):
            done[path] = float(t)
        continue
    m = resumed.match(line)
    if m and m.group(1) in pending:
        name, path = pending.pop(m.group(1))
        if name == "fsync" and m.group(4) == "0":
            done[path] = float(m.group(2))

need = set()
blobs = os.path.join(store, "blobs")
for top, _, files in os.walk(blobs):
    for f in files:
        p = os.path.join(top, f)
        need |= {p, os.path.dirname(p), os.path.dirname(os.path.dirname(p)), blobs}
bad = []
if commit_start is None:
    bad.append("no commit of the index")
for p in sorted(need):
    if p not in done:
        bad.append(f"never fsynced: {p}")
    elif commit_start is not None and done[p] > commit_start:
        bad.append(f"fsynced after the index commit began: {p}")
for b in bad:
    print(b, file=sys.stderr)
if not need:
    print("no blob file in the store", file=sys.stderr)
sys.exit(1 if bad or not need else 0)

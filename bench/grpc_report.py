"""grpc_report.py - the gRPC section of bench/report.py (the measurements of bench/grpc).

Issue 15's goals are ratios to the local mount (storefs_kopen, else storefs), not to native:
over loopback, cold tar within 2x of the local mount, warm reads equal to it (read as
<= 1.05x, the noise floor of the tree tests), and GRPC_MOUNTS mounts read at once without errors.
"""
import json
import os

GRPC_VARIANTS = ["grpc_unix", "grpc_tcp", "grpc_unix_cache", "grpc_tcp_cache"]
GOALS = {("tar", "cold"): 2.0, ("find", "warm"): 1.05, ("du", "warm"): 1.05,
         ("tar", "warm"): 1.05, ("dd", "warm"): 1.05}


def _load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def local_variant(variants):
    return next((v for v in ("storefs_kopen", "storefs") if v in variants), None)


def _cell(med, key, base):
    s, b = med.get(key), med.get(key[:2] + (base,))
    if s is None:
        return "–", None
    r = s / b if b else None
    ms = s * 1000
    t = f"{ms:.1f} ms" if ms < 100 else f"{ms:.0f} ms"
    return (f"{t} ({r:.2f}x)" if r is not None else t), r


def _lookup(jdir, v):
    """Median over the fresh mounts of the one cold lookup at the root, in microseconds."""
    try:
        lines = open(os.path.join(jdir, f"grpc-lookup-{v}.txt")).read().split("\n")
    except OSError:
        return None
    ns = sorted(int(kv.split("=")[1]) for line in lines for kv in line.split()
                if kv.startswith("median_ns="))
    return (len(ns), ns[len(ns) // 2] / 1000) if ns else None


def _throughput(jdir, big_mib):
    d = _load(os.path.join(jdir, "grpc-blob.json"))
    if not d:
        return []
    parts = [f"{r['command']} {big_mib / r['median']:.0f} MiB/s ({r['median']:.2f} s)"
             for r in d.get("results", []) if r.get("median")]
    return ["- Blob read throughput, `storefs cat` of big/r1.bin (every byte verified): " +
            ", ".join(parts) + "."] if parts else []


def _many(jdir):
    d = _load(os.path.join(jdir, "grpc-many.json"))
    if not d:
        return []
    mib = (d["bytes_each"] + d["big_bytes"]) * d["mounts"] / 2**20
    ok = "met" if d["errors"] == 0 else "**not met**"
    return [f"- {d['mounts']} mounts of one daemon (half unix, half TCP) read at once, each "
            f"tar of small/ and sha256 of big/r1.bin: {d['errors']} errors ({ok}), "
            f"{d['stderr_lines']} lines on stderr, {d['wall_s']:.1f} s for {mib:.0f} MiB "
            f"({mib / d['wall_s']:.0f} MiB/s together)."]


def grpc_lines(jdir, med, variants, meta):
    gv = [v for v in GRPC_VARIANTS if v in variants]
    base = local_variant(variants)
    if not gv or not base:
        return []
    lines = ["", f"## Mounts over storefs daemon: median (ratio to the local mount, {base})", "",
             "| test | " + " | ".join([base] + gv) + " |", "|---" * (len(gv) + 2) + "|"]
    ratios = {}
    for t in ("find", "du", "tar", "dd"):
        for m in ("cold", "warm"):
            cells = [_cell(med, (t, m, base), "native")[0].split(" (")[0]]
            for v in gv:
                c, r = _cell(med, (t, m, v), base)
                cells.append(c)
                ratios[(t, m, v)] = r
            lines.append(f"| {t} {m} | " + " | ".join(cells) + " |")
    lines += ["", "| goal (issue 15, ratio to the local mount) | limit | " + " | ".join(gv) + " |",
              "|---|---" + "|---" * len(gv) + "|"]
    for (t, m), lim in GOALS.items():
        cells = []
        for v in gv:
            r = ratios.get((t, m, v))
            cells.append("–" if r is None else f"{r:.2f}x {'met' if r <= lim else '**not met**'}")
        lines.append(f"| {t} {m} | ≤ {lim}x | " + " | ".join(cells) + " |")
    lines.append("")
    for v in [base] + gv:
        lk = _lookup(jdir, v)
        if lk:
            lines.append(f"- One cold lookup of the store path at the root of a fresh mount "
                         f"({v}): median {lk[1]:.0f} µs over {lk[0]} mounts.")
    lines += _throughput(jdir, meta.get("big_mib", 0)) + _many(jdir)
    return lines

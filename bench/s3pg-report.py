#!/usr/bin/env python3
"""s3pg-report.py JSON_DIR OUT - the result of bench/s3pg: OUT.md (tables) and OUT.json
(every figure, for scripts) from the hyperfine exports and counts in JSON_DIR."""
import json
import os
import sys

J, OUT = sys.argv[1], sys.argv[2]
GIB, MIB = 1 << 30, 1 << 20


def load(name):
    path = os.path.join(J, name + ".json")
    return json.load(open(path)) if os.path.exists(path) else None


def median(name, command=None):
    """The median seconds of a hyperfine export (of COMMAND if it holds several)."""
    d = load(name)
    if not d:
        return None
    for r in d["results"]:
        if command is None or r["command"] == command:
            return r["median"]
    return None


def ms(t):
    return "–" if t is None else (f"{t * 1000:.0f} ms" if t < 10 else f"{t:.2f} s")


def rate(nbytes, t):
    return None if not t else nbytes / MIB / t


def fmt_rate(r):
    return "–" if r is None else f"{r:.0f} MiB/s"


meta = load("meta") or {}
res = {"meta": meta}
lines = [f"# storefs on S3 (Ceph radosgw) + PostgreSQL vs the local store"
         f"{' (quick)' if meta.get('quick') else ''}", "",
         f"storefs {meta.get('rev')}; load average at the end {meta.get('loadavg')} "
         f"(2 vCPUs shared: compare ratios within this run only). Tree: {meta.get('files')} files, "
         f"small/ {meta.get('small_bytes', 0) / MIB:.0f} MiB, big/ "
         f"{meta.get('big_bytes', 0) / MIB:.0f} MiB.", ""]
tree_bytes = meta.get("small_bytes", 0) + meta.get("big_bytes", 0)

# Import throughput.
t_local, t_s3 = median("import", "local"), median("import", "s3pg")
res["import"] = {"local_s": t_local, "s3pg_s": t_s3}
lines += ["## Import (fresh store each run, input in page cache)", "",
          "| store | median | MiB/s | vs local |", "|---|---|---|---|"]
for name, t in (("local", t_local), ("S3 + PostgreSQL", t_s3)):
    ratio = f"{t / t_local:.2f}x time" if t and t_local else "–"
    lines.append(f"| {name} | {ms(t)} | {fmt_rate(rate(tree_bytes, t))} | {ratio} |")
lines.append("")

# Requests and bytes per GiB imported; dedup of a 1% change.
v1, v2 = load("import-v1"), load("import-v2")
if v1:
    gib = v1["tree_bytes"] / GIB
    per = {k: v / gib for k, v in v1["requests"].items()}
    res["per_gib"] = {"requests": per, "bytes_up": v1["bytes_up"] / gib,
                      "bytes_down": v1["bytes_down"] / gib, "pg_commits": v1["pg_commits"] / gib,
                      "pg_rows": v1["pg_rows"] / gib}
    lines += ["## Requests and bytes per GiB imported (first import into an empty bucket)", "",
              "Counted by a proxy in front of radosgw (S3) and by `pg_stat_database` (PostgreSQL).",
              "", "| what | per GiB of file contents | in this import |", "|---|---|---|"]
    for k in sorted(v1["requests"]):
        lines.append(f"| S3 `{k}` | {per[k]:.0f} | {v1['requests'][k]} |")
    total = sum(v1["requests"].values())
    lines.append(f"| S3 requests, all | {total / gib:.0f} | {total} |")
    lines.append(f"| S3 bytes sent | {v1['bytes_up'] / gib / GIB:.3f} GiB | "
                 f"{v1['bytes_up'] / MIB:.1f} MiB |")
    lines.append(f"| S3 bytes received | {v1['bytes_down'] / gib / MIB:.2f} MiB | "
                 f"{v1['bytes_down'] / MIB:.2f} MiB |")
    lines.append(f"| PostgreSQL transactions | {v1['pg_commits'] / gib:.0f} | {v1['pg_commits']} |")
    lines.append(f"| PostgreSQL rows inserted | {v1['pg_rows'] / gib:.0f} | {v1['pg_rows']} |")
    lines.append("")
if v1 and v2:
    logical = v1["tree_bytes"] + v2["tree_bytes"]
    stored = v1["bytes_up"] + v2["bytes_up"]
    res["dedup"] = {"v2_bytes_up": v2["bytes_up"], "v2_tree_bytes": v2["tree_bytes"],
                    "ratio": logical / stored if stored else None}
    puts = sum(v for k, v in v2["requests"].items() if k.startswith("PUT 200"))
    lines += ["## Dedup: the tree, then the tree with 1% of its files changed", "",
              "Version 2: a line appended to every 100th file of small/, 1 MiB rewritten in the "
              "middle of big/r1.bin; imported into the same bucket after version 1.", "",
              f"- Version 2 sent {v2['bytes_up'] / MIB:.2f} MiB in {puts} new objects "
              f"(`PUT 200`) for a tree of {v2['tree_bytes'] / MIB:.0f} MiB "
              f"({100 * v2['bytes_up'] / v2['tree_bytes']:.2f}%), "
              f"{sum(v2['requests'].values())} requests in all.",
              f"- Dedup ratio of the two versions (contents of both / bytes sent for both): "
              f"**{logical / stored:.2f}** (2.0 would be ideal).", ""]

# Reads through the mounts.
variants = ["local", "s3_empty", "s3_cached", "s3_nocache"]
sizes = {"tar": meta.get("small_bytes", 0), "dd": meta.get("big_bytes", 0)}
res["reads"] = {}
lines += ["## Reads through the mount", "",
          "`local` = the local store; `s3_empty` = S3 + PostgreSQL with `--cache` emptied before "
          "each cold run; `s3_cached` = with a `--cache` filled beforehand; `s3_nocache` = without `--cache`. Cold = unmount, "
          "`drop_caches`, mount. Median (ratio to local) and MiB/s.", "",
          "| test | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]
for test, mode in (("tar", "cold"), ("dd", "cold"), ("tar", "warm")):
    cells = []
    base = median(f"{test}-{mode}-local")
    for v in variants:
        t = median(f"{test}-{mode}-{v}")
        res["reads"][f"{test}-{mode}-{v}"] = t
        if t is None:
            cells.append("–")
            continue
        ratio = f" ({t / base:.2f}x)" if base else ""
        cells.append(f"{ms(t)}{ratio}, {fmt_rate(rate(sizes[test], t))}")
    lines.append(f"| {test} {mode} | " + " | ".join(cells) + " |")
lines.append("")

# The engine alone.
rados = load("rados") or {}
res["rados"] = rados
cold_dd = rate(sizes["dd"], median("dd-cold-s3_empty"))
cold_tar = rate(sizes["tar"], median("tar-cold-s3_empty"))
lines += ["## The engine alone (`rados bench`, 4 MiB objects, same run)", "",
          "| rados bench | MiB/s |", "|---|---|"]
for k, name in (("write", "write, 16 in flight"), ("seq16", "sequential read, 16 in flight"),
                ("seq1", "sequential read, 1 in flight")):
    lines.append(f"| {name} | {rados[k]:.0f} |" if k in rados else f"| {name} | – |")
lines += ["", f"Cold reads through the mount with an empty cache: dd {fmt_rate(cold_dd)}, "
          f"tar {fmt_rate(cold_tar)}"
          + (f"; dd is {100 * cold_dd / rados['seq16']:.0f}% of rados' sequential read "
             f"(16 in flight), {100 * cold_dd / rados['seq1']:.0f}% of it with 1 in flight."
             if cold_dd and rados.get("seq16") and rados.get("seq1") else "."), ""]

# radosgw alone, the same objects a cold read fetches (bench_rgw), and the cold reads as a
# share of it: time over the same objects, since a tar fetches each distinct blob once.
rgw = load("rgw") or {}
res["rgw"] = rgw
res["engine_share"] = {}
if rgw:
    lines += ["## radosgw alone: the objects a cold read fetches, GET by curl (same run)", "",
              "The objects each cold read fetches, fetched with `curl --parallel` (the same "
              "signed GETs storefs sends): for `dd` the chunks of big/r1.bin, for `tar` every "
              "other object the first import created (small files; chunk lists and chunks of "
              "small/'s large files). `rados bench` above bypasses radosgw; this is what "
              "radosgw itself serves.", "",
              "| objects | count | MiB | 1 in flight | 16 in flight |", "|---|---|---|---|---|"]
    for kind, name in (("tar", "tar's (small/)"), ("dd", "dd's (big/r1.bin's chunks)")):
        d = rgw.get(kind)
        if not d:
            continue
        cells = []
        for p in (1, 16):
            t = d.get(f"p{p}_s")
            cells.append("–" if not t else f"{ms(t)}, {fmt_rate(rate(d['bytes'], t))}, "
                         f"{d['objects'] / t:.0f} req/s")
        lines.append(f"| {name} | {d['objects']}"
                     f"{' (' + str(d['failed']) + ' failed)' if d['failed'] else ''} | "
                     f"{d['bytes'] / MIB:.1f} | " + " | ".join(cells) + " |")
    lines += ["", "Cold reads through a mount as a share of what the engine serves (its time / "
              "ours, over the same objects; 1.00 = as fast as radosgw with 16 in flight):", "",
              "| read | mount | ours | radosgw, 16 in flight | share | share of rados seq (16) |",
              "|---|---|---|---|---|---|"]
    for test in ("tar", "dd"):
        ref = (rgw.get(test) or {}).get("p16_s")
        for v in ("s3_nocache", "s3_empty"):
            t = median(f"{test}-cold-{v}")
            if not t or not ref:
                continue
            share = ref / t
            res["engine_share"][f"{test}-{v}"] = share
            ours = rate(sizes[test], t)
            seq = (f"{ours / rados['seq16']:.2f}" if test == "dd" and rados.get("seq16")
                   else "–")
            lines.append(f"| {test} cold | {v} | {ms(t)}, {fmt_rate(ours)} | {ms(ref)} | "
                         f"**{share:.2f}** | {seq} |")
    lines.append("")

# Goals (issue 16).
warm = median("tar-cold-s3_cached")
local = median("tar-cold-local")
lines += ["## Goals", "", "| goal | measured | |", "|---|---|---|"]
if warm and local:
    r = warm / local
    lines.append(f"| cold tar with a warm cache = the local mount (≤ 1.05x) | {r:.2f}x | "
                 f"{'met' if r <= 1.05 else '**not met**'} |")
if cold_dd and rados.get("seq1"):
    r = cold_dd / rados["seq1"]
    lines.append(f"| cold dd, empty cache, limited by the engine (≥ 0.8 of rados seq, 1 in "
                 f"flight) | {r:.2f} | {'met' if r >= 0.8 else '**not met**'} |")
for test in ("tar", "dd"):
    share = res["engine_share"].get(f"{test}-s3_nocache")
    if share is not None:
        lines.append(f"| cold {test} without cache limited by the engine (≥ 0.8 of radosgw "
                     f"serving the same objects, 16 in flight) | {share:.2f} | "
                     f"{'met' if share >= 0.8 else '**not met**'} |")
lines.append("")

open(OUT + ".md", "w").write("\n".join(lines))
json.dump(res, open(OUT + ".json", "w"), indent=1)

#!/usr/bin/env python3
"""report.py - turns bench/run's raw results (hyperfine JSON and friends) into Markdown and a plot.

Usage: report.py JSON_DIR OUT_PREFIX   writes OUT_PREFIX.md, OUT_PREFIX.png, OUT_PREFIX.json
The plot needs gnuplot (Debian: gnuplot-nox); without it the report has no plot and says so on
standard error.
"""
import glob
import json
import os
import shutil
import subprocess
import sys

import grpc_report  # bench/grpc's section, beside this file

TESTS = ["find", "du", "tar", "dd"]
MODES = ["cold", "warm"]
PEER = "sqfuse_ll"
# Issue 6's goals as ratios to native (test, mode) -> limit.
GOALS = {("find", "warm"): 1.05, ("du", "warm"): 1.05, ("tar", "warm"): 1.05,
         ("find", "cold"): 1.3, ("du", "cold"): 1.3, ("tar", "cold"): 1.3,
         ("dd", "cold"): 1.05, ("dd", "warm"): 1.05}
IMPORT_GOAL = 3.0
RSS_GOAL = 150.0
B3_GOAL = 0.8  # our throughput over b3sum's, one thread


def load(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def medians(jdir):
    """{(test, mode, variant): median seconds} of every t-*.json."""
    out = {}
    for p in glob.glob(os.path.join(jdir, "t-*.json")):
        test, mode, variant = os.path.basename(p)[2:-5].split("-", 2)
        d = load(p)
        if d and d.get("results"):
            out[(test, mode, variant)] = d["results"][0]["median"]
    return out


def fmt_ms(s):
    ms = s * 1000
    return f"{ms:.1f} ms" if ms < 100 else f"{ms:.0f} ms"


def ratio(med, key, base):
    a, b = med.get(key), med.get(key[:2] + (base,))
    return a / b if a is not None and b else None


def fmt_ratio(r):
    return "–" if r is None else f"{r:.2f}x"


def tree_table(med, variants):
    lines = ["| test | " + " | ".join(variants) + " |", "|---" * (len(variants) + 1) + "|"]
    for t in TESTS:
        for m in MODES:
            cells = []
            for v in variants:
                s = med.get((t, m, v))
                if s is None:
                    cells.append("–")
                elif v == "native":
                    cells.append(fmt_ms(s))
                else:
                    cells.append(f"{fmt_ms(s)} ({fmt_ratio(ratio(med, (t, m, v), 'native'))})")
            lines.append(f"| {t} {m} | " + " | ".join(cells) + " |")
    return lines


def peer_table(med, variants):
    others = [v for v in variants if v != PEER]
    lines = ["| test | " + " | ".join(others) + " |", "|---" * (len(others) + 1) + "|"]
    for t in TESTS:
        for m in MODES:
            cells = [fmt_ratio(ratio(med, (t, m, v), PEER)) for v in others]
            lines.append(f"| {t} {m} | " + " | ".join(cells) + " |")
    return lines


def import_summary(jdir, tree):
    d = load(os.path.join(jdir, "import.json"), {})
    res = {r["command"]: r["median"] for r in d.get("results", [])}
    paths = load(os.path.join(jdir, "import-paths.json"), {})
    out = {"median_s": res}
    if tree:
        out["mib_s"] = {k: tree["bytes"] / 2**20 / v for k, v in res.items() if v}
    if "storefs" in res and "nix-store" in res:
        out["speedup"] = res["nix-store"] / res["storefs"]
    if paths.get("storefs") and paths.get("nix"):
        out["paths_agree"] = paths["storefs"] == paths["nix"]
    return out


IMPORT_ROWS = [("fresh store", "import.json", 3),
               ("1% of the files changed", "import-changed.json", 10),
               ("already in the store", "import-known.json", 20)]


def import_rows(jdir):
    """Issue 14's import goals: storefs (with and without --trust-stat) vs nix-store --add,
    medians of one run, ratio = nix-store time / storefs time."""
    chg = load(os.path.join(jdir, "reimport-tree.json"), {})
    lines, out = [], {}
    for label, fn, goal in IMPORT_ROWS:
        d = load(os.path.join(jdir, fn), {})
        res = {r["command"]: r["median"] for r in d.get("results", [])}
        if not res:
            continue
        nix = res.get("nix-store")
        row = {"median_s": res, "goal": goal}
        cells = []
        for k in ("storefs", "storefs-trust-stat"):
            v = res.get(k)
            r = nix / v if nix and v else None
            row[k + "_ratio"] = r
            cells.append("–" if v is None else f"{v:.3f} s")
            cells.append("–" if r is None else f"{r:.1f}x {met(r >= goal)}")
        if fn == "import-changed.json" and chg:
            label += f" ({chg.get('changed')} of {chg.get('files')})"
        lines.append(f"| {label} | {cells[0]} | {cells[1]} | {cells[2]} | {cells[3]} | " +
                     ("–" if nix is None else f"{nix:.3f} s") + f" | ≥ {goal}x |")
        out[fn.split(".")[0]] = row
    if lines:
        lines = ["## Import vs nix-store --add (issue 14; medians, same run)", "",
                 "| import | storefs | ratio | storefs --trust-stat | ratio | nix-store --add "
                 "| goal |", "|---|---|---|---|---|---|---|"] + lines + [
                 "", "Ratio: nix-store time / storefs time. \"1% changed\" and \"already in "
                 "the store\" import into a store that holds the original tree (filled with "
                 "--trust-stat for that column)."]
    return lines, out


def statlat(jdir, variants):
    out = {}
    for v in variants:
        p = os.path.join(jdir, f"statlat-{v}.txt")
        if not os.path.exists(p):
            continue
        for line in open(p):
            f = line.split()
            if len(f) >= 3 and f[0] == "statlat":
                out.setdefault(v, {})[f[1]] = dict(kv.split("=") for kv in f[2:])
    return out


def rss(jdir, variants):
    out = {}
    for v in variants:
        d = load(os.path.join(jdir, f"rss-{v}.json"))
        if d and d["entries"]:
            d["bytes_per_inode"] = (d["after_kib"] - d["before_kib"]) * 1024 / d["entries"]
            out[v] = d
    d = load(os.path.join(jdir, "rss-many.json"))
    if d and d["entries"]:
        d["bytes_per_inode"] = (d["after_kib"] - d["before_kib"]) * 1024 / d["entries"]
        out["many"] = d
    return out


def lookups(jdir):
    return {c: d for c in ("idle", "slow")
            if (d := load(os.path.join(jdir, f"lookups-{c}.json")))}


def lookup_lines(lk):
    """The lookup-concurrency step of bench/run (docs/limits.md "Parallel lookups")."""
    if not lk:
        return []
    lines = ["", "## Lookup concurrency at the mount root", "",
             "| mount | lookups | threads | wall | median | p99 | max | errors |",
             "|---|---|---|---|---|---|---|---|"]
    names = {"idle": "idle", "slow": "a substituter fetch pending (2 bytes/s)"}
    for c, d in lk.items():
        lines.append(f"| {names[c]} | {d['count']} | {d['threads']} | {d['wall_s'] * 1000:.0f} ms "
                     f"| {d['median_us']} µs | {d['p99_us']} µs | {d['max_us']} µs "
                     f"| {d['errors']} |")
    if "idle" in lk and "slow" in lk and lk["idle"]["wall_s"] > 0:
        lines += ["", f"With a fetch pending the lookups took "
                  f"{lk['slow']['wall_s'] / lk['idle']['wall_s']:.2f}x the idle time "
                  "(1 = the pending fetch holds no other lookup)."]
    return lines


def blake3(jdir, meta):
    d = load(os.path.join(jdir, "b3.json"), {})
    res = {r["command"]: r["median"] for r in d.get("results", [])}
    mins = {r["command"]: r["min"] for r in d.get("results", []) if "min" in r}
    out = {"median_s": res, "mib_s": {k: meta["b3_mib"] / v for k, v in res.items() if v},
           "best_mib_s": {k: meta["b3_mib"] / v for k, v in mins.items() if v}}
    chk = load(os.path.join(jdir, "b3-check.json"))
    if chk is not None:
        out["digests_agree"] = chk["digests_agree"]
    if "b3bench" in res and "b3sum-1t" in res:
        out["ratio"] = res["b3sum-1t"] / res["b3bench"]
    return out


def met(ok):
    return "met" if ok else "**not met**"


def goals_table(med, variants, imp, rs):
    sv = [v for v in variants if v.startswith("storefs")] or ["storefs"]
    lines = ["| metric | goal | " + " | ".join(sv) + " |", "|---" * (len(sv) + 2) + "|"]
    for (t, m), lim in GOALS.items():
        cells = []
        for v in sv:
            r = ratio(med, (t, m, v), "native")
            cells.append("–" if r is None else f"{r:.2f}x {met(r <= lim)}")
        lines.append(f"| {t} {m} | ≤ {lim}x | " + " | ".join(cells) + " |")
    sp = imp.get("speedup")
    cell = "–" if sp is None else f"{sp:.2f}x {met(sp >= IMPORT_GOAL)}"
    lines.append(f"| import speed / nix-store --add | ≥ {IMPORT_GOAL:.0f}x | " +
                 " | ".join([cell] * len(sv)) + " |")
    cells = []
    for v in sv:
        b = rs.get(v, {}).get("bytes_per_inode")
        cells.append("–" if b is None else f"{b:.0f} B {met(b <= RSS_GOAL)}")
    lines.append(f"| mount RSS per inode | ≤ {RSS_GOAL:.0f} B | " + " | ".join(cells) + " |")
    many = rs.get("many")
    if many:
        b = many["bytes_per_inode"]
        cell = f"{b:.0f} B {met(b <= RSS_GOAL)}"
        lines.append(f"| mount RSS per inode, {many['entries']}-entry tree, kernel open | "
                     f"≤ {RSS_GOAL:.0f} B | " + " | ".join([cell] * len(sv)) + " |")
    return lines


def header(meta, tree):
    mode = "quick" if meta.get("quick") else "full"
    r = meta.get("runs", {})
    lines = [f"# storefs benchmarks, {meta.get('date')} ({mode} mode)", "",
             f"- Machine: {meta.get('cpus')} CPUs ({meta.get('cpu')}), kernel {meta.get('kernel')},"
             f" load average at the end {' '.join(meta.get('loadavg', []))};"
             f" storefs at {meta.get('storefs_rev')} (plus any uncommitted changes)."]
    if tree:
        lines.append(f"- Tree: {tree['files']} files, {tree['dirs']} dirs, {tree['symlinks']} "
                     f"symlinks, {tree['bytes'] / 2**20:.0f} MiB (small files "
                     f"{tree['small_bytes'] / 2**20:.0f} MiB, median {tree['median_file']:.0f} B)"
                     f"; big/r1.bin is {meta.get('big_mib')} MiB.")
    lines.append(f"- Runs: cold {r.get('cold')} (each after unmount, sync, drop_caches, mount), "
                 f"warm 2 warmups + {r.get('warm')} ({r.get('tar_warm')} for tar); hyperfine "
                 "medians. Read ratios under 1.2x as noise (shared 2-vCPU VM).")
    if meta.get("storefs_note"):
        lines.append(f"- **storefs was not measured**: {meta['storefs_note']}")
    return lines


def extra_lines(imp, st, rs, b3, meta):
    lines = ["## Import, stat latency, RSS, BLAKE3", ""]
    med = imp.get("median_s", {})
    if med:
        parts = [f"{k} {v:.2f} s ({imp.get('mib_s', {}).get(k, 0):.0f} MiB/s)"
                 for k, v in med.items()]
        sp = imp.get("speedup")
        agree = imp.get("paths_agree")
        ratio_txt = f"; speed ratio storefs/nix-store {sp:.2f}x" if sp else ""
        agree_txt = "" if agree is None else f"; store paths {'agree' if agree else 'DIFFER'}"
        lines.append("- Import of the whole tree into a fresh store (input in page cache): " +
                     ", ".join(parts) + ratio_txt + agree_txt + ".")
    for v, d in st.items():
        c, w = d.get("cold", {}), d.get("warm", {})
        lines.append(f"- stat latency {v}: cold lookup median {c.get('median_ns', '–')} ns "
                     f"(mean {c.get('mean_ns', '–')}, {c.get('count', 0)} paths); attrs cached "
                     f"median {w.get('median_ns', '–')} ns (mean {w.get('mean_ns', '–')}).")
    for v, d in rs.items():
        name = f"storefs_kopen, {d['entries']}-entry tree" if v == "many" else v
        lines.append(f"- daemon RSS {name}: {d['before_kib']} → {d['after_kib']} KiB over "
                     f"{d['entries']} entries = {d['bytes_per_inode']:.0f} B per inode touched.")
    m, b = b3.get("mib_s", {}), b3.get("best_mib_s", {})
    if m:
        lines.append(f"- BLAKE3 on a {meta.get('b3_mib')} MiB file in page cache: b3bench "
                     f"{m.get('b3bench', 0):.0f} MiB/s, b3sum --num-threads 1 "
                     f"{m.get('b3sum-1t', 0):.0f} MiB/s, ratio {b3.get('ratio', 0):.2f} "
                     f"({met(b3.get('ratio', 0) >= B3_GOAL)}: within 20%); best runs "
                     f"{b.get('b3bench', 0):.0f} vs {b.get('b3sum-1t', 0):.0f} MiB/s "
                     "(CPU-bound: the best run is the least disturbed); digests "
                     f"{'agree' if b3.get('digests_agree') else 'DIFFER'}.")
    return lines


def plot(med, variants, out_prefix):
    others = [v for v in variants if v != "native"]
    if not others:
        return None
    if not shutil.which("gnuplot"):
        print("report.py: gnuplot is not installed (apt-get install gnuplot-nox): no plot",
              file=sys.stderr)
        return None
    dat = out_prefix + ".dat"
    with open(dat, "w") as f:
        f.write("test " + " ".join(others) + "\n")
        for t in TESTS:
            for m in MODES:
                rs = [ratio(med, (t, m, v), "native") for v in others]
                f.write(f"{t}-{m} " + " ".join("?" if r is None else f"{r:.4f}" for r in rs) +
                        "\n")
    png = out_prefix + ".png"
    script = f"""
set output '{png}'
set title 'median time relative to native ext4 (lower is better; log scale)'
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.85 border -1
set datafile missing '?'
set termoption noenhanced
set logscale y
set yrange [0.1:*]
set grid ytics
set key top left
set xtics rotate by -30
set arrow from graph 0, first 1 to graph 1, first 1 nohead lw 2 dt 2 lc rgb 'black'
plot for [i=2:{len(others) + 1}] '{dat}' using i:xtic(1) title columnheader
"""
    for term in ("pngcairo size 1100,550 font ',10'", "png size 1100,550"):
        r = subprocess.run(["gnuplot"], input=f"set terminal {term}\n" + script, text=True,
                           capture_output=True)
        if r.returncode == 0 and os.path.exists(png) and os.path.getsize(png) > 0:
            break
    os.unlink(dat)
    if not os.path.exists(png) or os.path.getsize(png) == 0:
        print(f"report.py: gnuplot failed, no plot: {r.stderr.strip()}", file=sys.stderr)
        return None
    return png


def main():
    jdir, out_prefix = sys.argv[1], sys.argv[2]
    meta = load(os.path.join(jdir, "meta.json"), {})
    tree = load(os.path.join(jdir, "tree.json"))
    variants = meta.get("variants", ["native"])
    med = medians(jdir)
    imp = import_summary(jdir, tree)
    st, rs, b3 = statlat(jdir, variants), rss(jdir, variants), blake3(jdir, meta)
    png = plot(med, variants, out_prefix)
    md = header(meta, tree)
    if med:  # none with bench/run --import
        md += ["", "## Tree tests: median (ratio to native ext4)", ""] + tree_table(med, variants)
        if PEER in variants:
            md += ["", "## Ratio to squashfuse_ll", ""] + peer_table(med, variants)
        md += ["", "## Goals of issue 6 (storefs vs native)", ""]
        md += goals_table(med, variants, imp, rs)
    md += [""] + extra_lines(imp, st, rs, b3, meta)
    irows, imp["rows"] = import_rows(jdir)
    if irows:
        md += [""] + irows
    lk = lookups(jdir)
    md += lookup_lines(lk)
    md += grpc_report.grpc_lines(jdir, med, variants, meta)
    if png:
        md += ["", f"![ratios to native]({os.path.basename(png)})"]
    with open(out_prefix + ".md", "w") as f:
        f.write("\n".join(md) + "\n")
    with open(out_prefix + ".json", "w") as f:
        json.dump({"meta": meta, "tree": tree,
                   "medians_s": {"-".join(k): v for k, v in sorted(med.items())},
                   "import": imp, "statlat": st, "rss": rs, "blake3": b3, "lookups": lk}, f,
                  indent=1)


if __name__ == "__main__":
    main()

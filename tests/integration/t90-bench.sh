#!/bin/bash
# t90-bench.sh - the benchmark helpers: b3bench (digests against b3sum), statlat (output and
# argument checks) and bench/report.py (tables from synthetic results). No timing is asserted.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
shopt -s inherit_errexit

B3BENCH=$TOOLS/b3bench
STATLAT=$TOOLS/statlat

# Files whose sizes straddle BLAKE3's 64-byte block, 1 KiB chunk and our 1 MiB buffer.
make_sizes() {
	local n
	mkdir -p "$TMP/b3"
	for n in 0 1 63 64 65 1023 1024 1025 4096 1048575 1048576 1048577 3145745; do
		head -c "$n" /dev/urandom >"$TMP/b3/f$n"
	done
}

b3_matches_b3sum() {
	local mode
	make_sizes
	b3sum "$TMP"/b3/* >"$TMP/want"
	for mode in --mmap --read; do
		"$B3BENCH" "$mode" "$TMP"/b3/* >"$TMP/got"
		diff "$TMP/want" "$TMP/got" || fail "b3bench $mode differs from b3sum"
	done
	"$B3BENCH" "$TMP"/b3/* >"$TMP/got"
	diff "$TMP/want" "$TMP/got"
}

b3_bad_input() {
	make_sizes
	expect_status 1 "$B3BENCH" "$TMP/b3/f1" "$TMP/nonexistent" "$TMP/b3/f64"
	grep -q "nonexistent" "$TMP/err" || fail "no file name in the error"
	assert_eq "$(wc -l <"$TMP/out")" 2 "digests printed for the readable files"
	expect_status 1 "$B3BENCH" "$TMP/b3" # a directory cannot be read
	expect_status 2 "$B3BENCH"
	expect_status 2 "$B3BENCH" --fast "$TMP/b3/f1"
	expect_status 2 "$B3BENCH" --read
}

make_tree() {
	mkdir -p "$TMP/t/a/b"
	echo x >"$TMP/t/a/f1"
	echo y >"$TMP/t/a/b/f2"
	ln -sfn nowhere "$TMP/t/dangling"
	printf 'a\na/f1\na/b\na/b/f2\ndangling\n' >"$TMP/list"
}

statlat_output() {
	make_tree
	"$STATLAT" cold "$TMP/list" "$TMP/t" >"$TMP/out"
	grep -Eq '^statlat cold count=5 median_ns=[0-9]+ mean_ns=[0-9]+ p90_ns=[0-9]+$' "$TMP/out" ||
		fail "bad cold output: $(cat "$TMP/out")"
	"$STATLAT" warm "$TMP/list" "$TMP/t" 3 7 >"$TMP/out"
	grep -Eq '^statlat warm count=21 median_ns=[0-9]+ ' "$TMP/out" ||
		fail "bad warm output: $(cat "$TMP/out")"
	# N above the list's length is clamped to it.
	"$STATLAT" warm "$TMP/list" "$TMP/t" 100 2 | grep -q ' count=10 '
}

statlat_rejects() {
	make_tree
	: >"$TMP/empty"
	echo a/missing >"$TMP/bad"
	expect_status 2 "$STATLAT" cold "$TMP/list"
	expect_status 2 "$STATLAT" hot "$TMP/list" "$TMP/t"
	expect_status 1 "$STATLAT" cold "$TMP/nolist" "$TMP/t"
	expect_status 1 "$STATLAT" cold "$TMP/empty" "$TMP/t"
	grep -q "no paths" "$TMP/err"
	expect_status 1 "$STATLAT" cold "$TMP/bad" "$TMP/t"
	grep -q "a/missing" "$TMP/err"
	expect_status 1 "$STATLAT" warm "$TMP/list" "$TMP/t" 0
	expect_status 1 "$STATLAT" warm "$TMP/list" "$TMP/t" 12x
	expect_status 1 "$STATLAT" warm "$TMP/list" "$TMP/t" 10 -1
	expect_status 1 "$STATLAT" warm "$TMP/list" "$TMP/t" 100000 100000
}

# hyperfine-shaped JSON with one median, as bench/run exports it.
hf_json() { echo "{\"results\": [{\"command\": \"$1\", \"median\": $2}]}"; }

# report_inputs DIR: a synthetic results directory as bench/run leaves it.
report_inputs() {
	local j=$1
	mkdir -p "$j"
	echo '{"date": "2000-01-01", "quick": true, "variants": ["native", "sqfuse_ll",
	  "storefs"], "runs": {"cold": 3, "warm": 5, "tar_warm": 3, "import": 2},
	  "b3_mib": 1024, "storefs_note": ""}' >"$j/meta.json"
	echo '{"files": 10, "dirs": 2, "symlinks": 1, "bytes": 104857600,
	  "small_bytes": 1000, "median_file": 100}' >"$j/tree.json"
	hf_json native 0.100 >"$j/t-find-warm-native.json"
	hf_json sqfuse_ll 0.400 >"$j/t-find-warm-sqfuse_ll.json"
	hf_json storefs 0.200 >"$j/t-find-warm-storefs.json"
	hf_json native 0.100 >"$j/t-du-cold-native.json"
	hf_json storefs 0.120 >"$j/t-du-cold-storefs.json"
	echo '{"results": [{"command": "storefs", "median": 0.5},
	  {"command": "nix-store", "median": 2.0}]}' >"$j/import.json"
	echo '{"results": [{"command": "storefs", "median": 0.25},
	  {"command": "storefs-trust-stat", "median": 0.05}, {"command": "nix-store", "median": 2.0}]}' \
		>"$j/import-known.json"
	echo '{"before_kib": 1000, "after_kib": 1100, "entries": 1024}' >"$j/rss-storefs.json"
	echo '{"count": 2000, "threads": 8, "wall_s": 0.064, "median_us": 139, "p99_us": 3971,
	  "max_us": 8203, "errors": 0}' >"$j/lookups-idle.json"
	echo '{"count": 2000, "threads": 8, "wall_s": 0.128, "median_us": 140, "p99_us": 7781,
	  "max_us": 8261, "errors": 0}' >"$j/lookups-slow.json"
}

report_tables() {
	local j=$TMP/json
	report_inputs "$j"
	python3 "$ROOT/bench/report.py" "$j" "$TMP/r"
	grep -F '| find warm | 100 ms | 400 ms (4.00x) | 200 ms (2.00x) |' "$TMP/r.md"
	grep -F '| find warm | 0.25x | 0.50x |' "$TMP/r.md"                  # ratio to sqfuse_ll
	grep -F '| find warm | ≤ 1.05x | 2.00x **not met** |' "$TMP/r.md"
	grep -F '| du cold | ≤ 1.3x | 1.20x met |' "$TMP/r.md"
	grep -F '| dd warm | ≤ 1.05x | – |' "$TMP/r.md"                       # not measured
	grep -F '| ≥ 3x | 4.00x met |' "$TMP/r.md"                             # import
	grep -F '| ≤ 150 B | 100 B met |' "$TMP/r.md"                          # RSS per inode
	grep -F 'storefs 0.50 s (200 MiB/s)' "$TMP/r.md"
	grep -F '| already in the store | 0.250 s | 8.0x **not met** | 0.050 s | 40.0x met | 2.000 s | ≥ 20x |' \
		"$TMP/r.md"
	grep -F '| idle | 2000 | 8 | 64 ms | 139 µs | 3971 µs | 8203 µs | 0 |' "$TMP/r.md"
	grep -F 'took 2.00x the idle time' "$TMP/r.md"
	[ -s "$TMP/r.png" ] || fail "no plot"
	grep -qF '![ratios to native](r.png)' "$TMP/r.md" || fail "the plot is not in the report"
	python3 -c 'import json, sys; d = json.load(open(sys.argv[1]));
assert d["medians_s"]["find-warm-storefs"] == 0.2' "$TMP/r.json"
}

# bench/run --import leaves only the import results: the report has their tables and no
# empty tree-test tables (it had them before the --import mode).
report_import_only() {
	local j=$TMP/imp-json
	mkdir -p "$j"
	echo '{"date": "2000-01-01", "quick": true, "variants": ["native"],
	  "runs": {"import": 2}, "b3_mib": 1024, "storefs_note": ""}' >"$j/meta.json"
	echo '{"files": 10, "dirs": 2, "symlinks": 1, "bytes": 104857600,
	  "small_bytes": 1000, "median_file": 100}' >"$j/tree.json"
	echo '{"results": [{"command": "storefs", "median": 0.5},
	  {"command": "nix-store", "median": 2.0}]}' >"$j/import.json"
	python3 "$ROOT/bench/report.py" "$j" "$TMP/imp"
	grep -F '| fresh store | 0.500 s | 4.0x met |' "$TMP/imp.md"
	! grep -q 'Tree tests\|Goals of issue 6' "$TMP/imp.md" || fail "empty tree-test tables"
}

# bench/grpc_report.py: ratios to the local mount, issue 15's goals, the extra lines.
report_grpc() {
	local j=$TMP/json
	report_inputs "$j"
	python3 - "$j/meta.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["variants"] = ["native", "storefs_kopen", "grpc_unix", "grpc_tcp_cache"]
m["big_mib"] = 64
json.dump(m, open(sys.argv[1], "w"))
PY
	hf_json storefs_kopen 1.000 >"$j/t-tar-cold-storefs_kopen.json"
	hf_json grpc_unix 2.500 >"$j/t-tar-cold-grpc_unix.json"
	hf_json grpc_tcp_cache 1.500 >"$j/t-tar-cold-grpc_tcp_cache.json"
	hf_json storefs_kopen 0.100 >"$j/t-tar-warm-storefs_kopen.json"
	hf_json grpc_unix 0.100 >"$j/t-tar-warm-grpc_unix.json"
	echo '{"results": [{"command": "local", "median": 0.1}, {"command": "grpc_unix",
	  "median": 0.5}]}' >"$j/grpc-blob.json"
	printf 'statlat cold count=1 median_ns=%s mean_ns=1 p90_ns=1\n' 300000 100000 200000 \
		>"$j/grpc-lookup-grpc_unix.txt"
	echo '{"mounts": 16, "errors": 2, "wall_s": 10.0, "bytes_each": 1048576,
	  "big_bytes": 0, "stderr_lines": 3}' >"$j/grpc-many.json"
	python3 "$ROOT/bench/report.py" "$j" "$TMP/g"
	grep -F '| tar cold | 1000 ms | 2500 ms (2.50x) | 1500 ms (1.50x) |' "$TMP/g.md"
	grep -F '| tar cold | ≤ 2.0x | 2.50x **not met** | 1.50x met |' "$TMP/g.md"
	grep -F '| tar warm | ≤ 1.05x | 1.00x met | – |' "$TMP/g.md"
	grep -F '(grpc_unix): median 200 µs over 3 mounts' "$TMP/g.md"
	grep -F 'local 640 MiB/s (0.10 s), grpc_unix 128 MiB/s (0.50 s)' "$TMP/g.md"
	grep -F ': 2 errors (**not met**), 3 lines on stderr, 10.0 s for 16 MiB' "$TMP/g.md"
}

# bench/lookup-par looks every name up once and counts what is missing.
lookup_par_counts() {
	mkdir -p "$TMP/lp"
	touch "$TMP/lp/a" "$TMP/lp/b"
	printf 'a\nb\nmissing\n' >"$TMP/lp.names"
	"$ROOT/bench/lookup-par" "$TMP/lp" "$TMP/lp.names" 2 "$TMP/lp.json"
	python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))
assert d["count"] == 3 and d["threads"] == 2 and d["errors"] == 1, d
assert "missing" in d["first_error"], d' "$TMP/lp.json"
}

# Without gnuplot (make bench on a machine without it): the tables, no plot,
# one line on stderr saying why, exit 0.
report_without_gnuplot() {
	local j=$TMP/json py
	report_inputs "$j"
	py=$(python3 -c 'import sys; print(sys.executable)') # not a wrapper script
	mkdir -p "$TMP/emptybin"
	PATH=$TMP/emptybin "$py" "$ROOT/bench/report.py" "$j" "$TMP/ng" 2>"$TMP/gp.err"
	cat "$TMP/gp.err"
	grep -q 'gnuplot' "$TMP/gp.err" || fail "no word on stderr about the missing gnuplot"
	grep -F '| find warm | 100 ms | 400 ms (4.00x) | 200 ms (2.00x) |' "$TMP/ng.md"
	[ ! -e "$TMP/ng.png" ] || fail "a plot without gnuplot?"
	! grep -q 'ng.png' "$TMP/ng.md" || fail "the report links a plot that is not there"
}

check "b3bench prints what b3sum prints (mmap and read)" b3_matches_b3sum
check "b3bench reports unreadable files and usage errors" b3_bad_input
check "statlat prints counts and timings, cold and warm" statlat_output
check "statlat rejects bad arguments and missing paths" statlat_rejects
check "report.py builds the ratio and goal tables" report_tables
check "report.py without gnuplot: tables, no plot, exit 0" report_without_gnuplot
check "report.py of bench/run --import: the import tables only" report_import_only
check "lookup-par looks every name up once and counts failures" lookup_par_counts
check "report.py's gRPC section: ratios to the local mount, goals, extra lines" report_grpc

#!/bin/bash
# t55-gc.sh - GC roots, storefs gc and storefs delete (docs/gc.md): roots
# keep their closure, everything else goes, verify passes; gc racing imports
# that share blobs loses nothing; SIGKILL at random moments of a gc leaves a
# store that verifies; a mount keeps serving an open file of a deleted path,
# and the paths a mount looked up are temporary roots.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
shopt -s inherit_errexit

RACES=${STOREFS_GC_RACES:-20}
KILLS=${STOREFS_GC_KILLS:-20}

# A closure in a chroot Nix store: src <- g2 <- g3 (g3 is TOP), and g4.
mkdir -p "$TMP/w/src/sub"
printf 'hello\n' >"$TMP/w/src/a"
printf 'x' >"$TMP/w/src/sub/b"
(cd "$TMP/w" && nix eval --store "$NIX_STORE_DIR" --impure --raw --expr \
	'builtins.toFile "g4" "alone\n"' >"$TMP/g4" 2>/dev/null)
TOP=$(nix_closure "$TMP/w")
G4=$(cat "$TMP/g4")

# mk_tree DIR N SEED: N small files, contents depending on SEED.
mk_tree() {
	mkdir -p "$1/d"
	for i in $(seq 1 "$2"); do echo "file $i of $3" >"$1/d/f$i"; done
	echo "only in $1" >"$1/own"
}

# Blobs of either kind (files, and small ones inline in LMDB: docs/store-format.md).
blob_count() { "$STOREFS" info --store "$1" | awk '$1 == "blobs:" { print $2 }'; }

t_roots_keep_closure() {
	local s=$TMP/s1 kept extra
	sf import-nix --store "$s" --nix-store "$NIX_STORE_DIR" -r "$TOP" "$G4" >/dev/null
	mk_tree "$TMP/t1" 5 a
	kept=$(sf import --store "$s" --add-root tree "$TMP/t1")
	mk_tree "$TMP/t2" 8 b
	extra=$(sf import --store "$s" "$TMP/t2")
	sf add-root --store "$s" top "$TOP"
	[ "$(readlink "$s/gcroots/top")" = "$TOP" ]
	sleep 0.1 # older than the gc's start: see docs/gc.md on fresh blobs
	sf gc --store "$s" --dry-run --json >"$TMP/dry.json"
	sf list --store "$s" | wc -l | grep -qx 6
	sf info --store "$s" --json >"$TMP/info0.json"
	sf gc --store "$s" --json >"$TMP/gc.json"
	sf info --store "$s" --json >"$TMP/info1.json"
	python3 - "$TMP/dry.json" "$TMP/gc.json" "$G4" "$extra" "$TMP/info0.json" "$TMP/info1.json" <<'PY'
import json, sys
dry, real = (json.load(open(f)) for f in sys.argv[1:3])
i0, i1 = (json.load(open(f)) for f in sys.argv[5:7])
assert i0["blobBytes"] - i1["blobBytes"] == real["bytesFreed"], (i0, i1, real)
assert i0["blobs"] - i1["blobs"] == real["blobs"], (i0, i1, real)
assert i0["directories"] - i1["directories"] == real["directories"], (i0, i1, real)
assert i0["paths"] - i1["paths"] == 2 and i1["orphanBlobs"] == 0, (i0, i1)
assert dry["dryRun"] and not real["dryRun"], (dry, real)
assert sorted(real["deleted"]) == sorted(sys.argv[3:5]), real
for k in ("deleted", "directories", "blobs", "bytesFreed"):
    assert dry[k] == real[k], (k, dry, real)
assert real["blobs"] == 10 and real["bytesFreed"] > 0, real
PY
	sf list --store "$s" >"$TMP/left"
	(sf path-info --store "$s" -r "$TOP" | grep '^/nix/store/'; echo "$kept") | sort >"$TMP/want"
	diff "$TMP/left" "$TMP/want"
	sf verify --store "$s" -q
	# Nothing left to collect; the rooted tree is intact.
	sf gc --store "$s" 2>"$TMP/err" >/dev/null
	grep -q '^0 store paths, 0 directories, 0 blobs deleted, 0 bytes freed$' "$TMP/err"
	sf nar --store "$s" "$kept" | cmp - <(nix-store --dump "$TMP/t1")
	# Removing a root frees its closure.
	sf remove-root --store "$s" top
	expect_status 1 sf remove-root --store "$s" top
	grep -q "no root named 'top'" "$TMP/err"
	sf gc --store "$s" >"$TMP/out"
	assert_eq "$(wc -l <"$TMP/out")" 3 "paths of the unrooted closure"
	assert_eq "$(sf list --store "$s")" "$kept"
	sf verify --store "$s" -q
}

t_delete() {
	local s=$TMP/s2 g2 src
	sf import-nix --store "$s" --nix-store "$NIX_STORE_DIR" -r "$TOP" >/dev/null
	g2=$(sf path-info --store "$s" --json "$TOP" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["references"][0])')
	# Referenced: refused, naming the referrer; nothing deleted.
	expect_status 1 sf delete --store "$s" "$g2"
	grep -q "'$TOP' references it" "$TMP/err"
	assert_eq "$(sf list --store "$s" | wc -l)" 3
	# A root: refused, naming the root.
	sf add-root --store "$s" keep "$TOP"
	expect_status 1 sf delete --store "$s" "$TOP"
	grep -q "it is root 'keep'" "$TMP/err"
	expect_status 1 sf delete --store "$s" /nix/store/00000000000000000000000000000000-x
	grep -q "not in the store" "$TMP/err"
	# The whole closure at once is fine once unrooted.
	sf remove-root --store "$s" keep
	src=$(sf path-info --store "$s" -r "$TOP" | grep '^/nix/store/' | grep -- -src)
	sf delete --store "$s" "$TOP" "$g2" >"$TMP/out"
	assert_eq "$(sf list --store "$s")" "$src"
	# --ignore-liveness deletes a rooted path.
	sf add-root --store "$s" src "$src"
	sf delete --store "$s" --ignore-liveness "$src" >/dev/null
	assert_eq "$(sf list --store "$s" | wc -l)" 0
	assert_eq "$(blob_count "$s")" 0 "blobs left"
	sf verify --store "$s" -q
}

# One round: path A unrooted; import B (sharing all of A's files) while a
# gc deletes A. B must come out whole.
race_once() {
	local s=$TMP/race i=$1 a b pid
	rm -rf "$s" "$TMP/ra" "$TMP/rb"
	mk_tree "$TMP/ra" 30 "$i"
	mk_tree "$TMP/rb" 30 "$i"
	a=$(sf import --store "$s" "$TMP/ra")
	sleep 0.05
	sf import --store "$s" --wait --add-root b "$TMP/rb" >"$TMP/b" &
	pid=$!
	sf gc --store "$s" >/dev/null 2>&1
	wait "$pid"
	b=$(cat "$TMP/b")
	sf gc --store "$s" >/dev/null 2>&1
	assert_eq "$(sf list --store "$s")" "$b" "paths after round $i"
	sf nar --store "$s" "$b" | cmp - <(nix-store --dump "$TMP/rb") || fail "B damaged in round $i"
	sf verify --store "$s" -q
}

t_race_import() {
	for i in $(seq 1 "$RACES"); do race_once "$i"; done
}

now_ms() { date +%s%3N; }

# The store the kill rounds start from: one rooted tree, 400 unrooted files.
make_kill_template() {
	local s=$TMP/ktemplate
	mk_tree "$TMP/kr" 20 rooted
	mk_tree "$TMP/kg" 400 garbage
	sf import --store "$s" --add-root r "$TMP/kr" >"$TMP/kr.path"
	sf import --store "$s" "$TMP/kg" >/dev/null
	sleep 0.05
}

kill_once() {
	local ms=$1 s=$TMP/kill pid rc
	rm -rf "$s"
	cp -a "$TMP/ktemplate" "$s"
	sf gc --store "$s" >/dev/null 2>&1 &
	pid=$!
	sleep "$(printf '0.%03d' "$ms")"
	kill -9 "$pid" 2>/dev/null || true
	rc=0
	wait "$pid" || rc=$?
	sf verify --store "$s" -q >"$TMP/v" 2>&1 || { cat "$TMP/v"; fail "verify after a kill at $ms ms"; }
	sf nar --store "$s" "$(cat "$TMP/kr.path")" | cmp - <(nix-store --dump "$TMP/kr")
	# A re-import of the garbage and a full gc both work.
	sf import --store "$s" "$TMP/kg" >/dev/null
	sf gc --store "$s" >/dev/null 2>&1
	assert_eq "$(sf list --store "$s")" "$(cat "$TMP/kr.path")"
	sf verify --store "$s" -q
	[ "$rc" = 137 ] && echo killed >>"$TMP/killed"
	return 0
}

t_kills() {
	local t0 t1 n
	make_kill_template
	cp -a "$TMP/ktemplate" "$TMP/timing"
	t0=$(now_ms)
	sf gc --store "$TMP/timing" >/dev/null 2>&1
	t1=$(now_ms)
	n=$((t1 - t0))
	[ "$n" -lt 999 ] || n=999
	: >"$TMP/killed"
	for i in $(seq 1 "$KILLS"); do
		kill_once $((RANDOM % (n + 1))) || fail "kill point $i broke the store"
	done
	echo "# gc takes ${n} ms; killed mid-gc in $(wc -l <"$TMP/killed") of $KILLS runs"
	[ "$(wc -l <"$TMP/killed")" -ge 1 ] || fail "no gc was killed"
}

t_mount() {
	local s=$TMP/s3 m=$TMP/mnt p q
	mk_tree "$TMP/m1" 3 mounted
	mk_tree "$TMP/m2" 3 other
	p=$(sf import --store "$s" "$TMP/m1")
	q=$(sf import --store "$s" "$TMP/m2")
	start_mount "$s" "$m"
	# Looked up by the mount: a temporary root, kept by gc.
	exec 3<"$m/${p#/nix/store/}/own"
	# Read once, so the mount holds the blob open (docs/gc.md).
	cat "$m/${p#/nix/store/}/own" >/dev/null
	sleep 0.05
	sf gc --store "$s" >"$TMP/out"
	assert_eq "$(cat "$TMP/out")" "$q" "gc deletes only what the mount did not look up"
	grep -q "^[0-9]*$" <(ls "$s/temproots")
	# Deleted anyway: the open file keeps serving, a new lookup is ENOENT.
	sf delete --store "$s" --ignore-liveness "$p" >/dev/null
	assert_eq "$(blob_count "$s")" 0 "blobs left"
	assert_eq "$(cat <&3)" "only in $TMP/m1"
	exec 3<&-
	[ ! -e "$m/${p#/nix/store/}" ] || fail "deleted path still visible"
	stat "$m/${p#/nix/store/}" 2>&1 | grep -q "No such file" || fail "lookup is not ENOENT"
	stop_mount "$m"
	sf verify --store "$s" -q
	# The mount's temporary roots go with it.
	sf import --store "$s" "$TMP/m1" >/dev/null
	sleep 0.05
	sf gc --store "$s" >/dev/null 2>&1
	assert_eq "$(sf list --store "$s" | wc -l)" 0
	[ -z "$(ls "$s/temproots")" ] || fail "a dead mount's temporary roots remain"
}

t_usage() {
	expect_status 2 sf gc --store "$TMP/s1" extra
	expect_status 2 sf gc --store "$TMP/s1" --max-freed lots
	expect_status 2 sf delete --store "$TMP/s1"
	expect_status 2 sf add-root --store "$TMP/s1" onlyname
	expect_status 1 sf add-root --store "$TMP/s1" ../x "$TOP"
	expect_status 1 sf add-root --store "$TMP/s1" x /nix/store/00000000000000000000000000000000-x
	for c in gc delete add-root remove-root; do sf "$c" --help | grep -q "^usage: storefs $c"; done
}

check "gc: roots keep their closure, the rest goes, dry run agrees, verify passes" t_roots_keep_closure
check "delete: refuses rooted or referenced paths, --ignore-liveness" t_delete
check "gc racing $RACES imports sharing blobs with a deleted path loses nothing" t_race_import
check "SIGKILL at $KILLS random moments of a gc: verify and re-import succeed" t_kills
check "mount: looked-up paths are temporary roots; an open file of a deleted path keeps serving" t_mount
t_info() {
	local s=$TMP/s4
	mkdir -p "$TMP/i1" "$TMP/i2"
	head -c 5000 /dev/urandom >"$TMP/i1/big"
	cp "$TMP/i1/big" "$TMP/i2/big"
	cp "$TMP/i1/big" "$TMP/i2/again"
	echo small >"$TMP/i2/small"
	sf import --store "$s" --add-root r1 "$TMP/i1" >/dev/null
	sf import --store "$s" --add-root r2 "$TMP/i2" >/dev/null
	sf info --store "$s" >"$TMP/info"
	cat "$TMP/info"
	grep -qx 'format: storefs local store 2, dir-size spec' "$TMP/info"
	grep -q '^paths: 2 (' "$TMP/info"
	grep -q '^directories: 2 (' "$TMP/info"
	grep -qx 'blobs: 2 (5006 bytes)' "$TMP/info"
	grep -qx 'file-bytes: 15006' "$TMP/info"
	grep -qx 'dedup-saved: 10000' "$TMP/info"
	grep -Eq '^db-bytes: [1-9][0-9]*$' "$TMP/info"
	grep -qx 'orphans: 0 directories, 0 blobs (0 bytes)' "$TMP/info"
	# A blob file nothing references (as an interrupted import leaves):
	# an orphan, which info counts and gc frees.
	# (a file, the layout of earlier releases: docs/store-format.md)
	echo orphan >"$TMP/i3"
	STOREFS_INLINE_MAX=0 sf import --store "$TMP/s5" "$TMP/i3" >/dev/null
	(cd "$TMP/s5" && find blobs -type f) >"$TMP/orphan"
	mkdir -p "$(dirname "$s/$(cat "$TMP/orphan")")"
	cp "$TMP/s5/$(cat "$TMP/orphan")" "$s/$(cat "$TMP/orphan")"
	sf info --store "$s" | grep -qx 'orphans: 0 directories, 1 blobs (7 bytes)'
	sleep 0.05
	sf gc --store "$s" --json | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r["deleted"] == [] and r["blobs"] == 1 and r["bytesFreed"] == 7, r'
	sf info --store "$s" | grep -qx 'orphans: 0 directories, 0 blobs (0 bytes)'
	sf verify --store "$s" -q
}

# --max-freed: every unrooted path and Directory goes, blob deletion stops
# once BYTES are freed (ten 1000-byte blobs: 2500 bytes take three); the
# dry run says the same; the next gc frees the rest.
t_max_freed() {
	local s=$TMP/s6 p
	mkdir -p "$TMP/mf"
	for i in $(seq 0 9); do head -c 1000 /dev/urandom >"$TMP/mf/f$i"; done
	p=$(sf import --store "$s" "$TMP/mf")
	sleep 0.1 # older than the gc's start: see docs/gc.md on fresh blobs
	sf gc --store "$s" --dry-run --max-freed 2500 --json >"$TMP/dry.json"
	sf gc --store "$s" --max-freed 2500 --json >"$TMP/gc.json"
	python3 - "$TMP/dry.json" "$TMP/gc.json" "$p" <<'PY'
import json, sys
dry, real = (json.load(open(f)) for f in sys.argv[1:3])
for r in (dry, real):
    assert r["deleted"] == [sys.argv[3]] and r["directories"] == 1, r
    assert r["blobs"] == 3 and r["bytesFreed"] == 3000, r
PY
	assert_eq "$(blob_count "$s")" 7 "blobs left after --max-freed"
	sf info --store "$s" | grep -qx 'orphans: 0 directories, 7 blobs (7000 bytes)'
	sf verify --store "$s" -q
	sf gc --store "$s" --max-freed 1 2>"$TMP/err" >/dev/null
	grep -qx '0 store paths, 0 directories, 1 blobs deleted, 1000 bytes freed' "$TMP/err"
	sf gc --store "$s" 2>"$TMP/err" >/dev/null
	grep -qx '0 store paths, 0 directories, 6 blobs deleted, 6000 bytes freed' "$TMP/err"
	assert_eq "$(blob_count "$s")" 0 "blobs left after a full gc"
}

# import/nar-import --add-root: the path is rooted (gc keeps it, and only
# it); a bad root name is a usage error before anything is imported.
t_import_add_root() {
	local s=$TMP/s7 kept gone
	mkdir -p "$TMP/nr/kept" "$TMP/nr/gone" "$TMP/nr/bad"
	echo kept >"$TMP/nr/kept/f"
	echo gone >"$TMP/nr/gone/f"
	echo bad >"$TMP/nr/bad/f"
	nix-store --dump "$TMP/nr/kept" >"$TMP/kept.nar"
	nix-store --dump "$TMP/nr/gone" >"$TMP/gone.nar"
	nix-store --dump "$TMP/nr/bad" >"$TMP/bad.nar"
	kept=$(sf nar-import --store "$s" --name kept --add-root nr "$TMP/kept.nar")
	assert_eq "$(readlink "$s/gcroots/nr")" "$kept" "the root's target"
	gone=$(sf nar-import --store "$s" --name gone - <"$TMP/gone.nar")
	for name in ../x .hidden ""; do
		expect_status 2 sf nar-import --store "$s" --name bad --add-root "$name" "$TMP/bad.nar"
		grep -q "invalid root name" "$TMP/err"
		expect_status 2 sf import --store "$s" --add-root "$name" "$TMP/nr/bad"
		grep -q "invalid root name" "$TMP/err"
	done
	assert_eq "$(sf list --store "$s" | wc -l)" 2 "paths after the refused imports"
	sleep 0.1 # older than the gc's start: see docs/gc.md on fresh blobs
	sf gc --store "$s" >"$TMP/out"
	assert_eq "$(cat "$TMP/out")" "$gone" "what gc deleted"
	assert_eq "$(sf list --store "$s")" "$kept"
	sf nar --store "$s" "$kept" | cmp - "$TMP/kept.nar"
	sf verify --store "$s" -q
}

check "gc/delete/add-root/remove-root usage errors" t_usage
check "info: counts, bytes, dedup and orphans" t_info
check "import/nar-import --add-root roots the path; a bad name is refused before importing" t_import_add_root
check "gc --max-freed stops deleting blobs once BYTES are freed; dry run agrees" t_max_freed

# The progress line: marking then sweeping on a terminal, erased before the
# deleted paths and the summary; nothing of it when stderr is not a terminal.
t_progress() {
	local s=$TMP/sp gone
	sf import-nix --store "$s" --nix-store "$NIX_STORE_DIR" -r "$TOP" >/dev/null
	sf add-root --store "$s" top "$TOP"
	mk_tree "$TMP/tp1" 20 p
	gone=$(sf import --store "$s" "$TMP/tp1")
	sleep 0.1 # older than the gc's start: see docs/gc.md on fresh blobs
	on_tty "$STOREFS" gc --store "$s"
	tty_check tty "$TMP/tty" "gc: " >"$TMP/plain"
	grep -aq $'\rgc: marking: ' "$TMP/tty" || fail "no marking line"
	grep -aq $'\rgc: sweeping: ' "$TMP/tty" || fail "no sweeping line"
	assert_eq "$(head -n 1 "$TMP/plain")" "$gone" "the deleted path"
	grep -q '^1 store paths, .* blobs deleted, [0-9]* bytes freed$' "$TMP/plain" ||
		fail "no summary"
	mk_tree "$TMP/tp2" 20 q
	gone=$(sf import --store "$s" "$TMP/tp2")
	sleep 0.1
	STOREFS_PROGRESS_INTERVAL_MS=0 sf gc --store "$s" >"$TMP/out" 2>"$TMP/gc.err"
	assert_eq "$(cat "$TMP/out")" "$gone" "what gc deleted"
	tty_check none "$TMP/gc.err" "gc: "
	sf verify --store "$s" -q
}
check "gc: a progress line on a terminal only, erased before the output" t_progress

#!/bin/bash
# t50-crash.sh - crash safety: `storefs import` killed with SIGKILL at random
# moments leaves a consistent store (`storefs verify` passes: no partial blob
# under its final name, no Directory or PathInfo referring to something
# missing), the next open removes the dead import's temp files, and the same
# import then completes with the Nix-identical path.
. "$(dirname "$0")/lib.sh"

KILLS=${CRASH_KILLS:-50}
SRC=$TMP/src

# A medium tree: 3000 small files in 30 directories, a 20 MiB file.
make_tree() {
	python3 - "$SRC" <<'EOF'
import os, random, sys
root = sys.argv[1]
rnd = random.Random(50)
for d in range(30):
    sub = os.path.join(root, f"d{d:02}", "x" if d % 3 else "")
    os.makedirs(sub, exist_ok=True)
    for f in range(100):
        with open(os.path.join(sub, f"f{f:03}"), "wb") as fh:
            fh.write(rnd.randbytes(rnd.randrange(0, 8192)))
    os.symlink(f"f000", os.path.join(sub, "link"))
os.chmod(os.path.join(root, "d00", "f001"), 0o755)
with open(os.path.join(root, "big"), "wb") as fh:
    fh.write(rnd.randbytes(20 << 20))
EOF
}

make_tree
NIXPATH=$(nix_store --add "$SRC")
NIXPATH=/nix/store/$(basename "$NIXPATH")

now_ms() { date +%s%3N; }

t_reference_import() {
	local s=$TMP/ref t0 t1 p
	t0=$(now_ms)
	p=$("$STOREFS" import --store "$s" "$SRC")
	t1=$(now_ms)
	assert_eq "$p" "$NIXPATH" "path of a full import"
	echo $((t1 - t0)) >"$TMP/duration"
	echo "a full import takes $((t1 - t0)) ms" | tee -a "$TMP/figures"
	"$STOREFS" verify --store "$s" -q
}

# One kill point: a fresh store, import, SIGKILL after $1 ms.
kill_once() {
	local ms=$1 s=$TMP/crash pid rc p left
	rm -rf "$s"
	"$STOREFS" import --store "$s" "$SRC" >/dev/null 2>&1 &
	pid=$!
	sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
	kill -9 "$pid" 2>/dev/null
	wait "$pid"
	rc=$?
	[ -d "$s" ] || return 0 # killed before it created anything
	# verify opens the store for writing: that open removes dead temp files.
	"$STOREFS" verify --store "$s" -q >"$TMP/v" 2>&1 ||
		{ cat "$TMP/v"; fail "verify after a kill at $ms ms failed"; }
	left=$(find "$s/tmp" -name "$pid.*" 2>/dev/null | wc -l)
	[ "$left" = 0 ] || fail "$left temp files of killed pid $pid remain"
	p=$("$STOREFS" import --store "$s" "$SRC") || fail "re-import after a kill at $ms ms failed"
	assert_eq "$p" "$NIXPATH" "path after a kill at $ms ms"
	"$STOREFS" verify --store "$s" -q >"$TMP/v" 2>&1 ||
		{ cat "$TMP/v"; fail "verify after the re-import failed"; }
	[ "$rc" = 137 ] && echo killed >>"$TMP/killed"
	return 0
}

t_kills() {
	local n ms i
	n=$(cat "$TMP/duration")
	: >"$TMP/killed"
	for i in $(seq 1 "$KILLS"); do
		# Within the first 3/4 of the reference import's time: an import
		# runs faster once the tree is in the page cache, and points
		# near its end would mostly find it finished.
		ms=$((RANDOM % (n * 3 / 4 + 1)))
		kill_once "$ms" || fail "kill point $i ($ms ms of $n) broke the store"
	done
	echo "kill points survived: $(wc -l <"$TMP/killed") killed mid-import" \
		"(of $KILLS runs; the others finished first)" | tee -a "$TMP/figures"
	# A third at least: kills before the store exists or after a faster
	# run finished do not count.
	[ "$(wc -l <"$TMP/killed")" -ge $((KILLS / 3)) ] || fail "too few imports were killed"
}

t_stale_tmp_cleaned() {
	local s=$TMP/ref
	# A temp file of a process that is gone, as a killed import leaves it.
	sh -c 'exit 0' &
	local dead=$!
	wait "$dead"
	echo partial >"$s/tmp/$dead.0.deadbeef"
	touch "$s/tmp/notours"
	"$STOREFS" verify --store "$s" -q
	[ ! -e "$s/tmp/$dead.0.deadbeef" ] || fail "the dead writer's temp file remains"
	[ -e "$s/tmp/notours" ] || fail "a foreign file in tmp/ was removed"
}

check "a full import gives the Nix path" t_reference_import
check "SIGKILL at $KILLS random moments: verify passes, temp files go, re-import works" t_kills
check "the next open removes temp files of dead writers only" t_stale_tmp_cleaned
[ -f "$TMP/figures" ] && sed 's/^/# /' "$TMP/figures"
exit 0

#!/bin/bash
# t52-stress.sh - concurrency and resource bounds of the mount:
#  - 16 concurrent readers (tests/tools/readstress) over a mounted tree for
#    STRESS_SECONDS (default 30), every byte compared with the source: zero
#    errors, the daemon's RSS flat, while imports run into the mounted store
#    and their new paths are read through the mount;
#  - the same with a ThreadSanitizer build of storefs (build-tsan/, built
#    or brought up to date here with clang) over a smaller tree, every blob
#    file touched first so that each first open hashes it: no TSan report;
#  - a walk reading every file of a tree of more than 25000 files under
#    `ulimit -n 1024` (the reader cache is sized from the limit,
#    docs/limits.md) with the daemon's open descriptors staying bounded.
. "$(dirname "$0")/lib.sh"

SECS=${STRESS_SECONDS:-30}
READSTRESS=${READSTRESS:-$TOOLS/readstress}
TSAN_BUILD=${TSAN_BUILD:-$ROOT/build-tsan}

# make_tree DIR NFILES SEED: NFILES files of 0..256 KiB in 40 directories,
# one of 24 MiB, symlinks.
make_tree() {
	python3 - "$@" <<'EOF'
import os, random, sys
root, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(seed)
for i in range(n):
    d = os.path.join(root, f"d{i % 40:02}", f"e{i % 7}")
    os.makedirs(d, exist_ok=True)
    size = rnd.choice([0, 1, 100, 4096, 5000, 65536, 200000, rnd.randrange(262144)])
    with open(os.path.join(d, f"f{i}"), "wb") as f:
        f.write(rnd.randbytes(size))
with open(os.path.join(root, "big"), "wb") as f:
    f.write(rnd.randbytes(24 << 20))
os.symlink("big", os.path.join(root, "link"))
EOF
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
fd_count() { ls "/proc/$1/fd" | wc -l; }

SRC=$TMP/src
S=$TMP/store
M=$TMP/mnt
make_tree "$SRC" 4000 1
P=$("$STOREFS" import --store "$S" "$SRC")
NAME=$(basename "$P")

# stress STOREFS-BINARY SECONDS THREADS: readers + concurrent imports.
stress() {
	local bin=$1 secs=$2 threads=$3 rss0 rss1 p2 i
	STOREFS=$bin start_mount "$S" "$M"
	# Warm up, so the baseline includes the inode table of a full walk.
	"$READSTRESS" "$M/$NAME" "$SRC" 3 "$threads" >/dev/null
	rss0=$(rss_kb "$MOUNT_PID")
	"$READSTRESS" "$M/$NAME" "$SRC" "$secs" "$threads" >"$TMP/readers.out" 2>&1 &
	local rpid=$!
	# Imports into the mounted store while it is read.
	for i in 1 2 3; do
		mkdir -p "$TMP/new$i"
		echo "new tree $i $RANDOM" >"$TMP/new$i/file"
		head -c $((i << 20)) /dev/urandom >"$TMP/new$i/blob"
		p2=$("$STOREFS" import --store "$S" "$TMP/new$i")
		for _ in $(seq 100); do [ -e "$M/$(basename "$p2")" ] && break; sleep 0.1; done
		cmp "$M/$(basename "$p2")/blob" "$TMP/new$i/blob" ||
			fail "new path $p2 not readable through the mount"
	done
	wait "$rpid" || { cat "$TMP/readers.out"; fail "readers failed"; }
	cat "$TMP/readers.out"
	rss1=$(rss_kb "$MOUNT_PID")
	echo "daemon RSS: $rss0 KiB after warm-up, $rss1 KiB after ${secs}s of $threads readers"
	[ "$rss1" -le $((rss0 + rss0 / 2 + 20480)) ] ||
		fail "RSS grew from $rss0 KiB to $rss1 KiB"
	kill -0 "$MOUNT_PID" || fail "the mount died"
	stop_mount "$M"
}

t_stress() {
	set -o pipefail
	stress "$STOREFS" "$SECS" 16 | tee "$TMP/stress.out"
	echo "16 readers, ${SECS}s: $(grep '^reads' "$TMP/stress.out"); $(grep RSS "$TMP/stress.out")" \
		>>"$TMP/figures"
}

tsan_build() {
	command -v clang >/dev/null || fail "clang is not installed"
	{ [ -f "$TSAN_BUILD/build.ninja" ] ||
		CC=clang cmake -S "$ROOT" -B "$TSAN_BUILD" -G Ninja -DSTOREFS_TSAN=ON >/dev/null; } &&
		cmake --build "$TSAN_BUILD" --target storefs >"$TMP/tsan-build.log" 2>&1 ||
		{ tail -20 "$TMP/tsan-build.log"; fail "TSan build failed"; }
}

t_tsan() {
	set -o pipefail
	tsan_build
	rm -rf "$SRC" "$S"
	make_tree "$SRC" 600 2
	P=$("$STOREFS" import --store "$S" "$SRC")
	NAME=$(basename "$P")
	# Stale identities: every first open hashes the file and records it,
	# concurrently, in the daemon's verified cache.
	find "$S/blobs" -type f -exec touch {} +
	export TSAN_OPTIONS="halt_on_error=0 log_path=$TMP/tsanlog second_deadlock_stack=1"
	stress "$TSAN_BUILD/storefs" "$((SECS / 2 > 5 ? SECS / 2 : 5))" 16 | tee "$TMP/tsanrun.out"
	unset TSAN_OPTIONS
	if ls "$TMP"/tsanlog.* >/dev/null 2>&1; then
		head -60 "$TMP"/tsanlog.*
		fail "ThreadSanitizer reported $(cat "$TMP"/tsanlog.* | grep -c '^WARNING: ThreadSanitizer') warnings"
	fi
	echo "TSan, 16 readers: $(grep '^reads' "$TMP/tsanrun.out"), no reports" >>"$TMP/figures"
}

t_many_files() {
	local src=$TMP/many s=$TMP/many-store m=$TMP/many-mnt p maxfd=0 fds
	python3 - "$src" <<'EOF'
import os, sys
root = sys.argv[1]
for i in range(25600):
    d = os.path.join(root, f"d{i % 100:02}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i}"), "w") as f:
        f.write(f"file {i}\n")
EOF
	p=$("$STOREFS" import --store "$s" "$src")
	ulimit -n 1024 # the cache follows the limit (docs/limits.md): bound it here
	start_mount "$s" "$m"
	python3 - "$m/$(basename "$p")" "$src" >"$TMP/walk.out" 2>&1 <<'EOF' &
import os, sys
mnt, src = sys.argv[1], sys.argv[2]
n = 0
for dirpath, dirs, files in os.walk(mnt):
    rel = os.path.relpath(dirpath, mnt)
    for name in files:
        with open(os.path.join(dirpath, name), "rb") as f:
            data = f.read()
        with open(os.path.join(src, rel, name), "rb") as g:
            assert data == g.read(), name
        n += 1
print(f"read {n} files")
assert n == 25600, n
EOF
	local wpid=$!
	while kill -0 "$wpid" 2>/dev/null; do
		fds=$(fd_count "$MOUNT_PID")
		[ "$fds" -gt "$maxfd" ] && maxfd=$fds
		sleep 0.2
	done
	wait "$wpid" || { cat "$TMP/walk.out"; fail "the walk failed"; }
	cat "$TMP/walk.out"
	fds=$(fd_count "$MOUNT_PID")
	echo "daemon open descriptors: at most $maxfd during the walk, $fds after (ulimit -n $(ulimit -n))"
	echo "25600-file walk: $(cat "$TMP/walk.out"), daemon fds max $maxfd" >>"$TMP/figures"
	[ "$maxfd" -le 1500 ] || fail "the daemon held $maxfd descriptors"
	stop_mount "$m"
}

check "16 concurrent readers with imports into the mounted store: no error, RSS flat" t_stress
check "the same under ThreadSanitizer (smaller tree): no report" t_tsan
check "a walk over 25600 files through the mount: every file read, descriptors bounded" t_many_files
[ -f "$TMP/figures" ] && sed 's/^/# /' "$TMP/figures"
exit 0

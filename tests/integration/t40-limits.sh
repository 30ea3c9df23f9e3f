#!/bin/bash
# t40-limits.sh - robustness against ordinary limits and slow or hostile
# peers (docs/limits.md): descriptor limits, deadlines of the substituter,
# parallel lookups, negative entries, serve's connection limits.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
shopt -s inherit_errexit

S=$TMP/store
SRC=$TMP/src

# Reads every regular file below $1; fails naming the first unreadable one.
read_all() {
	python3 - "$1" <<'PY'
import os, sys
n = 0
for d, _, files in os.walk(sys.argv[1]):
    for f in files:
        p = os.path.join(d, f)
        try:
            with open(p, "rb") as fh:
                fh.read()
        except OSError as e:
            sys.exit(f"{p}: {e} after {n} files")
        n += 1
print(f"read {n} files")
PY
}

# 5,000 distinct files under a descriptor limit of 256 (soft and hard):
# the reader cache sizes itself from the limit and gives descriptors back
# when the process runs out.
t_nofile_256() {
	local t=$SRC/many m=$TMP/m-nofile p
	mkdir -p "$t"
	python3 -c '
import os, sys
for i in range(5000):
    d = os.path.join(sys.argv[1], "d%02d" % (i % 50))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%d" % i), "w") as f:
        f.write("file %d\n" % i)' "$t"
	p=$(sf import --store "$S" "$t")
	ulimit -n 256
	start_mount "$S" "$m"
	read_all "$m/$(base "$p")" | tee "$TMP/read.out"
	grep -qx "read 5000 files" "$TMP/read.out"
	stop_mount "$m"
	! grep -q "cannot open blob" "$TMP/mount.log" || fail "EIO logged: $(cat "$TMP/mount.log")"
}

# A soft limit below the hard one is raised to it at start.
t_nofile_raised() {
	local m=$TMP/m-raise
	ulimit -Sn 300
	start_mount "$S" "$m"
	grep "^Max open files" /proc/"$MOUNT_PID"/limits | tee "$TMP/limits"
	read -r _ _ _ soft hard2 _ <"$TMP/limits"
	assert_eq "$soft" "$hard2" "soft limit"
	[ "$soft" != 300 ] || fail "soft limit not raised"
	stop_mount "$m"
}

check "5,000 distinct files read under ulimit -n 256" t_nofile_256
check "the soft descriptor limit is raised to the hard one" t_nofile_raised

#!/bin/bash
# t51-corruption.sh - damaged stores: a flipped byte in a blob file is never
# served (cat, nar, the mount give errors), `storefs verify` names it and
# --repair-from fixes it; deleted Directory records and blob files give EIO
# through the mount, which keeps serving everything else.
. "$(dirname "$0")/lib.sh"

# A tree: small files, a 100 MiB file, subdirectories.
make_tree() {
	local d=$1
	mkdir -p "$d/sub/deeper" "$d/other"
	for i in $(seq 1 20); do echo "small file $i $d" >"$d/f$i"; done
	echo "in sub" >"$d/sub/a"
	echo "in deeper" >"$d/sub/deeper/b"
	echo "other file" >"$d/other/c"
	head -c $((100 << 20)) /dev/urandom >"$d/big"
	ln -s f1 "$d/link"
}

SRC=$TMP/src
make_tree "$SRC"
S=$TMP/s
S2=$TMP/s2
P=$("$STOREFS" import --store "$S" "$SRC")
P2=$("$STOREFS" import --store "$S2" "$SRC")
NAME=$(basename "$P")
b3() { b3sum --no-names "$1"; }
corruptions=0

t_same_path() {
	assert_eq "$P2" "$P" "store path of the same tree"
	"$STOREFS" verify --store "$S" -q
}

t_cat_flipped() {
	local d
	d=$(b3 "$SRC/f3")
	"$TAMPER" flip-blob "$S" "$d" 3
	if "$STOREFS" cat --store "$S" "$P/f3" >"$TMP/out" 2>"$TMP/err"; then
		fail "cat of a flipped blob succeeded"
	fi
	cat "$TMP/err"
	[ ! -s "$TMP/out" ] || fail "cat wrote $(wc -c <"$TMP/out") bytes of a damaged blob"
	grep -q "failed verification\|missing" "$TMP/err" || fail "no verification error"
	[ -e "$S/quarantine/$d" ] || fail "the damaged file was not quarantined"
	[ ! -e "$("$TAMPER" blob-path "$S" "$d")" ] || fail "the damaged file is still served"
	# Once quarantined: still an error, never data.
	expect_fail "$STOREFS" cat --store "$S" "$P/f3" >"$TMP/out"
	[ ! -s "$TMP/out" ] || fail "second cat wrote data"
}

t_nar_flipped() {
	"$TAMPER" flip-blob "$S" "$(b3 "$SRC/sub/a")" 0
	expect_fail "$STOREFS" nar --store "$S" "$P" >/dev/null
}

t_verify_names_it() {
	local d
	d=$(b3 "$SRC/other/c")
	"$TAMPER" flip-blob "$S" "$d" 1 # not read since: verify finds it itself
	if "$STOREFS" verify --store "$S" >"$TMP/v" 2>"$TMP/verr"; then
		cat "$TMP/v"
		fail "verify passed a damaged store"
	fi
	cat "$TMP/v"
	grep -q "$d" "$TMP/v" || fail "verify does not name blob $d"
	grep -q "path $P: " "$TMP/v" || fail "verify does not name the path"
	grep -q ": [1-9][0-9]* problems\?$" "$TMP/v" || fail "no summary"
	corruptions=$(grep '^quarantined .*missing\|^blob ' "$TMP/v" | cut -d' ' -f2 | sort -u | wc -l)
	echo "corruptions detected by verify: $corruptions" | tee -a "$TMP/figures"
	[ "$corruptions" = 3 ] || fail "expected 3 damaged blobs, verify found $corruptions"
}

t_repair() {
	"$STOREFS" verify --store "$S" --repair-from "$S2" >"$TMP/v" || {
		cat "$TMP/v"
		fail "repair did not leave a clean store"
	}
	cat "$TMP/v"
	grep -q "objects repaired: 0 problems" "$TMP/v" || fail "no repair summary"
	"$STOREFS" verify --store "$S" -q
	"$STOREFS" cat --store "$S" "$P/f3" | cmp - "$SRC/f3"
	"$STOREFS" nar --store "$S" "$P" | cmp - <(nix_store --dump "$SRC")
}

t_repair_missing_everywhere() {
	local s3=$TMP/s3
	"$STOREFS" import --store "$s3" "$SRC" >/dev/null
	"$TAMPER" delete-blob "$s3" "$(b3 "$SRC/f5")"
	"$TAMPER" delete-blob "$S2" "$(b3 "$SRC/f5")"
	expect_fail "$STOREFS" verify --store "$s3" --repair-from "$S2" >"$TMP/v"
	cat "$TMP/v"
	grep -q "cannot repair" "$TMP/v" || fail "no 'cannot repair' line"
	"$STOREFS" import --store "$S2" "$SRC" >/dev/null # heal S2 for later tests
	"$STOREFS" verify --store "$s3" --repair-from "$S2" -q
}

# --- through the mount ---

M=$TMP/mnt
S4=$TMP/s4

t_mount_flipped() {
	local small big off
	"$STOREFS" import --store "$S4" "$SRC" >/dev/null
	small=$(b3 "$SRC/f7")
	big=$(b3 "$SRC/big")
	off=$(((RANDOM * 32768 + RANDOM) % (100 << 20)))
	"$TAMPER" flip-blob "$S4" "$small" 0
	"$TAMPER" flip-blob "$S4" "$big" "$off"
	start_mount "$S4" "$M"
	python3 - "$M/$NAME" "$off" "$SRC" <<'EOF'
import errno, os, random, sys
root, off, src = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def must_eio(path, at, n):
    try:
        with open(path, "rb") as f:
            f.seek(at)
            data = f.read(n)
    except OSError as e:
        assert e.errno == errno.EIO, f"{path}: errno {e.errno}, expected EIO"
        return
    raise AssertionError(f"{path}: read {len(data)} bytes of a damaged blob at {at}")
must_eio(root + "/f7", 0, 100)
must_eio(root + "/big", off, 4096)
must_eio(root + "/big", random.randrange(100 << 20), 4096)
must_eio(root + "/big", off, 4096)  # again: quarantined now
for name in ["f1", "f2", "sub/a", "other/c"]:
    with open(root + "/" + name, "rb") as f, open(src + "/" + name, "rb") as g:
        assert f.read() == g.read(), name
print("mount: EIO for 2 flipped blobs (small, 100 MiB at a random offset); others intact")
EOF
	echo "mount: 2 flipped blobs detected (EIO), 100 MiB one flipped at offset $off" >>"$TMP/figures"
	[ -e "$S4/quarantine/$big" ] || fail "big blob not quarantined"
	kill -0 "$MOUNT_PID" || fail "the mount died"
	grep -c "error: blob .* failed verification: its content" "$TMP/mount.log" | grep -qx 2 ||
		{ cat "$TMP/mount.log"; fail "expected one log line per damaged blob"; }
	stop_mount "$M"
}

# A push (docs/fuse.md "Pushing small files") that meets the damaged blob
# before any read of it: quarantined and logged once, the read is EIO.
# One round (page_cache_retry): a store with f7 flipped, mounted at $M; 1,
# unmounted, if the push did not meet f7 (the kernel's inodes dropped).
FLIP_ROUNDS=0
flipped_push_round() {
	local s=$TMP/s5-$((++FLIP_ROUNDS)) # a fresh store each round
	"$STOREFS" import --store "$s" "$SRC" >/dev/null || return 2
	"$TAMPER" flip-blob "$s" "$(b3 "$SRC/f7")" 2 || return 2
	start_mount "$s" "$M" || return 2
	ls "$M/$NAME" >/dev/null || return 2 # the kernel gets its inodes, as a walk would
	cmp "$M/$NAME/f1" "$SRC/f1" || { fail "f1 differs"; return 2; }
	sleep 1 # f10..f19, f2, f20, f3.. f7 are pushed meanwhile
	if grep -q "failed verification" "$TMP/mount.log"; then return 0; fi
	stop_mount "$M" || return 2
	return 1
}

t_mount_flipped_pushed() {
	page_cache_retry flipped_push_round
	! cat "$M/$NAME/f7" >/dev/null 2>"$TMP/err" || fail "cat of a flipped blob succeeded"
	grep -q "Input/output error" "$TMP/err" || fail "not EIO: $(cat "$TMP/err")"
	for i in 2 3 4 5 6 8 9 10 20; do cmp "$M/$NAME/f$i" "$SRC/f$i" || fail "f$i differs"; done
	grep -c "error: blob .* failed verification: its content" "$TMP/mount.log" | grep -qx 1 ||
		{ cat "$TMP/mount.log"; fail "expected one log line for the damaged blob"; }
	stop_mount "$M"
}

t_mount_deleted() {
	local sub deeper_dir blob M2=$TMP/mnt2
	start_mount "$S2" "$M2" # same content: digests without touching $S4's mount
	local m2pid=$MOUNT_PID
	sub=$(getfattr --only-values -n user.storefs.castore.directory.digest "$M2/$NAME/sub")
	blob=$(getfattr --only-values -n user.storefs.castore.blob.digest "$M2/$NAME/other/c")
	MOUNT_PID=$m2pid stop_mount "$M2"
	"$STOREFS" import --store "$S4" "$SRC" >/dev/null
	start_mount "$S4" "$M"
	"$TAMPER" delete-dir "$S4" "$sub"
	"$TAMPER" delete-blob "$S4" "$blob"
	python3 - "$M/$NAME" "$SRC" <<'EOF'
import errno, os, sys
root, src = sys.argv[1], sys.argv[2]
def must_eio(fn, what):
    try:
        fn()
    except OSError as e:
        assert e.errno == errno.EIO, f"{what}: errno {e.errno}, expected EIO"
        return
    raise AssertionError(f"{what}: succeeded")
must_eio(lambda: os.listdir(root + "/sub"), "listing a deleted Directory")
must_eio(lambda: os.stat(root + "/sub/a"), "a file in a deleted Directory")
must_eio(lambda: open(root + "/other/c", "rb").read(), "reading a deleted blob")
for name in ["f1", "f9", "other", "link"]:
    os.lstat(root + "/" + name)
for name in ["f1", "f2", "f20"]:
    with open(root + "/" + name, "rb") as f, open(src + "/" + name, "rb") as g:
        assert f.read() == g.read(), name
assert sorted(os.listdir(root + "/other")) == ["c"]
print("EIO for the deleted objects; the rest is served")
EOF
	kill -0 "$MOUNT_PID" || fail "the mount died"
	echo "mount: deleted Directory record and deleted blob detected (EIO)" >>"$TMP/figures"
	expect_fail "$STOREFS" verify --store "$S4" -q >"$TMP/v"
	cat "$TMP/v"
	grep -q "$sub" "$TMP/v" || fail "verify does not name the deleted directory"
	"$STOREFS" verify --store "$S4" --repair-from "$S2" -q
	python3 -c "import os,sys; assert os.listdir(sys.argv[1])" "$M/$NAME/sub" 2>/dev/null ||
		echo "(the mount keeps its negative answer for sub until remounted)"
	stop_mount "$M"
}

check "the same tree gives the same path in two stores" t_same_path
check "cat of a flipped blob fails without writing it, and quarantines it" t_cat_flipped
check "nar of a path with a flipped blob fails" t_nar_flipped
check "verify exits 1 naming a flipped blob and its path" t_verify_names_it
check "verify --repair-from a second store fixes it" t_repair
check "repair reports what the other store lacks" t_repair_missing_everywhere
check "mount: EIO for a flipped small and 100 MiB file, never the data" t_mount_flipped
check "mount: a flipped small blob met by a push first is EIO, logged once" t_mount_flipped_pushed
check "mount: deleted Directory record and blob give EIO; the rest is served" t_mount_deleted
[ -f "$TMP/figures" ] && sed 's/^/# /' "$TMP/figures"
exit 0

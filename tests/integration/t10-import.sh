#!/bin/bash
# t10-import.sh - storefs import / nar / path-info / ls / cat, with nix-store
# (a throwaway chroot store) as the oracle for store paths and NARs.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
shopt -s inherit_errexit # failures inside $(...) fail the test too

S=$TMP/store # the storefs store most tests share
T=$TMP/trees # generated input trees

# one_error_line CMD-NAME: $TMP/err is exactly one "storefs CMD: ..." line.
one_error_line() {
	assert_eq "$(wc -l <"$TMP/err")" 1 "stderr lines"
	grep -q "^storefs $1: " "$TMP/err" || fail "stderr does not start with 'storefs $1: '"
}

# same_as_nix SRC: storefs import prints what nix-store --add prints, and
# storefs nar is byte-identical to nix-store --dump of that path.
same_as_nix() {
	local ours theirs
	ours=$(sf import --store "$S" "$1") || return 1
	theirs=$(nix_store --add "$1") || return 1
	assert_eq "$ours" "$theirs" "store path of $1" || return 1
	sf nar --store "$S" "$ours" >"$TMP/ours.nar" || return 1
	nix_store --dump "$(nix_phys "$theirs")" >"$TMP/theirs.nar" || return 1
	cmp "$TMP/ours.nar" "$TMP/theirs.nar" || return 1
	echo "$ours"
}

# Blobs of either kind (files, and small ones inline in LMDB: docs/store-format.md).
blob_count() { "$STOREFS" info --store "$1" | awk '$1 == "blobs:" { print $2 }'; }

# --- generated trees ---

mk_src() { # the tree of the reference vectors (tests/data/vectors.json)
	mkdir -p "$1/sub"
	printf 'hello\n' >"$1/hello.txt"
	printf '#!/bin/sh\necho hi\n' >"$1/run.sh"
	chmod 0755 "$1/run.sh"
	chmod 0644 "$1/hello.txt"
	ln -s hello.txt "$1/link"
	printf x >"$1/sub/a"
}

t_vector_tree() {
	mk_src "$T/vec/src"
	p=$(same_as_nix "$T/vec/src")
	assert_eq "$p" /nix/store/l9rn5vshcpbv9a2p97sdbsijinb3iyax-src "vector path"
}

t_empty_dir() {
	mkdir -p "$T/e/empty"
	same_as_nix "$T/e/empty"
}

t_single_file() {
	mkdir -p "$T/f"
	printf 'flat file\n' >"$T/f/flat.txt"
	p=$(same_as_nix "$T/f/flat.txt")
	assert_eq "$p" /nix/store/qc4h59vfx5px2mkzvrlvkwjzq2wb4psf-flat.txt "flat.txt path"
}

t_exec_file() {
	mkdir -p "$T/x"
	printf '#!/bin/sh\n' >"$T/x/tool"
	chmod 0700 "$T/x/tool"
	same_as_nix "$T/x/tool"
	# Only the owner bit counts: g+x/o+x alone is not executable.
	printf 'data\n' >"$T/x/gx"
	chmod 0655 "$T/x/gx"
	same_as_nix "$T/x/gx"
}

t_symlink_root() {
	mkdir -p "$T/l"
	ln -s /some/absolute/target "$T/l/alink"
	same_as_nix "$T/l/alink"
	ln -s ../relative "$T/l/rlink"
	same_as_nix "$T/l/rlink"
	# A trailing slash does not follow the link (as in Nix).
	mkdir -p "$T/l/d"
	ln -s d "$T/l/dlink"
	assert_eq "$(sf import --store "$S" "$T/l/dlink/")" "$(nix_store --add "$T/l/dlink")"
}

t_nested() {
	mkdir -p "$T/n/nested/a/b/c" "$T/n/nested/a/d" "$T/n/nested/e"
	echo 1 >"$T/n/nested/a/b/c/f1"
	echo 2 >"$T/n/nested/a/d/f2"
	echo 3 >"$T/n/nested/top"
	ln -s a/b "$T/n/nested/e/up"
	same_as_nix "$T/n/nested"
	# Identical subdirectories and several empty ones (one Directory each).
	mkdir -p "$T/n/twin/a" "$T/n/twin/b" "$T/n/twin/e1" "$T/n/twin/e2" "$T/n/twin/c/e3"
	echo 1 >"$T/n/twin/a/f"
	echo 1 >"$T/n/twin/b/f"
	same_as_nix "$T/n/twin"
}

t_non_ascii() {
	mkdir -p "$T/u/names"
	echo e >"$T/u/names/é"
	echo ff >"$T/u/names/"$'\xff'
	mkdir "$T/u/names/"$'dir\x01ctl'
	echo s >"$T/u/names/"$'dir\x01ctl/sp ace'
	same_as_nix "$T/u/names"
}

t_sort_order() {
	mkdir -p "$T/o/order"
	for n in -y .hid 10 9 B Z _x a '~t' é; do
		echo "$n" >"$T/o/order/$n"
	done
	p=$(same_as_nix "$T/o/order")
	sf ls --store "$S" "$p" >"$TMP/ls"
	printf '%s\n' -y .hid 10 9 B Z _x a '~t' é | cmp - "$TMP/ls"
}

t_big_file() {
	mkdir -p "$T/b/big"
	head -c $((5 * 1024 * 1024)) /dev/urandom >"$T/b/big/five"
	head -c $((1024 * 1024)) /dev/urandom >"$T/b/big/exactly1m"
	head -c $((1024 * 1024 + 1)) /dev/urandom >"$T/b/big/1m+1"
	p=$(same_as_nix "$T/b/big")
	sf cat --store "$S" "$p/five" | cmp - "$T/b/big/five"
	sf cat --store "$S" "$p/1m+1" | cmp - "$T/b/big/1m+1"
}

t_hard_links() {
	mkdir -p "$T/h/hl/d"
	echo shared >"$T/h/hl/one"
	ln "$T/h/hl/one" "$T/h/hl/two"
	ln "$T/h/hl/one" "$T/h/hl/d/three"
	same_as_nix "$T/h/hl"
}

t_empty_file() {
	mkdir -p "$T/z/withempty"
	: >"$T/z/empty"
	: >"$T/z/withempty/nothing"
	same_as_nix "$T/z/empty"
	same_as_nix "$T/z/withempty"
}

t_deep() {
	local d=$T/deep/deep30
	mkdir -p "$d"
	for i in $(seq 30); do d=$d/l$i; done
	mkdir -p "$d"
	echo bottom >"$d/f"
	same_as_nix "$T/deep/deep30"
}

t_too_deep() {
	local d=$T/deep/deep70 i
	for i in $(seq 70); do d=$d/x; done
	mkdir -p "$d"
	expect_status 1 sf import --store "$S" "$T/deep/deep70"
	one_error_line import
	grep -q "nested" "$TMP/err"
}

t_zoneinfo() {
	[ -d /usr/share/zoneinfo ] || { echo "no zoneinfo"; return 0; }
	p=$(same_as_nix /usr/share/zoneinfo)
	echo "$p"
}

# --- properties ---

t_dedup() {
	local s2=$TMP/dedup-store
	mkdir -p "$T/dd/dup/sub"
	for f in a b sub/c; do echo same >"$T/dd/dup/$f"; done
	echo other >"$T/dd/dup/d"
	head -c 3000000 /dev/zero >"$T/dd/dup/big1"
	cp "$T/dd/dup/big1" "$T/dd/dup/sub/big2"
	sf import --store "$s2" "$T/dd/dup" >/dev/null
	assert_eq "$(blob_count "$s2")" 3 "blobs for 6 files with 3 distinct contents"
}

t_reimport() {
	local s3=$TMP/re-store p1 p2 before
	mk_src "$T/re/src"
	p1=$(sf import --store "$s3" "$T/re/src")
	before=$(blob_count "$s3")
	sf path-info --store "$s3" "$p1" >"$TMP/pi1"
	p2=$(sf import --store "$s3" "$T/re/src")
	assert_eq "$p2" "$p1" "second import"
	assert_eq "$(blob_count "$s3")" "$before" "blob count after re-import"
	sf path-info --store "$s3" "$p2" | cmp - "$TMP/pi1"
	# Several paths in one call: one line each.
	sf import --store "$s3" "$T/re/src" "$T/re/src/hello.txt" >"$TMP/two"
	assert_eq "$(wc -l <"$TMP/two")" 2 "lines for two paths"
}

# Blobs durable before registration (docs/store-format.md "Durability"):
# every blob file, its shard directories and blobs/ are fsynced, from
# whichever thread, before the index commit that registers the path.
t_synced_before_registered() {
	local s=$TMP/sync-store src=$T/sync p i
	mkdir -p "$src/a" "$src/b"
	for i in $(seq 12); do
		head -c 40000 /dev/urandom >"$src/a/f$i" # above the inline limit: a file
		head -c 50000 /dev/urandom >"$src/b/g$i"
		printf 'small %s\n' "$i" >"$src/b/s$i"
	done
	# LeakSanitizer cannot run under ptrace (the ASan build): leaks are
	# looked for by every other check.
	p=$(ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		strace -f -y -ttt -qq -e trace=fsync,fdatasync -o "$TMP/sync.log" \
		"$STOREFS" import --store "$s" "$src")
	assert_eq "$p" "$(nix_store --add "$src")" "store path"
	python3 "$HERE/sync_order.py" "$s" "$TMP/sync.log"
}

# A re-import finds small blobs by their stored value, with no lookup of a
# blob file per blob (docs/import.md): none of its stat calls names blobs/.
t_reimport_no_file_lookups() {
	local s=$TMP/lookup-store src=$T/lookup i n p
	mkdir -p "$src"
	for i in $(seq 50); do
		printf 'small blob %s\n' "$i" >"$src/f$i"
	done
	p=$(sf import --store "$s" "$src")
	assert_eq "$(ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		strace -f -qq -e trace=newfstatat,statx -o "$TMP/lookup.log" \
		"$STOREFS" import --store "$s" "$src")" "$p" "re-import"
	n=$(grep -c '"blobs/' "$TMP/lookup.log" || true)
	assert_eq "$n" 0 "stat calls on blob files"
}

# Issue 14: a tree already registered with the same NAR hash costs reads and
# hashes only: no blob file, no temp file, no LMDB commit (the lock files
# aside: import.lock records the importer, lock.mdb LMDB's readers).
t_reimport_writes_nothing() {
	local s=$TMP/nowrite-store src=$T/nowrite p changed
	mk_src "$src"
	head -c 3000000 /dev/urandom >"$src/large" # over 1 MiB: streamed, not read whole
	p=$(sf import --store "$s" "$src")
	sleep 0.05
	touch "$TMP/marker"
	sleep 0.05
	assert_eq "$(sf import --store "$s" "$src")" "$p" "re-import"
	changed=$(cd "$s" && find . -newer "$TMP/marker" ! -name import.lock ! -name lock.mdb)
	assert_eq "$changed" "" "store entries changed by the re-import"
	sf verify --store "$s" -q
}

t_path_info() {
	local p h
	mk_src "$T/pi/src"
	p=$(sf import --store "$S" "$T/pi/src")
	nix_store --add "$T/pi/src" >/dev/null
	sf path-info --store "$S" "$p" >"$TMP/pi"
	cat "$TMP/pi"
	assert_eq "$(head -n1 "$TMP/pi")" "$p" "first line"
	assert_eq "$(sed -n 's/^  nar-hash: //p' "$TMP/pi")" "$(nix_store -q --hash "$p")" "nar hash"
	assert_eq "$(sed -n 's/^  nar-size: //p' "$TMP/pi")" "$(nix_store -q --size "$p")" "nar size"
	h=$(nix_store -q --hash "$p")
	assert_eq "$(sed -n 's/^  ca: //p' "$TMP/pi")" "fixed:r:${h}" "ca"
	grep -Eq '^  root: directory blake3-[A-Za-z0-9+/]{43}= size [0-9]+$' "$TMP/pi"
	grep -q '^  references:$' "$TMP/pi"
	# The basename alone works too.
	sf path-info --store "$S" "${p#/nix/store/}" | cmp - "$TMP/pi"
	# JSON, checked with a real parser.
	sf path-info --store "$S" --json "$p" "${p#/nix/store/}" >"$TMP/pi.json"
	python3 - "$TMP/pi.json" "$p" "$h" <<'EOF'
import json, sys
a = json.load(open(sys.argv[1]))
import base64
assert isinstance(a, list) and len(a) == 1, a
o = a[0]
assert o["path"] == sys.argv[2], o
assert o["narHash"].startswith("sha256-") and len(base64.b64decode(o["narHash"][7:])) == 32, o
assert o["narSize"] == 1096, o
assert o["references"] == [] and "signatures" not in o, o
assert o["ca"] == "fixed:r:" + sys.argv[3], o
assert "deriver" not in o, o
assert o["root"]["type"] == "directory" and o["root"]["digest"].startswith("blake3-"), o
EOF
	# A file root and a symlink root.
	p=$(sf import --store "$S" "$T/pi/src/run.sh")
	sf path-info --store "$S" "$p" | grep -Eq '^  root: file blake3-\S+ size 18 executable$'
	p=$(sf import --store "$S" "$T/pi/src/link")
	sf path-info --store "$S" "$p" | grep -q '^  root: symlink -> hello.txt$'
	sf path-info --store "$S" --json "$p" | python3 -c '
import json, sys
o = json.load(sys.stdin)[0]
assert o["root"] == {"type": "symlink", "target": "hello.txt"}, o'
	# Escaping: quotes, backslash, control bytes, UTF-8 and a non-UTF-8 byte.
	ln -s $'q"b\\\n\t\x01é\xff' "$T/pi/odd"
	p=$(sf import --store "$S" "$T/pi/odd")
	assert_eq "$p" "$(nix_store --add "$T/pi/odd")" "odd symlink path"
	sf path-info --store "$S" --json "$p" | python3 -c '
import json, sys
o = json.load(sys.stdin)[0]
assert o["root"]["target"] == "q\"b\\\n\t\x01\u00e9\u00ff", repr(o["root"]["target"])'
}

t_ls_cat() {
	local p
	mk_src "$T/lc/src"
	p=$(sf import --store "$S" "$T/lc/src")
	assert_eq "$(sf cat --store "$S" "$p/sub/a")" x "cat sub/a"
	assert_eq "$(sf cat --store "$S" "${p#/nix/store/}/hello.txt")" hello "cat by basename"
	sf ls --store "$S" "$p" >"$TMP/ls"
	printf '%s\n' hello.txt link run.sh sub | cmp - "$TMP/ls"
	sf ls --store "$S" -R "$p" >"$TMP/ls"
	printf '%s\n' hello.txt link run.sh sub sub/a | cmp - "$TMP/ls"
	sf ls --store "$S" -l "$p" >"$TMP/ls"
	cat "$TMP/ls"
	grep -qx -- '-r--r--r-- 6 hello.txt' "$TMP/ls"
	grep -qx -- '-r-xr-xr-x 18 run.sh' "$TMP/ls"
	grep -qx -- 'lrwxrwxrwx 9 link -> hello.txt' "$TMP/ls"
	grep -Eqx -- 'dr-xr-xr-x [0-9]+ sub' "$TMP/ls"
	assert_eq "$(sf ls --store "$S" "$p/sub")" a "ls of a sub directory"
	assert_eq "$(sf ls --store "$S" -l "$p/sub/a")" "-r--r--r-- 1 a" "ls of a file"
	# The NAR of a sub path is that of the sub tree.
	sf nar --store "$S" "$p/sub" | cmp - <(nix_store --dump "$T/lc/src/sub")
	# Errors: exit 1, one line.
	expect_status 1 sf cat --store "$S" "$p/sub"
	one_error_line cat
	expect_status 1 sf cat --store "$S" "$p/link"
	one_error_line cat
	expect_status 1 sf cat --store "$S" "$p/nope"
	one_error_line cat
	expect_status 1 sf ls --store "$S" "$p/hello.txt/x"
	one_error_line ls
	expect_status 1 sf cat --store "$S" "$p/../etc/passwd"
	one_error_line cat
}

# --- bad input ---

# db_sum STORE: a checksum of the store's metadata (changes on any commit).
# The records only: lock.mdb holds LMDB's reader slots, which any reading
# process (a failed import reads the store too) leaves its thread id in.
db_sum() { sha256sum <"$1/db/data.mdb"; }

t_fifo() {
	local before
	mkdir -p "$T/ff/tree/sub"
	echo a >"$T/ff/tree/a"
	echo z >"$T/ff/tree/zz"
	mkfifo "$T/ff/tree/sub/pipe"
	mk_src "$T/ff/pre"
	sf import --store "$S" "$T/ff/pre" >/dev/null
	before=$(db_sum "$S")
	expect_status 1 timeout 20 "$STOREFS" import --store "$S" "$T/ff/tree"
	one_error_line import
	grep -q "'$T/ff/tree/sub/pipe' has an unsupported file type" "$TMP/err"
	assert_eq "$(db_sum "$S")" "$before" "metadata after a failed import"
	# A FIFO as the root.
	mkfifo "$T/ff/rootpipe"
	expect_status 1 timeout 20 "$STOREFS" import --store "$S" "$T/ff/rootpipe"
	grep -q "unsupported file type" "$TMP/err"
	# Without the FIFO, the tree imports; before, its path was not there.
	rm "$T/ff/tree/sub/pipe"
	p=$(nix_store --add "$T/ff/tree")
	expect_status 1 sf path-info --store "$S" "$p"
	same_as_nix "$T/ff/tree"
}

t_unreadable() {
	local ns=$TMP/nobody-store
	command -v setpriv >/dev/null || { echo "no setpriv"; return 0; }
	chmod 0755 "$TMP"
	mkdir -p "$T/ur/tree/sub" "$T/ur/tree2/closed" "$ns"
	chmod -R a+rX "$T"
	echo ok >"$T/ur/tree/ok"
	echo secret >"$T/ur/tree/sub/secret"
	chmod 0000 "$T/ur/tree/sub/secret"
	echo hidden >"$T/ur/tree2/closed/x"
	chmod 0000 "$T/ur/tree2/closed"
	chown 65534:65534 "$ns"
	local as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
	expect_status 1 "${as_nobody[@]}" "$STOREFS" import --store "$ns" "$T/ur/tree"
	one_error_line import
	grep -q "'$T/ur/tree/sub/secret'" "$TMP/err"
	grep -qi "permission denied" "$TMP/err"
	expect_status 1 "${as_nobody[@]}" "$STOREFS" import --store "$ns" "$T/ur/tree2"
	one_error_line import
	grep -q "'$T/ur/tree2/closed'" "$TMP/err"
	# Readable again: imports as nobody and matches Nix.
	chmod 0644 "$T/ur/tree/sub/secret"
	assert_eq "$("${as_nobody[@]}" "$STOREFS" import --store "$ns" "$T/ur/tree")" \
		"$(nix_store --add "$T/ur/tree")"
}

t_bad_name() {
	local p h
	mkdir -p "$T/bn/a b" "$T/bn/x~y"
	echo 1 >"$T/bn/a b/f"
	expect_status 1 sf import --store "$S" "$T/bn/a b"
	one_error_line import
	grep -q -- "--name" "$TMP/err"
	expect_status 1 sf import --store "$S" "$T/bn/x~y"
	grep -q -- "--name" "$TMP/err"
	p=$(sf import --store "$S" --name ab "$T/bn/a b")
	h=$(nix-hash --type sha256 --base32 "$T/bn/a b")
	assert_eq "$p" "$(nix_store --print-fixed-path --recursive sha256 "$h" ab)" "--name path"
	expect_status 1 sf import --store "$S" --name 'bad name' "$T/bn/a b"
	one_error_line import
	expect_status 1 sf import --store "$S" --name '' "$T/bn/a b"
	expect_status 1 sf import --store "$S" --name "$(printf 'n%.0s' $(seq 212))" "$T/bn/a b"
	# "." and ".." name the directory they stand for, as in Nix.
	mk_src "$T/bn/src"
	assert_eq "$(cd "$T/bn/src" && sf import --store "$S" .)" \
		/nix/store/l9rn5vshcpbv9a2p97sdbsijinb3iyax-src "import ."
	assert_eq "$(cd "$T/bn/src/sub" && sf import --store "$S" ..)" \
		/nix/store/l9rn5vshcpbv9a2p97sdbsijinb3iyax-src "import .."
	expect_status 1 sf import --store "$S" /
	grep -q -- "--name" "$TMP/err"
}

t_not_a_store() {
	mkdir -p "$TMP/notstore"
	echo mine >"$TMP/notstore/precious"
	mk_src "$T/ns/src"
	expect_status 1 sf import --store "$TMP/notstore" "$T/ns/src"
	one_error_line import
	assert_eq "$(ls -A "$TMP/notstore")" precious "directory contents"
	expect_status 1 sf path-info --store "$TMP/notstore" /nix/store/l9rn5vshcpbv9a2p97sdbsijinb3iyax-src
	one_error_line path-info
	assert_eq "$(ls -A "$TMP/notstore")" precious "directory contents"
	# A missing store is not created by read-only commands.
	expect_status 1 sf path-info --store "$TMP/missing" /nix/store/l9rn5vshcpbv9a2p97sdbsijinb3iyax-src
	[ ! -e "$TMP/missing" ] || fail "path-info created a store"
}

t_concurrent() {
	local s4=$TMP/lock-store p holder
	mk_src "$T/cc/src"
	sf import --store "$s4" "$T/cc/src/hello.txt" >/dev/null
	[ -f "$s4/import.lock" ] || fail "no import.lock in the store"
	p=$(nix_store --add "$T/cc/src")
	flock "$s4/import.lock" -c "touch '$TMP/locked'; sleep 3" &
	holder=$!
	for _ in $(seq 100); do [ -e "$TMP/locked" ] && break; sleep 0.05; done
	expect_status 1 sf import --store "$s4" "$T/cc/src"
	one_error_line import
	grep -q -- "--wait" "$TMP/err"
	expect_status 1 sf path-info --store "$s4" "$p"
	# --wait waits for the holder, then imports.
	assert_eq "$(sf import --store "$s4" --wait "$T/cc/src")" "$p" "import --wait"
	wait "$holder"
	# Readers do not need the lock.
	flock "$s4/import.lock" -c "'$STOREFS' path-info --store '$s4' '$p' >/dev/null"
}

t_usage() {
	expect_status 2 sf
	expect_status 2 sf frobnicate
	expect_status 2 sf import --store "$S"
	expect_status 2 sf import --bogus "$T"
	grep -q "unknown option '--bogus'" "$TMP/err"
	grep -q "^usage: storefs import" "$TMP/err"
	expect_status 2 sf import -Z "$T"
	expect_status 2 sf import --name
	expect_status 2 sf nar --store "$S"
	expect_status 2 sf nar --store "$S" a b
	expect_status 2 sf path-info
	expect_status 2 sf ls -Q x
	expect_status 2 sf cat
	expect_status 2 sf cat --store
	expect_status 2 sf help nosuchcommand
	# Malformed store paths are runtime errors (status 1), one line.
	expect_status 1 sf path-info --store "$S" not-a-store-path
	one_error_line path-info
	expect_status 1 sf nar --store "$S" /tmp/x
	one_error_line nar
	expect_status 1 sf ls --store "$S" /nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-x
	one_error_line ls
	# A valid-looking path that is not in the store, and a known hash with
	# another name.
	expect_status 1 sf path-info --store "$S" /nix/store/00000000000000000000000000000000-x
	one_error_line path-info
	expect_status 1 sf path-info --store "$S" /nix/store/l9rn5vshcpbv9a2p97sdbsijinb3iyax-other
	one_error_line path-info
}

t_help() {
	local c
	for c in import nar path-info ls cat; do
		expect_status 0 sf "$c" --help
		grep -q "^usage: storefs $c" "$TMP/out"
		grep -q -- "--store" "$TMP/out"
		expect_status 0 sf help "$c"
		grep -q "^usage: storefs $c" "$TMP/out"
		expect_status 0 sf "$c" -h
	done
	expect_status 0 sf --help
	for c in import nar path-info ls cat mount; do grep -q "^  $c " "$TMP/out"; done
	expect_status 0 sf help
	expect_status 0 sf --version
	grep -q '^storefs [0-9]' "$TMP/out"
}

t_default_store() {
	# STOREFS_STORE (set by lib.sh) is the default location.
	mk_src "$T/ds/src"
	p=$(sf import "$T/ds/src")
	[ -f "$STOREFS_STORE/storefs-store" ] || fail "default store not created"
	sf path-info "$p" >/dev/null
}

t_pipe_closed() {
	local rc
	p=$(sf import --store "$S" "$T/b/big" 2>/dev/null) || return 0
	set +e
	sf nar --store "$S" "$p" 2>"$TMP/err" | head -c 10 >/dev/null
	rc=${PIPESTATUS[0]}
	set -e
	assert_eq "$rc" 1 "status on a closed pipe"
	one_error_line nar
}

# DIRECTORY_COMPLICATED of tests/data/vectors.json built as a real tree: the root
# digest must be the spec vector in a default store and the native (snix)
# vector in a --dir-size native store, with the same store path and NAR.
t_dir_size() {
	local d=$T/complicated
	mkdir -p "$d/keep"
	: >"$d/.keep"
	: >"$d/keep/.keep"
	ln -s /nix/store/somewhereelse "$d/aa"
	local p1 p2
	p1=$("$STOREFS" import --store "$TMP/spec-store" "$d")
	p2=$("$STOREFS" import --store "$TMP/native-store" --dir-size native "$d")
	assert_eq "$p2" "$p1" "store path"
	"$STOREFS" path-info --store "$TMP/spec-store" "$p1" | grep -F "blake3-P5UaFa/VhvsxIe9NE9WC6BHODlp/IcBJf9h0kOniNVo="
	"$STOREFS" path-info --store "$TMP/native-store" "$p2" | grep -F "blake3-Qkp/bOCNgF0VtCgGL6rpYpmhZ11wjDo5Jhr+OM3QT+s="
	cmp <("$STOREFS" nar --store "$TMP/spec-store" "$p1") <("$STOREFS" nar --store "$TMP/native-store" "$p2")
	expect_fail "$STOREFS" import --store "$TMP/x-store" --dir-size bogus "$d"
}

mkdir -p "$T"

# --trust-stat (docs/import.md): a tree known by its files' stat is not read; a change that
# keeps size and mtime is seen by ctime; a record made within 2 s of a file's last change
# (racily clean) is not trusted.
t_trust_stat() {
	local st=$TMP/ts-store src=$T/ts/src p q m
	mkdir -p "$src/d"
	printf 'aaaa\n' >"$src/a"
	printf 'bbbb\n' >"$src/d/b"
	printf '#!/bin/sh\n' >"$src/x"
	chmod 0755 "$src/x"
	ln -s a "$src/l"
	sleep 2.2 # past the racy window of every file
	p=$(sf import --store "$st" --trust-stat -v "$src" 2>"$TMP/err")
	assert_eq "$p" "$(nix_store --add "$src")" "first import"
	grep -q "has no record: reading the tree" "$TMP/err" || fail "first import: $(cat "$TMP/err")"
	q=$(sf import --store "$st" --trust-stat -v "$src" 2>"$TMP/err")
	assert_eq "$q" "$p" "second import"
	grep -q "known by its files' stat: nothing read" "$TMP/err" || fail "not trusted: $(cat "$TMP/err")"
	# Same size, mtime set back: ctime tells.
	m=$(stat -c %y "$src/d/b")
	printf 'BBBB\n' >"$src/d/b"
	touch -d "$m" "$src/d/b"
	q=$(sf import --store "$st" --trust-stat -v "$src" 2>"$TMP/err")
	grep -q "'$src/d/b' changed since its record" "$TMP/err" || fail "change unseen: $(cat "$TMP/err")"
	assert_eq "$q" "$(nix_store --add "$src")" "after a same-size change"
	# The record just made is within 2 s of d/b's ctime: read again, until a record is older.
	q=$(sf import --store "$st" --trust-stat -v "$src" 2>"$TMP/err")
	grep -q "'$src/d/b' was recorded within 2 s of its last change (racily clean)" "$TMP/err" ||
		fail "racy record trusted: $(cat "$TMP/err")"
	assert_eq "$q" "$(nix_store --add "$src")" "racy"
	sleep 2.2
	sf import --store "$st" --trust-stat "$src" >/dev/null
	sf import --store "$st" --trust-stat -v "$src" 2>"$TMP/err" >/dev/null
	grep -q "nothing read" "$TMP/err" || fail "not trusted after the window: $(cat "$TMP/err")"
	# The same tree under another name is not that path: read and registered.
	q=$(sf import --store "$st" --trust-stat --name other -v "$src" 2>"$TMP/err")
	grep -q "is not registered with this tree" "$TMP/err" || fail "other name: $(cat "$TMP/err")"
	case $q in */nix/store/*-other) ;; *) fail "other name gave '$q'" ;; esac
	sf verify --store "$st" >/dev/null
	expect_status 1 sf import --store memory:// --trust-stat "$src"
	# A failed import records nothing: its files have no record afterwards.
	local st2=$TMP/ts-store2 f=$T/ts/fail
	mkdir -p "$f"
	printf 'first\n' >"$f/a"
	mkfifo "$f/z"
	sleep 2.2
	expect_status 1 sf import --store "$st2" --trust-stat "$f"
	rm "$f/z"
	sf import --store "$st2" --trust-stat -v "$f" 2>"$TMP/err" >/dev/null
	grep -q "'$f/a' has no record" "$TMP/err" || fail "a failed import left records: $(cat "$TMP/err")"
}

# --trust-stat with service addresses (docs/services.md): the import index is the PathInfo
# store's, so blobs elsewhere do not stop it; a PathInfo store without an index is a clear
# error. Behind --cache the index is the cache's and the root check the remote's: a path the
# remote deleted, though the cache still holds it, is read and registered again.
t_trust_stat_services() {
	local meta=$TMP/tss-meta blobs=$TMP/tss-blobs src=$T/tss/src p q
	mkdir -p "$src/d"
	printf 'one\n' >"$src/a"
	printf 'two\n' >"$src/d/b"
	sleep 2.2 # past the racy window of every file
	p=$(sf import --store "$meta" --blob-service-addr "$blobs" --trust-stat -v "$src" 2>"$TMP/err")
	assert_eq "$p" "$(nix_store --add "$src")" "first import"
	q=$(sf import --store "$meta" --blob-service-addr "$blobs" --trust-stat -v "$src" 2>"$TMP/err")
	assert_eq "$q" "$p" "second import"
	grep -q "known by its files' stat: nothing read" "$TMP/err" || fail "not trusted: $(cat "$TMP/err")"
	assert_eq "$(blob_count "$meta")" 0 "blobs in the metadata store"
	expect_status 1 sf import --store "$blobs" --path-info-service-addr memory:// --trust-stat "$src"
	grep -q "PathInfo store must be a local one" "$TMP/err" || fail "memory://: $(cat "$TMP/err")"
	grep -q "or give --cache DIR" "$TMP/err" || fail "memory://: $(cat "$TMP/err")"
	local r=$TMP/tss-remote c=$TMP/tss-cache
	assert_eq "$(sf import --store "$r" --cache "$c" --trust-stat "$src")" "$p" "--cache: first"
	q=$(sf import --store "$r" --cache "$c" --trust-stat -v "$src" 2>"$TMP/err")
	assert_eq "$q" "$p" "--cache: second"
	grep -q "nothing read" "$TMP/err" || fail "--cache: not trusted: $(cat "$TMP/err")"
	sf import --store "$r" --trust-stat -v "$src" 2>"$TMP/err" >/dev/null
	grep -q "has no record" "$TMP/err" || fail "records in the remote: $(cat "$TMP/err")"
	sf delete --store "$r" "$p" >/dev/null 2>&1
	q=$(sf import --store "$r" --cache "$c" --trust-stat -v "$src" 2>"$TMP/err")
	grep -q "is not registered with this tree" "$TMP/err" || fail "after delete: $(cat "$TMP/err")"
	sf verify --store "$r" >/dev/null
	nix_store --dump "$(nix_phys "$p")" | cmp - <(sf nar --store "$r" "$p")
}

check "vector tree path and NAR" t_vector_tree
check "empty directory" t_empty_dir
check "single file as root" t_single_file
check "executable file (owner bit only)" t_exec_file
check "symlink as root" t_symlink_root
check "nested directories" t_nested
check "non-ASCII and invalid UTF-8 names" t_non_ascii
check "bytewise sort order" t_sort_order
check "big files (5 MiB, around 1 MiB)" t_big_file
check "hard links" t_hard_links
check "empty files" t_empty_file
check "30 levels deep" t_deep
check "64+ levels refused" t_too_deep
check "/usr/share/zoneinfo" t_zoneinfo
check "identical files stored once" t_dedup
check "re-import is idempotent" t_reimport
if strace -o /dev/null true 2>/dev/null; then
	check "blob files and shard dirs fsynced before the path is registered" \
		t_synced_before_registered
else
	skip "blob files and shard dirs fsynced before the path is registered" "strace cannot trace here"
fi
if strace -o /dev/null true 2>/dev/null; then
	check "re-import of small blobs looks up no blob file" t_reimport_no_file_lookups
else
	skip "re-import of small blobs looks up no blob file" "strace cannot trace here"
fi
check "re-import of a registered tree writes nothing" t_reimport_writes_nothing
check "--trust-stat: stat records, ctime, racily clean" t_trust_stat
check "--trust-stat through services: the PathInfo store's index, or the cache's" \
	t_trust_stat_services
check "path-info text and JSON" t_path_info
check "ls and cat of sub paths" t_ls_cat
check "FIFO refused, nothing registered" t_fifo
check "unreadable file or directory" t_unreadable
check "store path names and --name" t_bad_name
check "not a storefs store" t_not_a_store
check "concurrent importer and --wait" t_concurrent
check "usage errors exit 2" t_usage
check "--help everywhere" t_help
check "default store from STOREFS_STORE" t_default_store
check "nar into a closed pipe" t_pipe_closed
check "DirectoryEntry.size: spec and native vectors" t_dir_size

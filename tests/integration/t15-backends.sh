#!/bin/bash
# t15-backends.sh - the local store directory as other processes see it:
# layout (b3sum as the oracle), marker, import lock, concurrent imports and
# readers, temp file cleanup, and damage made with store_tamper.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
shopt -s inherit_errexit

mk_tree() { # DIR SEED
	mkdir -p "$1/sub/deeper"
	printf 'file %s\n' "$2" >"$1/a"
	printf 'another %s\n' "$2" >"$1/sub/b"
	head -c 300000 /dev/urandom >"$1/sub/deeper/big"
	ln -s ../a "$1/sub/link"
}

# Every blob file is named by the BLAKE3 of its bytes, under ab/cd/.
check_blob_names() {
	local f hex
	find "$1/blobs" -type f | while read -r f; do
		hex=$(b3sum --no-names "$f")
		assert_eq "$f" "$1/blobs/${hex:0:2}/${hex:2:2}/$hex" "blob file name"
		assert_eq "$(stat -c %a "$f")" 444 "mode of $f"
	done
}

test_layout() {
	local s=$TMP/layout p
	mk_tree "$TMP/t1" 1
	p=$(sf import --store "$s" "$TMP/t1")
	# Format 2: it holds inline blobs (docs/store-format.md "Format versions").
	assert_eq "$(cat "$s/storefs-store")" "storefs local store 2
dir-size spec" "marker"
	check_blob_names "$s"
	# The two small blobs are inline in LMDB, the 300 kB one a file
	# (docs/store-format.md).
	assert_eq "$(find "$s/blobs" -type f | wc -l)" 1 "blob files"
	assert_eq "$(sf info --store "$s" | awk '$1 == "blobs:" { print $2 }')" 3 "blob count"
	assert_eq "$(ls -A "$s/tmp")" "" "tmp/ after an import"
	assert_eq "$(stat -c %s "$s/import.lock")" 0 "import.lock after the import"
	[ -f "$s/db/data.mdb" ] || fail "no LMDB database"
	sf ls -R --store "$s" "$p" >/dev/null
	# The same tree again adds nothing.
	sf import --store "$s" "$TMP/t1" >/dev/null
	assert_eq "$(find "$s/blobs" -type f | wc -l)" 1 "blob files after re-import"
	assert_eq "$(sf info --store "$s" | awk '$1 == "blobs:" { print $2 }')" 3 "blobs after re-import"
	# The layout of earlier releases: every blob a file.
	STOREFS_INLINE_MAX=0 sf import --store "$TMP/layout0" "$TMP/t1" >/dev/null
	check_blob_names "$TMP/layout0"
	assert_eq "$(find "$TMP/layout0/blobs" -type f | wc -l)" 3 "blob files, STOREFS_INLINE_MAX=0"
}

test_default_location() {
	mk_tree "$TMP/t2" 2
	sf import "$TMP/t2" >/dev/null
	[ -f "$STOREFS_STORE/storefs-store" ] || fail "default store not created in \$STOREFS_STORE"
}

test_foreign_dir() {
	local d=$TMP/foreign
	mkdir -p "$d" && echo precious >"$d/file"
	mk_tree "$TMP/t3" 3
	expect_fail sf import --store "$d" "$TMP/t3"
	grep -q "'$d' is not a storefs store" "$TMP/err" || fail "wrong message"
	assert_eq "$(ls -A "$d")" "file" "contents of the foreign directory"
	expect_fail sf ls --store "$TMP/missing" /nix/store/00000000000000000000000000000000-x
	[ ! -e "$TMP/missing" ] || fail "a reader created a store"
}

test_import_lock() {
	local s=$TMP/locked p
	mk_tree "$TMP/t4" 4
	sf import --store "$s" "$TMP/t4" >/dev/null
	flock "$s/import.lock" sleep 1.5 &
	local holder=$!
	sleep 0.3
	expect_fail sf import --store "$s" "$TMP/t4"
	grep -q "is locked by another import" "$TMP/err" || fail "wrong message"
	p=$(sf import --wait --store "$s" "$TMP/t4")
	kill -0 $holder 2>/dev/null && fail "--wait did not wait for the lock"
	wait $holder
	# Readers do not take the lock.
	flock "$s/import.lock" sleep 1 &
	sf ls -R --store "$s" "$p" >/dev/null
	wait
}

test_concurrent() {
	local s=$TMP/busy pids=() i p
	mk_tree "$TMP/t5" 5
	p=$(sf import --store "$s" "$TMP/t5")
	for i in 1 2 3 4; do
		mk_tree "$TMP/c$i" "c$i"
		sf import --wait --store "$s" "$TMP/c$i" >"$TMP/c$i.out" &
		pids+=($!)
	done
	for i in $(seq 20); do sf ls -R --store "$s" "$p" >/dev/null; done
	for i in "${pids[@]}"; do wait "$i"; done
	for i in 1 2 3 4; do
		sf cat --store "$s" "$(cat "$TMP/c$i.out")/a" >"$TMP/got"
		assert_eq "$(cat "$TMP/got")" "file c$i" "contents of c$i"
	done
	check_blob_names "$s"
	assert_eq "$(ls -A "$s/tmp")" "" "tmp/ after concurrent imports"
}

test_dead_temp_files() {
	local s=$TMP/temps dead
	mk_tree "$TMP/t6" 6
	sf import --store "$s" "$TMP/t6" >/dev/null
	sh -c 'exit 0' &
	dead=$!
	wait $dead
	echo partial >"$s/tmp/$dead.0.abcdef01"
	echo mine >"$s/tmp/$$.0.abcdef02"
	sf import --store "$s" "$TMP/t6" >/dev/null
	[ ! -e "$s/tmp/$dead.0.abcdef01" ] || fail "temp file of a dead writer kept"
	[ -e "$s/tmp/$$.0.abcdef02" ] || fail "temp file of a live process removed"
}

test_tamper() {
	local s=$TMP/damaged p hex root
	mk_tree "$TMP/t7" 7
	p=$(sf import --store "$s" "$TMP/t7")
	hex=$(b3sum --no-names "$TMP/t7/a")
	assert_eq "$("$TAMPER" blob-path "$s" "$hex")" "$s/blobs/${hex:0:2}/${hex:2:2}/$hex"
	"$TAMPER" flip-blob "$s" "$hex" 0
	expect_fail sf cat --store "$s" "$p/a"
	[ -e "$s/quarantine/$hex" ] || fail "the damaged blob was not quarantined"
	sf import --store "$s" "$TMP/t7" >/dev/null # writes the missing blob again
	sf cat --store "$s" "$p/a" | cmp - "$TMP/t7/a"
	"$TAMPER" delete-blob "$s" "$hex"
	expect_fail sf cat --store "$s" "$p/a"
	root=$(sf path-info --store "$s" "$p" | awk '$1 == "root:" { print $3 }')
	"$TAMPER" delete-dir "$s" "$root"
	expect_fail sf ls --store "$s" "$p"
	grep -q "$root" "$TMP/err" || fail "message does not name the directory"
	expect_fail "$TAMPER" delete-dir "$s" "$root"
	expect_fail "$TAMPER" flip-blob "$s" "$hex" 0
	expect_fail "$TAMPER" blob-path "$s" nothex
}

# A store of the previous layout (every blob a file, STOREFS_INLINE_MAX=0)
# reads the same after small blobs went inline, and takes new ones inline
# next to its files (docs/store-format.md).
test_old_layout() {
	local s=$TMP/old p1 p2 f
	mk_tree "$TMP/t8" 8
	p1=$(STOREFS_INLINE_MAX=0 sf import --store "$s" "$TMP/t8")
	assert_eq "$(find "$s/blobs" -type f | wc -l)" 3 "blob files of the old layout"
	# Files only: format 1, which earlier releases read (docs/store-format.md).
	assert_eq "$(head -n 1 "$s/storefs-store")" "storefs local store 1" "marker of the old layout"
	sf verify --store "$s" -q
	sf nar --store "$s" "$p1" | cmp - <(nix_store --dump "$TMP/t8")
	cp -a "$TMP/t8" "$TMP/t9"
	echo "only in the new tree" >"$TMP/t9/new"
	p2=$(sf import --store "$s" "$TMP/t9")
	# The small blob it shares with the old tree stays a file; the new one is inline.
	assert_eq "$(find "$s/blobs" -type f | wc -l)" 3 "blob files after the mixed import"
	assert_eq "$(sf info --store "$s" | awk '$1 == "blobs:" { print $2 }')" 4 "blobs"
	# The first inline blob made it format 2, which an earlier release refuses; a later
	# format is refused here the same way.
	assert_eq "$(head -n 1 "$s/storefs-store")" "storefs local store 2" "marker of the mixed store"
	sf info --store "$s" | grep -qx 'format: storefs local store 2, dir-size spec' ||
		fail "info does not say format 2"
	sf verify --store "$s" -q
	sf nar --store "$s" "$p1" | cmp - <(nix_store --dump "$TMP/t8")
	sf nar --store "$s" "$p2" | cmp - <(nix_store --dump "$TMP/t9")
	for f in a sub/b new; do sf cat --store "$s" "$p2/$f" | cmp - "$TMP/t9/$f"; done
	cp -a "$s" "$TMP/old3"
	chmod u+w "$TMP/old3/storefs-store"
	printf 'storefs local store 3\ndir-size spec\n' >"$TMP/old3/storefs-store"
	expect_status 1 sf info --store "$TMP/old3"
	grep -q "has format 'storefs local store 3'" "$TMP/err" || fail "format 3: $(cat "$TMP/err")"
}

check "local store layout after an import" test_layout
check "a store of the previous layout reads, and mixes with inline blobs" test_old_layout
check "the default store is created in \$STOREFS_STORE" test_default_location
check "a non-store directory is refused and left alone" test_foreign_dir
check "the import lock refuses or waits" test_import_lock
check "concurrent imports and readers" test_concurrent
check "temp files of dead writers are removed on open" test_dead_temp_files
check "store_tamper damage is detected" test_tamper

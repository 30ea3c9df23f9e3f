#!/bin/bash
# t16-services.sh - services chosen one by one (docs/services.md):
# --blob-service-addr, --directory-service-addr, --path-info-service-addr
# on every command that takes --store and before the command; each object
# lands in the store named for its service; NARs and mounts read through
# the composite; what a composite cannot do is a clear error; --cache DIR
# keeps what was read, so a later mount needs nothing from the remote.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
shopt -s inherit_errexit

A=$TMP/a # blobs
B=$TMP/b # Directories and PathInfos
SRC=$TMP/tree
M=$TMP/mnt

make_tree() {
	mkdir -p "$SRC/sub/deeper" "$SRC/empty"
	echo "hello" >"$SRC/hello.txt"
	head -c 300000 /dev/urandom >"$SRC/sub/big.bin"
	printf '#!/bin/sh\necho exec\n' >"$SRC/sub/run.sh"
	chmod +x "$SRC/sub/run.sh"
	echo "deep" >"$SRC/sub/deeper/f"
	ln -s hello.txt "$SRC/link"
}

setup() {
	make_tree
	P=$(sf import --blob-service-addr "$A" --directory-service-addr "$B" \
		--path-info-service-addr "$B" "$SRC")
}

# Blobs of either kind (files, and small ones inline in LMDB: docs/store-format.md).
count_blobs() { sf info --store "$1" | awk '$1 == "blobs:" { print $2 }'; }

test_import_split() {
	# The blobs are in A and only there; the path is registered in B only.
	assert_eq "$(count_blobs "$A")" 4 "blobs in the blob store"
	assert_eq "$(count_blobs "$B")" 0 "blobs in the metadata store"
	expect_fail sf path-info --store "$A" "$P"
	grep -q "is not in the store" "$TMP/err" || fail "A knows the path"
	sf path-info --store "$B" "$P" >/dev/null
	# B alone has the Directories but not the bytes.
	expect_fail sf nar --store "$B" "$P"
	grep -q "is missing" "$TMP/err" || fail "B alone did not miss a blob"
}

test_nar_identical() {
	nix-store --dump "$SRC" >"$TMP/want.nar"
	sf nar --blob-service-addr "$A" --directory-service-addr "$B" --path-info-service-addr "$B" \
		"$P" >"$TMP/got.nar"
	cmp "$TMP/want.nar" "$TMP/got.nar"
	# --store sets all three, a per-service flag overrides it, before the
	# command too, and the command's own wins over storefs's.
	sf nar --store "$B" --blob-service-addr "$A" "$P" | cmp - "$TMP/want.nar"
	sf --store "$B" --blob-service-addr "$A" nar "$P" | cmp - "$TMP/want.nar"
	sf --blob-service-addr "$TMP/nowhere" --store "$B" nar --blob-service-addr "$A" "$P" |
		cmp - "$TMP/want.nar"
	sf --path-info-service-addr "$B" --directory-service-addr "$B" path-info \
		--blob-service-addr "$A" "$P" | grep -q "nar-size: $(stat -c %s "$TMP/want.nar")"
	sf cat --store "$B" --blob-service-addr "$A" "$P/sub/big.bin" | cmp - "$SRC/sub/big.bin"
}

test_mount_composite() {
	start_mount "$B" "$M" --blob-service-addr "$A"
	cmp "$M/$(base "$P")/sub/big.bin" "$SRC/sub/big.bin"
	assert_eq "$("$M/$(base "$P")/sub/run.sh")" exec "program run from the mount"
	assert_eq "$(readlink "$M/$(base "$P")/link")" hello.txt "symlink"
	diff -r "$SRC" "$M/$(base "$P")"
	stop_mount "$M"
	# The bytes come from the blob service named: an empty one has none.
	sf import --store "$TMP/empty-store" "$SRC/empty" >/dev/null
	start_mount "$B" "$M" --blob-service-addr "$TMP/empty-store"
	ls "$M/$(base "$P")/sub" >/dev/null # Directories are B's
	if cat "$M/$(base "$P")/hello.txt" >/dev/null 2>"$TMP/err"; then
		fail "read a blob the blob service lacks"
	fi
	grep -q "Input/output error\|No such file" "$TMP/err" || fail "wrong error: $(cat "$TMP/err")"
	stop_mount "$M"
}

test_errors() {
	# A missing store for a reader names its directory.
	expect_fail sf nar --store "$B" --blob-service-addr "$TMP/missing" "$P"
	grep -q "$TMP/missing" "$TMP/err" || fail "message does not name the missing store"
	[ ! -e "$TMP/missing" ] || fail "a reader created a store"
	expect_fail sf path-info --directory-service-addr "bogus://x" --store "$B" "$P"
	grep -q "bogus://x" "$TMP/err" || fail "message does not name the bad URL"
	# Collecting needs one store that knows every user of its blobs.
	expect_fail sf gc --store "$B" --blob-service-addr "$A"
	grep -q "cannot collect garbage" "$TMP/err" || fail "gc on a composite: $(cat "$TMP/err")"
	assert_eq "$(count_blobs "$A")" 4 "blobs after the refused gc"
	# A command without a store refuses the flags given before it.
	expect_status 2 sf --blob-service-addr "$A" help
	sf import --help | grep -q -- "--path-info-service-addr URL"
}

test_roots_in_metadata_store() {
	sf add-root --store "$B" --blob-service-addr "$A" keep "$P"
	[ -L "$B/gcroots/keep" ] || [ -f "$B/gcroots/keep" ] || fail "the root is not in the PathInfo store"
	[ ! -L "$A/gcroots/keep" ] && [ ! -e "$A/gcroots/keep" ] || fail "the root is in the blob store"
}

# --cache: a first mount reads every file through the cache; the remote
# stores are then replaced by empty ones, and a second mount (a new
# process) still serves every byte: it can only have come from the cache.
test_cache() {
	local ra=$TMP/remote-a rb=$TMP/remote-b c=$TMP/cache p
	p=$(sf import --blob-service-addr "$ra" --directory-service-addr "$rb" \
		--path-info-service-addr "$rb" "$SRC")
	start_mount "$rb" "$M" --blob-service-addr "$ra" --cache "$c"
	diff -r "$SRC" "$M/$(base "$p")"
	stop_mount "$M"
	assert_eq "$(count_blobs "$c")" 4 "blobs in the cache"
	rm -rf "$ra" "$rb"
	sf import --store "$ra" "$SRC/empty" >/dev/null
	sf import --store "$rb" "$SRC/empty" >/dev/null
	# Without the cache the path is gone ...
	expect_fail sf path-info --store "$rb" "$p"
	# ... and a path neither has is "not in the store" through the cache.
	expect_status 1 sf path-info --store "$rb" --cache "$c" \
		/nix/store/00000000000000000000000000000000-absent
	grep -q "is not in the store" "$TMP/err" || fail "absent path: $(cat "$TMP/err")"
	# ... with it, every file, directory and the path itself are there.
	start_mount "$rb" "$M" --blob-service-addr "$ra" --cache "$c"
	[ ! -e "$M/00000000000000000000000000000000-absent" ] || fail "an absent path exists"
	diff -r "$SRC" "$M/$(base "$p")"
	assert_eq "$("$M/$(base "$p")/sub/run.sh")" exec "program run from the cache"
	stop_mount "$M"
	nix-store --dump "$SRC" >"$TMP/want.nar"
	sf --cache "$c" nar --store "$rb" --blob-service-addr "$ra" "$p" | cmp - "$TMP/want.nar"
	assert_eq "$(count_blobs "$ra")" 0 "blobs the remote got back"
}

# An import through --cache decides what to upload and register by what the remote has
# (docs/services.md "The cache"): after the remote deleted a path the cache still holds, the
# import puts it all back, and the remote alone serves it whole.
test_cache_import_after_delete() {
	local r=$TMP/del-remote c=$TMP/del-cache p
	p=$(sf import --store "$r" --cache "$c" "$SRC")
	sf nar --store "$r" --cache "$c" "$p" >/dev/null # the cache now holds it all
	sf delete --store "$r" "$p" >/dev/null 2>&1
	expect_fail sf path-info --store "$r" "$p"
	assert_eq "$(sf import --store "$r" --cache "$c" "$SRC")" "$p" "the import again"
	sf verify --store "$r" >"$TMP/out" || fail "remote incomplete: $(cat "$TMP/out")"
	nix-store --dump "$SRC" | cmp - <(sf nar --store "$r" "$p")
}

# A cold read through an empty --cache does not sync each fill on its own
# (docs/services.md "A crash and the cache"): the mount's fsync and
# fdatasync calls while 80 files are read (strace) are a few, not one or
# more per file as when every fill was flushed.
test_cache_fill_syncs() {
	local t=$TMP/many ra=$TMP/sync-a rb=$TMP/sync-b c=$TMP/sync-cache p i n st
	mkdir -p "$t"
	for i in $(seq 40); do
		head -c 40000 /dev/urandom >"$t/big$i" # above the inline limit: a file
		printf 'small %s\n' "$i" >"$t/small$i"
	done
	p=$(sf import --blob-service-addr "$ra" --directory-service-addr "$rb" \
		--path-info-service-addr "$rb" "$t")
	start_mount "$rb" "$M" --blob-service-addr "$ra" --cache "$c"
	strace -f -qq -e trace=fsync,fdatasync -o "$TMP/syncs" -p "$MOUNT_PID" &
	st=$!
	sleep 1 # attached to every thread
	diff -r "$t" "$M/$(base "$p")"
	kill "$st"
	wait "$st" || true
	n=$(grep -c 'sync(' "$TMP/syncs" || true)
	stop_mount "$M"
	assert_eq "$(count_blobs "$c")" 80 "blobs in the cache"
	[ "$n" -lt 20 ] || fail "$n syncs while 80 blobs filled the cache"
}

setup
check "import puts blobs and metadata in their own stores" test_import_split
check "nar through the composite is nix-store --dump's; flags before and after the command" \
	test_nar_identical
check "a mount reads through the composite" test_mount_composite
check "errors: missing store, bad URL, gc refused, flags without a store" test_errors
check "GC roots go to the PathInfo store" test_roots_in_metadata_store
check "--cache: a second mount reads everything from the cache" test_cache
check "--cache: an import after the remote deleted the path uploads and registers it again" \
	test_cache_import_after_delete
if strace -o /dev/null true 2>/dev/null; then
	check "--cache: a cold read syncs the cache a few times, not once per file" test_cache_fill_syncs
else
	skip "--cache: a cold read syncs the cache a few times, not once per file" "strace cannot trace here"
fi

#!/bin/bash
# t20-mount.sh - storefs mount: a real FUSE mount of a store built here,
# checked with real syscalls (python3 fs_check.py for exact errnos). Ports
# the reference filesystem's test list, plus its known bugs turned around.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
shopt -s inherit_errexit

S=$TMP/store
SRC=$TMP/src
M=$TMP/mnt # the shared mount most tests read

make_tree() {
	local t=$SRC/tree
	mkdir -p "$t/a" "$t/b" "$t/deep/1/2/3/4/5" "$t/empty" "$t/sub"
	echo "hello world" >"$t/hello.txt"
	echo "hello world" >"$t/dup.txt"
	head -c 1572864 /dev/urandom >"$t/big.bin"
	printf '#!/bin/sh\necho exec\n' >"$t/exe.sh"
	chmod +x "$t/exe.sh"
	printf '#!/bin/sh\necho exec\n' >"$t/same_as_exe"
	ln -s hello.txt "$t/link"
	ln -s hello.txt "$t/sub/link2"
	ln -s does-not-exist "$t/dangling"
	echo x >"$t/a/x.txt"
	echo x >"$t/b/x.txt"
	echo "deep down" >"$t/deep/1/2/3/4/5/file.txt"
	echo "z" >"$t/sub/Z"
	echo "under" >"$t/sub/_u"
	: >"$t/sub/empty-file"
	for i in $(seq 1 40); do head -c $((i * 997)) /dev/urandom >"$t/sub/r$i"; done
	echo "single file" >"$SRC/single.txt"
	mkdir -p "$SRC/missing/gone" "$SRC/noblob"
	echo "in gone" >"$SRC/missing/gone/f"
	echo "kept" >"$SRC/missing/kept"
	echo "this blob will vanish $RANDOM" >"$SRC/noblob/f"
}

setup() {
	make_tree
	TREE=$(sf import --store "$S" "$SRC/tree")
	SINGLE=$(sf import --store "$S" "$SRC/single.txt")
	MISSING=$(sf import --store "$S" "$SRC/missing")
	NOBLOB=$(sf import --store "$S" "$SRC/noblob")
	T=$M/$(base "$TREE")
}

t_mount_unmount() {
	local m=$TMP/m1
	start_mount "$S" "$m"
	grep -q "^storefs $m fuse.storefs ro," /proc/mounts || fail "not a ro fuse.storefs mount"
	grep " $m " /proc/mounts | grep -q default_permissions || fail "no default_permissions"
	grep " $m " /proc/mounts | grep -vq allow_other || fail "allow_other without asking"
	stop_mount "$m"
	! grep -q " $m " /proc/mounts || fail "still mounted"
}

t_root_eperm() {
	py errno EPERM listdir "$M"
	py attrs "$M" d 555 0
}

t_root_list() {
	local m=$TMP/m2
	start_mount "$S" "$m" --list-root
	printf '%s\n' "$(base "$TREE")" "$(base "$SINGLE")" "$(base "$MISSING")" \
		"$(base "$NOBLOB")" >"$TMP/names"
	py listdir_once "$m" "$TMP/names"
	stop_mount "$m"
}

t_root_list_10k() {
	local s=$TMP/big m=$TMP/m3
	"$TOOLS/mkpaths" "$s" 12000 >"$TMP/names10k"
	start_mount "$s" "$m" --list-root
	py listdir_once "$m" "$TMP/names10k"
	# A second listing comes from the kernel's cache; still exact.
	py listdir_once "$m" "$TMP/names10k"
	stop_mount "$m"
}

t_root_file() {
	local f=$M/$(base "$SINGLE")
	py attrs "$f" f 444 12
	assert_eq "$(cat "$f")" "single file"
}

t_big_file() {
	cmp "$T/big.bin" "$SRC/tree/big.bin"
	# Unaligned reads at odd offsets.
	assert_eq "$(tail -c 777 "$T/big.bin" | md5sum)" "$(tail -c 777 "$SRC/tree/big.bin" | md5sum)"
	assert_eq "$(dd if="$T/big.bin" bs=4097 skip=3 count=5 2>/dev/null | md5sum)" \
		"$(dd if="$SRC/tree/big.bin" bs=4097 skip=3 count=5 2>/dev/null | md5sum)"
}

t_symlinks() {
	assert_eq "$(readlink "$T/link")" "hello.txt"
	py attrs "$T/link" l 777 9
	assert_eq "$(cat "$T/link")" "hello world"
	assert_eq "$(stat -L -c %s "$T/link")" 12
	py attrs "$T/dangling" l 777 14
	py errno ENOENT stat "$T/dangling"
	py errno ENOENT open_read "$T/dangling"
	py errno EINVAL readlink "$T/hello.txt"
}

t_stat_dir() {
	py attrs "$T" d 555 12
	py attrs "$T/sub" d 555 44
	py attrs "$T/empty" d 555 0
	py attrs "$T/deep/1/2/3/4/5" d 555 1
}

t_read_nested() {
	assert_eq "$(cat "$T/a/x.txt")" x
	assert_eq "$(cat "$T/deep/1/2/3/4/5/file.txt")" "deep down"
	assert_eq "$("$T/exe.sh")" exec
}

t_readdir() {
	# Names in bytewise order ("Z" < "_u" < "empty-file" < "link2" < "r1"...),
	# types and sizes, and the whole tree compared byte for byte.
	assert_eq "$(ls -U "$T/sub" | head -4 | tr '\n' ' ')" "Z _u empty-file link2 "
	py tree_equal "$T" "$SRC/tree"
}

t_readdir_deep_fresh() {
	local m=$TMP/m4
	start_mount "$S" "$m"
	# No stat or listing of any parent first.
	assert_eq "$(ls "$m/$(base "$TREE")/deep/1/2/3/4/5")" file.txt
	py attrs "$m/$(base "$TREE")/deep/1/2/3/4/5/file.txt" f 444 10
	stop_mount "$m"
}

t_attributes() {
	py attrs "$T/hello.txt" f 444 12
	py attrs "$T/exe.sh" f 555 20
	py attrs "$T/same_as_exe" f 444 20
	py attrs "$T/sub/empty-file" f 444 0
	py attrs "$T/big.bin" f 444 1572864
	py attrs "$T/sub/link2" l 777 9
}

t_inodes() {
	py same_ino "$T/a" "$T/b"
	py same_ino "$T/hello.txt" "$T/dup.txt"
	py same_ino "$T/a/x.txt" "$T/b/x.txt"
	py same_ino "$T/link" "$T/sub/link2"
	py diff_ino "$T/exe.sh" "$T/same_as_exe"
	py diff_ino "$T/hello.txt" "$T/a/x.txt"
	py diff_ino "$T/link" "$T/dangling"
}

t_wrong_names() {
	local b h
	b=$(base "$TREE")
	h=${b%%-*}
	py errno ENOENT stat "$M/${h:0:31}-tree"
	py errno ENOENT stat "$M/$h-wrongname"
	py errno ENOENT stat "$M/$h"
	py errno ENOENT stat "$M/${b}x"
	py errno ENOENT stat "$M/not-a-store-path"
	py errno ENOENT stat "$M/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-tree"
	py errno ENOENT stat "$T/no-such-file"
	py errno ENOTDIR stat "$T/hello.txt/x"
	# Cached misses do not hide the real path.
	py attrs "$M/$b" d 555 12
}

t_erofs() {
	py errno EROFS create "$T/new"
	py errno EROFS create "$M/new"
	py errno EROFS open_write "$T/hello.txt"
	py errno EROFS mkdir "$T/newdir"
	py errno EROFS unlink "$T/hello.txt"
	py errno EROFS rmdir "$T/empty"
	py errno EROFS rename "$T/hello.txt" "$T/renamed"
	py errno EROFS chmod "$T/hello.txt"
	py errno EROFS chown "$T/hello.txt"
	py errno EROFS utime "$T/hello.txt"
	py errno EROFS truncate "$T/hello.txt"
	py errno EROFS symlink "$T/newlink"
	py errno EROFS link "$T/hello.txt" "$T/hardlink"
	py errno EROFS setxattr "$T/hello.txt"
	py errno EROFS removexattr "$T/hello.txt"
}

# The digest the mount reports for PATH's Directory or blob.
digest_of() { getfattr --only-values -n "user.storefs.castore.$2.digest" "$1"; }

t_missing_directory() {
	local m=$TMP/m5 d
	start_mount "$S" "$m"
	d=$(digest_of "$m/$(base "$MISSING")/gone" directory)
	stop_mount "$m"
	"$TOOLS/store_tamper" delete-dir "$S" "$d"
	start_mount "$S" "$m"
	local p=$m/$(base "$MISSING")
	py attrs "$p/gone" d 555 0 # stat of the directory itself works
	py errno EIO listdir "$p/gone"
	py errno EIO stat "$p/gone/f"
	assert_eq "$(cat "$p/kept")" kept
	stop_mount "$m"
	grep -q "is missing" "$TMP/mount.log" || fail "EIO was not logged"
}

t_missing_blob() {
	local m=$TMP/m6 d
	start_mount "$S" "$m"
	d=$(digest_of "$m/$(base "$NOBLOB")/f" blob)
	stop_mount "$m"
	"$TOOLS/store_tamper" delete-blob "$S" "$d"
	for mode in kernel daemon; do
		start_mount "$S" "$m" --open=$mode
		py attrs "$m/$(base "$NOBLOB")/f" f 444 "$(stat -c %s "$SRC/noblob/f")"
		py errno EIO open_read "$m/$(base "$NOBLOB")/f"
		stop_mount "$m"
	done
}

t_xattrs() {
	py xattrs "$T/hello.txt" "$SRC/tree/hello.txt" "$T/sub" "$T/link"
	assert_eq "$(digest_of "$T/a" directory)" "$(digest_of "$T/b" directory)"
	py errno ENODATA getxattr "$M" user.storefs.castore.directory.digest
}

t_no_xattr() {
	local m=$TMP/m7
	start_mount "$S" "$m" --no-xattr
	py errno EOPNOTSUPP getxattr "$m/$(base "$TREE")/hello.txt" \
		user.storefs.castore.blob.digest
	stop_mount "$m"
}

t_concurrent_readers() {
	py readers "$T" "$SRC/tree" 8 150
}

t_daemon_open_mode() {
	local m=$TMP/m8
	start_mount "$S" "$m" --open=daemon --threads 3
	py tree_equal "$m/$(base "$TREE")" "$SRC/tree"
	py readers "$m/$(base "$TREE")" "$SRC/tree" 4 50
	stop_mount "$m"
}

t_statfs() {
	py statfs "$M"
}

t_sigterm() {
	local m=$TMP/m9 rc=0
	start_mount "$S" "$m"
	kill -TERM "$MOUNT_PID"
	wait "$MOUNT_PID" || rc=$?
	assert_eq "$rc" 0 "exit status after SIGTERM"
	! grep -q " $m " /proc/mounts || fail "still mounted after SIGTERM"
	start_mount "$S" "$m"
	kill -INT "$MOUNT_PID"
	wait "$MOUNT_PID" || rc=$?
	assert_eq "$rc" 0 "exit status after SIGINT"
}

t_external_umount() {
	local m=$TMP/m10 rc=0
	start_mount "$S" "$m"
	cat "$m/$(base "$SINGLE")" >/dev/null
	umount "$m"
	wait "$MOUNT_PID" || rc=$?
	assert_eq "$rc" 0 "exit status after umount"
}

t_new_path_appears() {
	local m=$TMP/m11 p name
	mkdir -p "$SRC/late"
	echo "late" >"$SRC/late/f"
	# The store path is known before it exists: ask nix-store.
	name=$(base "$(nix_store --add "$SRC/late")")
	start_mount "$S" "$m" --list-root
	ls "$m/" >/dev/null
	py errno ENOENT stat "$m/$name" # a cached miss now
	p=$(sf import --store "$S" "$SRC/late")
	assert_eq "$(base "$p")" "$name"
	for _ in $(seq 50); do [ -e "$m/$name" ] && break; sleep 0.1; done
	assert_eq "$(cat "$m/$name/f")" late
	ls "$m" | grep -qx "$name" || fail "new path missing from the root listing"
	stop_mount "$m"
}

t_cli_errors() {
	expect_status 1 sf mount --store "$S" "$TMP/nonexistent"
	assert_eq "$(wc -l <"$TMP/err")" 1 "stderr lines"
	grep -q "^storefs mount: " "$TMP/err" || fail "bad message"
	expect_status 1 sf mount --store "$S" "$SRC/single.txt"
	grep -q "not a directory" "$TMP/err" || fail "bad message"
	expect_status 2 sf mount --store "$S"
	expect_status 2 sf mount --store "$S" --threads 0 "$M"
	expect_status 2 sf mount --store "$S" --threads x "$M"
	expect_status 2 sf mount --store "$S" --open=maybe "$M"
	expect_status 2 sf mount --store "$S" --bogus "$M"
	expect_status 2 sf mount --store "$S" "$M" "$M"
	expect_status 0 sf mount --help
	grep -q -- "--list-root" "$TMP/out" || fail "--help lacks --list-root"
	grep -q "foreground" "$TMP/out" || fail "--help does not mention the foreground"
}

# A mount point that is a mount or not empty is refused unless --nonempty
# (which hides what is there until the unmount); a repeated --substituter
# is a usage error, not a silent last-wins.
t_mountpoint_checks() {
	local full=$TMP/m13
	mkdir -p "$full" && echo here >"$full/f"
	# (timeout: a mount that is wrongly made would serve until stopped)
	expect_status 1 timeout 20 "$STOREFS" mount --store "$S" "$full"
	grep -q "mountpoint '$full' is not empty (--nonempty" "$TMP/err"
	expect_status 1 timeout 20 "$STOREFS" mount --store "$S" "$M"
	grep -q "mountpoint '$M' is already a mount point" "$TMP/err"
	assert_eq "$(grep -c " $M fuse" /proc/mounts)" 1 "mounts at $M"
	start_mount "$S" "$full" --nonempty
	[ -e "$full/$(base "$SINGLE")" ] || fail "--nonempty did not mount"
	[ ! -e "$full/f" ] || fail "the mount does not hide what was there"
	stop_mount "$full"
	assert_eq "$(cat "$full/f")" here "what was there, after the unmount"
	expect_status 2 sf mount --store "$S" --substituter file:///a --substituter file:///b \
		"$TMP/m14"
	grep -q "option '--substituter' given twice" "$TMP/err"
}

# On a terminal (script(1) gives it one) one line says the mount is up,
# once it is; without one, nothing is said.
t_tty_line() {
	local m=$TMP/m15 pid
	start_mount "$S" "$m"
	stop_mount "$m"
	if grep -q "mounted" "$TMP/mount.log"; then fail "a readiness line without a terminal"; fi
	script -qfec "$STOREFS mount --store $S $m" "$TMP/ts" </dev/null >/dev/null 2>&1 &
	pid=$!
	DAEMON_PIDS+=("$pid")
	for _ in $(seq 100); do grep -q "^mounted" "$TMP/ts" && break; sleep 0.05; done
	grep -q " $m fuse" /proc/mounts || fail "the line came before the mount"
	fusermount3 -u "$m"
	wait "$pid"
	cat "$TMP/ts"
	assert_eq "$(grep -c "mounted" "$TMP/ts")" 1 "readiness lines"
	grep -q "^mounted $S at $m"$'\r'"\$" "$TMP/ts"
}

t_fds_bounded() {
	local m=$TMP/m12 t=$SRC/many p n
	mkdir -p "$t"
	for i in $(seq 1 1300); do echo "distinct $i" >"$t/f$i"; done
	p=$(sf import --store "$S" "$t")
	ulimit -n 1024 # the cache is sized from the limit (docs/limits.md)
	start_mount "$S" "$m"
	cat "$m/$(base "$p")"/f* | wc -l | grep -qx 1300 || fail "short read of 1300 files"
	n=$(ls "/proc/$MOUNT_PID/fd" | wc -l)
	echo "daemon holds $n descriptors after reading 1300 blobs"
	[ "$n" -lt 1100 ] || fail "$n open descriptors: the reader cache is not bounded"
	stop_mount "$m"
}

# A walk that reads every file finds most of them in the kernel's cache,
# pushed there ahead of its reads (docs/fuse.md "Pushing small files"), with
# the same bytes; STOREFS_FUSE_PUSH=0 turns it off: one READ per file.
stat_field() { getfattr --only-values -n user.storefs.stats "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# One walk of the 400 files of $1 (the mount) / $2 (the store path) / $3
# (the source): pushed files are not READ. 1 if the counters say otherwise,
# 2 if the bytes differ.
push_round() {
	local d=$1/$(base "$2")/d reads pushed
	ls "$d" | wc -l | grep -qx 400 || { fail "listing"; return 2; }
	cmp "$d/f1000" "$3/d/f1000" || { fail "f1000 differs"; return 2; }
	sleep 1 # the next 64 are pushed meanwhile
	for i in $(seq 1001 1399); do
		cmp "$d/f$i" "$3/d/f$i" || { fail "f$i differs"; return 2; }
	done
	reads=$(stat_field "$1" reads) pushed=$(stat_field "$1" pushed)
	echo "400 files read: $reads READs, $pushed pushed"
	[ "$pushed" -ge 60 ] && [ "$reads" -le 340 ]
}

# push_round with a mount of its own (page_cache_retry).
push_mounted() {
	local rc=0
	start_mount "$S" "$1" || return 2
	push_round "$@" || rc=$?
	stop_mount "$1" || return 2
	return $rc
}

t_push() {
	local m=$TMP/m14 t=$SRC/pushed p reads pushed
	mkdir -p "$t/d"
	for i in $(seq 1000 1399); do echo "pushed file $i" >"$t/d/f$i"; done
	p=$(sf import --store "$S" "$t")
	page_cache_retry push_mounted "$m" "$p" "$t"
	export STOREFS_FUSE_PUSH=0
	start_mount "$S" "$m"
	unset STOREFS_FUSE_PUSH
	cat "$m/$(base "$p")"/d/* >/dev/null
	reads=$(stat_field "$m" reads) pushed=$(stat_field "$m" pushed)
	[ "$pushed" = 0 ] && [ "$reads" = 400 ] || fail "off: $reads READs, $pushed pushed"
	stop_mount "$m"
}

t_stats() {
	py stats "$M" 100000 # sanity only; t22 measures the per-inode size
}

setup
start_mount "$S" "$M"
check "mount and unmount (ro, default_permissions, fuse.storefs)" t_mount_unmount
check "listing the root is EPERM without --list-root" t_root_eperm
check "root listing with --list-root" t_root_list
check "root listing of 12k paths: every name exactly once" t_root_list_10k
check "stat and read a file at the root" t_root_file
check "read a 1.5 MiB file and compare bytes" t_big_file
check "readlink, stat through symlinks, dangling symlink" t_symlinks
check "stat a directory: mode 0555, size = entries" t_stat_dir
check "read files in directories, deep in nested ones" t_read_nested
check "readdir order, types, sizes; whole tree equal" t_readdir
check "readdir deep without stat of the parent" t_readdir_deep_fresh
check "attributes: modes, uid/gid, times, sizes, nlink, blocks" t_attributes
check "equal inodes for equal content; exec bit splits them" t_inodes
check "wrong names at the root are ENOENT" t_wrong_names
check "writes are refused with EROFS" t_erofs
check "missing Directory: EIO inside, stat works" t_missing_directory
check "missing blob: EIO on read, stat works" t_missing_blob
check "xattrs: values, list, size query, ERANGE, ENODATA" t_xattrs
check "--no-xattr" t_no_xattr
check "8 concurrent readers, contents verified" t_concurrent_readers
check "--open=daemon serves the same tree" t_daemon_open_mode
check "statfs numbers" t_statfs
check "SIGTERM and SIGINT unmount, exit 0" t_sigterm
check "external umount ends the daemon with exit 0" t_external_umount
if [ -n "${STOREFS_TEST_VIA:-}" ]; then # t63
	skip "a path imported while mounted appears (after a cached miss)" \
		"no change notifications over gRPC: a cached miss stays until remount (docs/grpc.md)"
else
	check "a path imported while mounted appears (after a cached miss)" t_new_path_appears
fi
check "command line errors and --help" t_cli_errors
check "a mount point that is a mount or not empty is refused unless --nonempty; no repeated --substituter" t_mountpoint_checks
check "on a terminal one line says \"mounted STORE at DIR\", else nothing" t_tty_line
check "open blob descriptors stay bounded (1300 files read)" t_fds_bounded
check "inode table stats xattr" t_stats
check "small files are pushed ahead of a walk's reads; STOREFS_FUSE_PUSH=0" t_push
stop_mount "$M"

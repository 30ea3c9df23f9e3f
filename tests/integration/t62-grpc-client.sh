#!/bin/bash
# t62-grpc-client.sh - the grpc+http:// and grpc+unix:// client stores
# (issue 15, docs/grpc.md) against an independent peer: an in-memory
# server on Python's grpcio (grpc_memory_peer.py) serving what a local store
# exported (tests/tools/store_export). Mounts show the tree, every file's
# sha256 matches, a program runs from the mount; faults: a flipped byte
# (EIO, nothing kept), a server that never answers (EIO after ?timeout=),
# a server killed mid-read and restarted (EIO during the outage, recovery
# without remounting).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
shopt -s inherit_errexit

S=$TMP/store
M=$TMP/mnt
SRC=$TMP/tree
EXP=$TMP/export
GEN=$TMP/gen

# The tree: small and empty files, one past the 4 MiB in-memory bound of a
# blob read (spooled), an executable, a symlink, busybox to run.
make_tree() {
	mkdir -p "$SRC/sub/deeper" "$SRC/bin"
	echo hello >"$SRC/a"
	: >"$SRC/empty"
	head -c 6000000 /dev/urandom >"$SRC/sub/big"
	head -c 100000 /dev/urandom >"$SRC/sub/deeper/mid"
	head -c 3000 /dev/urandom >"$SRC/sub/small"
	printf '#!/bin/sh\necho ran from the store\n' >"$SRC/sub/script"
	chmod +x "$SRC/sub/script"
	ln -s ../a "$SRC/sub/link"
	bb=$(command -v busybox) && cp "$bb" "$SRC/bin/busybox" && ln -s busybox "$SRC/bin/sh"
	P=$(sf --store "$S" import "$SRC")
	B=$(basename "$P")
	"$TOOLS/store_export" "$S" "$EXP"
	grpc_py_gen "$GEN"
}

# start_peer LISTEN [grpc_memory_peer.py options...]: starts the Python peer and
# waits until it serves; PEER_PID and PEER_PORT name it.
start_peer() {
	local listen=$1 pf=$TMP/peer.port
	shift
	rm -f "$pf"
	"$GRPC_PY" "$HERE/grpc_memory_peer.py" "$GEN" "${PEER_EXPORT:-$EXP}" "$listen" "$pf" "$@" \
		>>"$TMP/peer.log" 2>&1 &
	PEER_PID=$!
	DAEMON_PIDS+=("$PEER_PID")
	for _ in $(seq 200); do
		[ -s "$pf" ] && break
		kill -0 "$PEER_PID" 2>/dev/null || { cat "$TMP/peer.log" >&2; fail "peer exited"; }
		sleep 0.05
	done
	[ -s "$pf" ] || fail "peer did not come up"
	PEER_PORT=$(cat "$pf")
}

stop_peer() {
	kill -9 "$PEER_PID" 2>/dev/null || true
	wait "$PEER_PID" 2>/dev/null || true
}

# Each check runs in a subshell, out of reach of lib.sh's cleanup: its
# mount and peer are stopped when it ends, failed or not.
end_check() {
	grep -q " $M fuse" /proc/mounts && fusermount3 -u "$M"
	[ -z "${PEER_PID:-}" ] || stop_peer
}
trap_check() {
	PEER_PID=
	trap end_check EXIT
}

# retry CMD...: CMD until it succeeds, for up to 10 s (a restarted peer
# is dialled again within the channel's reconnect backoff, 1 s at most).
retry() {
	for _ in $(seq 50); do
		"$@" 2>/dev/null && return 0
		sleep 0.2
	done
	"$@"
}

# Every file of the mounted tree has the sha256 of the original.
same_tree() {
	local r=$1 f
	(cd "$SRC" && find . -type f | sort) >"$TMP/want.list"
	(cd "$r" && find . -type f | sort) >"$TMP/got.list"
	diff "$TMP/want.list" "$TMP/got.list"
	while read -r f; do
		assert_eq "$(sha256sum <"$r/$f")" "$(sha256sum <"$SRC/$f")" "$f"
	done <"$TMP/want.list"
	assert_eq "$(readlink "$r/sub/link")" "../a" "symlink"
	[ -x "$r/sub/script" ] && [ ! -x "$r/a" ]
}

t_mount_http() {
	trap_check
	start_peer 127.0.0.1:0
	start_mount "grpc+http://127.0.0.1:$PEER_PORT" "$M"
	same_tree "$M/$B"
	assert_eq "$("$M/$B/sub/script")" "ran from the store"
	if [ -x "$SRC/bin/busybox" ]; then
		assert_eq "$(chroot "$M/$B" /bin/sh -c 'echo ok | /bin/busybox sha256sum')" \
			"$(echo ok | sha256sum)"
	fi
	stop_mount "$M"
	stop_peer
}

t_mount_unix_tvix() {
	trap_check
	start_peer "unix:$TMP/peer.sock"
	start_mount "grpc+unix://$TMP/peer.sock?package=tvix&timeout=20" "$M"
	same_tree "$M/$B"
	stop_mount "$M"
	stop_peer
}

# Without a mount: path-info, list, cat and a NAR byte-identical to the
# local store's; verify reads everything; copy takes a path out of it;
# --cache keeps what was read for a run without the daemon.
t_commands() {
	trap_check
	start_peer 127.0.0.1:0
	local g="grpc+http://127.0.0.1:$PEER_PORT"
	assert_eq "$(sf --store "$g" list)" "$P"
	assert_eq "$(sf --store "$g" path-info "$P")" "$(sf --store "$S" path-info "$P")"
	assert_eq "$(sf --store "$g" cat "$P/sub/big" | sha256sum)" "$(sha256sum <"$SRC/sub/big")"
	assert_eq "$(sf --store "$g" nar "$P" | sha256sum)" "$(sf --store "$S" nar "$P" | sha256sum)"
	expect_fail sf --store "$g" path-info /nix/store/00000000000000000000000000000000-nope
	sf --store "$g" verify --check-contents
	sf copy --from "$g" --to "$TMP/copy" -r "$P"
	sf --store "$TMP/copy" verify --check-contents
	assert_eq "$(sf --store "$TMP/copy" nar "$P" | sha256sum)" \
		"$(sf --store "$S" nar "$P" | sha256sum)"
	sf --store "$g" --cache "$TMP/cache" nar "$P" >"$TMP/cached.nar"
	stop_peer
	# With the daemon gone, --cache answers alone.
	assert_eq "$(sf --store "$g" --cache "$TMP/cache" nar "$P" | sha256sum)" \
		"$(sha256sum <"$TMP/cached.nar")"
}

# Writes: copy and import into an empty peer through its Put methods,
# then read everything back through a mount.
t_writes() {
	trap_check
	local g q
	mkdir -p "$TMP/empty/paths" "$TMP/empty/dirs" "$TMP/empty/blobs" "$TMP/more"
	PEER_EXPORT=$TMP/empty start_peer 127.0.0.1:0
	g="grpc+http://127.0.0.1:$PEER_PORT"
	sf copy --from "$S" --to "$g" -r "$P"
	assert_eq "$(sf --store "$g" nar "$P" | sha256sum)" "$(sf --store "$S" nar "$P" | sha256sum)"
	echo more >"$TMP/more/file"
	head -c 300000 /dev/urandom >"$TMP/more/blob"
	q=$(sf --store "$g" import "$TMP/more")
	assert_eq "$q" "$(sf --store "$TMP/local-more" import "$TMP/more")"
	assert_eq "$(sf --store "$g" cat "$q/blob" | sha256sum)" "$(sha256sum <"$TMP/more/blob")"
	start_mount "$g" "$M"
	same_tree "$M/$B"
	assert_eq "$(cat "$M/$(basename "$q")/file")" more
	stop_mount "$M"
	stop_peer
	# A daemon that names another digest for a blob it was sent: refused.
	PEER_EXPORT=$TMP/empty start_peer 127.0.0.1:0 --mode lie
	expect_fail sf --store "grpc+http://127.0.0.1:$PEER_PORT" import "$TMP/more"
	grep -q "names another digest" "$TMP/err"
	stop_peer
}

# A binary cache served from a gRPC store: `storefs serve` checks a NAR's
# closure with one recursive Directory Get, validated root to leaves
# (castore's dir_recv): honest, the NAR is the local store's; a stream
# with a Directory nothing refers to is refused.
serve_nar() {
	local url ni nar
	"$STOREFS" serve --store "$1" --listen 127.0.0.1:0 >"$TMP/serve.url" 2>"$TMP/serve.log" &
	SERVE_PID=$!
	for _ in $(seq 200); do
		url=$(cat "$TMP/serve.url" 2>/dev/null || true)
		[ -n "$url" ] && curl -sf "$url/nix-cache-info" >/dev/null && break
		sleep 0.05
	done
	ni=$(curl -sf "$url/$(hashpart "$P").narinfo")
	nar=$(echo "$ni" | sed -n 's/^URL: //p')
	grep -q "^Compression: none" <<<"$ni" || fail "compressed NAR: $ni"
	curl -sf "$url/$nar" >"$TMP/served.nar" || echo "curl failed" >"$TMP/served.nar"
	kill "$SERVE_PID"
	wait "$SERVE_PID" || true
}

t_serve_from_grpc() {
	trap_check
	start_peer 127.0.0.1:0
	serve_nar "grpc+http://127.0.0.1:$PEER_PORT"
	assert_eq "$(sha256sum <"$TMP/served.nar")" "$(sf --store "$S" nar "$P" | sha256sum)"
	stop_peer
	start_peer 127.0.0.1:0 --mode extra
	serve_nar "grpc+http://127.0.0.1:$PEER_PORT"
	assert_eq "$(cat "$TMP/served.nar")" "curl failed"
	grep -q "before anything referred to it" "$TMP/serve.log" ||
		fail "no reason logged: $(cat "$TMP/serve.log")"
	stop_peer
}

# start_daemon STORE ARGS...: `storefs daemon` on a Unix socket and on a
# free TCP port; DAEMON_UNIX and DAEMON_HTTP are the URLs it prints.
start_daemon() {
	local store=$1 out=$TMP/daemon.urls
	shift
	: >"$out"
	"$STOREFS" daemon --store "$store" --listen "unix:$TMP/daemon.sock" \
		--listen 127.0.0.1:0 "$@" >"$out" 2>"$TMP/daemon.log" &
	PEER_PID=$! # stopped like a peer
	for _ in $(seq 200); do
		[ "$(wc -l <"$out")" -ge 2 ] && break
		kill -0 "$PEER_PID" 2>/dev/null || { cat "$TMP/daemon.log" >&2; fail "daemon exited"; }
		sleep 0.05
	done
	DAEMON_UNIX=$(grep '^grpc+unix://' "$out")
	DAEMON_HTTP=$(grep '^grpc+http://' "$out")
	[ -n "$DAEMON_UNIX" ] && [ -n "$DAEMON_HTTP" ] || fail "daemon URLs: $(cat "$out")"
}

# The client against storefs's own daemon: a mount over each transport and
# package name, and writes into a daemon that allows them.
t_storefs_daemon() {
	trap_check
	local q
	start_daemon "$S"
	start_mount "$DAEMON_UNIX" "$M"
	same_tree "$M/$B"
	stop_mount "$M"
	start_mount "$DAEMON_HTTP?package=tvix" "$M"
	same_tree "$M/$B"
	assert_eq "$(sf --store "$DAEMON_HTTP" nar "$P" | sha256sum)" \
		"$(sf --store "$S" nar "$P" | sha256sum)"
	stop_mount "$M"
	mkdir -p "$TMP/more2" && head -c 200000 /dev/urandom >"$TMP/more2/blob"
	expect_fail sf --store "$DAEMON_UNIX" import "$TMP/more2" # read-only
	stop_peer
	start_daemon "$TMP/dstore" --allow-writes
	sf copy --from "$S" --to "$DAEMON_UNIX" -r "$P"
	q=$(sf --store "$DAEMON_HTTP" import "$TMP/more2")
	stop_peer
	sf --store "$TMP/dstore" verify --check-contents
	assert_eq "$(sf --store "$TMP/dstore" nar "$P" | sha256sum)" \
		"$(sf --store "$S" nar "$P" | sha256sum)"
	assert_eq "$(sf --store "$TMP/dstore" cat "$q/blob" | sha256sum)" \
		"$(sha256sum <"$TMP/more2/blob")"
}

t_bad_urls() {
	trap_check
	local u
	for u in grpc+http://127.0.0.1 grpc+http://127.0.0.1:0 grpc+http://:80 \
		grpc+unix://relative/sock "grpc+http://127.0.0.1:1?timeout=0" \
		"grpc+http://127.0.0.1:1?package=nix" "grpc+http://127.0.0.1:1?colour=red"; do
		expect_fail sf --store "$u" list
		grep -q "$u\|timeout\|package\|option" "$TMP/err" || fail "no reason for $u"
	done
}

# Small blobs are held in memory by the size they have: the mount keeps a
# reader per file it READs, and when each held a 64 KiB buffer, ~1,000
# cached files reached the client's 64 MiB bound, after which every blob
# went through a temporary file (on ext4, O_TMPFILE cost ~0.3 ms a blob).
# With TMPDIR unusable that spooling fails: 1,100 small files READ one by
# one (no push) must all come back right.
t_small_in_memory() {
	trap_check
	local d=$TMP/many i q
	mkdir -p "$d"
	for i in $(seq 1100); do echo "small file $i" >"$d/f$i"; done
	q=$(basename "$(sf --store "$TMP/mstore" import "$d")")
	start_daemon "$TMP/mstore"
	ulimit -n 8192 # a reader cache of ~4,000 files (this check's subshell only)
	STOREFS_FUSE_PUSH=0 TMPDIR=$TMP/no-such-dir start_mount "$DAEMON_UNIX" "$M"
	for i in $(seq 1100); do cat "$M/$q/f$i"; done >"$TMP/many.got"
	for i in $(seq 1100); do cat "$d/f$i"; done | cmp - "$TMP/many.got"
	! grep -q "temporary file" "$TMP/mount.log" || fail "$(cat "$TMP/mount.log")"
	stop_mount "$M"
	stop_peer
}

# A walk of a mount asks for every Directory below where it starts: the
# store path's root is got alone (its lookup stays one small answer), and
# the Get of one of its children asks recursively and the client keeps
# the subtree, so walking 46 directories (5 at the top) costs 6
# DirectoryService Gets, not 46 (counted by the daemon's log of its calls). A stream that ends in a Directory nothing
# referred to (the peer's "extra" mode) keeps nothing of the lie: the
# mount shows the right tree.
t_dirs_ahead() {
	trap_check
	local d=$TMP/dirs i q n
	for i in $(seq 40); do mkdir -p "$d/d$((i % 5))/e$i" && echo "$i" >"$d/d$((i % 5))/e$i/f"; done
	q=$(basename "$(sf --store "$TMP/dstore40" import "$d")")
	start_daemon "$TMP/dstore40" -v
	start_mount "$DAEMON_UNIX" "$M"
	assert_eq "$(find "$M/$q" -type f | wc -l)" 40
	assert_eq "$(cat "$M/$q/d3/e8/f")" 8
	n=$(grep -c 'DirectoryService/Get: 0' "$TMP/daemon.log") || true
	[ "$n" -le 6 ] || fail "$n Directory Gets for a walk of 46 directories"
	stop_mount "$M"
	stop_peer
	start_peer 127.0.0.1:0 --mode extra
	start_mount "grpc+http://127.0.0.1:$PEER_PORT" "$M"
	same_tree "$M/$B"
	stop_mount "$M"
	stop_peer
}

# A daemon slow to finish the HTTP/2 handshake (its first bytes held back
# 0.5 s by a proxy, as on a loaded machine) is waited for: gRPC core took
# GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, which was 100 ms, as the time a
# connection attempt gets, and the call failed ("failed to connect").
t_slow_handshake() {
	local pf=$TMP/slow.port
	trap_check
	start_daemon "$S"
	python3 "$HERE/slow_start_proxy.py" "$TMP/daemon.sock" "$pf" 0.5 &
	PROXY_PID=$!
	trap 'end_check; kill $PROXY_PID 2>/dev/null' EXIT
	for _ in $(seq 100); do [ -s "$pf" ] && break; sleep 0.05; done
	assert_eq "$(sf --store "grpc+http://127.0.0.1:$(cat "$pf")" list)" "$P"
	stop_peer
}

# One flipped byte in every blob: EIO, the mount lives on, and nothing of
# the lie is kept: the same mount reads the right bytes once the server
# tells the truth.
t_flipped_byte() {
	trap_check
	start_peer 127.0.0.1:0 --mode flip
	local port=$PEER_PORT
	start_mount "grpc+http://127.0.0.1:$port" "$M"
	ls "$M/$B/sub" >/dev/null
	expect_fail cat "$M/$B/sub/small"
	grep -q "Input/output error" "$TMP/err"
	expect_fail cat "$M/$B/sub/big"
	grep -q "hashing to" "$TMP/mount.log" || fail "mount log names no digest mismatch"
	stop_peer
	start_peer "127.0.0.1:$port"
	retry cat "$M/$B/sub/small" >/dev/null
	assert_eq "$(sha256sum <"$M/$B/sub/small")" "$(sha256sum <"$SRC/sub/small")"
	assert_eq "$(sha256sum <"$M/$B/sub/big")" "$(sha256sum <"$SRC/sub/big")"
	stop_mount "$M"
	stop_peer
}

# The same lie to a mount with --cache: EIO, and the cache holds no blob
# (its Directories and the PathInfo were true, so they may stay).
t_flipped_byte_cache() {
	trap_check
	start_peer 127.0.0.1:0 --mode flip
	start_mount "grpc+http://127.0.0.1:$PEER_PORT" "$M" --cache "$TMP/fcache"
	expect_fail cat "$M/$B/sub/small"
	grep -q "Input/output error" "$TMP/err"
	expect_fail cat "$M/$B/sub/big"
	stop_mount "$M"
	sf info --store "$TMP/fcache" --json >"$TMP/info.json"
	python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))
assert d["blobs"] == 0 and d["blobBytes"] == 0, d' "$TMP/info.json"
	stop_peer
}

# A server that accepts calls and never answers: EIO once ?timeout= has
# passed, not a hang.
t_never_answers() {
	trap_check
	start_peer 127.0.0.1:0 --mode hang
	local t0 t1
	t0=$(date +%s)
	expect_fail timeout 30 "$STOREFS" --store "grpc+http://127.0.0.1:$PEER_PORT?timeout=2" \
		path-info "$P"
	t1=$(date +%s)
	grep -q "deadline" "$TMP/err" || fail "no deadline message"
	[ $((t1 - t0)) -ge 2 ] && [ $((t1 - t0)) -lt 20 ] || fail "took $((t1 - t0)) s"
	start_mount "grpc+http://127.0.0.1:$PEER_PORT?timeout=2" "$M"
	expect_fail timeout 30 stat "$M/$B"
	grep -q "Input/output error" "$TMP/err"
	stop_mount "$M"
	stop_peer
}

# outage_then_back RESTART...: with the server of the mount at $M down, a read
# fails at once (EIO, well within the 10 s deadline); after RESTART the same
# mount reads everything. Then unmounts and stops the server.
outage_then_back() {
	local t0=$SECONDS
	expect_fail cat "$M/$B/sub/deeper/mid"
	grep -q "Input/output error" "$TMP/err" || fail "not EIO during the outage: $(cat "$TMP/err")"
	[ $((SECONDS - t0)) -lt 5 ] || fail "a read during the outage took $((SECONDS - t0)) s"
	"$@"
	retry cat "$M/$B/sub/deeper/mid" >/dev/null || fail "no recovery after the restart"
	same_tree "$M/$B"
	stop_mount "$M"
	stop_peer
}

# Killed in the middle of a slow blob read, then restarted on the same
# port: the read fails (EIO, within the deadline), reads during the outage
# fail at once, and after the restart the same mount reads everything.
t_restart() {
	trap_check
	start_peer 127.0.0.1:0 --chunk 65536 --delay 0.05
	local port=$PEER_PORT
	start_mount "grpc+http://127.0.0.1:$port?timeout=10" "$M"
	ls "$M/$B/sub/deeper" >/dev/null
	cat "$M/$B/sub/big" >/dev/null 2>"$TMP/big.err" &
	local reader=$!
	sleep 1
	stop_peer
	if wait "$reader"; then fail "the read survived the server's death"; fi
	grep -q "Input/output error" "$TMP/big.err"
	outage_then_back start_peer "127.0.0.1:$port"
}

# storefs daemon killed (SIGKILL: its unix socket file stays behind) while
# a mount reads from it: reads fail at once during the outage, and once a
# new daemon serves the same socket path the same mount reads everything.
t_daemon_killed() {
	trap_check
	start_daemon "$S"
	start_mount "$DAEMON_UNIX?timeout=10" "$M"
	cat "$M/$B/sub/small" >/dev/null
	cat "$M/$B/sub/big" >/dev/null 2>&1 &
	local reader=$!
	kill -9 "$PEER_PID"
	wait "$PEER_PID" 2>/dev/null || true
	wait "$reader" || true # whatever it got
	[ -S "$TMP/daemon.sock" ] || fail "SIGKILL left no socket file: the restart proves less"
	outage_then_back start_daemon "$S"
}

# CPython from the mount (t21's check, over gRPC): its loader, libraries
# and standard library (a few thousand files) read through grpc+unix://.
t_python_from_mount() {
	trap_check
	local py=/usr/bin/python3 t=$TMP/python ver p r out
	[ -x "$py" ] && [ -d /usr/lib/python3 ] || { echo "# skip: no Debian python3"; return 0; }
	ver=$(python_tree "$t" "$py")
	p=$(sf --store "$TMP/pystore" import "$t")
	"$TOOLS/store_export" "$TMP/pystore" "$TMP/pyexport"
	PEER_EXPORT=$TMP/pyexport start_peer "unix:$TMP/py.sock"
	start_mount "grpc+unix://$TMP/py.sock" "$M"
	r=$M/$(basename "$p")
	out=$(PYTHONHOME=$r PYTHONDONTWRITEBYTECODE=1 "$r/lib/ld-linux-x86-64.so.2" \
		--library-path "$r/lib" "$r/bin/python3" -S -c '
import sys, json, hashlib, zlib, decimal
print(json.dumps({"sha": hashlib.sha256(b"x").hexdigest()[:8], "z": zlib.crc32(b"x")}))
print(json.__file__.startswith(sys.prefix), decimal.Decimal("1.1") + 1)')
	assert_eq "$out" "{\"sha\": \"2d711642\", \"z\": 2363233923}
True 2.1"
	[ "$ver" ] && [ -f "$r/lib/python$ver/json/__init__.py" ]
	stop_mount "$M"
	stop_peer
}

make_tree
check "grpc+http:// mount: tree, sha256 of every file, programs run" t_mount_http
check "grpc+unix:// mount with package=tvix and timeout=" t_mount_unix_tvix
check "python3 runs from a grpc+unix:// mount (loader, libraries, stdlib)" t_python_from_mount
check "list, path-info, cat, nar, verify, copy, --cache over grpc+http://" t_commands
check "copy and import into a grpc+http:// store (Put), read back" t_writes
check "serve a binary cache from a grpc+http:// store (recursive Get, checked)" \
	t_serve_from_grpc
check "storefs daemon: mounts over grpc+unix:// and grpc+http://, writes" t_storefs_daemon
check "malformed grpc URLs are refused with a reason" t_bad_urls
check "small blobs are read into memory by their size, never spooled" t_small_in_memory
check "a walk of a mount gets its Directories by subtrees, not one by one" t_dirs_ahead
check "a daemon slow to finish the HTTP/2 handshake is waited for" t_slow_handshake
check "a blob with one flipped byte is EIO and nothing is kept" t_flipped_byte
check "a blob with one flipped byte through --cache: EIO, no blob cached" t_flipped_byte_cache
check "storefs daemon SIGKILLed under a grpc+unix:// mount, restarted: reads recover" \
	t_daemon_killed
check "a server that never answers is EIO after ?timeout=" t_never_answers
check "server killed mid-read: EIO, then recovery without remount" t_restart

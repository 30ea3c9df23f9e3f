# lib.sh - helpers for integration tests, sourced by tests/integration/t*.sh.
#
# A test is a shell function run in a subshell with `set -e`:
#	check "name of the test" function_name [args...]
# prints "ok - name" or "not ok - name" plus the tail of its output.
# STOREFS_CHECK=TEXT (tests/run tNN:TEXT) runs only the checks whose name
# contains TEXT; the others print nothing.
# Every script gets a private $TMP, removed on exit after unmounting every
# mount below it and killing the daemons it started (see start_mount).
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd) # tests/integration
ROOT=${STOREFS_ROOT:-$(cd "$HERE/../.." && pwd)}
STOREFS=${STOREFS:-$ROOT/build/storefs}
# The test tools (tests/tools/*.c) are built next to storefs, so an ASan
# storefs (tests/run --asan) comes with ASan tools.
TOOLS=${TOOLS:-$(dirname "$STOREFS")}
TAMPER=${STORE_TAMPER:-$TOOLS/store_tamper}
TMP=$(mktemp -d "${STOREFS_TEST_ROOT:-/tmp}/storefs-test.XXXXXX")
export STOREFS_STORE=$TMP/default-store # never touch the machine's default store
export XDG_CACHE_HOME=$TMP/xdg-cache    # fresh Nix client caches
export STOREFS_CONFIG=/dev/null         # never the machine's /etc/storefs/storefs.conf
# No substituters (no network), and no build users: without this, every Nix
# command as root warns that the group 'nixbld' does not exist.
export NIX_CONFIG="substituters =
build-users-group =
experimental-features = nix-command"
DAEMON_PIDS=()

cleanup() {
	local m
	for m in $(awk -v t="$TMP" 'index($2, t) == 1 { print $2 }' /proc/mounts | sort -r); do
		fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	# The daemons start_mount started for STOREFS_TEST_VIA, in check subshells too.
	[ ! -f "$TMP/via.pids" ] || mapfile -t -O "${#DAEMON_PIDS[@]}" DAEMON_PIDS <"$TMP/via.pids"
	# The servers start_serve started, in check subshells too.
	[ ! -f "$TMP/serve.pids" ] || mapfile -t -O "${#DAEMON_PIDS[@]}" DAEMON_PIDS <"$TMP/serve.pids"
	for pid in "${DAEMON_PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	for pid in "${DAEMON_PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null
	done
	chmod -R u+w "$TMP" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

check() {
	local name=$1 log=$TMP/check.log rc
	shift
	[[ $name == *"${STOREFS_CHECK:-}"* ]] || return 0
	(
		set -e
		"$@"
	) >"$log" 2>&1
	rc=$?
	if [ $rc = 0 ]; then
		echo "ok - $name"
	else
		echo "not ok - $name"
		tail -n 40 "$log" | sed 's/^/#   /'
	fi
	return 0
}

# skip NAME REASON: a check that cannot run in this configuration (TAP SKIP).
skip() {
	[[ $1 == *"${STOREFS_CHECK:-}"* ]] || return 0
	echo "ok - $1 # SKIP $2"
}

fail() {
	echo "FAIL: $*" >&2
	return 1
}

# assert_eq GOT WANT [WHAT [DETAIL]]: DETAIL is added to the failure message.
assert_eq() {
	[ "$1" = "$2" ] || fail "${3:-value}: got '$1', expected '$2'${4:+ $4}"
}

# expect_status N CMD...: CMD must exit with status N (stdout in $TMP/out,
# stderr in $TMP/err and on stderr).
expect_status() {
	local want=$1 rc=0
	shift
	"$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
	cat "$TMP/err" >&2
	[ "$rc" = "$want" ] || fail "exit status $rc, expected $want: $*"
}

# expect_fail CMD...: CMD must exit non-zero; its stderr is in $TMP/err.
expect_fail() {
	if "$@" 2>"$TMP/err"; then
		fail "expected failure: $*"
	fi
	cat "$TMP/err" >&2
}

# nix-store against a throwaway chroot store (no state outside $TMP).
NIX_STORE_DIR=$TMP/nix
nix_store() {
	nix-store --store "$NIX_STORE_DIR" "$@"
}
# nix_phys STOREPATH: its physical location in that store (for nix-store --dump).
nix_phys() { echo "$NIX_STORE_DIR$1"; }

sf() { "$STOREFS" "$@"; }
# py ARGS...: fs_check.py, the exact-errno syscall checker of the mount tests.
py() { python3 "$HERE/fs_check.py" "$@"; }
base() { basename "$1"; }
hashpart() { basename "$1" | cut -c1-32; } # the 32-character hash of a store path

# start_mount STORE MOUNTPOINT [storefs mount options...]
# Mounts in the background and waits until the mount is live.
# STOREFS_TEST_VIA=grpc+unix or grpc+http (t63 sets it): start_mount of a
# store directory mounts it through a `storefs daemon` serving that directory
# (one per store, started at its first mount, stopped by cleanup), so a mount
# suite runs unchanged over gRPC.
via_daemon_url() { # STORE
	local key out pid
	key=$(printf '%s' "$1" | sha256sum | head -c 12)
	out=$TMP/via-$key.urls
	if [ ! -e "$out.ok" ]; then
		: >"$out"
		"$STOREFS" daemon --store "$1" --listen "unix:$TMP/via-$key.sock" --listen 127.0.0.1:0 \
			>"$out" 2>"$TMP/via-$key.log" &
		pid=$!
		echo "$pid" >>"$TMP/via.pids"
		for _ in $(seq 200); do
			[ "$(wc -l <"$out")" = 2 ] && break
			kill -0 "$pid" 2>/dev/null || { cat "$TMP/via-$key.log" >&2; break; }
			sleep 0.05
		done
		[ "$(wc -l <"$out")" = 2 ] || { fail "no daemon for $1" || return 1; }
		touch "$out.ok"
	fi
	grep "^$STOREFS_TEST_VIA://" "$out" ||
		{ fail "STOREFS_TEST_VIA=$STOREFS_TEST_VIA: not grpc+unix or grpc+http" || return 1; }
}

# mount_wait MOUNTPOINT LOG CMD...: starts CMD, a mount daemon for MOUNTPOINT
# (with a prefix if need be: nsenter --net=... storefs mount ...), in the
# background with its output in LOG, and waits until the mount is live
# ($MOUNT_PID: its pid, also when it fails).
mount_wait() {
	local mnt=$1 log=$2
	shift 2
	mkdir -p "$mnt"
	"$@" >"$log" 2>&1 &
	MOUNT_PID=$!
	DAEMON_PIDS+=("$MOUNT_PID")
	for _ in $(seq 200); do
		grep -q " $mnt fuse" /proc/mounts && return 0
		kill -0 "$MOUNT_PID" 2>/dev/null || { cat "$log" >&2; fail "mount exited: $*"; return 1; }
		sleep 0.05
	done
	cat "$log" >&2
	fail "mount did not come up: $*"
}

# start_mount STORE MOUNTPOINT [OPTION...]: storefs mount, log in $TMP/mount.log.
start_mount() {
	local store=$1 mnt=$2
	shift 2
	if [ -n "${STOREFS_TEST_VIA:-}" ] && [ -d "$store" ]; then
		store=$(via_daemon_url "$store") || return 1
	fi
	mount_wait "$mnt" "$TMP/mount.log" "$STOREFS" mount --store "$store" "$@" "$mnt"
}

# start_serve VAR ARGS...: starts `storefs serve` on a free port, sets VAR to
# its URL and VAR_PID to its pid, and waits until it answers.
start_serve() {
	local var=$1 pid url
	shift
	"$STOREFS" serve --listen 127.0.0.1:0 -v "$@" >"$TMP/$var.url" 2>"$TMP/$var.log" &
	pid=$!
	DAEMON_PIDS+=("$pid")
	echo "$pid" >>"$TMP/serve.pids" # cleanup() stops it, also if started in a check's subshell
	printf -v "${var}_PID" %s "$pid"
	for _ in $(seq 200); do
		url=$(cat "$TMP/$var.url" 2>/dev/null || true) # not created yet?
		if [ -n "$url" ] && curl -sf "$url/nix-cache-info" >/dev/null; then
			printf -v "$var" %s "$url"
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	cat "$TMP/$var.log" >&2
	fail "storefs serve $* did not come up"
}

# nix_closure DIR: in the chroot Nix store, the closure src <- g2 <- g3 of the tree DIR/src
# (filled by the caller); prints g3's store path.
nix_closure() {
	(cd "$1" && nix eval --store "$NIX_STORE_DIR" --impure --raw --expr \
		'let g2 = builtins.toFile "g2" "hi ${./src}\n"; in builtins.toFile "g3" "top ${g2}\n"' \
		2>/dev/null)
}

# page_cache_retry CMD...: CMD checks what the mount pushed into the kernel's
# page cache (docs/fuse.md "Pushing small files"); a drop_caches elsewhere on
# the machine (benchmarks) takes the kernel's inodes and their pages away, so
# CMD gets up to 3 rounds. CMD returns 0 (passed), 1 (what may be a drop:
# again) or anything else (failed whatever the cache did: no retry).
page_cache_retry() {
	local rc round
	for round in 1 2 3; do
		rc=0
		"$@" || rc=$?
		[ $rc = 1 ] || break
		echo "# round $round of $1 failed: the pages may have been dropped" >&2
	done
	[ $rc = 0 ] || fail "$1 failed (status $rc)"
}

# stop_mount MOUNTPOINT: unmounts and waits for the daemon to exit 0.
stop_mount() {
	fusermount3 -u "$1"
	wait "$MOUNT_PID"
}

# python_tree DIR PYTHON: copies PYTHON (the Debian one: its stdlib is in
# /usr/lib/python3.X) into DIR with every library ldd names, the loader, and
# the standard library; prints the version (t21, t62).
python_tree() {
	local t=$1 py=$2 ver lib
	ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
	mkdir -p "$t/bin" "$t/lib"
	cp "$py" "$t/bin/python3"
	for lib in $(ldd "$py" | awk '/=> \// { print $3 } /^[ \t]*\/.*ld-linux/ { print $1 }'); do
		cp -L "$lib" "$t/lib/"
	done
	cp -a "/usr/lib/python$ver" "$t/lib/python$ver"
	find "$t/lib/python$ver" -name __pycache__ -prune -exec rm -rf {} +
	rm -rf "$t/lib/python$ver/test" "$t/lib/python$ver/dist-packages" \
		"$t/lib/python$ver/site-packages"
	echo "$ver"
}

# --- gRPC peers (issue 15): two independent implementations of the wire ---
# Debian's grpcio belongs to Debian's python3 (/usr/bin/python3), whatever
# python3 comes first in PATH.
GRPC_PY=${GRPC_PY:-/usr/bin/python3}
# Node's @grpc/grpc-js and @grpc/proto-loader, pinned, installed by npm into a
# cache outside the repository (reused across runs; one installer at a time).
GRPC_NODE_DIR=${STOREFS_NODE_CACHE:-${HOME:-/root}/.cache/storefs/node}
GRPC_NODE_PKGS="@grpc/grpc-js@1.14.7 @grpc/proto-loader@0.8.1"

# grpc_py_gen DIR: the Python messages and stubs of proto/*.proto in DIR.
grpc_py_gen() {
	mkdir -p "$1"
	"$GRPC_PY" -m grpc_tools.protoc -I"$ROOT/proto" --python_out="$1" --grpc_python_out="$1" \
		"$ROOT"/proto/*.proto
}

# grpc_node_setup: installs the Node peers once; NODE_PATH then finds them.
# A failed install says which npm error it was (its "code" line), with a hint
# for the TLS ones: a root whose npm lacks the workplace's CA bundle fails
# with SELF_SIGNED_CERT_IN_CHAIN.
grpc_node_setup() {
	local stamp=$GRPC_NODE_DIR/installed log code
	command -v npm >/dev/null ||
		{ fail "npm is missing (scripts/install-deps installs nodejs and npm)" || return 1; }
	mkdir -p "$GRPC_NODE_DIR"
	log=$GRPC_NODE_DIR/npm-install.log
	if [ "$(cat "$stamp" 2>/dev/null)" != "$GRPC_NODE_PKGS" ]; then
		if ! (
			flock 9
			[ "$(cat "$stamp" 2>/dev/null)" = "$GRPC_NODE_PKGS" ] && exit 0
			# shellcheck disable=SC2086
			npm install --prefix "$GRPC_NODE_DIR" --no-save --no-audit --no-fund \
				--loglevel=error $GRPC_NODE_PKGS >"$log" 2>&1 &&
				echo "$GRPC_NODE_PKGS" >"$stamp"
		) 9>"$GRPC_NODE_DIR/.lock"; then
			tail -n 20 "$log" >&2
			code=$(sed -n 's/^npm \(ERR!\|error\) code //p' "$log" | head -n 1)
			case $code in
			*CERT* | *SELF_SIGNED* | UNABLE_TO_*)
				echo "hint: npm does not trust the registry's TLS certificate chain (a proxy's" \
					"CA?): give npm the system's CA bundle, e.g. npm config set cafile" \
					"/etc/ssl/certs/ca-certificates.crt" >&2
				;;
			esac
			fail "the Node peer's setup: npm install $GRPC_NODE_PKGS failed with npm error" \
				"${code:-(no code line; see the output above)}"
			return 1
		fi
	fi
	export NODE_PATH=$GRPC_NODE_DIR/node_modules
}

# on_tty CMD...: runs CMD with standard output and error on a pseudo-terminal
# (util-linux's script, from bsdutils, which is Essential in Debian), each
# progress line drawn at every update (STOREFS_PROGRESS_INTERVAL_MS=0: test
# commands finish within the 0.1 s of the first redraw); CMD's exit status,
# the transcript in $TMP/tty. tty_check checks it (tests/integration/tty_check.py).
on_tty() {
	STOREFS_PROGRESS_INTERVAL_MS=0 script -qfec "$(printf '%q ' "$@")" /dev/null \
		</dev/null >"$TMP/tty"
}
tty_check() { python3 "$HERE/tty_check.py" "$@"; }

#!/bin/bash
# t18-config.sh - the configuration file (cli/config.h; never the real
# /etc/storefs/storefs.conf: lib.sh points STOREFS_CONFIG away from it):
# store options and command options from --config FILE or $STOREFS_CONFIG,
# flags winning over the file, and every bad line an error naming FILE:LINE.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
shopt -s inherit_errexit

SRC=$TMP/tree
M=$TMP/mnt
CONF=$TMP/storefs.conf

# Blobs a store holds (small ones live inline in its database, not as files).
count_blobs() { sf info --store "$1" | awk '$1 == "blobs:" { print $2 }'; }

setup() {
	mkdir -p "$SRC/sub"
	echo "configured" >"$SRC/sub/f"
}

test_store_keys() {
	cat >"$CONF" <<EOF
# services chosen by the file
store = $TMP/meta
blob-service-addr = $TMP/blobs
EOF
	P=$(sf --config "$CONF" import "$SRC")
	assert_eq "$(count_blobs "$TMP/blobs")" 1 "blobs in the configured blob store"
	assert_eq "$(count_blobs "$TMP/meta")" 0 "blobs in the configured store"
	sf --config "$CONF" cat "$P/sub/f" | grep -q configured
	STOREFS_CONFIG=$CONF sf cat "$P/sub/f" | grep -q configured
	# Flags win over the file; --store replaces all of its addresses.
	mkdir -p "$TMP/other" && echo other >"$TMP/other/x"
	sf import --store "$TMP/elsewhere" "$TMP/other" >/dev/null
	expect_fail sf --config "$CONF" path-info --store "$TMP/elsewhere" "$P"
	grep -q "is not in the store" "$TMP/err" || fail "--store did not win: $(cat "$TMP/err")"
	expect_fail sf --config "$CONF" cat --blob-service-addr "$TMP/elsewhere" "$P/sub/f"
	grep -q "missing from the store" "$TMP/err" || fail "--blob-service-addr did not win: $(cat "$TMP/err")"
	# cache = DIR keeps what a read fetched.
	echo "cache = $TMP/cache" >>"$CONF"
	sf --config "$CONF" nar "$P" >/dev/null
	assert_eq "$(count_blobs "$TMP/cache")" 1 "blobs in the configured cache"
}

test_command_options() {
	local p
	p=$(sf import --store "$TMP/s2" "$SRC")
	printf 'store = %s\nmount.list-root = true\nmount.threads = 2\n' "$TMP/s2" >"$CONF"
	mount_wait "$M" "$TMP/mount.log" "$STOREFS" --config "$CONF" mount "$M"
	assert_eq "$(ls "$M")" "$(base "$p")" "root listed (mount.list-root from the file)"
	stop_mount "$M"
	# Without the key the root cannot be listed.
	printf 'store = %s\n' "$TMP/s2" >"$CONF"
	mount_wait "$M" "$TMP/mount.log" "$STOREFS" --config "$CONF" mount "$M"
	if ls "$M" >/dev/null 2>&1; then fail "root listed without list-root"; fi
	stop_mount "$M"
}

# unit_cmd UNIT [KEY=VALUE...]: into UNIT_ARGV, the command line systemd would run for
# dist/systemd/UNIT (%f: $M), KEY=VALUE being what an environment file sets (in the
# process's environment too).
unit_cmd() {
	local unit=$1 argv
	shift
	mapfile -d '' argv < <(python3 "$HERE/unit_argv.py" "$ROOT/dist/systemd/$unit" \
		"$(dirname "$STOREFS")" "$M" "$@")
	[ "${#argv[@]}" -gt 2 ] || fail "no command line from $unit"
	UNIT_ARGV=(env "$@" "${argv[@]}")
}

unit_mount() {
	unit_cmd storefs-mount@.service "$@"
	mount_wait "$M" "$TMP/mount.log" "${UNIT_ARGV[@]}"
}

# unit_server UNIT [KEY=VALUE...]: starts UNIT's server (stopped when the check ends) and
# waits for the URL it prints, into UNIT_URL.
unit_server() {
	unit_cmd "$@"
	"${UNIT_ARGV[@]}" >"$TMP/unit.url" 2>"$TMP/unit.log" &
	UNIT_PID=$!
	trap 'kill "$UNIT_PID" 2>/dev/null; wait "$UNIT_PID" 2>/dev/null' EXIT # a check's subshell
	for _ in $(seq 200); do
		UNIT_URL=$(head -n 1 "$TMP/unit.url")
		[ -z "$UNIT_URL" ] || return 0
		kill -0 "$UNIT_PID" 2>/dev/null || break
		sleep 0.05
	done
	fail "$1 did not come up: $(cat "$TMP/unit.log")"
}

unit_server_stop() {
	kill "$UNIT_PID"
	wait "$UNIT_PID" || true # the status of a server stopped by SIGTERM
	trap - EXIT
}

# unit_stores X: $CONF names services ($TMP/X-blobs, $TMP/X-meta) holding $SRC as path p, and
# $TMP/X-default is another store, holding path q (the caller's locals p and q).
unit_stores() {
	printf 'blob-service-addr = %s\nstore = %s\n' "$TMP/$1-blobs" "$TMP/$1-meta" >"$CONF"
	p=$(sf --config "$CONF" import "$SRC")
	mkdir -p "$TMP/$1-src" && echo "default" >"$TMP/$1-src/f"
	q=$(sf import --store "$TMP/$1-default" "$TMP/$1-src")
}

# The mount unit names no store unless told to: the file's service addresses serve it,
# $STOREFS_STORE (from an environment file) only where the file names none, and
# STOREFS_MOUNT_OPTIONS="--store ..." wins over both.
test_mount_unit() {
	local p q
	unit_stores u
	STOREFS_CONFIG=$CONF unit_mount STOREFS_STORE="$TMP/u-default"
	assert_eq "$(cat "$M/$(base "$p")/sub/f")" "configured" "through the file's services"
	stop_mount "$M"
	STOREFS_CONFIG=/dev/null unit_mount STOREFS_STORE="$TMP/u-default"
	assert_eq "$(cat "$M/$(base "$q")/f")" "default" "\$STOREFS_STORE without a file"
	stop_mount "$M"
	STOREFS_CONFIG=$CONF unit_mount STOREFS_MOUNT_OPTIONS="--store $TMP/u-default"
	assert_eq "$(cat "$M/$(base "$q")/f")" "default" "--store in STOREFS_MOUNT_OPTIONS"
	stop_mount "$M"
}

# The daemon and serve units likewise: the file's services, unless STOREFS_*_OPTIONS names a store.
test_server_units() {
	local p q
	unit_stores v
	STOREFS_CONFIG=$CONF unit_server storefs-daemon.service STOREFS_STORE="$TMP/v-default" \
		STOREFS_LISTEN="unix:$TMP/unit.sock"
	assert_eq "$(sf cat --store "$UNIT_URL" "$p/sub/f")" "configured" "daemon: the file's services"
	unit_server_stop
	STOREFS_CONFIG=$CONF unit_server storefs-daemon.service STOREFS_LISTEN="unix:$TMP/unit.sock" \
		STOREFS_DAEMON_OPTIONS="--store $TMP/v-default"
	assert_eq "$(sf cat --store "$UNIT_URL" "$q/f")" "default" "daemon: --store in the options"
	unit_server_stop
	STOREFS_CONFIG=$CONF unit_server storefs-serve.service STOREFS_STORE="$TMP/v-default" \
		STOREFS_LISTEN=127.0.0.1:0
	curl -sf "$UNIT_URL/$(base "$p" | cut -c1-32).narinfo" >/dev/null || fail "serve: not the file's"
	unit_server_stop
}

bad() { # EXPECTED-MESSAGE LINES...
	local want=$1
	shift
	printf '%s\n' "$@" >"$CONF"
	expect_fail sf --config "$CONF" list --store "$TMP/s2"
	grep -qF "$CONF:$want" "$TMP/err" || fail "wanted '$CONF:$want', got: $(cat "$TMP/err")"
}

test_bad_files() {
	sf import --store "$TMP/s2" "$SRC" >/dev/null
	bad "2: unknown key 'colour'" "# fine" "colour = blue"
	bad "1: expected 'key = value'" "store"
	bad "3: expected 'key = value' with both" "" "" "cache ="
	bad "1: unknown command 'mnt'" "mnt.threads = 2"
	bad "1: 'storefs mount' has no option '--nope'" "mount.nope = 1"
	bad "1: mount.threads wants a number from 1 to 256, not '0'" "mount.threads = 0"
	bad "1: mount.list-root wants true or false, not 'maybe'" "mount.list-root = maybe"
	bad "2: 'store' is set already on line 1" "store = a" "store = b"
	expect_fail sf --config "$TMP/absent.conf" list
	grep -q "cannot read configuration file '$TMP/absent.conf'" "$TMP/err" || fail "absent file"
	# A good file with comments and spaces.
	printf '  # comment\n\n  store   =   %s  \n' "$TMP/s2" >"$CONF"
	assert_eq "$(sf --config "$CONF" list | wc -l)" 1 "paths listed through the file"
	sf --help | grep -q -- "--config FILE"
}

setup
check "store keys: store, blob-service-addr, cache; flags win" test_store_keys
check "command options: mount.list-root, mount.threads" test_command_options
check "bad files are errors naming FILE:LINE" test_bad_files
check "the mount unit: the file's services, else \$STOREFS_STORE; --store in the options wins" \
	test_mount_unit
check "the daemon and serve units: the file's services; --store in the options wins" \
	test_server_units

#!/bin/bash
# t40-substituter.sh - storefs mount --substituter: Nix binary caches made by
# real Nix (nix copy --to file://...) mounted lazily, read through FUSE, over
# file:// and over HTTP from a plain static server, with every refusal (bad
# or missing signature, NAR hash mismatch, truncated NAR) an EIO that
# registers nothing and is retried once the cache is fixed.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
shopt -s inherit_errexit

SRC=$TMP/src
M=$TMP/mnt

# errno_of PATH: "ok" if stat(2) succeeds, else the errno's name.
errno_of() {
	python3 - "$1" <<'PY'
import errno, os, sys
try:
    os.stat(sys.argv[1])
    print("ok")
except OSError as e:
    print(errno.errorcode[e.errno])
PY
}

# in_store STORE PATH: is PATH registered in STORE?
in_store() {
	"$STOREFS" path-info --store "$1" "$2" >/dev/null 2>&1
}

# mount_cache STORE URL [options...]: mounts STORE with URL as substituter.
mount_cache() {
	local store=$1 url=$2
	shift 2
	start_mount "$store" "$M" --substituter "$url" -v "$@"
}

# fetches PATH: how many times the mount log says PATH's NAR was fetched.
fetches() {
	grep -c "fetching '$1' from" "$TMP/mount.log" || true
}

# cache_copy NAME: a copy of the xz cache at $TMP/NAME.
cache_copy() {
	rm -rf "${TMP:?}/$1"
	cp -a "$TMP/cache-xz" "$TMP/$1"
}

nar_file() { # CACHE PATH: the NAR file of PATH in CACHE
	echo "$1/$(sed -n 's/^URL: //p' "$1/$(hashpart "$2").narinfo")"
}

setup() {
	mkdir -p "$SRC/tree/lib" "$SRC/tree/bin" "$SRC/other"
	echo "some data" >"$SRC/tree/lib/data.txt"
	printf '#!/bin/sh\necho hello from the cache\n' >"$SRC/tree/bin/hello"
	chmod +x "$SRC/tree/bin/hello"
	ln -s lib/data.txt "$SRC/tree/link"
	head -c 300000 /dev/urandom >"$SRC/tree/lib/random.bin"
	echo "unrelated" >"$SRC/other/file"
	P1=$(nix_store --add "$SRC/tree")
	P3=$(nix_store --add "$SRC/other")
	# A text path that refers to P1.
	P2=$(nix --store "$NIX_STORE_DIR" eval --impure --raw \
		--expr "builtins.toFile \"user\" \"uses \${$SRC/tree}\n\"")
	[ "$(nix_store -q --references "$P2")" = "$P1" ]
	nix-store --generate-binary-cache-key test-cache-1 "$TMP/sk" "$TMP/pk"
	nix-store --generate-binary-cache-key test-cache-1 "$TMP/sk2" "$TMP/pk2"
	local c
	for c in xz zstd bzip2 none; do
		nix copy --store "$NIX_STORE_DIR" \
			--to "file://$TMP/cache-$c?compression=$c&secret-key=$TMP/sk" "$P2" "$P3"
	done
	nix copy --store "$NIX_STORE_DIR" --to "file://$TMP/cache-unsigned" "$P2" "$P3"
	cp -a "$TMP/cache-unsigned" "$TMP/cache-ca-unsigned"
	# A flat CA path, and uncompressed caches that keep the CA lines, for
	# the CA lies below.
	printf 'flat file\n' >"$SRC/flat.txt"
	printf 'other file\n' >"$SRC/other.txt"
	P4=$(nix_store --add-fixed sha256 "$SRC/flat.txt")
	nix copy --store "$NIX_STORE_DIR" --to "file://$TMP/cache-ca-none?compression=none" \
		"$P2" "$P3" "$P4"
	nix copy --store "$NIX_STORE_DIR" \
		--to "file://$TMP/cache-ca-signed?compression=none&secret-key=$TMP/sk" "$P2" "$P3" "$P4"
	grep -q '^CA: fixed:sha256:' "$TMP/cache-ca-none/$(hashpart "$P4").narinfo"
	# Both paths are content-addressed, which needs no signature. Dropping
	# the CA lines (not covered by the signed fingerprint) makes them plain
	# input-addressed paths whose signatures matter.
	for c in xz zstd bzip2 none unsigned; do
		sed -i '/^CA: /d' "$TMP/cache-$c"/*.narinfo
	done
	grep -q '^Compression: zstd' "$TMP/cache-zstd/$(hashpart "$P1").narinfo"
	grep -q '^Compression: xz' "$TMP/cache-xz/$(hashpart "$P1").narinfo"
	PK=$(cat "$TMP/pk")
	PK2=$(cat "$TMP/pk2")
	declare -p P1 P2 P3 P4 PK PK2 >"$TMP/vars"
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_http() { # URL
	for _ in $(seq 100); do
		python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
			"$1" 2>/dev/null && return 0
		sleep 0.05
	done
	fail "http server for $1 did not come up"
}

# Runs in a subshell: the server pids go to $TMP/http.pids for lib.sh's
# cleanup. A plain static server for $TMP (caches at http://127.0.0.1:$PORT/cache-*),
# and one that announces each NAR's full length but sends only half of it.
start_http() {
	PORT=$(free_port)
	python3 -m http.server --bind 127.0.0.1 "$PORT" --directory "$TMP" >"$TMP/http.log" 2>&1 &
	echo $! >>"$TMP/http.pids"
	LIAR_PORT=$(free_port)
	cat >"$TMP/liar.py" <<'PY'
import http.server, os, sys
root = sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        path = os.path.join(root, self.path.lstrip("/"))
        if not os.path.isfile(path):
            self.send_error(404)
            return
        data = open(path, "rb").read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data if not self.path.startswith("/nar/") else data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
	python3 "$TMP/liar.py" "$LIAR_PORT" "$TMP/cache-xz" >"$TMP/liar.log" 2>&1 &
	echo $! >>"$TMP/http.pids"
	wait_http "http://127.0.0.1:$PORT/cache-xz/nix-cache-info"
	wait_http "http://127.0.0.1:$LIAR_PORT/nix-cache-info"
	declare -p PORT LIAR_PORT >>"$TMP/vars"
}

# Reads P1 from the mount and compares it with the source tree.
check_tree() {
	local t=$M/$(base "$P1")
	diff -r --no-dereference "$SRC/tree" "$t"
	[ -x "$t/bin/hello" ] || fail "bin/hello is not executable"
	[ ! -x "$t/lib/data.txt" ] || fail "lib/data.txt is executable"
	assert_eq "$(readlink "$t/link")" "lib/data.txt" "symlink target"
	assert_eq "$("$t/bin/hello")" "hello from the cache" "running bin/hello"
}

test_lazy_file() {
	local cs=$TMP/cs-file
	mount_cache "$cs" "file://$TMP/cache-xz" --trusted-public-keys "$PK"
	assert_eq "$(cat "$M/$(base "$P1")/lib/data.txt")" "some data" "data.txt"
	# Only the path read was fetched: not its referrer, not the other one.
	in_store "$cs" "$P1" || fail "P1 was not added to the local store"
	! in_store "$cs" "$P2" || fail "P2 was fetched without being read"
	! in_store "$cs" "$P3" || fail "P3 was fetched without being read"
	assert_eq "$(fetches "$P1")" 1 "fetches of P1"
	assert_eq "$(grep -c "fetching '" "$TMP/mount.log")" 1 "NAR fetches"
	check_tree
	assert_eq "$(cat "$M/$(base "$P2")")" "uses $P1" "P2 contents"
	in_store "$cs" "$P2"
	! in_store "$cs" "$P3" || fail "P3 was fetched without being read"
	assert_eq "$(fetches "$P1")" 1 "fetches of P1 after reading it all"
	assert_eq "$(grep -c "fetching '" "$TMP/mount.log")" 2 "NAR fetches"
	# References and signatures came from the narinfo.
	"$STOREFS" path-info --store "$cs" "$P2" >"$TMP/pi"
	grep -q "references: $P1" "$TMP/pi"
	grep -q "signature: test-cache-1:" "$TMP/pi"
	stop_mount "$M"
	# The local store keeps what was fetched: a plain mount serves it.
	start_mount "$cs" "$M"
	check_tree
	assert_eq "$(errno_of "$M/$(base "$P3")")" ENOENT "P3 without substituter"
	stop_mount "$M"
}

test_compressions() {
	local c
	for c in zstd bzip2 none; do
		mount_cache "$TMP/cs-$c" "file://$TMP/cache-$c/" --trusted-public-keys "$PK"
		check_tree
		assert_eq "$(cat "$M/$(base "$P3")/file")" "unrelated" "P3 file ($c)"
		stop_mount "$M"
	done
}

test_http() {
	local cs=$TMP/cs-http
	mount_cache "$cs" "http://127.0.0.1:$PORT/cache-xz" --trusted-public-keys "$PK2 $PK"
	check_tree
	in_store "$cs" "$P1"
	! in_store "$cs" "$P2" || fail "P2 was fetched without being read"
	grep -q "GET /cache-xz/$(hashpart "$P1").narinfo" "$TMP/http.log"
	grep -q "GET /cache-xz/nar/.*\.nar\.xz" "$TMP/http.log"
	! grep -q "GET /cache-xz/$(hashpart "$P2").narinfo" "$TMP/http.log" || fail "P2 narinfo fetched"
	assert_eq "$(errno_of "$M/00000000000000000000000000000000-nope")" ENOENT "missing path"
	# Concurrent first reads of one path fetch it once.
	local i pids=()
	for i in $(seq 8); do
		cat "$M/$(base "$P3")/file" >"$TMP/par.$i" &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i"; done
	for i in $(seq 8); do assert_eq "$(cat "$TMP/par.$i")" "unrelated" "parallel read $i"; done
	assert_eq "$(fetches "$P3")" 1 "NAR fetches of P3"
	stop_mount "$M"
}

test_nix_url() {
	local url="nix+http://127.0.0.1:$PORT/cache-xz?trusted-public-keys=$PK2%20$PK&cache=$TMP/cs-url"
	assert_eq "$("$STOREFS" cat --store "$url" "$P1/lib/data.txt")" "some data" "cat"
	in_store "$TMP/cs-url" "$P1"
	! in_store "$TMP/cs-url" "$P2" || fail "P2 was fetched without being read"
	start_mount "$url" "$M"
	check_tree
	assert_eq "$(cat "$M/$(base "$P2")")" "uses $P1" "P2 contents"
	stop_mount "$M"
	url="nix+http://127.0.0.1:$PORT/cache-xz?cache=$TMP/cs-url2"
	expect_fail "$STOREFS" path-info --store "$url" "$P3"
	grep -q "unsigned\|no valid signature" "$TMP/err"
	expect_fail "$STOREFS" path-info --store "nix+http://127.0.0.1:$PORT?bogus=1" "$P3"
	grep -q "unknown store URL parameter 'bogus'" "$TMP/err"
}

test_ca_unsigned() {
	local cs=$TMP/cs-ca
	mount_cache "$cs" "file://$TMP/cache-ca-unsigned"
	check_tree
	assert_eq "$(cat "$M/$(base "$P2")")" "uses $P1" "P2 contents"
	stop_mount "$M"
}

# expect_refused STORE PATTERN: P1 is EIO, logged with PATTERN, not added.
expect_refused() {
	assert_eq "$(errno_of "$M/$(base "$P1")")" EIO "stat of a refused path"
	grep -q "cannot substitute '$P1'.*$2" "$TMP/mount.log" ||
		{ cat "$TMP/mount.log"; fail "no log line matching '$2'"; }
	! in_store "$1" "$P1" || fail "a refused path was registered"
}

test_wrong_key() {
	local cs=$TMP/cs-wrongkey
	mount_cache "$cs" "file://$TMP/cache-xz" --trusted-public-keys "$PK2"
	expect_refused "$cs" "no valid signature by a trusted key (signed by: test-cache-1"
	assert_eq "$(fetches "$P1")" 0 "NAR fetches of an untrusted path"
	stop_mount "$M"
}

test_unsigned() {
	local cs=$TMP/cs-unsigned
	mount_cache "$cs" "file://$TMP/cache-unsigned" --trusted-public-keys "$PK"
	expect_refused "$cs" "is unsigned"
	stop_mount "$M"
	# ... unless signatures are not checked.
	mount_cache "$cs" "file://$TMP/cache-unsigned" --no-check-sigs
	check_tree
	stop_mount "$M"
}

test_hash_mismatch() {
	local cs=$TMP/cs-badnar c=$TMP/cache-badnar nar
	rm -rf "$c"
	cp -a "$TMP/cache-none" "$c"
	# Same length and structure, one byte of a file changed: the signature
	# is still valid, only the NAR hash tells.
	nar=$(nar_file "$c" "$P1")
	sed -i 's/some data/some dbta/' "$nar"
	mount_cache "$cs" "file://$c" --trusted-public-keys "$PK"
	expect_refused "$cs" "NAR hash mismatch"
	stop_mount "$M"
	mount_cache "$cs" "http://127.0.0.1:$PORT/cache-badnar" --trusted-public-keys "$PK"
	expect_refused "$cs" "NAR hash mismatch"
	stop_mount "$M"
	# An edited NarHash (signatures off, as the NarHash is signed).
	cp "$(nar_file "$TMP/cache-none" "$P1")" "$nar"
	sed -i "s|^NarHash: .*|$(grep '^NarHash: ' "$c/$(hashpart "$P3").narinfo")|" \
		"$c/$(hashpart "$P1").narinfo"
	mount_cache "$cs" "file://$c" --no-check-sigs
	expect_refused "$cs" "NAR hash mismatch"
	stop_mount "$M"
}

test_truncated_then_retry() {
	local cs=$TMP/cs-trunc c=$TMP/cache-trunc nar size
	cache_copy cache-trunc
	nar=$(nar_file "$c" "$P1")
	size=$(stat -c %s "$nar")
	truncate -s $((size / 2)) "$nar"
	mount_cache "$cs" "file://$c" --trusted-public-keys "$PK"
	expect_refused "$cs" "truncated"
	# Failures are not cached: fixing the cache makes the next lookup work.
	cp "$(nar_file "$TMP/cache-xz" "$P1")" "$nar"
	check_tree
	in_store "$cs" "$P1"
	assert_eq "$(fetches "$P1")" 2 "NAR fetches (failed, then good)"
	stop_mount "$M"
	# An uncompressed NAR cut short.
	rm -rf "$c"
	cp -a "$TMP/cache-none" "$c"
	nar=$(nar_file "$c" "$P1")
	truncate -s 1000 "$nar"
	mount_cache "$TMP/cs-trunc2" "file://$c" --trusted-public-keys "$PK"
	expect_refused "$TMP/cs-trunc2" "truncated"
	stop_mount "$M"
	mount_cache "$TMP/cs-trunc2" "http://127.0.0.1:$PORT/cache-trunc" --trusted-public-keys "$PK"
	expect_refused "$TMP/cs-trunc2" "truncated"
	stop_mount "$M"
}

test_http_cut_short() {
	local cs=$TMP/cs-liar
	mount_cache "$cs" "http://127.0.0.1:$LIAR_PORT" --trusted-public-keys "$PK"
	expect_refused "$cs" "cannot download\\|truncated"
	grep "cannot substitute" "$TMP/mount.log"
	stop_mount "$M"
}

test_missing_nar() {
	local cs=$TMP/cs-nonar c=$TMP/cache-nonar
	cache_copy cache-nonar
	rm "$(nar_file "$c" "$P1")"
	mount_cache "$cs" "file://$c" --trusted-public-keys "$PK"
	expect_refused "$cs" "is missing from the cache"
	# One failure, one line (it was logged by the substituter and again
	# by the transport replying EIO).
	assert_eq "$(grep -c "missing from the cache" "$TMP/mount.log")" 1 \
		"log lines of one failed fetch"
	grep "missing from the cache" "$TMP/mount.log"
	stop_mount "$M"
}

# cache_lie CACHE NAME PATH OTHER: a copy of CACHE at $TMP/NAME in which
# PATH's NAR is OTHER's, with OTHER's (true) NarHash and NarSize; PATH's CA
# and signatures stay, so only the CA can tell.
cache_lie() {
	local c=$TMP/$2 ni
	rm -rf "$c"
	cp -a "$TMP/$1" "$c"
	ni=$c/$(hashpart "$3").narinfo
	cp "$(nar_file "$TMP/$1" "$4")" "$(nar_file "$c" "$3")"
	sed -i -e "s|^NarHash: .*|$(grep '^NarHash: ' "$c/$(hashpart "$4").narinfo")|" \
		-e "s|^NarSize: .*|$(grep '^NarSize: ' "$c/$(hashpart "$4").narinfo")|" "$ni"
}

# refused PATH STORE PATTERN: like expect_refused, for any path.
refused() {
	assert_eq "$(errno_of "$M/$(base "$1")")" EIO "stat of a refused path"
	grep -q "cannot substitute '$1'.*$3" "$TMP/mount.log" ||
		{ cat "$TMP/mount.log"; fail "no log line matching '$3'"; }
	! in_store "$2" "$1" || fail "a refused path was registered"
}

# What was seen: an unsigned narinfo's CA was believed, not checked.
test_ca_lie_unsigned() {
	local cs=$TMP/cs-calie
	cache_lie cache-ca-none cache-calie "$P3" "$P2"
	cache_lie cache-calie cache-calie2 "$P4" "$P2"
	mount_cache "$cs" "file://$TMP/cache-calie2"
	# A source CA against another NAR (the NarHash tells at once) ...
	refused "$P3" "$cs" "ca hash mismatch importing path '$P3'; specified: sha256:"
	# ... and a flat CA against another file (only the content tells):
	# fetched, refused, and its blob taken back.
	refused "$P4" "$cs" "ca hash mismatch importing path '$P4'; specified: sha256:"
	assert_eq "$(cat "$M/$(base "$P2")")" "uses $P1" "an honest path still comes"
	stop_mount "$M"
	"$STOREFS" verify --store "$cs" >"$TMP/v"
	cat "$TMP/v"
	grep -q ": 0 problems$" "$TMP/v"
	! grep -q "unreferenced: [1-9][0-9]* blobs" "$TMP/v" || fail "the refused fetch left its blob"
	# Not even --no-check-sigs lets a CA lie through.
	mount_cache "$cs" "file://$TMP/cache-calie2" --no-check-sigs
	refused "$P4" "$cs" "ca hash mismatch"
	stop_mount "$M"
}

# A valid signature does not vouch for the CA line (Nix does not sign it).
test_ca_lie_signed() {
	local cs=$TMP/cs-calie-signed c=$TMP/cache-calie-signed
	rm -rf "$c"
	cp -a "$TMP/cache-ca-signed" "$c"
	sed -i "s|^CA: .*|$(grep '^CA: ' "$c/$(hashpart "$P3").narinfo")|" \
		"$c/$(hashpart "$P1").narinfo"
	mount_cache "$cs" "file://$c" --trusted-public-keys "$PK"
	refused "$P1" "$cs" "'$P1' claims to be content-addressed but its CA"
	stop_mount "$M"
	# The flat lie, signed: the NarHash is signed, so the lie needs a
	# re-signed narinfo; the key's owner can lie, the CA check cannot be.
	cache_lie cache-ca-signed cache-calie-signed2 "$P4" "$P2"
	nix store sign --store "file://$TMP/cache-calie-signed2" --key-file "$TMP/sk" "$P4"
	mount_cache "$TMP/cs-calie-signed2" "file://$TMP/cache-calie-signed2" --trusted-public-keys "$PK"
	refused "$P4" "$TMP/cs-calie-signed2" "ca hash mismatch importing path '$P4'"
	stop_mount "$M"
}

test_usage() {
	expect_fail "$STOREFS" mount --trusted-public-keys "$PK" "$M"
	grep -q "need --substituter" "$TMP/err"
	mkdir -p "$M"
	expect_fail "$STOREFS" mount --store "$TMP/cs-usage" --substituter "ftp://x/y" "$M"
	grep -q "unsupported URL" "$TMP/err"
	expect_fail "$STOREFS" mount --store "$TMP/cs-usage" --substituter "file://$TMP/cache-xz" \
		--trusted-public-keys "not-a-key" "$M"
	"$STOREFS" mount --help | grep -q -- "--substituter URL"
}

if ! (set -e; setup) >"$TMP/setup.log" 2>&1; then
	echo "not ok - setup: build a closure and binary caches with nix"
	sed 's/^/#   /' "$TMP/setup.log" | tail -n 30
	exit 0
fi
. "$TMP/vars"
(set -e; start_http) >"$TMP/http-setup.log" 2>&1
rc=$?
[ -f "$TMP/http.pids" ] && mapfile -t -O "${#DAEMON_PIDS[@]}" DAEMON_PIDS <"$TMP/http.pids"
if [ $rc != 0 ]; then
	echo "not ok - start the http servers"
	sed 's/^/#   /' "$TMP/http-setup.log" | tail -n 30
	exit 0
fi
. "$TMP/vars"

# A mount on a terminal shows each NAR fetch as a progress line, erased when
# the fetch ends; with its stderr in a file, nothing of it.
test_progress() {
	local m=$TMP/mnt-tty
	export STOREFS_PROGRESS_INTERVAL_MS=0 # for the mount with stderr in a file too
	mount_wait "$m" /dev/null on_tty "$STOREFS" mount --store "$TMP/cs-tty" \
		--substituter "file://$TMP/cache-xz" --trusted-public-keys "$PK" "$m"
	assert_eq "$(cat "$m/$(base "$P1")/lib/data.txt")" "some data" "data.txt"
	stop_mount "$m"
	tty_check tty "$TMP/tty" "fetching /nix/store/" >"$TMP/plain"
	grep -aq $'\rfetching '"$P1"': .* of .* MiB' "$TMP/tty" || fail "no line for $P1"
	grep -q "^mounted .* at $m" "$TMP/plain" || fail "no mounted line"
	mount_cache "$TMP/cs-file2" "file://$TMP/cache-xz" --trusted-public-keys "$PK"
	assert_eq "$(cat "$M/$(base "$P1")/lib/data.txt")" "some data" "data.txt"
	stop_mount "$M"
	assert_eq "$(fetches "$P1")" 1 "fetches of P1"
	tty_check none "$TMP/mount.log" "fetching /nix/store/"
}

# A binary cache behind --cache (docs/services.md "The cache") fetches a NAR on a miss: that
# fetch shows its progress line too.
test_progress_cached() {
	local url="nix+http://127.0.0.1:$PORT/cache-xz?trusted-public-keys=$PK&cache=$TMP/cs-pc"
	on_tty "$STOREFS" cat --store "$url" --cache "$TMP/cc-pc" "$P1/lib/data.txt" ||
		fail "cat: $(cat "$TMP/tty")"
	tty_check tty "$TMP/tty" "fetching /nix/store/" >"$TMP/plain"
	grep -aq $'\rfetching '"$P1"': .* of .* MiB' "$TMP/tty" || fail "no line for $P1"
	grep -q "^some data" "$TMP/plain" || fail "no contents: $(cat "$TMP/plain")"
}

check "file:// xz cache: a read fetches only that path; contents, modes, links match" test_lazy_file
check "a progress line per NAR fetch on a terminal only" test_progress
check "a progress line for a NAR fetched behind --cache" test_progress_cached
check "zstd, bzip2 and uncompressed caches" test_compressions
check "http:// cache from a static server" test_http
check "--store nix+http://...?trusted-public-keys=...&cache=DIR" test_nix_url
check "content-addressed paths need no signature" test_ca_unsigned
check "a signature by an untrusted key is refused (EIO, nothing added)" test_wrong_key
check "an unsigned path is refused unless --no-check-sigs" test_unsigned
check "a NAR hash mismatch is refused" test_hash_mismatch
check "a truncated NAR is refused and retried once fixed" test_truncated_then_retry
check "a NAR cut short by the server (Content-Length not met) is refused" test_http_cut_short
check "a missing NAR is refused" test_missing_nar
check "an unsigned narinfo whose CA does not fit its NAR is refused (EIO, logged)" test_ca_lie_unsigned
check "a signed narinfo whose CA does not fit its NAR is refused" test_ca_lie_signed
check "option errors and --help" test_usage

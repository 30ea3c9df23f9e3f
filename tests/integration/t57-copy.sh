#!/bin/bash
# t57-copy.sh - storefs copy: local -> local, local -> (storefs serve as
# a Nix binary cache, read through nix+http) -> local, and local -> (serve
# taking uploads, nix+http with the upload token) -> local, byte-identical NARs
# and metadata; a second copy transfers nothing; blobs the destination
# has are reused.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
shopt -s inherit_errexit


# A closure of three CA paths in a chroot Nix store: src <- g2 <- g3.
mkdir -p "$TMP/w/src/sub"
printf 'hello\n' >"$TMP/w/src/a"
head -c 100000 /dev/urandom >"$TMP/w/src/sub/big"
ln -s a "$TMP/w/src/l"
TOP=$(nix_closure "$TMP/w")
S1=$TMP/s1
sf import-nix --store "$S1" --nix-store "$NIX_STORE_DIR" -r "$TOP" >/dev/null

# same_paths A B: both stores hold the same paths, NARs and metadata.
same_paths() {
	diff <(sf list --store "$1") <(sf list --store "$2")
	diff <(sf path-info --store "$1" --json --all) <(sf path-info --store "$2" --json --all)
	for p in $(sf list --store "$1"); do
		cmp <(sf nar --store "$1" "$p") <(sf nar --store "$2" "$p")
	done
}

t_local() {
	local s2=$TMP/s2
	# Without -r a missing reference is refused and nothing is copied.
	expect_status 1 sf copy --from "$S1" --to "$s2" "$TOP"
	grep -q "is not in the destination (copy with -r)" "$TMP/err"
	assert_eq "$(sf list --store "$s2" | wc -l)" 0
	sf copy --from "$S1" --to "$s2" -r "$TOP" >"$TMP/out" 2>"$TMP/err"
	assert_eq "$(cat "$TMP/out")" "$TOP"
	grep -q '^3 paths copied, 0 present; 4 blobs' "$TMP/err"
	same_paths "$S1" "$s2"
	sf verify --store "$s2" -q
	# Again: nothing is transferred.
	sf copy --from "$S1" --to "$s2" -r "$TOP" 2>"$TMP/err" >/dev/null
	grep -qx '0 paths copied, 1 present; 0 blobs (0 bytes) copied, 0 present' "$TMP/err"
}

t_reuse_blobs() {
	local s3=$TMP/s3 src
	# The destination already has the big file (another path holds it).
	mkdir -p "$TMP/other"
	cp "$TMP/w/src/sub/big" "$TMP/other/big"
	sf import --store "$s3" "$TMP/other" >/dev/null
	src=$(sf list --store "$S1" | grep -- -src)
	sf copy --from "$S1" --to "$s3" "$src" 2>"$TMP/err" >/dev/null
	cat "$TMP/err"
	grep -q '^1 paths copied, 0 present; 1 blobs (6 bytes) copied, 1 present$' "$TMP/err"
	cmp <(sf nar --store "$S1" "$src") <(sf nar --store "$s3" "$src")
}

t_via_http() {
	local url pid s4=$TMP/s4 s5=$TMP/s5
	# $STOREFS itself (not the sf function, whose subshell $! would name) so
	# that the kill below, or this check's exit when it fails, stops it.
	"$STOREFS" serve --store "$S1" --readonly --listen 127.0.0.1:0 -v >"$TMP/url" 2>"$TMP/serve.log" &
	pid=$!
	trap "kill $pid 2>/dev/null || true" EXIT
	for _ in $(seq 100); do
		url=$(cat "$TMP/url" 2>/dev/null || true)
		[ -n "$url" ] && curl -sf "$url/nix-cache-info" >/dev/null && break
		sleep 0.05
	done
	[ -n "$url" ] || fail "serve did not come up"
	# The paths are content-addressed: no signature needed. On a terminal,
	# each NAR fetch shows a progress line, erased before the output.
	on_tty "$STOREFS" copy --from "nix+${url}?cache=$TMP/cache" --to "$s4" -r "$TOP"
	tty_check tty "$TMP/tty" "fetching /nix/store/" >"$TMP/plain"
	grep -aq $'\rfetching '"$TOP"': .* of .* MiB' "$TMP/tty" || fail "no line for $TOP"
	assert_eq "$(head -n 1 "$TMP/plain")" "$TOP" "the output"
	grep -q '^3 paths copied, 0 present; ' "$TMP/plain" || fail "no summary"
	same_paths "$S1" "$s4"
	sf verify --store "$s4" -q
	# Again: every path is present, no NAR is fetched.
	assert_eq "$(grep -c 'GET /nar/' "$TMP/serve.log")" 3 "NARs fetched by the first copy"
	sf copy --from "nix+${url}?cache=$TMP/cache2" --to "$s4" -r "$TOP" 2>"$TMP/err" >/dev/null
	grep -qx '0 paths copied, 1 present; 0 blobs (0 bytes) copied, 0 present' "$TMP/err"
	assert_eq "$(grep -c 'GET /nar/' "$TMP/serve.log")" 3 "NARs fetched after the second copy"
	# ... and back to a fresh local store.
	sf copy --from "$s4" --to "$s5" -r "$TOP" >/dev/null
	same_paths "$S1" "$s5"
	# Fetching with standard error in a file: no progress there.
	STOREFS_PROGRESS_INTERVAL_MS=0 sf copy --from "nix+${url}?cache=$TMP/cache3" \
		--to "$TMP/s4b" -r "$TOP" >/dev/null 2>"$TMP/err"
	assert_eq "$(grep -c 'GET /nar/' "$TMP/serve.log")" 6 "NARs fetched by the third copy"
	tty_check none "$TMP/err" "fetching"
	kill "$pid"
}

# nix_dump_same STORE: every path's NAR in STORE is what Nix dumps of it.
nix_dump_same() {
	for p in $(sf list --store "$1"); do
		cmp <(sf nar --store "$1" "$p") <(nix_store --dump "$(nix_phys "$p")")
	done
}

# To a `storefs serve` taking uploads (nix+http with the upload token in a
# file the URL names), and from it into another local store.
t_to_http() {
	local url pid token s6=$TMP/s6 s7=$TMP/s7 dst
	head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$TMP/token"
	chmod 600 "$TMP/token"
	token=$(cat "$TMP/token")
	"$STOREFS" serve --store "$s6" --allow-uploads --upload-token-file "$TMP/token" \
		--listen 127.0.0.1:0 -v >"$TMP/url6" 2>"$TMP/up.log" &
	pid=$!
	trap "kill $pid 2>/dev/null || true" EXIT
	for _ in $(seq 100); do
		url=$(cat "$TMP/url6" 2>/dev/null || true)
		[ -n "$url" ] && curl -sf "$url/nix-cache-info" >/dev/null && break
		sleep 0.05
	done
	[ -n "$url" ] || fail "serve did not come up"
	# Without the token: refused, nothing registered there.
	expect_status 1 sf copy --from "$S1" --to "nix+${url}?cache=memory://" -r "$TOP"
	grep -q "HTTP status 401.*upload-token-file" "$TMP/err"
	dst="nix+${url}?upload-token-file=$TMP/token&cache=memory://"
	sf copy --from "$S1" --to "$dst" -r "$TOP" >"$TMP/out" 2>"$TMP/err"
	cat "$TMP/err"
	assert_eq "$(cat "$TMP/out")" "$TOP"
	grep -q '^3 paths copied, 0 present; 0 blobs (0 bytes) copied, 0 present$' "$TMP/err"
	grep -q '^3 NARs ([0-9]* bytes) uploaded$' "$TMP/err"
	assert_eq "$(grep -c 'PUT /nar/.* 20[01] ' "$TMP/up.log")" 3 "NARs uploaded"
	assert_eq "$(grep -c 'PUT /[a-z0-9]*\.narinfo 20[01] ' "$TMP/up.log")" 3 "narinfos uploaded"
	same_paths "$S1" "$s6"
	nix_dump_same "$s6"
	# ... and from the cache into a fresh local store.
	sf copy --from "nix+${url}?cache=$TMP/cache6" --to "$s7" -r "$TOP" >/dev/null
	same_paths "$S1" "$s7"
	nix_dump_same "$s7"
	sf verify --store "$s7" -q
	# Again: the cache has every path; no NAR and no narinfo is sent.
	sf copy --from "$S1" --to "$dst" -r "$TOP" >/dev/null 2>"$TMP/err"
	grep -qx '0 paths copied, 1 present; 0 blobs (0 bytes) copied, 0 present' "$TMP/err"
	assert_eq "$(grep -c 'PUT .* 20[01] ' "$TMP/up.log")" 6 "PUTs taken after the second copy"
	# The token is in no output and no log.
	if grep -qF "$token" "$TMP/up.log" "$TMP/out" "$TMP/err"; then fail "the token showed"; fi
	kill "$pid"
}

t_usage() {
	expect_status 2 sf copy --to "$TMP/x" "$TOP"
	expect_status 2 sf copy --from "$S1" "$TOP"
	expect_status 2 sf copy --from "$S1" --to "$TMP/x"
	expect_status 1 sf copy --from "$S1" --to "$TMP/x" /nix/store/00000000000000000000000000000000-x
	grep -q "not in the source store" "$TMP/err"
	sf copy --help | grep -q '^usage: storefs copy'
}

check "copy local -> local: -r, identical NARs and metadata, second copy transfers nothing" t_local
check "copy reuses blobs the destination has" t_reuse_blobs
check "copy from storefs serve through nix+http, and back" t_via_http
check "copy to storefs serve through nix+http with the upload token, and back; again sends nothing" t_to_http
check "copy usage errors" t_usage

# import-nix on a terminal: a progress line (paths done of all, bytes),
# erased before each printed path and at the end; none in a file.
t_import_nix_progress() {
	on_tty "$STOREFS" import-nix --store "$TMP/sp1" --nix-store "$NIX_STORE_DIR" -r "$TOP"
	tty_check tty "$TMP/tty" "import-nix: " >"$TMP/plain"
	grep -aq $'\rimport-nix: 1 of 3 paths, ' "$TMP/tty" || fail "no line after the first path"
	STOREFS_PROGRESS_INTERVAL_MS=0 sf import-nix --store "$TMP/sp2" --nix-store "$NIX_STORE_DIR" \
		-r "$TOP" >"$TMP/out" 2>"$TMP/err"
	diff "$TMP/plain" "$TMP/out"
	assert_eq "$(wc -l <"$TMP/out")" 3 "paths printed"
	tty_check none "$TMP/err" "import-nix"
	same_paths "$TMP/sp1" "$TMP/sp2"
}
check "import-nix: a progress line on a terminal only" t_import_nix_progress

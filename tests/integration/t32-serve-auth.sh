#!/bin/bash
# t32-serve-auth.sh - who may write through `storefs serve` (docs/trust.md
# "Uploads"): read-only unless --allow-uploads, then only with the token of
# --upload-token-file (Bearer, or Basic as Nix sends it from a netrc file:
# the exact `nix copy --to http://HOST:PORT --option netrc-file FILE`);
# 401/403 otherwise and nothing changes; a narinfo must describe the NAR
# that was uploaded (NarHash, NarSize, CA) and cannot replace a path.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
shopt -s inherit_errexit

T=$TMP/trees
K=$TMP/keys
mkdir -p "$T" "$K"
nar32() { nix-hash --type sha256 --base32 "$1"; }

# put URL FILE [curl options...]: PUTs FILE, prints the status code.
put() {
	local url=$1 file=$2
	shift 2
	curl -s -o "$TMP/put.body" -D "$TMP/put.headers" -w '%{http_code}' -T "$file" "$@" "$url"
}

# mknarinfo PATH NARFILE [CA]: a narinfo as nix copy writes one (uncompressed).
mknarinfo() {
	local h
	h=$(python3 - "$2" <<'PY'
import hashlib, sys
B32 = "0123456789abcdfghijklmnpqrsvwxyz"
h = hashlib.sha256(open(sys.argv[1], 'rb').read()).digest()
out = []
for k in range(51, -1, -1):
    b = k * 5; i, j = b // 8, b % 8
    c = h[i] >> j
    if i + 1 < 32: c |= h[i + 1] << (8 - j)
    out.append(B32[c & 31])
print("".join(out))
PY
)
	printf 'StorePath: %s\nURL: nar/%s.nar\nCompression: none\nNarHash: sha256:%s\nNarSize: %s\nReferences: \n' \
		"$1" "$h" "$h" "$(stat -c %s "$2")"
	[ -z "${3:-}" ] || printf 'CA: %s\n' "$3"
}

setup() {
	mkdir -p "$T/a/x" "$T/b/x"
	echo "content A" >"$T/a/x/file"
	echo "content B" >"$T/b/x/file"
	nix-store --dump "$T/a/x" >"$TMP/a.nar"
	nix-store --dump "$T/b/x" >"$TMP/b.nar"
	PA=$(nix_store --add "$T/a/x")
	HA=$(nar32 "$T/a/x")
	HB=$(nar32 "$T/b/x")
	mknarinfo "$PA" "$TMP/a.nar" "fixed:r:sha256:$HA" >"$TMP/a.narinfo"
	head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$K/token"
	chmod 600 "$K/token"
	TOKEN=$(cat "$K/token")
	printf 'machine 127.0.0.1 login nix password %s\n' "$TOKEN" >"$K/netrc"
	echo "not-the-token" >"$K/wrong"
	printf 'machine 127.0.0.1 login nix password not-the-token\n' >"$K/wrongnetrc"
	nix-store --generate-binary-cache-key storefs-auth-1 "$K/sk" "$K/pk"
	declare -p PA HA HB TOKEN >"$TMP/vars"
}

registered() { sf path-info --store "$1" "$2" >/dev/null 2>&1; }

# What was seen: anonymous PUTs were taken, and replaced existing paths.
t_readonly_by_default() {
	local st=$TMP/s-ro
	assert_eq "$(put "$RO/nar/$HB.nar" "$TMP/b.nar")" 403 "NAR PUT"
	grep -q "uploads are disabled" "$TMP/put.body"
	mknarinfo "$PA" "$TMP/b.nar" >"$TMP/lie.narinfo"
	assert_eq "$(put "$RO/$(hashpart "$PA").narinfo" "$TMP/lie.narinfo")" 403 "narinfo PUT"
	assert_eq "$(put "$RO/nar/$HB.nar" "$TMP/b.nar" -H "Authorization: Bearer x")" 403 "with a token"
	sf nar --store "$st" "$PA" | cmp - "$TMP/a.nar"
	curl -sf "$RO/$(hashpart "$PA").narinfo" | grep -qx "NarHash: sha256:$HA"
}

t_options() {
	expect_status 2 sf serve --store "$TMP/s-opt" --allow-uploads
	grep -q "needs --upload-token-file" "$TMP/err"
	expect_status 2 sf serve --store "$TMP/s-opt" --upload-token-file "$K/token"
	expect_status 2 sf serve --store "$TMP/s-opt" --allow-uploads --upload-token-file "$K/token" --readonly
	: >"$TMP/empty"
	expect_status 1 sf serve --store "$TMP/s-opt" --allow-uploads --upload-token-file "$TMP/empty" \
		--listen 127.0.0.1:0
	grep -q "is empty" "$TMP/err"
	sf serve --help | grep -q -- "--option netrc-file"
}

t_unauthorized() {
	local st=$TMP/s-auth
	assert_eq "$(put "$AUTH/nar/$HB.nar" "$TMP/b.nar")" 401 "no credentials"
	grep -qi '^WWW-Authenticate: Basic realm="storefs"' "$TMP/put.headers"
	assert_eq "$(put "$AUTH/nar/$HB.nar" "$TMP/b.nar" -H "Authorization: Bearer nope")" 403 "wrong bearer"
	assert_eq "$(put "$AUTH/nar/$HB.nar" "$TMP/b.nar" -u "nix:nope")" 403 "wrong basic"
	assert_eq "$(put "$AUTH/nar/$HB.nar" "$TMP/b.nar" -H "Authorization: Bearer ${TOKEN}x")" 403 "longer"
	assert_eq "$(put "$AUTH/nar/$HB.nar" "$TMP/b.nar" -H "Authorization: Bearer ${TOKEN%?}")" 403 "shorter"
	assert_eq "$(put "$AUTH/nar/$HB.nar" "$TMP/b.nar" -H "Authorization: Digest x")" 401 "other scheme"
	mknarinfo "$PA" "$TMP/b.nar" >"$TMP/lie.narinfo"
	assert_eq "$(put "$AUTH/$(hashpart "$PA").narinfo" "$TMP/lie.narinfo")" 401 "narinfo"
	# Nothing changed; the NAR was not even read.
	assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -I "$AUTH/nar/$HB.nar")" 404 "HEAD"
	sf nar --store "$st" "$PA" | cmp - "$TMP/a.nar"
	# Nix without (or with wrong) credentials fails.
	mkdir -p "$T/n1" && echo n1 >"$T/n1/f"
	local p
	p=$(nix_store --add "$T/n1")
	if nix copy --from "$NIX_STORE_DIR" --to "$AUTH" "$p" 2>"$TMP/err"; then
		fail "nix copy without credentials worked"
	fi
	grep -q "401" "$TMP/err"
	if nix copy --from "$NIX_STORE_DIR" --to "$AUTH" --option netrc-file "$K/wrongnetrc" "$p" 2>"$TMP/err"; then
		fail "nix copy with a wrong password worked"
	fi
	grep -q "403" "$TMP/err"
	! registered "$st" "$p" || fail "registered without the token"
}

# The exact recipe of the README: Nix's default xz upload, credentials from
# a netrc file; the server signs what it took; the token is never logged.
t_nix_copy_netrc() {
	local p
	mkdir -p "$T/n2/sub" && echo n2 >"$T/n2/f" && ln -s f "$T/n2/link"
	p=$(nix_store --add "$T/n2")
	nix copy --from "$NIX_STORE_DIR" --to "$AUTH" --option netrc-file "$K/netrc" "$p"
	sf nar --store "$TMP/s-auth" "$p" | cmp - <(nix-store --dump "$(nix_phys "$p")")
	grep -q "PUT /nar/.*\\.nar\\.xz 200" "$TMP/AUTH.log"
	XDG_CACHE_HOME=$TMP/xdg-back nix copy --from "$AUTH" --to "$TMP/dest" \
		--option trusted-public-keys "$(cat "$K/pk")" "$p"
	nix-store --store "$TMP/dest" --verify-path "$p"
	# Bearer works as well.
	assert_eq "$(put "$AUTH/nar/$HB.nar" "$TMP/b.nar" -H "Authorization: Bearer $TOKEN")" 200 "bearer"
	if grep -q "$TOKEN" "$TMP/AUTH.log"; then fail "the token was logged"; fi
}

# A narinfo must describe what was uploaded, and cannot change a path.
t_narinfo_checked() {
	local auth=(-H "Authorization: Bearer $TOKEN") ni=$TMP/ni
	assert_eq "$(put "$AUTH/nar/$HB.nar" "$TMP/b.nar" "${auth[@]}")" 200 "NAR b"
	# A path that exists, other content: 409, nothing changes.
	mknarinfo "$PA" "$TMP/b.nar" >"$ni"
	assert_eq "$(put "$AUTH/$(hashpart "$PA").narinfo" "$ni" "${auth[@]}")" 409 "replacement"
	grep -q "already registered with NAR hash sha256:$HA" "$TMP/put.body"
	curl -sf "$AUTH/$(hashpart "$PA").narinfo" >"$TMP/got"
	grep -qx "NarHash: sha256:$HA" "$TMP/got"
	grep -q "^Sig: storefs-auth-1:" "$TMP/got"
	# The same narinfo again: fine.
	assert_eq "$(put "$AUTH/nar/$HA.nar" "$TMP/a.nar" "${auth[@]}")" 200 "NAR a"
	assert_eq "$(put "$AUTH/$(hashpart "$PA").narinfo" "$TMP/a.narinfo" "${auth[@]}")" 200 "same"
	# A CA that does not fit the NAR, for a new path.
	local pb
	pb=$(nix_store --add "$T/b/x")
	mknarinfo "$pb" "$TMP/b.nar" "fixed:r:sha256:$HA" >"$ni"
	assert_eq "$(put "$AUTH/$(hashpart "$pb").narinfo" "$ni" "${auth[@]}")" 400 "CA lie"
	grep -q "ca hash mismatch importing path '$pb'" "$TMP/put.body" ||
		grep -q "claims to be content-addressed" "$TMP/put.body"
	# A NarHash that is not the uploaded NAR's (its URL names the upload).
	sed "s|^NarHash: .*|NarHash: sha256:$HA|" "$TMP/a.narinfo" |
		sed "s|^URL: .*|URL: nar/$HB.nar|" | sed "s|^StorePath: .*|StorePath: $pb|" | grep -v '^CA:' >"$ni"
	assert_eq "$(put "$AUTH/$(hashpart "$pb").narinfo" "$ni" "${auth[@]}")" 400 "NarHash lie"
	grep -q "is not the uploaded NAR's" "$TMP/put.body"
	! registered "$TMP/s-auth" "$pb" || fail "a lying narinfo registered its path"
	# The honest one.
	mknarinfo "$pb" "$TMP/b.nar" "fixed:r:sha256:$HB" >"$ni"
	assert_eq "$(put "$AUTH/$(hashpart "$pb").narinfo" "$ni" "${auth[@]}")" 200 "honest"
	sf verify --store "$TMP/s-auth" -q
}

# Racing narinfos for one new path with different NARs: one 200, one 409.
t_race() {
	local auth=(-H "Authorization: Bearer $TOKEN") i p c1 c2
	for i in 1 2 3 4 5; do
		p=/nix/store/1111111111111111111111111111111$i-race
		mknarinfo "$p" "$TMP/a.nar" >"$TMP/r1"
		mknarinfo "$p" "$TMP/b.nar" >"$TMP/r2"
		curl -s -o /dev/null -w '%{http_code}' -T "$TMP/r1" "${auth[@]}" \
			"$AUTH/$(hashpart "$p").narinfo" >"$TMP/c1" &
		curl -s -o /dev/null -w '%{http_code}' -T "$TMP/r2" "${auth[@]}" \
			"$AUTH/$(hashpart "$p").narinfo" >"$TMP/c2" &
		wait
		c1=$(cat "$TMP/c1") c2=$(cat "$TMP/c2")
		[ "$c1 $c2" = "200 409" ] || [ "$c1 $c2" = "409 200" ] ||
			fail "round $i: statuses $c1 and $c2"
	done
	sf verify --store "$TMP/s-auth" -q
}

blobs_in() { find "$1/blobs" -type f 2>/dev/null | wc -l; }

# What was seen: a 400'd upload kept its blobs, as often as one liked.
t_orphans_400() {
	local n0 i
	head -c $((5 << 20)) /dev/urandom >"$T/five"
	nix-store --dump "$T/five" >"$TMP/five.nar"
	n0=$(blobs_in "$TMP/s-auth")
	for i in 1 2 3; do
		assert_eq "$(put "$AUTH/nar/$HB.nar" "$TMP/five.nar" -H "Authorization: Bearer $TOKEN")" \
			400 "5 MiB NAR under another hash, $i"
		assert_eq "$(blobs_in "$TMP/s-auth")" "$n0" "blob files after a 400, $i"
	done
	# A good upload whose narinfo never comes: kept while it may come...
	assert_eq "$(put "$AUTH/nar/$(nar32 "$T/five").nar" "$TMP/five.nar" \
		-H "Authorization: Bearer $TOKEN")" 200 "the 5 MiB NAR"
	assert_eq "$(blobs_in "$TMP/s-auth")" "$((n0 + 1))" "blob files of a pending upload"
	echo "$n0" >"$TMP/n0"
}

check "setup" setup
. "$TMP/vars"
RO_PID= AUTH_PID=
for s in s-ro s-auth; do sf import --store "$TMP/$s" --name x "$T/a/x" >/dev/null; done
start_serve RO --store "$TMP/s-ro" || echo "not ok - read-only server start"
start_serve AUTH --store "$TMP/s-auth" --allow-uploads --upload-token-file "$K/token" \
	--secret-key "$K/sk" || echo "not ok - upload server start"
check "without --allow-uploads every PUT is a 403 and nothing changes" t_readonly_by_default
check "upload options: a token file is required and must not be empty" t_options
check "PUT without the token is a 401 (Basic challenge), with a wrong one a 403" t_unauthorized
check "nix copy --to http://HOST:PORT --option netrc-file FILE works; the server signs" t_nix_copy_netrc
check "a narinfo must fit its uploaded NAR (NarHash, CA) and cannot replace a path" t_narinfo_checked
check "racing narinfos for one path: exactly one is taken (5 rounds)" t_race

check "orphans: a 400'd upload takes back its blobs (3 times)" t_orphans_400

# The servers exit 0 on SIGTERM; under ASan/UBSan their logs hold any error.
SERVER_RC=0
for pid in "$RO_PID" "$AUTH_PID"; do
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" || SERVER_RC=$?
done
# ... and takes it back when the server stops.
t_orphans_at_stop() {
	assert_eq "$(blobs_in "$TMP/s-auth")" "$(cat "$TMP/n0")" "blob files after the stop"
	sf verify --store "$TMP/s-auth" >"$TMP/out"
	cat "$TMP/out"
	grep -q ": 0 problems$" "$TMP/out"
	! grep -q "unreferenced: [1-9][0-9]* blobs" "$TMP/out" || fail "unreferenced blobs left"
}
check "orphans: an upload never registered is taken back when the server stops" t_orphans_at_stop
t_logs_clean() {
	assert_eq "$SERVER_RC" 0 "exit status"
	if grep -n "Sanitizer\|runtime error" "$TMP/RO.log" "$TMP/AUTH.log"; then
		fail "a server reported errors"
	fi
}
check "servers exit 0 and report no sanitizer errors" t_logs_clean

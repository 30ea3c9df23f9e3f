#!/bin/bash
# t12-trust.sh - docs/trust.md through the CLI: a registered path never
# changes (import, nar-import --path, import-nix; racing writers: exactly one
# wins), claimed content addresses are checked against the contents (Nix's
# "ca hash mismatch" wording), and `storefs verify` checks what the store
# claims.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
shopt -s inherit_errexit

S=$TMP/store
T=$TMP/trees
mkdir -p "$T"
sf() { "$STOREFS" "$@"; }
NIX32=0123456789abcdfghijklmnpqrsvwxyz

# expect_status N CMD...: CMD must exit with status N; stderr in $TMP/err.
expect_status() {
	local want=$1 rc=0
	shift
	"$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
	cat "$TMP/err" >&2
	[ "$rc" = "$want" ] || fail "exit status $rc, expected $want: $*"
}

nar_hash32() { nix-hash --type sha256 --base32 "$1"; }

setup() {
	mkdir -p "$T/a/x" "$T/b/x"
	echo "content A" >"$T/a/x/file"
	echo "content B, another tree" >"$T/b/x/file"
	mkdir "$T/b/x/sub"
	nix-store --dump "$T/a/x" >"$TMP/a.nar"
	nix-store --dump "$T/b/x" >"$TMP/b.nar"
	PA=$(sf import --store "$S" --name x "$T/a/x")
	assert_eq "$PA" "$(nix_store --add "$T/a/x")" "store path of A"
	declare -p PA >"$TMP/vars"
}

# What was seen: nar-import --path over an imported path replaced it.
t_nar_import_path_refused() {
	expect_status 1 sf nar-import --store "$S" --path "$PA" "$TMP/b.nar"
	grep -q "'$PA' is already registered with NAR hash sha256:$(nar_hash32 "$T/a/x")" "$TMP/err"
	grep -q "refusing other content with NAR hash sha256:$(nar_hash32 "$T/b/x")" "$TMP/err"
	assert_eq "$(sf cat --store "$S" "$PA/file")" "content A" "contents after the refusal"
	sf path-info --store "$S" "$PA" | grep -q "^  ca: fixed:r:sha256:"
	sf verify --store "$S" -q
}

t_same_content_is_a_noop() {
	assert_eq "$(sf nar-import --store "$S" --path "$PA" "$TMP/a.nar")" "$PA" "nar-import"
	assert_eq "$(sf nar-import --store "$S" --name x -v "$TMP/a.nar" 2>"$TMP/err")" "$PA"
	grep -q "'$PA' is already registered with this content; nothing changed" "$TMP/err"
	assert_eq "$(sf import --store "$S" --name x -v "$T/a/x" 2>"$TMP/err")" "$PA" "re-import"
	grep -q "already registered with this content; nothing changed" "$TMP/err"
	# Without -v it is silent.
	sf import --store "$S" --name x "$T/a/x" 2>"$TMP/err" >/dev/null
	[ ! -s "$TMP/err" ] || fail "a no-op said something without -v"
	sf path-info --store "$S" "$PA" | grep -q "^  ca: fixed:r:sha256:"
}

# Two nar-imports of different content race for one new path, 10 times:
# exactly one wins, the other is refused, the store verifies.
t_race() {
	local i p rc1 rc2 wins
	for i in $(seq 10); do
		p=/nix/store/1111111111111111111111111111111${NIX32:i:1}-race
		rc1=0 rc2=0
		sf nar-import --store "$S" --wait --path "$p" "$TMP/a.nar" >/dev/null 2>"$TMP/e1" &
		local pid1=$!
		sf nar-import --store "$S" --wait --path "$p" "$TMP/b.nar" >/dev/null 2>"$TMP/e2" &
		local pid2=$!
		wait "$pid1" || rc1=$?
		wait "$pid2" || rc2=$?
		wins=$(((rc1 == 0) + (rc2 == 0)))
		assert_eq "$wins" 1 "winners of round $i ($rc1, $rc2)"
		cat "$TMP/e1" "$TMP/e2" | grep -q "is already registered with NAR hash" ||
			fail "the loser of round $i gave no reason"
		if [ "$rc1" = 0 ]; then
			sf nar --store "$S" "$p" | cmp - "$TMP/a.nar"
		else
			sf nar --store "$S" "$p" | cmp - "$TMP/b.nar"
		fi
	done
	sf verify --store "$S" -q
}

# A --ca that gives the path but not the contents: Nix's wording.
t_ca_lie_nar_import() {
	local h p
	h=$(nar_hash32 "$T/a/x")
	p=$(nix_store --print-fixed-path --recursive sha256 "$h" x)
	assert_eq "$p" "$PA" "fixed path"
	expect_status 1 sf nar-import --store "$TMP/s-ca" --path "$PA" --ca "fixed:r:sha256:$h" \
		"$TMP/b.nar"
	grep -q "ca hash mismatch importing path '$PA'; specified: sha256:$h got: sha256:$(nar_hash32 "$T/b/x")" "$TMP/err"
	if sf path-info --store "$TMP/s-ca" "$PA" 2>/dev/null; then fail "registered"; fi
	# Flat: the CA is over the file's bytes.
	printf 'flat file\n' >"$T/flat.txt"
	printf 'not flat\n' >"$T/other.txt"
	h=$(nix-hash --type sha256 --flat --base32 "$T/flat.txt")
	p=$(nix_store --print-fixed-path sha256 "$h" flat.txt)
	nix-store --dump "$T/other.txt" >"$TMP/other.nar"
	nix-store --dump "$T/flat.txt" >"$TMP/flat.nar"
	expect_status 1 sf nar-import --store "$TMP/s-ca" --path "$p" --ca "fixed:sha256:$h" \
		"$TMP/other.nar"
	grep -q "ca hash mismatch importing path '$p'; specified: sha256:$h got: sha256:$(nix-hash --type sha256 --flat --base32 "$T/other.txt")" "$TMP/err"
	assert_eq "$(sf nar-import --store "$TMP/s-ca" --path "$p" --ca "fixed:sha256:$h" \
		"$TMP/flat.nar")" "$p" "the honest flat path"
	sf path-info --store "$TMP/s-ca" "$p" | grep -q "^  ca: fixed:sha256:$h"
}

# import-nix: a path present with other content is refused before Nix is
# asked for its NAR.
t_import_nix_refused() {
	local st=$TMP/s-nix p
	p=$(nix_store --add "$T/a/x")
	sf nar-import --store "$st" --path "$p" "$TMP/b.nar" >/dev/null
	expect_status 1 sf import-nix --store "$st" --nix-store "$NIX_STORE_DIR" "$p"
	grep -q "'$p' is already registered with NAR hash sha256:$(nar_hash32 "$T/b/x")" "$TMP/err"
	sf nar --store "$st" "$p" | cmp - "$TMP/b.nar"
	# The same content: not read again, -v says so.
	assert_eq "$(sf import-nix --store "$S" --nix-store "$NIX_STORE_DIR" -v "$p" 2>"$TMP/err")" "$p"
	grep -q "already registered with this content" "$TMP/err"
}

check "setup" setup
. "$TMP/vars"
check "nar-import --path over a registered path is refused, naming both NAR hashes" t_nar_import_path_refused
check "registering the same content again is a no-op (-v says so)" t_same_content_is_a_noop
check "racing registrations of one path: exactly one wins (10 rounds)" t_race
check "a --ca that does not fit the contents: 'ca hash mismatch'" t_ca_lie_nar_import
check "import-nix refuses a path present with other content" t_import_nix_refused

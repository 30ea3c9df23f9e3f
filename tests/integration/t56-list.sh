#!/bin/bash
# t56-list.sh - storefs list and path-info -r/-S/--all/--json against Nix's
# own `nix path-info --json` on the same closure (imported with import-nix
# from a throwaway chroot Nix store), field by field.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
shopt -s inherit_errexit

S=$TMP/store
nixpi() { nix path-info --store "$NIX_STORE_DIR" "$@" 2>/dev/null; }

# A closure of four paths in the chroot Nix store: src <- g2 <- g3, and
# an unrelated g4; TOP is g3.
mkdir -p "$TMP/w/src/sub"
printf 'hello\n' >"$TMP/w/src/a"
printf 'x' >"$TMP/w/src/sub/b"
ln -s a "$TMP/w/src/l"
(cd "$TMP/w" && nix eval --store "$NIX_STORE_DIR" --impure --raw --expr \
	'builtins.toFile "g4" "alone\n"' >"$TMP/g4" 2>/dev/null)
TOP=$(nix_closure "$TMP/w")
G4=$(cat "$TMP/g4")

# Nix 2.8's JSON without what storefs does not record (registrationTime),
# ours without storefs's root object; both as sorted, indented JSON.
normalise() {
	python3 -c '
import json, sys
a = json.load(sys.stdin)
for o in a:
    o.pop("registrationTime", None)
    o.pop("root", None)
print(json.dumps(a, sort_keys=True, indent=1))'
}

t_import() {
	sf import-nix --store "$S" --nix-store "$NIX_STORE_DIR" -r "$TOP" "$G4" >/dev/null
	[ "$(sf list --store "$S" | wc -l)" = 4 ]
}

t_list_sorted() {
	sf list --store "$S" >"$TMP/ours"
	nixpi --all | LC_ALL=C sort >"$TMP/theirs"
	diff "$TMP/ours" "$TMP/theirs"
	LC_ALL=C sort -c "$TMP/ours"
	sf list --store "$S" --json | python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)))' |
		diff - "$TMP/ours"
	# An empty store lists nothing; --json gives [].
	sf import --store "$TMP/empty" "$TMP/w/src" >/dev/null
	assert_eq "$(sf list --store "$TMP/empty" | wc -l)" 1
	assert_eq "$(sf list --store "$TMP/e2" --json 2>/dev/null || echo missing)" missing
}

t_list_large() {
	# More paths than one in-memory run: sorted through temporary files.
	"$TOOLS/mkpaths" "$TMP/big" 17000 p >/dev/null
	sf list --store "$TMP/big" >"$TMP/big.list"
	assert_eq "$(wc -l <"$TMP/big.list")" 17000 "listed paths"
	LC_ALL=C sort -c "$TMP/big.list"
	assert_eq "$(sort -u "$TMP/big.list" | wc -l)" 17000 "unique paths"
}

t_json_recursive() {
	sf path-info --store "$S" --json -r "$TOP" | normalise >"$TMP/ours"
	nixpi --json -r "$TOP" | normalise >"$TMP/theirs"
	diff "$TMP/ours" "$TMP/theirs"
	assert_eq "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$TMP/ours")" 3
	# The root object stays.
	sf path-info --store "$S" --json "$TOP" | python3 -c '
import json, sys
o = json.load(sys.stdin)[0]
assert o["root"]["type"] == "file", o
assert o["narHash"].startswith("sha256-") and len(o["narHash"]) == 51, o
assert "signatures" not in o and "deriver" not in o, o'
}

t_json_closure_size() {
	sf path-info --store "$S" --json -r -S "$TOP" | normalise >"$TMP/ours"
	nixpi --json -r -S "$TOP" | normalise >"$TMP/theirs"
	diff "$TMP/ours" "$TMP/theirs"
	grep -q closureSize "$TMP/ours"
	# Without -r, only the named paths, sorted as Nix sorts them.
	sf path-info --store "$S" --json -S "$TOP" "$G4" | normalise >"$TMP/ours"
	nixpi --json -S "$TOP" "$G4" | normalise >"$TMP/theirs"
	diff "$TMP/ours" "$TMP/theirs"
}

t_all() {
	sf path-info --store "$S" --json --all | normalise >"$TMP/ours"
	nixpi --json --all | normalise >"$TMP/theirs"
	diff "$TMP/ours" "$TMP/theirs"
	# Text: one block per path, closure sizes equal to Nix's.
	sf path-info --store "$S" -r -S "$TOP" >"$TMP/text"
	assert_eq "$(grep -c '^/nix/store/' "$TMP/text")" 3 "text paths"
	assert_eq "$(grep -m1 '^  closure-size: ' "$TMP/text" | cut -d' ' -f4)" \
		"$(nixpi -S "$(grep -m1 '^/nix/store/' "$TMP/text")" | awk '{print $2}')" "closure size"
	expect_status 2 sf path-info --store "$S" --all "$TOP"
}

t_invalid() {
	local bad=/nix/store/00000000000000000000000000000000-nope
	expect_status 1 sf path-info --store "$S" --json "$bad" "$TOP"
	python3 - "$TMP/out" "$bad" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))
assert {"path": sys.argv[2], "valid": False} in a, a
assert len(a) == 2, a
PY
	grep -q "not in the store" "$TMP/err"
	# Text mode prints nothing for a missing path.
	expect_status 1 sf path-info --store "$S" "$bad" "$TOP"
	[ ! -s "$TMP/out" ]
}

check "import a Nix closure" t_import
check "list: sorted, same paths as nix path-info --all, --json" t_list_sorted
check "list: more paths than one sort run" t_list_large
check "path-info --json -r equals nix path-info --json -r" t_json_recursive
check "path-info --json -S equals nix path-info --json -S" t_json_closure_size
check "path-info --all equals nix path-info --all" t_all
check "path-info --json: a missing path is valid:false, status 1" t_invalid

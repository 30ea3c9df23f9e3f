#!/bin/bash
# t31-nar-import.sh - storefs nar-import: `nix-store --dump` -> nar-import ->
# `storefs nar` is byte-identical for the trees of t10-import.sh, the store
# path matches `nix-store --add`, and hash mismatches and malformed NARs are
# refused with one clear message and register nothing.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
shopt -s inherit_errexit

S=$TMP/store
T=$TMP/trees
mkdir -p "$T"

# not_registered PATH: the store has no PathInfo for PATH.
not_registered() {
	expect_status 1 sf path-info --store "$S" "$1"
	grep -q "not in the store\|does not exist\|not found" "$TMP/err" ||
		fail "unexpected path-info error: $(cat "$TMP/err")"
}

# round_trip SRC: dump SRC with Nix, import the NAR (from a file, with the
# expected hash, and from stdin), compare the store path with nix-store --add
# and the re-rendered NAR with the original byte for byte.
round_trip() {
	local src=$1 name ours theirs hash
	name=$(basename "$src")
	nix-store --dump "$src" >"$TMP/in.nar"
	hash=$(nix-hash --type sha256 --base32 "$src")
	ours=$(sf nar-import --store "$S" --name "$name" --nar-hash "sha256:$hash" "$TMP/in.nar")
	theirs=$(nix_store --add "$src")
	assert_eq "$ours" "$theirs" "store path of $src"
	sf nar --store "$S" "$ours" | cmp - "$TMP/in.nar"
	# Standard input, no expected hash: same path again.
	assert_eq "$(sf nar-import --store "$S" --name "$name" - <"$TMP/in.nar")" "$ours"
	sf path-info --store "$S" "$ours" | grep -q "ca: fixed:r:sha256:$hash"
}

t_empty_dir() { mkdir -p "$T/e/empty" && round_trip "$T/e/empty"; }

t_single_file() {
	mkdir -p "$T/f" && printf 'flat file\n' >"$T/f/flat.txt"
	round_trip "$T/f/flat.txt"
}

t_exec_file() {
	mkdir -p "$T/x" && printf '#!/bin/sh\n' >"$T/x/tool" && chmod 0755 "$T/x/tool"
	round_trip "$T/x/tool"
	sf path-info --store "$S" --json "$(nix_store --add "$T/x/tool")" | grep -q '"executable":true'
}

t_symlink_root() {
	mkdir -p "$T/l" && ln -s /some/absolute/target "$T/l/alink"
	round_trip "$T/l/alink"
}

t_nested() {
	mkdir -p "$T/n/nested/a/b/c" "$T/n/nested/a/d" "$T/n/nested/e"
	echo 1 >"$T/n/nested/a/b/c/f1"
	echo 2 >"$T/n/nested/a/d/f2"
	echo 3 >"$T/n/nested/top"
	ln -s a/b "$T/n/nested/e/up"
	round_trip "$T/n/nested"
}

t_non_ascii() {
	mkdir -p "$T/u/names"
	echo e >"$T/u/names/é"
	echo ff >"$T/u/names/"$'\xff'
	mkdir "$T/u/names/"$'dir\x01ctl'
	echo s >"$T/u/names/"$'dir\x01ctl/sp ace'
	round_trip "$T/u/names"
}

t_sort_order() {
	mkdir -p "$T/o/order"
	for n in -y .hid 10 9 B Z _x a '~t' é; do echo "$n" >"$T/o/order/$n"; done
	round_trip "$T/o/order"
}

t_big_file() {
	mkdir -p "$T/b/big"
	head -c $((5 * 1024 * 1024)) /dev/urandom >"$T/b/big/five"
	head -c $((1024 * 1024 + 1)) /dev/urandom >"$T/b/big/1m+1"
	round_trip "$T/b/big"
}

t_hard_links() {
	mkdir -p "$T/h/hl/d"
	echo shared >"$T/h/hl/one"
	ln "$T/h/hl/one" "$T/h/hl/two"
	ln "$T/h/hl/one" "$T/h/hl/d/three"
	round_trip "$T/h/hl"
}

t_empty_file() {
	mkdir -p "$T/z/withempty"
	: >"$T/z/empty"
	: >"$T/z/withempty/nothing"
	round_trip "$T/z/empty"
	round_trip "$T/z/withempty"
}

# --path registers the NAR under the given path, without CA or references.
t_given_path() {
	local p=/nix/store/00000000000000000000000000000000-given
	mkdir -p "$T/g/given" && echo g >"$T/g/given/f"
	nix-store --dump "$T/g/given" >"$TMP/g.nar"
	assert_eq "$(sf nar-import --store "$S" --path "$p" "$TMP/g.nar")" "$p"
	sf path-info --store "$S" "$p" >"$TMP/pi"
	cat "$TMP/pi"
	! grep -q '^  ca:' "$TMP/pi"
	sf nar --store "$S" "$p" | cmp - "$TMP/g.nar"
	# A --ca that does not match the path is refused.
	local h
	h=$(nix-hash --type sha256 --base32 "$T/g/given")
	expect_status 1 sf nar-import --store "$S" --path \
		/nix/store/00000000000000000000000000000001-given --ca "fixed:r:sha256:$h" "$TMP/g.nar"
	grep -q "claims to be content-addressed" "$TMP/err"
	not_registered /nix/store/00000000000000000000000000000001-given
	# ... and one that does is kept.
	local cp
	cp=$(nix_store --add "$T/g/given")
	assert_eq "$(sf nar-import --store "$S" --path "$cp" --ca "fixed:r:sha256:$h" "$TMP/g.nar")" "$cp"
}

# Every hash syntax Nix accepts is understood.
t_hash_syntaxes() {
	local src=$T/hs/hashed h
	mkdir -p "$src" && echo h >"$src/f"
	nix-store --dump "$src" >"$TMP/h.nar"
	for h in "sha256:$(nix-hash --type sha256 --base32 "$src")" \
		"sha256:$(nix-hash --type sha256 "$src")" \
		"$(nix hash path --type sha256 "$src")" \
		"$(nix-hash --type sha256 --base32 "$src")"; do
		sf nar-import --store "$S" --name hashed --nar-hash "$h" "$TMP/h.nar" >/dev/null ||
			fail "hash syntax '$h' refused"
	done
	expect_status 2 sf nar-import --store "$S" --name hashed --nar-hash "md5:abc" "$TMP/h.nar"
}

# A wrong --nar-hash is refused, from a file and from a pipe, and registers
# nothing.
t_hash_mismatch() {
	local src=$T/m/mism p wrong
	mkdir -p "$src" && echo m >"$src/f"
	nix-store --dump "$src" >"$TMP/m.nar"
	p=$(nix_store --add "$src")
	wrong=sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s # another NAR's
	expect_status 1 sf nar-import --store "$S" --name mism --nar-hash "$wrong" "$TMP/m.nar"
	grep -qi "mismatch" "$TMP/err"
	assert_eq "$(wc -l <"$TMP/err")" 1 "stderr lines"
	not_registered "$p"
	expect_status 1 sf nar-import --store "$S" --name mism --nar-hash "$wrong" - <"$TMP/m.nar"
	grep -qi "mismatch" "$TMP/err"
	not_registered "$p"
}

# Malformed NARs built by hand (python3), each refused with a message saying
# what is wrong; the target path is never registered.
mknar() {
	python3 - "$@" <<'PY'
import struct, sys
def s(b):
    if isinstance(b, str): b = b.encode()
    return struct.pack('<Q', len(b)) + b + b'\0' * (-len(b) % 8)
def node(*toks): return b''.join(s(t) for t in toks)
def reg(data): return node('(', 'type', 'regular', 'contents', data, ')')
def entry(name, inner): return node('entry', '(', 'name', name, 'node') + inner + node(')')
def dir_(*entries): return node('(', 'type', 'directory') + b''.join(entries) + node(')')
magic = s('nix-archive-1')
kind = sys.argv[1]
if kind == 'good':
    nar = magic + dir_(entry('a', reg('1')), entry('b', reg('2')))
elif kind == 'unsorted':
    nar = magic + dir_(entry('b', reg('2')), entry('a', reg('1')))
elif kind == 'duplicate':
    nar = magic + dir_(entry('a', reg('1')), entry('a', reg('2')))
elif kind == 'dotdot':
    nar = magic + dir_(entry('..', reg('1')))
elif kind == 'slash':
    nar = magic + dir_(entry('a/b', reg('1')))
elif kind == 'padding':
    nar = magic + node('(', 'type', 'regular', 'contents') + struct.pack('<Q', 1) + b'x\1\0\0\0\0\0\0' + node(')')
elif kind == 'trailing':
    nar = magic + reg('x') + b'\0' * 8
elif kind == 'truncated':
    nar = (magic + dir_(entry('a', reg('1'))))[:-12]
elif kind == 'magic':
    nar = s('nix-archive-2') + reg('x')
elif kind == 'empty-target':
    nar = magic + node('(', 'type', 'symlink', 'target', '', ')')
elif kind == 'order':
    nar = magic + node('(', 'contents', 'x', 'type', 'regular', ')')
sys.stdout.buffer.write(nar)
PY
}

t_strictness() {
	local p=/nix/store/00000000000000000000000000000002-bad kind want
	mknar good >"$TMP/good.nar"
	nix-store --restore "$TMP/good.out" <"$TMP/good.nar" # Nix agrees it is a NAR
	while read -r kind want; do
		mknar "$kind" >"$TMP/bad.nar"
		expect_status 1 sf nar-import --store "$S" --path "$p" "$TMP/bad.nar"
		assert_eq "$(wc -l <"$TMP/err")" 1 "stderr lines for $kind"
		grep -qi -- "$want" "$TMP/err" || fail "$kind: message lacks '$want'"
		not_registered "$p"
	done <<-'EOF2'
		unsorted sorted
		duplicate sorted\|duplicate
		dotdot name
		slash name
		padding padding
		trailing after\|trailing
		truncated truncated
		magic magic\|not a NAR
		empty-target target
		order expected\|type
	EOF2
	# The well-formed one goes in.
	assert_eq "$(sf nar-import --store "$S" --path "$p" "$TMP/good.nar")" "$p"
}

t_usage() {
	expect_status 2 sf nar-import --store "$S" "$TMP/good.nar"
	expect_status 2 sf nar-import --store "$S" --name a --path /nix/store/00000000000000000000000000000003-x "$TMP/good.nar"
	expect_status 2 sf nar-import --store "$S" --name 'bad name' "$TMP/good.nar"
	expect_status 2 sf nar-import --store "$S" --path /nix/store/short-x "$TMP/good.nar"
	expect_status 2 sf nar-import --store "$S" --name x
	expect_status 1 sf nar-import --store "$S" --name x "$TMP/does-not-exist"
	grep -q "cannot open" "$TMP/err"
}

# On a terminal (script(1)) a progress line shows while the NAR comes in
# (it pauses half-way); without one, nothing is said on stderr.
t_progress() {
	local p
	mkdir -p "$T/prog" && head -c 3000000 /dev/urandom >"$T/prog/f"
	nix-store --dump "$T/prog" >"$TMP/prog.nar"
	script -qfec "sh -c '(head -c 1000000 $TMP/prog.nar; sleep 0.5; tail -c +1000001 $TMP/prog.nar) |
		$STOREFS nar-import --store $S --name prog -'" "$TMP/ts" </dev/null >/dev/null
	grep -q "MiB, [0-9.]* MiB/s" "$TMP/ts" || fail "no progress line: $(cat -A "$TMP/ts")"
	p=$(tr -d '\r' <"$TMP/ts" | grep -o '/nix/store/[a-z0-9]*-prog' | tail -n 1)
	sf nar --store "$S" "$p" | cmp - "$TMP/prog.nar"
	sf nar-import --store "$S" --name prog "$TMP/prog.nar" 2>"$TMP/err" >/dev/null
	[ ! -s "$TMP/err" ] || fail "stderr without a terminal: $(cat "$TMP/err")"
}

check "round trip: empty directory" t_empty_dir
check "round trip: single file" t_single_file
check "round trip: executable file" t_exec_file
check "round trip: symlink root" t_symlink_root
check "round trip: nested directories" t_nested
check "round trip: non-ASCII and control names" t_non_ascii
check "round trip: sort-order traps" t_sort_order
check "round trip: 5 MiB file" t_big_file
check "round trip: hard links" t_hard_links
check "round trip: empty files" t_empty_file
check "--path registers as given; --ca is checked" t_given_path
check "--nar-hash in every Nix syntax" t_hash_syntaxes
check "--nar-hash mismatch is refused, nothing registered" t_hash_mismatch
check "malformed NARs are refused with a clear message" t_strictness
check "usage errors" t_usage
check "a progress line on a terminal, none without" t_progress

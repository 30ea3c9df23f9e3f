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
NIX32=0123456789abcdfghijklmnpqrsvwxyz

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

# verify checks what paths claim. A flat CA path whose root was pointed at
# another valid blob: the default run names it (the CA is over the file).
t_verify_flat_swapped() {
	local st=$TMP/s-v1 h p o
	h=$(nix-hash --type sha256 --flat --base32 "$T/flat.txt")
	p=$(nix_store --print-fixed-path sha256 "$h" flat.txt)
	sf nar-import --store "$st" --path "$p" --ca "fixed:sha256:$h" "$TMP/flat.nar" >/dev/null
	o=$(sf nar-import --store "$st" --name other.txt "$TMP/other.nar")
	sf verify --store "$st" -q
	"$TAMPER" copy-root "$st" "$p" "$o"
	expect_status 1 sf verify --store "$st"
	cat "$TMP/out"
	grep -q "^path $p: ca hash mismatch importing path '$p'; specified: sha256:$h got: sha256:$(nix-hash --type sha256 --flat --base32 "$T/other.txt") (its root is blob blake3-" "$TMP/out"
	grep -q ": 1 problem$" "$TMP/out"
}

# A source path pointed at another tree keeps a consistent CA and NAR hash:
# only --check-contents (the NAR rendered again) tells.
t_verify_source_swapped() {
	local st=$TMP/s-v2 b
	sf import --store "$st" --name x "$T/a/x" >/dev/null
	b=$(sf import --store "$st" --name y "$T/b/x")
	"$TAMPER" copy-root "$st" "$PA" "$b"
	sf verify --store "$st" -q
	expect_status 1 sf verify --store "$st" --check-contents
	cat "$TMP/out"
	grep -q "^path $PA: NAR hash/size mismatch" "$TMP/out"
}

# References must resolve; objects no path reaches are counted, not errors.
t_verify_refs_and_unreferenced() {
	local st=$TMP/s-v3 ref p
	ref=$(sf import --store "$st" --name x "$T/a/x")
	p=$(sf nar-import --store "$st" --path "/nix/store/00000000000000000000000000000abc-refs" "$TMP/b.nar")
	sf verify --store "$st" >"$TMP/out"
	cat "$TMP/out"
	grep -q ": 0 problems$" "$TMP/out"
	! grep -q unreferenced "$TMP/out" || fail "unreferenced objects in a clean store"
	"$TAMPER" delete-path "$st" "$p"
	sf verify --store "$st" >"$TMP/out"
	cat "$TMP/out"
	# b's tree: 2 files? one file and an empty sub directory: 1 blob, 2 Directories.
	grep -q "unreferenced: 1 blobs (0.0 MiB), 2 directories: 0 problems$" "$TMP/out"
	# A text path referring to a source path, whose record then goes.
	local src g
	src=$(nix_store --add "$T/a/x")
	g=$(nix --store "$NIX_STORE_DIR" eval --impure --raw --expr "builtins.toFile \"g\" \"x \${$T/a/x}\"")
	sf import-nix --store "$st" --nix-store "$NIX_STORE_DIR" -r "$g" >/dev/null
	sf verify --store "$st" -q
	"$TAMPER" delete-path "$st" "$src"
	expect_status 0 sf verify --store "$st"
	cat "$TMP/out"
	grep -q "^path $g: its reference '$(basename "$src")' is not in the store (note)$" "$TMP/out"
}

# nix_hideable: the check below can run: no /nix, or a private mount
# namespace can hide it, or it holds no Nix database.
nix_hideable() {
	[ ! -e /nix ] || unshare -m --propagation private true 2>/dev/null ||
		[ ! -e /nix/var/nix/db/db.sqlite ]
}

# import-nix reads only the Nix store it is named, offline; it never runs
# Nix against a store that does not exist (Nix would create it).
t_import_nix_store_checked() {
	local fake=$TMP/fakebin p st=$TMP/s-in
	mkdir -p "$fake"
	# A nix that records its arguments and then runs the real one.
	for c in nix nix-store; do
		printf '#!/bin/sh\necho "%s $*" >>%s/calls\nexec %s "$@"\n' "$c" "$TMP" \
			"$(command -v "$c")" >"$fake/$c"
		chmod +x "$fake/$c"
	done
	p=$(nix_store --add "$T/a/x")
	# Without --nix-store: the host's /nix, which must not be created
	# (where it exists, a private mount namespace hides it behind an empty
	# tmpfs that must stay empty).
	if [ -e /nix ] && unshare -m --propagation private true 2>/dev/null; then
		unshare -m --propagation private sh -c 'mount -t tmpfs none /nix &&
			PATH="$1:$PATH" "$2" import-nix --store "$3" "$4"; echo "rc=$?";
			echo "nix: $(ls -A /nix | tr "\n" " ")"' sh "$fake" "$STOREFS" "$st" "$p" \
			>"$TMP/out" 2>"$TMP/err"
	else
		# No /nix, or no private mount namespace to hide it in (a chroot's
		# root is no mount point; nix_hideable: then /nix holds no Nix
		# database): /nix must stay as it is.
		find /nix 2>/dev/null | sort >"$TMP/nix.before"
		rc=0
		PATH=$fake:$PATH sf import-nix --store "$st" "$p" >"$TMP/out" 2>"$TMP/err" || rc=$?
		echo "rc=$rc" >>"$TMP/out"
		if find /nix 2>/dev/null | sort | cmp -s - "$TMP/nix.before"; then
			echo "nix: " >>"$TMP/out"
		else
			echo "nix: changed" >>"$TMP/out"
		fi
	fi
	cat "$TMP/out" "$TMP/err"
	grep -qx "rc=1" "$TMP/out"
	grep -qx "nix: " "$TMP/out" || fail "a Nix store was created"
	grep -qx "storefs import-nix: there is no Nix store at /nix (no /nix/var/nix/db/db.sqlite); name a chroot store with --nix-store DIR" "$TMP/err"
	[ "$(wc -l <"$TMP/err")" = 1 ] || fail "more than one line"
	[ ! -e "$TMP/calls" ] || fail "Nix was run: $(cat "$TMP/calls")"
	[ ! -e "$st" ] || fail "the storefs store was created for nothing"
	# A --nix-store that does not exist is not created either.
	PATH=$fake:$PATH expect_status 1 sf import-nix --store "$st" --nix-store "$TMP/nonix" "$p"
	grep -q "there is no Nix store at '$TMP/nonix'" "$TMP/err"
	[ ! -e "$TMP/nonix" ] || fail "--nix-store DIR was created"
	# Not a store path (Nix would take it for a flake), or not in that store.
	PATH=$fake:$PATH expect_status 1 sf import-nix --store "$st" --nix-store "$NIX_STORE_DIR" nixpkgs#hello
	grep -qx "storefs import-nix: 'nixpkgs#hello' is not a store path (/nix/store/<hash>-<name>)" "$TMP/err"
	PATH=$fake:$PATH expect_status 1 sf import-nix --store "$st" --nix-store "$NIX_STORE_DIR" \
		/nix/store/00000000000000000000000000000000-absent
	grep -qx "storefs import-nix: '/nix/store/00000000000000000000000000000000-absent' is not in the Nix store at '$NIX_STORE_DIR'" "$TMP/err"
	[ ! -e "$TMP/calls" ] || fail "Nix was run: $(cat "$TMP/calls")"
	# A good run: Nix offline, no substituters.
	PATH=$fake:$PATH sf import-nix --store "$st" --nix-store "$NIX_STORE_DIR" "$p" >/dev/null
	grep -q "^nix .*--offline --option substituters  path-info --json --store $NIX_STORE_DIR $p" "$TMP/calls"
}

# statfs: as big as the store's blobs, as many files as its objects, nothing
# free (what was seen: 0 blocks, so df said size 0 and Python's
# shutil.disk_usage gave a total of 0).
t_statfs() {
	local st=$TMP/s-df m=$TMP/mnt-df
	mkdir -p "$T/df"
	head -c 300000 /dev/urandom >"$T/df/big"
	echo small >"$T/df/small"
	sf import --store "$st" "$T/df" >/dev/null
	start_mount "$st" "$m"
	stat -f -c '%b %f %a %c %d %l %S' "$m" | tee "$TMP/statf"
	read -r blocks bfree bavail files ffree namemax bsize <"$TMP/statf"
	[ "$bfree $bavail $ffree" = "0 0 0" ] || fail "free space on a read-only store"
	assert_eq "$namemax" 255 "namemax"
	[ $((blocks * bsize)) -ge 300006 ] || fail "$blocks blocks of $bsize bytes hold less than the blobs"
	[ $((blocks * bsize)) -lt $((300006 + 2 * 4096)) ] || fail "$blocks blocks: more than the blobs"
	[ "$files" -ge 4 ] || fail "files $files: 2 blobs, 1 Directory and 1 path are 4 objects"
	df "$m" | tee "$TMP/df"
	awk 'NR == 2 { exit !($2 > 0) }' "$TMP/df" || fail "df says size 0"
	python3 -c 'import shutil, sys; u = shutil.disk_usage(sys.argv[1]); print(u);
assert u.total > 0 and u.free == 0 and u.used == u.total' "$m"
	grep -q " $m fuse.* ro[,\ ]" /proc/mounts || fail "not mounted read-only"
	stop_mount "$m"
}

# --- orphans: what refused, failed or killed writes leave (docs/trust.md) ---

blobs_in() { find "$1/blobs" -type f 2>/dev/null | wc -l; }

# badnar OUT: a NAR whose 5 MiB file is complete (its blob written) before
# the parser meets "executable" after "contents" and refuses it.
badnar() {
	python3 - "$1" <<'PY'
import os, struct, sys
def s(b):
    b = b.encode() if isinstance(b, str) else b
    return struct.pack("<Q", len(b)) + b + b"\0" * (-len(b) % 8)
data = os.urandom(5 << 20)
nar = (s("nix-archive-1") + s("(") + s("type") + s("regular") + s("contents") + s(data)
       + s("executable") + s("") + s(")"))
open(sys.argv[1], "wb").write(nar)
PY
}

t_orphans_refused_nar() {
	local st=$TMP/s-orph n0
	sf import --store "$st" --name x "$T/a/x" >/dev/null
	n0=$(blobs_in "$st")
	badnar "$TMP/bad.nar"
	expect_status 1 sf nar-import --store "$st" --name bad "$TMP/bad.nar"
	grep -q "executable" "$TMP/err"
	assert_eq "$(blobs_in "$st")" "$n0" "blob files after a refused NAR"
	# Refused by immutability after the whole NAR was stored.
	head -c 1000000 /dev/urandom >"$T/big1"
	nix-store --dump "$T/big1" >"$TMP/big1.nar"
	expect_status 1 sf nar-import --store "$st" --path "$PA" "$TMP/big1.nar"
	assert_eq "$(blobs_in "$st")" "$n0" "blob files after a refused registration"
	# ... and by a CA that does not fit.
	expect_status 1 sf nar-import --store "$st" --path "$PA" --ca "fixed:r:sha256:$(nar_hash32 "$T/a/x")" "$TMP/big1.nar"
	assert_eq "$(blobs_in "$st")" "$n0" "blob files after a CA lie"
	sf verify --store "$st" >"$TMP/out"
	cat "$TMP/out"
	! grep -q unreferenced "$TMP/out" || fail "unreferenced objects left"
	# A blob that was there before the failed write stays.
	cp "$T/a/x/file" "$T/again" && nix-store --dump "$T/again" >"$TMP/again.nar"
	expect_status 1 sf nar-import --store "$st" --path "$PA" "$TMP/again.nar"
	sf verify --store "$st" -q
	assert_eq "$(sf cat --store "$st" "$PA/file")" "content A" "the registered path"
}

# A killed import leaves what it wrote; verify counts it and --repair
# removes it, sparing everything registered paths use.
t_orphans_killed_import() {
	local st=$TMP/s-kill pid n0 p
	mkdir -p "$T/kill"
	for i in $(seq 1 20); do head -c 5000000 /dev/urandom >"$T/kill/f$i"; done
	cp "$T/a/x/file" "$T/kill/shared"
	sf import --store "$st" --name x "$T/a/x" >/dev/null
	n0=$(blobs_in "$st")
	for _ in $(seq 1 20); do
		"$STOREFS" import --store "$st" "$T/kill" >/dev/null 2>&1 &
		pid=$!
		# Until it has written some blobs, then SIGKILL.
		for _ in $(seq 500); do [ "$(blobs_in "$st")" -gt "$n0" ] && break; sleep 0.005; done
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" || true
		sf path-info --store "$st" "$(nix_store --add "$T/kill")" >/dev/null 2>&1 || break
		# It finished first: start over.
		rm -rf "$st"
		sf import --store "$st" --name x "$T/a/x" >/dev/null
	done
	[ "$(blobs_in "$st")" -gt "$n0" ] || fail "the killed import left no blobs to test with"
	sf verify --store "$st" >"$TMP/out"
	cat "$TMP/out"
	grep -q "unreferenced: [1-9][0-9]* blobs" "$TMP/out"
	sf verify --store "$st" --repair >"$TMP/out"
	cat "$TMP/out"
	grep -q "^removed [1-9][0-9]* unreferenced blobs" "$TMP/out"
	assert_eq "$(blobs_in "$st")" "$n0" "blob files after verify --repair"
	sf verify --store "$st" >"$TMP/out"
	! grep -q unreferenced "$TMP/out" || fail "unreferenced objects left"
	assert_eq "$(sf cat --store "$st" "$PA/file")" "content A" "the registered path"
	p=$(sf import --store "$st" "$T/kill")
	sf verify --store "$st" --check-contents -q
	sf nar --store "$st" "$p" | cmp - <(nix-store --dump "$T/kill")
}

# A failed import through services (docs/services.md "Orphans") leaves its new blobs: verify
# counts them, and --repair refuses with one line saying why instead of removing them.
t_orphans_services() {
	local svc=(--store "$TMP/os-meta" --blob-service-addr "$TMP/os-blobs")
	mkdir -p "$T/os"
	head -c 100000 /dev/urandom >"$T/os/a"
	mkfifo "$T/os/z"
	expect_status 1 sf import "${svc[@]}" "$T/os"
	grep -q "'$T/os/z'" "$TMP/err" || fail "the FIFO was not named: $(cat "$TMP/err")"
	sf verify "${svc[@]}" >"$TMP/out"
	grep -q "unreferenced: 1 blobs" "$TMP/out" || fail "not counted: $(cat "$TMP/out")"
	expect_status 1 sf verify "${svc[@]}" --repair
	assert_eq "$(wc -l <"$TMP/err")" 1 "error lines"
	grep -q "cannot take back unreferenced objects: .*docs/services.md" "$TMP/err" ||
		fail "no reason: $(cat "$TMP/err")"
	sf verify "${svc[@]}" >"$TMP/out"
	grep -q "unreferenced: 1 blobs" "$TMP/out" || fail "--repair changed something: $(cat "$TMP/out")"
}

# --repair waits for writers: it never runs while a writer holds its lock.
t_orphans_repair_waits() {
	local st=$TMP/s-wait p
	sf import --store "$st" --name x "$T/a/x" >/dev/null
	p=$(sf import --store "$st" --name y "$T/b/x")
	"$TAMPER" delete-path "$st" "$p" # its blob and Directories: unreferenced
	python3 - "$st" "$STOREFS" <<'PY'
import fcntl, subprocess, sys, time
st, storefs = sys.argv[1], sys.argv[2]
lock = open(st + "/gc.lock", "a")
fcntl.flock(lock, fcntl.LOCK_SH)           # a writer in its session
p = subprocess.Popen([storefs, "verify", "--store", st, "--repair", "-q"])
time.sleep(1.0)
assert p.poll() is None, "verify --repair did not wait for the writer"
fcntl.flock(lock, fcntl.LOCK_UN)
assert p.wait(timeout=60) == 0
print("verify --repair waited for the writer's lock")
PY
	sf verify --store "$st" >"$TMP/out"
	! grep -q unreferenced "$TMP/out" || fail "unreferenced objects left"
}

check "setup" setup
. "$TMP/vars"
check "nar-import --path over a registered path is refused, naming both NAR hashes" t_nar_import_path_refused
check "registering the same content again is a no-op (-v says so)" t_same_content_is_a_noop
check "racing registrations of one path: exactly one wins (10 rounds)" t_race
check "a --ca that does not fit the contents: 'ca hash mismatch'" t_ca_lie_nar_import
check "import-nix refuses a path present with other content" t_import_nix_refused
if nix_hideable; then
	check "import-nix: no Nix store is created or asked that was not named; offline" t_import_nix_store_checked
else
	skip "import-nix: no Nix store is created or asked that was not named; offline" \
		"/nix holds a Nix store and no private mount namespace can hide it (a chroot)"
fi
check "statfs on a mount: blocks = blob bytes, files = objects, nothing free" t_statfs
check "orphans: a refused NAR or registration takes back the blobs it wrote" t_orphans_refused_nar
check "orphans: verify counts what a killed import left, --repair removes it" t_orphans_killed_import
check "orphans: verify --repair waits for writers" t_orphans_repair_waits
check "orphans of a failed import through services: counted; --repair refused, saying why" \
	t_orphans_services
check "verify names a flat CA path whose root blob was swapped" t_verify_flat_swapped
check "verify --check-contents names a source path whose tree was swapped" t_verify_source_swapped
check "verify: unresolved references and unreferenced objects are named, as notes" t_verify_refs_and_unreferenced

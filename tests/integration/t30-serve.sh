#!/bin/bash
# t30-serve.sh - storefs import-nix and storefs serve with nix-bin as the
# peer: a closure with references (CA and input-addressed paths) is brought
# in from a throwaway chroot Nix store, served over HTTP on loopback, copied
# and substituted by real Nix (which checks our signatures), and uploaded to
# with `nix copy --to http://...` (with the upload token from a netrc file;
# t32 tests the authorization itself). Also: Range requests,
# refused uploads that register nothing, a damaged path is a 500 and never
# a short 200, clean shutdown.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
shopt -s inherit_errexit

S=$TMP/store # the storefs store being served
T=$TMP/trees
K=$TMP/keys
mkdir -p "$T" "$K"

# mkexport NAR STOREPATH DERIVER REF...: a `nix-store --export` stream, so
# input-addressed paths (which a chroot store cannot build) can be imported.
mkexport() {
	python3 - "$@" <<'PY'
import struct, sys
def u64(n): return struct.pack('<Q', n)
def s(b):
    b = b.encode()
    return u64(len(b)) + b + b'\0' * (-len(b) % 8)
nar, path, deriver, refs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
out = sys.stdout.buffer
out.write(u64(1) + open(nar, 'rb').read() + u64(0x4558494e) + s(path))
out.write(u64(len(refs)) + b''.join(s(r) for r in refs) + s(deriver) + u64(0) + u64(0))
PY
}

# add_ia NAME HASHCHAR TREE REF...: registers TREE as the input-addressed
# path /nix/store/<32 x HASHCHAR>-NAME with REFs and a deriver; prints it.
add_ia() {
	local name=$1 c=$2 tree=$3 p drv
	shift 3
	p=/nix/store/$(printf "%032d" 0 | tr 0 "$c")-$name
	drv=/nix/store/$(printf "%032d" 0 | tr 0 "$((${#c} % 9 + 1))")-$name.drv
	nix-store --dump "$tree" >"$TMP/ia.nar"
	mkexport "$TMP/ia.nar" "$p" "$drv" "$@" | nix_store --import >/dev/null
	echo "$p"
}

# --- the closure: SRC (CA source) <- G (CA text) <- IA <- IA2 (input-addressed) ---

setup_closure() {
	mkdir -p "$T/dir1/sub"
	echo hello >"$T/dir1/hello.txt"
	printf x >"$T/dir1/sub/a"
	ln -s hello.txt "$T/dir1/link"
	SRC=$(nix_store --add "$T/dir1")
	G=$(nix --store "$NIX_STORE_DIR" eval --impure --raw \
		--expr "builtins.toFile \"g\" \"x \${$T/dir1}\"")
	mkdir -p "$T/ia"
	echo "$SRC $G" >"$T/ia/refs"
	printf '#!/bin/sh\necho ia\n' >"$T/ia/run" && chmod +x "$T/ia/run"
	IA=$(add_ia ia 7 "$T/ia" "$SRC" "$G")
	echo "$IA" >"$T/ia2"
	IA2=$(add_ia ia2 8 "$T/ia2" "$IA")
	# A signature by another key, to be passed through.
	nix-store --generate-binary-cache-key other-1 "$K/osk" "$K/opk"
	nix store sign --store "$NIX_STORE_DIR" --key-file "$K/osk" "$IA"
	nix-store --generate-binary-cache-key storefs-test-1 "$K/sk" "$K/pk"
	nix-store --generate-binary-cache-key wrong-1 "$K/wsk" "$K/wpk"
	declare -p SRC G IA IA2 >"$TMP/vars"
}

t_import_nix() {
	sf import-nix --store "$S" --nix-store "$NIX_STORE_DIR" -r "$IA2" >"$TMP/out"
	cat "$TMP/out"
	# References first.
	printf '%s\n' "$SRC" "$G" "$IA" "$IA2" | cmp - "$TMP/out"
	for p in "$SRC" "$G" "$IA" "$IA2"; do
		sf nar --store "$S" "$p" | cmp - <(nix-store --dump "$(nix_phys "$p")")
	done
	sf path-info --store "$S" "$IA" >"$TMP/pi"
	cat "$TMP/pi"
	grep -qx "  references: $G $SRC" "$TMP/pi" || grep -qx "  references: $SRC $G" "$TMP/pi"
	grep -q "deriver: /nix/store/.*-ia.drv" "$TMP/pi"
	grep -q "signature: other-1:" "$TMP/pi"
	sf path-info --store "$S" "$G" | grep -q "ca: text:sha256:"
	assert_eq "$(sed -n 's/.*nar-hash: //p' "$TMP/pi")" \
		"$(nix-store --store "$NIX_STORE_DIR" -q --hash "$IA")" "nar hash"
	# Again: nothing is read twice, same output.
	sf import-nix --store "$S" --nix-store "$NIX_STORE_DIR" -r "$IA2" | cmp - "$TMP/out"
}

t_import_nix_errors() {
	local st=$TMP/st-err
	# Without -r the references must already be there.
	if sf import-nix --store "$st" --nix-store "$NIX_STORE_DIR" "$IA" 2>"$TMP/err"; then
		fail "import without references succeeded"
	fi
	cat "$TMP/err"
	grep -q "is not in the store (-r" "$TMP/err"
	if sf path-info --store "$st" "$IA" 2>/dev/null; then fail "registered anyway"; fi
	# An unknown path.
	if sf import-nix --store "$st" --nix-store "$NIX_STORE_DIR" \
		/nix/store/00000000000000000000000000000000-nope 2>"$TMP/err"; then
		fail "unknown path imported"
	fi
	cat "$TMP/err"
	grep -q "is not in the Nix store at '$NIX_STORE_DIR'" "$TMP/err"
}

# --- serving ---

t_cache_info() {
	curl -sf "$SIGNED/nix-cache-info" >"$TMP/ci"
	printf 'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n' | cmp - "$TMP/ci"
	curl -sfI "$SIGNED/nix-cache-info" | grep -qi '^content-type: text/x-nix-cache-info'
}

t_narinfo() {
	local nh
	curl -sf "$SIGNED/$(hashpart "$IA").narinfo" >"$TMP/ni"
	cat "$TMP/ni"
	nh=$(nix-store --store "$NIX_STORE_DIR" -q --hash "$IA")
	assert_eq "$(sed -n 1p "$TMP/ni")" "StorePath: $IA"
	assert_eq "$(sed -n 2p "$TMP/ni")" "URL: nar/${nh#sha256:}.nar"
	assert_eq "$(sed -n 3p "$TMP/ni")" "Compression: none"
	assert_eq "$(sed -n 4p "$TMP/ni")" "FileHash: $nh"
	assert_eq "$(sed -n 5p "$TMP/ni")" "FileSize: $(nix-store --store "$NIX_STORE_DIR" -q --size "$IA")"
	assert_eq "$(sed -n 6p "$TMP/ni")" "NarHash: $nh"
	assert_eq "$(sed -n 7p "$TMP/ni")" "NarSize: $(nix-store --store "$NIX_STORE_DIR" -q --size "$IA")"
	assert_eq "$(sed -n 8p "$TMP/ni")" \
		"References: $(printf '%s\n' "$(base "$SRC")" "$(base "$G")" | sort | tr '\n' ' ' | sed 's/ $//')"
	grep -qx "Deriver: .*-ia.drv" "$TMP/ni"
	grep -q "^Sig: other-1:" "$TMP/ni"
	grep -q "^Sig: storefs-test-1:" "$TMP/ni"
	# No references: the line keeps its trailing space.
	curl -sf "$SIGNED/$(hashpart "$SRC").narinfo" | grep -qx 'References: '
	curl -sf "$SIGNED/$(hashpart "$SRC").narinfo" | grep -q '^CA: fixed:r:sha256:'
	# Unsigned server: only the stored signature.
	curl -sf "$UNSIGNED/$(hashpart "$IA").narinfo" >"$TMP/ni2"
	assert_eq "$(grep -c '^Sig:' "$TMP/ni2")" 1 "signatures when unsigned"
	# Our signature is a valid Ed25519 signature over Nix's fingerprint.
	python3 - "$K/pk" "$TMP/ni" <<'PY'
import base64, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
name, key = open(sys.argv[1]).read().strip().split(':')
f = dict(); sigs = []
for line in open(sys.argv[2]).read().splitlines():
    k, v = line.split(': ', 1)
    if k == 'Sig': sigs.append(v)
    else: f[k] = v
refs = ','.join('/nix/store/' + r for r in sorted(f['References'].split()))
fp = '1;%s;%s;%s;%s' % (f['StorePath'], f['NarHash'], f['NarSize'], refs)
sig = [s for s in sigs if s.startswith(name + ':')][0].split(':', 1)[1]
Ed25519PublicKey.from_public_bytes(base64.b64decode(key)).verify(base64.b64decode(sig), fp.encode())
PY
}

t_not_found() {
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' -I "$SIGNED/00000000000000000000000000000000.narinfo")
	assert_eq "$code" 404 "HEAD unknown narinfo"
	code=$(curl -s -o /dev/null -w '%{http_code}' "$SIGNED/00000000000000000000000000000000.narinfo")
	assert_eq "$code" 404 "GET unknown narinfo"
	code=$(curl -s -o /dev/null -w '%{http_code}' "$SIGNED/not-a-hash.narinfo")
	assert_eq "$code" 404 "malformed narinfo URL"
	code=$(curl -s -o /dev/null -w '%{http_code}' \
		"$SIGNED/nar/0000000000000000000000000000000000000000000000000000.nar")
	assert_eq "$code" 404 "unknown NAR"
	code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$SIGNED/nix-cache-info")
	assert_eq "$code" 405 "DELETE"
	code=$(curl -s -o /dev/null -w '%{http_code}' -I "$SIGNED/$(hashpart "$IA").narinfo")
	assert_eq "$code" 200 "HEAD known narinfo"
}

t_copy_from() {
	local dest=$TMP/dest
	nix copy --from "$SIGNED" --to "$dest" --option trusted-public-keys "$(cat "$K/pk")" "$IA2"
	for p in "$SRC" "$G" "$IA" "$IA2"; do
		nix-store --store "$dest" --verify-path "$p"
		nix_store --dump "$(echo "$dest$p")" | cmp - <(nix_store --dump "$(nix_phys "$p")")
	done
	nix store verify --store "$dest" -r --sigs-needed 1 \
		--trusted-public-keys "$(cat "$K/pk")" "$IA2"
	assert_eq "$(nix-store --store "$dest" -q --references "$IA" | sort | tr '\n' ' ')" \
		"$(printf '%s\n' "$SRC" "$G" | sort | tr '\n' ' ')" "references in the copy"
}

t_substitute() {
	local st=$TMP/subst
	nix-store --store "$st" -r "$IA2" --option substituters "$SIGNED" \
		--option trusted-public-keys "$(cat "$K/pk")"
	cmp "$st$IA/refs" "$T/ia/refs"
	[ -x "$st$IA/run" ]
	nix-store --store "$st" --verify-path "$IA2"
}

# Without our signature (or with a key Nix does not trust) Nix refuses the
# input-addressed paths: the signature is what makes the tests above pass.
t_unsigned_refused() {
	if nix copy --from "$UNSIGNED" --to "$TMP/dest-u" \
		--option trusted-public-keys "$(cat "$K/pk")" "$IA" 2>"$TMP/err"; then
		fail "nix copied unsigned paths"
	fi
	cat "$TMP/err"
	grep -q "lacks a valid signature" "$TMP/err"
	if nix-store --store "$TMP/subst-u" -r "$IA" --option substituters "$UNSIGNED" \
		--option trusted-public-keys "$(cat "$K/pk")" 2>"$TMP/err"; then
		fail "nix substituted unsigned paths"
	fi
	cat "$TMP/err"
	grep -qi "signed\|signature" "$TMP/err"
	if nix copy --from "$SIGNED" --to "$TMP/dest-w" \
		--option trusted-public-keys "$(cat "$K/wpk")" "$IA" 2>"$TMP/err"; then
		fail "nix accepted a signature by a key it does not trust"
	fi
	grep -q "lacks a valid signature" "$TMP/err"
}

t_range() {
	local nh url size
	nh=$(nix-store --store "$NIX_STORE_DIR" -q --hash "$IA")
	url=$SIGNED/nar/${nh#sha256:}.nar
	nix-store --dump "$(nix_phys "$IA")" >"$TMP/ia.full"
	size=$(stat -c %s "$TMP/ia.full")
	curl -sf "$url" | cmp - "$TMP/ia.full"
	curl -sfI "$url" | tr -d '\r' >"$TMP/h"
	grep -qix "content-length: $size" "$TMP/h"
	grep -qix "accept-ranges: bytes" "$TMP/h"
	curl -sf -r 10-109 "$url" | cmp - <(tail -c +11 "$TMP/ia.full" | head -c 100)
	curl -sf -r 100- "$url" | cmp - <(tail -c +101 "$TMP/ia.full")
	curl -sf -H 'Range: bytes=-7' "$url" | cmp - <(tail -c 7 "$TMP/ia.full")
	curl -s -D "$TMP/h" -o /dev/null -r 5-9 "$url"
	tr -d '\r' <"$TMP/h" | grep -qx "HTTP/1.1 206 Partial Content"
	tr -d '\r' <"$TMP/h" | grep -qix "content-range: bytes 5-9/$size"
	assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -r "$size-" "$url")" 416 "range past the end"
}

# nix copy --to uploads NARs and narinfos; storefs registers them.
t_upload() {
	local up ia3
	mkdir -p "$T/up1"
	echo uploaded >"$T/up1/file"
	ln -s file "$T/up1/link"
	up=$(nix_store --add "$T/up1")
	mkdir -p "$T/ia3"
	echo "$up" >"$T/ia3/ref"
	ia3=$(add_ia ia3 9 "$T/ia3" "$up" "$SRC")
	nix copy --from "$NIX_STORE_DIR" --to "$SIGNED?compression=none" \
		--option netrc-file "$K/netrc" "$ia3"
	for p in "$up" "$ia3"; do
		sf nar --store "$S" "$p" | cmp - <(nix-store --dump "$(nix_phys "$p")")
	done
	sf path-info --store "$S" "$ia3" >"$TMP/pi"
	cat "$TMP/pi"
	grep -qx "  references: $SRC $up" "$TMP/pi" || grep -qx "  references: $up $SRC" "$TMP/pi"
	grep -q "deriver: /nix/store/.*-ia3.drv" "$TMP/pi"
	grep -q "PUT /nar/.*\.nar 200" "$TMP/SIGNED.log"
	grep -q "PUT /$(hashpart "$ia3").narinfo 200" "$TMP/SIGNED.log"
	# And back out, signed by us (with a fresh client cache: nix copy --to
	# cached the unsigned narinfo it uploaded).
	XDG_CACHE_HOME=$TMP/xdg-back nix copy --from "$SIGNED" --to "$TMP/dest-up" --option trusted-public-keys "$(cat "$K/pk")" "$ia3"
	nix-store --store "$TMP/dest-up" --verify-path "$ia3"
}

# Compressed NAR files (nix copy's default xz, and zstd) are decompressed
# and checked; a compression storefs does not read is refused; the
# read-only server refuses every upload.
t_upload_compressed() {
	local p c
	for c in xz zstd bzip2; do
		mkdir -p "$T/up-$c" && echo "$c" >"$T/up-$c/f"
		p=$(nix_store --add "$T/up-$c")
		if [ "$c" = xz ]; then
			nix copy --from "$NIX_STORE_DIR" --to "$SIGNED" --option netrc-file "$K/netrc" "$p"
		else
			nix copy --from "$NIX_STORE_DIR" --to "$SIGNED?compression=$c" \
				--option netrc-file "$K/netrc" "$p"
		fi
		sf nar --store "$S" "$p" | cmp - <(nix-store --dump "$(nix_phys "$p")")
	done
	grep -q "PUT /nar/.*\.nar\.xz 200" "$TMP/SIGNED.log"
	grep -q "PUT /nar/.*\.nar\.zst 200" "$TMP/SIGNED.log"
	mkdir -p "$T/up-gz" && echo gz >"$T/up-gz/f"
	p=$(nix_store --add "$T/up-gz")
	if nix copy --from "$NIX_STORE_DIR" --to "$SIGNED?compression=lz4" \
		--option netrc-file "$K/netrc" "$p" 2>"$TMP/err"; then
		fail "an lz4 upload was accepted"
	fi
	grep -q "PUT /nar/.*\.nar\.lz4 415" "$TMP/SIGNED.log"
	if sf path-info --store "$S" "$p" 2>/dev/null; then fail "registered anyway"; fi
	# The read-only server refuses every upload.
	assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -T "$T/up-gz/f" \
		-H "Authorization: Bearer $(cat "$K/token")" \
		"$UNSIGNED/nar/0000000000000000000000000000000000000000000000000000.nar")" 403
}

# raw_put PATH BODYFILE [CONTENT-LENGTH [SEND-BYTES]]: a hand-made PUT over a
# socket (curl cannot lie about lengths); prints the status code (000 if the
# connection ended without a response).
raw_put() {
	UPLOAD_TOKEN_FILE=$K/token python3 - "${SIGNED#http://}" "$@" <<'PY'
import os, socket, sys
hostport, path, body = sys.argv[1], sys.argv[2], open(sys.argv[3], 'rb').read()
clen = int(sys.argv[4]) if len(sys.argv) > 4 else len(body)
send = int(sys.argv[5]) if len(sys.argv) > 5 else len(body)
host, port = hostport.rsplit(':', 1)
s = socket.create_connection((host, int(port)))
token = open(os.environ['UPLOAD_TOKEN_FILE']).read().strip()
s.sendall(b'PUT %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n'
          b'Connection: close\r\n\r\n' % (path.encode(), host.encode(), token.encode(), clen)
          + body[:send])
if send < clen:
    s.shutdown(socket.SHUT_WR)
resp = b''
try:
    while True:
        d = s.recv(65536)
        if not d: break
        resp += d
except ConnectionResetError:
    pass
print(resp[9:12].decode() if resp.startswith(b'HTTP/1.1 ') else '000')
sys.stderr.write(resp.decode(errors='replace') + '\n')
PY
}

t_bad_uploads() {
	local p nh ni nar code hp
	mkdir -p "$T/up3" && echo bad >"$T/up3/f"
	p=$(nix_store --add "$T/up3")
	hp=$(hashpart "$p")
	nix-store --dump "$(nix_phys "$p")" >"$TMP/up3.nar"
	nh=$(nix-hash --type sha256 --base32 "$(nix_phys "$p")")
	nar=/nar/$nh.nar
	# A narinfo as nix copy would write it.
	cat >"$TMP/up3.narinfo" <<-EOF2
		StorePath: $p
		URL: nar/$nh.nar
		Compression: none
		NarHash: sha256:$nh
		NarSize: $(stat -c %s "$TMP/up3.nar")
		References: 
	EOF2
	# The narinfo before its NAR.
	assert_eq "$(raw_put "/$hp.narinfo" "$TMP/up3.narinfo")" 400 "narinfo without NAR"
	# Corrupt NAR (one byte flipped): hash mismatch.
	python3 -c 'import sys; b=bytearray(open(sys.argv[1],"rb").read()); b[-20]^=1; sys.stdout.buffer.write(b)' \
		"$TMP/up3.nar" >"$TMP/corrupt.nar"
	assert_eq "$(raw_put "$nar" "$TMP/corrupt.nar")" 400 "corrupt NAR"
	# Truncated: the connection ends before Content-Length bytes.
	code=$(raw_put "$nar" "$TMP/up3.nar" "$(stat -c %s "$TMP/up3.nar")" 50)
	[ "$code" != 200 ] || fail "truncated NAR accepted"
	# Wrong Content-Length (shorter than the NAR).
	assert_eq "$(raw_put "$nar" "$TMP/up3.nar" 64)" 400 "short Content-Length"
	# Not a NAR at all.
	assert_eq "$(raw_put "$nar" "$TMP/up3.narinfo")" 400 "not a NAR"
	# None of these left anything behind.
	assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -I "$SIGNED$nar")" 404 "HEAD NAR"
	assert_eq "$(raw_put "/$hp.narinfo" "$TMP/up3.narinfo")" 400 "narinfo after bad NARs"
	assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "$SIGNED/$hp.narinfo")" 404 "narinfo"
	if sf path-info --store "$S" "$p" 2>/dev/null; then fail "registered"; fi
	# Too large for --max-upload / for a narinfo.
	assert_eq "$(raw_put "$nar" "$TMP/up3.nar" 99999999999 0)" 413 "NAR over --max-upload"
	head -c $((3 * 1024 * 1024)) /dev/zero >"$TMP/big"
	assert_eq "$(raw_put "/$hp.narinfo" "$TMP/big" 3145728 0)" 413 "huge narinfo"
	# Now the real NAR, then narinfos that do not fit it.
	assert_eq "$(raw_put "$nar" "$TMP/up3.nar")" 200 "good NAR"
	curl -sfI "$SIGNED$nar" | tr -d '\r' | grep -qix "content-length: $(stat -c %s "$TMP/up3.nar")"
	sed "s/^NarSize: .*/NarSize: 8/" "$TMP/up3.narinfo" >"$TMP/ni"
	assert_eq "$(raw_put "/$hp.narinfo" "$TMP/ni")" 400 "wrong NarSize"
	assert_eq "$(raw_put "/00000000000000000000000000000000.narinfo" "$TMP/up3.narinfo")" 400 \
		"StorePath not matching the URL"
	sed "s|^References: .*|References: 00000000000000000000000000000000-missing|" \
		"$TMP/up3.narinfo" >"$TMP/ni"
	assert_eq "$(raw_put "/$hp.narinfo" "$TMP/ni")" 400 "missing reference"
	printf 'StorePath: %s\n' "$p" >"$TMP/ni"
	assert_eq "$(raw_put "/$hp.narinfo" "$TMP/ni")" 400 "incomplete narinfo"
	if sf path-info --store "$S" "$p" 2>/dev/null; then fail "registered"; fi
	# The good narinfo is taken.
	assert_eq "$(raw_put "/$hp.narinfo" "$TMP/up3.narinfo")" 200 "good narinfo"
	sf nar --store "$S" "$p" | cmp - "$TMP/up3.nar"
}

# A path whose blob went missing is a 500 with a message, never a 200 with
# a short body.
t_damaged() {
	local p nh hex
	mkdir -p "$T/dmg" && head -c 100000 /dev/urandom >"$T/dmg/only"
	p=$(sf import --store "$S" "$T/dmg")
	nh=$(sf path-info --store "$S" "$p" | sed -n 's/.*nar-hash: sha256://p')
	hex=$(b3sum --no-names "$T/dmg/only")
	rm -f "$S/blobs/${hex:0:2}/${hex:2:2}/$hex"
	curl -s -D "$TMP/h" -o "$TMP/body" "$SIGNED/nar/$nh.nar" || true
	cat "$TMP/h" "$TMP/body"
	head -1 "$TMP/h" | grep -q " 500 "
	grep -q "missing" "$TMP/body"
	assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -I "$SIGNED/nar/$nh.nar")" 500 "HEAD"
}

t_shutdown() {
	local rc=0
	start_serve SHORT --store "$S" --readonly
	curl -sf "$SHORT/$(hashpart "$IA").narinfo" >/dev/null
	kill -TERM "$SHORT_PID"
	for _ in $(seq 100); do kill -0 "$SHORT_PID" 2>/dev/null || break; sleep 0.05; done
	if kill -0 "$SHORT_PID" 2>/dev/null; then fail "still running after SIGTERM"; fi
	wait "$SHORT_PID" || rc=$?
	assert_eq "$rc" 0 "exit status after SIGTERM"
	grep -q "GET /$(hashpart "$IA").narinfo 200" "$TMP/SHORT.log"
	grep -q "stopped" "$TMP/SHORT.log"
}

t_usage() {
	local rc=0
	sf serve --store "$S" --listen nonsense >/dev/null 2>"$TMP/err" || rc=$?
	assert_eq "$rc" 1 "bad --listen"
	grep -q "ADDR:PORT" "$TMP/err"
	rc=0
	sf serve --store "$S" --priority x >/dev/null 2>&1 || rc=$?
	assert_eq "$rc" 2 "bad --priority"
	rc=0
	sf serve --store "$S" --secret-key "$K/pk" --listen 127.0.0.1:0 >/dev/null 2>"$TMP/err" || rc=$?
	assert_eq "$rc" 1 "a public key as --secret-key"
}

check "setup: a closure in a chroot Nix store" setup_closure
if [ ! -s "$TMP/vars" ]; then
	echo "not ok - no closure to test with"
	exit 1
fi
. "$TMP/vars"
check "import-nix -r brings in the closure with its metadata" t_import_nix
check "import-nix refuses missing references and unknown paths" t_import_nix_errors

SIGNED_PID= UNSIGNED_PID=
# The upload token, and a netrc file that gives it to Nix (docs/trust.md).
head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$K/token"
printf 'machine 127.0.0.1 login nix password %s\n' "$(cat "$K/token")" >"$K/netrc"
chmod 600 "$K/token" "$K/netrc"
start_serve SIGNED --store "$S" --secret-key "$K/sk" --priority 30 --max-upload 100000000 \
	--allow-uploads --upload-token-file "$K/token" ||
	echo "not ok - signed server start"
start_serve UNSIGNED --store "$S" --readonly || echo "not ok - unsigned server start"

check "GET /nix-cache-info" t_cache_info
check "narinfo: fields, References, stored and fresh signatures" t_narinfo
check "404 for unknown paths and NARs, 405 for other methods" t_not_found
check "nix copy --from storefs serve (signed) verifies" t_copy_from
check "nix-store -r substitutes from storefs serve" t_substitute
check "unsigned or untrusted: Nix refuses" t_unsigned_refused
check "NAR Range requests" t_range
check "nix copy --to ?compression=none uploads into storefs" t_upload
check "xz, zstd and bzip2 uploads are taken; lz4 and read-only ones are refused" t_upload_compressed
check "bad uploads are refused and register nothing" t_bad_uploads
check "a damaged path is a 500, not a short 200" t_damaged
check "SIGTERM stops the server cleanly" t_shutdown
check "serve usage errors" t_usage

# Stop the long-running servers the same way; under ASan/UBSan builds their
# logs then hold any leak or error report.
t_logs_clean() {
	local f
	for f in SIGNED UNSIGNED SHORT; do
		if grep -n "Sanitizer\|runtime error" "$TMP/$f.log"; then
			fail "$f server reported errors"
		fi
	done
	grep -q "stopped" "$TMP/SIGNED.log"
}
SERVER_RC=0
for pid in "$SIGNED_PID" "$UNSIGNED_PID"; do
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" || SERVER_RC=$?
done
check "servers exit 0 and report no sanitizer errors" t_logs_clean
[ "$SERVER_RC" = 0 ] || echo "not ok - a server exited with status $SERVER_RC"


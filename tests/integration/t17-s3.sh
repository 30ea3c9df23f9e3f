#!/bin/bash
# t17-s3.sh - the s3:// blob service against a real S3 server: Ceph radosgw
# on memstore, started once for the script (tests/integration/ceph.sh).
# Blobs go in and out through tests/tools/blobtool (the store's blob
# service alone); the bucket is inspected and tampered with by curl.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$HERE/ceph.sh"
shopt -s inherit_errexit
BLOBTOOL=$TOOLS/blobtool
trap 'ceph_down; cleanup' EXIT

ceph_up_or_end
s3curl -f -X PUT "$S3_ENDPOINT/bkt" >/dev/null
URL="s3://bkt?endpoint=$S3_ENDPOINT&region=us-east-1"

bt() { "$BLOBTOOL" "$@"; }
# keys BUCKET: the bucket's object keys, one a line (list-objects-v2)
keys() {
	s3curl -f "$S3_ENDPOINT/$1?list-type=2" | grep -o '<Key>[^<]*</Key>' | sed 's/<[^>]*>//g'
}
b3hex() { b3sum --no-names "$1"; }

# A counting proxy in front of radosgw (tests/integration/s3_proxy.py), so
# requests are counted from outside storefs: $PROXY is its endpoint, and
# each request is a line "METHOD PATH STATUS IN OUT" of $PROXY_LOG.
PROXY_LOG=$TMP/proxy.log
python3 "$HERE/s3_proxy.py" "$S3_ENDPOINT" "$TMP/proxy.port" "$PROXY_LOG" &
DAEMON_PIDS+=("$!")
for _ in $(seq 100); do [ -s "$TMP/proxy.port" ] && break; sleep 0.05; done
PROXY=http://127.0.0.1:$(cat "$TMP/proxy.port")
# gets PATTERN: the GETs since the log was emptied whose path matches
gets() { awk -v p="$1" '$1 == "GET" && $2 ~ p' "$PROXY_LOG" | wc -l; }
# py_pread FILE REFERENCE OFFSET: 4 KiB at OFFSET of FILE are REFERENCE's
py_pread() {
	python3 - "$@" <<'PY'
import os, sys
a, b = os.open(sys.argv[1], os.O_RDONLY), os.open(sys.argv[2], os.O_RDONLY)
off = int(sys.argv[3])
assert os.pread(a, 4096, off) == os.pread(b, 4096, off), "bytes differ"
PY
}

test_round_trip() {
	local f=$TMP/rt d
	head -c 3000000 /dev/urandom >"$f.big"
	printf 'small blob\n' >"$f.small"
	: >"$f.empty"
	for x in big small empty; do
		d=$(b3hex "$f.$x")
		assert_eq "$(bt "$URL" put "$f.$x" | cut -d' ' -f2)" created "first put of $x"
		assert_eq "$(bt "$URL" put "$f.$x" | cut -d' ' -f2)" present "second put of $x"
		bt "$URL" get "$d" | cmp - "$f.$x"
		assert_eq "$(bt "$URL" stat "$d")" "$(stat -c %s "$f.$x")" "size of $x"
		keys bkt | grep -qx "blobs/b3/${d:0:4}/$d" || fail "no object named by the digest of $x"
	done
	assert_eq "$(keys bkt | grep -c '^blobs/')" 3 "blob objects in the bucket (each uploaded once)"
	expect_status 1 bt "$URL" get "$(printf x | b3sum --no-names)"
}

test_prefix() {
	local f=$TMP/pf d
	printf 'under a prefix\n' >"$f"
	d=$(b3hex "$f")
	s3curl -f -X PUT "$S3_ENDPOINT/pbkt" >/dev/null
	bt "s3://pbkt/team/a?endpoint=$S3_ENDPOINT&region=us-east-1" put "$f" >/dev/null
	assert_eq "$(keys pbkt)" "team/a/blobs/b3/${d:0:4}/$d" "key under the prefix"
	bt "s3://pbkt/team/a?endpoint=$S3_ENDPOINT" get "$d" | cmp - "$f"
	# AWS_ENDPOINT_URL stands in for endpoint=
	AWS_ENDPOINT_URL=$S3_ENDPOINT bt "s3://pbkt/team/a" get "$d" | cmp - "$f"
	expect_status 1 bt "s3://pbkt/team/b?endpoint=$S3_ENDPOINT" get "$d"
}

# A wrong secret, an unknown key, a missing bucket, no credentials: one
# line naming the cause, and never the secret.
test_bad_credentials() {
	local d
	d=$(printf 'small blob\n' | b3sum --no-names)
	AWS_SECRET_ACCESS_KEY=wrong-secret expect_status 1 bt "$URL" stat "$d"
	grep -q "secret access key is wrong" "$TMP/err" || fail "wrong secret not named"
	assert_eq "$(wc -l <"$TMP/err")" 1 "lines of the message"
	AWS_ACCESS_KEY_ID=NOSUCHKEY expect_status 1 bt "$URL" stat "$d"
	grep -q "access key id is unknown" "$TMP/err" || fail "unknown key not named"
	expect_status 1 bt "s3://no-such-bucket?endpoint=$S3_ENDPOINT" stat "$d"
	grep -q "bucket 'no-such-bucket' does not exist" "$TMP/err" || fail "missing bucket not named"
	assert_eq "$(wc -l <"$TMP/err")" 1 "lines of the message"
	(
		unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
		HOME=$TMP AWS_SHARED_CREDENTIALS_FILE=$TMP/none expect_status 1 bt "$URL" stat "$d"
		grep -q "no S3 credentials" "$TMP/err" || fail "missing credentials not named"
	)
	expect_status 1 bt "$URL&secret=$AWS_SECRET_ACCESS_KEY" stat "$d"
	grep -q "unknown parameter 'secret'" "$TMP/err" || fail "unknown parameter not named"
	grep -qF "$AWS_SECRET_ACCESS_KEY" "$TMP/err" && fail "the secret is in a message"
	return 0
}

# The credentials file, for hosts without the variables.
test_credentials_file() {
	local d
	d=$(printf 'small blob\n' | b3sum --no-names)
	printf '[other]\naws_access_key_id = x\n[ci]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
		"$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$TMP/credentials"
	(
		unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
		assert_eq "$(AWS_SHARED_CREDENTIALS_FILE=$TMP/credentials AWS_PROFILE=ci \
			bt "$URL" stat "$d")" 11 "size read with the file's credentials"
	)
}

# Other bytes PUT under a blob's key: reads fail (EIO), nothing is served.
test_flipped_object() {
	local f=$TMP/flip d
	head -c 100000 /dev/urandom >"$f"
	d=$(b3hex "$f")
	bt "$URL" put "$f" >/dev/null
	head -c 100000 /dev/urandom >"$f.other"
	s3curl -f -T "$f.other" "$S3_ENDPOINT/bkt/blobs/b3/${d:0:4}/$d" >/dev/null
	expect_status 1 bt "$URL" get "$d"
	grep -q "does not hash to its name" "$TMP/err" || fail "damage not named"
	assert_eq "$(stat -c %s "$TMP/out")" 0 "bytes served from a flipped object"
	# a put of the right bytes cannot repair it (create only if absent)
	assert_eq "$(bt "$URL" put "$f" | cut -d' ' -f2)" present "put over the flipped object"
}

test_unreachable() {
	local port
	port=$(free_port) # nothing listens there
	expect_status 1 bt "s3://bkt?endpoint=http://127.0.0.1:$port" stat "$(b3hex /dev/null)"
	grep -q "failed after 5 tries" "$TMP/err" || fail "no retries named"
}

# issue 16's composite: blobs in S3, Directories and PathInfos in a local
# store; imported once, mounted, read back; the bucket holds each distinct
# content once, and a second import uploads nothing.
test_import_mount() {
	local t=$TMP/tree m=$TMP/mnt meta=$TMP/meta p n
	local svc=(--blob-service-addr "s3://ebkt?endpoint=$S3_ENDPOINT&region=us-east-1"
		--directory-service-addr "$meta" --path-info-service-addr "$meta")
	s3curl -f -X PUT "$S3_ENDPOINT/ebkt" >/dev/null
	mkdir -p "$t/sub"
	printf 'same\n' >"$t/a"
	printf 'same\n' >"$t/sub/dup"
	head -c 300000 /dev/urandom >"$t/sub/big"
	printf '#!/bin/sh\necho ran from s3\n' >"$t/run"
	chmod +x "$t/run"
	p=$(sf import "${svc[@]}" "$t")
	assert_eq "$p" "$(nix_store --add "$t")" "store path"
	n=$(keys ebkt | wc -l)
	assert_eq "$n" 3 "objects in the bucket (3 distinct contents)"
	sf import "${svc[@]}" "$t" >/dev/null
	assert_eq "$(keys ebkt | wc -l)" "$n" "objects after a second import"
	[ -z "$(ls -A "$meta/blobs" 2>/dev/null)" ] || fail "blobs landed in the local store"
	start_mount "$meta" "$m" "${svc[@]}"
	diff -r "$t" "$m/$(base "$p")"
	assert_eq "$("$m/$(base "$p")/run")" "ran from s3" "program output"
	stop_mount "$m"
	# the big file's object replaced in the bucket: EIO through a new mount
	s3curl -f -T "$t/run" "$S3_ENDPOINT/ebkt/blobs/b3/$(b3hex "$t/sub/big" | cut -c1-4)/$(b3hex "$t/sub/big")" >/dev/null
	start_mount "$meta" "$m" "${svc[@]}"
	py errno EIO open_read "$m/$(base "$p")/sub/big"
	stop_mount "$m"
}

# issue 16's parallel conditional creates, counted by the proxy: a fresh
# import keeps several small-blob PUTs in flight, asks first (HEAD) only
# for its first blobs and sends a content it holds twice once; a re-import of the unchanged tree sends no blob
# bytes (HEADs only); a PUT failing mid-import (500s, then dropped
# connections) fails the import, and no path is registered.
test_upload_parallel() {
	local t=$TMP/par meta=$TMP/pmeta n i j p
	local svc=(--blob-service-addr "s3://ubkt?endpoint=$PROXY&region=us-east-1"
		--directory-service-addr "$meta" --path-info-service-addr "$meta")
	s3curl -f -X PUT "$S3_ENDPOINT/ubkt" >/dev/null
	mkdir -p "$t"
	n=48
	for i in $(seq "$n"); do head -c 20000 /dev/urandom >"$t/f$i"; done
	# contents seen twice in one import: asked for and sent once
	for i in 10 20 30 40; do cp "$t/f$i" "$t/copy$i"; done
	# a new large blob: about 17 chunks, asked for only at its start
	head -c 4000000 /dev/urandom >"$t/big"
	: >"$PROXY_LOG"
	sf import "${svc[@]}" "$t" >/dev/null
	awk '{ print $1, $3 }' "$PROXY_LOG" | sort | uniq -c
	assert_eq "$(awk '$1 == "PUT" && $3 == 200 && $2 ~ /\/blobs\//' "$PROXY_LOG" | wc -l)" \
		$((n + 1)) "blobs stored (the big one as a chunk list)"
	assert_eq "$(awk '$1 == "PUT" && $3 != 200' "$PROXY_LOG" | wc -l)" 0 "PUTs refused (copies)"
	i=$(awk '$1 == "PUT" && $6 > m { m = $6 } END { print m + 0 }' "$PROXY_LOG")
	[ "$i" -gt 1 ] || fail "at most $i PUT in flight during an import"
	# the big blob's own HEADs (the import's stat, the commit's) aside
	i=$(awk '$1 == "HEAD" && $2 ~ /\/blobs\//' "$PROXY_LOG" | wc -l)
	[ "$i" -le 10 ] || fail "$i HEADs of blobs in a fresh import of $n small blobs and a big one"
	i=$(awk '$1 == "HEAD" && $2 ~ /\/chunks\//' "$PROXY_LOG" | wc -l)
	[ "$i" -le 8 ] || fail "$i HEADs of chunks in a fresh import"
	: >"$PROXY_LOG"
	sf import "${svc[@]}" "$t" >/dev/null
	awk '{ print $1, $3 }' "$PROXY_LOG" | sort | uniq -c
	assert_eq "$(awk '$1 == "PUT" { s += $4 } END { print s + 0 }' "$PROXY_LOG")" 0 \
		"blob bytes sent by a re-import"
	[ "$(awk '$1 == "HEAD"' "$PROXY_LOG" | wc -l)" -le $((n + 1)) ] || fail "more than a HEAD a blob"
	# 500s from the 6th PUT on (the import stops early), and the last 3
	# PUTs dropped (only the flush before the registration sees them)
	for i in "500 5" "drop 37"; do
		rm -rf "$t" "$meta"
		mkdir -p "$t"
		for j in $(seq 40); do head -c 20000 /dev/urandom >"$t/f$j"; done
		p=$(nix_store --add "$t")
		echo "PUT $i" >"$PROXY_LOG.fail"
		: >"$PROXY_LOG"
		expect_status 1 sf import "${svc[@]}" "$t"
		rm "$PROXY_LOG.fail"
		grep -q "S3 PUT of 'blobs/b3/" "$TMP/err" || fail "the failed PUT is not named ($i)"
		[ "$(awk -v i="${i% *}" '$1 == "PUT" && $3 == i' "$PROXY_LOG" | wc -l)" -ge 1 ] || fail "no PUT $i"
		assert_eq "$(sf list "${svc[@]}")" "" "paths registered after PUT $i"
		expect_status 1 sf path-info "${svc[@]}" "$p"
	done
}

# Blobs of 1 MiB and more are FastCDC chunks plus a chunk list: a change
# in the middle stores a chunk or two; each chunk is verified.
# N pseudo-random bytes from SEED, the same on every run.
seeded_bytes() {
	# in blocks of 16 MiB: randbytes() takes at most 2^31 bits at once
	python3 -c 'import random, sys
r, n = random.Random(int(sys.argv[1])), int(sys.argv[2])
while n > 0:
    sys.stdout.buffer.write(r.randbytes(min(n, 1 << 24)))
    n -= 1 << 24' "$1" "$2"
}

test_chunks() {
	local f=$TMP/ck d1 d2 n1 n2 c n
	s3curl -f -X PUT "$S3_ENDPOINT/cbkt" >/dev/null
	local url="s3://cbkt?endpoint=$S3_ENDPOINT"
	# Seeded bytes, not /dev/urandom: after a change, cut points realign
	# within a few chunks, and random contents took 5 once in some runs.
	seeded_bytes 1 6000000 >"$f.1"
	cp "$f.1" "$f.2"
	seeded_bytes 2 100000 | dd of="$f.2" bs=1 seek=3000000 conv=notrunc status=none
	d1=$(b3hex "$f.1")
	d2=$(b3hex "$f.2")
	bt "$url" put "$f.1" >/dev/null
	n1=$(keys cbkt | grep -c '^chunks/')
	[ "$n1" -ge 8 ] && [ "$n1" -le 48 ] || fail "$n1 chunks for 6 MB"
	bt "$url" put "$f.2" >/dev/null
	n2=$(keys cbkt | grep -c '^chunks/')
	[ $((n2 - n1)) -ge 1 ] && [ $((n2 - n1)) -le 3 ] || fail "$((n2 - n1)) new chunks for a 100 KB change"
	assert_eq "$(keys cbkt | grep -c '^blobs/')" 2 "chunk lists"
	assert_eq "$(bt "$url" stat "$d2")" 6000000 "size of a chunked blob"
	bt "$url" get "$d1" | cmp - "$f.1"
	bt "$url" get "$d2" | cmp - "$f.2"
	# one chunk of the second blob replaced: EIO, nothing served
	c=$(keys cbkt | grep '^chunks/' | while read -r k; do
		s3curl -f "$S3_ENDPOINT/cbkt/blobs/b3/${d2:0:4}/$d2" | grep -q "^${k##*/} " && echo "$k"
	done | head -n 1)
	[ -n "$c" ] || fail "no chunk of the list found"
	printf 'not the chunk\n' >"$f.bad"
	s3curl -f -T "$f.bad" "$S3_ENDPOINT/cbkt/$c" >/dev/null
	expect_status 1 bt "$url" get "$d2"
	grep -q "chunk '.*' in bucket 'cbkt' does not hash to its name" "$TMP/err" || fail "damage not named"
	# read lazily: the chunks before the bad one were served, none after
	n=$(stat -c %s "$TMP/out")
	[ "$n" -lt 6000000 ] || fail "the whole blob was served"
	head -c "$n" "$f.2" | cmp - "$TMP/out"
}

# storefs verify over an S3 blob service lists the bucket and reads every
# blob whole: a clean bucket passes; an object and a chunk replaced in the
# bucket are each named; through a mount with --cache the replaced object
# is EIO and the cache keeps nothing.
test_verify() {
	local t=$TMP/ver m=$TMP/vmnt meta=$TMP/vmeta cache=$TMP/vcache p ds db c
	local svc=(--blob-service-addr "s3://vbkt?endpoint=$PROXY&region=us-east-1"
		--directory-service-addr "$meta" --path-info-service-addr "$meta")
	s3curl -f -X PUT "$S3_ENDPOINT/vbkt" >/dev/null
	mkdir -p "$t"
	seeded_bytes 7 100000 >"$t/small"
	seeded_bytes 8 3000000 >"$t/big"
	p=$(sf import "${svc[@]}" "$t")
	: >"$PROXY_LOG"
	sf verify "${svc[@]}" >"$TMP/v.out" 2>&1 || { cat "$TMP/v.out"; fail "verify of a clean bucket"; }
	[ "$(awk '$2 ~ /list-type=2/' "$PROXY_LOG" | wc -l)" -ge 1 ] || fail "the bucket was not listed"
	ds=$(b3hex "$t/small")
	db=$(b3hex "$t/big")
	seeded_bytes 9 100000 >"$t.other"
	s3curl -f -T "$t.other" "$S3_ENDPOINT/vbkt/blobs/b3/${ds:0:4}/$ds" >/dev/null
	c=$(s3curl -f "$S3_ENDPOINT/vbkt/blobs/b3/${db:0:4}/$db" | sed -n '2s/ .*//p')
	s3curl -f -T "$t.other" "$S3_ENDPOINT/vbkt/chunks/b3/${c:0:4}/$c" >/dev/null
	expect_status 1 sf verify "${svc[@]}"
	cat "$TMP/out" "$TMP/err"
	cat "$TMP/out" "$TMP/err" | grep -q "blobs/b3/${ds:0:4}/$ds.*does not hash to its name" ||
		fail "the replaced object is not named"
	cat "$TMP/out" "$TMP/err" | grep -q "chunks/b3/${c:0:4}/$c.*does not hash to its name" ||
		fail "the replaced chunk is not named"
	start_mount "$meta" "$m" "${svc[@]}" --cache "$cache"
	py errno EIO open_read "$m/$(base "$p")/small"
	py errno EIO open_read "$m/$(base "$p")/big"
	stop_mount "$m"
	assert_eq "$(sf info --store "$cache" | awk '$1 == "blobs:" { print $2 }')" 0 "blobs in the cache"
}

# --cache DIR?cache-size=: past the bound the least recently used blobs
# are evicted (blobs filled in the last 5 s are kept), and a blob evicted
# while a reader has it open keeps reading right.
test_cache_bound() {
	local t=$TMP/bnd m=$TMP/bmnt meta=$TMP/bmeta cache=$TMP/bcache p i
	local svc=(--blob-service-addr "s3://bbkt?endpoint=$S3_ENDPOINT&region=us-east-1"
		--directory-service-addr "$meta" --path-info-service-addr "$meta")
	s3curl -f -X PUT "$S3_ENDPOINT/bbkt" >/dev/null
	mkdir -p "$t"
	for i in 1 2 3; do seeded_bytes "2$i" 900000 >"$t/f$i"; done
	p=$(sf import "${svc[@]}" "$t")
	expect_status 1 sf ls --cache "$cache?cache-size=0" "${svc[@]}" "$p"
	grep -q "cache-size= wants a size" "$TMP/err" || fail "a bad size not named"
	expect_status 1 sf ls --cache "$cache?size=1G" "${svc[@]}" "$p"
	grep -q "unknown parameter 'size=1G'" "$TMP/err" || fail "an unknown parameter not named"
	start_mount "$meta" "$m" "${svc[@]}" --cache "$cache?cache-size=2M"
	cat "$m/$(base "$p")/f1" "$m/$(base "$p")/f2" >/dev/null
	stop_mount "$m"
	sleep 6
	start_mount "$meta" "$m" "${svc[@]}" --cache "$cache?cache-size=2M"
	python3 - "$m/$(base "$p")" "$t" <<'PY'
import os, sys
m, t = sys.argv[1], sys.argv[2]
f2 = os.open(m + "/f2", os.O_RDONLY)
assert os.pread(f2, 4096, 0) == open(t + "/f2", "rb").read(4096)
assert open(m + "/f1", "rb").read() == open(t + "/f1", "rb").read()
# f3 fills the cache past 2 MiB: f2, used least recently, is evicted
assert open(m + "/f3", "rb").read() == open(t + "/f3", "rb").read()
assert os.pread(f2, 900000, 0) == open(t + "/f2", "rb").read(), "f2 read after eviction"
PY
	stop_mount "$m"
	bt "$cache" stat "$(b3hex "$t/f1")" >/dev/null || fail "f1 (used recently) was evicted"
	bt "$cache" stat "$(b3hex "$t/f3")" >/dev/null || fail "f3 (just filled) was evicted"
	expect_status 1 bt "$cache" stat "$(b3hex "$t/f2")"
}

# issue 16: a file, then the same file with 1 MiB changed in the middle:
# the second upload sends at most 2 MiB of new chunks (bytes counted by the
# proxy). The issue's file is 256 MiB; STOREFS_T17_MB sets the size
# (default 64, so CI's ASan run stays short).
test_chunk_change() {
	local mb=${STOREFS_T17_MB:-64} f=$TMP/cc up
	s3curl -f -X PUT "$S3_ENDPOINT/dbkt" >/dev/null
	seeded_bytes 5 $((mb << 20)) >"$f.1"
	cp "$f.1" "$f.2"
	seeded_bytes 6 1048576 | dd of="$f.2" bs=1M seek=$((mb / 2)) conv=notrunc status=none
	bt "s3://dbkt?endpoint=$S3_ENDPOINT" put "$f.1" >/dev/null
	: >"$PROXY_LOG"
	bt "s3://dbkt?endpoint=$PROXY" put "$f.2" >/dev/null
	up=$(awk '$1 == "PUT" && $2 ~ /\/chunks\// { s += $4 } END { print s + 0 }' "$PROXY_LOG")
	echo "$mb MiB with 1 MiB changed: $up bytes of new chunks" >&3
	[ "$up" -ge 1048576 ] && [ "$up" -le 2097152 ] || fail "$up bytes of new chunks for a 1 MiB change"
	bt "s3://dbkt?endpoint=$S3_ENDPOINT" get "$(b3hex "$f.2")" | cmp - "$f.2"
	rm -f "$f.1" "$f.2"
}

# issue 16: a 4 KiB pread through a mount with an empty cache fetches the
# chunk list and at most 2 chunks, not the blob; read whole, the blob is
# verified and kept in the cache, so a second mount fetches nothing.
test_lazy_read() {
	local t=$TMP/lazy m=$TMP/lmnt meta=$TMP/lmeta cache=$TMP/lcache p f n
	local svc=(--blob-service-addr "s3://lbkt?endpoint=$PROXY&region=us-east-1"
		--directory-service-addr "$meta" --path-info-service-addr "$meta")
	s3curl -f -X PUT "$S3_ENDPOINT/lbkt" >/dev/null
	mkdir -p "$t"
	seeded_bytes 3 12000000 >"$t/big"
	p=$(sf import "${svc[@]}" "$t")
	n=$(keys lbkt | grep -c '^chunks/')
	[ "$n" -ge 12 ] || fail "only $n chunks for 12 MB"
	f=$m/$(base "$p")/big
	start_mount "$meta" "$m" "${svc[@]}" --cache "$cache"
	: >"$PROXY_LOG"
	python3 - "$f" "$t/big" <<'PY'
import os, sys
a, b = os.open(sys.argv[1], os.O_RDONLY), os.open(sys.argv[2], os.O_RDONLY)
assert os.pread(a, 4096, 7000000) == os.pread(b, 4096, 7000000), "bytes differ"
PY
	cat "$PROXY_LOG"
	assert_eq "$(gets /blobs/)" 1 "GETs of the chunk list"
	n=$(gets /chunks/)
	[ "$n" -ge 1 ] && [ "$n" -le 2 ] || fail "$n chunks fetched for a 4 KiB read"
	cmp "$f" "$t/big"
	stop_mount "$m"
	start_mount "$meta" "$m" "${svc[@]}" --cache "$cache"
	: >"$PROXY_LOG"
	cmp "$f" "$t/big"
	assert_eq "$(gets /)" 0 "GETs when the cache holds the blob"
	stop_mount "$m"
}

# A chunk replaced in the bucket: a read through the mount is EIO, and
# the cache keeps neither that chunk nor the blob.
test_lazy_flipped_chunk() {
	local t=$TMP/lflip m=$TMP/fmnt meta=$TMP/fmeta cache=$TMP/fcache p d c
	local svc=(--blob-service-addr "s3://fbkt?endpoint=$PROXY&region=us-east-1"
		--directory-service-addr "$meta" --path-info-service-addr "$meta")
	s3curl -f -X PUT "$S3_ENDPOINT/fbkt" >/dev/null
	mkdir -p "$t"
	seeded_bytes 4 3000000 >"$t/big"
	p=$(sf import "${svc[@]}" "$t")
	d=$(b3hex "$t/big")
	c=$(s3curl -f "$S3_ENDPOINT/fbkt/blobs/b3/${d:0:4}/$d" | sed -n '3s/ .*//p')
	printf 'not the chunk\n' >"$t.bad"
	s3curl -f -T "$t.bad" "$S3_ENDPOINT/fbkt/chunks/b3/${c:0:4}/$c" >/dev/null
	start_mount "$meta" "$m" "${svc[@]}" --cache "$cache"
	py errno EIO open_read "$m/$(base "$p")/big"
	stop_mount "$m"
	# chunks verified by their digests may be kept, not the bad one nor the blob
	expect_status 1 bt "$cache" stat "$d"
	expect_status 1 bt "$cache" stat "$c"
	grep -q "chunk '.*' in bucket 'fbkt' does not hash to its name" "$TMP/mount.log" ||
		fail "damage not named in the mount's log"
}

# most_gets: the most GETs of any one chunk key since the log was emptied
most_gets() {
	awk '$1 == "GET" && $2 ~ /\/chunks\// { c[$2]++ }
		END { m = 0; for (k in c) if (c[k] > m) m = c[k]; print m }' "$PROXY_LOG"
}

# issue 16: the cache keeps chunks by digest (docs/services.md "Chunks in
# the cache"). A 4 KiB pread of a large file through a mount with --cache,
# then the same pread after a remount with that cache: the second fetches
# the chunk list only, no chunk. Two versions of a file that share most
# chunks, read at once through one mount: each chunk is fetched once.
# Read whole, both are kept whole: a remount fetches nothing.
test_chunk_cache() {
	local t=$TMP/kc m=$TMP/kmnt meta=$TMP/kmeta cache=$TMP/kcache p f pids
	local svc=(--blob-service-addr "s3://kbkt?endpoint=$PROXY&region=us-east-1"
		--directory-service-addr "$meta" --path-info-service-addr "$meta")
	s3curl -f -X PUT "$S3_ENDPOINT/kbkt" >/dev/null
	mkdir -p "$t"
	seeded_bytes 11 8000000 >"$t/v1"
	cp "$t/v1" "$t/v2"
	seeded_bytes 12 100000 | dd of="$t/v2" bs=1 seek=4000000 conv=notrunc status=none
	p=$(sf import "${svc[@]}" "$t")
	f=$m/$(base "$p")
	start_mount "$meta" "$m" "${svc[@]}" --cache "$cache"
	: >"$PROXY_LOG"
	py_pread "$f/v1" "$t/v1" 6000000
	[ "$(gets /chunks/)" -ge 1 ] || fail "no chunk fetched for a 4 KiB read"
	stop_mount "$m"
	start_mount "$meta" "$m" "${svc[@]}" --cache "$cache"
	: >"$PROXY_LOG"
	py_pread "$f/v1" "$t/v1" 6000000
	assert_eq "$(gets /chunks/)" 0 "chunks fetched again after a remount with the same cache"
	: >"$PROXY_LOG"
	cat "$f/v1" >"$TMP/k1" &
	pids=("$!")
	cat "$f/v2" >"$TMP/k2" &
	pids+=("$!")
	cat "$f/v1" >"$TMP/k3" &
	wait "${pids[@]}" "$!"
	cmp "$TMP/k1" "$t/v1"
	cmp "$TMP/k2" "$t/v2"
	cmp "$TMP/k3" "$t/v1"
	assert_eq "$(most_gets)" 1 "GETs of one chunk key by concurrent readers"
	stop_mount "$m"
	start_mount "$meta" "$m" "${svc[@]}" --cache "$cache"
	: >"$PROXY_LOG"
	cmp "$f/v1" "$t/v1"
	cmp "$f/v2" "$t/v2"
	assert_eq "$(gets /)" 0 "GETs when the cache holds both blobs"
	stop_mount "$m"
}

# Two mounts sharing one cache directory (two processes) read one large
# file at once: each chunk is fetched once (DIR/fetch.lock).
test_chunk_cache_two_mounts() {
	local t=$TMP/kw m1=$TMP/kwm1 m2=$TMP/kwm2 meta=$TMP/kwmeta cache=$TMP/kwcache p pid1 pids
	local svc=(--blob-service-addr "s3://wbkt?endpoint=$PROXY&region=us-east-1"
		--directory-service-addr "$meta" --path-info-service-addr "$meta")
	s3curl -f -X PUT "$S3_ENDPOINT/wbkt" >/dev/null
	mkdir -p "$t"
	seeded_bytes 15 8000000 >"$t/big"
	p=$(sf import "${svc[@]}" "$t")
	start_mount "$meta" "$m1" "${svc[@]}" --cache "$cache"
	pid1=$MOUNT_PID
	start_mount "$meta" "$m2" "${svc[@]}" --cache "$cache"
	: >"$PROXY_LOG"
	cat "$m1/$(base "$p")/big" >"$TMP/kwa" &
	pids=("$!")
	cat "$m2/$(base "$p")/big" >"$TMP/kwb" &
	wait "${pids[@]}" "$!"
	cmp "$TMP/kwa" "$t/big"
	cmp "$TMP/kwb" "$t/big"
	assert_eq "$(most_gets)" 1 "GETs of one chunk key by two mounts sharing the cache"
	stop_mount "$m2"
	fusermount3 -u "$m1"
	wait "$pid1"
}

# Chunks under the size bound: a blob read whole leaves its chunks and
# itself in the cache; filled more than 5 s before, all of them are evicted
# when another large file fills the cache past the bound, and an open file
# keeps reading right.
test_chunk_cache_bound() {
	local t=$TMP/kb m=$TMP/kbmnt meta=$TMP/kbmeta cache=$TMP/kbcache p
	local svc=(--blob-service-addr "s3://ybkt?endpoint=$PROXY&region=us-east-1"
		--directory-service-addr "$meta" --path-info-service-addr "$meta")
	s3curl -f -X PUT "$S3_ENDPOINT/ybkt" >/dev/null
	mkdir -p "$t"
	seeded_bytes 16 4000000 >"$t/a"
	seeded_bytes 17 4000000 >"$t/b"
	p=$(sf import "${svc[@]}" "$t")
	start_mount "$meta" "$m" "${svc[@]}" --cache "$cache?cache-size=3M"
	cmp "$m/$(base "$p")/a" "$t/a"
	stop_mount "$m"
	bt "$cache" stat "$(b3hex "$t/a")" >/dev/null || fail "a was not kept whole"
	sleep 6
	start_mount "$meta" "$m" "${svc[@]}" --cache "$cache?cache-size=3M"
	python3 - "$m/$(base "$p")" "$t" <<'PY'
import os, sys
m, t = sys.argv[1], sys.argv[2]
a = os.open(m + "/a", os.O_RDONLY)
assert os.pread(a, 4096, 0) == open(t + "/a", "rb").read(4096)
assert open(m + "/b", "rb").read() == open(t + "/b", "rb").read()
assert os.pread(a, 4000000, 0) == open(t + "/a", "rb").read(), "a read after eviction"
PY
	stop_mount "$m"
	expect_status 1 bt "$cache" stat "$(b3hex "$t/a")"
	start_mount "$meta" "$m" "${svc[@]}" --cache "$cache?cache-size=3M"
	: >"$PROXY_LOG"
	cmp "$m/$(base "$p")/a" "$t/a"
	[ "$(gets /chunks/)" -ge 1 ] || fail "a's chunks were not evicted"
	stop_mount "$m"
}

# A chunk list that lies (real chunks, adding up to the size, that make
# another blob): partial reads cannot tell, a whole read is EIO, and the
# cache does not keep the blob.
test_chunk_list_lie() {
	local t=$TMP/klie m=$TMP/lmnt2 meta=$TMP/liemeta cache=$TMP/liecache p d1 d2
	local svc=(--blob-service-addr "s3://xbkt?endpoint=$PROXY&region=us-east-1"
		--directory-service-addr "$meta" --path-info-service-addr "$meta")
	s3curl -f -X PUT "$S3_ENDPOINT/xbkt" >/dev/null
	mkdir -p "$t"
	seeded_bytes 13 3000000 >"$t/a"
	seeded_bytes 14 3000000 >"$t/b"
	p=$(sf import "${svc[@]}" "$t")
	d1=$(b3hex "$t/a")
	d2=$(b3hex "$t/b")
	s3curl -f "$S3_ENDPOINT/xbkt/blobs/b3/${d1:0:4}/$d1" >"$TMP/list"
	s3curl -f -H "x-amz-meta-blob-size: 3000000" -T "$TMP/list" \
		"$S3_ENDPOINT/xbkt/blobs/b3/${d2:0:4}/$d2" >/dev/null
	start_mount "$meta" "$m" "${svc[@]}" --cache "$cache"
	py errno EIO open_read "$m/$(base "$p")/b"
	cmp "$m/$(base "$p")/a" "$t/a"
	stop_mount "$m"
	grep -q "chunks that do not make the blob" "$TMP/mount.log" || fail "the lie not named"
	expect_status 1 bt "$cache" stat "$d2"
	bt "$cache" stat "$d1" >/dev/null || fail "the true blob was not kept"
}

check "blobs go in once, come out whole, named by their digest" test_round_trip
check "a prefix keeps blobs apart; AWS_ENDPOINT_URL" test_prefix
check "a wrong secret, an unknown key or bucket is one clear error" test_bad_credentials
check "credentials from a shared credentials file profile" test_credentials_file
check "a flipped object in the bucket is EIO, nothing served" test_flipped_object
check "an unreachable endpoint fails after retries" test_unreachable
check "import --blob-service-addr s3://, mount, read; each content uploaded once; a flipped object is EIO" test_import_mount
check "an import keeps PUTs in flight, asks first only at its start, re-sends no bytes; a failed PUT registers nothing" test_upload_parallel
check "large blobs are content-defined chunks: a change stores a chunk or two; a flipped chunk is EIO" test_chunks
exec 3> >(sed 's/^/# /')
check "1 MiB changed in the middle of a large file uploads <= 2 MiB of new chunks" test_chunk_change
check "a 4 KiB pread through a mount with an empty cache fetches <= 2 chunks; read whole, it is cached" test_lazy_read
check "a flipped chunk read through a mount is EIO and not cached" test_lazy_flipped_chunk
check "--cache DIR?cache-size= evicts the least recently used blobs; an open reader survives" test_cache_bound
check "the cache keeps chunks: a remount reads them from it; concurrent readers fetch each chunk once" test_chunk_cache
check "two mounts sharing a cache directory fetch each chunk once" test_chunk_cache_two_mounts
check "chunks are evicted past cache-size= like blobs; an open file keeps reading" test_chunk_cache_bound
check "a chunk list naming chunks that do not make the blob is EIO and not kept" test_chunk_list_lie
check "verify lists the bucket and names a replaced object and a replaced chunk; the mount says EIO and caches nothing" test_verify

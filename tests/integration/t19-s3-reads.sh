#!/bin/bash
# t19-s3-reads.sh - cold reads of many small files through a mount whose
# blobs are in S3 (Ceph radosgw on memstore) and which has no --cache: the
# requests a walk costs, counted outside storefs by the proxy
# (tests/integration/s3_proxy.py). How fast they are is bench/s3pg's job.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$HERE/ceph.sh"
shopt -s inherit_errexit
trap 'ceph_down; cleanup' EXIT

ceph_up_or_end
s3curl -f -X PUT "$S3_ENDPOINT/bkt" >/dev/null

PROXY_LOG=$TMP/proxy.log
python3 "$HERE/s3_proxy.py" "$S3_ENDPOINT" "$TMP/proxy.port" "$PROXY_LOG" &
DAEMON_PIDS+=("$!")
for _ in $(seq 100); do [ -s "$TMP/proxy.port" ] && break; sleep 0.05; done
PROXY=http://127.0.0.1:$(cat "$TMP/proxy.port")

# The tree: T19_FILES files (default 400) of distinct contents, 1-40 KiB,
# in 4 directories, imported once straight to radosgw; the Directories and
# PathInfos in a local store.
T=$TMP/tree META=$TMP/meta M=$TMP/mnt
mkdir -p "$T"
python3 - "$T" "${T19_FILES:-400}" <<'EOF'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
r = random.Random(19)
for i in range(n):
    d = os.path.join(root, "d%d" % (i % 4))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%04d" % i), "wb") as f:
        f.write(b"%d\n" % i + r.randbytes(r.randrange(1024, 40 << 10)))
EOF
# and one large file: about 24 chunks of 256 KiB
mkdir -p "$T/big"
head -c 6000000 /dev/urandom >"$T/big/large"
SVC=(--directory-service-addr "$META" --path-info-service-addr "$META")
P=$(sf import --blob-service-addr "s3://bkt?endpoint=$S3_ENDPOINT&region=us-east-1" "${SVC[@]}" "$T")
NFILES=$(find "$T" -type f | wc -l)
NSMALL=$((NFILES - 1))

# One cold walk of the small files through a fresh mount over the proxy,
# with no --cache (the tar archive in $TMP/walk.tar, the proxy's lines in
# $TMP/walk.log), then the large file read and compared (what cmp said in
# $TMP/large.cmp, the proxy's lines in $PROXY_LOG).
cold_tar() {
	: >"$PROXY_LOG"
	start_mount "$META" "$M" --blob-service-addr "s3://bkt?endpoint=$PROXY&region=us-east-1" \
		"${SVC[@]}"
	tar cf "$TMP/walk.tar" -C "$M/$(base "$P")" --exclude ./big .
	cp "$PROXY_LOG" "$TMP/walk.log"
	: >"$PROXY_LOG"
	cmp "$M/$(base "$P")/big/large" "$T/big/large" >"$TMP/large.cmp" 2>&1 || true
	stop_mount "$M"
}
cold_tar

# The blob GETs of the walk: "COUNT KEY" per key.
blob_gets() { awk '$1 == "GET" && $2 ~ "/blobs/" { print $2 }' "$TMP/walk.log" | sort | uniq -c; }

# A READ that came while a pushing thread was fetching the same file used to
# fetch it again, and a READ restarting the push window made the threads
# fetch again what was still in flight (bench quick tree: 8 807 GETs for
# 5 287 files; here 310 of 400 blobs twice or more). And the kernel now and
# then reads a file again after its push (seen 0.5-7% of the files): the
# pushed reader stays in the mount's reader cache for that READ.
test_each_blob_once() {
	local out=$TMP/out
	mkdir -p "$out"
	tar xf "$TMP/walk.tar" -C "$out"
	diff -r --exclude big "$T" "$out"
	assert_eq "$(blob_gets | wc -l)" "$NSMALL" "blobs fetched"
	blob_gets | awk '$1 > 1 { print "# fetched " $1 " times: " $2 }'
	assert_eq "$(blob_gets | awk '$1 > 1' | wc -l)" 0 "blobs fetched more than once"
}

# The proxy's 6th column: the GETs it was serving when one came in, itself
# included. 4 pushing threads and the reader made at most 5.
in_flight() { awk -v p="$2" '$1 == "GET" && $2 ~ p && $6 > m { m = $6 } END { print m + 0 }' "$1"; }
test_gets_in_flight() {
	local most
	most=$(in_flight "$TMP/walk.log" /blobs/)
	echo "# at most $most GETs in flight"
	[ "$most" -ge 8 ] || fail "at most $most GETs in flight during a cold tar (want >= 8)"
}

# A sequential read of a large blob fetches the chunks after the one it is
# in, 8 at a time (docs/s3.md "Reads"). Reads seldom start at a cut, and the
# reader looked for the chunk before the read's first one: each chunk was
# fetched alone, 1 GET in flight.
test_large_read_ahead() {
	local most
	most=$(in_flight "$PROXY_LOG" /chunks/)
	echo "# at most $most chunk GETs in flight"
	[ ! -s "$TMP/large.cmp" ] || fail "read wrong: $(cat "$TMP/large.cmp")"
	[ "$most" -ge 4 ] || fail "at most $most chunk GETs in flight reading a large file (want >= 4)"
	assert_eq "$(awk '$1 == "GET" && $2 ~ "/chunks/" { print $2 }' "$PROXY_LOG" | sort | uniq -d)" \
		"" "chunks fetched twice"
}

check "a cold tar through a mount without --cache GETs each blob once, and reads right" test_each_blob_once
check "a cold tar has 8 or more GETs in flight at once" test_gets_in_flight
check "a cold sequential read of a large file has 4 or more chunk GETs in flight" test_large_read_ahead

#!/bin/bash
# t26-multihost.sh - issue 16's many hosts sharing one store: blobs in S3
# (Ceph radosgw, 3 memstore OSDs), Directories and PathInfos in PostgreSQL,
# both started once for the script on an address of a bridge. Host A is
# this network namespace: it imports. Hosts B and C are network namespaces
# made here, each linked to the bridge by a veth pair: each mounts with its
# own --cache, reads the same paths and runs programs from them. Then the
# faults: PostgreSQL stopped under B's mount, C's link cut mid-read, one
# OSD of three killed during reads.
#
# Where the mounts live: a mount made under `ip netns exec` is in a mount
# namespace of its own (ip netns exec unshares one), seen by nothing else
# and gone with its last process. Here the mount daemons enter only the
# network namespace (`nsenter --net`), so their mounts are in this mount
# namespace under $TMP, where lib.sh's cleanup unmounts them whatever
# happens; the EXIT trap then deletes the namespaces and the bridge (and
# a run killed with SIGKILL has its leftovers deleted by the next run).
#
# Knob: T26_TIMEOUT, the deadline (seconds) of host C's remote requests in
# the link-cut check (default 4; the product's default is 60).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$HERE/ceph.sh"
. "$HERE/pg.sh"
shopt -s inherit_errexit
T26_TIMEOUT=${T26_TIMEOUT:-4}

# Names carry our pid, so that parallel runs do not meet and a later run
# can tell leftovers of a dead one.
NS=sf26-$$     # network namespaces $NS-b, $NS-c
BR=sf26br$$    # the bridge (interface names: at most 15 characters)
VETH=sf26v$$   # host sides ${VETH}b, ${VETH}c

net_down() {
	local h
	for h in b c; do ip netns del "$NS-$h" 2>/dev/null; done
	ip link del "$BR" 2>/dev/null
	return 0
}
# The mount daemons, started by checks (subshells), are stopped here and
# waited for: a namespace lives on while a process is in it.
mounts_down() {
	local f pid
	for f in "$TMP"/mpid-*; do
		[ -f "$f" ] || continue
		pid=$(cat "$f")
		fusermount3 -u "$TMP/mnt-${f##*-}" 2>/dev/null || umount -l "$TMP/mnt-${f##*-}" 2>/dev/null
		kill "$pid" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null
	done
	return 0
}
trap 'mounts_down; ceph_down; pg_down; cleanup; net_down' EXIT
trap 'exit 1' INT TERM HUP

# Namespaces and bridges of runs that died without their trap.
net_reap() {
	local ns pid
	for ns in $(ip netns list | awk '$1 ~ /^sf26-[0-9]+-[bc]$/ { print $1 }'); do
		pid=${ns#sf26-}
		pid=${pid%-*}
		kill -0 "$pid" 2>/dev/null && continue
		ip netns del "$ns" 2>/dev/null
		ip link del "sf26br$pid" 2>/dev/null
	done
	return 0
}

# A /24 of 10/8 that no interface here uses.
pick_net() {
	local a b
	for _ in $(seq 50); do
		a=$((RANDOM % 200 + 30)) b=$((RANDOM % 250 + 1))
		ip -4 addr | grep -q " 10\.$a\.$b\." || { echo "10.$a.$b"; return 0; }
	done
	return 1
}

net_up() {
	local h n=2
	NET=$(pick_net)
	ip link add "$BR" type bridge
	ip addr add "$NET.1/24" dev "$BR"
	ip link set "$BR" up
	for h in b c; do
		ip netns add "$NS-$h"
		ip link add "$VETH$h" type veth peer name eth0 netns "$NS-$h"
		ip link set "$VETH$h" master "$BR" up
		on "$h" ip addr add "$NET.$n/24" dev eth0
		on "$h" ip link set eth0 up
		on "$h" ip link set lo up
		n=$((n + 1))
	done
}

# on HOST CMD...: CMD in host HOST's network namespace (this mount namespace).
on() {
	local h=$1
	shift
	nsenter --net="/run/netns/$NS-$h" "$@"
}

net_reap
net_up || { echo "not ok - network namespaces and bridge"; exit 0; }
export CEPH_OSDS=3 CEPH_RGW_ADDR=$NET.1
# An OSD that dies is marked down within seconds, not the default 20 s.
export CEPH_CONF_EXTRA="osd heartbeat interval = 1
osd heartbeat grace = 4
mon osd min down reporters = 1"
ceph_up_or_end
export PG_LISTEN="127.0.0.1,$NET.1"
pg_up >"$TMP/pg-up.log" 2>&1 || { echo "not ok - start PostgreSQL"; exit 0; }
echo "$NET.1:$PG_PORT:*:ci:$PG_PASSWORD" >>"$PGPASSFILE"
DATABASE_URL=postgresql://ci@$NET.1:$PG_PORT/ci
s3curl -f -X PUT "$S3_ENDPOINT/bkt" >/dev/null
S3_URL="s3://bkt?endpoint=$S3_ENDPOINT&region=us-east-1"
SVC=(--blob-service-addr "$S3_URL" --directory-service-addr "$DATABASE_URL"
	--path-info-service-addr "$DATABASE_URL")
# Host C's, with a short deadline for the link-cut check.
SVC_C=(--blob-service-addr "$S3_URL&timeout=$T26_TIMEOUT"
	--directory-service-addr "$DATABASE_URL?timeout=$T26_TIMEOUT"
	--path-info-service-addr "$DATABASE_URL?timeout=$T26_TIMEOUT")

keys() {
	s3curl -f "$S3_ENDPOINT/bkt?list-type=2&max-keys=1000" | grep -o '<Key>[^<]*</Key>' |
		sed 's/<[^>]*>//g'
}
# rgw_log_sync: radosgw's log written up to now (its log thread writes
# behind the requests): a request for a fresh missing key, awaited there.
rgw_log_sync() {
	local k=sync-$RANDOM$RANDOM
	s3curl "$S3_ENDPOINT/bkt/$k" >/dev/null
	for _ in $(seq 100); do
		grep -q "GET /bkt/$k " "$CEPH_DIR"/log/client.rgw.gw.log && return 0
		sleep 0.1
	done
	fail "radosgw's log did not show a request"
}
# rgw_requests METHOD [CLIENT]: radosgw's access lines of METHOD on bkt's
# blobs and chunks (from CLIENT's address), with their status.
rgw_requests() {
	rgw_log_sync
	grep -Eo "beast: [^ ]* ${2:-[0-9.]+} - [^[]*\[[^]]*\] \"$1 /bkt/(blobs|chunks)/b3/[^ ]* HTTP/1.1\" [0-9]+" \
		"$CEPH_DIR"/log/client.rgw.gw.log || true
}
# note TEXT: a measurement, printed after the checks as a TAP comment.
note() { echo "# $*" >>"$TMP/notes"; }
seeded_bytes() {
	python3 -c 'import random, sys; sys.stdout.buffer.write(random.Random(int(sys.argv[1])).randbytes(int(sys.argv[2])))' "$1" "$2"
}

# mount_on HOST MOUNTPOINT CACHE SERVICES...: mounts in HOST's network
# namespace and waits until the mount is live ($TMP/mpid-HOST: its daemon).
mount_on() {
	local h=$1 mnt=$2 cache=$3 rc=0
	shift 3
	mount_wait "$mnt" "$TMP/mount-$h.log" nsenter --net="/run/netns/$NS-$h" \
		"$STOREFS" mount "$@" --cache "$cache" "$mnt" || rc=$?
	echo "$MOUNT_PID" >"$TMP/mpid-$h"
	return $rc
}

# unmount_on HOST MOUNTPOINT: unmounts, waits for the daemon (started by
# another check's subshell: not our child) to exit.
unmount_on() {
	local pid
	pid=$(cat "$TMP/mpid-$1")
	fusermount3 -u "$2"
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
	fail "the mount daemon of host $1 did not exit"
}

# The tree: a static busybox (large: stored as chunks), a Python program
# with a module beside it, the same contents twice, seeded data.
make_tree() {
	local t=$1
	mkdir -p "$t/bin" "$t/lib" "$t/share" "$t/data"
	cp /bin/busybox "$t/bin/busybox"
	printf 'import greet\nprint(greet.hello("multihost"))\n' >"$t/bin/hello.py"
	printf 'def hello(who):\n    return "hello from " + who\n' >"$t/lib/greet.py"
	printf 'the same bytes\n' >"$t/share/a"
	printf 'the same bytes\n' >"$t/share/b"
	seeded_bytes 26 3000000 >"$t/data/big"
	seeded_bytes 27 100000 >"$t/data/mid"
	seeded_bytes 28 50000 >"$t/data/unseen-by-c"
	seeded_bytes 29 8000000 >"$t/data/big-c"
	ln -s ../bin/busybox "$t/share/sh"
}

# run_programs MOUNTED_PATH: the programs of the tree, run on host $H.
run_programs() {
	assert_eq "$(on "$H" "$1/bin/busybox" echo "ran-on-$H")" "ran-on-$H" "busybox from the store"
	assert_eq "$(on "$H" env PYTHONPATH="$1/lib" PYTHONDONTWRITEBYTECODE=1 python3 "$1/bin/hello.py")" \
		"hello from multihost" "python program from the store"
}

t_import_a() {
	make_tree "$TMP/tree"
	# issue 16's command, verbatim
	P=$(storefs_import "$TMP/tree")
	assert_eq "$P" "$(nix_store --add "$TMP/tree")" "store path"
	echo "$P" >"$TMP/P"
	local distinct big
	distinct=$(find "$TMP/tree" -type f -exec b3sum --no-names {} + | sort -u | wc -l)
	assert_eq "$(keys | grep -c '^blobs/')" "$distinct" "blob objects (one per distinct content)"
	big=$(keys | grep -c '^chunks/')
	[ "$big" -ge 10 ] || fail "$big chunk objects for files of 2, 3 and 8 MB"
	keys >"$TMP/keys.1"
	# each object was created by one PUT
	assert_eq "$(rgw_requests PUT | grep -c '" 200$')" "$(wc -l <"$TMP/keys.1")" "PUTs that created"
}

storefs_import() {
	"$STOREFS" import --blob-service-addr "s3://bkt?endpoint=$S3_ENDPOINT&region=us-east-1" \
		--directory-service-addr "$DATABASE_URL" --path-info-service-addr "$DATABASE_URL" "$1"
}

# Hosts B and C mount, each with its own cache, read the same paths and
# run the programs; they write nothing to the bucket.
t_hosts_read() {
	local p n h
	p=$(base "$(cat "$TMP/P")")
	for h in b c; do
		H=$h
		if [ $h = b ]; then
			mount_on b "$TMP/mnt-b" "$TMP/cache-b" "${SVC[@]}"
		else
			mount_on c "$TMP/mnt-c" "$TMP/cache-c" "${SVC_C[@]}"
		fi
		run_programs "$TMP/mnt-$h/$p"
		for f in bin/busybox lib/greet.py share/a share/b data/big; do
			cmp "$TMP/tree/$f" "$TMP/mnt-$h/$p/$f"
		done
		assert_eq "$(readlink "$TMP/mnt-$h/$p/share/sh")" ../bin/busybox "symlink"
		# the objects came over this host's own link
		n=$(rgw_requests GET "$NET\\.$([ $h = b ] && echo 2 || echo 3)" | wc -l)
		[ "$n" -ge 3 ] || fail "$n GETs from host $h's address"
	done
	# Nothing was written: every object still the one of the import.
	keys | cmp - "$TMP/keys.1"
	assert_eq "$(rgw_requests PUT "$NET\\.[23]" | wc -l)" 0 "PUTs from hosts B and C"
	# A second import on A uploads nothing.
	storefs_import "$TMP/tree" >/dev/null
	keys | cmp - "$TMP/keys.1"
	assert_eq "$(rgw_requests PUT | grep -c '" 200$')" "$(wc -l <"$TMP/keys.1")" "PUTs that created"
}

# PostgreSQL stopped under B's mount: a path B never looked up is EIO at
# once; what B has seen still reads and runs (kernel, cache); PostgreSQL
# back: the new path is seen without a remount.
t_pg_outage() {
	local p q
	p=$(base "$(cat "$TMP/P")")
	mkdir -p "$TMP/tree2"
	printf 'imported during the mount\n' >"$TMP/tree2/f"
	q=$(base "$(storefs_import "$TMP/tree2")")
	pg_stop
	H=b
	timeout 60 nsenter --net="/run/netns/$NS-b" python3 "$HERE/fs_check.py" errno EIO stat "$TMP/mnt-b/$q"
	run_programs "$TMP/mnt-b/$p"
	cmp "$TMP/tree/data/big" "$TMP/mnt-b/$p/data/big"
	# not read before, in a Directory the cache holds: its blob is in S3
	cmp "$TMP/tree/data/mid" "$TMP/mnt-b/$p/data/mid"
	pg_start
	assert_eq "$(timeout 60 cat "$TMP/mnt-b/$q/f")" "imported during the mount" "after the outage"
}

# C's link cut in the middle of reading a large file (chunks fetched as
# reads need them): a chunk not fetched yet is EIO after the deadline (no
# hang) and no wrong byte is served; an unseen file and an unseen path
# are EIO too; what C has read keeps working. The link back: everything
# reads, without a remount.
t_link_cut() {
	local p q t0
	p=$(base "$(cat "$TMP/P")")
	exec 7<"$TMP/mnt-c/$p/data/big-c"
	dd bs=4096 count=1 <&7 status=none | cmp -n 4096 - "$TMP/tree/data/big-c"
	ip link set "${VETH}c" down
	t0=$SECONDS
	# 4 KiB at 7.3 MB, through the same open file (beyond what reading
	# ahead may have fetched)
	if timeout 120 dd bs=4096 skip=1792 count=1 <&7 of="$TMP/piece" status=none 2>"$TMP/piece.err"; then
		# served from what C had (a chunk fetched whole): the right bytes
		dd bs=4096 skip=1792 count=1 if="$TMP/tree/data/big-c" status=none | cmp - "$TMP/piece"
		note "link cut: the read at 7.3 MB was served without the network"
	else
		grep -q "Input/output error" "$TMP/piece.err" || { cat "$TMP/piece.err"; fail "not EIO"; }
		note "link cut: a read of a chunk not fetched EIO after $((SECONDS - t0)) s (deadline $T26_TIMEOUT s)"
	fi
	t0=$SECONDS
	timeout 120 python3 "$HERE/fs_check.py" errno EIO open_read "$TMP/mnt-c/$p/data/unseen-by-c"
	note "link cut: an unseen file EIO after $((SECONDS - t0)) s"
	mkdir -p "$TMP/tree3"
	printf 'three\n' >"$TMP/tree3/f"
	q=$(base "$(storefs_import "$TMP/tree3")")
	t0=$SECONDS
	timeout 120 python3 "$HERE/fs_check.py" errno EIO stat "$TMP/mnt-c/$q"
	note "link cut: an unseen path's lookup EIO after $((SECONDS - t0)) s"
	H=c
	run_programs "$TMP/mnt-c/$p"
	ip link set "${VETH}c" up
	for _ in $(seq 100); do
		timeout 60 cmp "$TMP/tree/data/unseen-by-c" "$TMP/mnt-c/$p/data/unseen-by-c" 2>/dev/null && break
		sleep 0.2
	done
	cmp "$TMP/tree/data/unseen-by-c" "$TMP/mnt-c/$p/data/unseen-by-c"
	# the same open file, whole, after the outage
	python3 -c 'import os; os.lseek(7, 0, os.SEEK_SET)'
	timeout 60 cmp - "$TMP/tree/data/big-c" <&7
	exec 7<&-
	timeout 60 cmp "$TMP/tree/data/big-c" "$TMP/mnt-c/$p/data/big-c"
	assert_eq "$(timeout 60 cat "$TMP/mnt-c/$q/f")" three "a new path after the link is back"
}

# One OSD of three frozen (SIGSTOP: a hung host; SIGKILL alone is noticed
# at once on loopback, the kernel resetting its connections) while a host
# with an empty cache reads everything: the reads wait; the OSD killed
# during them, Ceph marks it down and they succeed with the right bytes.
t_osd_killed() {
	local p t0 pid osd
	p=$(base "$(cat "$TMP/P")")
	osd=$(cat "$CEPH_DIR/run/osd.1.pid")
	unmount_on b "$TMP/mnt-b"
	mount_on b "$TMP/mnt-b" "$TMP/cache-b2" "${SVC[@]}"
	kill -STOP "$osd"
	t0=$(date +%s.%N)
	timeout 300 nsenter --net="/run/netns/$NS-b" diff -r "$TMP/tree" "$TMP/mnt-b/$p" &
	pid=$!
	sleep 2
	kill -0 "$pid" || fail "the reads did not wait for the frozen OSD"
	kill -KILL "$osd"
	wait "$pid"
	note "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "osd.1 frozen, killed 2 s later: the tree read through an empty cache in %.1f s", b - a }')"
	cephc osd dump | grep -q "^osd.1 down" || fail "osd.1 not marked down"
	H=b
	run_programs "$TMP/mnt-b/$p"
	unmount_on b "$TMP/mnt-b"
}

# Bad input at startup (t17 checks the S3 store alone, t25 the schema
# with `list`): the mount on a host is refused with one line naming the
# cause, and nothing is mounted.
t_bad_input() {
	mkdir -p "$TMP/mnt-x"
	AWS_SECRET_ACCESS_KEY=wrong-secret expect_status 1 timeout 60 \
		nsenter --net="/run/netns/$NS-b" "$STOREFS" mount "${SVC[@]}" --cache "$TMP/cache-x" "$TMP/mnt-x"
	grep -q "secret access key is wrong" "$TMP/err" || fail "wrong secret not named"
	assert_eq "$(wc -l <"$TMP/err")" 1 "lines of the message"
	expect_status 1 timeout 60 nsenter --net="/run/netns/$NS-b" "$STOREFS" mount \
		--blob-service-addr "s3://nobkt?endpoint=$S3_ENDPOINT&region=us-east-1" \
		--directory-service-addr "$DATABASE_URL" --path-info-service-addr "$DATABASE_URL" \
		--cache "$TMP/cache-x" "$TMP/mnt-x"
	grep -q "bucket 'nobkt' does not exist" "$TMP/err" || fail "missing bucket not named"
	assert_eq "$(wc -l <"$TMP/err")" 1 "lines of the message"
	pg_sql "UPDATE storefs_schema_version SET version = 2"
	expect_status 1 timeout 60 nsenter --net="/run/netns/$NS-b" "$STOREFS" mount "${SVC[@]}" \
		--cache "$TMP/cache-x" "$TMP/mnt-x"
	pg_sql "UPDATE storefs_schema_version SET version = 1"
	grep -q "holds a storefs schema of version 2, newer than this storefs knows (1)" "$TMP/err" ||
		fail "newer schema not named"
	assert_eq "$(wc -l <"$TMP/err")" 1 "lines of the message"
	! grep -q " $TMP/mnt-x " /proc/mounts || fail "something was mounted"
	! grep -qF "$AWS_SECRET_ACCESS_KEY" "$TMP/err" || fail "a secret in a message"
}

check "import on host A (issue 16's command): each content one object, chunks for large files" t_import_a
check "hosts B and C (network namespaces) mount with their own caches, read, run programs; nothing uploaded again" t_hosts_read
check "PostgreSQL stopped under a mount: unseen paths EIO, seen ones work; back: no remount" t_pg_outage
check "host C's link cut mid-read: EIO after the deadline, no hang; link back: reads again" t_link_cut
check "a wrong secret, a missing bucket, a newer schema: the mount refused with one clear line" t_bad_input
check "one OSD of three killed during reads: reads stall, then succeed with the right bytes" t_osd_killed
[ -f "$TMP/notes" ] && cat "$TMP/notes"

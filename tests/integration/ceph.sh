# ceph.sh - a throwaway Ceph (1 mon, memstore OSDs: 1 unless CEPH_OSDS, radosgw, no mgr) on
# loopback for the S3 tests, from Debian's packages (scripts/install-deps).
# Sourced after lib.sh:
#	ceph_up		starts it under $TMP/ceph on free ports, creates an S3
#			user and exports S3_ENDPOINT, AWS_ACCESS_KEY_ID,
#			AWS_SECRET_ACCESS_KEY; call once per script (~3 s)
#			Knobs: CEPH_OSDS=N memstore OSDs (default 1; pools keep
#			min(N,3) copies), CEPH_RGW_ADDR the address radosgw
#			listens on (default 127.0.0.1; t26 gives one that its
#			network namespaces reach), CEPH_CONF_EXTRA lines added
#			to [global]
#	ceph_up_or_end	ceph_up for a test script: its '#' lines shown; if
#			it fails, one "not ok - ceph comes up" with the logs'
#			tails, and the script ends
#	ceph_down	kills its daemons (by their pid files) and waits for them
#	s3curl ARGS...	curl with SigV4 as that user (for the test's own
#			bucket operations and tampering)
# Use `trap 'ceph_down; cleanup' EXIT` so the daemons die with the script.
# The settings are explained in ../shared/reference/backends.md §1.4.
# CEPH_MEMSTORE_BYTES: the OSD's capacity (default 1 GiB; bench/s3pg wants more).
CEPH_DIR=$TMP/ceph
CEPH_OSDS=${CEPH_OSDS:-1}
CEPH_RGW_ADDR=${CEPH_RGW_ADDR:-127.0.0.1}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

ceph_conf() { # MON_V2 MON_V1 RGW_PORT
	cat <<EOF2
[global]
fsid = $(cat /proc/sys/kernel/random/uuid)
mon initial members = a
mon host = [v2:127.0.0.1:$1,v1:127.0.0.1:$2]
public addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
run dir = $CEPH_DIR/run
admin socket = $CEPH_DIR/run/\$name.asok
pid file = $CEPH_DIR/run/\$name.pid
log file = $CEPH_DIR/log/\$name.log
log to stderr = false
osd pool default size = $((CEPH_OSDS < 3 ? CEPH_OSDS : 3))
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail warn = 1
mon data avail crit = 0
auth allow insecure global id reclaim = false
paxos propose interval = 0.05
paxos min wait = 0.01
${CEPH_CONF_EXTRA:-}
[client.admin]
keyring = $CEPH_DIR/admin.keyring
[mon]
mon data = $CEPH_DIR/mon.\$id
[osd]
osd data = $CEPH_DIR/osd.\$id
keyring = $CEPH_DIR/osd.\$id/keyring
osd objectstore = memstore
memstore device bytes = ${CEPH_MEMSTORE_BYTES:-1073741824}
[client.rgw.gw]
keyring = $CEPH_DIR/rgw.keyring
rgw data = $CEPH_DIR/rgw
rgw frontends = beast endpoint=$CEPH_RGW_ADDR:$3 tcp_nodelay=1
EOF2
}

# ceph_wait SECONDS CMD...: CMD until it succeeds, 0.2 s apart, for at
# most SECONDS in all.
ceph_wait() {
	local end=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.2
	done
}

cephc() { ceph -c "$CEPH_DIR/ceph.conf" --connect-timeout 10 "$@"; }

ceph_mon_up() {
	local c=$CEPH_DIR/ceph.conf fsid
	fsid=$(awk '/^fsid/ { print $3 }' "$c")
	ceph-authtool --create-keyring "$CEPH_DIR/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
	ceph-authtool --create-keyring "$CEPH_DIR/admin.keyring" --gen-key -n client.admin \
		--cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
	ceph-authtool "$CEPH_DIR/mon.keyring" --import-keyring "$CEPH_DIR/admin.keyring" >/dev/null
	monmaptool --create --fsid "$fsid" --addv a "$(awk -F' = ' '/^mon host/ { print $2 }' "$c")" \
		"$CEPH_DIR/monmap" >/dev/null
	ceph-mon -c "$c" -i a --mkfs --monmap "$CEPH_DIR/monmap" --keyring "$CEPH_DIR/mon.keyring"
	ceph-mon -c "$c" -i a
	ceph_wait 60 cephc mon stat || fail "ceph-mon did not answer"
}

ceph_osd_new() { # ID
	local c=$CEPH_DIR/ceph.conf uuid secret
	uuid=$(cat /proc/sys/kernel/random/uuid)
	secret=$(ceph-authtool --gen-print-key)
	mkdir -p "$CEPH_DIR/osd.$1"
	ceph-authtool --create-keyring "$CEPH_DIR/osd.$1/keyring" --name "osd.$1" --add-key "$secret" >/dev/null
	printf '{"cephx_secret": "%s"}' "$secret" >"$CEPH_DIR/osd.$1.secrets.json"
	cephc osd new "$uuid" -i "$CEPH_DIR/osd.$1.secrets.json" >/dev/null
	ceph-osd -c "$c" -i "$1" --mkfs --osd-uuid "$uuid" 2>"$CEPH_DIR/log/osd-mkfs.$1.err"
	ceph-osd -c "$c" -i "$1" 2>/dev/null
}

ceph_osd_up() {
	local i
	for i in $(seq 0 $((CEPH_OSDS - 1))); do ceph_osd_new "$i"; done
	ceph_wait 60 sh -c "ceph -c '$CEPH_DIR/ceph.conf' osd stat -f json | grep -q '\"num_up_osds\":$CEPH_OSDS,'" ||
		fail "ceph-osd did not come up"
}

ceph_rgw_up() {
	local c=$CEPH_DIR/ceph.conf port=$1
	cephc auth get-or-create client.rgw.gw mon 'allow rw' osd 'allow rwx' \
		-o "$CEPH_DIR/rgw.keyring" >/dev/null 2>&1
	radosgw -c "$c" -n client.rgw.gw
	ceph_wait 60 curl -sf "http://$CEPH_RGW_ADDR:$port/" || fail "radosgw did not answer"
	export AWS_ACCESS_KEY_ID=STOREFSTESTKEY000000
	export AWS_SECRET_ACCESS_KEY="test${RANDOM}x${RANDOM}x${RANDOM}secret"
	radosgw-admin -c "$c" user create --uid=ci --display-name=ci --access-key="$AWS_ACCESS_KEY_ID" \
		--secret-key="$AWS_SECRET_ACCESS_KEY" >/dev/null 2>"$CEPH_DIR/log/user.err"
	export S3_ENDPOINT=http://$CEPH_RGW_ADDR:$port
}

ceph_up() {
	local t0 rgw
	t0=$(date +%s.%N)
	mkdir -p "$CEPH_DIR"/{run,log,mon.a,rgw}
	rgw=$(free_port)
	ceph_conf "$(free_port)" "$(free_port)" "$rgw" >"$CEPH_DIR/ceph.conf"
	ceph_mon_up && ceph_osd_up && ceph_rgw_up "$rgw" || return 1
	# the credentials reach curl through a file, not its command line (ps)
	(umask 077 && printf 'user = "%s:%s"\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" \
		>"$CEPH_DIR/curl.conf")
	awk -v a="$t0" -v b="$(date +%s.%N)" \
		'BEGIN { printf "# ceph (mon, memstore osd, radosgw) up in %.1f s\n", b - a }'

}

# No grace: the cluster is thrown away, memstore has nothing to flush.
ceph_down() {
	local p pid pids=()
	for p in "$CEPH_DIR"/run/*.pid; do
		[ -f "$p" ] || continue
		pid=$(cat "$p")
		# only a daemon of this cluster (its command line names our conf)
		if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$CEPH_DIR/ceph.conf"; then
			kill -KILL "$pid" && pids+=("$pid")
		fi
	done
	for pid in "${pids[@]}"; do
		while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
	done
	return 0
}

s3curl() {
	curl -s -K "$CEPH_DIR/curl.conf" --aws-sigv4 "aws:amz:us-east-1:s3" \
		-H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
}

ceph_up_or_end() {
	if ! ceph_up >"$TMP/ceph-up.log" 2>&1; then
		echo "not ok - ceph comes up"
		sed 's/^/#   /' "$TMP/ceph-up.log" "$CEPH_DIR"/log/*.log 2>/dev/null | tail -n 40
		exit 0
	fi
	grep '^#' "$TMP/ceph-up.log"
}

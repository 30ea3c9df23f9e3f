#!/bin/bash
# t35-grpc-daemon.sh - `storefs daemon` (issue 15) against two independent
# gRPC implementations on loopback: Python's grpcio (grpc_peer.py) and
# Node's @grpc/grpc-js (grpc_peer.js, with raw HTTP/2 for input no library
# sends). Every RPC under both package names (snix.* and tvix.*), status
# codes, the reference vectors byte for byte, empty and large blobs,
# deadlines, cancelled streams, malformed and hostile input (a '/' in a
# name, a 19-byte reference, 4 GiB length prefixes, a flood), Health,
# server reflection, 16 readers at once, a native-size store, TCP and unix
# sockets, read-only refusal, and a graceful stop on SIGTERM.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
shopt -s inherit_errexit

export VECTORS=$ROOT/tests/data/vectors.json GRPC_PY_GEN=$TMP/py
PEER_PY=$HERE/grpc_peer.py
PEER_JS=$HERE/grpc_peer.js
SRC=$ROOT/docs # a tree imported before the daemon starts
LARGE_MIB=${GRPC_LARGE_MIB:-100} # issue 15's size; +3 s (gcc), +4 s (ASan) over 32

# start_daemon STORE SOCKET [daemon options...]: a daemon on 127.0.0.1 (a
# free port) and on unix:SOCKET; TCP_T and UNIX_T are the peers' targets,
# DAEMON_PID its pid.
start_daemon() {
	local store=$1 sock=$2 out=$TMP/daemon.out
	shift 2
	: >"$out"
	"$STOREFS" daemon --store "$store" --listen 127.0.0.1:0 --listen "unix:$sock" "$@" \
		>"$out" 2>"$TMP/daemon.log" &
	DAEMON_PID=$!
	DAEMON_PIDS+=("$DAEMON_PID")
	for _ in $(seq 200); do
		[ "$(wc -l <"$out")" = 2 ] && break
		kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$TMP/daemon.log" >&2; fail "daemon exited"; }
		sleep 0.05
	done
	TCP_T=$(sed -n 's,^grpc+http://,,p' "$out")
	UNIX_T=unix:$(sed -n 's,^grpc+unix://,,p' "$out")
	[ -n "$TCP_T" ] && [ "$UNIX_T" = "unix:$sock" ] || fail "daemon printed: $(cat "$out")"
}

# stop_daemon: SIGTERM, and it must exit 0.
stop_daemon() {
	kill -TERM "$DAEMON_PID"
	wait "$DAEMON_PID" || fail "daemon exited $?"
}

pyp() { "$GRPC_PY" "$PEER_PY" "$@"; }
jsp() { node "$PEER_JS" "$@"; }

setup() {
	# A GC root: t_stalled_put collects.
	sf import --store "$TMP/store" --add-root docs "$SRC" >"$TMP/imported" || return 1
	start_daemon "$TMP/store" "$TMP/d.sock" --allow-writes
}

# Each peer is set up in a check of its own, so that one peer's failed setup
# (npm cannot reach or trust its registry, grpc_tools missing) is reported by
# name and does not hide the other peer's checks. A check of a peer whose
# setup failed is "not ok" too, never skipped.
PEER_OK=()
peer_setup() { # NAME KEY FUNCTION...
	local name=$1 key=$2
	shift 2
	# In this shell, not a subshell: grpc_node_setup exports NODE_PATH.
	if "$@" >"$TMP/setup-$key.log" 2>&1; then
		PEER_OK+=("$key")
		[[ $name != *"${STOREFS_CHECK:-}"* ]] || echo "ok - $name"
	elif [[ $name == *"${STOREFS_CHECK:-}"* ]]; then
		echo "not ok - $name"
		tail -n 30 "$TMP/setup-$key.log" | sed 's/^/#   /'
	fi
}

peer_check() { # KEY NAME FUNCTION...
	local key=$1 name=$2
	shift 2
	if [[ " ${PEER_OK[*]} " == *" $key "* ]]; then
		check "$name" "$@"
	elif [[ $name == *"${STOREFS_CHECK:-}"* ]]; then
		echo "not ok - $name"
		echo "#   the $key peer's setup failed (its check above says why)"
	fi
}
pcheck() { peer_check python "$@"; }
ncheck() { peer_check node "$@"; }

# A registry whose certificate chain ends in a CA npm does not know (what a
# root without the workplace's CA bundle sees): the setup must fail naming
# npm's error, SELF_SIGNED_CERT_IN_CHAIN, and how to fix it.
t_npm_error_named() {
	local d=$TMP/tls port
	mkdir -p "$d"
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=test-ca -keyout "$d/ca.key" \
		-out "$d/ca.pem" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout "$d/leaf.key" \
		-out "$d/leaf.csr" 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1\n' >"$d/ext"
	openssl x509 -req -in "$d/leaf.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
		-days 1 -extfile "$d/ext" -out "$d/leaf.pem" 2>/dev/null
	cat "$d/leaf.pem" "$d/ca.pem" >"$d/chain.pem"
	python3 -c '
import http.server, ssl, sys
srv = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
open(sys.argv[3], "w").write(str(srv.server_address[1]))
srv.timeout = 30
srv.handle_request()' "$d/chain.pem" "$d/leaf.key" "$d/port" &
	DAEMON_PIDS+=($!)
	for _ in $(seq 100); do [ -s "$d/port" ] && break; sleep 0.05; done
	port=$(cat "$d/port")
	if GRPC_NODE_DIR=$TMP/npm-bad npm_config_registry=https://127.0.0.1:$port/ \
		npm_config_cafile= npm_config_fetch_retries=0 grpc_node_setup 2>"$TMP/err"; then
		fail "npm installed from an untrusted registry"
	fi
	cat "$TMP/err"
	grep -q "the Node peer's setup: npm install .* failed with npm error SELF_SIGNED_CERT_IN_CHAIN" \
		"$TMP/err"
	grep -q "hint: .*npm config set cafile" "$TMP/err"
}

t_listeners() {
	grep -qx 'grpc+http://127.0.0.1:[0-9]*' "$TMP/daemon.out"
	grep -qx "grpc+unix://$TMP/d.sock" "$TMP/daemon.out"
	pyp "$TCP_T" health
	pyp "$UNIX_T" health
}

t_node_health() {
	jsp "$TCP_T" health
	jsp "$UNIX_T" health
}

t_imported() {
	pyp "$TCP_T" imported "$(basename "$(cat "$TMP/imported")")" "$SRC"
}

t_defaults() {
	# The default listener is [::1]:8000; a second daemon there is refused
	# cleanly when the port is taken, which is what we can check without
	# owning it.
	sf daemon --help | grep -q -- '--listen ADDR\]\.\.\.'
	sf daemon --help | grep -q '\[::1\]:8000'
	expect_fail sf daemon --store "$TMP/store" --listen "$TCP_T"
	grep -q "cannot listen on '$TCP_T'" "$TMP/err"
	expect_status 1 sf daemon --store "$TMP/store" --listen nonsense
	grep -q "not HOST:PORT or unix:PATH" "$TMP/err"
}

t_read_only() {
	local pid
	"$STOREFS" daemon --store "$TMP/store" --listen "unix:$TMP/ro.sock" >"$TMP/ro.out" 2>&1 &
	pid=$!
	DAEMON_PIDS+=("$pid")
	for _ in $(seq 200); do [ -s "$TMP/ro.out" ] && break; sleep 0.05; done
	pyp "unix:$TMP/ro.sock" read-only
	pyp "unix:$TMP/ro.sock" imported "$(basename "$(cat "$TMP/imported")")" "$SRC"
	kill -TERM "$pid"
	wait "$pid"
}

# storefs's own client stores (grpc+unix://, grpc+http://) on the daemon:
# reads, a copy and an import into a writable daemon, a mount.
t_storefs_client() {
	local p q w pid g
	p=$(cat "$TMP/imported")
	assert_eq "$(sf --store "grpc+unix://$TMP/d.sock" path-info "$p")" \
		"$(sf --store "$TMP/store" path-info "$p")"
	assert_eq "$(sf --store "grpc+http://$TCP_T" nar "$p" | sha256sum)" \
		"$(sf --store "$TMP/store" nar "$p" | sha256sum)"
	w=$TMP/w
	"$STOREFS" daemon --store "$w" --allow-writes --listen "unix:$TMP/w.sock" >"$TMP/w.out" 2>&1 &
	pid=$!
	DAEMON_PIDS+=("$pid")
	for _ in $(seq 200); do [ -s "$TMP/w.out" ] && break; sleep 0.05; done
	g=grpc+unix://$TMP/w.sock
	sf copy --from "$TMP/store" --to "$g" -r "$p"
	q=$(sf --store "$g" import "$ROOT/daemon")
	assert_eq "$q" "$(sf --store "$TMP/local-daemon" import "$ROOT/daemon")"
	sf --store "$g" verify --check-contents
	start_mount "$g" "$TMP/mnt"
	diff -r "$SRC" "$TMP/mnt/$(basename "$p")"
	diff -r "$ROOT/daemon" "$TMP/mnt/$(basename "$q")"
	stop_mount "$TMP/mnt"
	kill -TERM "$pid"
	wait "$pid"
	sf --store "$w" verify --check-contents
}

# A client that stalls in the middle of a blob Put holds no lock: a
# collection runs meanwhile, and the Put completes afterwards.
t_stalled_put() {
	local put
	rm -f "$TMP/started" "$TMP/go"
	pyp "$TCP_T" slow-put snix "$TMP/go" "$TMP/started" &
	put=$!
	for _ in $(seq 200); do [ -e "$TMP/started" ] && break; sleep 0.05; done
	[ -e "$TMP/started" ] || fail "the Put did not start"
	timeout 20 "$STOREFS" gc --store "$TMP/store"
	kill -0 "$put" || fail "the Put ended before the collection did"
	touch "$TMP/go"
	wait "$put"
}

# A store that counts DirectoryEntry.size as snix does (docs/castore.md):
# the daemon takes and serves vector set N, and refuses set S's sizes.
t_native() {
	local pid
	sf import --store "$TMP/native" --dir-size native "$SRC" >"$TMP/native.path"
	"$STOREFS" daemon --store "$TMP/native" --allow-writes --listen "unix:$TMP/n.sock" \
		>"$TMP/n.out" 2>&1 &
	pid=$!
	DAEMON_PIDS+=("$pid")
	for _ in $(seq 200); do [ -s "$TMP/n.out" ] && break; sleep 0.05; done
	pyp "unix:$TMP/n.sock" directories native
	pyp "unix:$TMP/n.sock" imported "$(basename "$(cat "$TMP/native.path")")" "$SRC"
	if pyp "unix:$TMP/n.sock" directories spec 2>"$TMP/err"; then
		fail "a native store took set S's sizes"
	fi
	grep -q "INVALID_ARGUMENT" "$TMP/err"
	kill -TERM "$pid"
	wait "$pid"
}

# SIGTERM while a Put is still sending: that call completes, new calls are
# refused, the daemon exits 0. (Its own daemon: only a child can be waited
# for.)
t_graceful_stop() {
	local put
	start_daemon "$TMP/store" "$TMP/d2.sock" --allow-writes -v
	rm -f "$TMP/started" "$TMP/stopped"
	pyp "$TCP_T" slow-put snix "$TMP/stopped" "$TMP/started" &
	put=$!
	for _ in $(seq 200); do [ -e "$TMP/started" ] && break; sleep 0.05; done
	[ -e "$TMP/started" ] || fail "the Put did not start"
	kill -TERM "$DAEMON_PID"
	touch "$TMP/stopped"
	if pyp "$UNIX_T" health snix 2>"$TMP/err"; then
		fail "a new call was answered after SIGTERM"
	fi
	wait "$put" || fail "the Put in flight failed"
	wait "$DAEMON_PID" || fail "daemon exited $?"
	grep -q "stopping" "$TMP/daemon.log"
	[ ! -e "$TMP/d2.sock" ] || fail "the unix socket was left behind"
}

if ! setup >"$TMP/setup.log" 2>&1; then
	cat "$TMP/setup.log" >&2
	echo "not ok - the daemon starts on a store"
	exit 0
fi
peer_setup "Python peer: grpcio stubs generated from proto/ (grpc_tools)" python \
	grpc_py_gen "$GRPC_PY_GEN"
peer_setup "Node peer: @grpc/grpc-js installed with npm" node grpc_node_setup
check "Node peer setup: a failed npm install names npm's error (SELF_SIGNED_CERT_IN_CHAIN)" \
	t_npm_error_named
pcheck "daemon prints a URL per listener; Health over TCP and unix (Python)" t_listeners
check "--listen: the help's default, a taken port and nonsense refused" t_defaults
pcheck "Python: blob vectors: Put gives the BLAKE3, Read the bytes, Stat" pyp "$TCP_T" blobs
pcheck "Python: blob errors: bad digest lengths INVALID_ARGUMENT, unknown NOT_FOUND" \
	pyp "$UNIX_T" blob-errors
pcheck "Python: the empty blob (no message and one empty message)" pyp "$TCP_T" empty-blob
pcheck "Python: a ${LARGE_MIB} MiB blob streams both ways in chunks" pyp "$UNIX_T" large-blob "$LARGE_MIB"
pcheck "Python: deadlines exceeded on Read and Put; the late Put stores nothing" pyp "$TCP_T" deadline
pcheck "Python: cancelled Read and Put streams; the cancelled Put stores nothing" pyp "$TCP_T" cancel
pcheck "Python: Directory vectors (set S) byte-exact, closures root first" pyp "$TCP_T" directories spec
pcheck "Python: bad Directories ('/' in a name, order, dangling, malformed) INVALID_ARGUMENT" \
	pyp "$UNIX_T" dir-errors spec
pcheck "Python: PathInfo vector byte-exact, List, CalculateNAR of the entry vectors" \
	pyp "$TCP_T" path-info spec
pcheck "Python: PathInfo Put refuses a 19-byte reference, wrong NAR, missing root, other content" \
	pyp "$TCP_T" path-info-errors
pcheck "Python: server reflection v1 and v1alpha: services listed, descriptors usable" \
	pyp "$UNIX_T" reflection snix
pcheck "Python: an imported tree through List, Get, CalculateNAR, recursive Get, Read" t_imported
ncheck "Node: Health over TCP and unix" t_node_health
ncheck "Node: Health, Check and unknown services" jsp "$UNIX_T" health
ncheck "Node: blob vectors" jsp "$TCP_T" blobs
ncheck "Node: error statuses ('/' in a name, 19-byte digest, unknown objects)" jsp "$TCP_T" errors
ncheck "Node: the empty blob" jsp "$UNIX_T" empty-blob
ncheck "Node: a ${LARGE_MIB} MiB blob" jsp "$TCP_T" large-blob "$LARGE_MIB"
ncheck "Node: deadlines exceeded on Read and Put" jsp "$TCP_T" deadline
ncheck "Node: cancelled Read and Put streams" jsp "$UNIX_T" cancel
ncheck "Node: Directory and PathInfo vectors byte-exact, CalculateNAR" jsp "$TCP_T" vectors spec
ncheck "Node raw HTTP/2: 4 GiB length prefix, truncated frame, malformed messages" jsp "$TCP_T" raw
ncheck "Node raw HTTP/2: a 4 GiB message is cut off at the memory quota" jsp "$UNIX_T" flood 400
check "storefs's grpc+unix:// and grpc+http:// stores on the daemon: read, copy, import, mount" \
	t_storefs_client
pcheck "Python: 16 clients read a blob at once, every byte right" pyp "$TCP_T" parallel 16 4
pcheck "a Put stalled half way does not hold up storefs gc" t_stalled_put
pcheck "a native-size store: Directory vectors set N through the daemon" t_native
pcheck "a read-only daemon refuses every Put (PERMISSION_DENIED) and serves reads" t_read_only
pcheck "SIGTERM: the call in flight completes, new calls are refused, exit 0" t_graceful_stop

#!/bin/bash
# t58-install.sh - make install: the expected files under DESTDIR, man
# pages that render, units systemd-analyze accepts, bash completion.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
shopt -s inherit_errexit

t_destdir() {
	make -s -C "$ROOT" install DESTDIR="$TMP/dest" PREFIX=/usr/local >/dev/null
	(cd "$TMP/dest" && find . -type f | sort) >"$TMP/files"
	cat "$TMP/files"
	for f in ./usr/local/bin/storefs \
		./usr/local/lib/systemd/system/storefs-mount@.service \
		./usr/local/lib/systemd/system/storefs-serve.service \
		./usr/local/lib/systemd/system/storefs-daemon.service \
		./usr/local/share/bash-completion/completions/storefs \
		./usr/local/share/man/man1/storefs.1; do
		grep -qx "$f" "$TMP/files" || fail "missing $f"
	done
	# One page per command `storefs --help` lists.
	for c in $("$STOREFS" --help | awk '/^Commands:/ {on=1; next} on && /^  [a-z]/ {print $1} on && /^$/ {on=0}'); do
		grep -qx "./usr/local/share/man/man1/storefs-$c.1" "$TMP/files" || fail "no page for $c"
	done
	grep -q "ExecStart=/usr/local/bin/storefs mount" \
		"$TMP/dest/usr/local/lib/systemd/system/storefs-mount@.service"
}

t_man() {
	local p n=0
	for p in "$TMP"/dest/usr/local/share/man/man1/*.1; do
		MANWIDTH=80 man -l "$p" >"$TMP/page" 2>"$TMP/err"
		[ ! -s "$TMP/err" ] || { cat "$TMP/err"; fail "man -l $p warned"; }
		grep -q "^NAME" "$TMP/page" && grep -q "usage: storefs" "$TMP/page" || fail "$p"
		n=$((n + 1))
	done
	[ "$n" -ge 15 ] || fail "only $n pages"
	MANPATH=$TMP/dest/usr/local/share/man man storefs-mount | grep -q "storefs-mount - "
}

t_units() {
	local pfx=$TMP/pfx
	# Installed where the units point, so ExecStart names a real binary.
	"$ROOT/scripts/install" "$pfx" >/dev/null
	mkdir -p "$TMP/units"
	cp "$pfx"/lib/systemd/system/*.service "$TMP/units/"
	ln -s storefs-mount@.service "$TMP/units/storefs-mount@mnt-store.service"
	(cd "$TMP/units" && MANPATH=$pfx/share/man systemd-analyze verify \
		./storefs-serve.service ./storefs-daemon.service ./storefs-mount@mnt-store.service)
}

# storefs-mount@.service is Type=notify: the mount sends READY=1 to
# $NOTIFY_SOCKET, once the mount is live (a datagram socket plays systemd).
t_notify() {
	local s=$TMP/ns m=$TMP/nm pid
	grep -qx "Type=notify" "$ROOT/dist/systemd/storefs-mount@.service"
	mkdir -p "$TMP/nsrc" && echo x >"$TMP/nsrc/f"
	sf import --store "$s" "$TMP/nsrc" >/dev/null
	python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(30)
msg = s.recv(4096).decode()
live = any(l.split()[1] == sys.argv[2] for l in open("/proc/mounts"))
print(msg)
print("LIVE=%d" % live)
' "$TMP/notify.sock" "$m" >"$TMP/notified" &
	pid=$!
	DAEMON_PIDS+=("$pid")
	for _ in $(seq 100); do [ -S "$TMP/notify.sock" ] && break; sleep 0.05; done
	NOTIFY_SOCKET=$TMP/notify.sock start_mount "$s" "$m"
	wait "$pid"
	cat "$TMP/notified"
	stop_mount "$m"
	grep -qx "READY=1" "$TMP/notified"
	grep -qx "STATUS=mounted at $m" "$TMP/notified"
	grep -qx "LIVE=1" "$TMP/notified"
}

t_completion() {
	PATH=$(dirname "$STOREFS"):$PATH bash -c '
		. "$1"
		COMP_WORDS=(storefs g); COMP_CWORD=1; _storefs; echo "${COMPREPLY[*]}"
		COMP_WORDS=(storefs gc --dr); COMP_CWORD=2; _storefs; echo "${COMPREPLY[*]}"
	' _ "$TMP/dest/usr/local/share/bash-completion/completions/storefs" >"$TMP/out"
	cat "$TMP/out"
	assert_eq "$(sed -n 1p "$TMP/out")" "gc"
	assert_eq "$(sed -n 2p "$TMP/out")" "--dry-run"
}

check "make install DESTDIR=... installs the binary, pages, completion, units" t_destdir
check "man -l renders every page; man finds them by name" t_man
check "systemd-analyze verify accepts the units" t_units
check "bash completion: commands and options" t_completion
check "mount tells \$NOTIFY_SOCKET READY=1 once the mount is live (Type=notify)" t_notify

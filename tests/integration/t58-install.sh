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

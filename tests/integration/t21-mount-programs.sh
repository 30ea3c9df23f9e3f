#!/bin/bash
# t21-mount-programs.sh - the end-to-end user test: import real programs
# with their shared libraries, mount the store and run them from the mount
# (busybox through chroot; python3 through the mounted dynamic loader with
# its standard library read from the mount).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
shopt -s inherit_errexit

S=$TMP/store
M=$TMP/mnt
SRC=$TMP/src

t_busybox_chroot() {
	local bb t=$SRC/busybox p
	bb=$(command -v busybox) || { echo "# skip: busybox not installed"; return 0; }
	mkdir -p "$t/bin" "$t/etc"
	cp "$bb" "$t/bin/busybox"
	for a in sh echo ls cat wc sha256sum; do ln -s busybox "$t/bin/$a"; done
	echo "from the store" >"$t/etc/motd"
	p=$(sf import --store "$S" "$t")
	start_mount "$S" "$M"
	local r=$M/$(basename "$p")
	out=$(chroot "$r" /bin/sh -c 'cat /etc/motd; ls /bin | wc -l; echo ok | sha256sum')
	assert_eq "$out" "from the store
7
$(echo ok | sha256sum)"
	stop_mount "$M"
}

t_python_from_mount() {
	local py=/usr/bin/python3 t=$SRC/python ver p r out
	[ -x "$py" ] && [ -d /usr/lib/python3 ] || { echo "# skip: no Debian python3"; return 0; }
	ver=$(python_tree "$t" "$py")
	p=$(sf import --store "$S" "$t")
	start_mount "$S" "$M"
	r=$M/$(basename "$p")
	out=$(PYTHONHOME=$r PYTHONDONTWRITEBYTECODE=1 "$r/lib/ld-linux-x86-64.so.2" \
		--library-path "$r/lib" "$r/bin/python3" -S -c '
import sys, json, hashlib, zlib, decimal
print(json.dumps({"sha": hashlib.sha256(b"x").hexdigest()[:8], "z": zlib.crc32(b"x")}))
print(json.__file__.startswith(sys.prefix), decimal.Decimal("1.1") + 1)
print(sys.prefix)')
	assert_eq "$out" "{\"sha\": \"2d711642\", \"z\": 2363233923}
True 2.1
$r"
	stop_mount "$M"
}

check "busybox with applet symlinks runs in a chroot of the mount" t_busybox_chroot
check "python3 runs from the mount via its mounted loader and stdlib" t_python_from_mount

#!/bin/bash
# t70-virtiofs.sh - `storefs virtiofs` serving a real virtual machine: the
# Debian kernel boots in QEMU (TCG; KVM only with STOREFS_TEST_KVM=1, see
# accel) from a busybox initramfs built here, mounts the store over
# virtio-fs and compares what it sees with the host's FUSE mount of the same
# store (attributes and inode numbers, contents, errors), runs programs from
# it and powers off; the daemon must then exit with status 0. A scripted
# front-end (vhost_user_frontend.py) plays a hostile guest and a broken QEMU.
# Every wait is bounded.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
shopt -s inherit_errexit

S=$TMP/store
SRC=$TMP/src
M=$TMP/mnt
SOCK=$TMP/vfs.sock
IR=$TMP/initramfs
CONSOLE=$TMP/console.log
VM_SECONDS=300 # one boot takes ~15 s under TCG on a busy 2-core machine

# --- helpers ---

# exited PID: the process is gone or a zombie (kill -0 succeeds on those).
exited() {
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
	[[ $st == Z* ]]
}

# wait_exit PID SECONDS: waits for the child PID and sets EXIT_STATUS.
wait_exit() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		if exited "$1"; then
			EXIT_STATUS=0
			wait "$1" || EXIT_STATUS=$?
			return 0
		fi
		sleep 0.1
	done
	fail "process $1 still runs after $2 s"
}

# Each check runs in a subshell: what it starts, it stops, even when it
# fails (lib.sh's cleanup only knows the main shell's daemons).
stop_started() {
	local p
	for p in ${VPID:-} ${QPID:-}; do
		kill -TERM "$p" 2>/dev/null || true
	done
}

# start_virtiofs [options]: the daemon on $SOCK, waiting for the socket.
start_virtiofs() {
	local i
	rm -f "$SOCK"
	"$STOREFS" virtiofs --store "$S" --socket "$SOCK" "$@" >"$TMP/virtiofs.log" 2>&1 &
	VPID=$!
	trap stop_started EXIT
	for ((i = 0; i < 100; i++)); do
		[ -S "$SOCK" ] && return 0
		exited "$VPID" && break
		sleep 0.05
	done
	cat "$TMP/virtiofs.log" >&2
	fail "storefs virtiofs did not come up"
}

# --- the store: a tree with every kind of entry, and busybox ---

setup_store() {
	local t=$SRC/tree
	mkdir -p "$t/sub/deeper" "$t/empty-dir" "$SRC/bb/bin"
	echo hello >"$t/a"
	echo hello >"$t/same-as-a"
	cp "$t/a" "$t/a-exec"
	chmod +x "$t/a-exec"
	printf '#!/bin/sh\necho hi from a store script\n' >"$t/run.sh"
	chmod +x "$t/run.sh"
	ln -s a "$t/link"
	ln -s /nix/store/elsewhere/bin "$t/abs-link"
	: >"$t/empty"
	echo deep >"$t/sub/deeper/x"
	head -c 300001 /dev/urandom >"$t/sub/big.bin"
	cp "$BUSYBOX" "$SRC/bb/bin/busybox"
	TREE=$(basename "$(sf import --store "$S" "$t")")
	BB=$(basename "$(sf import --store "$S" "$SRC/bb")")
}

# The scripts run on the host's FUSE mount and in the guest alike, with the
# same (static) busybox and fsprobe: their outputs must be equal.
write_scripts() {
	local d=$1
	mkdir -p "$d"
	cat >"$d/listing.sh" <<EOF
cd "\$1" || exit 1
busybox find $TREE $BB | busybox sort | busybox xargs busybox stat -c '%n %f %i %s %b %o %h %u %g %X %Y %Z' .
EOF
	cat >"$d/probes.sh" <<EOF
cd "\$1" || exit 1
P=\$2
\$P readdir .
\$P stat 00000000000000000000000000000000-nope
\$P stat not-a-store-path
\$P creat new-at-root
\$P readdir $TREE
\$P readdir $TREE/sub/deeper/x
\$P open-r $TREE/a
\$P open-r $TREE/sub
\$P open-w $TREE/a
\$P creat $TREE/new
\$P mkdir $TREE/newdir
\$P mkdir $TREE/sub
\$P rmdir $TREE/sub
\$P unlink $TREE/a
\$P rename $TREE/a $TREE/b
\$P symlink $TREE/l2
\$P chmod $TREE/a
\$P truncate $TREE/a
\$P setxattr $TREE/a
\$P getxattr $TREE/a user.storefs.castore.blob.digest
\$P getxattr $TREE/sub user.storefs.castore.directory.digest
\$P getxattr $TREE/a user.nope
\$P listxattr $TREE/a
\$P listxattr $TREE/sub
\$P readlink $TREE/link
\$P readlink $TREE/abs-link
\$P readlink $TREE/a
\$P stat $TREE/sub/nope
\$P statfs .
EOF
	cat >"$d/content.sh" <<'EOF'
cd "$1" || exit 1
busybox find . -type f | busybox sort | busybox xargs busybox sha256sum
EOF
}

# What the host's FUSE mount shows: the expected outputs for the guest.
expect_from_fuse_mount() {
	local e=$IR/expect
	write_scripts "$e"
	start_mount "$S" "$M"
	"$BUSYBOX" sh "$e/listing.sh" "$M" >"$e/attrs.txt"
	"$BUSYBOX" sh "$e/probes.sh" "$M" "$FSPROBE" >"$e/probes.txt"
	stop_mount "$M"
	"$BUSYBOX" sh "$e/content.sh" "$SRC/tree" >"$e/content-tree.txt"
	"$BUSYBOX" sh "$e/content.sh" "$SRC/bb" >"$e/content-bb.txt"
	echo "$TREE" >"$e/tree"
	echo "$BB" >"$e/bb"
}

# --- the guest ---

# The newest Debian kernel whose modules include virtiofs.
find_kernel() {
	local k v
	for k in $(ls /boot/vmlinuz-* 2>/dev/null | sort -rV); do
		v=${k#/boot/vmlinuz-}
		if grep -qE '(^|/)virtiofs\.ko[^:]*:' "/lib/modules/$v/modules.dep" 2>/dev/null; then
			KERNEL=$k
			KVER=$v
			return 0
		fi
	done
	return 1
}

# add_module NAME: copies NAME and what it needs (modules.dep lists every
# dependency; modprobe loads them last first) into the initramfs, in load
# order. A built-in module is not in modules.dep and needs nothing.
add_module() {
	local dir=/lib/modules/$KVER line path deps d i list=()
	line=$(grep -E "(^|/)$1\.ko(\.[a-z]+)?:" "$dir/modules.dep") || return 0
	path=${line%%:*}
	read -ra deps <<<"${line#*:}"
	for ((i = ${#deps[@]} - 1; i >= 0; i--)); do list+=("${deps[i]}"); done
	list+=("$path")
	for d in "${list[@]}"; do
		local name
		name=$(basename "$d")
		name=${name%%.ko*}
		grep -qx "$name" "$IR/lib/modules/order" 2>/dev/null && continue
		case $d in
		*.ko.xz) xz -dc "$dir/$d" >"$IR/lib/modules/$name.ko" ;;
		*.ko.zst) zstd -qdc "$dir/$d" >"$IR/lib/modules/$name.ko" ;;
		*.ko.gz) gzip -dc "$dir/$d" >"$IR/lib/modules/$name.ko" ;;
		*) cp "$dir/$d" "$IR/lib/modules/$name.ko" ;;
		esac
		echo "$name" >>"$IR/lib/modules/order"
	done
}

# The guest's /init: each check prints "TAP: ok - NAME" or "TAP: not ok -
# NAME" (with "TAP: # ..." diagnostics) on the serial console.
write_init() {
	cat >"$IR/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /tmp /nix/store
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
E=/expect
echo # the firmware's screen-clearing escapes end up before the first line
TREE=$(cat $E/tree)
BB=$(cat $E/bb)
result() { # STATUS NAME
	if [ "$1" = 0 ]; then echo "TAP: ok - $2"; else echo "TAP: not ok - $2"; fi
}
diag() { sed "s/^/TAP: # $1: /" /tmp/out; }
same() { # NAME EXPECTED ACTUAL
	if cmp -s "$2" "$3"; then result 0 "$1"; else diff "$2" "$3" >/tmp/out; diag "$1"; result 1 "$1"; fi
}
rc=0
for m in $(cat /lib/modules/order); do insmod /lib/modules/$m.ko 2>>/tmp/out || rc=1; done
[ $rc = 0 ] || diag modules
result $rc modules
mount -t virtiofs nix-store /nix/store 2>/tmp/out || diag mount
grep -q ' /nix/store virtiofs ' /proc/mounts
result $? mount
if grep -q storefs.mode=hold /proc/cmdline; then
	cat /nix/store/$TREE/a >/dev/null && echo "TAP: holding"
	sleep 1000
fi
# First thing on the fresh mount, as on the host: inode numbers are given
# out in the order directories are first seen.
sh $E/listing.sh /nix/store >/tmp/attrs.txt 2>&1
same attributes $E/attrs.txt /tmp/attrs.txt
sh $E/probes.sh /nix/store /bin/fsprobe >/tmp/probes.txt 2>&1
same errors $E/probes.txt /tmp/probes.txt
sh $E/content.sh /nix/store/$TREE >/tmp/c1.txt 2>&1
sh $E/content.sh /nix/store/$BB >/tmp/c2.txt 2>&1
cat $E/content-tree.txt $E/content-bb.txt >/tmp/c-expect.txt
cat /tmp/c1.txt /tmp/c2.txt >/tmp/c.txt
same content /tmp/c-expect.txt /tmp/c.txt
out=$(/nix/store/$BB/bin/busybox echo from the store; /nix/store/$TREE/run.sh)
[ "$out" = "from the store
hi from a store script" ]
result $? program
umount /nix/store && mount -t virtiofs nix-store /nix/store &&
	[ "$(cat /nix/store/$TREE/sub/deeper/x)" = deep ] && umount /nix/store
result $? remount
echo "TAP: done"
poweroff -f
EOF
	chmod +x "$IR/init"
}

# The guest's programs; the host runs the same binaries.
guest_programs() {
	mkdir -p "$IR/bin" "$IR/lib/modules"
	cp "$BUSYBOX" "$IR/bin/busybox"
	cc -static -O2 -D_GNU_SOURCE -Wall -Werror -o "$FSPROBE" "$ROOT/tests/tools/fsprobe.c"
}

build_initramfs() {
	add_module virtio_pci
	add_module virtiofs
	write_init
	(cd "$IR" && find . | cpio -o -H newc --quiet | gzip -1) >"$TMP/initrd.gz"
}

# KVM only when asked: on nested machines /dev/kvm may exist and still hang
# a guest (it does on the project's CI VM).
accel() {
	if [ "${STOREFS_TEST_KVM:-0}" = 1 ] && [ -w /dev/kvm ]; then echo kvm; else echo tcg; fi
}

# run_vm MODE: boots the guest against $SOCK in the background (QPID), its
# serial console in $CONSOLE. no_timer_check: under TCG on a loaded host the
# guest's IO-APIC timer check can miss its window and panic the boot.
run_vm() {
	: >"$CONSOLE"
	timeout -k 5 "$VM_SECONDS" qemu-system-x86_64 -accel "$(accel)" -m 256M -smp 1 \
		-nographic -no-reboot -kernel "$KERNEL" -initrd "$TMP/initrd.gz" \
		-append "console=ttyS0 quiet loglevel=1 panic=-1 no_timer_check storefs.mode=$1" \
		-object memory-backend-memfd,id=mem,size=256M,share=on -numa node,memdev=mem \
		-chardev socket,id=c,path="$SOCK" \
		-device vhost-user-fs-pci,chardev=c,tag=nix-store,num-request-queues=2 \
		</dev/null >"$CONSOLE" 2>&1 &
	QPID=$!
	trap stop_started EXIT
}

# console_has LINE SECONDS: waits for a console line (serial lines end in \r).
console_has() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		tr -d '\r' <"$CONSOLE" | grep -qxF "$1" && return 0
		exited "$QPID" && break
		sleep 0.1
	done
	tr -d '\r' <"$CONSOLE" | tail -n 30 >&2
	fail "the guest never said '$1'"
}

# --- the checks ---

t_usage() {
	local rc=0
	sf virtiofs --store "$S" 2>"$TMP/err" || rc=$?
	assert_eq "$rc" 2 "status without --socket"
	grep -q -- "--socket" "$TMP/err" # the usage error names the missing option
	rc=0
	sf virtiofs --socket "$SOCK" --threads 0 2>/dev/null || rc=$?
	assert_eq "$rc" 2 "status with --threads 0"
	sf virtiofs --help | grep -q "vhost-user-fs-pci"
	mkdir -p "$TMP/not-a-socket"
	rc=0
	sf virtiofs --store "$S" --socket "$TMP/not-a-socket" 2>"$TMP/err" || rc=$?
	assert_eq "$rc" 1 "status on a directory"
	grep -q "exists and is not a socket" "$TMP/err"
}

t_sigterm_idle() {
	start_virtiofs --threads 1
	kill -TERM "$VPID"
	wait_exit "$VPID" 10
	assert_eq "$EXIT_STATUS" 0 "exit status"
	[ ! -e "$SOCK" ] || fail "the socket was left behind"
	# A second daemon must not take a socket that is being served.
	start_virtiofs
	local rc=0 first=$VPID
	sf virtiofs --store "$S" --socket "$SOCK" 2>"$TMP/err" || rc=$?
	assert_eq "$rc" 1 "status of a second daemon"
	grep -q "served by another process" "$TMP/err"
	kill -INT "$first"
	wait_exit "$first" 10
	assert_eq "$EXIT_STATUS" 0 "exit status on SIGINT"
}

t_frontend_guest() {
	start_virtiofs --threads 2
	timeout 60 python3 "$HERE/vhost_user_frontend.py" "$SOCK" guest "$TREE" a "hello
"
	wait_exit "$VPID" 10
	assert_eq "$EXIT_STATUS" 0 "exit status after the front-end left"
	grep -q "refused a descriptor chain" "$TMP/virtiofs.log"
	assert_eq "$(grep -c "refused a descriptor chain" "$TMP/virtiofs.log")" 1 "refusals logged"
	grep -q "the virtqueue is broken" "$TMP/virtiofs.log"
}

t_frontend_root() {
	start_virtiofs
	timeout 30 python3 "$HERE/vhost_user_frontend.py" "$SOCK" root EPERM
	wait_exit "$VPID" 10
	start_virtiofs --list-root
	timeout 30 python3 "$HERE/vhost_user_frontend.py" "$SOCK" root "$TREE,$BB"
	wait_exit "$VPID" 10
}

t_frontend_protocol() {
	local c
	for c in unknown-request too-many-regions huge-payload bad-queue region-beyond-file \
		ring-outside-memory; do
		start_virtiofs --threads 2
		timeout 30 python3 "$HERE/vhost_user_frontend.py" "$SOCK" "$c"
		wait_exit "$VPID" 10
		assert_eq "$EXIT_STATUS" 1 "exit status on $c"
		sed "s/^/# $c: /" "$TMP/virtiofs.log"
		grep -q "^storefs virtiofs: " "$TMP/virtiofs.log"
	done
}

t_vm_boot() {
	start_virtiofs --threads 2
	run_vm full
	console_has "TAP: done" "$VM_SECONDS"
	wait_exit "$QPID" 60
	assert_eq "$EXIT_STATUS" 0 "qemu's exit status"
	wait_exit "$VPID" 30
	cat "$TMP/virtiofs.log"
	assert_eq "$EXIT_STATUS" 0 "the daemon's exit status after the VM powered off"
	[ ! -e "$SOCK" ] || fail "the socket was left behind"
}

# guest_says NAME: the guest's own verdict on NAME, with its diagnostics.
guest_says() {
	tr -d '\r' <"$CONSOLE" | grep -F "TAP: # $1: " || true
	tr -d '\r' <"$CONSOLE" | grep -qxF "TAP: ok - $1"
}

t_vm_sigterm() {
	start_virtiofs --threads 2
	run_vm hold
	console_has "TAP: holding" "$VM_SECONDS"
	kill -TERM "$VPID"
	wait_exit "$VPID" 20
	assert_eq "$EXIT_STATUS" 0 "exit status on SIGTERM with a VM attached"
	[ ! -e "$SOCK" ] || fail "the socket was left behind"
	kill -TERM "$QPID"
	wait_exit "$QPID" 30
}

# --- main ---

BUSYBOX=$(command -v busybox || true)
FSPROBE=$IR/bin/fsprobe
missing=""
command -v qemu-system-x86_64 >/dev/null || missing="$missing qemu-system-x86"
command -v cpio >/dev/null || missing="$missing cpio"
LC_ALL=C ldd "$BUSYBOX" 2>&1 | grep -q "not a dynamic executable" ||
	missing="$missing busybox-static"
find_kernel || missing="$missing linux-image-amd64"
if [ -n "$missing" ]; then
	echo "not ok - prerequisites (scripts/install-deps installs:$missing)"
	exit 1
fi
echo "# kernel $KERNEL, accel $(accel)"
set -e
trap 'echo "not ok - setup failed at line $LINENO"' ERR
setup_store
guest_programs
expect_from_fuse_mount
build_initramfs
trap - ERR
set +e

check "virtiofs: usage errors and a socket path that is not a socket" t_usage
check "virtiofs: SIGTERM/SIGINT end an idle daemon with status 0; a live socket is not taken" \
	t_sigterm_idle
check "a scripted guest (2 request queues + hiprio): answers, hostile chains refused" \
	t_frontend_guest
check "the root: EPERM, or with --list-root its store paths" t_frontend_root
check "a front-end that breaks the protocol ends the daemon with status 1, not a crash" \
	t_frontend_protocol
check "a VM boots, mounts the store, powers off; the daemon exits with status 0" t_vm_boot
check "guest: the virtio and virtiofs modules load" guest_says modules
check "guest: mount -t virtiofs nix-store /nix/store" guest_says mount
check "guest: modes, sizes, mtimes and inode numbers equal the FUSE mount's" \
	guest_says attributes
check "guest: errors equal the FUSE mount's (EPERM/ENOENT at the root, EROFS on writes)" \
	guest_says errors
check "guest: file contents (sha256) equal the source tree's" guest_says content
check "guest: programs run from store paths" guest_says program
check "guest: umount and mount again (DESTROY, then a new INIT)" guest_says remount
check "SIGTERM with a VM attached ends the daemon with status 0" t_vm_sigterm

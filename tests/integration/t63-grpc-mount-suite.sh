#!/bin/bash
# t63-grpc-mount-suite.sh - the mount suite over gRPC (issue 15): t20's
# checks and t21's CPython check, unchanged, with every mount made through
# `storefs daemon` serving the test's store, once over grpc+unix:// and
# once over grpc+http://127.0.0.1 (lib.sh's STOREFS_TEST_VIA). Each check's
# name is prefixed with the transport. What cannot hold over gRPC is
# skipped by the script itself, with the reason.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
shopt -s inherit_errexit

# run_via VIA SCRIPT [STOREFS_CHECK]: SCRIPT's TAP lines, names prefixed by VIA.
# A script that dies without a line of its own is a failure too.
run_via() {
	local via=$1 script=$HERE/$2 rc=0
	STOREFS_TEST_VIA=$via STOREFS_CHECK=${3:-${STOREFS_CHECK:-}} bash "$script" \
		>"$TMP/out" 2>"$TMP/err" || rc=$?
	sed "s/^\(not \)\{0,1\}ok - /&$via: /" "$TMP/out"
	if [ $rc != 0 ] || ! grep -q '^\(not \)\{0,1\}ok - ' "$TMP/out"; then
		echo "not ok - $via: $2 ran to its end (exit $rc)"
		tail -n 20 "$TMP/err" | sed 's/^/#   /'
	fi
}

for via in grpc+unix grpc+http; do
	run_via "$via" t20-mount.sh
	# t21's other check is busybox in a chroot: t62 runs it over a peer.
	[[ "python3 runs from the mount via its mounted loader and stdlib" != \
		*"${STOREFS_CHECK:-}"* ]] || run_via "$via" t21-mount-programs.sh "python3 runs"
done

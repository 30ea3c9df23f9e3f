#!/bin/bash
# t60-fuzz.sh - a bounded libFuzzer run of every fuzz/fuzz_*.c target
# (FUZZ_SECONDS each, default 60): one ok/not ok line per target. Needs
# clang; the targets are built by fuzz/run into build-fuzz/ (FUZZ_BUILD).
# STOREFS_CHECK (tests/run t60:NAME) selects the targets whose name has NAME.
. "$(dirname "$0")/lib.sh"

export FUZZ_SECONDS=${FUZZ_SECONDS:-60}
filter=${STOREFS_CHECK:-}

# No target selected: no result line, which tests/run reports as an error.
compgen -G "$ROOT/fuzz/fuzz_*$filter*.c" >/dev/null || exit 0

if ! command -v clang >/dev/null; then
	echo "not ok - clang is not installed: cannot build the fuzz targets"
	exit 0
fi
"$ROOT/fuzz/run" "$filter" >"$TMP/fuzz.log" 2>&1
rc=$?
n=0
while read -r _ target execs _ _ _ _ _ result; do
	n=$((n + 1))
	if [ "${result%%[ (]*}" = ok ]; then
		echo "ok - fuzz $target: $execs executions in ${FUZZ_SECONDS}s without a crash"
	else
		echo "not ok - fuzz $target: $result"
		grep -A3 "^fuzz $target " "$TMP/fuzz.log" | sed 's/^/#   /'
	fi
done < <(grep '^fuzz fuzz_' "$TMP/fuzz.log")
if [ "$n" = 0 ] || { [ "$rc" != 0 ] && ! grep -q '^fuzz fuzz_.*FAILED' "$TMP/fuzz.log"; }; then
	echo "not ok - fuzz/run failed (exit $rc)"
	tail -20 "$TMP/fuzz.log" | sed 's/^/#   /'
fi
exit 0

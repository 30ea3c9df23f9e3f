#!/bin/bash
# t25-postgres.sh - Directories and PathInfos in PostgreSQL (postgres://,
# docs/postgres.md), against a real server this script starts once (pg.sh)
# and always stops: the conformance suites and the PostgreSQL-only unit
# checks (first writer wins, atomic registration, outage and recovery,
# LISTEN/NOTIFY), then the CLI with the Directory and PathInfo services in
# PostgreSQL and the blobs in a local store (--blob-service-addr): import,
# list, path-info, a mount that sees new paths at once and lives through
# an outage of the server.
. "$(dirname "$0")/lib.sh"
. "$HERE/pg.sh"
trap 'pg_down; cleanup' EXIT

UNIT=$TOOLS/unit/backends
META_COPY=$TOOLS/meta_copy

# Blobs in the local store $TMP/local, the rest in PostgreSQL.
pgsf() { sf --store "$PG_URL" --blob-service-addr "$TMP/local" "$@"; }

pg_up || { echo "not ok - start PostgreSQL"; exit 1; }

t_unit() {
	STOREFS_TEST_PG_URL=$PG_URL \
		STOREFS_TEST_PG_STOP="runuser -u postgres -- $PGBIN/pg_ctl -D $PG_DIR/data -m fast -w stop >/dev/null" \
		STOREFS_TEST_PG_START="runuser -u postgres -- $PGBIN/pg_ctl -D $PG_DIR/data -l $PG_DIR/server.log -w start >/dev/null" \
		"$UNIT" postgres >"$TMP/unit.log" 2>&1 || { cat "$TMP/unit.log"; return 1; }
	cat "$TMP/unit.log"
	# Every PostgreSQL test ran (none returned early for want of a server).
	assert_eq "$(grep -c '^ok ' "$TMP/unit.log")" 8 "unit tests passed"
}

# A local store with two imported trees, their metadata copied to PostgreSQL.
setup_paths() {
	mkdir -p "$TMP/tree/sub" "$TMP/tree2"
	echo hello >"$TMP/tree/sub/file"
	ln -s sub/file "$TMP/tree/link"
	echo two >"$TMP/tree2/x"
	P1=$(sf --store "$TMP/local" import "$TMP/tree")
	P2=$(sf --store "$TMP/local" import "$TMP/tree2")
}

t_cli_reads() {
	"$META_COPY" "$TMP/local" "$PG_URL" "$P1" "$P2" >"$TMP/copy.out"
	grep -qx "$P1: added" "$TMP/copy.out"
	# Again: nothing changes.
	"$META_COPY" "$TMP/local" "$PG_URL" "$P1" | grep -qx "$P1: unchanged"
	assert_eq "$(pgsf list)" "$(sf --store "$TMP/local" list)" "list"
	assert_eq "$(pgsf path-info --json "$P1")" \
		"$(sf --store "$TMP/local" path-info --json "$P1")" "path-info"
	# The password came from PGPASSFILE: the URL has none.
	[[ $PG_URL != *:*:*@* ]]
}

t_newer_schema() {
	pg_sql "UPDATE storefs_schema_version SET version = 99"
	expect_status 1 pgsf list
	grep -q "holds a storefs schema of version 99, newer than this storefs knows (1): use a newer storefs" "$TMP/err"
	assert_eq "$(wc -l <"$TMP/err")" 1 "stderr lines"
	pg_sql "UPDATE storefs_schema_version SET version = 1"
	pgsf list >/dev/null
}

t_wrong_password() {
	expect_status 1 env PGPASSFILE=/dev/null "$STOREFS" --blob-service-addr "$TMP/local" \
		--store "postgresql://ci:wrong-secret-42@127.0.0.1:$PG_PORT/ci" list
	grep -q "password authentication failed" "$TMP/err"
	! grep -q "wrong-secret-42" "$TMP/err"
	assert_eq "$(wc -l <"$TMP/err")" 1 "stderr lines"
	# The right one in the URL, but no blob service: refused, the
	# password not repeated.
	expect_status 1 env PGPASSFILE=/dev/null "$STOREFS" \
		--store "postgresql://ci:$PG_PASSWORD@127.0.0.1:$PG_PORT/ci" list
	grep -q "store 'postgresql://ci@127.0.0.1:$PG_PORT/ci' (--blob-service-addr) has no blob service" "$TMP/err"
	! grep -q "$PG_PASSWORD" "$TMP/err"
}

t_stopped_server() {
	pg_stop
	expect_status 1 timeout 30 "$STOREFS" --blob-service-addr "$TMP/local" --store "$PG_URL" list
	grep -q "cannot connect to PostgreSQL database 'postgresql://ci@127.0.0.1:$PG_PORT/ci'" "$TMP/err"
	assert_eq "$(wc -l <"$TMP/err")" 1 "stderr lines"
	pg_start
	pgsf list >"$TMP/list"
	grep -qx "$P1" "$TMP/list"
}

# The example of issue 16, with a local blob store: import, then mount.
t_import_mount() {
	mkdir -p "$TMP/tree3/bin"
	printf '#!/bin/sh\necho from-postgres\n' >"$TMP/tree3/bin/hello"
	chmod +x "$TMP/tree3/bin/hello"
	P3=$(sf import --blob-service-addr "$TMP/local" --directory-service-addr "$PG_URL" \
		--path-info-service-addr "$PG_URL" "$TMP/tree3")
	# Registered in PostgreSQL (not in the local store) and equal to Nix's path.
	[ "$(pg_sql "SELECT name FROM storefs_path_infos WHERE name = '$(base "$P3")'")" = "$(base "$P3")" ]
	expect_status 1 sf --store "$TMP/local" path-info "$P3"
	start_mount "$TMP/local" "$TMP/mnt" --directory-service-addr "$PG_URL" \
		--path-info-service-addr "$PG_URL"
	assert_eq "$("$TMP/mnt/$(base "$P3")/bin/hello")" from-postgres "program output"
	# A path registered after the mount looked it up and missed: seen at
	# once (LISTEN/NOTIFY invalidates the root's negative entry).
	mkdir -p "$TMP/tree4"
	echo four >"$TMP/tree4/f"
	N4=$(base "$(sf --store "$TMP/scratch" import "$TMP/tree4")")
	[ ! -e "$TMP/mnt/$N4" ]
	pgsf import "$TMP/tree4" >/dev/null
	for _ in $(seq 50); do [ -e "$TMP/mnt/$N4" ] && break; sleep 0.1; done
	assert_eq "$(cat "$TMP/mnt/$N4/f")" four "new path through the mount"
	# PostgreSQL stopped under the mount: what the mount has seen still
	# reads; an unseen path is EIO, not a hang; started again: no remount.
	mkdir -p "$TMP/tree5"
	echo five >"$TMP/tree5/f"
	pgsf import "$TMP/tree5" >/dev/null
	N5=$(base "$(sf --store "$TMP/scratch" import "$TMP/tree5")")
	pg_stop
	grep -q from-postgres "$TMP/mnt/$(base "$P3")/bin/hello"
	timeout 60 python3 "$HERE/fs_check.py" errno EIO stat "$TMP/mnt/$N5"
	pg_start
	assert_eq "$(cat "$TMP/mnt/$N5/f")" five "unseen path after the outage"
	stop_mount "$TMP/mnt"
	grep -c "PostgreSQL" "$TMP/mount.log" || true
}

# Last: it damages the database. The database is trusted no more than a
# disk: verify names a Directory row that does not match its digest.
t_verify_names_damage() {
	mkdir -p "$TMP/tree6/d"
	echo six >"$TMP/tree6/d/f"
	pgsf import "$TMP/tree6" >/dev/null
	pgsf verify
	pg_sql "UPDATE storefs_directories SET data = data || '\\x00'::bytea"
	expect_status 1 pgsf verify
	grep -q "is corrupt: digest mismatch" "$TMP/out"
}

setup_paths
check "unit: conformance suites, first writer wins, atomic registration, outage, LISTEN" t_unit
check "paths registered in PostgreSQL are listed and shown through --store postgres://" t_cli_reads
check "a schema from a newer storefs is refused with a clear message" t_newer_schema
check "a wrong password is one clear error; no message repeats a password" t_wrong_password
check "PostgreSQL stopped: one clear error at once; started again: works" t_stopped_server
check "import into PostgreSQL + local blobs; a mount reads it, sees new paths at once, lives through an outage" t_import_mount
check "verify names a damaged Directory row" t_verify_names_damage

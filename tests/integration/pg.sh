# shellcheck shell=bash disable=SC2034
# pg.sh - a throwaway PostgreSQL server for integration tests, sourced
# after lib.sh (adapted from the facts of pg-up.sh: Debian's postgresql-15
# binaries, initdb + pg_ctl, no systemd). It runs as the unprivileged user
# "postgres" when the test runs as root (initdb refuses root), listens on
# 127.0.0.1 at a free port and on a unix socket in its own directory, and
# is stopped by pg_down (the test script traps EXIT with it).
#
#	pg_up			starts it; sets PG_DIR (its socket too), PG_PORT and
#				PG_URL (postgresql://ci@127.0.0.1:PORT/ci, the
#				password in $PG_DIR/pgpass, named by PGPASSFILE)
#	pg_sql SQL		runs SQL as the superuser over the socket
#	pg_stop / pg_start	stops and starts it again (same data and port)
#	pg_down			stops it for good and removes its directory
# Knob: PG_LISTEN, the addresses it listens on (default 127.0.0.1); the
# subnets of those addresses may connect with the password too (t26's
# network namespaces).
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PG_PASSWORD=pw-$RANDOM$RANDOM-secret

pg_as() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pg_start() {
	pg_as "$PGBIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 start >/dev/null ||
		{ tail -n 20 "$PG_DIR/server.log" >&2; return 1; }
}

pg_stop() {
	pg_as "$PGBIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 stop >/dev/null
}

pg_sql() {
	pg_as "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" -U ci -d ci -At -c "$1"
}

pg_up() {
	[ -x "$PGBIN/initdb" ] || { echo "no PostgreSQL in $PGBIN (scripts/install-deps)" >&2; return 1; }
	PG_DIR=$(mktemp -d /tmp/storefs-pg.XXXXXX)
	chmod 755 "$PG_DIR"
	[ "$(id -u)" = 0 ] && chown postgres "$PG_DIR"
	echo "$PG_PASSWORD" >"$PG_DIR/pw"
	[ "$(id -u)" = 0 ] && chown postgres "$PG_DIR/pw"
	# The socket trusts local users (the test's own SQL); TCP wants the password.
	pg_as "$PGBIN/initdb" -D "$PG_DIR/data" -U ci --pwfile="$PG_DIR/pw" --auth-local=trust \
		--auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 --no-sync >"$PG_DIR/initdb.log" 2>&1 ||
		{ tail -n 20 "$PG_DIR/initdb.log" >&2; return 1; }
	PG_PORT=$(pg_free_port)
	cat >>"$PG_DIR/data/postgresql.conf" <<CONF
listen_addresses = '${PG_LISTEN:-127.0.0.1}'
port = $PG_PORT
unix_socket_directories = '$PG_DIR'
max_connections = 100
shared_buffers = 32MB
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
	if [ -n "${PG_LISTEN:-}" ]; then
		echo "host all all samenet scram-sha-256" >>"$PG_DIR/data/pg_hba.conf"
	fi
	# The free port may be taken before the server binds it: try others.
	for _ in 1 2; do
		pg_start 2>/dev/null && break
		PG_PORT=$(pg_free_port)
		sed -i "s/^port = .*/port = $PG_PORT/" "$PG_DIR/data/postgresql.conf"
	done
	[ -f "$PG_DIR/data/postmaster.pid" ] || pg_start
	pg_as "$PGBIN/createdb" -h "$PG_DIR" -p "$PG_PORT" -U ci ci
	PG_URL=postgresql://ci@127.0.0.1:$PG_PORT/ci
	echo "127.0.0.1:$PG_PORT:*:ci:$PG_PASSWORD" >"$TMP/pgpass"
	chmod 600 "$TMP/pgpass"
	export PGPASSFILE=$TMP/pgpass PGCONNECT_TIMEOUT=10
}

pg_down() {
	[ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR" ] || return 0
	[ -f "$PG_DIR/data/postmaster.pid" ] &&
		pg_as "$PGBIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1
	rm -rf "$PG_DIR"
}

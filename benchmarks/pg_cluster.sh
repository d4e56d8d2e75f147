# Sourced by queue.sh and throughput.sh: a throwaway PostgreSQL cluster on a free loopback port.
#   pg_start DIR    initdb in DIR/pg, postgres on 127.0.0.1:$PG_PORT; sets PG_URL (database "postgres", user steno)
#   pg_stop         stops it and deletes DIR/pg
# PostgreSQL refuses root: under root the cluster belongs to the `postgres` user (runuser). Server settings are
# PostgreSQL's defaults (fsync and synchronous commit on), except max_connections; PG_OPTIONS adds more
# (e.g. PG_OPTIONS="-c synchronous_commit=off").

PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
PG_ROOT=""
PG_PORT=""
PG_URL=""

pg_as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_start() {
    [ -x "$PG_BIN/initdb" ] || { echo "no PostgreSQL server binaries (install Debian's postgresql: scripts/setup.sh)" >&2; return 1; }
    PG_ROOT="$1/pg"
    mkdir -p "$PG_ROOT/socket"
    [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$PG_ROOT"
    PG_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    pg_as_owner "$PG_BIN/initdb" --pgdata="$PG_ROOT/data" --username=steno --auth=trust --encoding=UTF8 --locale=C \
        --no-instructions >"$PG_ROOT/initdb.log" 2>&1 || { cat "$PG_ROOT/initdb.log" >&2; return 1; }
    # shellcheck disable=SC2086
    pg_as_owner "$PG_BIN/pg_ctl" --pgdata="$PG_ROOT/data" --log="$PG_ROOT/postgres.log" --wait \
        -o "-k $PG_ROOT/socket -h 127.0.0.1 -p $PG_PORT -c max_connections=300 ${PG_OPTIONS:-}" start >/dev/null \
        || { cat "$PG_ROOT/postgres.log" >&2; return 1; }
    PG_URL="postgres://steno@127.0.0.1:$PG_PORT/postgres"
    echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT (data $PG_ROOT/data${PG_OPTIONS:+, $PG_OPTIONS})"
}

pg_stop() {
    [ -n "$PG_ROOT" ] && [ -d "$PG_ROOT/data" ] || return 0
    pg_as_owner "$PG_BIN/pg_ctl" --pgdata="$PG_ROOT/data" --mode=fast --wait stop >/dev/null 2>&1 || true
    rm -rf "$PG_ROOT"
    PG_ROOT=""
}

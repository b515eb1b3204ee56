#!/usr/bin/env bash
# Start a throw-away PostgreSQL server for the store's tests (used by CI).
#
#   eval "$(scripts/start-postgres.sh)"     # exports GROWTH_TEST_PG_URL & co.
#   scripts/start-postgres.sh stop DIR      # stop the server started in DIR
#
# Initialises a cluster in a fresh temp dir (Debian's `postgresql` package; run
# as root it uses the `postgres` OS user), listening on 127.0.0.1 only on a free
# port, with password (scram) authentication over TCP.  Creates:
#   growth_app      LOGIN, owns database `growth`: the app and the nightly job;
#   growth_analyst  LOGIN, no privileges until the store grants SELECT on views.
# Prints `export` lines (stdout) and writes them to $DIR/env as well; progress
# goes to stderr.
set -euo pipefail

if [[ "${1:-}" == "stop" ]]; then
    dir="${2:?usage: $0 stop DIR}"
    bindir="$(cat "$dir/bindir")"
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$bindir/pg_ctl" -D "$dir/data" -m fast stop >&2
    else
        "$bindir/pg_ctl" -D "$dir/data" -m fast stop >&2
    fi
    exit 0
fi

bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
if [[ -z "$bindir" || ! -x "$bindir/initdb" ]]; then
    echo "start-postgres: no PostgreSQL server found; apt-get install -y postgresql" >&2
    exit 1
fi

dir="$(mktemp -d "${TMPDIR:-/tmp}/growth-pg.XXXXXX")"
chmod 755 "$dir"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
app_pw="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
analyst_pw="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
echo "$bindir" > "$dir/bindir"

as_pg() {
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
if [[ $(id -u) -eq 0 ]]; then chown postgres "$dir"; fi

as_pg "$bindir/initdb" -D "$dir/data" --username=postgres --auth-local=trust \
    --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; exit 1; }
as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c full_page_writes=off" \
    start >&2 || { cat "$dir/server.log" >&2; exit 1; }

psql_admin() {
    as_pg "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres "$@"
}
psql_admin -d postgres \
    -v app_pw="$app_pw" -v analyst_pw="$analyst_pw" >&2 <<'SQL'
CREATE ROLE growth_app LOGIN PASSWORD :'app_pw';
CREATE ROLE growth_analyst LOGIN PASSWORD :'analyst_pw';
CREATE DATABASE growth OWNER growth_app;
REVOKE ALL ON DATABASE growth FROM PUBLIC;
GRANT CONNECT ON DATABASE growth TO growth_app, growth_analyst;
SQL
psql_admin -d growth >&2 <<'SQL'
REVOKE ALL ON SCHEMA public FROM PUBLIC;
ALTER SCHEMA public OWNER TO growth_app;
SQL

base="127.0.0.1:$port/growth"
{
    echo "export GROWTH_TEST_PG_URL=postgresql+psycopg://growth_app:$app_pw@$base"
    echo "export GROWTH_TEST_PG_ANALYST_URL=postgresql+psycopg://growth_analyst:$analyst_pw@$base"
    echo "export GROWTH_TEST_PG_ANALYST_ROLE=growth_analyst"
    echo "export GROWTH_TEST_PG_DIR=$dir"
} | tee "$dir/env"
echo "start-postgres: server on 127.0.0.1:$port, data in $dir (stop: $0 stop $dir)" >&2

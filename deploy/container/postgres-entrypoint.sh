#!/bin/sh
# Initialises the cluster on first start (password from POSTGRES_PASSWORD_FILE or
# POSTGRES_PASSWORD, database POSTGRES_DB, default akte), then runs the server.
set -eu
bin=/usr/lib/postgresql/15/bin
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    password="${POSTGRES_PASSWORD:-}"
    if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
        password="$(cat "$POSTGRES_PASSWORD_FILE")"
    fi
    if [ -z "$password" ]; then
        echo "postgres: set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE" >&2
        exit 1
    fi
    pwfile="$(mktemp)"
    printf '%s\n' "$password" >"$pwfile"
    "$bin/initdb" --username=postgres --pwfile="$pwfile" --auth-host=scram-sha-256 \
        --auth-local=peer --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pwfile"
    echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
    echo "host all all ::/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
    "$bin/pg_ctl" -w -o "-c listen_addresses='' -c unix_socket_directories=/run/postgresql" start >/dev/null
    "$bin/createdb" -h /run/postgresql "${POSTGRES_DB:-akte}"
    "$bin/pg_ctl" -w stop >/dev/null
fi
exec "$bin/postgres" -c listen_addresses="${POSTGRES_LISTEN:-*}" -c port="$PGPORT" \
    -c unix_socket_directories=/run/postgresql

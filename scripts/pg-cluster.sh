#!/usr/bin/env bash
# Starts or stops a throwaway PostgreSQL 15 cluster for the test suite.
#   eval "$(scripts/pg-cluster.sh start)"   # prints export lines (ARO_TEST_POSTGRES_URL, ARO_PG_CLUSTER_DIR)
#   scripts/pg-cluster.sh stop "$ARO_PG_CLUSTER_DIR"
# The cluster lives in a temporary folder on a free loopback port and runs as the `postgres`
# user when started by root (PostgreSQL refuses to run as root).
set -euo pipefail

pg_bin() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        if [ -x "$dir/initdb" ]; then echo "$dir"; return 0; fi
    done
    if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return 0; fi
    return 1
}

as_owner() {
    if [ "$(id -u)" = "0" ]; then
        su postgres -s /bin/bash -c "$*"
    else
        bash -c "$*"
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start() {
    local bin dir port
    bin=$(pg_bin) || { echo "PostgreSQL server binaries not found (install postgresql)" >&2; exit 1; }
    dir=$(mktemp -d /tmp/aro-pg.XXXXXX)
    # A cluster that does not come up leaves nothing behind.
    trap 'stop "$dir"' ERR
    if [ "$(id -u)" = "0" ]; then chown postgres: "$dir"; fi
    port=$(free_port)
    as_owner "'$bin/initdb' -D '$dir/data' -U postgres -A trust --no-sync -E UTF8 --locale=C.UTF-8" >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; stop "$dir"; exit 1; }
    as_owner "'$bin/pg_ctl' -D '$dir/data' -l '$dir/server.log' -w -t 60 -o \"-p $port -k '$dir' -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=64MB\" start" >/dev/null \
        || { cat "$dir/server.log" >&2; stop "$dir"; exit 1; }
    trap - ERR
    echo "export ARO_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:$port/postgres'"
    echo "export ARO_PG_CLUSTER_DIR='$dir'"
    echo "export PATH='$bin':\"\$PATH\""
}

stop() {
    local dir=${1:-${ARO_PG_CLUSTER_DIR:-}} bin
    [ -n "$dir" ] && [ -d "$dir" ] || return 0
    bin=$(pg_bin) || true
    if [ -n "$bin" ] && [ -f "$dir/data/postmaster.pid" ]; then
        as_owner "'$bin/pg_ctl' -D '$dir/data' -m immediate -w stop" >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

case "${1:-}" in
    start) start ;;
    stop) stop "${2:-}" ;;
    *) echo "usage: $0 start | stop [dir]" >&2; exit 2 ;;
esac

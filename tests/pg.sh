#!/usr/bin/env bash
# pg.sh — a throwaway PostgreSQL cluster for the store tests.
#
#   tests/pg.sh start   -> prints one line: a libpq connection string (host=DIR port=P …);
#                          the cluster lives in a fresh temporary directory DIR
#   tests/pg.sh stop DIR -> stops that cluster and deletes DIR
#
# Exit 77 when no PostgreSQL server binaries are installed (callers report "skipped").
# initdb refuses to run as root, so as root the server runs as the `postgres` user.
set -euo pipefail
B=${PG_BIN:-}
if [ -z "$B" ]; then
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && B=$d; done
fi
if [ -z "$B" ] || [ ! -x "$B/initdb" ]; then
  echo "pg.sh: no PostgreSQL server binaries (initdb) found" >&2
  exit 77
fi
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "${1:-}" in
start)
  D=$(mktemp -d /tmp/cg-pg.XXXXXX)
  chmod 755 "$D"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$D"
  PORT=$((20000 + RANDOM % 30000))
  U=$( [ "$(id -u)" = 0 ] && echo postgres || id -un )
  as_pg "$B/initdb" -D "$D/data" -A trust -E UTF8 --locale=C.UTF-8 -U "$U" >"$D/initdb.log" 2>&1 \
    || { cat "$D/initdb.log" >&2; exit 1; }
  as_pg "$B/pg_ctl" -D "$D/data" -l "$D/log" -w \
    -o "-c listen_addresses='' -k $D -p $PORT -c fsync=off -c full_page_writes=off" start >/dev/null \
    || { cat "$D/log" >&2; exit 1; }
  echo "host=$D port=$PORT user=$U dbname=postgres"
  ;;
stop)
  D=${2:?usage: pg.sh stop DIR}
  case "$D" in /tmp/cg-pg.*) ;; *) echo "pg.sh: refusing to remove $D" >&2; exit 2;; esac
  as_pg "$B/pg_ctl" -D "$D/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$D"
  ;;
*)
  echo "usage: pg.sh start | stop DIR" >&2; exit 2;;
esac

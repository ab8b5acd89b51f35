#!/usr/bin/env bash
# Start a throwaway PostgreSQL + PostGIS server for the `postgis` tests and print its URL on stdout.
# Best effort: when the Debian packages cannot be installed or the server does not start, it prints nothing and says
# why on stderr, and the postgis tests skip with their own reason. Nothing here touches a system cluster.
set -u
log() { echo "postgis_for_tests: $*" >&2; }
if [ "${1:-}" = "--stop" ]; then  # stop the server the last call started
  DIR=$(cat /tmp/ltci-pg.last 2>/dev/null) || exit 0
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  RUN=""; [ "$(id -u)" = 0 ] && RUN="runuser -u postgres --"
  [ -n "$DIR" ] && $RUN "$PGBIN/pg_ctl" -D "$DIR/data" -m fast stop >/dev/null 2>&1
  rm -rf "$DIR" /tmp/ltci-pg.last
  exit 0
fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$PGBIN" ] || ! ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1; then
  log "installing postgresql and postgis from Debian"
  { $SUDO apt-get update -qq && $SUDO DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15-postgis-3 postgresql-15; } >&2 \
    || { log "could not install PostGIS; postgis tests will skip"; exit 0; }
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
fi
DIR=$(mktemp -d /tmp/ltci-pg.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RUN=""
if [ "$(id -u)" = 0 ]; then chown postgres "$DIR" 2>/dev/null || { log "no postgres user"; exit 0; }; RUN="runuser -u postgres --"; fi
$RUN "$PGBIN/initdb" -D "$DIR/data" -A trust -U ltci >/dev/null 2>&1 || { log "initdb failed"; exit 0; }
$RUN "$PGBIN/pg_ctl" -D "$DIR/data" -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1" -l "$DIR/log" -w start >/dev/null 2>&1 \
  || { log "server did not start: $(tail -n 3 "$DIR/log" 2>/dev/null)"; exit 0; }
$RUN "$PGBIN/createdb" -h 127.0.0.1 -p "$PORT" -U ltci ltci_test >/dev/null 2>&1 || { log "createdb failed"; exit 0; }
$RUN "$PGBIN/psql" -h 127.0.0.1 -p "$PORT" -U ltci -d ltci_test -qc "CREATE EXTENSION postgis" >/dev/null 2>&1 \
  || { log "CREATE EXTENSION postgis failed"; exit 0; }
echo "$DIR" > /tmp/ltci-pg.last
echo "postgresql://ltci@127.0.0.1:$PORT/ltci_test"

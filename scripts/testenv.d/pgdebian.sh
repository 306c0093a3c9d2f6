#!/usr/bin/env bash
# scripts/testenv.d/pgdebian.sh up|down|env — a staging-like PostgreSQL that drillbook did not make.
#
# The database drills must work on a server a team runs, not only on the sandbox drillbook builds
# for itself. This installs Debian's `postgresql` package (15) and makes, in Debian's own layout:
#   - cluster 15/drillbook (pg_createcluster: config in /etc/postgresql/15/drillbook, data in
#     /var/lib/postgresql/15/drillbook), on 127.0.0.1 only, WAL archived to a folder;
#   - a non-superuser role `drill` (password `drill`) owning database `app`, with a table
#     `accounts` (1000 rows, sum of balances 750750.00, as in the sandbox);
#   - a base backup taken with pg_basebackup (plain format, WAL streamed);
#   - cluster 15/drillbook-standby: a streaming standby of it (pg_basebackup -R).
# No systemd here: clusters are started with pg_ctlcluster. Progress goes to stderr; only `export`
# lines go to stdout. `up` is idempotent: running clusters are reused, stopped ones started.
# `reseed-standby` rebuilds the standby from the primary (after a test promoted it).
set -euo pipefail

VERSION=15
PRIMARY=drillbook
STANDBY=drillbook-standby
STATE_DIR=${DRILLBOOK_TESTENV_DIR:-/tmp/drillbook-testenv}/pgdebian
# Archive and backups belong to the postgres user, beside its clusters (as a team would have them).
ROOT=/var/lib/postgresql/drillbook-testenv
ARCHIVE=$ROOT/wal-archive
BACKUP=$ROOT/backups/base
BIN=/usr/lib/postgresql/$VERSION/bin

say() { echo "testenv pgdebian: $*" >&2; }
as_pg() { runuser -u postgres -- "$@"; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

install_packages() {
  if [ -x "$BIN/postgres" ] && command -v pg_createcluster >/dev/null 2>&1; then
    return 0
  fi
  say "installing Debian's postgresql-$VERSION"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq "postgresql-$VERSION" "postgresql-client-$VERSION" postgresql-common >&2
}

cluster_exists() { [ -f "/etc/postgresql/$VERSION/$1/postgresql.conf" ]; }
cluster_port() { sed -n "s/^port *= *\([0-9]*\).*/\1/p" "/etc/postgresql/$VERSION/$1/postgresql.conf" | head -1; }
cluster_online() { pg_lsclusters -h "$VERSION" "$1" 2>/dev/null | awk '{print $4}' | grep -q '^online'; }

answers() {  # the cluster accepts connections on its port
  as_pg "$BIN/pg_isready" -q -h /var/run/postgresql -p "$(cluster_port "$1")" -t 2
}

write_conf() {
  # conf.d is included by Debian's postgresql.conf: the team's own settings stay where they are.
  # The archive command never overwrites, but succeeds on an identical file: a server restarted
  # after copying a file and before marking it done retries it, and a plain `test ! -f` then
  # blocks every later segment for good.
  local name=$1
  cat >"/etc/postgresql/$VERSION/$name/conf.d/drillbook-testenv.conf" <<EOF
listen_addresses = '127.0.0.1'
wal_level = replica
archive_mode = on
archive_command = 'test ! -f $ARCHIVE/%f && cp %p $ARCHIVE/%f || cmp -s %p $ARCHIVE/%f'
archive_timeout = 1s
max_wal_senders = 5
hot_standby = on
EOF
  chown postgres:postgres "/etc/postgresql/$VERSION/$name/conf.d/drillbook-testenv.conf"
}

start_cluster() {
  local name=$1
  cluster_online "$name" && return 0
  local waited=0
  # A postmaster killed by a test may stay a zombie of init for ~30 s and hold its lock file.
  until pg_ctlcluster "$VERSION" "$name" start >&2 2>&1; do
    if [ "$waited" -ge 60 ]; then say "cluster $name does not start"; return 1; fi
    sleep 1
    waited=$((waited + 1))
  done
}

make_primary() {
  local port
  port=$(free_port)
  say "creating cluster $VERSION/$PRIMARY on 127.0.0.1:$port"
  pg_createcluster "$VERSION" "$PRIMARY" --port "$port" --start-conf manual -- --wal-segsize=1 >&2
  write_conf "$PRIMARY"
  start_cluster "$PRIMARY"
  as_pg psql -q -v ON_ERROR_STOP=1 -p "$port" -h /var/run/postgresql -d postgres >&2 <<'EOF'
CREATE ROLE drill LOGIN PASSWORD 'drill';
CREATE DATABASE app OWNER drill;
GRANT pg_monitor TO drill;                                -- replication_lag, settings, archiver
EOF
  # What docs/postgres.md says the drills need beyond owning the database. Functions are per
  # database: the grants go in the one the drills connect to.
  as_pg psql -q -v ON_ERROR_STOP=1 -p "$port" -h /var/run/postgresql -d app >&2 <<'EOF'
GRANT EXECUTE ON FUNCTION pg_switch_wal() TO drill;      -- point-in-time restores, verify_backup
GRANT EXECUTE ON FUNCTION pg_promote(boolean, integer) TO drill;  -- postgres.promote
EOF
  PGPASSWORD=drill psql -q -v ON_ERROR_STOP=1 "host=127.0.0.1 port=$port user=drill dbname=app" >&2 <<'EOF'
CREATE TABLE accounts (id int PRIMARY KEY, balance numeric(12,2) NOT NULL);
INSERT INTO accounts SELECT i, i * 1.5 FROM generate_series(1, 1000) AS i;
EOF
}

take_backup() {
  local port
  port=$(cluster_port "$PRIMARY")
  say "base backup into $BACKUP"
  rm -rf "$BACKUP"
  as_pg "$BIN/pg_basebackup" -h /var/run/postgresql -p "$port" -D "$BACKUP" -Fp -Xs -c fast >&2
}

make_standby() {
  local port pport data
  pport=$(cluster_port "$PRIMARY")
  if cluster_exists "$STANDBY"; then
    port=$(cluster_port "$STANDBY")
    pg_ctlcluster "$VERSION" "$STANDBY" stop -m immediate >&2 2>&1 || true
  else
    port=$(free_port)
    say "creating cluster $VERSION/$STANDBY on 127.0.0.1:$port"
    pg_createcluster "$VERSION" "$STANDBY" --port "$port" --start-conf manual -- --wal-segsize=1 >&2
    write_conf "$STANDBY"
  fi
  data=/var/lib/postgresql/$VERSION/$STANDBY
  rm -rf "$data"
  as_pg "$BIN/pg_basebackup" -h /var/run/postgresql -p "$pport" -D "$data" -Fp -Xs -c fast -R >&2
  start_cluster "$STANDBY"
}

print_env() {
  local port sport
  port=$(cluster_port "$PRIMARY")
  sport=$(cluster_port "$STANDBY")
  echo "export DRILLBOOK_PGDEBIAN_VERSION=$VERSION"
  echo "export DRILLBOOK_PGDEBIAN_CLUSTER=$PRIMARY"
  echo "export DRILLBOOK_PGDEBIAN_PORT=$port"
  echo "export DRILLBOOK_PGDEBIAN_STANDBY=$STANDBY"
  echo "export DRILLBOOK_PGDEBIAN_STANDBY_PORT=$sport"
  echo "export DRILLBOOK_PGDEBIAN_ROOT=$ROOT"
}

up() {
  install_packages
  mkdir -p "$STATE_DIR" "$ARCHIVE" "$(dirname "$BACKUP")"
  chown -R postgres:postgres "$ROOT"
  if cluster_exists "$PRIMARY" && cluster_online "$PRIMARY"; then
    [ -f "$BACKUP/PG_VERSION" ] || take_backup
    if cluster_exists "$STANDBY"; then start_cluster "$STANDBY" || make_standby; else make_standby; fi
  else
    # Not running: start from a known state. Clusters that earlier runs drilled (restored many
    # times over, on many timelines, with their archive) would make each run test a different
    # server; a fresh primary, backup and standby take about half a minute.
    down
    mkdir -p "$STATE_DIR" "$ARCHIVE" "$(dirname "$BACKUP")"
    chown -R postgres:postgres "$ROOT"
    make_primary
    take_backup
    make_standby
  fi
  answers "$PRIMARY" && answers "$STANDBY" || { say "clusters do not answer"; return 1; }
  say "primary $VERSION/$PRIMARY on 127.0.0.1:$(cluster_port "$PRIMARY"), standby on $(cluster_port "$STANDBY")"
  print_env
}

down() {
  for name in "$STANDBY" "$PRIMARY"; do
    if cluster_exists "$name"; then
      say "dropping cluster $VERSION/$name"
      pg_ctlcluster "$VERSION" "$name" stop -m fast >&2 2>&1 || true
      pg_dropcluster "$VERSION" "$name" >&2 || true
    fi
    # pg_dropcluster leaves files it did not make (conf.d, kept data folders): remove them too.
    rm -rf "/etc/postgresql/$VERSION/$name" "/var/lib/postgresql/$VERSION/$name" \
      /var/lib/postgresql/"$VERSION"/"$name".drillbook-old-*
  done
  rm -rf "$ROOT" "$STATE_DIR"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  env)
    if cluster_exists "$PRIMARY" && cluster_online "$PRIMARY" && cluster_exists "$STANDBY" \
        && cluster_online "$STANDBY"; then
      print_env
    else
      say "not running (scripts/testenv up pgdebian)"
      exit 1
    fi
    ;;
  reseed-standby) make_standby ;;
  *) echo "usage: $0 up|down|env|reseed-standby" >&2; exit 2 ;;
esac

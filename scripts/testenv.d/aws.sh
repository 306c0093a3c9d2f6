#!/usr/bin/env bash
# scripts/testenv.d/aws.sh up|down|env — moto in server mode on 127.0.0.1, for AWS drills.
#
# AWS itself cannot be reached from these machines, so drills and tests talk to moto over a real
# HTTP boundary (docs/aws.md says what moto fakes). `up` is idempotent: a moto answering at the recorded port is
# reused. The exports point drillbook at moto with dummy credentials, so a sandbox drill can never
# reach a real account by accident. Only `export` lines go to stdout; progress goes to stderr.
set -euo pipefail

STATE_DIR=${DRILLBOOK_TESTENV_DIR:-/tmp/drillbook-testenv}/aws
PIDFILE=$STATE_DIR/moto.pid
PORTFILE=$STATE_DIR/moto.port
LOG=$STATE_DIR/moto.log
READY_TIMEOUT_S=${DRILLBOOK_MOTO_TIMEOUT:-30}

say() { echo "testenv aws: $*" >&2; }

py() { command -v python3 >/dev/null 2>&1 && echo python3 || echo python; }

answers() {
  # moto answers its own dashboard at /moto-api/ once the server is up; bounded by a 2 s
  # timeout. Not /moto-api/data.json: moto 5.2 answers 500 there once any RDS instance has
  # existed, which made a healthy, in-use moto look dead (and `up` restart it under its users).
  local port=$1
  "$(py)" - "$port" <<'EOF' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=2).read(1)
EOF
}

running_port() {
  # Prints the port of a moto this script started and that still answers; fails otherwise.
  [ -f "$PIDFILE" ] && [ -f "$PORTFILE" ] || return 1
  kill -0 "$(cat "$PIDFILE")" 2>/dev/null || return 1
  local port
  port=$(cat "$PORTFILE")
  answers "$port" || return 1
  echo "$port"
}

free_port() {
  "$(py)" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

print_env() {
  local port=$1
  echo "export DRILLBOOK_AWS_ENDPOINT_URL=http://127.0.0.1:$port"
  echo "export AWS_ACCESS_KEY_ID=testing"
  echo "export AWS_SECRET_ACCESS_KEY=testing"
  echo "export AWS_DEFAULT_REGION=us-east-1"
}

ensure_moto() {
  command -v moto_server >/dev/null 2>&1 && return 0
  say "moto_server missing: installing moto[server] with pip"
  "$(py)" -m pip install -q 'moto[server]>=5' >&2
}

up() {
  local port
  if port=$(running_port); then
    say "reusing moto pid $(cat "$PIDFILE") on 127.0.0.1:$port"
    print_env "$port"
    return 0
  fi
  ensure_moto
  mkdir -p "$STATE_DIR"
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    say "stopping unresponsive moto pid $(cat "$PIDFILE")"
    kill "$(cat "$PIDFILE")" 2>/dev/null || true
  fi
  rm -f "$PIDFILE" "$PORTFILE"
  port=$(free_port)
  say "starting moto_server on 127.0.0.1:$port (log $LOG)"
  # setsid: moto must outlive this script and the shell that eval'd its output.
  setsid moto_server -H 127.0.0.1 -p "$port" >"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  echo "$port" >"$PORTFILE"
  local waited=0
  until answers "$port"; do
    if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
      say "moto_server exited; last log lines:"
      tail -n 20 "$LOG" >&2 || true
      rm -f "$PIDFILE" "$PORTFILE"
      return 1
    fi
    if [ "$waited" -ge $((READY_TIMEOUT_S * 4)) ]; then
      say "moto_server did not answer within ${READY_TIMEOUT_S}s; last log lines:"
      tail -n 20 "$LOG" >&2 || true
      return 1
    fi
    sleep 0.25
    waited=$((waited + 1))
  done
  say "moto pid $(cat "$PIDFILE") answers on 127.0.0.1:$port"
  print_env "$port"
}

down() {
  if [ -f "$PIDFILE" ]; then
    local pid
    pid=$(cat "$PIDFILE")
    if kill -0 "$pid" 2>/dev/null; then
      say "stopping moto pid $pid"
      kill "$pid" 2>/dev/null || true
      local waited=0
      while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 40 ]; do
        sleep 0.25
        waited=$((waited + 1))
      done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    fi
  else
    say "no moto recorded in $STATE_DIR"
  fi
  rm -f "$PIDFILE" "$PORTFILE"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  env)
    if port=$(running_port); then print_env "$port"; else say "moto is not running (scripts/testenv up aws)"; exit 1; fi
    ;;
  *) echo "usage: $0 up|down|env" >&2; exit 2 ;;
esac

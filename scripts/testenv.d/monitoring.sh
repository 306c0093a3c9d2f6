#!/usr/bin/env bash
# scripts/testenv.d/monitoring.sh up|down|env — real Prometheus, Alertmanager and Pushgateway
# on 127.0.0.1, for alert drills (docs/monitoring.md).
#
# Debian's prometheus, prometheus-alertmanager and prometheus-pushgateway; no service starts by
# itself on these machines, so this script runs the binaries and stops them by PID. Prometheus
# loads the shipped rules (deploy/monitoring/rules/, checked with `promtool check rules` first)
# and scrapes what drillbook registers in a file_sd folder: the sandbox's ports are chosen at run
# time, so a drill writes one JSON file per target it wants scraped there, and Prometheus picks it
# up within its refresh interval (inotify, backed by a 1 s re-read). Alertmanager sends every
# alert to a webhook on 127.0.0.1:$DRILLBOOK_ALERT_RECEIVER_PORT, where drillbook listens while a
# drill runs, to time the notification. `up` is idempotent: what answers is reused.
# Only `export` lines go to stdout; progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
STATE_DIR=${DRILLBOOK_TESTENV_DIR:-/tmp/drillbook-testenv}/monitoring
PROM_PORT=${DRILLBOOK_PROMETHEUS_PORT:-19090}
PUSH_PORT=${DRILLBOOK_PUSHGATEWAY_PORT:-19091}
AM_PORT=${DRILLBOOK_ALERTMANAGER_PORT:-19093}
HOOK_PORT=${DRILLBOOK_ALERT_RECEIVER_PORT:-19095}
EVAL=${DRILLBOOK_PROMETHEUS_EVAL_INTERVAL:-1s}
READY_TIMEOUT_S=30
RULES_SRC=$repo/deploy/monitoring/rules

say() { echo "testenv monitoring: $*" >&2; }

print_env() {
  echo "export DRILLBOOK_PROMETHEUS_URL=http://127.0.0.1:$PROM_PORT"
  echo "export DRILLBOOK_ALERTMANAGER_URL=http://127.0.0.1:$AM_PORT"
  echo "export DRILLBOOK_PUSHGATEWAY_URL=http://127.0.0.1:$PUSH_PORT"
  echo "export DRILLBOOK_PROMETHEUS_SD_DIR=$STATE_DIR/file_sd"
  echo "export DRILLBOOK_ALERT_RECEIVER=127.0.0.1:$HOOK_PORT"
}

answers() {
  # Each server answers /-/ready once up; bounded by a 2 s timeout.
  python3 - "$1" <<'EOF' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/-/ready", timeout=2).read(1)
EOF
}

installed() {
  command -v prometheus >/dev/null && command -v promtool >/dev/null \
    && command -v prometheus-alertmanager >/dev/null && command -v prometheus-pushgateway >/dev/null
}

install() {
  installed && return 0
  say "installing Debian's prometheus, prometheus-alertmanager, prometheus-pushgateway (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  # Another apt (a second testenv component) may hold dpkg's lock: wait for it, bounded.
  local wait=(-o DPkg::Lock::Timeout=600)
  apt-get "${wait[@]}" update -qq >/dev/null 2>&1 || { say "apt-get update failed"; return 1; }
  # Without recommends: the packages pull no node exporter or web assets the drills do not use.
  apt-get "${wait[@]}" install -y -qq --no-install-recommends \
    prometheus prometheus-alertmanager prometheus-pushgateway >/dev/null 2>&1 \
    || { say "apt-get install failed"; return 1; }
  installed
}

write_config() {
  mkdir -p "$STATE_DIR/file_sd" "$STATE_DIR/rules" "$STATE_DIR/prom-data" "$STATE_DIR/am-data"
  cp "$RULES_SRC"/*.yml "$STATE_DIR/rules/"
  cat >"$STATE_DIR/prometheus.yml" <<EOF
# Written by scripts/testenv.d/monitoring.sh; regenerated on every up.
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: $EVAL
rule_files: ['$STATE_DIR/rules/*.yml']
alerting:
  alertmanagers: [{static_configs: [{targets: ['127.0.0.1:$AM_PORT']}]}]
scrape_configs:
  - job_name: drillbook-sandbox
    file_sd_configs: [{files: ['$STATE_DIR/file_sd/*.json'], refresh_interval: 1s}]
  - job_name: pushgateway
    honor_labels: true
    static_configs: [{targets: ['127.0.0.1:$PUSH_PORT']}]
EOF
  cat >"$STATE_DIR/alertmanager.yml" <<EOF
# Written by scripts/testenv.d/monitoring.sh. Every alert goes to drillbook's webhook receiver;
# group_wait 0s so the notification is as fast as Alertmanager can make it.
route:
  receiver: drillbook
  group_by: [alertname, instance]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: drillbook
    webhook_configs:
      - url: 'http://127.0.0.1:$HOOK_PORT/alert'
        send_resolved: true
EOF
  promtool check rules "$STATE_DIR"/rules/*.yml >&2
  promtool check config "$STATE_DIR/prometheus.yml" >&2
}

start() {
  # start NAME PORT COMMAND... — setsid: the server outlives the shell that eval'd our output.
  local name=$1 port=$2
  shift 2
  if [ -f "$STATE_DIR/$name.pid" ] && kill -0 "$(cat "$STATE_DIR/$name.pid")" 2>/dev/null \
     && answers "$port"; then
    say "reusing $name pid $(cat "$STATE_DIR/$name.pid") on 127.0.0.1:$port"
    return 0
  fi
  stop_one "$name"
  say "starting $name on 127.0.0.1:$port (log $STATE_DIR/$name.log)"
  setsid "$@" >"$STATE_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE_DIR/$name.pid"
  local waited=0
  until answers "$port"; do
    if ! kill -0 "$(cat "$STATE_DIR/$name.pid")" 2>/dev/null; then
      say "$name exited; last log lines:"; tail -n 20 "$STATE_DIR/$name.log" >&2 || true
      return 1
    fi
    if [ "$waited" -ge $((READY_TIMEOUT_S * 4)) ]; then
      say "$name did not answer within ${READY_TIMEOUT_S}s"; return 1
    fi
    sleep 0.25
    waited=$((waited + 1))
  done
}

stop_one() {
  local pidfile=$STATE_DIR/$1.pid pid waited=0
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    say "stopping $1 pid $pid"
    kill "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 40 ]; do sleep 0.25; waited=$((waited + 1)); done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

up() {
  install || return 1
  mkdir -p "$STATE_DIR"
  write_config
  start alertmanager "$AM_PORT" prometheus-alertmanager \
    --config.file="$STATE_DIR/alertmanager.yml" --storage.path="$STATE_DIR/am-data" \
    --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= || return 1
  start pushgateway "$PUSH_PORT" prometheus-pushgateway \
    --web.listen-address="127.0.0.1:$PUSH_PORT" || return 1
  start prometheus "$PROM_PORT" prometheus --config.file="$STATE_DIR/prometheus.yml" \
    --storage.tsdb.path="$STATE_DIR/prom-data" --web.listen-address="127.0.0.1:$PROM_PORT" \
    --web.enable-lifecycle || return 1
  # A reused Prometheus re-reads rules and config written above.
  python3 - "$PROM_PORT" <<'EOF' >/dev/null 2>&1 || true
import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/-/reload", method="POST"), timeout=5)
EOF
  print_env
}

down() {
  stop_one prometheus
  stop_one alertmanager
  stop_one pushgateway
}

running() {
  for n in prometheus alertmanager pushgateway; do
    [ -f "$STATE_DIR/$n.pid" ] && kill -0 "$(cat "$STATE_DIR/$n.pid")" 2>/dev/null || return 1
  done
  answers "$PROM_PORT" && answers "$AM_PORT"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  env)
    if running; then print_env; else say "not running (scripts/testenv up monitoring)"; exit 1; fi
    ;;
  *) echo "usage: $0 up|down|env" >&2; exit 2 ;;
esac

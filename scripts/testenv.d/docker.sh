#!/usr/bin/env bash
# scripts/testenv.d/docker.sh up|down|env — a private Docker Engine for drillbook's tests.
#
# Runs its own dockerd on its own socket and data-root (docs/docker.md), so it never touches a
# Docker Engine the machine may already run. `up` is idempotent: a daemon answering on the socket
# is reused. Nothing can be pulled here, so the tiny image drillbook/busybox is imported from the
# host's /bin/busybox (busybox-static). Debian's docker-compose is installed too, for the Compose
# paths. Only `export` lines go to stdout; progress goes to stderr.
set -euo pipefail

SOCK=/run/drillbook-docker.sock
HOST="unix://$SOCK"
DATA_ROOT=/var/lib/drillbook-docker
EXEC_ROOT=/run/drillbook-docker-exec
PIDFILE=/run/drillbook-dockerd.pid
LOG=/var/log/drillbook-dockerd.log
IMAGE=drillbook/busybox
READY_TIMEOUT_S=${DRILLBOOK_DOCKERD_TIMEOUT:-60}

say() { echo "testenv docker: $*" >&2; }

answers() {
  # The engine answers when /_ping says OK; bounded by curl's own timeout.
  [ -S "$SOCK" ] || return 1
  if command -v curl >/dev/null 2>&1; then
    [ "$(curl -s -m 2 --unix-socket "$SOCK" http://localhost/_ping 2>/dev/null)" = OK ]
  else
    DOCKER_HOST="$HOST" timeout 5 docker version >/dev/null 2>&1
  fi
}

install_missing() {
  local need=()
  command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
  # Debian's Compose v1 (1.29.2): the Compose drills and tests run the CLI teams' runbooks name.
  command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
  [ -x /bin/busybox ] && /bin/busybox --list >/dev/null 2>&1 || need+=(busybox-static)
  # busybox (dynamic) cannot run inside an empty container: insist on the static build.
  if [ -x /bin/busybox ] && ldd /bin/busybox >/dev/null 2>&1; then
    need+=(busybox-static)
  fi
  [ ${#need[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    say "missing ${need[*]} and not root: cannot install"
    return 1
  fi
  say "installing ${need[*]} (apt-get)"
  # Other sessions may hold apt's locks: wait for them (bounded) instead of failing.
  apt_retry update -qq
  apt_retry install -y -qq "${need[@]}"
}

apt_retry() {
  local tries=0
  local log=/tmp/drillbook-testenv-apt.log
  until DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 "$@" >"$log" 2>&1; do
    tail -n 3 "$log" >&2
    tries=$((tries + 1))
    if [ "$tries" -ge 24 ]; then say "apt-get $* kept failing"; return 1; fi
    say "apt-get busy or failed; retrying in 5s ($tries/24)"
    sleep 5
  done
}

start_daemon() {
  if answers; then
    say "reusing the dockerd answering on $SOCK"
    return 0
  fi
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    say "dockerd pid $(cat "$PIDFILE") is starting; waiting"
  else
    rm -f "$PIDFILE"
    mkdir -p "$DATA_ROOT" "$EXEC_ROOT"
    say "starting dockerd on $SOCK (log $LOG)"
    # setsid: the daemon must outlive this script and the shell that eval'd it.
    setsid dockerd -H "$HOST" --data-root "$DATA_ROOT" --exec-root "$EXEC_ROOT" \
      --pidfile "$PIDFILE" >"$LOG" 2>&1 </dev/null &
  fi
  local waited=0
  until answers; do
    if [ "$waited" -ge $((READY_TIMEOUT_S * 4)) ]; then
      say "dockerd did not answer within ${READY_TIMEOUT_S}s; last log lines:"
      tail -n 20 "$LOG" >&2 || true
      return 1
    fi
    sleep 0.25
    waited=$((waited + 1))
  done
  say "dockerd ready"
}

build_image() {
  # Same recipe as drillbook.backends.docker.images (tag latest); the release label marks it.
  if [ "$(DOCKER_HOST="$HOST" docker image inspect -f '{{index .Config.Labels "drillbook.release"}}' \
        "$IMAGE" 2>/dev/null)" = good ]; then
    return 0
  fi
  say "importing $IMAGE from /bin/busybox"
  local root
  root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/tmp" "$root/data" "$root/www" "$root/etc"
  cp /bin/busybox "$root/bin/busybox"
  local applet
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  echo 'root:x:0:' >"$root/etc/group"
  echo ok >"$root/www/health"
  echo 'drillbook sandbox: good release' >"$root/www/index.html"
  chmod 1777 "$root/tmp"
  tar -C "$root" -c . | DOCKER_HOST="$HOST" docker import \
    -c 'ENV PATH=/bin' -c 'ENV DRILLBOOK_RELEASE=good' -c 'EXPOSE 8080' \
    -c 'LABEL drillbook.release=good' -c 'CMD ["httpd","-f","-p","8080","-h","/www"]' \
    - "$IMAGE" >/dev/null
  rm -rf "$root"
}

case "${1:-}" in
  up)
    install_missing
    start_daemon
    build_image
    echo "export DOCKER_HOST=$HOST"
    ;;
  down)
    if [ -f "$PIDFILE" ]; then
      pid=$(cat "$PIDFILE")
      if kill -0 "$pid" 2>/dev/null; then
        say "stopping dockerd pid $pid"
        kill -TERM "$pid"
        for _ in $(seq 1 80); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        if kill -0 "$pid" 2>/dev/null; then
          say "dockerd pid $pid still alive after 20s; sending KILL"
          kill -KILL "$pid" || true
        fi
      fi
      rm -f "$PIDFILE"
    else
      say "no pidfile at $PIDFILE: nothing to stop"
    fi
    ;;
  env)
    if answers; then echo "export DOCKER_HOST=$HOST"; else say "dockerd not running on $SOCK"; fi
    ;;
  *)
    echo "usage: scripts/testenv.d/docker.sh up|down|env" >&2
    exit 2
    ;;
esac

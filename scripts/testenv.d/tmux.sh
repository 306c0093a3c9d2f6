#!/usr/bin/env bash
# scripts/testenv.d/tmux.sh up|down|env
#
# A real terminal for the GameDay tests (tests/runbook/test_gameday.py): Debian's tmux, driven
# with send-keys as a person at the keyboard would. Nothing is started, so `down` has nothing to
# stop (each test starts and kills its own tmux server on a private socket). Only `export` lines
# go to stdout.
set -euo pipefail
bin=/usr/bin/tmux

installed() { [ -x "$bin" ]; }

case "${1:-}" in
  up)
    if ! installed; then
      echo "tmux: installing Debian's tmux (apt-get)..." >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >/dev/null 2>&1 || { echo "tmux: apt-get update failed" >&2; exit 1; }
      apt-get install -y -qq --no-install-recommends tmux >/dev/null 2>&1 \
        || { echo "tmux: apt-get install tmux failed" >&2; exit 1; }
    fi
    installed || { echo "tmux: $bin missing after install" >&2; exit 1; }
    echo "export DRILLBOOK_TMUX=$bin"
    ;;
  down)
    ;;
  env)
    if installed; then echo "export DRILLBOOK_TMUX=$bin"; fi
    ;;
  *)
    echo "usage: tmux.sh up|down|env" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# scripts/testenv.d/chromium.sh up|down|env
#
# A real headless browser for the HTML report tests (tests/report/). Debian's chromium package;
# nothing is started, so `down` has nothing to stop. Only `export` lines go to stdout.
# Chromium needs, as root on these machines: --headless --no-sandbox --disable-gpu --disable-quic
# --no-first-run --disable-background-networking --disable-component-update --disable-sync
# --user-data-dir=<fresh temp dir>  (the tests pass these themselves).
set -euo pipefail
bin=/usr/bin/chromium

installed() { [ -x "$bin" ]; }

case "${1:-}" in
  up)
    if ! installed; then
      echo "chromium: installing Debian's chromium (apt-get)..." >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >/dev/null 2>&1 || { echo "chromium: apt-get update failed" >&2; exit 1; }
      apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
        || { echo "chromium: apt-get install chromium failed" >&2; exit 1; }
    fi
    installed || { echo "chromium: $bin missing after install" >&2; exit 1; }
    echo "export DRILLBOOK_CHROMIUM=$bin"
    ;;
  down)
    ;;
  env)
    if installed; then echo "export DRILLBOOK_CHROMIUM=$bin"; fi
    ;;
  *)
    echo "usage: chromium.sh up|down|env" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# scripts/testenv.d/tools.sh up|down|env
#
# Host tools for the resource faults' tests (tests/pressure/): stress-ng (the CPU/memory/IO hog
# where installed; the bounded Python worker stands in otherwise) and libfaketime (clock.skew).
# Debian packages stress-ng and faketime; nothing is started, so `down` has nothing to stop.
# Only `export` lines go to stdout.
set -euo pipefail
stress=/usr/bin/stress-ng
faketime=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -n1 || true)

installed() { [ -x "$stress" ] && [ -n "$faketime" ] && [ -e "$faketime" ]; }
exports() {
  echo "export DRILLBOOK_STRESS_NG=$stress"
  echo "export DRILLBOOK_LIBFAKETIME=$faketime"
}

case "${1:-}" in
  up)
    if ! installed; then
      echo "tools: installing Debian's stress-ng and faketime (apt-get)..." >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >/dev/null 2>&1 || { echo "tools: apt-get update failed" >&2; exit 1; }
      apt-get install -y -qq --no-install-recommends stress-ng faketime >/dev/null 2>&1 \
        || { echo "tools: apt-get install stress-ng faketime failed" >&2; exit 1; }
      faketime=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -n1 || true)
    fi
    installed || { echo "tools: stress-ng or libfaketime missing after install" >&2; exit 1; }
    exports
    ;;
  down)
    ;;
  env)
    if installed; then exports; fi
    ;;
  *)
    echo "usage: tools.sh up|down|env" >&2
    exit 2
    ;;
esac

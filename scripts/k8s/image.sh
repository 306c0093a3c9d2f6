#!/usr/bin/env bash
# scripts/k8s/image.sh [TAG] — build the drillbook image with no registry, on the engine
# DOCKER_HOST names (default: the test engine). Progress goes to stderr; the tag to stdout.
#
# 1. A Debian bookworm root filesystem (debootstrap --variant=minbase from the mirror in
#    /etc/apt/sources.list.d/debian.sources) with python3, pip and setuptools, cached as a tarball
#    under ~/.cache/drillbook/rootfs/ so a machine builds it once.
# 2. drillbook's wheel and its dependencies' wheels, built on the host (pip wheel) and installed
#    inside the root filesystem without an index; `docker import` makes it drillbook/base:bookworm.
# 3. deploy/kubernetes/Dockerfile on top (BASE=drillbook/base:bookworm; its pip install then needs
#    no network, the dependencies being there already).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TAG=${1:-drillbook:0.1.0}
export DOCKER_HOST=${DOCKER_HOST:-unix:///run/drillbook-docker.sock}
CACHE=${DRILLBOOK_ROOTFS_CACHE:-$HOME/.cache/drillbook/rootfs}
ROOTFS_TAR=$CACHE/bookworm-minbase-python3.tar
BASE=drillbook/base:bookworm
PYTHON=${PYTHON:-python3}
say() { echo "drillbook image: $*" >&2; }

mirror() { # the first Debian mirror apt uses here
  awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources
}

base_rootfs() {
  [ -s "$ROOTFS_TAR" ] && return 0
  command -v debootstrap >/dev/null || {
    say "apt-get install debootstrap"
    apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq debootstrap >&2
  }
  local root
  mkdir -p "$CACHE"
  root=$(mktemp -d "$CACHE/root.XXXXXX")
  say "debootstrap --variant=minbase bookworm from $(mirror) (a few minutes, once per machine)"
  debootstrap --variant=minbase bookworm "$root" "$(mirror)" >&2
  cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/" 2>/dev/null || true
  say "apt-get install python3 python3-pip python3-setuptools inside"
  chroot "$root" apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -qq --no-install-recommends \
    python3 python3-pip python3-setuptools python3-wheel >&2
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
  # The image is a single-purpose environment: pip installs into it as python:3.11-slim's would.
  rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
  tar -C "$root" -cf "$ROOTFS_TAR.tmp" .
  mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
  rm -rf "$root"
}

base_image() {
  local stamp wheels root
  stamp=$(cd "$here" && cat pyproject.toml | md5sum | cut -c1-12)
  if [ "$(docker image inspect -f '{{index .Config.Labels "drillbook.deps"}}' "$BASE" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  wheels=$(mktemp -d)
  say "pip wheel: drillbook and its dependencies (from the host's package index)"
  "$PYTHON" -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$wheels" "$here" \
    'setuptools>=68' >&2
  root=$(mktemp -d "$CACHE/base.XXXXXX")
  tar -C "$root" -xf "$ROOTFS_TAR"
  mkdir -p "$root/tmp/wheels"
  cp "$wheels"/*.whl "$root/tmp/wheels/"
  say "pip install (no index) inside the root filesystem"
  chroot "$root" python3 -m pip install --quiet --no-index --find-links /tmp/wheels \
    --disable-pip-version-check 'setuptools>=68' \
    "$(cd "$wheels" && ls drillbook-*.whl | head -n1 | sed 's|^|/tmp/wheels/|')" >&2
  rm -rf "$root/tmp/wheels" "$wheels"
  say "docker import $BASE"
  tar -C "$root" -c . | docker import -c 'ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1' \
    -c "LABEL drillbook.deps=$stamp" - "$BASE" >/dev/null
  rm -rf "$root"
}

base_rootfs
base_image
say "docker build -f deploy/kubernetes/Dockerfile (BASE=$BASE)"
docker build -q -f "$here/deploy/kubernetes/Dockerfile" --build-arg "BASE=$BASE" \
  --build-arg "PIP_INSTALL_ARGS=--no-deps --no-build-isolation --no-index" -t "$TAG" "$here" >&2
echo "$TAG"

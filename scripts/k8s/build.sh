#!/usr/bin/env bash
# Build kube-apiserver, kube-controller-manager, kube-scheduler and kubelet 1.20.2 from Debian's
# `kubernetes` source package, and the pause program from the same tree's build/pause, into a
# cache outside the repo (no binary or image can be downloaded here). The kubelet is built with
# the oom_score_adj overlay of oom_overlay.sh. Rebuilds only what is missing. Progress goes to
# stderr. See docs/kubernetes.md.
set -euo pipefail
cache=${DRILLBOOK_K8S_CACHE:-$HOME/.cache/drillbook/k8s-1.20.2}
bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet)
log() { echo "k8s build: $*" >&2; }

missing=0
for b in "${bins[@]}" pause; do [ -x "$cache/bin/$b" ] || missing=1; done
if [ "$missing" = 0 ]; then log "binaries cached in $cache/bin"; exit 0; fi

need_pkgs=()
[ -x /usr/lib/go-1.19/bin/go ] || need_pkgs+=(golang-1.19-go)
command -v rsync >/dev/null || need_pkgs+=(rsync)
[ -d /usr/share/gocode/src/github.com/modern-go/reflect2 ] || need_pkgs+=(golang-github-modern-go-reflect2-dev)
command -v dpkg-source >/dev/null || need_pkgs+=(dpkg-dev)
command -v make >/dev/null || need_pkgs+=(make)
command -v gcc >/dev/null || need_pkgs+=(gcc)
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || [ -f /usr/lib/libc.a ] || need_pkgs+=(libc6-dev)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "apt-get install ${need_pkgs[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 || true
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need_pkgs[@]}" >&2
fi

src=$cache/src
mkdir -p "$src/parts" "$src/lists/partial" "$cache/bin"
sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >"$src/parts/src.sources"
O=(-o Dir::Etc::sourcelist=/dev/null -o "Dir::Etc::sourceparts=$src/parts" -o "Dir::State::Lists=$src/lists")
if ! ls "$src"/kubernetes_*.orig.tar.* >/dev/null 2>&1; then
  log "fetching Debian source package kubernetes"
  apt-get "${O[@]}" update -qq >&2
  (cd "$src" && apt-get "${O[@]}" source --download-only kubernetes >&2)
fi
tree=$(find "$src" -maxdepth 1 -type d -name 'kubernetes-*' | head -n1)
if [ -z "$tree" ]; then
  log "unpacking"
  orig=$(ls "$src"/kubernetes_*.orig.tar.* | head -n1)
  tar -C "$src" -xf "$orig"
  tree=$(find "$src" -maxdepth 1 -type d -name 'kubernetes-*' | head -n1)
fi
[ -n "$tree" ] || { log "could not unpack the source"; exit 1; }
log "swapping vendored reflect2 for Debian's (the vendored one crashes on custom objects)"
r2=$tree/vendor/github.com/modern-go/reflect2
# Replace, not overlay: the old go_above_17.go/go_below_19.go clash with the new files.
rm -f "$r2"/*.go "$r2"/*.s
cp /usr/share/gocode/src/github.com/modern-go/reflect2/*.go "$r2/"
cp /usr/share/gocode/src/github.com/modern-go/reflect2/*.s "$r2/" 2>/dev/null || true
log "building (about 5 minutes on 2 cores; the kubelet about 1 more)"
# One target per make call: building all three in one call failed here without a message.
for b in "${bins[@]}"; do
  [ -x "$cache/bin/$b" ] && continue
  log "building $b"
  goflags=
  if [ "$b" = kubelet ]; then
    # -overlay first: hack/lib/golang.sh parses the build tags out of GOFLAGS after "-tags=".
    goflags="-overlay=$(bash "$(dirname "$0")/oom_overlay.sh" "$tree" "$cache/oom-overlay") -tags=selinux"
  fi
  (cd "$tree" && PATH=/usr/lib/go-1.19/bin:$PATH CGO_ENABLED=0 GOFLAGS=$goflags make WHAT="cmd/$b" >&2)
  install -m 0755 "$tree/_output/local/bin/linux/amd64/$b" "$cache/bin/$b"
done
if [ ! -x "$cache/bin/pause" ]; then
  log "building pause from build/pause/linux/pause.c (static, for the pod sandbox image)"
  gcc -Os -static -DVERSION=v3.4.1-drillbook -o "$cache/bin/pause" "$tree/build/pause/linux/pause.c"
fi
log "binaries cached in $cache/bin"

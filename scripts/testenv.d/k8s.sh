#!/usr/bin/env bash
# scripts/testenv.d/k8s.sh up|down|env — a real Kubernetes 1.20 control plane on 127.0.0.1.
#
# No kube-apiserver binary can be downloaded on these machines, so scripts/k8s/build.sh builds
# kube-apiserver, kube-controller-manager and kube-scheduler once from Debian's source package
# into ~/.cache/drillbook/k8s-1.20.2/bin (never into the repo). `up` then starts etcd, the
# apiserver (own CA, token auth, RBAC, service-account keys), the controller-manager and the
# scheduler, and two real kubelets (scripts/k8s/nodes.sh): node drill-node-1 on the test Docker
# engine (scripts/testenv.d/docker.sh), node drill-node-2 on a second dockerd of its own, so pods
# really run, pass probes, restart and move on a drain. DRILLBOOK_K8S_KUBELET=fake starts the old
# stand-in instead (scripts/k8s/fake_kubelet.py: no containers run; it only writes pod and node
# status, as kwok does). `up` is idempotent: a healthy running set is reused. Only `export` lines
# go to stdout; progress goes to stderr. DRILLBOOK_K8S_RUN picks the state folder (one cluster
# per folder; ports are picked free).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${DRILLBOOK_K8S_CACHE:-$HOME/.cache/drillbook/k8s-1.20.2}
RUN=${DRILLBOOK_K8S_RUN:-$HOME/.cache/drillbook/k8s-run}
BIN=$CACHE/bin
PKI=$RUN/pki
KUBECONFIG_OUT=$RUN/kubeconfig
CONTEXT=${DRILLBOOK_K8S_CONTEXT:-drillbook-local}
KUBELET_MODE=${DRILLBOOK_K8S_KUBELET:-real}
[ -f "$RUN/kubelet.mode" ] && [ -z "${DRILLBOOK_K8S_KUBELET:-}" ] && KUBELET_MODE=$(cat "$RUN/kubelet.mode")
if [ "$KUBELET_MODE" = fake ]; then
  NODES=${DRILLBOOK_K8S_NODES:-drill-node-a,drill-node-b,drill-node-c}
  NODE_COMPONENTS=(fake-kubelet)
else
  NODES=drill-node-1,drill-node-2
  NODE_COMPONENTS=(kubelet-drill-node-1 kubelet-drill-node-2 dockerd-drill-node-2)
fi
READY_DELAY=${DRILLBOOK_K8S_READY_DELAY:-0.5}
PYTHON=${PYTHON:-python3}
READY_TIMEOUT_S=${DRILLBOOK_K8S_TIMEOUT:-120}
COMPONENTS=("${NODE_COMPONENTS[@]}" kube-scheduler kube-controller-manager kube-apiserver etcd)

say() { echo "testenv k8s: $*" >&2; }

apt_retry() {
  local tries=0 log=/tmp/drillbook-testenv-apt-k8s.log
  until DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 "$@" >"$log" 2>&1; do
    tail -n 3 "$log" >&2
    tries=$((tries + 1))
    if [ "$tries" -ge 24 ]; then say "apt-get $* kept failing"; return 1; fi
    say "apt-get busy or failed; retrying in 5s ($tries/24)"
    sleep 5
  done
}

alive() { # alive NAME: the recorded PID is a live (non-zombie) process
  local f="$RUN/$1.pid" pid state
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo Z)
  [ "$state" != Z ]
}

port_of() { cat "$RUN/$1.port" 2>/dev/null || true; }

free_port() { # free_port PREFERRED: PREFERRED if nothing listens there, else one the kernel picks
  "$PYTHON" - "$1" <<'EOF'
import socket, sys
want = int(sys.argv[1])
for port in (want, 0):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        print(s.getsockname()[1])
        break
    except OSError:
        continue
    finally:
        s.close()
EOF
}

healthy() {
  local port
  port=$(port_of apiserver)
  [ -n "$port" ] && [ -f "$RUN/admin.token" ] || return 1
  curl -s -m 3 --cacert "$PKI/ca.crt" -H "Authorization: Bearer $(cat "$RUN/admin.token")" \
    "https://127.0.0.1:$port/readyz" 2>/dev/null | grep -qx ok
}

all_alive() {
  local c
  for c in "${COMPONENTS[@]}"; do alive "$c" || return 1; done
}

print_env() {
  echo "export KUBECONFIG=$KUBECONFIG_OUT"
  # Which engine runs which node's containers (tests look pods' containers up there).
  if [ "$KUBELET_MODE" != fake ]; then
    echo "export DRILLBOOK_K8S_NODE_ENGINES=drill-node-1=$(cat "$RUN/drill-node-1/docker.host"),drill-node-2=$(cat "$RUN/drill-node-2/docker.host")"
  fi
}

stop_all() {
  local c pid i
  # Every component either mode may have started (a switch of mode must not leave one running).
  for c in fake-kubelet kubelet-drill-node-1 kubelet-drill-node-2 dockerd-drill-node-2 \
    kube-scheduler kube-controller-manager kube-apiserver etcd; do
    if alive "$c"; then
      pid=$(cat "$RUN/$c.pid")
      say "stopping $c (pid $pid)"
      kill "$pid" 2>/dev/null || true
      for i in $(seq 1 50); do alive "$c" || break; sleep 0.1; done
      alive "$c" && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$RUN/$c.pid"
  done
}

make_pki() {
  [ -f "$PKI/apiserver.crt" ] && [ -f "$PKI/sa.key" ] && return 0
  say "making a CA, a serving certificate (SAN IP:127.0.0.1) and service-account keys"
  mkdir -p "$PKI"
  (
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
      -subj "/CN=drillbook-test-ca" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr \
      -subj "/CN=kube-apiserver" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default\n' \
      >san.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
      -out apiserver.crt -days 3650 -extfile san.ext 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
}

write_kubeconfigs() {
  local port=$1 token ca
  token=$(cat "$RUN/admin.token")
  ca=$(base64 -w0 <"$PKI/ca.crt")
  cat >"$KUBECONFIG_OUT" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: $CONTEXT
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority-data: $ca
users:
- name: drillbook-admin
  user:
    token: $token
contexts:
- name: $CONTEXT
  context: {cluster: $CONTEXT, user: drillbook-admin, namespace: default}
current-context: $CONTEXT
EOF
  chmod 600 "$KUBECONFIG_OUT"
}

start() { # start NAME CMD...: run detached, record PID, log to RUN/NAME.log
  local name=$1
  shift
  setsid "$@" >"$RUN/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

wait_for() { # wait_for WHAT TIMEOUT CMD...
  local what=$1 timeout=$2 i
  shift 2
  for i in $(seq 1 $((timeout * 5))); do
    "$@" && return 0
    sleep 0.2
  done
  say "$what did not become ready within ${timeout}s"
  return 1
}

etcd_ok() { curl -s -m 2 "http://127.0.0.1:$(port_of etcd)/health" 2>/dev/null | grep -q '"true"'; }

up() {
  if all_alive && healthy; then
    say "control plane already running"
    print_env
    return 0
  fi
  stop_all
  mkdir -p "$RUN"
  command -v etcd >/dev/null 2>&1 || { say "installing etcd-server"; apt_retry update -qq; apt_retry install -y -qq etcd-server; }
  command -v curl >/dev/null 2>&1 || apt_retry install -y -qq curl
  bash "$here/k8s/build.sh"
  "$PYTHON" -c 'import kubernetes' 2>/dev/null || { say "$PYTHON lacks the kubernetes client (pip install -e .)"; return 1; }
  make_pki
  [ -f "$RUN/admin.token" ] || "$PYTHON" -c 'import secrets; print(secrets.token_hex(24))' >"$RUN/admin.token"
  chmod 600 "$RUN/admin.token"
  printf '%s,drillbook-admin,drillbook-admin,"system:masters"\n' "$(cat "$RUN/admin.token")" >"$RUN/tokens.csv"

  local etcd_port peer_port api_port
  etcd_port=$(free_port 23790)
  peer_port=$(free_port 23800)
  echo "$etcd_port" >"$RUN/etcd.port"
  say "starting etcd on 127.0.0.1:$etcd_port"
  start etcd etcd --name drillbook --data-dir "$RUN/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "drillbook=http://127.0.0.1:$peer_port"
  wait_for etcd 30 etcd_ok

  api_port=$(free_port 6443)
  echo "$api_port" >"$RUN/apiserver.port"
  say "starting kube-apiserver on 127.0.0.1:$api_port"
  start kube-apiserver "$BIN/kube-apiserver" --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
    --secure-port="$api_port" --insecure-port=0 \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" --token-auth-file="$RUN/tokens.csv" \
    --authorization-mode=Node,RBAC \
    --service-account-issuer=https://kubernetes.default.svc \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --service-cluster-ip-range=10.96.0.0/16 --endpoint-reconciler-type=none \
    --allow-privileged=true --profiling=false
  write_kubeconfigs "$api_port"
  wait_for kube-apiserver 60 healthy

  say "starting kube-controller-manager and kube-scheduler"
  start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig="$KUBECONFIG_OUT" \
    --leader-elect=false --port=0 --secure-port=0 \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --use-service-account-credentials=false --controllers='*,-nodeipam' \
    --node-monitor-grace-period=40s --pod-eviction-timeout=5m --profiling=false
  start kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$KUBECONFIG_OUT" \
    --leader-elect=false --port=0 --secure-port=0 --profiling=false

  echo "$KUBELET_MODE" >"$RUN/kubelet.mode"
  if [ "$KUBELET_MODE" = fake ]; then
    say "registering nodes $NODES and starting the kubelet stand-in (ready delay ${READY_DELAY}s)"
    start fake-kubelet "$PYTHON" "$here/k8s/fake_kubelet.py" --kubeconfig "$KUBECONFIG_OUT" \
      --nodes "$NODES" --ready-delay "$READY_DELAY"
  else
    # shellcheck source=../k8s/nodes.sh
    source "$here/k8s/nodes.sh"
    start_nodes "$api_port"
  fi
  wait_for "nodes $NODES Ready and default service account" "$READY_TIMEOUT_S" cluster_ready
  forget_other_nodes
  all_alive || { say "a component died; see $RUN/*.log"; stop_all; return 1; }
  say "ready: KUBECONFIG=$KUBECONFIG_OUT context=$CONTEXT"
  print_env
}

forget_other_nodes() { # Node objects of the other mode (kept in etcd) would confuse the tests
  local port token n
  port=$(port_of apiserver)
  token=$(cat "$RUN/admin.token")
  for n in $(curl -s -m 5 --cacert "$PKI/ca.crt" -H "Authorization: Bearer $token" \
    "https://127.0.0.1:$port/api/v1/nodes" | "$PYTHON" -c \
    'import json,sys; print(" ".join(i["metadata"]["name"] for i in json.load(sys.stdin)["items"]))'); do
    case ",$NODES," in *",$n,"*) continue ;; esac
    say "deleting Node $n (not a node of this mode)"
    curl -s -m 5 -o /dev/null --cacert "$PKI/ca.crt" -H "Authorization: Bearer $token" \
      -X DELETE "https://127.0.0.1:$port/api/v1/nodes/$n" || true
  done
}

cluster_ready() {
  KUBECONFIG="$KUBECONFIG_OUT" "$PYTHON" "$here/k8s/fake_kubelet.py" --kubeconfig "$KUBECONFIG_OUT" \
    --nodes "$NODES" --check >/dev/null 2>&1
}

case "${1:-}" in
  up) up ;;
  down)
    stop_all
    if [ "$KUBELET_MODE" != fake ]; then source "$here/k8s/nodes.sh"; clean_nodes; fi
    say "stopped"
    ;;
  env)
    if all_alive && healthy; then print_env; else say "not running"; exit 1; fi
    ;;
  *) echo "usage: $0 up|down|env" >&2; exit 2 ;;
esac

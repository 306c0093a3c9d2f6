# scripts/k8s/nodes.sh — sourced by scripts/testenv.d/k8s.sh: two real kubelets as the test
# cluster's nodes, each on its own Docker engine (two kubelets on one engine kill each other's
# containers).
#
#   drill-node-1  the test Docker engine (scripts/testenv.d/docker.sh, DOCKER_HOST of the tests),
#                 so `docker ps` there shows its pods' containers
#   drill-node-2  a second dockerd of this cluster's own: its own socket, data root, exec root
#                 (and so its own containerd), bridge and no iptables rules
#
# Each kubelet (dockershim, 1.20) runs with a client certificate from the cluster's CA
# (O=system:nodes, CN=system:node:NAME: the Node authorizer admits it), its own root, cert and
# dockershim folders, its own free ports and its own cgroup root. The pod sandbox image is the
# tree's pause.c built statically by build.sh and imported as drillbook/pause:3.4.1; the demo
# image drillbook/web:1 is drillbook/busybox (busybox httpd on :8080) re-tagged so its pull policy
# is IfNotPresent. The same pause build is also tagged registry.k8s.io/pause:3.2, the image
# drillbook's sandbox Deployment defaults to, so that Deployment runs unchanged. Both engines get
# the images (docker save | docker load): nothing can be pulled.
# Expects from the caller: RUN, PKI, BIN, KUBECONFIG_OUT, CONTEXT, here, say, start, alive,
# free_port, PYTHON.

PAUSE_IMAGE=drillbook/pause:3.4.1
WEB_IMAGE=drillbook/web:1
DEMO_IMAGE=registry.k8s.io/pause:3.2
# One real-kubelet cluster per engine: kubelets sharing an engine remove each other's pods.
SHARED_DOCKER_HOST=${DRILLBOOK_K8S_NODE1_DOCKER_HOST:-unix:///run/drillbook-docker.sock}

node_tag() { # a short, stable id of this cluster's state folder (bridge and exec-root names)
  printf '%s' "$RUN" | md5sum | cut -c1-6
}

node_pki() { # node_pki NAME DIR
  local name=$1 dir=$2
  [ -f "$dir/pki/client.crt" ] && return 0
  mkdir -p "$dir/pki"
  openssl req -newkey rsa:2048 -nodes -keyout "$dir/pki/client.key" -out "$dir/pki/client.csr" \
    -subj "/O=system:nodes/CN=system:node:$name" 2>/dev/null
  openssl x509 -req -in "$dir/pki/client.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
    -CAcreateserial -out "$dir/pki/client.crt" -days 3650 2>/dev/null
}

node_kubeconfig() { # node_kubeconfig NAME DIR API_PORT
  local name=$1 dir=$2 port=$3
  cat >"$dir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: $CONTEXT
  cluster: {server: "https://127.0.0.1:$port", certificate-authority: "$PKI/ca.crt"}
users:
- name: $name
  user: {client-certificate: "$dir/pki/client.crt", client-key: "$dir/pki/client.key"}
contexts:
- name: $name
  context: {cluster: $CONTEXT, user: $name}
current-context: $name
EOF
  chmod 600 "$dir/kubeconfig"
}

docker_answers() { # docker_answers HOST
  [ "$(curl -s -m 2 --unix-socket "${1#unix://}" http://localhost/_ping 2>/dev/null)" = OK ]
}

second_engine() { # second_engine DIR: start (or reuse) node-2's dockerd; prints its DOCKER_HOST
  local dir=$1 tag sock bridge net i
  tag=$(node_tag)
  sock=$dir/docker.sock
  if alive dockerd-drill-node-2 && docker_answers "unix://$sock"; then
    echo "unix://$sock"
    return 0
  fi
  bridge=dbk2-$tag
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    # A /24 in 172.30.0.0/16 that no route on this machine uses yet.
    for i in $(seq $((16#${tag:0:2})) 255) $(seq 1 255); do
      ip route | grep -q "^172\.30\.$i\." || { net=$i; break; }
    done
    ip link add "$bridge" type bridge
    ip addr add "172.30.$net.1/24" dev "$bridge"
    ip link set "$bridge" up
  fi
  mkdir -p "$dir/docker-data" "/run/dbk-$tag"
  rm -f "$sock"
  say "starting drill-node-2's dockerd on $sock (bridge $bridge, no iptables)"
  start dockerd-drill-node-2 dockerd -H "unix://$sock" --data-root "$dir/docker-data" \
    --exec-root "/run/dbk-$tag" --pidfile "$dir/dockerd.pid" --bridge "$bridge" \
    --iptables=false --ip-masq=false
  for i in $(seq 1 240); do docker_answers "unix://$sock" && break; sleep 0.25; done
  docker_answers "unix://$sock" || { say "drill-node-2's dockerd did not answer; see $RUN/dockerd-drill-node-2.log"; return 1; }
  echo "unix://$sock"
}

node_images() { # node_images DOCKER_HOST: the pause and demo images on node-1's engine, then copied
  local host=$1 root
  if ! DOCKER_HOST=$SHARED_DOCKER_HOST docker image inspect "$PAUSE_IMAGE" >/dev/null 2>&1; then
    say "importing $PAUSE_IMAGE (build/pause/linux/pause.c, static)"
    root=$(mktemp -d)
    install -m 0755 "$BIN/pause" "$root/pause"
    tar -C "$root" -c . | DOCKER_HOST=$SHARED_DOCKER_HOST docker import \
      -c 'ENTRYPOINT ["/pause"]' - "$PAUSE_IMAGE" >/dev/null
    rm -rf "$root"
  fi
  DOCKER_HOST=$SHARED_DOCKER_HOST docker image inspect "$DEMO_IMAGE" >/dev/null 2>&1 ||
    DOCKER_HOST=$SHARED_DOCKER_HOST docker tag "$PAUSE_IMAGE" "$DEMO_IMAGE"
  DOCKER_HOST=$SHARED_DOCKER_HOST docker image inspect "$WEB_IMAGE" >/dev/null 2>&1 ||
    DOCKER_HOST=$SHARED_DOCKER_HOST docker tag drillbook/busybox:latest "$WEB_IMAGE"
  [ "$host" = "$SHARED_DOCKER_HOST" ] && return 0
  local img
  for img in "$PAUSE_IMAGE" "$DEMO_IMAGE" "$WEB_IMAGE"; do
    DOCKER_HOST=$host docker image inspect "$img" >/dev/null 2>&1 && continue
    say "copying $img to $host"
    DOCKER_HOST=$SHARED_DOCKER_HOST docker save "$img" | DOCKER_HOST=$host docker load >/dev/null
  done
}

cgroup_root() { # cgroup_root NAME: created beforehand in every v1 hierarchy
  local cg=/drillbook-$(node_tag)-$1 h
  for h in /sys/fs/cgroup/*/; do
    [ -d "$h" ] && mkdir -p "$h${cg#/}" 2>/dev/null || true
  done
  echo "$cg"
}

start_node() { # start_node NAME DOCKER_HOST API_PORT
  local name=$1 host=$2 api=$3 dir=$RUN/$1 port hport cg
  mkdir -p "$dir/kubelet" "$dir/dockershim" "$dir/certs"
  echo "$host" >"$dir/docker.host"
  node_pki "$name" "$dir"
  node_kubeconfig "$name" "$dir" "$api"
  port=$(free_port 0)
  hport=$(free_port 0)
  cg=$(cgroup_root "$name")
  cat >"$dir/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $hport
cgroupDriver: cgroupfs
cgroupRoot: $cg
failSwapOn: false
oomScoreAdj: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: "$PKI/ca.crt"}
authorization: {mode: AlwaysAllow}
evictionHard: {}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
EOF
  say "starting kubelet $name on engine $host (port $port)"
  start "kubelet-$name" "$BIN/kubelet" --config="$dir/config.yaml" --kubeconfig="$dir/kubeconfig" \
    --hostname-override="$name" --node-ip=127.0.0.1 --node-labels=drillbook.io/drills=allowed \
    --container-runtime=docker --docker-endpoint="$host" \
    --container-runtime-endpoint="unix://$dir/dockershim.sock" \
    --image-service-endpoint="unix://$dir/dockershim.sock" \
    --experimental-dockershim-root-directory="$dir/dockershim" \
    --root-dir="$dir/kubelet" --cert-dir="$dir/certs" \
    --pod-infra-container-image="$PAUSE_IMAGE"
}

start_nodes() { # start_nodes API_PORT
  local api=$1 host2
  bash "$here/testenv.d/docker.sh" up >/dev/null
  command -v ip >/dev/null || { say "needs iproute2 (ip)"; return 1; }
  node_images "$SHARED_DOCKER_HOST"
  mkdir -p "$RUN/drill-node-2"
  host2=$(second_engine "$RUN/drill-node-2")
  node_images "$host2"
  start_node drill-node-1 "$SHARED_DOCKER_HOST" "$api"
  start_node drill-node-2 "$host2" "$api"
}

clean_nodes() { # after stop_all: node-1's pod containers, the bridge of node-2's engine
  local bridge ids
  ids=$(DOCKER_HOST=$SHARED_DOCKER_HOST docker ps -aq --filter label=io.kubernetes.docker.type 2>/dev/null || true)
  # shellcheck disable=SC2086
  [ -n "$ids" ] && DOCKER_HOST=$SHARED_DOCKER_HOST docker rm -f $ids >/dev/null 2>&1 || true
  bridge=dbk2-$(node_tag)
  ip link show "$bridge" >/dev/null 2>&1 && ip link del "$bridge" 2>/dev/null || true
}

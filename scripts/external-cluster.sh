#!/usr/bin/env bash
# A cluster stageproof did not create, as a team would have one: a 3-node kind cluster from our node
# image, whose nodes pull every image through the team's own registry (Debian's docker-registry, a
# containerd hosts.toml mirror for that registry and for docker.io), and a NetworkPolicy engine.
# stageproof is then pointed at it by kubeconfig + context only (see STATE/env).
#
#   scripts/external-cluster.sh up   STATE_DIR [CLUSTER]   # writes STATE_DIR/env (KEY=VALUE lines)
#   scripts/external-cluster.sh down STATE_DIR [CLUSTER]   # deletes the cluster, stops the registry
#
# Everything stays on 127.0.0.1 and on the cluster's own Docker network (the registry also listens
# on that network's gateway: a node's 127.0.0.1 is its own).
set -euo pipefail

ACTION=${1:?usage: $0 up|down STATE_DIR [CLUSTER]}
STATE=${2:?usage: $0 up|down STATE_DIR [CLUSTER]}
CLUSTER=${3:-stageproof-external}
NODE_IMAGE=${NODE_IMAGE:-stageproof/kind-node:v1.34.4}
NETWORK_POLICIES_IMAGE=${NETWORK_POLICIES_IMAGE:-stageproof/kube-network-policies:v0.8.0}
NETWORK=external-kind-$CLUSTER
NODE_PORT=${NODE_PORT:-30080}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

say() { printf '[external] %s\n' "$*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start_registry() {  # ADDRESS PORT: one docker-registry process, its pid in STATE
    local address=$1 port=$2 config=$STATE/registry-$1.yml
    printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s:%s\n  secret: %s\n' \
        "$STATE/registry-data" "$address" "$port" "$(cat "$STATE/registry-secret")" >"$config"
    setsid docker-registry serve "$config" >"$STATE/registry-$address.log" 2>&1 </dev/null &
    echo $! >>"$STATE/registry.pids"
    for _ in $(seq 50); do
        curl -fsS "http://$address:$port/v2/" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    cat "$STATE/registry-$address.log" >&2
    return 1
}

write_mirror() {  # REGISTRY ENDPOINT: containerd hosts.toml for the registry and for docker.io
    local registry=$1 endpoint=$2
    for host in "$registry" docker.io; do
        local server="http://$host"
        [[ $host == docker.io ]] && server=https://registry-1.docker.io
        mkdir -p "$STATE/certs.d/$host"
        printf 'server = "%s"\n\n[host."%s"]\n  capabilities = ["pull", "resolve"]\n' "$server" "$endpoint" \
            >"$STATE/certs.d/$host/hosts.toml"
    done
}

write_kind_config() {  # HOST_PORT
    local mount="    extraMounts: [{hostPath: $STATE/certs.d, containerPath: /etc/containerd/certs.d, readOnly: true}]"
    cat >"$STATE/kind.yaml" <<EOF
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking: {apiServerAddress: 127.0.0.1}
containerdConfigPatches:
  - |
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = "/etc/containerd/certs.d"
nodes:
  - role: control-plane
    extraPortMappings: [{containerPort: $NODE_PORT, hostPort: $1, listenAddress: 127.0.0.1, protocol: TCP}]
$mount
  - role: worker
$mount
  - role: worker
$mount
EOF
}

up() {
    mkdir -p "$STATE"
    STATE=$(cd "$STATE" && pwd)
    kind get clusters | grep -qx "$CLUSTER" && { say "cluster $CLUSTER exists already"; exit 1; }
    docker network create "$NETWORK" >/dev/null
    local gateway port host_port
    gateway=$(docker network inspect "$NETWORK" --format '{{range .IPAM.Config}}{{.Gateway}} {{end}}' | tr ' ' '\n' | grep -v : | head -1)
    port=$(free_port)
    host_port=$(free_port)
    python3 -c 'import secrets; print(secrets.token_hex(16))' >"$STATE/registry-secret"
    start_registry 127.0.0.1 "$port"
    start_registry "$gateway" "$port"
    say "registry on 127.0.0.1:$port (nodes: http://$gateway:$port)"
    write_mirror "127.0.0.1:$port" "http://$gateway:$port"
    write_kind_config "$host_port"
    local started=$SECONDS
    KIND_EXPERIMENTAL_DOCKER_NETWORK=$NETWORK kind create cluster --name "$CLUSTER" --image "$NODE_IMAGE" \
        --config "$STATE/kind.yaml" --kubeconfig "$STATE/kubeconfig" --wait 5m
    say "cluster $CLUSTER created in $((SECONDS - started))s"
    docker cp "$CLUSTER-control-plane:/usr/bin/kubectl" "$STATE/kubectl" >/dev/null
    # the team's NetworkPolicy engine (a real cluster has one), loaded like any cluster add-on
    KIND_EXPERIMENTAL_DOCKER_NETWORK=$NETWORK kind load docker-image --name "$CLUSTER" "$NETWORK_POLICIES_IMAGE"
    sed "s|@NETWORK_POLICIES_IMAGE@|$NETWORK_POLICIES_IMAGE|" "$ROOT/harness/images/recipes/addons/manifests/network-policies.yaml" |
        "$STATE/kubectl" --kubeconfig "$STATE/kubeconfig" apply -f - >/dev/null
    "$STATE/kubectl" --kubeconfig "$STATE/kubeconfig" -n kube-system rollout status daemonset/kube-network-policies --timeout 5m
    cat >"$STATE/env" <<EOF
STAGEPROOF_K8S_CONTEXT=kind-$CLUSTER
STAGEPROOF_K8S_KUBECONFIG=$STATE/kubeconfig
STAGEPROOF_K8S_BASE_URL=http://127.0.0.1:$host_port
STAGEPROOF_REGISTRY=127.0.0.1:$port
EOF
    say "ready: $(tr '\n' ' ' <"$STATE/env")"
}

down() {
    if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
        kind delete cluster --name "$CLUSTER" --kubeconfig "$STATE/kubeconfig"
    fi
    if [[ -f $STATE/registry.pids ]]; then
        while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$STATE/registry.pids"
    fi
    docker network rm "$NETWORK" >/dev/null 2>&1 || true
    rm -rf "$STATE"
    say "cluster $CLUSTER and its registry removed"
}

case $ACTION in
    up) up ;;
    down) down ;;
    *) echo "usage: $0 up|down STATE_DIR [CLUSTER]" >&2; exit 2 ;;
esac

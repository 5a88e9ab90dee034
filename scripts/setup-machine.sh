#!/usr/bin/env bash
# Install and start what stageproof's container stages need on a fresh Debian 12 machine:
# host packages, a Docker engine that can start --privileged containers (trixie's docker.io),
# Compose v2 and kind. Idempotent: every step checks first and does nothing where the machine
# already has it, so a laptop with Docker running is left alone. See shared/ENVIRONMENT.md.
set -euo pipefail

KIND_VERSION="${KIND_VERSION:-v0.33.0}"
DOCKERD_LOG="${DOCKERD_LOG:-/var/log/stageproof-dockerd.log}"
DOCKERD_TIMEOUT="${DOCKERD_TIMEOUT:-60}"
TRIXIE_DIR="${TRIXIE_DIR:-/var/cache/stageproof/apt-trixie}"
# debootstrap builds base images with no registry; mariadb-server serves the local-mysql stage;
# docker-registry (CNCF distribution 2.8) is the local registry of `nox -s external` (never started as a service).
HOST_PACKAGES=(debootstrap mariadb-server postgresql ca-certificates chromium docker-registry curl)
# What trixie's docker.io needs from bookworm (dpkg -i resolves nothing itself).
ENGINE_DEPENDENCIES=(tini containerd runc iptables)

SCRIPT_START=$SECONDS
APT_UPDATED=""
TRIXIE_UPDATED=""

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# step NAME CMD...: run one step, print its duration.
step() {
    local name=$1 started=$SECONDS
    shift
    say "-- $name"
    "$@"
    say "   $name: done in $((SECONDS - started))s"
}

have() { command -v "$1" >/dev/null 2>&1; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed'; }
docker_answers() { have docker && timeout 10 docker info >/dev/null 2>&1; }

need_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root to install $1 (or install it yourself and re-run)"
}

apt_update_once() {
    if [[ -z $APT_UPDATED ]]; then
        apt-get -q update
        APT_UPDATED=1
    fi
}

# Keep package postinst scripts from starting services (mariadb, docker): we start what we need.
with_no_service_starts() {
    local policy=/usr/sbin/policy-rc.d created=""
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        created=1
    fi
    local rc=0
    "$@" || rc=$?
    [[ -n $created ]] && rm -f "$policy"
    return "$rc"
}

# install_packages PKG...: apt-get install those of PKG not installed yet.
install_packages() {
    local missing=()
    for pkg in "$@"; do
        installed "$pkg" || missing+=("$pkg")
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        say "   already present: $*"
        return
    fi
    need_root "${missing[*]}"
    apt_update_once
    say "   installing: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive with_no_service_starts \
        apt-get -q -y --no-install-recommends install "${missing[@]}"
}

# trixie_apt ARGS...: apt-get against trixie only, with its own lists; the system sources are untouched.
trixie_apt() {
    apt-get -q -o Dir::Etc::sourcelist="$TRIXIE_DIR/trixie.sources" -o Dir::Etc::sourceparts=/dev/null \
        -o Dir::State::Lists="$TRIXIE_DIR/lists" -o Dir::Cache="$TRIXIE_DIR/cache" "$@"
}

trixie_update_once() {
    [[ -n $TRIXIE_UPDATED ]] && return
    mkdir -p "$TRIXIE_DIR/lists/partial" "$TRIXIE_DIR/cache/archives/partial" "$TRIXIE_DIR/debs"
    chown _apt "$TRIXIE_DIR/debs" 2>/dev/null || true  # apt downloads as _apt
    sed 's/bookworm/trixie/g' /etc/apt/sources.list.d/debian.sources >"$TRIXIE_DIR/trixie.sources"
    trixie_apt update
    TRIXIE_UPDATED=1
}

# install_from_trixie PKG...: download the packages' .debs from trixie and dpkg -i them.
install_from_trixie() {
    need_root "$*"
    trixie_update_once
    (cd "$TRIXIE_DIR/debs" && rm -f ./*.deb && trixie_apt download "$@")
    DEBIAN_FRONTEND=noninteractive with_no_service_starts dpkg -i "$TRIXIE_DIR"/debs/*.deb
}

dockerd_major() {
    have dockerd || { echo 0; return; }
    dockerd --version | sed -E 's/^Docker version ([0-9]+)\..*/\1/'
}

install_docker_engine() {
    if docker_answers; then
        say "   a Docker daemon already answers: leaving the engine alone"
        return
    fi
    if [[ $(dockerd_major) -ge 23 ]]; then
        say "   dockerd $(dockerd --version | cut -d' ' -f3 | tr -d ,) already installed"
        return
    fi
    install_packages "${ENGINE_DEPENDENCIES[@]}"
    local pkgs=(docker.io)
    have docker || pkgs+=(docker-cli)
    install_from_trixie "${pkgs[@]}"
}

start_dockerd() {
    if docker_answers; then
        say "   docker answers: $(docker version --format 'client {{.Client.Version}}, server {{.Server.Version}} (API {{.Server.APIVersion}})')"
        return
    fi
    need_root dockerd
    if ! pidof dockerd >/dev/null; then
        rm -f /var/run/docker.sock /var/run/docker.pid  # left by a daemon that died
        say "   starting dockerd (log: $DOCKERD_LOG)"
        mkdir -p "$(dirname "$DOCKERD_LOG")"
        # Own session: the daemon outlives this script and its caller's process group.
        setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    fi
    local deadline=$((SECONDS + DOCKERD_TIMEOUT))
    until docker_answers; do
        if ((SECONDS >= deadline)); then
            tail -n 30 "$DOCKERD_LOG" >&2 || true
            die "dockerd did not answer 'docker info' within ${DOCKERD_TIMEOUT}s (log: $DOCKERD_LOG)"
        fi
        sleep 1
    done
    say "   docker answers: $(docker version --format 'client {{.Client.Version}}, server {{.Server.Version}} (API {{.Server.APIVersion}})')"
}

install_compose() {
    if docker compose version >/dev/null 2>&1; then
        say "   $(docker compose version)"
        return
    fi
    install_from_trixie docker-compose
    docker compose version >/dev/null 2>&1 || die "docker compose does not run after installing docker-compose"
    say "   $(docker compose version)"
}

install_kind() {
    local want=${KIND_VERSION#v}
    if have kind && kind version | grep -q "v$want "; then
        say "   $(kind version)"
        return
    fi
    local go
    go=$(command -v go || echo /usr/local/go/bin/go)
    [[ -x $go ]] || die "kind $KIND_VERSION is missing and Go is not installed to build it"
    need_root kind
    GOBIN=/usr/local/bin GOFLAGS=-buildvcs=false "$go" install "sigs.k8s.io/kind@$KIND_VERSION"
    say "   $(kind version)"
}

# Every kind node runs systemd, containerd and kubelet as root, and they share root's inotify
# limits: a 3-node cluster plus a second cluster (the node-image check) used 82 of the default 128
# instances, and a crash-looping kube-proxy was seen when more clusters shared the machine. kind's
# known-issues page asks for these values; raised only, never lowered.
raise_inotify_limits() {
    local key want have
    for key in fs.inotify.max_user_instances=512 fs.inotify.max_user_watches=524288; do
        want=${key#*=}
        have=$(sysctl -n "${key%=*}")
        if (( have >= want )); then
            say "   ${key%=*} = $have"
        elif [[ $(id -u) -eq 0 ]]; then
            sysctl -q -w "$key" && say "   ${key%=*}: $have -> $want"
        else
            say "   ${key%=*} = $have (< $want: multi-node kind clusters may fail; run as root to raise it)"
        fi
    done
}

main() {
    if [[ $(id -u) -eq 0 ]]; then
        step "host packages" install_packages "${HOST_PACKAGES[@]}"
    else
        say "-- host packages: not root, skipped (${HOST_PACKAGES[*]} needed for air-gapped images, local-mysql)"
    fi
    step "docker engine" install_docker_engine
    step "dockerd running" start_dockerd
    step "compose v2" install_compose
    step "kind $KIND_VERSION" install_kind
    step "inotify limits for kind nodes" raise_inotify_limits
    say "machine ready in $((SECONDS - SCRIPT_START))s"
}

main "$@"

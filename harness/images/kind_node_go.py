"""Go builds for the kind node: Kubernetes and the helper programs, from the Go module proxy.

Each wrapper module under `harness/kind_node_recipe/` builds in ONE `go build` (the 2 CI cores stay busy
across packages); binaries land in the cache, keyed by the module files and the Go version, and a
`.complete` marker makes a second run build nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.core.cache import cache_dir, recipe_hash
from harness.core.run import run
from harness.images.gobuild import cached_build
from harness.images.kind_node_recipe import RECIPE_DIR, Versions, step

#: the programs of `k8s/cmd/hyperkube`, one binary that runs the one it is called as
K8S_COMMANDS = ("kubeadm", "kubelet", "kubectl", "kube-apiserver", "kube-controller-manager",
                "kube-scheduler", "kube-proxy")
HYPERKUBE = "hyperkube"
# readonly: the committed go.sum is complete; a build must never rewrite files in the checkout
GO_ENV = {"CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly -buildvcs=false", "GOTOOLCHAIN": "local"}


def go_version() -> str:
    return run(["go", "env", "GOVERSION"]).stdout.strip()


def k8s_ldflags(v: Versions) -> str:
    """Version stamps kubeadm and `kubectl version` read; without them everything says v0.0.0."""
    major, minor = v.kubernetes.lstrip("v").split(".")[:2]
    stamps = {"gitVersion": v.kubernetes, "gitMajor": major, "gitMinor": minor,
              "gitTreeState": "clean", "buildDate": v.build_date}
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {pkg}.{name}={value}" for name, value in stamps.items()]
    return " ".join(flags)


def _build(module: str, packages: Sequence[str], outputs: Sequence[str], ldflags: str, key: str) -> Path:
    """`go build` `packages` of wrapper module `module` into a cache dir named by `key`."""

    def build(tmp: Path) -> None:
        run(["go", "build", "-trimpath", f"-ldflags={ldflags}", "-o", f"{tmp}/", *packages],
            cwd=RECIPE_DIR / module, env=GO_ENV)

    return cached_build(cache_dir("kind-node", "bin", f"{module}-{key}"), key, outputs, build)


def ensure_k8s_binaries(v: Versions) -> Path:
    """The folder holding `hyperkube`: kubeadm, kubelet, kubectl and the control plane of
    `v.kubernetes` in one binary (a third of seven separate ones, and linked once, not seven times)."""
    key = recipe_hash(RECIPE_DIR / "k8s", f"version={v.kubernetes}", f"date={v.build_date}", f"go={go_version()}")
    with step("go-kubernetes", f"go build Kubernetes {v.kubernetes} as one {HYPERKUBE} ({', '.join(K8S_COMMANDS)})"):
        return _build("k8s", [f"./cmd/{HYPERKUBE}"], (HYPERKUBE,), k8s_ldflags(v), key)


def ensure_tool_binaries(v: Versions) -> dict[str, Path]:
    """etcd, crictl, pause (tools), CoreDNS and local-path-provisioner: name -> binary path.

    CoreDNS and the provisioner have their own modules: their client-go / logrus versions
    cannot share one build list with crictl's.
    """
    gov = go_version()
    with step("go-tools", f"go build etcd {v.etcd}, crictl {v.crictl}, pause"):
        tools = _build("tools", ["go.etcd.io/etcd/server/v3", "sigs.k8s.io/cri-tools/cmd/crictl", "./cmd/pause"],
                       ("server", "crictl", "pause"), "-s -w", recipe_hash(RECIPE_DIR / "tools", f"go={gov}"))
    with step("go-coredns", f"go build CoreDNS {v.coredns} (kind's plugins only)"):
        coredns = _build("coredns", ["."], ("coredns",), "-s -w", recipe_hash(RECIPE_DIR / "coredns", f"go={gov}"))
    with step("go-local-path", f"go build local-path-provisioner {v.local_path}"):
        local_path = _build("local-path", ["github.com/rancher/local-path-provisioner"],
                            ("local-path-provisioner",), "-s -w", recipe_hash(RECIPE_DIR / "local-path", f"go={gov}"))
    return {"etcd": tools / "server", "crictl": tools / "crictl", "pause": tools / "pause",
            "coredns": coredns / "coredns", "local-path-provisioner": local_path / "local-path-provisioner"}

"""Host-side tools stageproof runs itself, built from the Go module proxy: the Helm CLI.

No release binaries can be downloaded here, so Helm is built like the cluster add-ons: one
wrapper module (`recipes/helm/`, go.mod + go.sum pinning `helm.sh/helm/v3`), one cached `go
build` into `$STAGEPROOF_CACHE/tools/bin/helm-<key>/`. Helm 3, not 4: v3's `--post-renderer`
takes an executable, v4's takes only the name of an installed post-renderer plugin.
"""

from __future__ import annotations

from pathlib import Path

from harness.core.cache import build_lock, cache_dir, recipe_hash
from harness.core.run import run
from harness.images import say, step
from harness.images.gobuild import cached_build
from harness.images.kind_node_go import GO_ENV, go_version

HELM_RECIPE = Path(__file__).resolve().parent / "recipes" / "helm"
HELM_VERSION = "v3.22.0"
HELM_PACKAGE = "helm.sh/helm/v3/cmd/helm"
#: the Kubernetes version `helm template` assumes without a cluster: client-go v0.37 -> 1.37, as
#: Helm's Makefile stamps it (unstamped, Helm says 1.20 and charts' `kubeVersion` checks go wrong)
HELM_KUBE_VERSION = ("1", "37")


def helm_ldflags() -> str:
    """The stamps Helm's own Makefile sets: `helm version` and the default KubeVersion."""
    stamps = {"helm.sh/helm/v3/internal/version.version": HELM_VERSION,
              "helm.sh/helm/v3/internal/version.gitTreeState": "clean"}
    major, minor = HELM_KUBE_VERSION
    for package in ("helm.sh/helm/v3/pkg/lint/rules", "helm.sh/helm/v3/pkg/chartutil"):
        stamps[f"{package}.k8sVersionMajor"] = major
        stamps[f"{package}.k8sVersionMinor"] = minor
    return " ".join(["-s", "-w", *(f"-X {var}={value}" for var, value in stamps.items())])


def helm_key() -> str:
    """What the binary depends on: the wrapper module, the flags and Go itself."""
    return recipe_hash("helm-go-v1", HELM_RECIPE / "go.mod", HELM_RECIPE / "go.sum", HELM_PACKAGE,
                       helm_ldflags(), f"go={go_version()}")


def ensure_helm() -> Path:
    """The `helm` binary (v3.22.0), built once per key; a second call only checks a marker."""
    key = helm_key()

    def build(tmp: Path) -> None:
        run(["go", "build", "-trimpath", f"-ldflags={helm_ldflags()}", "-o", str(tmp / "helm"), HELM_PACKAGE],
            cwd=HELM_RECIPE, env=GO_ENV)

    with build_lock("tools", what=f"Helm {HELM_VERSION}", say=say), step(f"go build Helm {HELM_VERSION}"):
        out = cached_build(cache_dir("tools", "bin", f"helm-{key}"), key, ["helm"], build)
    return out / "helm"

"""The kind node image recipe: pinned versions, recipe paths, and per-step progress logging.

Everything the build reads lives in the package data `harness/kind_node_recipe/` (so an installed
wheel builds too); versions are pinned once in its
`versions.toml`, and the Go wrapper modules are checked against it so they cannot drift.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from harness.core.cache import cache_dir
from harness.errors import CommandFailed, StageproofError

RECIPE_DIR = Path(__file__).resolve().parent / "recipes" / "kind-node"
NODE_IMAGE_REPO = "stageproof/kind-node"


class KindNodeBuildFailed(StageproofError):
    """A step of the node image build failed; the message names the step and its log file."""


@dataclass(frozen=True)
class Versions:
    """The pins of `versions.toml`, typed."""

    kubernetes: str
    build_date: str
    kind: str
    node_suite: str
    toolbox_suite: str
    node_packages: tuple[str, ...]
    node_remove: tuple[str, ...]
    toolbox_packages: tuple[str, ...]
    etcd: str
    etcd_image_tag: str
    coredns: str
    pause_image_tag: str
    crictl: str
    local_path: str
    toolbox_image_tag: str

    @property
    def node_image(self) -> str:
        return f"{NODE_IMAGE_REPO}:{self.kubernetes}"

    @property
    def toolbox_image(self) -> str:
        return f"docker.io/stageproof/kind-toolbox:{self.toolbox_image_tag}"


@cache
def load_versions() -> Versions:
    """Read `versions.toml` and check the Go wrapper modules pin the same versions."""
    raw = tomllib.loads((RECIPE_DIR / "versions.toml").read_text())
    debian = raw["debian"]
    versions = Versions(
        kubernetes=raw["kubernetes"]["version"],
        build_date=raw["kubernetes"]["build_date"],
        kind=raw["kind"]["version"],
        node_suite=debian["node_suite"],
        toolbox_suite=debian["toolbox_suite"],
        node_packages=tuple(debian["node_packages"]),
        node_remove=tuple(debian.get("node_remove", ())),
        toolbox_packages=tuple(debian["toolbox_packages"]),
        etcd=raw["etcd"]["version"],
        etcd_image_tag=raw["etcd"]["image_tag"],
        coredns=raw["coredns"]["version"],
        pause_image_tag=raw["pause"]["image_tag"],
        crictl=raw["crictl"]["version"],
        local_path=raw["local_path_provisioner"]["version"],
        toolbox_image_tag=raw["toolbox"]["image_tag"],
    )
    _check_go_modules(versions)
    return versions


def _check_go_modules(v: Versions) -> None:
    """Fail early when a go.mod pins another version than versions.toml says."""
    expected = {
        "k8s/go.mod": [f"k8s.io/kubernetes {v.kubernetes}", "k8s.io/api => k8s.io/api v0." + v.kubernetes[3:]],
        "tools/go.mod": [f"go.etcd.io/etcd/server/v3 {v.etcd}", f"sigs.k8s.io/cri-tools {v.crictl}"],
        "coredns/go.mod": [f"github.com/coredns/coredns {v.coredns}"],
        "local-path/go.mod": [f"github.com/rancher/local-path-provisioner {v.local_path}"],
    }
    for name, needles in expected.items():
        text = re.sub(r"\s+", " ", (RECIPE_DIR / name).read_text())
        missing = [needle for needle in needles if needle not in text]
        if missing:
            raise StageproofError(f"{RECIPE_DIR / name} does not pin {missing} (versions.toml says so)")


def log_dir() -> Path:
    return cache_dir("kind-node", "logs")


@contextmanager
def step(name: str, what: str) -> Iterator[None]:
    """Time one build step, print its progress, and keep its command log when it fails."""
    log_path = log_dir() / f"{name}.log"
    handler = logging.FileHandler(log_path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    this_thread = threading.get_ident()
    handler.addFilter(lambda record: record.thread == this_thread)  # steps may run in parallel threads
    logger = logging.getLogger("stageproof")
    old_level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    print(f"[kind-node] step {name}: {what} ...", flush=True)
    started = time.monotonic()
    try:
        yield
    except StageproofError as err:
        if isinstance(err, CommandFailed) and handler.stream is not None:
            handler.stream.write(f"--- stdout\n{err.stdout}\n--- stderr\n{err.stderr}\n")
        raise KindNodeBuildFailed(f"kind-node step {name!r} ({what}) failed; log: {log_path}\n{err}") from err
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        handler.close()
    print(f"[kind-node] step {name}: done ({time.monotonic() - started:.1f}s)", flush=True)


def note(message: str) -> None:
    """A progress line between steps (cache hits, results)."""
    print(f"[kind-node] {message}", flush=True)

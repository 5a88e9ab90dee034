"""`nox -s bench`'s k8s figure: `stageproof up --stage k8s --detach` on a machine with every image
built but no cluster, then again on the cluster that run kept (reuse), against a bare
`kind create cluster --wait` of the same node image and node count, in one run.

The bare cluster is made and deleted by the same `KindCluster` as stageproof's own (a network of its
own, a frozen node swept), also on failure.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.config import Settings
from harness.core.run import run
from harness.errors import StageproofError
from harness.k8s.kind import KindCluster

BARE = "stageproof-bench-bare"
#: what the bring-up says of each of its steps ("[stageproof] k8s: image load: 26.3s")
STEP_LINE = re.compile(r"\[stageproof\] k8s: (?P<step>[a-z][a-z ()/-]+): (?P<seconds>[\d.]+)s$", re.MULTILINE)
IMAGE_OPTION = re.compile(r"kind create cluster .*?--image (?P<image>\S+)")
GOAL_RATIO = 1.5
#: the second bring-up reuses what the first kept, also where reuse is off by default (CI)
KEEP = {"STAGEPROOF_K8S_REUSE": "true"}


def steps(stdout: str) -> dict[str, float]:
    """The bring-up's own step timings, as it printed them."""
    return {m.group("step"): float(m.group("seconds")) for m in STEP_LINE.finditer(stdout)}


def node_image(stderr: str) -> str | None:
    """The node image the bring-up created its cluster from (its logged `kind create` command)."""
    match = IMAGE_OPTION.search(stderr)
    return match.group("image").strip("'\"") if match else None


def bare_config(nodes: int) -> str:
    return "\n".join(["kind: Cluster", "apiVersion: kind.x-k8s.io/v1alpha4", "nodes:", "- role: control-plane",
                      *(["- role: worker"] * (nodes - 1))]) + "\n"


def bench_k8s(settings: Settings) -> dict[str, Any]:
    cli = shutil.which("stageproof", path=str(Path(sys.executable).parent)) or "stageproof"
    if run(["kind", "get", "clusters"], check=False).stdout.split().count(settings.stages.k8s.cluster):
        raise StageproofError(f"kind cluster {settings.stages.k8s.cluster} exists: the first bring-up must start "
                              "from no cluster (`stageproof down --stage k8s` removes a kept one)")
    figures: dict[str, Any] = {}
    try:
        for flow in ("stageproof, no cluster", "stageproof, reusing the kept cluster"):
            started = time.monotonic()
            up = run([cli, "-v", "up", "--stage", "k8s", "--detach"], env=KEEP, timeout=1800)
            figures[flow] = {"seconds": round(time.monotonic() - started, 2), "steps": steps(up.stdout)}
            figures.setdefault("node_image", node_image(up.stderr))
            print(f"  {flow}: up in {figures[flow]['seconds']}s {figures[flow]['steps']}", flush=True)
    finally:
        run([cli, "down", "--stage", "k8s"], check=False, timeout=600)
    figures["bare kind create --wait"] = {"seconds": bare_create(figures.get("node_image"), settings.stages.k8s.nodes)}
    print(f"  bare kind create --wait ({figures['node_image']}, {settings.stages.k8s.nodes} nodes): "
          f"{figures['bare kind create --wait']['seconds']}s", flush=True)
    ours, bare = figures["stageproof, no cluster"]["seconds"], figures["bare kind create --wait"]["seconds"]
    figures["ratio"] = round(ours / bare, 3)
    figures["reuse_ratio"] = round(figures["stageproof, reusing the kept cluster"]["seconds"] / bare, 3)
    figures["goal_ratio"], figures["goal_met"] = GOAL_RATIO, figures["ratio"] <= GOAL_RATIO
    return figures


def bare_create(image: str | None, nodes: int) -> float:
    """Seconds of `kind create cluster --wait 5m` with only a node count in its config, deleted after
    the way stageproof deletes its own (kind's delete once left a node frozen here: it is swept too)."""
    if image is None:
        raise StageproofError("the bring-up logged no `kind create cluster --image`: nothing to compare with")
    with tempfile.TemporaryDirectory(prefix="stageproof-bench-kind-") as tmp:
        config = Path(tmp, "kind.yaml")
        config.write_text(bare_config(nodes))
        cluster = KindCluster(BARE, image, config)
        try:
            return round(cluster.create(), 2)
        finally:
            cluster.delete()


def k8s_line(figures: dict[str, Any]) -> str:
    return (f"k8s bring-up vs bare kind create: {figures['stageproof, no cluster']['seconds']}s vs "
            f"{figures['bare kind create --wait']['seconds']}s (x{figures['ratio']}); reusing the kept cluster "
            f"{figures['stageproof, reusing the kept cluster']['seconds']}s (x{figures['reuse_ratio']}); "
            f"goal: ratio <= {GOAL_RATIO:g} {'met' if figures['goal_met'] else 'NOT met'}")

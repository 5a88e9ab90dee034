"""The cluster add-ons without Docker or Go: what the manifests say, and when nothing is rebuilt."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.errors import ConfigError
from harness.images import addons, docker
from harness.images.addons import ADDONS, NETWORK_POLICIES, TRAEFIK, addon_manifests
from harness.images.docker import RECIPE_LABEL


def rendered(port: int = 30080) -> dict[tuple[str, str], dict[str, Any]]:
    docs = [doc for doc in yaml.safe_load_all(addon_manifests(ingress_node_port=port)) if doc]
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in docs}


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return list(doc["spec"]["template"]["spec"]["containers"])


def test_manifests_run_the_images_we_build_and_never_pull_them() -> None:
    objects = rendered()
    workloads = {("DaemonSet", "kube-network-policies"): NETWORK_POLICIES.image,
                 ("Deployment", "traefik"): TRAEFIK.image}
    for key, image in workloads.items():
        (container,) = containers(objects[key])
        assert (container["image"], container["imagePullPolicy"]) == (image, "Never")


def test_the_ingress_node_port_is_the_one_the_stage_asks_for() -> None:
    service = rendered(31234)[("Service", "traefik")]
    assert service["spec"]["type"] == "NodePort"
    assert [port["nodePort"] for port in service["spec"]["ports"]] == [31234]
    assert "@" not in addon_manifests(ingress_node_port=31234)


@pytest.mark.parametrize("port", [80, 29999, 32768])
def test_a_node_port_outside_the_cluster_range_is_refused(port: int) -> None:
    with pytest.raises(ConfigError, match="NodePort range"):
        addon_manifests(ingress_node_port=port)


def test_traefik_serves_the_traefik_ingress_class_and_never_calls_home() -> None:
    objects = rendered()
    assert objects[("IngressClass", "traefik")]["spec"]["controller"] == "traefik.io/ingress-controller"
    (container,) = containers(objects[("Deployment", "traefik")])
    args = container["args"]
    assert {"--providers.kubernetesingress", "--entrypoints.web.address=:8000", "--ping"} <= set(args)
    assert {"--global.checknewversion=false", "--global.sendanonymoususage=false"} <= set(args)


def test_the_policy_engine_runs_on_every_node_with_host_networking() -> None:
    daemonset = rendered()[("DaemonSet", "kube-network-policies")]
    spec = daemonset["spec"]["template"]["spec"]
    assert (spec["hostNetwork"], spec["serviceAccountName"]) == (True, "kube-network-policies")
    assert containers(daemonset)[0]["securityContext"]["privileged"] is True


@pytest.mark.parametrize("addon", ADDONS, ids=lambda addon: addon.name)
def test_each_wrapper_module_pins_the_version_its_image_is_tagged_with(addon: addons.Addon) -> None:
    go_mod = " ".join((addon.source / "go.mod").read_text().split())
    assert f"{addon.upstream} {addon.version}" in go_mod
    assert addon.image.endswith(f":{addon.version}")


class FakeDocker:
    """`docker image inspect` answers from `labels` ({ref: labels}); records every command."""

    def __init__(self, labels: dict[str, dict[str, str]]) -> None:
        self.labels = labels
        self.calls: list[list[str]] = []

    def __call__(self, cmd: Sequence[Any], **_: Any) -> subprocess.CompletedProcess[str]:
        argv = [str(part) for part in cmd]
        self.calls.append(argv)
        if argv[1:3] == ["image", "inspect"]:
            found = argv[-1] in self.labels
            return subprocess.CompletedProcess(argv, 0 if found else 1, json.dumps(self.labels.get(argv[-1])), "")
        return subprocess.CompletedProcess(argv, 0, "26.1.5", "")


def test_current_images_are_reused_without_building(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STAGEPROOF_CACHE", str(tmp_path))
    monkeypatch.setattr(addons, "go_version", lambda: "go1.26.8")
    labels = {addon.image: {RECIPE_LABEL: addons._image_recipe(addon, "go1.26.8")} for addon in ADDONS}
    fake = FakeDocker(labels)
    monkeypatch.setattr(docker, "run", fake)
    monkeypatch.setattr(addons, "run", fake)

    assert addons.ensure_addon_images() == {addon.name: addon.image for addon in ADDONS}
    assert all(argv[1] in {"version", "image"} for argv in fake.calls)

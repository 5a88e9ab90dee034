"""Fast checks of the kind node recipe and kind config template (no Docker, no cluster)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.images.kind_node import _normalized
from harness.images.kind_node_go import k8s_ldflags
from harness.images.kind_node_recipe import RECIPE_DIR, load_versions
from harness.k8s.kind_config import render_config


def test_versions_agree_with_go_modules() -> None:
    v = load_versions()  # raises when a go.mod pins something else
    assert v.node_image == f"stageproof/kind-node:{v.kubernetes}"
    assert not any(tag.endswith(":latest") for tag in (v.node_image, v.toolbox_image))


def test_version_ldflags_stamp_both_version_packages() -> None:
    flags = k8s_ldflags(load_versions())
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert f"-X {pkg}.gitVersion={load_versions().kubernetes}" in flags
        assert f"-X {pkg}.gitMinor=" in flags


def test_kind_config_publishes_nodeports_on_loopback_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAGEPROOF_CACHE", str(tmp_path))
    rendered = render_config("recipe-check", nodes=3, node_ports=(30180, 30181), host_ports={30180: 18080})
    config = yaml.safe_load(rendered.path.read_text())
    control_plane, *workers = config["nodes"]
    assert [w["role"] for w in workers] == ["worker", "worker"]
    mappings = {m["containerPort"]: m for m in control_plane["extraPortMappings"]}
    assert mappings[30180]["hostPort"] == 18080
    assert mappings[30181]["hostPort"] == rendered.host_ports[30181] != 18080
    assert {m["listenAddress"] for m in mappings.values()} == {"127.0.0.1"}
    assert config["networking"]["apiServerAddress"] == "127.0.0.1"


def test_manifests_keep_kind_markers_and_placeholders_are_known() -> None:
    cni = (RECIPE_DIR / "node" / "manifests" / "default-cni.yaml").read_text()
    assert "would you kindly template this file" in cni and "would you kindly patch this file" in cni
    assert "{{ .PodSubnet }}" in cni


def test_containerd_names() -> None:
    assert _normalized("registry.k8s.io/pause:3.10.1") == "registry.k8s.io/pause:3.10.1"
    assert _normalized("stageproof/kind-toolbox:v1") == "docker.io/stageproof/kind-toolbox:v1"
    assert _normalized("busybox:1") == "docker.io/library/busybox:1"

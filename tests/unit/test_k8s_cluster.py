"""Choosing the cluster (kind by default, a user's kubeconfig context when configured) and the kind
config a run writes: the team's file (or one control plane) with stageproof's overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.config import K8sSettings, load_settings
from harness.errors import ConfigError
from harness.k8s.kind_config import render_config
from harness.k8s.providers import ProviderInfo, provider_class
from harness.k8s.providers.external import ExternalProvider
from harness.k8s.providers.kind import KindProvider

ROOT = Path(__file__).resolve().parents[2]
SPEC = K8sSettings.model_validate({"manifests": "stages/k8s/overlays/kind"}, context={"root": ROOT})


def test_kind_is_the_default_provider() -> None:
    settings = load_settings(ROOT / "stageproof.toml", {})
    assert provider_class(settings) is KindProvider
    assert KindProvider(settings, run_id="r").info() == ProviderInfo("stageproof", ours=True)


def test_a_named_context_needs_to_know_where_the_app_answers() -> None:
    settings = load_settings(ROOT / "stageproof.toml", {"STAGEPROOF_K8S_CONTEXT": "team-cluster"})
    with pytest.raises(ConfigError, match=r"needs stages\.k8s\.base_url"):
        ExternalProvider(settings, run_id="r").provision()


def test_the_environment_points_at_a_team_cluster() -> None:
    env = {"STAGEPROOF_K8S_CONTEXT": "team", "STAGEPROOF_K8S_KUBECONFIG": "/etc/team.yaml",
           "STAGEPROOF_K8S_BASE_URL": "http://127.0.0.1:8080/", "STAGEPROOF_K8S_APP_IMAGE": "reg:5000/app:1"}
    settings = load_settings(ROOT / "stageproof.toml", env)
    spec = settings.stages.k8s
    assert spec is not None and spec.app_image == "reg:5000/app:1"
    assert provider_class(settings) is ExternalProvider
    assert (spec.context, spec.kubeconfig, spec.base_url) == ("team", "/etc/team.yaml", "http://127.0.0.1:8080/")


def test_the_config_file_can_name_the_context_too() -> None:
    spec = SPEC.model_copy(update={"context": "team", "base_url": "http://127.0.0.1:9000"})
    settings = load_settings(ROOT / "stageproof.toml", {})
    settings = settings.model_copy(update={"stages": settings.stages.model_copy(update={"k8s": spec})})
    assert provider_class(settings) is ExternalProvider


# -- the kind config -------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAGEPROOF_CACHE", str(tmp_path / "cache"))


def written(path: Path) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(path.read_text())
    return config


def test_the_default_config_publishes_the_node_port_and_api_server_on_loopback_only() -> None:
    rendered = render_config("c1", node_ports=[30080])
    config = written(rendered.path)
    (control_plane,) = config["nodes"]
    assert control_plane["role"] == "control-plane"
    assert control_plane["extraPortMappings"] == [{"containerPort": 30080, "hostPort": rendered.host_port(30080),
                                                   "listenAddress": "127.0.0.1", "protocol": "TCP"}]
    assert config["networking"]["apiServerAddress"] == "127.0.0.1"
    assert 0 < rendered.host_port(30080) < 65536


def test_nodes_adds_workers_and_extra_node_ports_get_mappings_of_their_own() -> None:
    rendered = render_config("c2", nodes=3, node_ports=[30080, 30081], host_ports={30080: 18080, 30081: 18081})
    control_plane, *workers = written(rendered.path)["nodes"]
    assert [node["role"] for node in workers] == ["worker", "worker"]
    assert {m["containerPort"]: m["hostPort"] for m in control_plane["extraPortMappings"]} == {30080: 18080,
                                                                                             30081: 18081}
    assert rendered.host_ports == {30080: 18080, 30081: 18081}


def test_the_teams_config_is_kept_with_only_stageproofs_overrides(tmp_path: Path) -> None:
    team = {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "name": "their-name",
            "networking": {"podSubnet": "10.244.0.0/16", "apiServerAddress": "0.0.0.0"},
            "featureGates": {"SomeGate": True},
            "nodes": [{"role": "control-plane", "labels": {"ingress-ready": "true"},
                       "extraPortMappings": [{"containerPort": 30080, "hostPort": 80},
                                             {"containerPort": 443, "hostPort": 8443}]},
                      {"role": "worker"}]}
    source = tmp_path / "kind.yaml"
    source.write_text(yaml.safe_dump(team))
    config = written(render_config("c3", source=source, nodes=4, node_ports=[30080], host_ports={30080: 18080}).path)
    assert "name" not in config  # the cluster is named on kind's command line
    assert config["networking"] == {"podSubnet": "10.244.0.0/16", "apiServerAddress": "127.0.0.1"}
    assert config["featureGates"] == {"SomeGate": True}
    control_plane, *workers = config["nodes"]
    assert len(workers) == 1  # the file lists its workers: `nodes` adds none
    assert control_plane["labels"] == {"ingress-ready": "true"}
    assert control_plane["extraPortMappings"] == [
        {"containerPort": 443, "hostPort": 8443},
        {"containerPort": 30080, "hostPort": 18080, "listenAddress": "127.0.0.1", "protocol": "TCP"}]


def test_a_silent_node_is_called_lost_sooner_and_the_teams_own_patches_still_win(tmp_path: Path) -> None:
    """node_lost_seconds: the controller manager's grace period and the kubelets' lease, before the
    team's own kubeadm patches (applied after them, so theirs win); None leaves Kubernetes' defaults."""
    theirs = "kind: ClusterConfiguration\ncontrollerManager:\n  extraArgs:\n    node-monitor-grace-period: 30s\n"
    source = tmp_path / "kind.yaml"
    source.write_text(yaml.safe_dump({"kind": "Cluster", "kubeadmConfigPatches": [theirs]}))
    patches = written(render_config("c6", source=source, node_lost_seconds=20).path)["kubeadmConfigPatches"]
    assert [yaml.safe_load(patch) for patch in patches] == [
        {"kind": "ClusterConfiguration", "controllerManager": {"extraArgs": {"node-monitor-grace-period": "20s"}}},
        {"kind": "KubeletConfiguration", "nodeLeaseDurationSeconds": 20},
        yaml.safe_load(theirs)]
    assert "kubeadmConfigPatches" not in written(render_config("c7").path)
    assert SPEC.node_lost_seconds == 20
    with pytest.raises(ValueError, match="node_lost_seconds: 5 s would call a busy node lost"):
        K8sSettings.model_validate({"manifests": "stages/k8s/overlays/kind", "node_lost_seconds": 5},
                                   context={"root": ROOT})


def test_a_file_that_is_not_a_kind_config_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "kind.yaml"
    source.write_text("apiVersion: v1\nkind: ConfigMap\n")
    with pytest.raises(ConfigError, match=r"stages\.k8s\.kind_config: .* is not a kind config"):
        render_config("c5", source=source, node_ports=[30080])


def test_a_registry_mirror_reaches_every_node(tmp_path: Path) -> None:
    from harness.k8s.kind_config import CERTS_DIR, RegistryMirror

    mirror = RegistryMirror("http://172.18.0.1:5000", mirror_for=("docker.io",), credentials=("team", "pw"))
    rendered = render_config("mirrored", nodes=3, mirror=mirror)
    config = yaml.safe_load(rendered.path.read_text())
    assert 'config_path = "/etc/containerd/certs.d"' in config["containerdConfigPatches"][0]
    mounts = [node["extraMounts"] for node in config["nodes"]]
    assert len(mounts) == 3 and all(m[0]["containerPath"] == CERTS_DIR for m in mounts)
    hosts = Path(mounts[0][0]["hostPath"])
    docker_io = (hosts / "docker.io" / "hosts.toml").read_text()
    assert docker_io.startswith('server = "https://registry-1.docker.io"')
    assert '[host."http://172.18.0.1:5000"]' in docker_io and 'Authorization = "Basic dGVhbTpwdw=="' in docker_io
    assert (hosts / "172.18.0.1:5000" / "hosts.toml").read_text().startswith('server = "http://172.18.0.1:5000"\n')


def test_nodes_pull_from_the_endpoint_host_when_they_reach_the_registry_elsewhere() -> None:
    from harness.config import ImageSettings

    images = ImageSettings.model_validate(
        {"app": {"tag": "t", "dockerfile": "stages/docker/Dockerfile"}, "registry": "127.0.0.1:5000/team",
         "registry_endpoint": "http://172.18.0.1:5000"}, context={"root": ROOT})
    assert images.pull_prefix == "172.18.0.1:5000/team"


THEIRS = {"STAGEPROOF_K8S_CONTEXT": "team", "STAGEPROOF_K8S_BASE_URL": "http://127.0.0.1:8080"}


def test_no_add_ons_no_ingress_and_no_node_chaos_on_a_cluster_stageproof_did_not_create() -> None:
    info = ExternalProvider(load_settings(ROOT / "stageproof.toml", THEIRS), run_id="r").info()
    assert not info.ours
    assert info.node_chaos_withheld is not None and "node_chaos = true" in info.node_chaos_withheld


def test_new_builds_reach_a_cluster_stageproof_did_not_create_only_through_a_registry() -> None:
    without = ExternalProvider(load_settings(ROOT / "stageproof.toml", THEIRS), run_id="r").info()
    with_registry = ExternalProvider(load_settings(ROOT / "stageproof.toml", {**THEIRS,
                                                   "STAGEPROOF_REGISTRY": "127.0.0.1:5000"}), run_id="r").info()
    assert without.builds_withheld is not None and "set [images] registry" in without.builds_withheld
    assert with_registry.builds_withheld is None
    assert KindProvider(load_settings(ROOT / "stageproof.toml", {}), run_id="r").info().builds_withheld is None

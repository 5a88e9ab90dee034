"""The k8s manifests as rendered for a run: the hardening and wiring issue 5 asks for, checked on
the `kubectl kustomize` output (no cluster needed)."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.cache import cache_dir
from harness.config import Settings, load_settings
from harness.k8s.manifests import Kubectl, kustomization, split_image
from harness.lifecycle import in_ci
from harness.run import run

ROOT = Path(__file__).resolve().parents[2]
IMAGES = {"app": "stageproof/users:abc123", "db": "stageproof/mysql-compat:8.4"}


def kubectl_binary() -> str | None:
    """kubectl on PATH, else the one the kind node image build left in the cache."""
    built = sorted(cache_dir("kind-node", "bin").glob("k8s-*/kubectl"))
    return shutil.which("kubectl") or (str(built[-1]) if built else None)


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(ROOT / "stageproof.toml")


@pytest.fixture(scope="module")
def rendered(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Any]:
    binary = kubectl_binary()
    if binary is None:
        if in_ci():
            pytest.fail("no kubectl here (on PATH or built by the kind node image) to render the manifests")
        pytest.skip("no kubectl here (on PATH or built by the kind node image)")
    assert settings.stages.k8s is not None
    workdir = tmp_path_factory.mktemp("kustomize")
    data = kustomization(settings, overlay=ROOT / settings.stages.k8s.kustomize, workdir=workdir, images=IMAGES,
                         release="rel-1")
    (workdir / "kustomization.yaml").write_text(yaml.safe_dump(data))
    docs = yaml.safe_load_all(run(Kubectl(binary).argv("kustomize", str(workdir))).stdout)
    return {(doc["kind"], doc["metadata"]["name"].rsplit("-", 1)[0] if doc["kind"] in ("ConfigMap", "Secret")
             else doc["metadata"]["name"]): doc for doc in docs}


def pod_spec(rendered: dict[tuple[str, str], Any], kind: str, name: str) -> dict[str, Any]:
    return rendered[(kind, name)]["spec"]["template"]["spec"]


def test_images_are_the_built_tags_never_latest_never_pulled(rendered: dict[tuple[str, str], Any]) -> None:
    containers = [c for (kind, _), doc in rendered.items() if kind in ("Deployment", "StatefulSet", "Job")
                  for c in doc["spec"]["template"]["spec"]["containers"]]
    assert {c["image"] for c in containers} == set(IMAGES.values())
    assert {c["imagePullPolicy"] for c in containers} <= {"IfNotPresent", "Never"}


def test_web_pods_are_hardened_and_drain_gracefully(rendered: dict[tuple[str, str], Any]) -> None:
    spec = pod_spec(rendered, "Deployment", "web")
    (web,) = spec["containers"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert web["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                      "capabilities": {"drop": ["ALL"]}}
    assert {m["mountPath"] for m in web["volumeMounts"]} == {"/tmp"}
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    pause = web["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert 0 < pause < spec["terminationGracePeriodSeconds"]
    assert web["resources"]["requests"] and web["resources"]["limits"]
    strategy = rendered[("Deployment", "web")]["spec"]["strategy"]["rollingUpdate"]
    assert strategy["maxUnavailable"] == 0
    assert rendered[("Deployment", "web")]["spec"]["replicas"] == 2


def test_credentials_live_only_in_secrets(rendered: dict[tuple[str, str], Any], settings: Settings) -> None:
    config_maps = [doc for (kind, _), doc in rendered.items() if kind == "ConfigMap"]
    for doc in config_maps:
        text = yaml.safe_dump(doc)
        assert settings.database.password not in text and settings.database.root_password not in text
    secret = rendered[("Secret", "app-credentials")]["data"]
    url = base64.b64decode(secret[settings.app.env.database_url]).decode()
    assert url == f"mysql://{settings.database.user}:{settings.database.password}@db:3306/{settings.database.name}"
    web_config = rendered[("ConfigMap", "web-config")]["data"]
    assert web_config[settings.app.env.release] == "rel-1"


def test_database_keeps_its_data_on_a_standard_pvc(rendered: dict[tuple[str, str], Any]) -> None:
    sts = rendered[("StatefulSet", "db")]["spec"]
    (claim,) = sts["volumeClaimTemplates"]
    assert claim["spec"]["storageClassName"] == "standard"
    assert rendered[("Service", "db")]["spec"]["clusterIP"] == "None"
    assert "readinessProbe" in sts["template"]["spec"]["containers"][0]


def test_app_is_exposed_on_node_port_30080_and_protected(rendered: dict[tuple[str, str], Any]) -> None:
    service = rendered[("Service", "web")]["spec"]
    assert service["type"] == "NodePort" and service["ports"][0]["nodePort"] == 30080
    assert rendered[("PodDisruptionBudget", "web")]["spec"]["minAvailable"] == 1
    policy = rendered[("NetworkPolicy", "db-only-from-app")]["spec"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "db"
    assert all(doc["metadata"].get("namespace", "stageproof") == "stageproof" for doc in rendered.values())


def test_seed_job_runs_the_app_image_seed_command(rendered: dict[tuple[str, str], Any]) -> None:
    (seed,) = pod_spec(rendered, "Job", "seed")["containers"]
    assert seed["command"] == ["python", "-m", "app.seed"] and seed["image"] == IMAGES["app"]


@pytest.mark.parametrize(("ref", "expected"), [("stageproof/users:abc", ("stageproof/users", "abc")),
                                               ("localhost:5000/users:1.0", ("localhost:5000/users", "1.0")),
                                               ("mysql:8.4", ("mysql", "8.4"))])
def test_image_refs_split_into_name_and_tag(ref: str, expected: tuple[str, str]) -> None:
    assert split_image(ref) == expected


@pytest.mark.parametrize("ref", ["stageproof/users", "localhost:5000/users"])
def test_an_image_without_a_tag_is_refused(ref: str) -> None:
    with pytest.raises(ValueError, match="no explicit tag"):
        split_image(ref)

"""The run's overlay on a team's manifests, checked on the `kubectl kustomize` output (no cluster):
the reference app's kustomization and a plain folder of YAML (examples/guestbook/k8s) get the
built image, IfNotPresent, the NodePort, the release and the run label, and nothing else changes."""

from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.appenv import app_env
from harness.config import Settings, load_settings
from harness.core.cache import cache_dir
from harness.errors import ConfigError
from harness.k8s.manifests import (
    RUN_LABEL,
    Kubectl,
    Rendered,
    database_kind,
    image_name,
    overlay,
    render_run,
    render_theirs,
    split_image,
)
from harness.k8s.patches import INGRESS_NAME, RELEASE_ANNOTATION, ingress
from harness.lifecycle import in_ci

ROOT = Path(__file__).resolve().parents[2]
GUESTBOOK = ROOT / "examples" / "guestbook"
APP_IMAGE = "stageproof/users:abc123"
RELEASE = "rel-1"
RUN_ID = "run0001"
Objects = dict[tuple[str, str], Any]
HASHED = re.compile(r"-[a-z0-9]{10}$")  # kustomize's generator suffix


def kubectl_binary() -> str | None:
    """The kubectl the kind node image build left in the cache (the cluster's), else one on PATH."""
    built = sorted(cache_dir("kind-node", "bin").glob("k8s-*/kubectl"))
    return str(built[-1]) if built else shutil.which("kubectl")


@pytest.fixture(scope="module")
def kubectl() -> Kubectl:
    binary = kubectl_binary()
    if binary is None:
        if in_ci():
            pytest.fail("no kubectl here (on PATH or built by the kind node image) to render the manifests")
        pytest.skip("no kubectl here (on PATH or built by the kind node image)")
    return Kubectl(binary)


def objects(text: str) -> Objects:
    """{(kind, name): object}; generated ConfigMaps/Secrets by their name without the hash."""
    return {(doc["kind"], HASHED.sub("", doc["metadata"]["name"])): doc for doc in yaml.safe_load_all(text)}


def run_objects(kubectl: Kubectl, settings: Settings, app_image: str) -> Objects:
    theirs = render_theirs(kubectl, settings)
    return objects(render_run(kubectl, settings, theirs, app_image=app_image, release=RELEASE, run_id=RUN_ID))


def pod_spec(found: Objects, kind: str, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = found[(kind, name)]["spec"]["template"]["spec"]
    return spec


def containers(found: Objects) -> list[dict[str, Any]]:
    return [c for (kind, _), doc in found.items() if kind in ("Deployment", "StatefulSet", "Job")
            for field in ("initContainers", "containers") for c in doc["spec"]["template"]["spec"].get(field, [])]


# -- the reference app: a kustomization --------------------------------------------------------
@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(ROOT / "stageproof.toml", env={})


@pytest.fixture(scope="module")
def rendered(kubectl: Kubectl, settings: Settings) -> Objects:
    return run_objects(kubectl, settings, APP_IMAGE)


def test_images_are_the_built_tag_or_the_manifests_own_never_pulled(rendered: Objects) -> None:
    assert {c["image"] for c in containers(rendered)} == {APP_IMAGE, "mysql:8.4"}
    assert {c["imagePullPolicy"] for c in containers(rendered)} == {"IfNotPresent"}


def test_web_pods_are_hardened_and_drain_gracefully(rendered: Objects) -> None:
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
    assert {"cpu", "memory"} <= web["resources"]["requests"].keys()
    assert web["resources"]["limits"] == {"memory": "320Mi"}  # no CPU limit: throttling is tail latency
    assert rendered[("Deployment", "web")]["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert rendered[("Deployment", "web")]["spec"]["replicas"] == 2


def test_web_replicas_spread_over_the_nodes(rendered: Objects) -> None:
    (spread,) = pod_spec(rendered, "Deployment", "web")["topologySpreadConstraints"]
    assert (spread["maxSkew"], spread["topologyKey"], spread["whenUnsatisfiable"]) == (
        1, "kubernetes.io/hostname", "ScheduleAnyway")
    assert spread["labelSelector"]["matchLabels"] == rendered[("Deployment", "web")]["spec"]["selector"]["matchLabels"]


def test_the_release_and_run_variables_are_on_the_web_pod_template(rendered: Objects, settings: Settings) -> None:
    template = rendered[("Deployment", "web")]["spec"]["template"]
    assert template["metadata"]["annotations"][RELEASE_ANNOTATION] == RELEASE
    env = {entry["name"]: entry["value"] for entry in template["spec"]["containers"][0]["env"]}
    assert env == app_env(settings, stage="k8s", release=RELEASE, run_only=True)
    assert env["RELEASE_ID"] == RELEASE and env["API_TOKEN"] == settings.app.token


def test_credentials_live_only_in_secrets_with_the_configs_values(rendered: Objects, settings: Settings) -> None:
    for (kind, _), doc in rendered.items():
        if kind == "ConfigMap":
            text = yaml.safe_dump(doc)
            assert settings.database.password not in text and settings.database.root_password not in text
    secret = {key: base64.b64decode(value).decode() for key, value in
              rendered[("Secret", "app-credentials")]["data"].items()}
    db = settings.database
    assert secret["DATABASE_URL"] == f"mysql://{db.user}:{db.password}@db:3306/{db.name}"
    assert secret["API_TOKEN"] == settings.app.token


def test_database_keeps_its_data_on_a_standard_pvc(rendered: Objects) -> None:
    sts = rendered[("StatefulSet", "db")]["spec"]
    (claim,) = sts["volumeClaimTemplates"]
    assert claim["spec"]["storageClassName"] == "standard"
    assert rendered[("Service", "db")]["spec"]["clusterIP"] == "None"
    assert "readinessProbe" in sts["template"]["spec"]["containers"][0]


def test_app_is_exposed_on_the_node_port_and_protected(rendered: Objects, settings: Settings) -> None:
    assert settings.stages.k8s is not None
    service = rendered[("Service", "web")]["spec"]
    assert service["type"] == "NodePort" and service["ports"][0]["nodePort"] == settings.stages.k8s.node_port
    assert rendered[("PodDisruptionBudget", "web")]["spec"]["minAvailable"] == 1
    policy = rendered[("NetworkPolicy", "db-only-from-app")]["spec"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "db"


def test_every_object_is_in_the_run_namespace_with_the_run_label(rendered: Objects, settings: Settings) -> None:
    assert settings.stages.k8s is not None
    assert not [key for key in rendered if key[0] == "Namespace"]
    assert {doc["metadata"]["namespace"] for doc in rendered.values()} == {settings.stages.k8s.namespace}
    assert {doc["metadata"]["labels"][RUN_LABEL] for doc in rendered.values()} == {RUN_ID}
    selector = rendered[("Deployment", "web")]["spec"]["selector"]["matchLabels"]
    assert RUN_LABEL not in selector  # selectors are immutable: a new run must not change them


def test_seed_job_runs_the_app_image_seed_command(rendered: Objects) -> None:
    (seed,) = pod_spec(rendered, "Job", "seed")["containers"]
    assert seed["command"] == ["python", "-m", "app.seed"] and seed["image"] == APP_IMAGE


def test_a_new_release_changes_only_the_web_pod_template(kubectl: Kubectl, settings: Settings,
                                                         rendered: Objects) -> None:
    theirs = render_theirs(kubectl, settings)
    again = objects(render_run(kubectl, settings, theirs, app_image=APP_IMAGE, release="rel-2", run_id=RUN_ID))
    changed = sorted(key for key in rendered if rendered[key] != again[key])
    assert changed == [("Deployment", "web")]


def test_no_ingress_unless_the_cluster_has_stageproofs_controller(rendered: Objects) -> None:
    assert not [key for key in rendered if key[0] == "Ingress"]


def test_with_an_ingress_class_the_web_service_is_also_behind_an_ingress(kubectl: Kubectl, settings: Settings,
                                                                         rendered: Objects) -> None:
    assert settings.stages.k8s is not None
    theirs = render_theirs(kubectl, settings)
    found = objects(render_run(kubectl, settings, theirs, app_image=APP_IMAGE, release=RELEASE, run_id=RUN_ID,
                               ingress_class="traefik"))
    ingress = found.pop(("Ingress", INGRESS_NAME))
    assert found == rendered  # nothing else changes
    assert ingress["metadata"]["namespace"] == settings.stages.k8s.namespace
    assert ingress["metadata"]["labels"][RUN_LABEL] == RUN_ID
    assert ingress["spec"] == {"ingressClassName": "traefik", "rules": [{"http": {"paths": [
        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"name": "http"}}}}]}}]}


# -- a plain folder of YAML: examples/guestbook/k8s --------------------------------------------
@pytest.fixture(scope="module")
def guestbook_settings() -> Settings:
    return load_settings(GUESTBOOK / "stageproof.toml", env={})


@pytest.fixture(scope="module")
def guestbook(kubectl: Kubectl, guestbook_settings: Settings) -> Objects:
    return run_objects(kubectl, guestbook_settings, "stageproof/guestbook:abc123")


def test_plain_folder_gets_the_built_image_instead_of_latest_and_never_pulls(guestbook: Objects) -> None:
    (web,) = pod_spec(guestbook, "Deployment", "guestbook")["containers"]
    assert web["image"] == "stageproof/guestbook:abc123"
    assert pod_spec(guestbook, "Deployment", "mysql")["containers"][0]["image"] == "mysql:8.0"
    assert {c["imagePullPolicy"] for c in containers(guestbook)} == {"IfNotPresent"}  # was Always


def test_plain_folder_service_moves_to_the_configured_node_port(guestbook: Objects,
                                                                guestbook_settings: Settings) -> None:
    assert guestbook_settings.stages.k8s is not None
    service = guestbook[("Service", "guestbook")]["spec"]
    assert service["type"] == "NodePort" and service["ports"][0]["nodePort"] == guestbook_settings.stages.k8s.node_port
    assert guestbook[("Service", "mysql")]["spec"]["type"] == "ClusterIP"


def test_plain_folder_release_variable_overrides_the_manifests_value(guestbook: Objects) -> None:
    (web,) = pod_spec(guestbook, "Deployment", "guestbook")["containers"]
    env = {entry["name"]: entry for entry in web["env"]}
    assert env["APP_VERSION"] == {"name": "APP_VERSION", "value": RELEASE}
    assert env["MYSQL_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "mysql-pass"  # theirs, untouched


def test_plain_folder_keeps_every_object_of_the_team(guestbook: Objects, guestbook_settings: Settings) -> None:
    assert guestbook_settings.stages.k8s is not None
    theirs = {("PersistentVolumeClaim", "mysql-data"), ("ConfigMap", "mysql-initdb"), ("Secret", "mysql-pass")}
    assert theirs <= set(guestbook)
    assert {doc["metadata"]["namespace"] for doc in guestbook.values()} == {guestbook_settings.stages.k8s.namespace}


def test_a_variable_the_manifests_take_from_a_secret_becomes_a_plain_value(kubectl: Kubectl, settings: Settings,
                                                                           tmp_path: Path) -> None:
    """`env` entries merge by name: their `valueFrom` must go, or the API refuses value + valueFrom."""
    docs = list(yaml.safe_load_all((GUESTBOOK / "k8s" / "web.yaml").read_text()))
    docs[0]["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "RELEASE_ID", "valueFrom": {"configMapKeyRef": {"name": "release", "key": "id"}}}]
    (tmp_path / "web.yml").write_text(yaml.safe_dump_all(docs))
    (tmp_path / "db.yaml").write_text((GUESTBOOK / "k8s" / "mysql.yaml").read_text())
    (tmp_path / "empty.yaml").write_text("# nothing here\n")
    raw = {"manifests": str(tmp_path), "deployment": "guestbook", "database": "mysql"}
    team = settings.model_copy(update={"stages": settings.stages.model_copy(update={
        "k8s": settings.stages.k8s.model_validate(raw, context={"root": tmp_path})})})  # type: ignore[union-attr]
    found = run_objects(kubectl, team, APP_IMAGE)
    env = {entry["name"]: entry for entry in pod_spec(found, "Deployment", "guestbook")["containers"][0]["env"]}
    assert env["RELEASE_ID"] == {"name": "RELEASE_ID", "value": RELEASE}


# -- the overlay itself (no kubectl) -------------------------------------------------------------
def workload(kind: str, name: str, *, init: int = 0, main: int = 1, api: str = "apps/v1") -> dict[str, Any]:
    spec = {"containers": [{"name": f"c{i}", "image": f"img{i}:1"} for i in range(main)]}
    if init:
        spec["initContainers"] = [{"name": f"i{i}", "image": f"init{i}:1"} for i in range(init)]
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name}, "spec": {"template": {"spec": spec}}}


def service(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"ports": [{"port": 80}], **spec}}


def team_render(*docs: dict[str, Any]) -> Rendered:
    base = [workload("Deployment", "web"), service("web"), workload("StatefulSet", "db"),
            workload("Job", "seed", api="batch/v1")]
    return Rendered(Path("/team/k8s"), yaml.safe_dump_all([*base, *docs]), tuple([*base, *docs]))


def patches_by_target(data: dict[str, Any]) -> dict[tuple[str, str], list[Any]]:
    found: dict[tuple[str, str], list[Any]] = {}
    for patch in data["patches"]:
        found.setdefault((patch["target"]["kind"], patch["target"]["name"]), []).append(yaml.safe_load(patch["patch"]))
    return found


def test_every_container_and_init_container_is_patched_by_index(settings: Settings) -> None:
    theirs = team_render(workload("Job", "migrate", init=2, main=2, api="batch/v1"))
    patches = patches_by_target(overlay(settings, theirs, app_image=APP_IMAGE, release=RELEASE, run_id=RUN_ID))
    (ops,) = patches[("Job", "migrate")]
    assert [op["path"] for op in ops] == [f"/spec/template/spec/{field}/{i}/imagePullPolicy"
                                          for field in ("initContainers", "containers") for i in (0, 1)]
    assert {(op["op"], op["value"]) for op in ops} == {("add", "IfNotPresent")}


def test_the_overlay_names_namespace_image_label_and_drops_namespaces(settings: Settings) -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}
    data = overlay(settings, team_render(namespace), app_image=APP_IMAGE, release=RELEASE, run_id=RUN_ID)
    assert data["namespace"] == settings.stages.k8s.namespace  # type: ignore[union-attr]
    assert data["images"] == [{"name": "stageproof/users", "newName": "stageproof/users", "newTag": "abc123"}]
    assert data["labels"] == [{"pairs": {RUN_LABEL: RUN_ID}, "includeSelectors": False}]
    assert patches_by_target(data)[("Namespace", "team")] == [
        {"$patch": "delete", "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}]


def test_the_ingress_names_an_unnamed_first_port_by_number(settings: Settings) -> None:
    data = overlay(settings, team_render(), app_image=APP_IMAGE, release=RELEASE, run_id=RUN_ID,
                   ingress_class="traefik")
    assert data["resources"] == ["theirs.yaml", "ingress.yaml", "budget.yaml"]  # they have no PDB
    assert settings.stages.k8s is not None
    backend = ingress(team_render(), settings.stages.k8s, "traefik")["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend == {"service": {"name": "web", "port": {"number": 80}}}


def test_the_database_may_be_a_deployment_or_a_statefulset(settings: Settings) -> None:
    assert settings.stages.k8s is not None
    assert database_kind(team_render(), settings.stages.k8s) == "StatefulSet"
    theirs = Rendered(Path("/t"), "", (workload("Deployment", "web"), workload("Deployment", "db")))
    assert database_kind(theirs, settings.stages.k8s) == "Deployment"


def test_a_headless_web_service_cannot_be_the_node_port(settings: Settings) -> None:
    theirs = Rendered(Path("/t"), "", (workload("Deployment", "web"), workload("StatefulSet", "db"),
                                       service("web", clusterIP="None")))
    with pytest.raises(ConfigError, match=r"stages\.k8s\.service: .*headless"):
        overlay(settings, theirs, app_image=APP_IMAGE, release=RELEASE, run_id=RUN_ID)


def test_a_node_port_another_service_holds_is_refused(settings: Settings) -> None:
    taken = service("other", type="NodePort", ports=[{"port": 80, "nodePort": settings.stages.k8s.node_port}])  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match=r"stages\.k8s\.node_port: .*Service 'other'"):
        overlay(settings, team_render(taken), app_image=APP_IMAGE, release=RELEASE, run_id=RUN_ID)


def test_a_missing_workload_is_named_with_its_key_and_what_exists(settings: Settings) -> None:
    theirs = Rendered(Path("/team/k8s"), "", (workload("Deployment", "frontend"), service("web")))
    with pytest.raises(ConfigError, match=r"stages\.k8s\.deployment: no Deployment named 'web'.*Deployment/frontend"):
        overlay(settings, theirs, app_image=APP_IMAGE, release=RELEASE, run_id=RUN_ID)


@pytest.mark.parametrize(("ref", "expected"), [
    ("stageproof/users:abc", {"newName": "stageproof/users", "newTag": "abc"}),
    ("localhost:5000/users:1.0", {"newName": "localhost:5000/users", "newTag": "1.0"}),
    ("mysql:8.4", {"newName": "mysql", "newTag": "8.4"}),
    ("users@sha256:0123", {"newName": "users", "digest": "sha256:0123"})])
def test_image_refs_split_into_name_and_tag(ref: str, expected: dict[str, str]) -> None:
    assert split_image(ref) == expected


@pytest.mark.parametrize("ref", ["stageproof/users", "localhost:5000/users", "users:latest"])
def test_an_image_without_a_tag_or_latest_is_refused(ref: str) -> None:
    with pytest.raises(ValueError, match="latest"):
        split_image(ref)


@pytest.mark.parametrize(("ref", "name"), [("stageproof/users:dev", "stageproof/users"), ("mysql", "mysql"),
                                           ("localhost:5000/users", "localhost:5000/users"),
                                           ("localhost:5000/users:1", "localhost:5000/users"),
                                           ("users@sha256:0123", "users")])
def test_image_names_drop_tag_and_digest_but_not_a_registry_port(ref: str, name: str) -> None:
    assert image_name(ref) == name


# -- disruption: budget, node-loss tolerations, the broken release, later releases ---------------
def test_the_guestbook_without_a_budget_gets_one_and_the_reference_app_keeps_its_own(
        guestbook: Objects, rendered: Objects) -> None:
    budget = guestbook[("PodDisruptionBudget", "stageproof-web")]["spec"]
    assert budget == {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "guestbook", "tier": "frontend"}}}
    assert [key for key in rendered if key[0] == "PodDisruptionBudget"] == [("PodDisruptionBudget", "web")]


def test_web_pods_leave_a_lost_node_after_eviction_seconds(rendered: Objects, guestbook: Objects,
                                                           settings: Settings) -> None:
    assert settings.stages.k8s is not None
    for found, name in ((rendered, "web"), (guestbook, "guestbook")):
        tolerations = pod_spec(found, "Deployment", name)["tolerations"]
        assert {(t["key"], t["effect"], t["tolerationSeconds"]) for t in tolerations} == {
            ("node.kubernetes.io/unreachable", "NoExecute", settings.stages.k8s.eviction_seconds),
            ("node.kubernetes.io/not-ready", "NoExecute", settings.stages.k8s.eviction_seconds)}
    assert "tolerations" not in pod_spec(rendered, "StatefulSet", "db")  # the database waits for its node


def test_the_broken_release_cannot_start_and_stalls_after_the_deadline(kubectl: Kubectl, settings: Settings,
                                                                       rendered: Objects) -> None:
    theirs = render_theirs(kubectl, settings)
    broken = objects(render_run(kubectl, settings, theirs, app_image=APP_IMAGE, release=RELEASE, run_id=RUN_ID,
                                broken_deadline=20))
    web = broken[("Deployment", "web")]
    assert web["spec"]["progressDeadlineSeconds"] == 20
    assert web["spec"]["template"]["spec"]["containers"][0]["command"] == ["/stageproof-broken-release"]
    assert "progressDeadlineSeconds" not in rendered[("Deployment", "web")]["spec"]
    assert sorted(key for key in rendered if rendered[key] != broken[key]) == [("Deployment", "web")]


def test_a_later_release_leaves_the_seed_job_alone(kubectl: Kubectl, settings: Settings, rendered: Objects) -> None:
    """A Job's template is immutable: re-applying it with a new app image would fail."""
    theirs = render_theirs(kubectl, settings)
    later = objects(render_run(kubectl, settings, theirs, app_image="stageproof/users:other", release="rel-2",
                               run_id=RUN_ID, later=True))
    assert ("Job", "seed") in rendered and ("Job", "seed") not in later
    assert set(later) == set(rendered) - {("Job", "seed")}

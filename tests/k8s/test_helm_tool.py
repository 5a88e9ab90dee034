"""Helm itself, built here (harness.images.tools), driving the tiny chart (tests/fixtures/charts/tiny):
`helm template` through the post-renderer (no cluster), then a real kind cluster (the k8s session's
plain one, shared with the node image's checks): install with a pre-install hook, upgrade,
rollback, `helm test` passing and failing, uninstall.

The overlay here adds a label and retags the image (tiny:1 -> tiny:2); hooks show what Helm 3
does NOT post-render: the pre-install Job and the test Pod keep the chart's image and labels.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from harness.core.cache import cache_dir
from harness.core.run import run
from harness.core.wait import NotYet, wait_until
from harness.images.kind_node_images import ensure_toolbox
from harness.images.kind_node_recipe import load_versions
from harness.images.tools import ensure_helm
from harness.k8s.helm import Helm, HelmFailed
from harness.k8s.helm_chart import documents, missing_kinds, served_kinds
from harness.k8s.postrender import post_renderer
from tests.support.plain_cluster import PlainCluster

pytestmark = pytest.mark.slow

TINY = Path(__file__).resolve().parents[1] / "fixtures" / "charts" / "tiny"
APP = "helm-helper/tiny"
NAMESPACE = "team"
RELEASE = "tiny"
RUN_LABEL = "io.stageproof/run"
TIMES: dict[str, float] = {}


@contextmanager
def step(name: str) -> Iterator[None]:
    started = time.monotonic()
    yield
    TIMES[name] = time.monotonic() - started
    print(f"[helm] {name}: {TIMES[name]:.1f}s", flush=True)


@pytest.fixture(scope="module")
def kubectl() -> str:
    built = sorted(cache_dir("kind-node", "bin").glob("k8s-*/kubectl"))
    binary = str(built[-1]) if built else shutil.which("kubectl")
    if binary is None:
        pytest.fail("no kubectl here (on PATH or built by the kind node image) to run kustomize")
    return binary


@pytest.fixture(scope="module")
def helm_binary() -> Path:
    with step("ensure_helm (a second call: a marker check)"):
        return ensure_helm()


def write_overlay(folder: Path, tag: str = "2") -> Path:
    """What the lead's overlay does, in small: a run label on everything, the app image retagged."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": ["theirs.yaml"],
        "labels": [{"pairs": {RUN_LABEL: "run0001"}, "includeSelectors": False}],
        "images": [{"name": APP, "newTag": tag}]}))
    return folder


def by_kind(text: str) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(text) if isinstance(doc, dict)}


def image_of(doc: dict[str, Any]) -> str:
    spec = doc["spec"]["template"]["spec"] if doc["kind"] != "Pod" else doc["spec"]
    return str(spec["containers"][0]["image"])


def test_helm_template_post_renders_the_manifests_but_not_the_hooks(helm_binary: Path, kubectl: str,
                                                                     tmp_path: Path) -> None:
    helm = Helm(helm_binary, tmp_path / "no-kubeconfig", NAMESPACE, home=tmp_path / "home")
    script = post_renderer(write_overlay(tmp_path / "overlay"), [kubectl])
    with step("helm template --post-renderer"):
        out_text = helm.template(TINY, RELEASE, post_renderer=script)
    out = by_kind(out_text)
    for kind in ("Deployment", "Service", "ConfigMap"):
        assert out[kind]["metadata"]["labels"][RUN_LABEL] == "run0001", kind
    assert image_of(out["Deployment"]) == f"{APP}:2"
    # Helm 3 sends only the release's manifests through the post-renderer: hooks come out as rendered
    hooks = [doc for doc in yaml.safe_load_all(out_text) if doc["kind"] in ("Job", "Pod")]
    assert len(hooks) == 3
    for hook in hooks:
        assert RUN_LABEL not in (hook["metadata"].get("labels") or {}), hook["metadata"]["name"]
        assert image_of(hook) == f"{APP}:1", hook["metadata"]["name"]
    print(f"[helm] version: {run([helm_binary, 'version', '--short']).stdout.strip()}")


def test_a_failing_post_renderer_fails_helm_with_its_reason(helm_binary: Path, kubectl: str, tmp_path: Path) -> None:
    folder = write_overlay(tmp_path / "overlay")
    (folder / "kustomization.yaml").write_text("resources: [theirs.yaml]\npatches: [{path: absent-patch.yaml}]\n")
    helm = Helm(helm_binary, tmp_path / "no-kubeconfig", NAMESPACE, home=tmp_path / "home")
    with pytest.raises(HelmFailed, match=r"error while running post render") as failed:
        helm.template(TINY, RELEASE, post_renderer=post_renderer(folder, [kubectl]))
    assert "absent-patch.yaml: no such file" in str(failed.value)  # kustomize's reason
    assert "stageproof post-renderer: " in str(failed.value)  # and which overlay


def test_a_file_subchart_is_packaged_offline_and_its_templates_are_attributed(helm_binary: Path,
                                                                              tmp_path: Path) -> None:
    shutil.copytree(TINY, tmp_path / "tiny")
    parent = tmp_path / "umbrella"
    (parent / "templates").mkdir(parents=True)
    (parent / "Chart.yaml").write_text(yaml.safe_dump({"apiVersion": "v2", "name": "umbrella", "version": "1.0.0",
        "dependencies": [{"name": "tiny", "version": "0.1.0", "repository": "file://../tiny"}]}))
    (parent / "templates" / "vpa.yaml").write_text(
        "apiVersion: autoscaling.k8s.io/v1\nkind: VerticalPodAutoscaler\nmetadata: {name: web}\n")
    helm = Helm(helm_binary, tmp_path / "no-kubeconfig", NAMESPACE, home=tmp_path / "home")
    with pytest.raises(HelmFailed, match="missing in charts/"):
        helm.template(parent, RELEASE)  # Helm itself, without the vendored subchart
    with step("dependency_build (helm package of a file:// subchart)"):
        ready = helm.dependency_build(parent, tmp_path / "work")
    assert ready != parent and not (parent / "charts").exists()  # their chart folder is left as it was
    text = helm.template(ready, RELEASE)
    sources = {doc["kind"]: source for source, doc in documents(text)}
    assert sources["Deployment"] == "umbrella/charts/tiny/templates/deployment.yaml"
    [vpa] = missing_kinds(text, {("apps/v1", "Deployment"), ("v1", "Service"), ("v1", "ConfigMap"),
                                 ("batch/v1", "Job"), ("v1", "Pod")})
    assert vpa.template == "templates/vpa.yaml" and vpa.api_version == "autoscaling.k8s.io/v1"


# -- a real cluster ------------------------------------------------------------------------------
@dataclass
class Live:
    helm: Helm
    core: Any
    batch: Any
    api_client: Any
    overlay: Path
    script: Path


@pytest.fixture(scope="module")
def live(helm_binary: Path, kubectl: str, shared_plain_cluster: PlainCluster,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The session's plain cluster (tests/support/plain_cluster.py, shared with the node image's
    checks), with the tiny chart's images loaded and a namespace of its own, deleted afterwards."""
    tmp = tmp_path_factory.mktemp("helm-live")
    cluster = shared_plain_cluster
    try:
        with step("tiny image build + tag"):
            (tmp / "image").mkdir()
            # the toolbox is in the node image, not always on the host (CI empties stageproof's images)
            toolbox = ensure_toolbox(load_versions())
            (tmp / "image" / "Dockerfile").write_text(f"FROM {toolbox}\nRUN echo tiny > /tiny\n")
            run(["docker", "build", "-q", "-t", f"{APP}:1", str(tmp / "image")], timeout=300)
            run(["docker", "tag", f"{APP}:1", f"{APP}:2"])
        with step("kind load docker-image"):
            cluster.kind.load_images([f"{APP}:1", f"{APP}:2"])
        cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
            name=NAMESPACE, labels={RUN_LABEL: "run0001"})))
        helm = Helm(helm_binary, cluster.kind.kubeconfig, NAMESPACE, home=tmp / "home")
        overlay = write_overlay(tmp / "overlay")
        yield Live(helm, cluster.core, client.BatchV1Api(cluster.api_client), cluster.api_client, overlay,
                   post_renderer(overlay, [kubectl]))
    finally:
        with step("delete namespace team"):
            cluster.core.delete_namespace(NAMESPACE, propagation_policy="Foreground")
        for tag in ("1", "2"):
            run(["docker", "image", "rm", f"{APP}:{tag}"], check=False)
        print("[helm] step times: " + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in TIMES.items()))


def page(live: Live) -> str:
    return str(live.core.read_namespaced_config_map(f"{RELEASE}-page", NAMESPACE).data["index.html"])


def test_install_upgrade_rollback_test_and_uninstall_on_a_real_cluster(live: Live, tmp_path: Path) -> None:
    helm = live.helm
    with step("helm upgrade --install (revision 1, pre-install hook, --wait)"):
        first = helm.upgrade_install(TINY, RELEASE, post_renderer=live.script, timeout=240)
    assert (first.number, first.status, first.chart) == (1, "deployed", "tiny-0.1.0")
    web: Any = client.AppsV1Api(live.api_client).read_namespaced_deployment(f"{RELEASE}-web", NAMESPACE)
    assert web.metadata.labels[RUN_LABEL] == "run0001" and web.spec.template.spec.containers[0].image == f"{APP}:2"
    setup = live.batch.read_namespaced_job(f"{RELEASE}-setup", NAMESPACE)
    assert setup.status.succeeded == 1
    assert RUN_LABEL not in (setup.metadata.labels or {}) and setup.spec.template.spec.containers[0].image == f"{APP}:1"

    values = tmp_path / "two.yaml"
    values.write_text("message: two\n")
    with step("helm upgrade (revision 2)"):
        second = helm.upgrade_install(TINY, RELEASE, values_files=[values], post_renderer=live.script, timeout=240)
    assert (second.number, page(live)) == (2, "two")

    with step("helm rollback (revision 3 = revision 1)"):
        third = helm.rollback(RELEASE, 1, timeout=240)
    assert (third.number, third.status, third.description, page(live)) == (3, "deployed", "Rollback to 1", "one")
    assert [r.status for r in helm.history(RELEASE)] == ["superseded", "superseded", "deployed"]

    with step("helm test (passing)"):
        passed = helm.test(RELEASE, timeout=120)
    assert passed.passed, passed.describe()
    tests = {pod.name: pod for pod in passed.pods}
    assert {name: pod.phase for name, pod in tests.items()} == {f"{RELEASE}-test-web": "Succeeded",
                                                                f"{RELEASE}-test-config": "Succeeded"}
    assert "page says 'one'" in tests[f"{RELEASE}-test-web"].logs
    # test-config is deleted on success (hook-succeeded) before `--logs` asks for its logs
    assert "unable to get pod logs" in passed.error, passed.error

    with step("helm upgrade (revision 4, a test that fails)"):
        helm.upgrade_install(TINY, RELEASE, set_values={"failTest": "true"}, post_renderer=live.script, timeout=240)
    with step("helm test (failing)"):
        failed = helm.test(RELEASE, timeout=120)
    assert not failed.passed
    assert {pod.name: pod.phase for pod in failed.failed} == {f"{RELEASE}-test-web": "Failed",
                                                              f"{RELEASE}-test-config": "NotRun"}
    assert "expected 'not-one'" in failed.describe(), failed.describe()
    assert f"failed: test pod(s) {RELEASE}-test-web failed" in failed.describe()
    print(f"[helm] a failing test is reported as:\n{failed.describe()}")

    with step("helm uninstall --wait"):
        helm.uninstall(RELEASE)
    with pytest.raises(HelmFailed, match="not found"):
        helm.history(RELEASE)
    wait_until(lambda: _gone(live), what="the release's web pods to be gone", timeout=120)
    # Helm never deletes hook resources on uninstall (they are not part of the release's manifest):
    # the pre-install Job and the last test Pod stay until their namespace goes
    assert live.batch.read_namespaced_job(f"{RELEASE}-setup", NAMESPACE).status.succeeded == 1
    assert live.core.read_namespaced_pod(f"{RELEASE}-test-web", NAMESPACE).status.phase == "Failed"
    helm.uninstall(RELEASE)  # a second time: nothing there, not an error


def test_the_clusters_served_kinds_find_a_missing_crd_and_a_removed_version(live: Live) -> None:
    with step("served_kinds (discovery of every group version)"):
        served = served_kinds(live.api_client)
    assert ("apps/v1", "Deployment") in served and ("v1", "Pod") in served
    render = ("---\n# Source: app/templates/vpa.yaml\napiVersion: autoscaling.k8s.io/v1\nkind: VerticalPodAutoscaler\n"
              "metadata: {name: web}\n---\n# Source: app/templates/ingress.yaml\n"
              "apiVersion: networking.k8s.io/v1beta1\nkind: Ingress\nmetadata: {name: web}\n")
    vpa, ingress = missing_kinds(render, served)
    assert (vpa.kind, vpa.served_as) == ("VerticalPodAutoscaler", ())
    assert (ingress.kind, ingress.served_as) == ("Ingress", ("networking.k8s.io/v1",))
    print(f"[helm] {vpa.describe()}\n[helm] {ingress.describe()}")


def _gone(live: Live) -> None:
    if pods := live.core.list_namespaced_pod(NAMESPACE, label_selector="app.kubernetes.io/name=tiny").items:
        raise NotYet(f"pods still there: {[pod.metadata.name for pod in pods]}")

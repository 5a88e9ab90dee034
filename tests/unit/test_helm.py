"""The Helm wrapper without a cluster: argv, history/test parsing, `# Source:` attribution,
kinds the cluster does not serve, vendored subcharts, and the post-renderer script (with the
real `kubectl kustomize`, no Helm)."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from harness.core.cache import cache_dir
from harness.core.run import run
from harness.errors import ConfigError
from harness.k8s.helm import NOT_RUN, Helm, HelmTestPod, HelmTestResult, hook_phases, parse_history, parse_test_logs
from harness.k8s.helm_chart import MissingKind, documents, missing_dependencies, missing_kinds
from harness.k8s.postrender import post_renderer
from harness.lifecycle import in_ci

HELM = Helm(Path("/opt/helm"), Path("/tmp/kube config"), "team-ns", context="kind-x")
HISTORY = json.dumps([
    {"revision": 2, "updated": "2026-01-01T10:01:00Z", "status": "superseded", "chart": "tiny-0.1.0",
     "app_version": "1.0", "description": "Upgrade complete"},
    {"revision": 1, "updated": "2026-01-01T10:00:00Z", "status": "superseded", "chart": "tiny-0.1.0",
     "app_version": "1.0", "description": "Install complete"},
    {"revision": 3, "updated": "2026-01-01T10:02:00Z", "status": "deployed", "chart": "tiny-0.1.0",
     "app_version": "1.0", "description": "Rollback to 1"}])
RENDER = """---
# Source: app/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
---
# Source: app/templates/vpa.yaml
apiVersion: autoscaling.k8s.io/v1
kind: VerticalPodAutoscaler
metadata:
  name: web
---
# Source: app/charts/edge/templates/ingress.yaml
apiVersion: networking.k8s.io/v1beta1
kind: Ingress
metadata:
  name: edge
---
# Source: app/crds/widgets.yaml
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions: [{name: v1, served: true, storage: true}]
---
# Source: app/templates/widget.yaml
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w
"""
SERVED = {("apps/v1", "Deployment"), ("networking.k8s.io/v1", "Ingress"), ("v1", "ConfigMap"),
          ("apiextensions.k8s.io/v1", "CustomResourceDefinition")}


def test_argv_is_bound_to_the_kubeconfig_context_and_namespace_and_never_creates_the_namespace() -> None:
    args = HELM.upgrade_args(Path("chart"), "rel", values_files=[Path("a.yaml"), Path("b.yaml")],
                             set_values={"image.tag": "v2"}, post_renderer=Path("/o/pr"), timeout=90.4)
    argv = HELM.argv(*args)
    assert argv[:5] == ["/opt/helm", "upgrade", "rel", "chart", "--install"]
    assert argv[argv.index("--kubeconfig") + 1] == "/tmp/kube config"
    assert argv[argv.index("--namespace") + 1] == "team-ns"
    assert argv[argv.index("--kube-context") + 1] == "kind-x"
    assert argv[argv.index("--post-renderer") + 1] == "/o/pr"
    assert "--wait" in argv and "--timeout=90s" in argv
    assert [argv[i + 1] for i, arg in enumerate(argv) if arg == "--values"] == ["a.yaml", "b.yaml"]
    assert argv[argv.index("--set") + 1] == "image.tag=v2"
    assert "--create-namespace" not in argv
    assert "--wait" not in HELM.upgrade_args(Path("chart"), "rel", wait=False)


def test_template_argv_includes_crds_and_the_cluster_capabilities() -> None:
    args = HELM.template_args(Path("chart"), "rel", api_versions=["autoscaling.k8s.io/v1"], kube_version="1.34.4")
    assert args[:4] == ["template", "rel", "chart", "--include-crds"]
    assert "--api-versions=autoscaling.k8s.io/v1" in args and "--kube-version=1.34.4" in args
    assert "--post-renderer" not in args
    assert Helm(Path("helm"), Path("k"), "ns").argv("list")[-1] == "ns"  # no --kube-context without one


def test_helm_homes_stay_out_of_the_users_own(tmp_path: Path) -> None:
    env = Helm(Path("helm"), Path("k"), "ns", home=tmp_path).environment()
    assert env == {f"HELM_{part}_HOME": str(tmp_path / part.lower()) for part in ("CACHE", "CONFIG", "DATA")}
    assert HELM.environment() == {}


def test_history_is_parsed_oldest_first() -> None:
    revisions = parse_history(HISTORY)
    assert [r.number for r in revisions] == [1, 2, 3]
    assert revisions[-1].status == "deployed" and revisions[-1].description == "Rollback to 1"
    assert revisions[0].chart == "tiny-0.1.0" and revisions[0].app_version == "1.0"
    assert parse_history("") == []


def test_test_logs_and_phases_are_matched_by_pod_name_and_a_skipped_test_did_not_run() -> None:
    out = ("NAME: rel\nSTATUS: deployed\nTEST SUITE:     rel-a\nPhase:          Failed\n\n"
           "POD LOGS: rel-a\npage says 'one', expected 'two'\n\nPOD LOGS: rel-b\nok\n\n")
    assert parse_test_logs(out) == {"rel-a": "page says 'one', expected 'two'", "rel-b": "ok"}
    now, earlier = "2026-01-01T10:05:00.123456789Z", "2026-01-01T09:00:00.5+01:00"
    status = {"hooks": [
        {"name": "rel-a", "events": ["test"], "last_run": {"started_at": now, "phase": "Failed"}},
        {"name": "rel-setup", "events": ["pre-install"], "last_run": {"started_at": now, "phase": "Succeeded"}},
        {"name": "rel-b", "events": ["test-success"], "last_run": {"started_at": earlier, "phase": "Succeeded"}},
        {"name": "rel-c", "events": ["test"], "last_run": {"started_at": "", "phase": ""}}]}
    assert hook_phases(json.dumps(status)) == {"rel-a": "Failed", "rel-b": "Succeeded", "rel-c": NOT_RUN}
    since = datetime(2026, 1, 1, 10, 4, tzinfo=UTC)
    assert hook_phases(json.dumps(status), since) == {"rel-a": "Failed", "rel-b": NOT_RUN, "rel-c": NOT_RUN}


def test_a_failed_test_is_described_with_its_pods_logs() -> None:
    result = HelmTestResult("rel", False, (HelmTestPod("rel-a", "Failed", "expected 'two'"),
                                           HelmTestPod("rel-b", "Succeeded", "ok"), HelmTestPod("rel-c", NOT_RUN, "")),
                            error="Error: pod rel-a failed")
    assert [pod.name for pod in result.failed] == ["rel-a", "rel-c"]
    text = result.describe()
    assert "pod rel-a failed" in text and "expected 'two'" in text and "rel-b" not in text
    assert "rel-c did not run" in text
    assert "1 test(s) passed" in HelmTestResult("rel", True, (HelmTestPod("rel-b", "Succeeded", ""),)).describe()


def test_each_document_is_attributed_to_its_template() -> None:
    sources = [(source, doc["kind"]) for source, doc in documents(RENDER)]
    assert sources[:3] == [("app/templates/deployment.yaml", "Deployment"),
                           ("app/templates/vpa.yaml", "VerticalPodAutoscaler"),
                           ("app/charts/edge/templates/ingress.yaml", "Ingress")]


def test_missing_kinds_name_the_kind_the_version_and_the_template() -> None:
    missing = missing_kinds(RENDER, SERVED)
    assert missing == [
        MissingKind("VerticalPodAutoscaler", "autoscaling.k8s.io/v1", "web", "app/templates/vpa.yaml"),
        MissingKind("Ingress", "networking.k8s.io/v1beta1", "edge", "app/charts/edge/templates/ingress.yaml",
                    served_as=("networking.k8s.io/v1",))]  # the chart's own CRD makes Widget served
    vpa, ingress = (item.describe() for item in missing)
    assert vpa == ("stages.k8s.chart: templates/vpa.yaml renders a VerticalPodAutoscaler (autoscaling.k8s.io/v1), "
                   "which this cluster does not serve: install its CRD first, or disable it with a values file "
                   "(stages.k8s.values)")
    assert ingress.startswith("stages.k8s.chart: charts/edge/templates/ingress.yaml renders an Ingress "
                              "(networking.k8s.io/v1beta1), a version this cluster no longer serves")
    assert "networking.k8s.io/v1" in ingress
    assert missing_kinds(RENDER, SERVED | {("autoscaling.k8s.io/v1", "VerticalPodAutoscaler"),
                                           ("networking.k8s.io/v1beta1", "Ingress")}) == []


def _chart(folder: Path, name: str, deps: list[dict[str, str]] | None = None) -> Path:
    folder.mkdir(parents=True)
    (folder / "Chart.yaml").write_text(yaml.safe_dump({"apiVersion": "v2", "name": name, "version": "0.1.0",
                                                      **({"dependencies": deps} if deps else {})}))
    return folder


def test_vendored_subcharts_count_as_folders_and_archives_and_a_missing_one_is_named(tmp_path: Path) -> None:
    deps = [{"name": "redis", "version": "1.0.0", "repository": "https://charts.example.com"},
            {"name": "db", "version": "2.0.0", "repository": "oci://registry.example.com/charts"},
            {"name": "lib", "version": "0.1.0", "repository": "file://../lib"}]
    chart = _chart(tmp_path / "app", "app", deps)
    _chart(chart / "charts" / "redis", "redis")
    archive = io.BytesIO(yaml.safe_dump({"apiVersion": "v2", "name": "db", "version": "2.0.0"}).encode())
    with tarfile.open(chart / "charts" / "db-2.0.0.tgz", "w:gz") as tar:
        info = tarfile.TarInfo("db/Chart.yaml")
        info.size = len(archive.getvalue())
        tar.addfile(info, archive)
    assert [dep.name for dep in missing_dependencies(chart)] == ["lib"]
    (chart / "charts" / "db-2.0.0.tgz").unlink()
    with pytest.raises(ConfigError, match=r"db 2\.0\.0 from oci://registry\.example\.com/charts"):
        HELM.dependency_build(chart, tmp_path / "work")


def test_a_chart_with_every_subchart_vendored_is_used_as_it_is(tmp_path: Path) -> None:
    chart = _chart(tmp_path / "app", "app", [{"name": "redis", "version": "1", "repository": "https://x"}])
    _chart(chart / "charts" / "redis", "redis")
    assert HELM.dependency_build(chart, tmp_path / "work") == chart


# -- the post-renderer, with the real `kubectl kustomize` --------------------------------------
@pytest.fixture(scope="module")
def kubectl() -> str:
    built = sorted(cache_dir("kind-node", "bin").glob("k8s-*/kubectl"))
    binary = str(built[-1]) if built else shutil.which("kubectl")
    if binary is None:
        if in_ci():
            pytest.fail("no kubectl here (on PATH or built by the kind node image) to run kustomize")
        pytest.skip("no kubectl here (on PATH or built by the kind node image)")
    return binary


def overlay(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": ["theirs.yaml"],
        "labels": [{"pairs": {"io.stageproof/run": "run0001"}, "includeSelectors": False}]}))
    return folder


def test_the_post_renderer_applies_the_overlay_even_under_a_hostile_path(tmp_path: Path, kubectl: str) -> None:
    folder = overlay(tmp_path / "it's $(touch pwned) `x` dir")
    script = post_renderer(folder, [kubectl])
    proc = run([script], input=RENDER.split("---\n# Source: app/templates/vpa.yaml")[0], check=False)
    assert proc.returncode == 0, proc.stderr
    [deployment] = list(yaml.safe_load_all(proc.stdout))
    assert deployment["metadata"]["labels"] == {"io.stageproof/run": "run0001"}
    assert not (Path.cwd() / "pwned").exists() and not (tmp_path / "pwned").exists()
    assert "kind: Deployment" in (folder / "theirs.yaml").read_text()


def test_a_failing_overlay_exits_non_zero_and_says_why(tmp_path: Path, kubectl: str) -> None:
    folder = overlay(tmp_path / "o")
    (folder / "kustomization.yaml").write_text("resources: [theirs.yaml, absent.yaml]\n")
    proc = run([post_renderer(folder, [kubectl])], input=RENDER, check=False)
    assert proc.returncode != 0 and proc.stdout == ""
    assert "stageproof post-renderer" in proc.stderr and "absent.yaml" in proc.stderr

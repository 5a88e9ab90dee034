"""The pure parts of the workflow checks (harness/checks/workflow.py): which worker to take
away, what blocks a drain, what a rolling update may take away, the infrastructure change, the
code change's copy of the build context, and where node chaos is allowed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.config import Settings, load_settings
from harness.core.run import run
from harness.errors import ConfigError
from harness.images.change import changed_context
from harness.k8s import disruption
from harness.k8s.nodes import pick_worker
from harness.k8s.providers import provider_class
from harness.k8s.rollout import cpu_millis, with_more_cpu

ROOT = Path(__file__).resolve().parents[2]


def test_the_worker_taken_away_runs_app_pods_and_never_the_database() -> None:
    app = ["w1", "w2", "w2", "cp"]
    assert pick_worker(app, db_nodes=["w2"], control_planes={"cp"}) == "w1"
    assert pick_worker(app, db_nodes=["w1"], control_planes={"cp"}) == "w2"
    assert pick_worker(["w1", "w2"], db_nodes=[], control_planes=set()) == "w1"  # a tie: by name
    assert pick_worker(["w1", "cp"], db_nodes=["w1"], control_planes={"cp"}) is None
    assert pick_worker([None], db_nodes=[], control_planes=set()) is None  # an unscheduled pod


def web(**pod_spec: Any) -> dict[str, Any]:
    return {"spec": {"replicas": 2, "selector": {"matchLabels": {"app": "x"}},
                     "template": {"metadata": {"labels": {"app": "x", "tier": "web"}}, "spec": pod_spec}}}


def spread(when: str, **extra: str) -> dict[str, Any]:
    return {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": when, **extra}


def test_a_hard_spread_that_counts_a_cordoned_node_blocks_a_drain() -> None:
    assert disruption.blocking_spread(web(topologySpreadConstraints=[spread("DoNotSchedule")]))
    assert not disruption.blocking_spread(web(topologySpreadConstraints=[spread("ScheduleAnyway")]))
    assert not disruption.blocking_spread(web(topologySpreadConstraints=[
        spread("DoNotSchedule", nodeTaintsPolicy="Honor")]))
    assert not disruption.blocking_spread(web())


@pytest.mark.parametrize(("strategy", "replicas", "expected"), [
    ({"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}, 2, 0),
    ({"rollingUpdate": {"maxUnavailable": "25%"}}, 2, 0),  # rounds down
    ({"rollingUpdate": {"maxUnavailable": "50%"}}, 5, 2),
    (None, 8, 2),  # the default, 25%
    ({"type": "Recreate"}, 3, 3),
])
def test_what_a_rolling_update_may_take_away(strategy: dict[str, Any] | None, replicas: int, expected: int) -> None:
    assert disruption.max_unavailable(strategy, replicas) == expected


def test_a_budget_is_added_only_when_none_selects_the_web_pods() -> None:
    theirs = {"kind": "PodDisruptionBudget", "spec": {"selector": {"matchLabels": {"app": "x"}}}}
    other = {"kind": "PodDisruptionBudget", "spec": {"selector": {"matchLabels": {"app": "db"}}}}
    assert disruption.has_budget((theirs,), web())
    assert not disruption.has_budget((other,), web())
    assert disruption.budget(web())["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "x"}}}


def test_node_loss_tolerations_keep_the_teams_own() -> None:
    mine = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
            "tolerationSeconds": 60}
    ops = disruption.eviction_ops(web(tolerations=[mine]), 10)
    assert ops == [{"op": "add", "path": "/spec/template/spec/tolerations/-", "value": {
        "key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}}]
    assert [op["path"] for op in disruption.eviction_ops(web(), 10)] == ["/spec/template/spec/tolerations"]


def test_the_infrastructure_change_raises_the_cpu_request() -> None:
    assert [cpu_millis(q) for q in ("100m", "0.5", "2")] == [100, 500, 2000]
    assert with_more_cpu({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "320Mi"}}, 50) == {
        "requests": {"cpu": "150m", "memory": "128Mi"}, "limits": {"memory": "320Mi"}}
    assert with_more_cpu({}, 50) == {"requests": {"cpu": "50m"}}


def test_the_code_change_patches_a_copy_of_what_docker_would_send(tmp_path: Path) -> None:
    copy = changed_context(ROOT, ROOT / "stages/changes/version-build-field.patch", tmp_path / "ctx",
                           dockerfile=ROOT / "stages/docker/Dockerfile")
    assert "with the code change" in (copy / "app/ops.py").read_text()
    assert "with the code change" not in (ROOT / "app/ops.py").read_text()  # theirs untouched
    assert (copy / "stages/docker/Dockerfile").is_file() and not (copy / "harness").exists()  # .dockerignore


def test_a_patch_that_does_not_apply_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "a.txt").write_text("one\n")
    bad = tmp_path / "bad.patch"
    bad.write_text("--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-two\n+three\n")
    with pytest.raises(ConfigError, match=r"checks\.code_change\.patch"):
        changed_context(tmp_path / "ctx", bad, tmp_path / "out")


def settings_with(k8s_lines: str, tmp_path: Path) -> Settings:
    text = (ROOT / "examples/guestbook/stageproof.toml").read_text()
    tmp_path.mkdir()
    (tmp_path / "stageproof.toml").write_text(text.replace("[stages.k8s]\n", f"[stages.k8s]\n{k8s_lines}\n"))
    for name in ("k8s", "contract.toml", "Dockerfile", "requirements.txt", "db", "docker-compose.yml", "changes",
                 "app.py"):
        (tmp_path / name).symlink_to(ROOT / "examples/guestbook" / name)
    return load_settings(tmp_path / "stageproof.toml", env={})


def test_node_chaos_only_on_a_cluster_stageproof_makes_unless_allowed(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def withheld(lines: str, where: str) -> str | None:
        settings = settings_with(lines, tmp_path / where)
        return provider_class(settings)(settings, run_id="r").info().node_chaos_withheld

    assert withheld("", "kind") is None
    theirs = withheld('context = "prod"\nbase_url = "http://127.0.0.1:8080"', "theirs")
    assert theirs is not None and "node_chaos = true" in theirs
    assert withheld('context = "prod"\nbase_url = "http://127.0.0.1:8080"\nnode_chaos = true', "allowed") is None
    assert withheld("node_chaos = false", "off") == "[stages.k8s] node_chaos = false"


def test_the_code_change_applies_even_when_the_copy_sits_inside_another_git_checkout(tmp_path: Path) -> None:
    """nox points TMPDIR into .nox/<session>/tmp, inside the project's checkout: `git apply` there
    would skip every path outside the current folder, silently."""
    run(["git", "init", "-q", str(tmp_path)])
    copy = changed_context(ROOT, ROOT / "stages/changes/version-build-field.patch", tmp_path / "deep" / "ctx",
                           dockerfile=ROOT / "stages/docker/Dockerfile")
    assert "with the code change" in (copy / "app/ops.py").read_text()

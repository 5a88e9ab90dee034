"""Who owns a kind cluster: a second run waits for a live owner, a reap never touches a live
owner's cluster, reaps what a dead one left (half-made too), and spares a kept one until `down`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from harness.config import K8sSettings, Settings, load_settings
from harness.core.ownership import KEPT_MARKER, OWNER_MARKER, LockTimeout, OwnerLock
from harness.k8s import kind
from harness.k8s.providers import kind as kind_provider
from harness.k8s.providers.kind import KindProvider, cluster_lock

ROOT = Path(__file__).resolve().parents[2]
SPEC = K8sSettings.model_validate({"manifests": "stages/k8s/overlays/kind", "cluster": "unit-c"},
                                  context={"root": ROOT})


def settings_for(spec: K8sSettings) -> Settings:
    settings = load_settings(ROOT / "stageproof.toml", {})
    return settings.model_copy(update={"stages": settings.stages.model_copy(update={"k8s": spec})})


def reap(*, kept: bool = False) -> str | None:
    removed = KindProvider.reap(settings_for(SPEC), kept=kept)
    return removed[0] if removed else None


def provider(monkeypatch: pytest.MonkeyPatch) -> KindProvider:
    monkeypatch.setattr(KindProvider, "_node_image", lambda self: "img")
    return KindProvider(settings_for(SPEC), run_id="r2")


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STAGEPROOF_CACHE", str(tmp_path / "cache"))
    for name in ("STAGEPROOF_K8S_CONTEXT", "STAGEPROOF_K8S_CLUSTER", "STAGEPROOF_K8S_NODES"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "cache"


@pytest.fixture
def deleted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Cluster deletions (recorded, not run), with `kind get clusters` answering 'unit-c'."""
    calls: list[str] = []

    def delete(self: kind.KindCluster) -> None:
        calls.append(self.name)
        self.created = False

    monkeypatch.setattr(kind.KindCluster, "delete", delete)
    monkeypatch.setattr(kind, "exists", lambda name: name == "unit-c")
    return calls


def _mark(*markers: str) -> None:
    kind.state_dir("unit-c").mkdir(parents=True, exist_ok=True)
    for marker in markers:
        (kind.state_dir("unit-c") / marker).write_text("{}")


def test_a_second_owner_waits_and_is_told_who_holds_the_lock() -> None:
    first, second = OwnerLock("kind-x", run_id="run1"), OwnerLock("kind-x", run_id="run2")
    assert first.try_acquire()
    said: list[str] = []
    threading.Timer(1.0, first.release).start()
    waited = second.acquire(timeout=30, say=said.append)
    assert second.held and 0.5 < waited < 10
    assert said[0].startswith(f"waiting for {first.path} (held by pid {os.getpid()}, run run1, since ")
    second.release()
    assert not first.path.exists(), "a released lock leaves its file behind"


def test_a_second_owner_gives_up_after_its_bound() -> None:
    first = OwnerLock("kind-y", run_id="run1")
    assert first.try_acquire()
    with pytest.raises(LockTimeout, match="held by pid"):
        OwnerLock("kind-y", run_id="run2").acquire(timeout=1, say=lambda text: None)
    first.release()


def test_the_kernel_frees_the_lock_of_a_killed_owner(cache: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", "import time; from harness.core.ownership import OwnerLock; "
                               "OwnerLock('kind-z', run_id='doomed').try_acquire(); print('held', flush=True); "
                               "time.sleep(60)"], stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
    mine = OwnerLock("kind-z", run_id="next")
    assert not mine.try_acquire()
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    assert mine.try_acquire()
    mine.release()


def test_a_reap_never_deletes_a_cluster_whose_owner_is_alive(deleted: list[str]) -> None:
    _mark(OWNER_MARKER, "kubeconfig")
    owner = cluster_lock(SPEC, run_id="alive")
    assert owner.try_acquire()
    assert reap(kept=True) is None
    owner.release()
    assert deleted == []


def test_a_reap_removes_a_half_made_cluster_of_a_dead_owner(deleted: list[str]) -> None:
    _mark(OWNER_MARKER)  # marked before `kind create`, killed before the kubeconfig was written
    assert reap() == "kind cluster unit-c (half-made)"
    assert deleted == ["unit-c"]


def test_a_kept_cluster_is_reaped_only_by_down(deleted: list[str]) -> None:
    _mark(OWNER_MARKER, "kubeconfig", KEPT_MARKER)
    assert reap() is None
    assert reap(kept=True) == "kind cluster unit-c (kept)"
    assert deleted == ["unit-c"]


def test_a_cluster_stageproof_did_not_make_is_never_reaped(deleted: list[str]) -> None:
    assert reap(kept=True) is None
    assert deleted == []


def test_a_kept_cluster_is_reused_by_the_next_run(deleted: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _mark(OWNER_MARKER, "kubeconfig")
    reused = provider(monkeypatch)
    kind.KindCluster("unit-c", "img").mark_kept(fit=reused._fit_of("img"))
    monkeypatch.setattr(kind.KindCluster, "kubectl", lambda self: Path("/bin/true"))
    monkeypatch.setattr(kind_provider, "host_port", lambda name, port: f"127.0.0.1:{port}")
    reused.provision()
    assert deleted == [] and "cluster create" not in reused.timings and "cluster reused" in reused.timings
    assert not cluster_lock(SPEC, run_id="other").try_acquire(), "the run holds the cluster"
    reused.release(keep=True)


def test_a_kept_cluster_of_another_node_image_is_never_reused(deleted: list[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _mark(OWNER_MARKER, "kubeconfig")
    kind.KindCluster("unit-c", "img").mark_kept(fit="made-from-another-node-image")
    monkeypatch.setattr(kind.KindCluster, "create", lambda self, **kwargs: 1.0)
    monkeypatch.setattr(kind.KindCluster, "kubectl", lambda self: Path("/bin/true"))
    monkeypatch.setattr(kind_provider, "host_port", lambda name, port: f"127.0.0.1:{port}")
    fresh = provider(monkeypatch)
    fresh.provision()
    assert deleted == ["unit-c"] and "cluster create" in fresh.timings, "the old cluster must go, a new one come"
    fresh.release(keep=True)


def test_ctrl_c_during_kind_create_deletes_the_half_made_cluster_and_lets_go(
        deleted: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kind, "exists", lambda name: False)

    def interrupted_create(self: kind.KindCluster, **kwargs: object) -> float:
        self.created = True
        raise KeyboardInterrupt("signal 2")

    monkeypatch.setattr(kind.KindCluster, "create", interrupted_create)
    with pytest.raises(KeyboardInterrupt):
        provider(monkeypatch).provision()
    assert deleted == ["unit-c"]
    assert cluster_lock(SPEC, run_id="next").try_acquire(), "the interrupted run still holds the cluster"


def test_create_marks_the_cluster_ours_before_kind_makes_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []
    monkeypatch.setattr(kind, "exists", lambda name: False)
    monkeypatch.setattr(kind, "run", lambda cmd, **kw: seen.append(kind.KindCluster("unit-c", "").ours))
    kind.KindCluster("unit-c", "img", run_id="r1").create()
    assert seen == [True]


def test_the_environment_names_the_cluster_and_its_nodes(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"STAGEPROOF_K8S_CLUSTER": "sp-test", "STAGEPROOF_K8S_NODES": "1"}
    spec = load_settings(ROOT / "stageproof.toml", env).stages.k8s
    assert spec is not None and (spec.cluster, spec.nodes, spec.lock_timeout) == ("sp-test", 1, 1800)


def test_a_user_context_is_owned_by_context_and_namespace() -> None:
    spec = SPEC.model_copy(update={"context": "team", "base_url": "http://127.0.0.1:9000", "namespace": "ns1"})
    assert cluster_lock(spec, run_id="r").path.name == "k8s-context-team-ns1.lock"
    assert cluster_lock(SPEC, run_id="r").path.name == "kind-unit-c.lock"

"""The namespace reset's order: a terminating namespace admits no new pod, so it goes first."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from harness.k8s import namespace


class Core:
    """Records the calls; a pod deleted while its namespace is not terminating comes back (its
    ReplicaSet), and such a pod then keeps its full grace period."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.terminating = False
        self.recreated_with_grace = 0

    def delete_collection_namespaced_pod(self, name: str, **options: Any) -> None:
        self.calls.append(f"pods grace={options.get('grace_period_seconds')}")
        if not self.terminating:
            self.recreated_with_grace += 2

    def delete_namespace(self, name: str) -> None:
        self.calls.append("namespace")
        self.terminating = True

    def delete_collection_namespaced_persistent_volume_claim(self, name: str, **options: Any) -> None:
        self.calls.append("claims")

    def list_namespaced_pod(self, **selectors: Any) -> None:
        """Only handed to watch_until (faked in the test that waits)."""

    def list_namespace(self, **selectors: Any) -> None:
        """Only handed to watch_until (faked in the test that waits)."""


def test_the_namespace_goes_before_its_pods_so_none_comes_back_with_its_grace_period() -> None:
    core = Core()
    namespace.delete(SimpleNamespace(core=core), "stageproof", wait=False, timeout=1)  # type: ignore[arg-type]
    assert core.calls == ["namespace", "pods grace=0"]
    assert core.recreated_with_grace == 0


def test_with_wait_the_claims_go_once_no_pod_holds_them_then_the_namespace_is_waited_for(
        monkeypatch: Any) -> None:
    """A claim deleted while its pod is still there keeps its pvc-protection finalizer, and the
    namespace controller comes back for it only seconds later: pods gone first, then the claims."""
    core = Core()
    monkeypatch.setattr(namespace, "watch_until", lambda *args, what, **kwargs: core.calls.append(f"wait: {what}"))
    namespace.delete(SimpleNamespace(core=core), "stageproof", wait=True, timeout=1)  # type: ignore[arg-type]
    assert core.calls == ["namespace", "pods grace=0", "wait: the pods of namespace stageproof to be deleted",
                          "claims", "wait: namespace stageproof to be deleted"]

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


def test_the_namespace_goes_before_its_pods_so_none_comes_back_with_its_grace_period() -> None:
    core = Core()
    namespace.delete(SimpleNamespace(core=core), "stageproof", wait=False, timeout=1)  # type: ignore[arg-type]
    assert core.calls == ["namespace", "pods grace=0"]
    assert core.recreated_with_grace == 0

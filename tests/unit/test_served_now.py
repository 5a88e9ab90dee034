"""The `deployment` a check gets names the release served now, not the one brought up: a contract
run after a rolling update, a rollback or a hotfix expects `${release}` to be what the pods serve
(on a Helm release the restart check once expected the bring-up release after the rolling update)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.deployment import Deployment
from harness.pytest_plugin.fixtures import served_now


@dataclass
class MovedWorkload:
    release: str


def test_a_workload_that_moved_on_gives_its_release() -> None:
    up = Deployment("k8s", "http://127.0.0.1:1", "abc123", "token")
    now = served_now(up, MovedWorkload("abc123-next"))  # type: ignore[arg-type]
    assert now.release == "abc123-next"
    assert (now.base_url, now.token, now.stage) == (up.base_url, up.token, up.stage)


def test_without_a_workload_the_bring_up_release_stays() -> None:
    up = Deployment("docker", "http://127.0.0.1:1", "abc123")
    assert served_now(up, None) is up
    assert served_now(up, MovedWorkload("abc123")) is up  # type: ignore[arg-type]

"""Which nodes `kind load` copies an image into: the app's and database's go to the workers (the
control plane runs no pods of theirs), the add-ons everywhere: their DaemonSet runs on the control
plane too, and loading them into the workers alone left its pod there in ErrImageNeverPull."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from harness.k8s import kind


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[list[str]]:
    monkeypatch.setenv("STAGEPROOF_CACHE", str(tmp_path))
    calls: list[list[str]] = []

    def fake_run(cmd: Sequence[str], **_: object) -> subprocess.CompletedProcess[str]:
        calls.append(list(cmd))
        listing = "c-worker c-worker2" if cmd[:2] == ["docker", "ps"] else ""
        return subprocess.CompletedProcess(list(cmd), 0, listing, "")

    monkeypatch.setattr(kind, "run", fake_run)
    return calls


def test_the_apps_images_go_to_the_workers(loads: list[list[str]]) -> None:
    kind.KindCluster("c", "img").load_images(["app:1"])
    assert loads[-1][:6] == ["kind", "load", "docker-image", "--name", "c", "--nodes"]
    assert loads[-1][6:] == ["c-worker,c-worker2", "app:1"]


def test_the_add_ons_go_to_every_node(loads: list[list[str]]) -> None:
    kind.KindCluster("c", "img").load_images(["engine:1"], everywhere=True)
    assert loads[-1] == ["kind", "load", "docker-image", "--name", "c", "engine:1"]

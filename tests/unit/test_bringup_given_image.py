"""`stages.k8s.app_image` (a build the team pushed, by digest) in registry mode is pulled by the nodes,
never delivered: the push left a local copy under the same digest, and delivering it pushed it again
under the registry's name twice (`127.0.0.1:5000/127.0.0.1:5000/...`, so the external run never came up)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest

from harness.k8s import bringup

GIVEN = "127.0.0.1:5000/stageproof/users@sha256:" + "a" * 64


def make(monkeypatch: pytest.MonkeyPatch, registry: str | None) -> tuple[bringup.Bringup, list[list[str]]]:
    inspected: list[list[str]] = []

    def fake_run(cmd: Sequence[str], **_: Any) -> subprocess.CompletedProcess[str]:
        inspected.append(list(cmd))
        return subprocess.CompletedProcess(list(cmd), 0, "[]", "")  # the image is local

    monkeypatch.setattr(bringup, "run", fake_run)
    images = SimpleNamespace(registry=registry, airgap="auto")
    provider = SimpleNamespace(spec=SimpleNamespace(app_image=GIVEN))
    return bringup.Bringup(SimpleNamespace(images=images), provider, run_id="r", release="1"), inspected  # type: ignore[arg-type]


def test_in_registry_mode_a_given_image_is_pulled_not_delivered(monkeypatch: pytest.MonkeyPatch) -> None:
    made, inspected = make(monkeypatch, "127.0.0.1:5000")
    assert made._images() == ([], GIVEN)
    assert not inspected


def test_without_a_registry_a_local_given_image_is_delivered(monkeypatch: pytest.MonkeyPatch) -> None:
    made, inspected = make(monkeypatch, None)
    assert made._images() == ([GIVEN], GIVEN)
    assert inspected == [["docker", "image", "inspect", GIVEN]]

"""`stages.k8s.app_image` (a build the team pushed, by digest) is pulled by the nodes of a cluster we did
not make, and in registry mode: never delivered. The push left a local copy under the same digest, and
delivering it pushed it again under the registry's name twice (`127.0.0.1:5000/127.0.0.1:5000/...`), or,
air-gapped (`STAGEPROOF_AIRGAP=1`, as CI runs), failed: the external run never came up."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest

from harness.k8s import bringup

GIVEN = "127.0.0.1:5000/stageproof/users@sha256:" + "a" * 64


def make(monkeypatch: pytest.MonkeyPatch, registry: str | None,
         ours: bool = True) -> tuple[bringup.Bringup, list[list[str]]]:
    inspected: list[list[str]] = []

    def fake_run(cmd: Sequence[str], **_: Any) -> subprocess.CompletedProcess[str]:
        inspected.append(list(cmd))
        return subprocess.CompletedProcess(list(cmd), 0, "[]", "")  # the image is local

    monkeypatch.setattr(bringup, "run", fake_run)
    images = SimpleNamespace(registry=registry, airgap="auto")
    provider = SimpleNamespace(spec=SimpleNamespace(app_image=GIVEN), info=lambda: SimpleNamespace(ours=ours))
    return bringup.Bringup(SimpleNamespace(images=images), provider, run_id="r", release="1"), inspected  # type: ignore[arg-type]


def test_in_registry_mode_a_given_image_is_pulled_not_delivered(monkeypatch: pytest.MonkeyPatch) -> None:
    made, inspected = make(monkeypatch, "127.0.0.1:5000")
    assert made._images() == ([], GIVEN)
    assert not inspected


def test_without_a_registry_a_local_given_image_is_delivered(monkeypatch: pytest.MonkeyPatch) -> None:
    made, inspected = make(monkeypatch, None)
    assert made._images() == ([GIVEN], GIVEN)
    assert inspected == [["docker", "image", "inspect", GIVEN]]


def test_on_a_cluster_we_did_not_make_a_given_image_is_pulled_even_air_gapped(monkeypatch: pytest.MonkeyPatch) -> None:
    made, inspected = make(monkeypatch, None, ours=False)  # STAGEPROOF_AIRGAP=1 turns registry mode off
    assert made._images() == ([], GIVEN)
    assert not inspected

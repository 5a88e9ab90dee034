"""The build lock CI's background prebuild and a k8s stage share: one build at a time, and a wait
that says what it waits for."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from harness.core.cache import build_lock


def test_a_second_build_waits_for_the_first_and_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STAGEPROOF_CACHE", str(tmp_path))
    said: list[str] = []
    inside = threading.Event()

    def second() -> None:
        with build_lock("kind-node", what="the kind node image", say=said.append):
            inside.set()

    with build_lock("kind-node", what="the kind node image", say=said.append):
        waiter = threading.Thread(target=second)
        waiter.start()
        assert not inside.wait(0.5), "the second build ran while the first held the lock"
        assert said == [f"waiting for another process's build of the kind node image "
                        f"(lock {tmp_path / 'kind-node' / '.build.lock'}) ..."]
    waiter.join(5)
    assert inside.is_set()
    assert said[1].startswith("the other build of the kind node image ended after ")


def test_an_uncontended_build_says_nothing_and_other_caches_do_not_wait(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STAGEPROOF_CACHE", str(tmp_path))
    said: list[str] = []
    with build_lock("addons", what="the add-ons", say=said.append), \
            build_lock("kind-node", what="the kind node image", say=said.append):
        pass
    assert said == []

"""Waiting retries only 'not yet', stops at its deadline and says what it waited for."""

from __future__ import annotations

import pytest

from harness.core.wait import NotYet, wait_until
from harness.errors import WaitTimeout


def test_returns_once_the_probe_succeeds() -> None:
    calls = iter([NotYet("a"), NotYet("b"), "ready"])

    def probe() -> str:
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    assert wait_until(probe, what="x", timeout=5, interval=0.01) == "ready"


def test_timeout_names_what_was_awaited_and_attaches_diagnostics() -> None:
    def never() -> None:
        raise NotYet("still starting")

    with pytest.raises(WaitTimeout, match=r"waiting for the db to wake up .*still starting") as info:
        wait_until(never, what="the db to wake up", timeout=0.3, interval=0.01, diagnostics=lambda: "db log")
    assert info.value.__notes__ == ["db log"]


def test_other_errors_are_not_retried() -> None:
    calls = []

    def broken() -> None:
        calls.append(1)
        raise KeyError("bug")

    with pytest.raises(KeyError):
        wait_until(broken, what="x", timeout=5)
    assert len(calls) == 1

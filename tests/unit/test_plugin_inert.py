"""Installing stageproof changes nothing for a pytest run that selects no stage."""

from __future__ import annotations

import signal
from types import SimpleNamespace
from typing import Any, cast

import pytest

from harness.pytest_plugin import _interrupt, _refuse_parallel_stages, arm_for_stages, pytest_unconfigure

pytest_plugins = ["pytester"]

PLAIN_TEST = """
import signal

def test_plugin_is_loaded(request):
    assert request.config.pluginmanager.hasplugin("stageproof") is {loaded}

def test_sigterm_keeps_its_default_handler():
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
"""


@pytest.mark.parametrize("loaded", [False, True], ids=["plain-pytest", "with-stageproof"])
def test_a_project_without_stages_runs_as_under_plain_pytest(pytester: pytest.Pytester, loaded: bool) -> None:
    pytester.makepyfile(test_plain=PLAIN_TEST.format(loaded=loaded))
    args = ["-p", "no:cacheprovider", *([] if loaded else ["-p", "no:stageproof"])]
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=2)


def _config(numprocesses: int, stages: list[str], base_url: str | None = None) -> pytest.Config:
    options = {"stage": stages, "base_url": base_url}
    fake = SimpleNamespace(option=SimpleNamespace(numprocesses=numprocesses), getoption=options.__getitem__)
    return cast(Any, fake)


def test_xdist_is_accepted_when_no_stage_is_selected() -> None:
    _refuse_parallel_stages(_config(numprocesses=4, stages=[]))


@pytest.mark.parametrize(("stages", "base_url"), [(["docker"], None), ([], "http://127.0.0.1:8000")],
                         ids=["stage", "base-url"])
def test_xdist_is_refused_once_a_stage_is_selected(stages: list[str], base_url: str | None) -> None:
    with pytest.raises(pytest.UsageError, match="without -n"):
        _refuse_parallel_stages(_config(numprocesses=4, stages=stages, base_url=base_url))
    _refuse_parallel_stages(_config(numprocesses=0, stages=stages, base_url=base_url))


def test_sigterm_is_armed_when_a_stage_comes_up_and_restored_at_the_end() -> None:
    before = signal.getsignal(signal.SIGTERM)
    config = cast(pytest.Config, SimpleNamespace(stash=pytest.Stash()))
    try:
        arm_for_stages(config)
        assert signal.getsignal(signal.SIGTERM) is _interrupt
        arm_for_stages(config)  # a second stage keeps the handler it would otherwise lose
        pytest_unconfigure(config)
        assert signal.getsignal(signal.SIGTERM) == before
    finally:
        signal.signal(signal.SIGTERM, before)

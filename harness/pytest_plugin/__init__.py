"""The pytest front door: `--stage`, `--keep`, `--base-url`, which checks apply, and the run summary.

Stage folders declare which stages they run with `stage = stage_fixture("local-sqlite", ...)` in
their conftest (harness/pytest_plugin/fixtures.py); the contract suite only asks for `deployment`.
Which checks apply is decided in two places, each once, and recorded as data in the ledger:
at collection, a stage the config declares not applicable and a setting a check `needs`; once its
stage is up, the controls a check `requires` (harness/stage.py: `Capabilities`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

from harness.checks.common import missing_settings
from harness.config import Settings
from harness.core.shield import arm, disarm, interrupt, mute_dead_output
from harness.errors import ConfigError
from harness.lifecycle import StageRunner
from harness.project import Project, load_project
from harness.pytest_plugin.pytest_docker import register_if_wanted
from harness.stage import Capabilities

ReportWrapper = Generator[None, pytest.TestReport, pytest.TestReport]
Reporter = Callable[..., None]
RUNNER_KEY = pytest.StashKey[StageRunner]()
PROJECT_KEY = pytest.StashKey[Project]()
SIGTERM_KEY = pytest.StashKey[Any]()  # the SIGTERM handler replaced by stageproof, restored at the end
NOT_APPLICABLE_KEY = pytest.StashKey[str]()  # on an item found not applicable once its stage was up
MARKERS = ("requires(*controls): a check that needs these stage controls (types of harness.stage)",
           "needs(*settings): a check that needs these dotted settings to be set",
           "contract: the shared contract suite, run verbatim against every stage",
           "stage_diff: the cross-stage diff, run right after the contract",
           "slow: needs containers or a cluster")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stageproof")
    group.addoption("--stage", action="append", default=[], metavar="NAME",
                    help="run only these stages (repeatable); default: every stage of the selected folders")
    group.addoption("--keep", action="store_true", help="leave the environments up after the run, for debugging")
    group.addoption("--base-url", metavar="URL", help="run the contract against an already running deployment")
    group.addoption("--release", metavar="ID", help="with --base-url: the release id /version must report")
    group.addoption("--stageproof-config", metavar="PATH", help="the app's config file (default stageproof.toml)")
    group.addoption("--stageproof-report", metavar="PATH", help="also write the run summary as JSON here")
    group.addoption("--stageproof-expected", metavar="PATH",
                    help="fail the run on any difference from this expected matrix (in CI: expected/<app>.toml)")
    group.addoption("--stageproof-diff-against", metavar="PATH",
                    help="also compare every stage's answers to this saved recording (<report>.recording.<stage>.json)")


def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    config.pluginmanager.import_plugin("harness.pytest_plugin.fixtures")
    _refuse_parallel_stages(config)
    register_if_wanted(config)
    if config.getoption("base_url") and config.getoption("keep"):
        raise pytest.UsageError("--keep has no effect with --base-url: stageproof did not start that deployment")


def _refuse_parallel_stages(config: pytest.Config) -> None:
    """Stages own real environments, so -n (pytest-xdist) is refused once a run selects one;
    a run that selects none behaves exactly as it would without stageproof installed."""
    selected = config.getoption("stage") or config.getoption("base_url")
    if selected and getattr(config.option, "numprocesses", None):
        raise pytest.UsageError("stageproof stages own real environments: run without -n (pytest-xdist)")


def arm_for_stages(config: pytest.Config) -> None:
    """Before the first stage comes up: refuse an xdist worker (each would start its own copy),
    and make SIGTERM (CI cancel, IDE stop) and SIGHUP (a closed terminal) unwind like Ctrl-C, and
    only the first of them, so fixtures tear stages down and a second signal cannot cut that short."""
    if hasattr(config, "workerinput"):
        pytest.fail("stageproof stages own real environments: run without -n (pytest-xdist)", pytrace=False)
    if SIGTERM_KEY in config.stash or threading.current_thread() is not threading.main_thread():
        return
    config.stash[SIGTERM_KEY] = arm(_interrupt)  # every handler replaced, restored in pytest_unconfigure


def _interrupt(signum: int, frame: object) -> None:
    interrupt(signum)


def project_of(config: pytest.Config) -> Project:
    """The config and its contract, loaded once on first use (the harness's unit tests need neither)."""
    if PROJECT_KEY not in config.stash:
        try:
            config.stash[PROJECT_KEY] = load_project(config.getoption("stageproof_config"))
        except ConfigError as err:
            raise pytest.UsageError(str(err)) from None
    return config.stash[PROJECT_KEY]


def settings_of(config: pytest.Config) -> Settings:
    return project_of(config).settings


def runner_of(config: pytest.Config) -> StageRunner:
    if RUNNER_KEY not in config.stash:
        config.stash[RUNNER_KEY] = StageRunner(settings_of(config), keep=config.getoption("keep"),
                                               release=config.getoption("release"))
    return config.stash[RUNNER_KEY]


@pytest.hookimpl(tryfirst=True)  # before any other plugin's unconfigure can fail on a dead terminal
def pytest_unconfigure(config: pytest.Config) -> None:
    """The last line of defence: whatever is still up (the fixtures' teardown was skipped by an
    error) comes down; then output to a terminal or pipe that is gone goes to /dev/null."""
    runner = config.stash.get(RUNNER_KEY, None)
    try:
        if runner is not None:
            runner.stop_all()
    finally:
        if SIGTERM_KEY in config.stash:
            disarm(config.stash[SIGTERM_KEY])
            del config.stash[SIGTERM_KEY]
        if runner is not None:
            mute_dead_output()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "contract_case" in metafunc.fixturenames:
        cases = project_of(metafunc.config).cases
        metafunc.parametrize("contract_case", cases, ids=[case.name for case in cases])


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the selected stages and the checks their config allows; contract cases go first, then the
    cross-stage diff (every stage's database then holds the same rows), then the other checks."""
    wanted = set(config.getoption("stage"))
    kept = [item for item in items if (not wanted or stage_of(item) in wanted | {None}) and _configured(item)]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept
    items.sort(key=lambda item: 0 if item.get_closest_marker("contract") else
               1 if item.get_closest_marker("stage_diff") else 2)


def _configured(item: pytest.Item) -> bool:
    """False (recorded as not applicable, with the reason) on a stage the config declares not
    applicable, or for a check that `needs` a setting the config leaves unset."""
    stage = stage_of(item)
    if stage is None:
        return True
    settings = settings_of(item.config)
    record = runner_of(item.config).ledger.record(stage)
    declared = settings.not_applicable(stage)
    if declared:
        record.stage_not_applicable = declared
        return False
    needed = item.get_closest_marker("needs")
    unset = missing_settings(settings, tuple(needed.args)) if needed else []
    if unset:
        record.not_applicable[test_name(item)] = f"the config sets no {', '.join(unset)}"
        return False
    return True


def not_applicable(item: pytest.Item, stage: str, capabilities: Capabilities) -> None:
    """Once the stage is up: a check whose required control is absent is recorded as not applicable
    (with the reason the stage gave) and skipped; the ledger counts it as such, not as a skip."""
    required = item.get_closest_marker("requires")
    reason = capabilities.missing(tuple(required.args), stage) if required else None
    if reason is not None:
        runner_of(item.config).ledger.record(stage).not_applicable[test_name(item)] = reason
        item.stash[NOT_APPLICABLE_KEY] = reason
        pytest.skip(f"not applicable: {reason}")


def stage_of(item: pytest.Item) -> str | None:
    """The stage a test runs against: its folder's parameter, else the one --stage given."""
    callspec = getattr(item, "callspec", None)
    if callspec and "stage" in callspec.params:
        return str(callspec.params["stage"])
    names = item.config.getoption("stage")
    return names[0] if len(names) == 1 and "stage" in getattr(item, "fixturenames", ()) else None


def test_name(item: pytest.Item) -> str:
    return str(getattr(item, "originalname", item.name))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> ReportWrapper:
    """Count each test's outcome once per stage: its call, or the setup/teardown that broke it;
    a check found not applicable is in the ledger as such already."""
    report: pytest.TestReport = yield
    stage = stage_of(item) or ("external" if item.config.getoption("base_url") else None)
    counted = report.when == "call" or (report.outcome == "failed") or (report.skipped and report.when == "setup")
    if stage is not None and counted and NOT_APPLICABLE_KEY not in item.stash:
        runner_of(item.config).ledger.outcome(stage, report.outcome, seconds=report.duration,
                                              contract=item.get_closest_marker("contract") is not None,
                                              test=test_name(item))
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The ledger learns its run and messages, and the run is held to its expected matrix
    (harness.report.finish), before the summary below prints and writes it."""
    from harness.report.finish import finish_session

    runner = session.config.stash.get(RUNNER_KEY, None)
    if runner is not None and runner.ledger.stages:
        settings = settings_of(session.config)
        finish_session(session, runner.ledger, run_id=runner.run_id, release=runner.release, app=settings.app.name,
                       root=settings.root, locate=lambda item: (stage_of(item), test_name(item)))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    runner = config.stash.get(RUNNER_KEY, None)
    if runner is None or not runner.ledger.stages:
        return
    terminalreporter.write_sep("=", "stageproof summary")
    terminalreporter.write_line(runner.ledger.table())
    target = config.getoption("stageproof_report")
    if target:
        from harness.report.html import write_reports

        html = write_reports(runner.ledger, Path(target))
        terminalreporter.write_line(f"stageproof report: {target} and {html}")

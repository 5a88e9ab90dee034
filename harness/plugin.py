"""The pytest front door: `--stage`, `--keep`, `--base-url`, fixtures and the run summary.

Stage folders declare which stages they run with `stage = stage_fixture("local-sqlite", ...)`
in their conftest; the contract suite only asks for `deployment`/`contract_client`.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.config import Settings, load_settings
from harness.contract.cases import Case, load_cases
from harness.contract.runner import ContractClient
from harness.errors import ConfigError, StageUnavailable
from harness.lifecycle import StageRunner, in_ci
from harness.report import Ledger
from harness.stage import Deployment, Stage, get_stage

ReportWrapper = Generator[None, pytest.TestReport, pytest.TestReport]
RUNNER_KEY = pytest.StashKey[StageRunner]()
SETTINGS_KEY = pytest.StashKey[Settings]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stageproof")
    group.addoption("--stage", action="append", default=[], metavar="NAME",
                    help="run only these stages (repeatable); default: every stage of the selected folders")
    group.addoption("--keep", action="store_true", help="leave the environments up after the run, for debugging")
    group.addoption("--base-url", metavar="URL", help="run the contract against an already running deployment")
    group.addoption("--release", metavar="ID", help="with --base-url: the release id /version must report")
    group.addoption("--stageproof-config", metavar="PATH", help="the app's config file (default stageproof.toml)")
    group.addoption("--stageproof-report", metavar="PATH", help="also write the run summary as JSON here")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requires(*capabilities): a check that needs these stage capabilities")
    config.addinivalue_line("markers", "contract: the shared contract suite, run verbatim against every stage")
    if getattr(config.option, "numprocesses", None):
        raise pytest.UsageError("stageproof stages own real environments: run without -n (pytest-xdist)")
    if config.getoption("base_url") and config.getoption("keep"):
        raise pytest.UsageError("--keep has no effect with --base-url: stageproof did not start that deployment")
    # SIGTERM (CI cancel, IDE stop) unwinds like Ctrl-C so fixtures tear their stage down.
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _settings(config: pytest.Config) -> Settings:
    """Loaded on first use, so the harness's own unit tests need no config file."""
    if SETTINGS_KEY not in config.stash:
        try:
            config.stash[SETTINGS_KEY] = load_settings(config.getoption("stageproof_config"))
        except ConfigError as err:
            raise pytest.UsageError(str(err)) from None
    return config.stash[SETTINGS_KEY]


def _runner(config: pytest.Config) -> StageRunner:
    if RUNNER_KEY not in config.stash:
        config.stash[RUNNER_KEY] = StageRunner(_settings(config), keep=config.getoption("keep"),
                                               release=config.getoption("release"))
    return config.stash[RUNNER_KEY]


def pytest_unconfigure(config: pytest.Config) -> None:
    runner = config.stash.get(RUNNER_KEY, None)
    if runner is not None:
        runner.stop_all()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "contract_case" in metafunc.fixturenames:
        settings = _settings(metafunc.config)
        cases = load_cases(settings.contract.cases)
        metafunc.parametrize("contract_case", cases, ids=[case.name for case in cases])


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the selected stages and the checks they can run; contract cases go first."""
    wanted = set(config.getoption("stage"))
    kept = [item for item in items if (not wanted or _stage_of(item) in wanted | {None}) and _applicable(item)]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept
    items.sort(key=lambda item: 0 if item.get_closest_marker("contract") else 1)


def _applicable(item: pytest.Item) -> bool:
    """A `requires(...)` check runs only on a stage with those capabilities; a note says so."""
    marker = item.get_closest_marker("requires")
    if marker is None:
        return True
    stage = _stage_of(item)
    missing = sorted(set(marker.args) - get_stage(stage).capabilities) if stage else list(marker.args)
    if missing and stage:
        _runner(item.config).ledger.record(stage).notes.append(
            f"not applicable: {getattr(item, 'originalname', item.name)} (the stage cannot {', '.join(missing)})")
    return not missing


def _stage_of(item: pytest.Item) -> str | None:
    """The stage a test runs against: its folder's parameter, else the one --stage given."""
    callspec = getattr(item, "callspec", None)
    if callspec and "stage" in callspec.params:
        return str(callspec.params["stage"])
    names = item.config.getoption("stage")
    return names[0] if len(names) == 1 and "stage" in getattr(item, "fixturenames", ()) else None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> ReportWrapper:
    """Count each test's outcome once per stage: its call, or the setup/teardown that broke it."""
    report: pytest.TestReport = yield
    stage = _stage_of(item) or ("external" if item.config.getoption("base_url") else None)
    counted = report.when == "call" or (report.outcome == "failed") or (report.skipped and report.when == "setup")
    if stage is not None and counted:
        _runner(item.config).ledger.outcome(stage, report.outcome, seconds=report.duration,
                                            contract=item.get_closest_marker("contract") is not None)
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    runner = config.stash.get(RUNNER_KEY, None)
    if runner is None or not runner.ledger.stages:
        return
    terminalreporter.write_sep("=", "stageproof summary")
    terminalreporter.write_line(runner.ledger.table())
    target = config.getoption("stageproof_report")
    if target:
        runner.ledger.write_json(Path(target))


# -- fixtures --------------------------------------------------------------------------------
def stage_fixture(*names: str) -> Callable[..., Any]:
    """A session fixture parametrized over `names`: the stage object, up and ready."""

    @pytest.fixture(scope="session", params=list(names), ids=list(names))
    def stage(request: pytest.FixtureRequest) -> Iterator[Stage | None]:
        yield from _stage_up(request.config, request.param)

    return stage


def _live_output(config: pytest.Config) -> contextlib.AbstractContextManager[None]:
    """Bringing a stage up can take minutes (image builds): show its progress lines as they come."""
    capture = config.pluginmanager.getplugin("capturemanager")
    return capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext()


def _stage_up(config: pytest.Config, name: str) -> Iterator[Stage | None]:
    """Bring `name` up for the session (nothing with --base-url); down afterwards unless --keep."""
    if config.getoption("base_url"):
        yield None
        return
    runner = _runner(config)
    try:
        with _live_output(config):
            live, _ = runner.start(name)
    except StageUnavailable as err:
        if in_ci():
            raise
        pytest.skip(f"stage {name} cannot run here: {err}")
    yield live
    runner.stop(name)


@pytest.fixture(scope="session")
def stageproof_settings(pytestconfig: pytest.Config) -> Settings:
    return _settings(pytestconfig)


@pytest.fixture(scope="session")
def stage_runner(pytestconfig: pytest.Config) -> StageRunner:
    return _runner(pytestconfig)


@pytest.fixture(scope="session")
def stage(pytestconfig: pytest.Config) -> Iterator[Stage | None]:
    """Outside a stage folder (`pytest --pyargs harness.contract.suite --stage docker`, a team's
    own repo): the one stage named by --stage, or none with --base-url."""
    names = pytestconfig.getoption("stage")
    if pytestconfig.getoption("base_url") or not names:
        yield None
        return
    if len(names) > 1:
        raise pytest.UsageError("outside a stage folder, name one --stage per run")
    yield from _stage_up(pytestconfig, names[0])


@pytest.fixture
def deployment(stage: Stage | None, pytestconfig: pytest.Config, stageproof_settings: Settings) -> Deployment:
    base_url = pytestconfig.getoption("base_url")
    if base_url:
        runner = _runner(pytestconfig)
        return Deployment("external", base_url.rstrip("/"), runner.release, stageproof_settings.app.token)
    if stage is None:
        pytest.fail("no stage selected: pass --stage NAME or --base-url URL, or run a tests/<stage> folder",
                    pytrace=False)
    assert stage.deployment is not None
    return stage.deployment


@pytest.fixture(scope="session")
def contract_cases(stageproof_settings: Settings) -> list[Case]:
    return load_cases(stageproof_settings.contract.cases)


@pytest.fixture
def contract_client(deployment: Deployment) -> ContractClient:
    return ContractClient(deployment)


@pytest.fixture
def ledger(stage_runner: StageRunner) -> Ledger:
    return stage_runner.ledger


"""The pytest front door: `--stage`, `--keep`, `--base-url`, fixtures and the run summary.

Stage folders declare which stages they run with `stage = stage_fixture("local-sqlite", ...)`
in their conftest; the contract suite only asks for `deployment`/`contract_client`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.checks.common import missing_settings
from harness.config import Settings, load_settings
from harness.contract.cases import Case, load_cases
from harness.contract.diff import stage_unique
from harness.contract.runner import ContractClient
from harness.core.shield import arm, disarm, interrupt, mute_dead_output
from harness.errors import ConfigError, StageUnavailable
from harness.lifecycle import StageRunner, in_ci
from harness.pytest_plugin.pytest_docker import register_if_wanted
from harness.report.ledger import Ledger
from harness.stage import Deployment, Stage, get_stage

ReportWrapper = Generator[None, pytest.TestReport, pytest.TestReport]
Reporter = Callable[..., None]
RUNNER_KEY = pytest.StashKey[StageRunner]()
SETTINGS_KEY = pytest.StashKey[Settings]()
SIGTERM_KEY = pytest.StashKey[Any]()  # the SIGTERM handler replaced by stageproof, restored at the end


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stageproof")
    group.addoption("--stage", action="append", default=[], metavar="NAME",
                    help="run only these stages (repeatable); default: every stage of the selected folders")
    group.addoption("--keep", action="store_true", help="leave the environments up after the run, for debugging")
    group.addoption("--base-url", metavar="URL", help="run the contract against an already running deployment")
    group.addoption("--release", metavar="ID", help="with --base-url: the release id /version must report")
    group.addoption("--stageproof-config", metavar="PATH", help="the app's config file (default stageproof.toml)")
    group.addoption("--stageproof-report", metavar="PATH", help="also write the run summary as JSON here")
    group.addoption("--stageproof-diff-against", metavar="PATH",
                    help="also compare every stage's answers to this saved recording (<report>.recording.<stage>.json)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requires(*capabilities): a check that needs these stage capabilities")
    config.addinivalue_line("markers", "needs(*settings): a check that needs these dotted settings to be set")
    config.addinivalue_line("markers", "contract: the shared contract suite, run verbatim against every stage")
    config.addinivalue_line("markers", "stage_diff: the cross-stage diff, run right after the contract")
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


def _arm_for_stages(config: pytest.Config) -> None:
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
        settings = _settings(metafunc.config)
        cases = load_cases(settings.contract.cases)
        metafunc.parametrize("contract_case", cases, ids=[case.name for case in cases])


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the selected stages and the checks they can run; contract cases go first, then the
    cross-stage diff (every stage's database then holds the same rows), then the other checks."""
    wanted = set(config.getoption("stage"))
    kept = [item for item in items if (not wanted or _stage_of(item) in wanted | {None}) and _applicable(item)]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept
    items.sort(key=lambda item: 0 if item.get_closest_marker("contract") else
               1 if item.get_closest_marker("stage_diff") else 2)


def _applicable(item: pytest.Item) -> bool:
    """A check runs only where it applies: on a stage the config does not declare not applicable,
    with the capabilities it `requires` and the settings it `needs`; the summary says why not."""
    stage = _stage_of(item)
    if stage is None:
        return item.get_closest_marker("requires") is None
    settings = _settings(item.config)
    declared = settings.not_applicable(stage)
    reason = f"the stage: {declared}" if declared else _why_not(item, stage, settings)
    if reason is None:
        return True
    notes = _runner(item.config).ledger.record(stage).notes
    note = f"not applicable: {reason}" if declared else \
        f"not applicable: {getattr(item, 'originalname', item.name)} ({reason})"
    if note not in notes:
        notes.append(note)
    return False


def _why_not(item: pytest.Item, stage: str, settings: Settings) -> str | None:
    required = item.get_closest_marker("requires")
    driver = get_stage(stage)
    missing = sorted(set(required.args) - driver.capabilities) if required else []
    if missing:
        return f"the stage cannot {', '.join(missing)}"
    withheld = driver.withheld(settings)
    if required and (held := sorted({withheld[name] for name in required.args if name in withheld})):
        return "; ".join(held)
    needed = item.get_closest_marker("needs")
    unset = missing_settings(settings, tuple(needed.args)) if needed else []
    return f"the config sets no {', '.join(unset)}" if unset else None


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
                                            contract=item.get_closest_marker("contract") is not None,
                                            test=getattr(item, "originalname", item.name))
    return report


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
    _arm_for_stages(config)
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
def contract_client(deployment: Deployment, stage_runner: StageRunner,
                    request: pytest.FixtureRequest) -> ContractClient:
    """The contract pass uses one `${unique}` per stage, so every stage's database holds the same rows
    when the diff runs; other checks get a fresh one (their writes must not collide with the contract's)."""
    contract = request.node.get_closest_marker("contract") is not None
    return ContractClient(deployment, unique=stage_unique(stage_runner.run_id, deployment.stage) if contract else None)


@pytest.fixture
def ledger(stage_runner: StageRunner) -> Ledger:
    return stage_runner.ledger


@pytest.fixture
def report(stage: Stage | None, stage_runner: StageRunner, request: pytest.FixtureRequest) -> Reporter:
    """Print a check's measured figures and keep them in the run summary of its stage: the text
    as a note, `figures` (a dict, e.g. `DisruptionResult.figures()`) as structured data."""

    def note(text: str, figures: dict[str, Any] | None = None) -> None:
        name = stage.name if stage is not None else "external"
        print(f"[stageproof] {name}: {text}", flush=True)
        record = stage_runner.ledger.record(name)
        record.notes.append(text)
        if figures is not None:
            record.figures.append({"check": getattr(request.node, "originalname", request.node.name), **figures})

    return note


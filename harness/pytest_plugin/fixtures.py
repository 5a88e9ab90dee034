"""The plugin's fixtures: stages up for the session, the deployment, the controls checks require,
the contract client, and `report` for a check's figures.

A bring-up failure is reported once, in one line (its cause) and then the diagnostics, by the first
test that needed the stage; every later test of that stage fails with the one line only.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness.checks.common import Reporter
from harness.config import Settings
from harness.contract.cases import Case
from harness.contract.diff import stage_unique
from harness.contract.runner import ContractClient
from harness.core.shield import say
from harness.errors import StageUnavailable
from harness.lifecycle import StageRunner, describe_failure, in_ci
from harness.pytest_plugin import arm_for_stages, not_applicable, project_of, runner_of, settings_of, stage_of
from harness.report.ledger import Ledger
from harness.stage import (
    AppContainer,
    AppControl,
    AppCrash,
    ChartTests,
    DatabaseControl,
    Deployment,
    Ingress,
    NewBuilds,
    NodeChaos,
    Stage,
    Workload,
)

FAILED_KEY = pytest.StashKey[dict[str, str]]()  # stage -> the one-line cause of its failed bring-up


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
    runner = runner_of(config)
    arm_for_stages(config)
    try:
        with _live_output(config):
            live, _ = runner.start(name)
    except StageUnavailable as err:
        if in_ci():
            raise
        pytest.skip(f"stage {name} cannot run here: {err}")
    except Exception as err:
        cause = describe_failure(err)
        config.stash.setdefault(FAILED_KEY, {})[name] = cause
        with _live_output(config):
            say("\n".join([f"[stageproof] {name}: bring-up FAILED: {cause}", str(err),
                            *getattr(err, "__notes__", []), f"[stageproof] {name}: bring-up FAILED: {cause}"]))
        yield None  # each test of the stage fails with the one line (deployment), not the dump again
        return
    yield live
    runner.stop(name)


def failed_bringup(config: pytest.Config, name: str | None) -> None:
    """Fail the current test in one line if its stage did not come up (the cause was shown once)."""
    cause = config.stash.get(FAILED_KEY, {}).get(name or "")
    if cause is not None:
        pytest.fail(f"stage {name} did not come up: {cause}", pytrace=False)


@pytest.fixture(scope="session")
def stageproof_settings(pytestconfig: pytest.Config) -> Settings:
    return settings_of(pytestconfig)


@pytest.fixture(scope="session")
def stage_runner(pytestconfig: pytest.Config) -> StageRunner:
    return runner_of(pytestconfig)


@pytest.fixture(scope="session")
def stage(pytestconfig: pytest.Config) -> Iterator[Stage | None]:
    """Outside a stage folder (`stageproof test`, `pytest --pyargs harness.checks.suite --stage docker`,
    a team's own repo): the one stage named by --stage, or none with --base-url."""
    names = pytestconfig.getoption("stage")
    if pytestconfig.getoption("base_url") or not names:
        yield None
        return
    if len(names) > 1:
        raise pytest.UsageError("outside a stage folder, name one --stage per run")
    yield from _stage_up(pytestconfig, names[0])


@pytest.fixture
def deployment(stage: Stage | None, pytestconfig: pytest.Config, stageproof_settings: Settings,
               stage_runner: StageRunner, request: pytest.FixtureRequest) -> Deployment:
    base_url = pytestconfig.getoption("base_url")
    if base_url:
        return Deployment("external", base_url.rstrip("/"), stage_runner.release, stageproof_settings.app.token)
    if stage is None:
        failed_bringup(pytestconfig, stage_of(request.node))
        pytest.fail("no stage selected: pass --stage NAME or --base-url URL, or run a tests/<stage> folder",
                    pytrace=False)
    return served_now(stage_runner.deployment(stage.name), stage_runner.capabilities(stage.name).workload)


def served_now(deployment: Deployment, workload: Workload | None) -> Deployment:
    """The deployment with the release its workload serves now: checks move releases (a rolling
    update, a rollback, a hotfix), and a later check's `${release}` is the one served, not the first."""
    if workload is None or workload.release == deployment.release:
        return deployment
    return dataclasses.replace(deployment, release=workload.release)


@pytest.fixture(autouse=True)
def _stageproof_applicable(request: pytest.FixtureRequest) -> None:
    """A check that `requires` controls runs only where its stage has them (else: not applicable)."""
    if request.node.get_closest_marker("requires") is None:
        return
    if request.config.getoption("base_url"):
        pytest.skip("not applicable: a deployment at --base-url offers no stage controls")
    live: Stage | None = request.getfixturevalue("stage")
    if live is None:
        failed_bringup(request.config, stage_of(request.node))
        pytest.skip("not applicable: no stage is up")
    not_applicable(request.node, live.name, runner_of(request.config).capabilities(live.name))


def _control(request: pytest.FixtureRequest, kind: type) -> Any:
    """The control of type `kind` of the test's stage; the test must have declared it. (Each control
    fixture takes `stage`, so a stage folder's parametrized `stage` reaches every check using one.)"""
    required = request.node.get_closest_marker("requires")
    if required is None or kind not in required.args:
        pytest.fail(f"{request.node.name} uses the {kind.__name__} control without @requires({kind.__name__})",
                    pytrace=False)
    name = stage_of(request.node) or request.getfixturevalue("stage").name
    from harness.stage import CONTROLS

    return getattr(runner_of(request.config).capabilities(name), CONTROLS[kind])


@pytest.fixture
def app_control(request: pytest.FixtureRequest, stage: Stage | None) -> AppControl:
    return _control(request, AppControl)  # type: ignore[no-any-return]


@pytest.fixture
def app_container(request: pytest.FixtureRequest, stage: Stage | None) -> AppContainer:
    return _control(request, AppContainer)  # type: ignore[no-any-return]


@pytest.fixture
def app_crash(request: pytest.FixtureRequest, stage: Stage | None) -> AppCrash:
    return _control(request, AppCrash)  # type: ignore[no-any-return]


@pytest.fixture
def database(request: pytest.FixtureRequest, stage: Stage | None) -> DatabaseControl:
    return _control(request, DatabaseControl)  # type: ignore[no-any-return]


@pytest.fixture
def workload(request: pytest.FixtureRequest, stage: Stage | None) -> Workload:
    return _control(request, Workload)  # type: ignore[no-any-return]


@pytest.fixture
def builds(request: pytest.FixtureRequest, stage: Stage | None) -> NewBuilds:
    return _control(request, NewBuilds)  # type: ignore[no-any-return]


@pytest.fixture
def chart(request: pytest.FixtureRequest, stage: Stage | None) -> ChartTests:
    return _control(request, ChartTests)  # type: ignore[no-any-return]


@pytest.fixture
def nodes(request: pytest.FixtureRequest, stage: Stage | None) -> NodeChaos:
    return _control(request, NodeChaos)  # type: ignore[no-any-return]


@pytest.fixture
def ingress(request: pytest.FixtureRequest, stage: Stage | None) -> Ingress:
    return _control(request, Ingress)  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def contract_cases(pytestconfig: pytest.Config) -> list[Case]:
    return list(project_of(pytestconfig).cases)


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
def report(deployment: Deployment, stage_runner: StageRunner, request: pytest.FixtureRequest) -> Reporter:
    """Print a check's measured figures and keep them in the run summary of its stage: the text
    as a note, `figures` (a dict, e.g. `DisruptionResult.figures()`) as structured data."""

    def note(text: str, figures: dict[str, Any] | None = None) -> None:
        print(f"[stageproof] {deployment.stage}: {text}", flush=True)
        record = stage_runner.ledger.record(deployment.stage)
        record.notes.append(text)
        if figures is not None:
            record.figures.append({"check": getattr(request.node, "originalname", request.node.name), **figures})

    return note

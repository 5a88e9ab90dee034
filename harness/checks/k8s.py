"""What Kubernetes promises beyond the contract, for any app: each disruption measured under the
configured load (`[checks] load`) sent through the NodePort Service, never a port-forward, every
failed request counted and none retried. Per-pod reads (identical bodies, the release each
replica serves) go to one pod at a time through the API server.

A stage folder imports the checks (`from harness.checks.k8s import *`), or a team's repo runs
`pytest --pyargs harness.checks.suite --stage k8s`. Each check receives the workload view (and the
other controls it `requires`), never the driver; a check marked `needs(...)` runs only when the
config sets those keys; every check leaves the stage as it found it (replicas, a settled rollout)
however it ends.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from harness.checks.common import Reporter, load_url, needs, persistence_case, read_back, requires, under_load, write
from harness.checks.recovery import rerun_contract
from harness.config import Settings
from harness.contract.cases import Case
from harness.contract.runner import ContractClient
from harness.core.wait import NotYet, app_ready, wait_until
from harness.k8s.views import Answer
from harness.load import DisruptionResult
from harness.stage import ChartTests, Deployment, Ingress, Workload

__all__ = [  # noqa: RUF022  (in the order they run: each leaves the stage as the next one expects it)
    "test_contract_holds_through_the_ingress",
    "test_pod_kill_loses_no_request_and_a_replacement_becomes_ready",
    "test_scaling_2_5_1_every_replica_identical_and_no_failure_on_scale_down",
    "test_rolling_update_serves_the_new_release_everywhere_without_failure",
    "test_rollback_returns_the_previous_release_without_failure",
    "test_database_pod_kill_keeps_data_and_the_app_recovers_unrestarted",
    "test_the_charts_own_helm_tests_pass",
    "test_seed_job_run_again_changes_nothing",
]

pytestmark = pytest.mark.slow
SCALE_UP = 5
SCALE_DOWN = 1


# -- helpers -----------------------------------------------------------------------------------
@contextmanager
def restoring(what: str, action: Callable[[], object], *, only_on_failure: bool = False) -> Iterator[None]:
    """Run `action` when the block ends (or only when it fails); when the block failed, an error
    of `action` becomes a note on the block's error instead of hiding it."""
    try:
        yield
    except BaseException as err:
        try:
            action()
        except Exception as restore_err:
            err.add_note(f"[stageproof] restoring {what} failed too: {restore_err}")
        raise
    if not only_on_failure:
        action()


def assert_no_failure(result: DisruptionResult, report: Reporter) -> None:
    """The zero-failure verdict (harness/load/verdicts.py), its bounds and figures in the report line."""
    verdict = result.zero_failures()
    report(verdict.summary(), {**result.figures(), "verdict": verdict.as_dict()})
    problems = [*verdict.problems, *([] if result.covered else ["the load stopped before recovery was confirmed"])]
    assert not problems, f"{result.what}: " + "; ".join(problems)


def per_pod(workload: Workload, path: str) -> dict[str, Answer]:
    """{pod: answer} of GET `path` on every Ready web pod, one pod at a time."""
    return {replica.name: workload.get(replica.name, path) for replica in workload.replicas()}


def first_difference(answers: dict[str, Answer]) -> str:
    """Where the bodies part: the first differing line of each pod against the first pod's."""
    (first_pod, first), *others = answers.items()
    lines = []
    for pod, answer in others:
        for number, (a, b) in enumerate(zip(first.body.splitlines(), answer.body.splitlines(), strict=False), 1):
            if a != b:
                lines.append(f"  line {number}: {first_pod}: {a[:160]!r} / {pod}: {b[:160]!r}")
                break
        else:
            if first.body != answer.body:
                lines.append(f"  {first_pod}: {len(first.body)} bytes / {pod}: {len(answer.body)} bytes")
    return "\n".join(lines)


def releases_served(workload: Workload, settings: Settings) -> dict[str, str]:
    """{pod: release} of every Ready web pod: what its `app.version_path` reports, else (an app
    without one) the release annotation its pod template carries."""
    app = settings.app
    if app.version_path is None:
        return {replica.name: replica.release or "(none)" for replica in workload.replicas()}
    answers = per_pod(workload, app.version_path)
    return {pod: _release_field(answer, app.release_field) for pod, answer in answers.items()}


def _release_field(answer: Answer, field: str) -> str:
    if answer.status != 200:
        return f"HTTP {answer.status}"
    try:
        return str(json.loads(answer.body).get(field, f"(no {field!r})"))
    except (ValueError, AttributeError):
        return f"(not JSON: {answer.body[:60]!r})"


def contract_problems(deployment: Deployment, cases: list[Case]) -> list[str]:
    return rerun_contract(ContractClient(deployment), cases)


def outage_reported(workload: Workload, pod: str, path: str, killed: str) -> Callable[[], Answer | None]:
    """A probe: the app's own readiness path on `pod` answers 503 (not a proxy error); None when
    the killed database pod (uid `killed`) is already replaced and Ready without a probe having
    seen the 503 (an outage shorter than one probe's round trip through the API server)."""

    def probe() -> Answer | None:
        answer = workload.get(pod, path)
        if answer.status == 503:
            return answer
        if database_replaced(workload, killed):
            return None
        raise NotYet(f"{path} on {pod} answered {answer.status}")

    return probe


def database_replaced(workload: Workload, killed: str) -> bool:
    """The database pod `killed` is gone and every database pod is Ready (none of them it)."""
    found = workload.database_replicas(ready_only=False)
    return bool(found) and all(replica.ready and replica.uid != killed for replica in found)


# -- the checks --------------------------------------------------------------------------------
@requires(Ingress)
def test_contract_holds_through_the_ingress(ingress: Ingress, deployment: Deployment, stageproof_settings: Settings,
                                            report: Reporter, contract_cases: list[Case]) -> None:
    """The app as production serves it: through the cluster's ingress controller (other
    namespaces' traffic: the team's NetworkPolicies must let it in), every contract case that
    does not need a fresh database, and the load request."""
    through = dataclasses.replace(deployment, base_url=ingress.url)
    problems = rerun_contract(ContractClient(through), contract_cases)
    assert not problems, f"through the Ingress ({through.base_url}):\n  " + "\n  ".join(problems)
    load = stageproof_settings.checks.load
    answer = requests.request(load.method, load_url(stageproof_settings, through), timeout=10)
    assert answer.status_code == load.status, f"{load.method} {load.path} through the Ingress: {answer.status_code}"
    ran = sum(not case.fresh_only for case in contract_cases)
    report(f"ingress {through.base_url}: {ran} contract case(s) passed, {load.method} {load.path} answered "
           f"{answer.status_code} ({len(answer.content)} bytes)")


@requires(Workload)
def test_pod_kill_loses_no_request_and_a_replacement_becomes_ready(workload: Workload, deployment: Deployment,
                                                                   stageproof_settings: Settings, report: Reporter,
                                                                   contract_cases: list[Case]) -> None:
    replicas = len(workload.replicas())
    killed: list[str] = []
    with restoring("the web replicas", workload.settled, only_on_failure=True):
        result = under_load(stageproof_settings, deployment, "pod kill", lambda: killed.append(workload.kill()),
                            workload.settled)
    assert_no_failure(result, report)
    names = [replica.name for replica in workload.replicas()]
    assert len(names) == replicas and killed[-1] not in names, f"after killing {killed[-1]}: {names}"
    assert not (problems := contract_problems(deployment, contract_cases)), "\n".join(problems)


@requires(Workload)
def test_scaling_2_5_1_every_replica_identical_and_no_failure_on_scale_down(workload: Workload,
                                                                            deployment: Deployment,
                                                                            stageproof_settings: Settings,
                                                                            report: Reporter) -> None:
    settings = stageproof_settings
    path = settings.checks.load.path
    start = len(workload.replicas())
    with restoring(f"{start} replicas", lambda: workload.scale(start)):
        up = under_load(settings, deployment, f"scale {start}->{SCALE_UP}", lambda: workload.scale(SCALE_UP))
        answers = per_pod(workload, path)
        down = under_load(settings, deployment, f"scale {SCALE_UP}->{SCALE_DOWN}", lambda: workload.scale(SCALE_DOWN))
    assert_no_failure(up, report)
    assert len(answers) == SCALE_UP, f"{len(answers)} Ready replicas after scaling to {SCALE_UP}"
    statuses = {pod: answer.status for pod, answer in answers.items()}
    assert set(statuses.values()) == {settings.checks.load.status}, f"GET {path} per pod: {statuses}"
    bodies = {answer.body for answer in answers.values()}
    assert len(bodies) == 1, f"GET {path} differs between replicas:\n" + first_difference(answers)
    report(f"scale to {SCALE_UP}: all {len(answers)} replicas answered the identical {path} "
           f"({len(bodies.pop())} bytes)")
    assert_no_failure(down, report)


@requires(Workload)
def test_rolling_update_serves_the_new_release_everywhere_without_failure(workload: Workload, deployment: Deployment,
                                                                          stageproof_settings: Settings,
                                                                          report: Reporter,
                                                                          contract_cases: list[Case]) -> None:
    new = f"{workload.release}-next"
    with restoring("the previous release", workload.roll_back, only_on_failure=True):
        result = under_load(stageproof_settings, deployment, f"rolling update to {new}",
                            lambda: workload.roll_out(new))
    assert_no_failure(result, report)
    served = releases_served(workload, stageproof_settings)
    assert set(served.values()) == {new}, f"release per pod after the rollout: {served}"
    report(f"rolling update: all {len(served)} pods serve {new}")
    rolled = dataclasses.replace(deployment, release=new)  # ${release} in the contract is the new one now
    assert not (problems := contract_problems(rolled, contract_cases)), "\n".join(problems)


@requires(Workload)
def test_rollback_returns_the_previous_release_without_failure(workload: Workload, deployment: Deployment,
                                                               stageproof_settings: Settings,
                                                               report: Reporter) -> None:
    if len(workload.releases) < 2:  # run alone: make a release to roll back from
        workload.roll_out(f"{workload.release}-next")
    previous = workload.releases[-2]
    with restoring("a settled rollout", workload.settled, only_on_failure=True):
        result = under_load(stageproof_settings, deployment, f"rollback to {previous}", workload.roll_back)
    assert_no_failure(result, report)
    served = releases_served(workload, stageproof_settings)
    assert set(served.values()) == {previous}, f"release per pod after the rollback: {served}"
    report(f"rollback ({workload.revision()}): all {len(served)} pods serve {previous} again")


@requires(Workload)
@needs("checks.persistence")
def test_database_pod_kill_keeps_data_and_the_app_recovers_unrestarted(workload: Workload, deployment: Deployment,
                                                                       stageproof_settings: Settings,
                                                                       report: Reporter,
                                                                       contract_cases: list[Case]) -> None:
    settings = stageproof_settings
    client = ContractClient(deployment)
    case = persistence_case(settings, contract_cases)
    written = write(client, case)
    before = workload.identity()
    watched = workload.replicas()[0].name
    seen: dict[str, Any] = {}
    ready_path, patience = settings.app.ready_path, settings.checks.database_recovery_seconds

    def kill() -> None:
        seen["uid"] = workload.kill_database()
        if ready_path:
            seen["outage"] = wait_until(outage_reported(workload, watched, ready_path, seen["uid"]), timeout=patience,
                                        what=f"{ready_path} of {watched} to report the outage (503)",
                                        interval=0.1, max_interval=0.25)

    def recovered() -> None:
        workload.wait_database_back(seen["uid"])
        workload.settled()
        what, probe = app_ready(settings, deployment.base_url)
        wait_until(probe, what=f"{what} once the database is back", timeout=patience)

    def back_if_killed() -> None:
        if "uid" in seen:
            recovered()

    with restoring("the database", back_if_killed, only_on_failure=True):
        result = under_load(settings, deployment, "database pod kill", kill, recovered)
    saw = None if not ready_path else seen.get("outage") is not None
    verdict = result.database_outage(saw, max_recovery_seconds=patience)
    report(verdict.summary(), {**result.figures(), "verdict": verdict.as_dict()})
    if seen.get("outage") is not None:
        report(f"database pod kill: {ready_path} on {watched} said "
               f"{seen['outage'].status} {seen['outage'].body.strip()[:100]}")
    problems = read_back(client, case, written)
    assert not problems, "\n".join(problems)
    assert workload.identity() == before, "the app pods were restarted or replaced during the database outage"
    assert result.covered, "the load ended before the app recovered"
    assert verdict.passed, "database pod kill: " + "; ".join(verdict.problems)


@requires(ChartTests)
def test_the_charts_own_helm_tests_pass(chart: ChartTests, report: Reporter) -> None:
    """The chart's `helm test` hooks, as the team runs them after an install."""
    passed, said = chart.run_tests()
    report(f"helm test: {said}")
    assert passed, f"the chart's own tests failed: {said}"


@requires(Workload)
@needs("stages.k8s.seed_job")
def test_seed_job_run_again_changes_nothing(workload: Workload, deployment: Deployment,
                                            stageproof_settings: Settings, report: Reporter) -> None:
    load = stageproof_settings.checks.load
    url = load_url(stageproof_settings, deployment)
    before = requests.request(load.method, url, timeout=10)
    job, log = workload.rerun_seed()
    with restoring(f"job {job}", lambda: workload.delete_job(job)):
        after = requests.request(load.method, url, timeout=10)
    report(f"seed job re-run ({job}): {log.strip()[-120:]!r}; {load.method} {load.path} body unchanged: "
           f"{before.content == after.content} ({len(after.content)} bytes)")
    assert before.status_code == after.status_code == load.status, (before.status_code, after.status_code)
    assert after.content == before.content, f"running the seed job again changed {load.path}"

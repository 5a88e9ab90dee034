"""Checks that a deployment survives what the talk says it must: restarts and database outages.

Written once like the contract; every stage folder (and `stageproof test` for a team's app)
imports them. Each check is marked with the stage controls it needs (`requires`, by type) and the
settings it needs (`needs`); the plugin reports it "not applicable" where either is missing.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import requests

from harness.checks.common import Report, answers, load_fails, needs, persistence_case, read_back, requires, write
from harness.config import Settings
from harness.contract.cases import Case
from harness.contract.runner import ContractClient
from harness.core.wait import app_ready, wait_until
from harness.stage import AppControl, DatabaseControl, Deployment

OUTAGE_TIMEOUT = 60.0


def rerun_contract(client: ContractClient, cases: list[Case]) -> list[str]:
    """Every case that does not need a fresh database, again; returns the problems."""
    problems: list[str] = []
    for case in cases:
        if not case.fresh_only:
            result = client.run_case(case)
            problems += [f"{case.name}: {problem}" for problem in result.problems]
    return problems


@requires(AppControl)
def test_contract_holds_after_app_restart(app_control: AppControl, deployment: Deployment,
                                          contract_cases: list[Case]) -> None:
    app_control.restart()
    problems = rerun_contract(ContractClient(deployment), contract_cases)
    assert not problems, "after restarting the app:\n  " + "\n  ".join(problems)


@requires(AppControl, DatabaseControl)
@needs("app.ready_path")
def test_database_outage_is_reported_by_readiness(app_control: AppControl, database: DatabaseControl,
                                                  deployment: Deployment, stageproof_settings: Settings,
                                                  report: Report) -> None:
    """Readiness says 503 while the database is away (liveness stays 200), and 200 after.

    Asked from the moment the stop begins, while the stop itself is still waited for: behind a
    Service, a pod whose readiness fails leaves the endpoints once its probes have failed (the
    notes chart: twice, 5 s apart), and from then on nothing answers at all. A stop that outlasts
    that window left only connection resets to see (CI, notes on k8s, once)."""
    app = stageproof_settings.app
    ready = f"{deployment.base_url}{app.ready_path}"
    before = app_control.identity()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="database-stop") as pool:
        down_at = time.monotonic()
        stopping = pool.submit(database.stop)
        try:
            wait_until(answers(ready, 503), what=f"{app.ready_path} to report the database outage (503)",
                       timeout=OUTAGE_TIMEOUT, max_interval=0.5)
            reported = time.monotonic() - down_at
            if app.health_path:
                live = requests.get(f"{deployment.base_url}{app.health_path}", timeout=5).status_code
                assert live == 200, (f"{app.health_path} answered {live} in the outage: liveness must not need "
                                     "the database")
        finally:
            try:
                stopping.result()  # a stop that failed is reported (after the start below)
            finally:
                database.start()
    wait_until(answers(ready, 200), what=f"{app.ready_path} to recover (200)", timeout=OUTAGE_TIMEOUT)
    assert app_control.identity() == before, "the app was restarted during the database outage"
    report(f"database outage: {app.ready_path} answered 503 {reported:.1f}s after the stop began, 200 again "
           f"{time.monotonic() - down_at:.1f}s after it; app not restarted ({before})")


@requires(AppControl, DatabaseControl)
@needs("checks.persistence")
def test_data_written_before_a_database_outage_reads_back_after(app_control: AppControl, database: DatabaseControl,
                                                                deployment: Deployment,
                                                                stageproof_settings: Settings,
                                                                contract_cases: list[Case], report: Report) -> None:
    """Users see the outage (the load request fails), the app recovers by itself, and what was
    written before is still there."""
    client = ContractClient(deployment)
    case = persistence_case(stageproof_settings, contract_cases)
    written = write(client, case)
    before = app_control.identity()
    database.stop()
    try:
        down_at = time.monotonic()
        seen = wait_until(load_fails(stageproof_settings, deployment), timeout=OUTAGE_TIMEOUT,
                          what="the load request to fail while the database is stopped")
        visible = time.monotonic() - down_at
    finally:
        database.start()
    what, probe = app_ready(stageproof_settings, deployment.base_url)
    wait_until(probe, what=f"the app to recover by itself ({what})", timeout=OUTAGE_TIMEOUT)
    recovered = time.monotonic() - down_at
    problems = read_back(client, case, written)
    assert not problems, "\n".join(problems)
    assert app_control.identity() == before, "the app was restarted during the database outage"
    answer = getattr(seen, "status_code", type(seen).__name__)
    report(f"database outage: the load request failed ({answer}) {visible:.1f}s after the stop; recovered "
           f"{recovered:.1f}s after it; {case.name!r} read back; app not restarted")

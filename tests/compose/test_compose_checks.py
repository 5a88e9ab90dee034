"""Checks beyond the contract: restarts, a database outage, the app's user and logs, and the
named volumes' lifecycle (`down` keeps the data, `down -v` removes it)."""

from __future__ import annotations

from harness.checks.api import test_api_behaves_as_its_openapi_document_says  # noqa: F401
from harness.checks.common import needs, persistence_case, read_back, write
from harness.checks.containers import (  # noqa: F401
    test_a_sigkilled_app_container_comes_back_and_serves,
    test_app_processes_run_as_non_root,
    test_requests_appear_in_the_log_stream,
)
from harness.checks.crash import test_acknowledged_writes_survive_a_database_crash  # noqa: F401
from harness.checks.diff_check import test_stage_answers_like_the_first_stage  # noqa: F401
from harness.checks.recovery import (  # noqa: F401
    test_contract_holds_after_app_restart,
    test_data_written_before_a_database_outage_reads_back_after,
    test_database_outage_is_reported_by_readiness,
)
from harness.config import Settings
from harness.contract.cases import Case
from harness.contract.runner import ContractClient
from harness.stages.compose import ComposeStage


@needs("checks.persistence")
def test_down_keeps_the_volumes_and_down_v_removes_them(stage: ComposeStage, stageproof_settings: Settings,
                                                       contract_cases: list[Case],
                                                       contract_client: ContractClient) -> None:
    case = persistence_case(stageproof_settings, contract_cases)
    written = write(contract_client, case)

    stage.compose_down(volumes=False)
    stage.compose_up()
    problems = read_back(contract_client, case, written)
    assert not problems, "data lost by `compose down` without -v:\n  " + "\n  ".join(problems)

    stage.compose_down(volumes=True)
    stage.compose_up()
    assert read_back(contract_client, case, written), f"{case.name!r} still reads back after `compose down -v`"

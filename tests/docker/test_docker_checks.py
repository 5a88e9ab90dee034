"""Checks beyond the contract: restarts, a database outage, who runs the app, what it logs."""

from harness.checks.api import test_api_behaves_as_its_openapi_document_says  # noqa: F401
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

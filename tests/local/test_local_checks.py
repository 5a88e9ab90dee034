"""Recovery checks shared by every stage, run here against the local processes."""

from harness.checks.api import test_api_behaves_as_its_openapi_document_says  # noqa: F401
from harness.checks.crash import test_acknowledged_writes_survive_a_database_crash  # noqa: F401
from harness.checks.diff_check import test_stage_answers_like_the_first_stage  # noqa: F401
from harness.checks.recovery import (  # noqa: F401
    test_contract_holds_after_app_restart,
    test_data_written_before_a_database_outage_reads_back_after,
    test_database_outage_is_reported_by_readiness,
)

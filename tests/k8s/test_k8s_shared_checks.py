"""Checks shared by every stage, run here against the Kubernetes stage: the API-first property
tests, the cross-stage diff (a separate run: it records here) and the contract after a restart."""

from harness.checks.api import test_api_behaves_as_its_openapi_document_says  # noqa: F401
from harness.checks.crash import test_acknowledged_writes_survive_a_database_crash  # noqa: F401
from harness.checks.diff_check import test_stage_answers_like_the_first_stage  # noqa: F401
from harness.checks.recovery import test_contract_holds_after_app_restart  # noqa: F401

"""Recovery checks shared by every stage, run here against the local processes."""

from harness.checks.recovery import (  # noqa: F401
    test_contract_holds_after_app_restart,
    test_database_outage_is_reported_and_survived,
)

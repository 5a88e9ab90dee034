"""Checks beyond the contract: restarts, a database outage, who runs the app, what it logs."""

from harness.checks.containers import (  # noqa: F401
    test_app_processes_run_as_non_root,
    test_docker_logs_show_json_request_lines,
)
from harness.checks.recovery import (  # noqa: F401
    test_contract_holds_after_app_restart,
    test_database_outage_is_reported_and_survived,
)

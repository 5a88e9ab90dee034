"""Recovery checks shared by every stage, run here against the Kubernetes stage."""

from harness.checks.recovery import test_contract_holds_after_app_restart  # noqa: F401

"""Everything stageproof checks on a team's app, in one module: `stageproof test` runs it.

The contract (every case of the contract file), then each stage check; the plugin keeps those
that apply to the selected stage and reports the others as "not applicable" with the reason.
"""

from harness.checks.api import test_api_behaves_as_its_openapi_document_says  # noqa: F401
from harness.checks.containers import (  # noqa: F401
    test_a_sigkilled_app_container_comes_back_and_serves,
    test_app_processes_run_as_non_root,
    test_requests_appear_in_the_log_stream,
)
from harness.checks.crash import test_acknowledged_writes_survive_a_database_crash  # noqa: F401
from harness.checks.diff_check import test_stage_answers_like_the_first_stage  # noqa: F401
from harness.checks.k8s import (  # noqa: F401
    test_contract_holds_through_the_ingress,
    test_database_pod_kill_keeps_data_and_the_app_recovers_unrestarted,
    test_pod_kill_loses_no_request_and_a_replacement_becomes_ready,
    test_rollback_returns_the_previous_release_without_failure,
    test_rolling_update_serves_the_new_release_everywhere_without_failure,
    test_scaling_2_5_1_every_replica_identical_and_no_failure_on_scale_down,
    test_seed_job_run_again_changes_nothing,
    test_the_charts_own_helm_tests_pass,
)
from harness.checks.recovery import (  # noqa: F401
    test_contract_holds_after_app_restart,
    test_data_written_before_a_database_outage_reads_back_after,
    test_database_outage_is_reported_by_readiness,
)
from harness.checks.workflow import (  # noqa: F401
    test_a_crashed_app_container_is_restarted_and_the_other_replicas_serve,
    test_broken_release_is_stopped_by_readiness_and_a_hotfix_goes_out,
    test_code_change_is_built_rolled_out_and_served_by_every_pod_without_failure,
    test_draining_a_worker_loses_no_request_and_its_pods_move,
    test_infrastructure_change_rolls_out_without_failure,
    test_node_failure_the_app_keeps_serving_and_its_pods_are_rescheduled,
)
from harness.contract.suite import test_contract_case  # noqa: F401

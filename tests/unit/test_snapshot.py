"""The proof that a run left a cluster it does not own as it found it: the snapshot comparison."""

from __future__ import annotations

import pytest

from harness.errors import WaitTimeout
from tests.support.snapshot import Snapshot, differences, settled

BEFORE: Snapshot = {"(cluster)": {"Namespace/team": "u1", "Node/n1": "u2"},
                    "team": {"ConfigMap/settings": "u3@100", "Pod/api-1": "u4"}}


def with_run_namespace(snapshot: Snapshot, *, left: bool) -> Snapshot:
    after = {scope: dict(objects) for scope, objects in snapshot.items()}
    if left:
        after["(cluster)"]["Namespace/sp"] = "u9"
        after["sp"] = {"Pod/web-1": "u10"}
    return after


def test_an_untouched_cluster_shows_no_difference_once_the_run_namespace_is_gone() -> None:
    assert differences(BEFORE, with_run_namespace(BEFORE, left=False), gone="sp") == []


def test_a_run_namespace_left_behind_is_reported() -> None:
    assert differences(BEFORE, with_run_namespace(BEFORE, left=True), gone="sp") == ["namespace sp is still there"]


def test_a_changed_or_recreated_object_of_another_namespace_is_reported() -> None:
    after = with_run_namespace(BEFORE, left=False)
    after["team"]["ConfigMap/settings"] = "u3@101"
    after["team"]["Pod/api-1"] = "u11"
    assert differences(BEFORE, after, gone="sp") == ["team: ConfigMap/settings: u3@100 -> u3@101",
                                                     "team: Pod/api-1: u4 -> u11"]


def test_a_deleted_node_or_namespace_is_reported() -> None:
    after = with_run_namespace(BEFORE, left=False)
    del after["(cluster)"]["Node/n1"]
    del after["team"]
    assert differences(BEFORE, after, gone="sp") == [
        "(cluster): Node/n1: u2 -> (absent)", "team: ConfigMap/settings: u3@100 -> (absent)",
        "team: Pod/api-1: u4 -> (absent)"]


def test_the_after_snapshot_waits_for_a_provisioner_helper_pod_to_come_and_go() -> None:
    """What flaked: the storage provisioner's helper pod, started by removing the run's PVC, seen
    by a snapshot taken too early. It is waited out, not exempted."""
    helper = with_run_namespace(BEFORE, left=False)
    helper["local-path-storage"] = {"Pod/helper-pod-delete-pvc-1": "u12"}
    clean = with_run_namespace(BEFORE, left=False)
    clean["local-path-storage"] = {}
    series = iter([with_run_namespace(BEFORE, left=True), helper, helper, clean, clean, clean])
    volumes = iter([["pvc-1"], [], [], [], []])
    after = settled(lambda: next(series), gone="sp", claims_left=lambda: next(volumes), interval=0.01, timeout=5)
    assert differences({**BEFORE, "local-path-storage": {}}, after, gone="sp") == []


def test_what_never_settles_is_a_timeout_naming_it() -> None:
    count = iter(range(10_000))

    def flapping() -> Snapshot:
        after = with_run_namespace(BEFORE, left=False)
        after["team"]["Pod/api-1"] = f"u{next(count)}"
        return after

    with pytest.raises(WaitTimeout, match=r"the cluster to settle.*team: Pod/api-1"):
        settled(flapping, gone="sp", claims_left=list, interval=0.01, timeout=0.3)


def test_a_left_behind_object_is_still_reported_once_settled() -> None:
    left = with_run_namespace(BEFORE, left=False)
    left["team"]["ConfigMap/leftover"] = "u13@1"
    after = settled(lambda: left, gone="sp", claims_left=list, interval=0.01, timeout=5)
    assert differences(BEFORE, after, gone="sp") == ["team: ConfigMap/leftover: (absent) -> u13@1"]

"""The proof that a run left a cluster it does not own as it found it: the snapshot comparison."""

from __future__ import annotations

from tests.support.snapshot import Snapshot, differences

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

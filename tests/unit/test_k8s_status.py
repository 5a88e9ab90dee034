"""The conditions the k8s stage waits on, on hand-made objects shaped like the API's."""

from __future__ import annotations

from types import SimpleNamespace as Obj
from typing import Any

import pytest

from harness.core.wait import NotYet
from harness.k8s.status import (
    ResourceFailed,
    is_ready,
    job_complete,
    label_selector,
    pods_replaced,
    pods_settled,
    progress_deadline_exceeded,
    ready_off,
    rolled_out,
)
from harness.k8s.watch import watch_until


def pod(name: str, *, ready: bool = True, terminating: bool = False, waiting: str | None = None,
        uid: str = "u1") -> Any:
    state = Obj(waiting=Obj(reason=waiting, message="") if waiting else None)
    return Obj(metadata=Obj(name=name, uid=uid, deletion_timestamp="now" if terminating else None),
               status=Obj(phase="Running", conditions=[Obj(type="Ready", status="True" if ready else "False")],
                          container_statuses=[Obj(name="web", state=state, restart_count=0)]))


def deployment(*, generation: int = 2, observed: int = 2, replicas: int = 2, updated: int = 2, current: int = 2,
               available: int = 2, stalled: bool = False) -> Any:
    conditions = [Obj(type="Progressing", reason="ProgressDeadlineExceeded", message="stuck")] if stalled else []
    return Obj(metadata=Obj(name="web", generation=generation), spec=Obj(replicas=replicas),
               status=Obj(observed_generation=observed, updated_replicas=updated, replicas=current,
                          available_replicas=available, conditions=conditions))


def test_a_rollout_is_done_when_every_replica_is_updated_and_no_old_one_is_left() -> None:
    assert rolled_out("web")({"web": deployment()}).metadata.name == "web"
    for unfinished in (deployment(observed=1), deployment(updated=1), deployment(current=3), deployment(available=1)):
        with pytest.raises(NotYet):
            rolled_out("web")({"web": unfinished})
    with pytest.raises(ResourceFailed, match="stuck"):
        rolled_out("web")({"web": deployment(stalled=True)})


def test_pods_have_settled_only_when_exactly_count_are_ready_and_none_terminating() -> None:
    settled = pods_settled(2, "web")
    assert [p.metadata.name for p in settled({"b": pod("b"), "a": pod("a")})] == ["a", "b"]
    for view in ({"a": pod("a")}, {"a": pod("a"), "b": pod("b", ready=False)},
                 {"a": pod("a"), "b": pod("b"), "c": pod("c", terminating=True)}):
        with pytest.raises(NotYet):
            settled(view)


def test_an_image_that_can_never_be_found_fails_at_once() -> None:
    with pytest.raises(ResourceFailed, match="ErrImageNeverPull"):
        pods_settled(1, "web")({"a": pod("a", ready=False, waiting="ErrImageNeverPull")})


def test_job_completion_and_failure() -> None:
    def job(kind: str | None) -> Any:
        conditions = [Obj(type=kind, status="True", reason="BackoffLimitExceeded", message="m")] if kind else []
        return Obj(status=Obj(conditions=conditions, active=1, failed=0))

    assert job_complete("seed")({"seed": job("Complete")})
    with pytest.raises(NotYet):
        job_complete("seed")({"seed": job(None)})
    with pytest.raises(ResourceFailed, match="BackoffLimitExceeded"):
        job_complete("seed")({"seed": job("Failed")})


def test_a_statefulset_pod_counts_as_replaced_once_it_has_a_new_uid_and_is_ready() -> None:
    check = pods_replaced("old", 1, "database db")
    for view in ({}, {"db-0": pod("db-0", uid="old")}, {"db-0": pod("db-0", uid="new", ready=False)}):
        with pytest.raises(NotYet):
            check(view)
    assert [p.metadata.uid for p in check({"db-0": pod("db-0", uid="new")})] == ["new"]


def test_a_deployment_pod_counts_as_replaced_once_the_old_one_is_gone() -> None:
    check = pods_replaced("old", 1, "database mysql")
    with pytest.raises(NotYet, match="still there"):
        check({"mysql-a": pod("mysql-a", uid="old", terminating=True), "mysql-b": pod("mysql-b", uid="new")})
    assert [p.metadata.name for p in check({"mysql-b": pod("mysql-b", uid="new")})] == ["mysql-b"]


def test_label_selectors_become_the_string_list_calls_take() -> None:
    selector = Obj(match_labels={"tier": "db", "app": "guestbook"},
                   match_expressions=[Obj(key="env", operator="In", values=["a", "b"]),
                                      Obj(key="legacy", operator="DoesNotExist", values=None)])
    assert label_selector(selector) == "app=guestbook,tier=db,env in (a,b),!legacy"


def test_watch_until_returns_at_once_when_the_listing_already_satisfies_the_condition() -> None:
    calls = []

    def list_fn(**selectors: Any) -> Any:
        calls.append(selectors)
        return Obj(items=[deployment()], metadata=Obj(resource_version="7"))

    found = watch_until(list_fn, rolled_out("web"), what="web", timeout=5, namespace="ns")
    assert found.metadata.name == "web" and calls == [{"namespace": "ns"}]


def test_a_stalled_rollout_is_detected_by_its_progress_deadline_condition() -> None:
    assert progress_deadline_exceeded("web")({"web": deployment(stalled=True)}).message == "stuck"
    with pytest.raises(NotYet, match="no Progressing condition"):
        progress_deadline_exceeded("web")({"web": deployment()})


def test_a_crash_looping_pod_on_its_way_out_does_not_stop_the_wait() -> None:
    """A broken release replaced by a hotfix: its pod is deleted while still CrashLoopBackOff."""
    check = pods_settled(1, "web")
    with pytest.raises(NotYet, match="1 terminating"):
        check({"new": pod("new"), "broken": pod("broken", ready=False, terminating=True, waiting="CrashLoopBackOff")})
    with pytest.raises(ResourceFailed, match="CrashLoopBackOff"):
        check({"broken": pod("broken", ready=False, waiting="CrashLoopBackOff")})


def test_a_lost_nodes_pods_count_as_rescheduled_only_once_ready_elsewhere() -> None:
    def on(name: str, node: str, *, ready: bool = True) -> Any:
        found = pod(name, ready=ready)
        found.spec = Obj(node_name=node)
        return found

    check = ready_off("w1", 2, "web")
    with pytest.raises(NotYet, match="1/2 Ready off node w1"):
        check({"a": on("a", "w1"), "b": on("b", "w2"), "c": on("c", "w2", ready=False)})
    assert [p.metadata.name for p in check({"b": on("b", "w2"), "c": on("c", "w2")})] == ["b", "c"]


def test_the_outage_probe_sees_a_503_or_knows_the_database_came_back_first() -> None:
    from harness.checks.k8s import outage_reported
    from harness.k8s.deployed import replica_of
    from harness.k8s.views import Answer

    stage = Obj(answers=[200], db=[])
    stage.get = lambda name, path: Answer(stage.answers.pop(0), "")
    stage.database_replicas = lambda ready_only: [Obj(ready=is_ready(p), uid=p.metadata.uid) for p in stage.db]
    assert replica_of  # the workload builds its replicas from pods this way

    def probe_with(answer: int, db: list[Any]) -> Any:
        stage.answers, stage.db = [answer], db
        return outage_reported(stage, "web-1", "/readyz", "old-uid")()  # type: ignore[arg-type]

    killed, back = pod("db-0", uid="old-uid"), pod("db-0", uid="new-uid")
    assert probe_with(503, [killed]).status == 503
    with pytest.raises(NotYet):
        probe_with(200, [killed])  # the killed pod is still there: keep probing
    with pytest.raises(NotYet):
        probe_with(200, [pod("db-0", ready=False)])  # replaced, not Ready yet
    assert probe_with(200, [back]) is None, "back before any probe saw the outage"

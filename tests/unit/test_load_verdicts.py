"""The verdicts over samples (defect 3): node failure, database pod kill, zero-failure disruptions,
and the window analysis they share, on series built by hand."""

from __future__ import annotations

import json

from harness.load.generator import OVERLOADED, Sample
from harness.load.verdicts import database_outage, node_failure, window_counts, zero_failures

RATE = 200


def series(seconds: float, failing: tuple[float, float] | None = None, *, reason: str = "timeout",
           took: float = 5.0, rate: int = RATE, every: int = 1) -> list[Sample]:
    """`rate` requests/s for `seconds`; those due inside `failing` (every `every`-th) fail with
    `reason` after `took` seconds, the others answer in 10 ms."""
    out = []
    for n in range(int(seconds * rate)):
        due = n / rate
        fails = failing is not None and failing[0] <= due < failing[1] and n % every == 0
        out.append(Sample(due, took if fails else 0.01, reason if fails else None, due, n))
    return out


# -- node failure --------------------------------------------------------------------------------
def test_node_failure_every_request_failing_while_lost_fails_the_verdict() -> None:
    """The review's series: node stopped at 12.7s, EVERY request failing until 70s, pods Ready
    elsewhere at 70.5s, 75 s of load (15,000 requests, 11,460 failed). The old check counted whole
    seconds (340 "served while lost", 1,000 after) and passed."""
    samples = series(75, (12.7, 70.0))
    assert len(samples) == 15000 and sum(s.error is not None for s in samples) == 11460
    verdict = node_failure(samples, lost_at=12.7, back_at=70.5)
    assert not verdict.passed
    assert verdict.figures["served_while_lost"] == 100  # due 70.0-70.5, by each request's own time
    assert any("while the node was lost" in p and "floor 25%" in p for p in verdict.problems), verdict.problems


def test_node_failure_half_the_requests_served_while_lost_passes() -> None:
    samples = series(90, (12.7, 50.0), every=2)  # the lost node's half of the endpoints, until they go
    verdict = node_failure(samples, lost_at=12.7, back_at=60.0)
    assert verdict.passed, verdict.problems
    assert verdict.figures["served_while_lost"] == 3730 + 2000  # half until 50s, then all until 60s
    assert verdict.figures["served_share_while_lost"] >= 0.5
    assert "lost at 12.7s" in verdict.summary() and "floor 25%" in verdict.summary()


def test_node_failure_a_failure_before_the_stop_or_after_the_drain_fails() -> None:
    before = series(90, (5.0, 5.1))
    assert any("before" in p for p in node_failure(before, lost_at=12.7, back_at=60.0).problems)
    after = series(90, (66.0, 66.1))  # back at 60, drain 5 s: 65 is the end of the loss window
    verdict = node_failure(after, lost_at=12.7, back_at=60.0)
    assert any("after" in p for p in verdict.problems), verdict.problems
    assert verdict.figures["failed_after"] == 20


def test_node_failure_needs_load_past_the_drain() -> None:
    samples = series(66, (12.7, 50.0), every=2)
    verdict = node_failure(samples, lost_at=12.7, back_at=60.0)
    assert any("ran only" in p for p in verdict.problems), verdict.problems


# -- database pod kill ---------------------------------------------------------------------------
def test_database_kill_with_every_request_failing_to_the_end_of_the_load_fails() -> None:
    """Today: settle 3 s < drain 5 s, so a load failing from the kill to its end had every failure
    inside the window, and only "recovered within 60 s" was left to fail. It passed."""
    samples = series(23, (10.0, 23.0), reason="HTTP 503", took=0.01)
    verdict = database_outage(samples, killed_at=10.0, recovered_at=20.0, readiness_saw_outage=True)
    assert not verdict.passed
    assert any("ran only" in p for p in verdict.problems), verdict.problems
    longer = series(40, (10.0, 40.0), reason="HTTP 503", took=0.01)
    verdict = database_outage(longer, killed_at=10.0, recovered_at=20.0, readiness_saw_outage=True)
    assert any("after" in p for p in verdict.problems), verdict.problems
    assert verdict.figures["failed_after"] == 15 * RATE


def test_database_kill_failures_only_in_the_window_pass_and_the_summary_says_so() -> None:
    samples = series(35, (10.0, 21.0), reason="HTTP 503", took=0.01)
    verdict = database_outage(samples, killed_at=10.0, recovered_at=20.0, readiness_saw_outage=True)
    assert verdict.passed, verdict.problems
    summary = verdict.summary()
    assert "2200 of 7000 requests failed" in summary and "window 10.0s-25.0s" in summary
    assert "readiness reported the outage" in summary
    json.dumps(verdict.as_dict())


def test_database_kill_unseen_by_readiness_fails_with_why() -> None:
    samples = series(35, (10.0, 21.0), reason="HTTP 503", took=0.01)
    verdict = database_outage(samples, killed_at=10.0, recovered_at=20.0, readiness_saw_outage=False)
    assert any("readiness" in p and "503" in p for p in verdict.problems), verdict.problems


def test_database_kill_recovery_slower_than_the_bound_fails() -> None:
    samples = series(85, (10.0, 21.0), reason="HTTP 503", took=0.01)
    verdict = database_outage(samples, killed_at=10.0, recovered_at=72.0, readiness_saw_outage=True)
    assert any("62.0s" in p for p in verdict.problems), verdict.problems


# -- zero-failure disruptions --------------------------------------------------------------------
def test_zero_failures_means_zero_even_one_never_sent() -> None:
    clean = series(10)
    assert zero_failures(clean, disrupted_at=2.0, recovered_at=5.0).passed
    dropped = [*clean[:1000], Sample(5.0, 0.0, OVERLOADED, None, 1000), *clean[1001:]]
    verdict = zero_failures(dropped, disrupted_at=2.0, recovered_at=5.0)
    assert not verdict.passed and verdict.figures["never_sent"] == 1
    assert any("never sent" in p for p in verdict.problems)
    failed = series(10, (4.0, 4.01), reason="HTTP 502", took=0.01)
    assert any("2 of 2000" in p for p in zero_failures(failed, disrupted_at=2.0, recovered_at=5.0).problems)


def test_zero_failures_can_bound_the_share_of_slow_answers() -> None:
    slow = [Sample(s.sent_at, 2.0 if 3.0 <= s.sent_at < 3.5 else s.seconds, None, s.started_at, s.number)
            for s in series(10)]
    assert zero_failures(slow, disrupted_at=2.0, recovered_at=5.0).passed  # not bounded by default
    verdict = zero_failures(slow, disrupted_at=2.0, recovered_at=5.0, max_slow_share=0.01)
    assert any("slower than 1s" in p for p in verdict.problems)
    assert verdict.figures["slow"] == 100


def test_zero_failures_needs_the_load_to_cover_the_recovery() -> None:
    verdict = zero_failures(series(4), disrupted_at=2.0, recovered_at=5.0)
    assert any("before recovery" in p for p in verdict.problems)


def test_a_verdict_over_no_sample_fails() -> None:
    assert not zero_failures([], disrupted_at=0.0, recovered_at=0.0).passed


# -- the window analysis -------------------------------------------------------------------------
def test_window_counts_go_by_each_requests_own_due_and_end_times() -> None:
    samples = [Sample(1.0, 0.2, "timeout", 1.0), Sample(1.9, 0.5, "timeout", 1.95),  # ended 1.2 / hit at 2.45
               Sample(2.5, 0.01, "HTTP 503", 2.5), Sample(3.0, 0.01), Sample(4.1, 0.01, "HTTP 502", 4.1),
               Sample(4.5, 0.0, OVERLOADED, None), Sample(4.6, 0.01)]
    counts = window_counts(samples, 2.0, 4.0)
    assert counts.failed_before == {"timeout": 1}
    assert counts.failed_inside == {"timeout": 1, "HTTP 503": 1}
    assert counts.failed_after == {"HTTP 502": 1, OVERLOADED: 1}
    assert (counts.served_before, counts.served_inside, counts.served_after) == (0, 1, 1)
    assert counts.due_inside == 2


def test_a_stalled_client_makes_a_zero_failure_run_inconclusive_but_is_a_failure_inside_a_window() -> None:
    from harness.load.samples import STALLED

    stalled = series(40, (12.0, 12.5), reason=STALLED, took=6.0)
    verdict = zero_failures(stalled, disrupted_at=10.0, recovered_at=20.0)
    assert [p for p in verdict.problems if "stalled" in p and "inconclusive" in p] and verdict.figures["stalled"] == 100
    assert not any("requests failed" in p for p in verdict.problems)
    assert node_failure(stalled, lost_at=10.0, back_at=20.0).passed


def test_the_summary_never_says_a_failure_window_of_never_for_failures() -> None:
    """A first hour's friction: "80 failed ... failure window never" read as "no failure window"."""
    from harness.load.samples import LoadResult

    assert "failure window none (no request failed)" in LoadResult("u", 50, 10, 500, 0).summary()
    unclosed = LoadResult("u", 50, 10, 500, 80, first_failure_at=3.2, recovery_seconds=None).summary()
    assert "failure window from 3.2s, never closed" in unclosed and "window never;" not in unclosed
    assert "failure window 4.5s, from 3.2s" in LoadResult("u", 50, 10, 500, 80, first_failure_at=3.2,
                                                           recovery_seconds=4.5).summary()

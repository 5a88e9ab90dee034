"""Verdicts with stated bounds over the load's samples: pure functions, one per kind of disruption.

Each goes by every request's own times (when it was due, when it ended), never by whole seconds:
a request due just before a disruption but in flight when it began was hit by it; one that failed
and ended before it began was not. Each returns a `Verdict`: the problems (empty: it holds), the
figures they were judged from, the bounds used, and a report line built from those figures only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.load.samples import OVERLOADED, STALLED, Sample, percentile

DRAIN = 5.0  # one request timeout: what the app queued during an outage may take that long to fail
MIN_TAIL = 3.0  # load past the end of a failure window, so that a late failure can be seen at all
LATE_SECONDS = 1.0  # a request that went out later than this after it was due was not measured on time
MAX_LATE_SHARE = 0.01
SLOW_SECONDS = 1.0
MIN_SERVED_SHARE = 0.25  # of the requests due while a node was lost, the share that must be served
MAX_RECOVERY_SECONDS = 60.0


@dataclass(frozen=True)
class WindowCounts:
    """Failures by reason and successes before, inside and after [start, end): a failure is
    before when it ended before `start`, after when it was due at or after `end`, else inside;
    a success counts where it was due. `due_inside`: every request due inside."""

    start: float
    end: float
    failed_before: dict[str, int]
    failed_inside: dict[str, int]
    failed_after: dict[str, int]
    served_before: int
    served_inside: int
    served_after: int
    due_inside: int

    def figures(self) -> dict[str, Any]:
        return {"window": [round(self.start, 3), round(self.end, 3)], "failed_before": sum(self.failed_before.values()),
                "failed_inside": sum(self.failed_inside.values()), "failed_after": sum(self.failed_after.values()),
                "reasons_before": self.failed_before, "reasons_inside": self.failed_inside,
                "reasons_after": self.failed_after, "served_before": self.served_before,
                "served_inside": self.served_inside, "served_after": self.served_after, "due_inside": self.due_inside}


def window_counts(samples: Sequence[Sample], start: float, end: float) -> WindowCounts:
    failed: list[Counter[str]] = [Counter(), Counter(), Counter()]
    served = [0, 0, 0]
    for sample in samples:
        due_place = 0 if sample.sent_at < start else 1 if sample.sent_at < end else 2
        if sample.error is None:
            served[due_place] += 1
        else:
            failed[0 if sample.ended_at < start else max(1, due_place)][sample.error] += 1
    before, inside, after = (dict(sorted(counter.items())) for counter in failed)
    return WindowCounts(start, end, before, inside, after, served_before=served[0], served_inside=served[1],
                        served_after=served[2], due_inside=sum(start <= sample.sent_at < end for sample in samples))


@dataclass(frozen=True)
class Verdict:
    """What a check asserts and reports: `passed`, the problems, and the figures behind them."""

    name: str
    problems: tuple[str, ...]
    figures: dict[str, Any]
    bounds: dict[str, float | None]
    text: str  # built from `figures` alone

    @property
    def passed(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        bounds = ", ".join(f"{key} {'off' if value is None else f'{value:g}'}" for key, value in self.bounds.items())
        verdict = "holds" if self.passed else "FAILS: " + "; ".join(self.problems)
        return f"{self.name}: {self.text} [bounds: {bounds}] -> {verdict}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable, for the reports."""
        return {"name": self.name, "passed": self.passed, "problems": list(self.problems), "figures": self.figures,
                "bounds": self.bounds}


@dataclass(frozen=True)
class Schedule:
    """The bound on the client itself: a measurement is only as good as the schedule it kept."""

    late_seconds: float = LATE_SECONDS
    max_late_share: float = MAX_LATE_SHARE


def zero_failures(samples: Sequence[Sample], *, disrupted_at: float, recovered_at: float, name: str = "disruption",
                  slow_seconds: float = SLOW_SECONDS, max_slow_share: float | None = None,
                  schedule: Schedule = Schedule()) -> Verdict:
    """Pod kill, scaling, rollout, rollback, drain: not one request failed or went unsent, and the
    load ran until recovery. Slow answers (over `slow_seconds`) are counted; bounded only when
    `max_slow_share` is given (on a shared 2-core machine latency mostly measures the machine)."""
    counts = window_counts(samples, disrupted_at, recovered_at)
    ok = [sample for sample in samples if sample.error is None]
    slow = sum(sample.seconds > slow_seconds for sample in ok)
    figures = {**_basics(samples, schedule), **counts.figures(), "slow": slow,
               "slow_share": _share(slow, len(ok)), "p99_ms": round(percentile([s.seconds * 1000 for s in ok], 99), 1)}
    problems = _kept(figures, schedule)
    if figures["stalled"]:  # inside a failure window (node, database) a stalled timeout is just a failure
        problems.append(f"{figures['stalled']} requests timed out while the load client itself was stalled (its "
                        "event loop held past the timeout: a busy machine): the measurement is inconclusive")
    if failed := figures["failed"] - figures["never_sent"] - figures["stalled"]:
        problems.append(f"{failed} of {figures['sent']} requests failed ({_reasons(figures['reasons'])}): "
                        f"{_where(counts, 'before the disruption', 'after recovery')}")
    if max_slow_share is not None and figures["slow_share"] > max_slow_share:
        problems.append(f"{slow} of {len(ok)} answers were slower than {slow_seconds:g}s "
                        f"({figures['slow_share']:.1%}, at most {max_slow_share:.1%})")
    if samples and figures["last_due"] < recovered_at:
        problems.append(f"the load ended at {figures['last_due']:.1f}s, before recovery at {recovered_at:.1f}s: "
                        "raise max_seconds")
    text = (f"{figures['failed']} of {figures['sent']} requests failed, {figures['never_sent']} never sent; "
            f"{slow} slower than {slow_seconds:g}s; p99 {figures['p99_ms']:.0f} ms; disrupted at {disrupted_at:.1f}s, "
            f"recovered at {recovered_at:.1f}s, load ran to {figures['last_due']:.1f}s")
    return Verdict(name, tuple(problems), figures, {"slow_seconds": slow_seconds, "max_slow_share": max_slow_share,
                                                    **_schedule_bounds(schedule)}, text)


def node_failure(samples: Sequence[Sample], *, lost_at: float, back_at: float, drain: float = DRAIN,
                 min_served_share: float = MIN_SERVED_SHARE, min_tail: float = MIN_TAIL,
                 schedule: Schedule = Schedule(), name: str = "node failure") -> Verdict:
    """A worker stopped at `lost_at`, its pods Ready elsewhere at `back_at`: failures only from the
    stop until `back_at + drain`, and at least `min_served_share` of the requests due while the
    node was lost were served (by each request's due time)."""
    counts = window_counts(samples, lost_at, back_at + drain)
    lost = window_counts(samples, lost_at, back_at)
    share = _share(lost.served_inside, lost.due_inside)
    figures = {**_basics(samples, schedule), **counts.figures(), "served_while_lost": lost.served_inside,
               "due_while_lost": lost.due_inside, "served_share_while_lost": share}
    problems = _kept(figures, schedule) + _outside(counts, "before the node was stopped", "after the loss window")
    if share < min_served_share:
        problems.append(f"only {lost.served_inside} of {lost.due_inside} requests due while the node was lost "
                        f"({lost_at:.1f}s-{back_at:.1f}s) were served ({share:.1%}, floor {min_served_share:.0%}): "
                        "the app did not keep serving while the node was lost")
    problems += _tail(figures, counts.end, min_tail)
    text = (f"lost at {lost_at:.1f}s, its pods Ready elsewhere at {back_at:.1f}s ({back_at - lost_at:.1f}s); "
            f"{figures['failed']} of {figures['sent']} requests failed ({_reasons(figures['reasons'])}), "
            f"{_where(counts, 'before the stop', 'after the window')}; {lost.served_inside} of {lost.due_inside} "
            f"due while it was lost were served ({share:.1%}, floor {min_served_share:.0%}); "
            f"{_ran(figures, counts.end)}; {figures['never_sent']} never sent")
    return Verdict(name, tuple(problems), figures, {"drain": drain, "min_served_share": min_served_share,
                                                    "min_tail": min_tail, **_schedule_bounds(schedule)}, text)


def database_outage(samples: Sequence[Sample], *, killed_at: float, recovered_at: float,
                    readiness_saw_outage: bool | None, drain: float = DRAIN, min_tail: float = MIN_TAIL,
                    max_recovery_seconds: float = MAX_RECOVERY_SECONDS, schedule: Schedule = Schedule(),
                    name: str = "database pod kill") -> Verdict:
    """The database pod killed at `killed_at`, the app serving again at `recovered_at`: failures only
    in [kill, recovery + drain), none after while the load runs `min_tail` more, recovery within
    `max_recovery_seconds`, and the app's own readiness answered 503 meanwhile (`readiness_saw_outage`;
    None: not judged: the app has no readiness path, or the check is of the app itself)."""
    counts = window_counts(samples, killed_at, recovered_at + drain)
    recovery = recovered_at - killed_at
    figures = {**_basics(samples, schedule), **counts.figures(), "recovery_seconds": round(recovery, 3),
               "readiness_saw_outage": readiness_saw_outage}
    problems = _kept(figures, schedule) + _outside(counts, "before the kill", "after the outage window")
    problems += _tail(figures, counts.end, min_tail)
    if recovery > max_recovery_seconds:
        problems.append(f"the app served again {recovery:.1f}s after the kill: more than {max_recovery_seconds:g}s")
    if readiness_saw_outage is False:
        problems.append(f"the app's readiness never answered 503 while the database was away ({figures['failed']} "
                        "load requests failed meanwhile): a readiness that does not check its database keeps a "
                        "broken pod in the Service")
    readiness = {True: "readiness reported the outage (503)", False: "readiness did NOT report the outage",
                 None: "readiness not judged"}[readiness_saw_outage]
    text = (f"killed at {killed_at:.1f}s, serving again {recovery:.1f}s later; {figures['failed']} of "
            f"{figures['sent']} requests failed ({_reasons(figures['reasons'])}), "
            f"{_where(counts, 'before the kill', 'after the window')}; {_ran(figures, counts.end)}; {readiness}")
    return Verdict(name, tuple(problems), figures, {"drain": drain, "min_tail": min_tail,
                                                    "max_recovery_seconds": max_recovery_seconds,
                                                    **_schedule_bounds(schedule)}, text)


# -- the parts the verdicts share ------------------------------------------------------------------
def _basics(samples: Sequence[Sample], schedule: Schedule) -> dict[str, Any]:
    failures = [sample for sample in samples if sample.error is not None]
    late = sum(sample.late is not None and sample.late > schedule.late_seconds for sample in samples)
    return {"sent": len(samples), "failed": len(failures),
            "reasons": dict(sorted(Counter(str(sample.error) for sample in failures).items())),
            "never_sent": sum(sample.started_at is None and sample.error == OVERLOADED for sample in samples),
            "stalled": sum(sample.error == STALLED for sample in samples), "late": late,
            "last_due": round(max((sample.sent_at for sample in samples), default=0.0), 3)}


def _kept(figures: dict[str, Any], schedule: Schedule) -> list[str]:
    """The measurement itself: something was sent, nothing left unsent, the schedule kept."""
    if not figures["sent"]:
        return ["no request was sent"]
    found = []
    if figures["never_sent"]:
        found.append(f"{figures['never_sent']} of {figures['sent']} requests were never sent (the load client at "
                     "its in-flight cap): the measurement is inconclusive")
    if figures["late"] > schedule.max_late_share * figures["sent"]:
        found.append(f"{figures['late']} of {figures['sent']} requests went out more than {schedule.late_seconds:g}s "
                     "late: the load client fell behind its schedule (a busy machine); the measurement is inconclusive")
    return found


def _outside(counts: WindowCounts, before: str, after: str) -> list[str]:
    found = []
    if counts.failed_before:
        found.append(f"{sum(counts.failed_before.values())} requests failed and ended {before} at {counts.start:.1f}s "
                     f"({_reasons(counts.failed_before)}): the baseline does not hold")
    if counts.failed_after:
        found.append(f"{sum(counts.failed_after.values())} requests due {after} (from {counts.end:.1f}s) failed "
                     f"({_reasons(counts.failed_after)})")
    return found


def _tail(figures: dict[str, Any], end: float, min_tail: float) -> list[str]:
    if figures["sent"] and figures["last_due"] < end + min_tail:
        return [f"the load ran only until {figures['last_due']:.1f}s: a failure after the window is seen only if "
                f"it runs to {end + min_tail:.1f}s (window end {end:.1f}s + {min_tail:g}s); raise max_seconds"]
    return []


def _where(counts: WindowCounts, before: str, after: str) -> str:
    window = f"window {counts.start:.1f}s-{counts.end:.1f}s"
    if not counts.failed_before and not counts.failed_after:
        return f"all inside the {window}" if counts.failed_inside else f"none in or around the {window}"
    return (f"{sum(counts.failed_before.values())} {before}, {sum(counts.failed_inside.values())} inside the "
            f"{window}, {sum(counts.failed_after.values())} {after}")


def _ran(figures: dict[str, Any], end: float) -> str:
    return f"load ran to {figures['last_due']:.1f}s ({figures['last_due'] - end:.1f}s past the window)"


def _reasons(reasons: dict[str, int]) -> str:
    return ", ".join(f"{count}x {reason}" for reason, count in sorted(reasons.items())) or "none"


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _schedule_bounds(schedule: Schedule) -> dict[str, float | None]:
    return {"late_seconds": schedule.late_seconds, "max_late_share": schedule.max_late_share}

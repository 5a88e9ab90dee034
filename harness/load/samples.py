"""What the load measured, as values: one `Sample` per scheduled request, and `summarize` into the
counts a report shows (`LoadResult`). Pure: the verdicts and the benchmark work on these alone."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

#: a request that was due but never went out: the client was at its in-flight cap (its own limit,
#: not the app's answer). The text is kept from the threaded client, whose reports used it.
OVERLOADED = "client overloaded"
ABANDONED = "abandoned at stop"
#: a request whose timeout the client noticed late (its own event loop held): not the app's failure
STALLED = "client stalled"


@dataclass(frozen=True)
class Sample:
    """One scheduled request: when it was due (seconds since the load began: failure windows
    follow this schedule, not the client's delays), how long it took once sent, why it failed
    (None when it answered as expected), when it went out (None: never sent) and its number in
    the schedule (what its marker carries)."""

    sent_at: float
    seconds: float
    error: str | None = None
    started_at: float | None = None
    number: int | None = None

    @property
    def ended_at(self) -> float:
        """When the answer (or the error) came, on the same clock as `sent_at`: a request due
        before a disruption but still in flight when it began was hit by it."""
        return (self.sent_at if self.started_at is None else self.started_at) + self.seconds

    @property
    def late(self) -> float | None:
        """Seconds between when it was due and when it went out (None: it never went out)."""
        return None if self.started_at is None else self.started_at - self.sent_at


@dataclass(frozen=True)
class LoadResult:
    """What the load measured; `recovery_seconds` spans the first failure to the first success
    after the last one (0 with no failure, None when no success followed the last failure).
    `sent` counts every scheduled request (`never_sent` of them never went out)."""

    url: str
    rate: float
    duration: float
    sent: int
    failed: int
    reasons: dict[str, int] = field(default_factory=dict)
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    first_failure_at: float | None = None
    last_failure_at: float | None = None
    #: the earliest moment a failed request ended: a failure that ended before a disruption began
    #: is one the disruption cannot explain (one due just before it but in flight across it can be)
    first_failure_ended_at: float | None = None
    recovery_seconds: float | None = 0.0
    stopped_by_limit: bool = False
    #: per second of the schedule (int(seconds since the load began) -> requests)
    sent_per_second: dict[int, int] = field(default_factory=dict)
    failures_per_second: dict[int, int] = field(default_factory=dict)
    #: p99 latency of the requests that succeeded, per second of the schedule (no success: no entry)
    p99_ms_per_second: dict[int, float] = field(default_factory=dict)
    never_sent: int = 0
    #: how late requests went out against their schedule (the client's own slip)
    p99_late_ms: float = 0.0
    max_late_ms: float = 0.0
    #: the client's bounds, stated with every result: per-request and connect timeouts, in-flight cap
    timeout: float = 0.0
    connect_timeout: float = 0.0
    max_in_flight: int = 0
    peak_in_flight: int = 0

    @property
    def succeeded(self) -> int:
        return self.sent - self.failed

    def summary(self) -> str:
        reasons = ", ".join(f"{count}x {reason}" for reason, count in sorted(self.reasons.items())) or "none"
        if self.failed == 0:
            recovery = "none (no request failed)"
        elif self.recovery_seconds is None:
            recovery = f"from {self.first_failure_at or 0:.1f}s, never closed: no success after the last failure"
        else:
            recovery = f"{self.recovery_seconds:.1f}s, from {self.first_failure_at or 0:.1f}s"
        bounds = (f"; timeout {self.timeout:g}s (connect {self.connect_timeout:g}s), {self.peak_in_flight} in flight "
                  f"at most (cap {self.max_in_flight})" if self.max_in_flight else "")
        return (f"{self.sent} requests in {self.duration:.1f}s at {self.rate:g}/s, {self.failed} failed "
                f"(reasons: {reasons}), {self.never_sent} never sent; p50 {self.p50_ms:.0f} ms, "
                f"p99 {self.p99_ms:.0f} ms, max {self.max_ms:.0f} ms; failure window {recovery}; "
                f"sent up to {self.max_late_ms:.0f} ms late{bounds}")


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (0 for no values): p99 of 100 values is the 99th smallest."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-len(ordered) * pct // 100)))
    return ordered[int(rank) - 1]


@dataclass(frozen=True)
class ClientBounds:
    """The client's limits, copied into the result so a report states them."""

    timeout: float = 0.0
    connect_timeout: float = 0.0
    max_in_flight: int = 0
    peak_in_flight: int = 0


def summarize(url: str, rate: float, duration: float, samples: Sequence[Sample], *,
              stopped_by_limit: bool = False, bounds: ClientBounds = ClientBounds()) -> LoadResult:
    """Turn raw samples into counts, latency percentiles and the failure window."""
    ordered = sorted(samples, key=lambda sample: sample.sent_at)
    failures = [sample for sample in ordered if sample.error is not None]
    latencies_ms = [sample.seconds * 1000 for sample in ordered if sample.error is None]
    late_ms = [late * 1000 for sample in ordered if (late := sample.late) is not None]
    first: float | None = None
    last: float | None = None
    first_ended: float | None = None
    recovery: float | None = 0.0
    if failures:
        first, last = failures[0].sent_at, failures[-1].sent_at
        first_ended = min(sample.ended_at for sample in failures)
        healed = next((sample.sent_at for sample in ordered if sample.error is None and sample.sent_at > last), None)
        recovery = None if healed is None else healed - first
    return LoadResult(url=url, rate=rate, duration=duration, sent=len(ordered), failed=len(failures),
                      reasons=dict(Counter(str(sample.error) for sample in failures)),
                      p50_ms=percentile(latencies_ms, 50), p99_ms=percentile(latencies_ms, 99),
                      max_ms=max(latencies_ms, default=0.0), first_failure_at=first, last_failure_at=last,
                      first_failure_ended_at=first_ended,
                      recovery_seconds=recovery, stopped_by_limit=stopped_by_limit,
                      sent_per_second=_per_second(ordered), failures_per_second=_per_second(failures),
                      p99_ms_per_second=_p99_per_second(ordered),
                      never_sent=sum(sample.started_at is None and sample.error == OVERLOADED for sample in ordered),
                      p99_late_ms=percentile(late_ms, 99), max_late_ms=max(late_ms, default=0.0),
                      timeout=bounds.timeout, connect_timeout=bounds.connect_timeout,
                      max_in_flight=bounds.max_in_flight, peak_in_flight=bounds.peak_in_flight)


def _per_second(samples: list[Sample]) -> dict[int, int]:
    return dict(sorted(Counter(int(sample.sent_at) for sample in samples).items()))


def _p99_per_second(samples: list[Sample]) -> dict[int, float]:
    """Latency over time, so a report can show where in the run the slow answers were."""
    by_second: dict[int, list[float]] = {}
    for sample in samples:
        if sample.error is None:
            by_second.setdefault(int(sample.sent_at), []).append(sample.seconds * 1000)
    return {second: percentile(values, 99) for second, values in sorted(by_second.items())}

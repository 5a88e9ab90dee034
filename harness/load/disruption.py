"""Do something disruptive to a running stage while a load measures what users would have seen.

`measure_disruption` is the one shape of every chaos check: a steady baseline under load, the
disruption (kill a pod, scale, roll out), the wait until the stage says it has recovered, a
short settle period still under load, then the counts. Usable by any stage: it only needs a
URL on 127.0.0.1 and two callables.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from harness.core.wait import NotYet, wait_until
from harness.load.generator import OVERLOADED, LoadGenerator, LoadResult

BASELINE_TIMEOUT = 30.0
#: requests the load client could not send on time (its own overload, not the app's): up to this
#: share they are reported but do not fail a zero-failure claim; above it nothing is proven
MAX_DROPPED_SHARE = 0.005


@dataclass(frozen=True)
class DisruptionResult:
    """The load's counts plus how long the disruption and the recovery took."""

    what: str
    load: LoadResult
    disrupted_at: float  # seconds into the load
    action_seconds: float
    recovered_seconds: float  # from the start of the disruption until `recovered` returned
    covered: bool  # the load was still running when recovery was confirmed

    def summary(self) -> str:
        cover = "" if self.covered else " (the load ENDED before recovery: not fully measured)"
        return (f"{self.what}: {self.load.summary()}; disruption took {self.action_seconds:.1f}s, "
                f"recovered {self.recovered_seconds:.1f}s after it began{cover}")

    def figures(self) -> dict[str, Any]:
        """The measurement as data, for the JSON and HTML reports."""
        return {"what": self.what, "disrupted_at": round(self.disrupted_at, 3),
                "action_seconds": round(self.action_seconds, 3), "recovered_seconds": round(self.recovered_seconds, 3),
                "covered": self.covered, "load": asdict(self.load)}

    def failed_before_the_disruption(self) -> bool:
        """A request failed and was answered before the disruption began (one sent just before it
        and still in flight when it began does not count: the disruption hit it)."""
        ended = self.load.first_failure_ended_at
        return ended is not None and ended < self.disrupted_at

    def served_between(self, start: float, end: float) -> int:
        """Requests that succeeded among those scheduled in the whole seconds from `start` to `end`
        (seconds into the load): did the app keep serving through an outage?"""
        seconds = range(int(start), int(end) + 1)
        return sum(self.load.sent_per_second.get(second, 0) - self.load.failures_per_second.get(second, 0)
                   for second in seconds)

    def problems(self, *, max_failures: int = 0) -> list[str]:
        """What makes this run fail a zero-failure claim (empty when it holds)."""
        found = []
        dropped = self.load.reasons.get(OVERLOADED, 0)
        failed = self.load.failed - dropped  # requests the app (or what fronts it) failed
        if failed > max_failures:
            found.append(f"{failed} of {self.load.sent - dropped} requests failed: {self.load.reasons}")
        if dropped > MAX_DROPPED_SHARE * self.load.sent:
            found.append(f"the load client itself could not keep {self.load.rate:g} req/s ({dropped} of "
                         f"{self.load.sent} requests never sent): the measurement is inconclusive; lower "
                         "[checks] rate or free the machine")
        if failed > max_failures and self.failed_before_the_disruption():
            found.append(f"requests failed before the disruption (at {self.load.first_failure_at:.1f}s, disruption "
                         f"at {self.disrupted_at:.1f}s): the baseline does not hold {self.load.rate:g} req/s; lower "
                         f"[checks] rate to what the app (and this machine) sustains")
        if not self.covered:
            found.append("the load stopped before recovery was confirmed: raise max_seconds")
        if self.load.sent == 0:
            found.append("no request was sent")
        return found


def measure_disruption(url: str, what: str, disrupt: Callable[[], object], *,
                       recovered: Callable[[], object] | None = None, rate: float = 20.0,
                       max_seconds: float = 60.0, warmup: float = 2.0, settle: float = 3.0,
                       timeout: float = 5.0, method: str = "GET", expect_status: int = 200) -> DisruptionResult:
    """Load `url`, wait for a clean baseline of `warmup` seconds, `disrupt()`, wait for
    `recovered()` (it blocks and raises on its own timeout), observe `settle` seconds more."""
    # Enough workers that a stalled backend (timeouts) cannot starve the schedule: rate/2 covers
    # half a second of latency per request before the generator itself would count "overloaded".
    workers = min(256, max(16, int(rate / 2)))
    load = LoadGenerator(url, rate=rate, max_seconds=max_seconds, timeout=timeout, method=method,
                         expect_status=expect_status, workers=workers).start()
    try:
        wait_until(_baseline(load, needed=max(1, int(rate * warmup))), what=f"{warmup:g}s of baseline load on {url}",
                   timeout=BASELINE_TIMEOUT)
        disrupted_at = load.elapsed()
        began = time.monotonic()
        disrupt()
        action_seconds = time.monotonic() - began
        if recovered is not None:
            recovered()
        recovered_seconds = time.monotonic() - began
        covered = load.elapsed() < load.max_seconds
        threading.Event().wait(settle)
    except BaseException as err:
        err.add_note(f"load so far: {load.stop().summary()}")
        raise
    return DisruptionResult(what, load.stop(), disrupted_at, action_seconds, recovered_seconds, covered)


def _baseline(load: LoadGenerator, *, needed: int) -> Callable[[], None]:
    """A probe: `needed` requests have answered since the load began (failed ones count too,
    so a broken baseline is measured and reported instead of waited out)."""

    def probe() -> None:
        done = load.snapshot().sent
        if done < needed:
            raise NotYet(f"{done}/{needed} baseline requests answered")

    return probe

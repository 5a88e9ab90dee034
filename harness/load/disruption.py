"""Do something disruptive to a running stage while a load measures what users would have seen.

`measure_disruption` is the one shape of every chaos check: a steady baseline under load, the
disruption (kill a pod, scale, roll out), the wait until the stage says it has recovered, then the
load goes on for a drain (one request timeout: what was queued in the outage may take that long to
fail) plus a tail, so that a failure after the allowed window can be seen at all. Usable by any
stage: it only needs a URL on 127.0.0.1 and two callables. The verdicts (`harness.load.verdicts`)
judge the samples it keeps.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from harness.core.wait import NotYet, wait_until
from harness.load import verdicts
from harness.load.body import BodyCheck, Mark
from harness.load.generator import LoadGenerator
from harness.load.samples import LoadResult, Sample
from harness.load.verdicts import MIN_TAIL, Verdict

BASELINE_TIMEOUT = 30.0
SETTLE_MARGIN = 0.5  # past drain + tail, so that requests are due at the tail's very end too


@dataclass(frozen=True)
class DisruptionResult:
    """The load's counts and samples, plus how long the disruption and the recovery took."""

    what: str
    load: LoadResult
    disrupted_at: float  # seconds into the load
    action_seconds: float
    recovered_seconds: float  # from the start of the disruption until `recovered` returned
    covered: bool  # the load was still running when recovery was confirmed
    samples: tuple[Sample, ...] = ()
    mark: Mark | None = None  # what each request carried, when the load was asked to mark them

    @property
    def recovered_at(self) -> float:
        """When recovery was confirmed, in seconds into the load (the samples' clock)."""
        return self.disrupted_at + self.recovered_seconds

    def summary(self) -> str:
        cover = "" if self.covered else " (the load ENDED before recovery: not fully measured)"
        return (f"{self.what}: {self.load.summary()}; disruption took {self.action_seconds:.1f}s, "
                f"recovered {self.recovered_seconds:.1f}s after it began{cover}")

    def figures(self) -> dict[str, Any]:
        """The measurement as data, for the JSON and HTML reports (the samples stay out: too many)."""
        return {"what": self.what, "disrupted_at": round(self.disrupted_at, 3),
                "action_seconds": round(self.action_seconds, 3), "recovered_seconds": round(self.recovered_seconds, 3),
                "covered": self.covered, "load": asdict(self.load),
                **({"mark": {"where": self.mark.where, "name": self.mark.name, "token": self.mark.token}}
                   if self.mark else {})}

    def sent_ids(self) -> list[str]:
        """The marker ids of the requests that went out, in schedule order: what a log check must
        find (the requests never sent are not among them)."""
        if self.mark is None:
            raise RuntimeError(f"{self.what}: the load carried no marker: pass mark=Mark() to measure_disruption")
        return [self.mark.id(s.number) for s in self.samples if s.started_at is not None and s.number is not None]

    # -- the verdicts, on this run's samples and times (bounds as keywords, drain = the request timeout)
    def zero_failures(self, **bounds: Any) -> Verdict:
        """Pod kill, scaling, rollout, rollback, drain: see `verdicts.zero_failures`."""
        return verdicts.zero_failures(self.samples, disrupted_at=self.disrupted_at, recovered_at=self.recovered_at,
                                      name=self.what, **bounds)

    def node_failure(self, **bounds: Any) -> Verdict:
        """The node stopped when the disruption began, its pods Ready elsewhere at recovery."""
        return verdicts.node_failure(self.samples, lost_at=self.disrupted_at, back_at=self.recovered_at,
                                     name=self.what, **{"drain": self._drain(), **bounds})

    def database_outage(self, readiness_saw_outage: bool | None, **bounds: Any) -> Verdict:
        """The database pod killed when the disruption began, the app serving again at recovery."""
        return verdicts.database_outage(self.samples, killed_at=self.disrupted_at, recovered_at=self.recovered_at,
                                        readiness_saw_outage=readiness_saw_outage, name=self.what,
                                        **{"drain": self._drain(), **bounds})

    def problems(self) -> list[str]:
        """What makes this run fail a zero-failure claim (empty when it holds)."""
        found = list(self.zero_failures().problems)
        if not self.covered:
            found.append("the load stopped before recovery was confirmed: raise max_seconds")
        return found

    def failed_before_the_disruption(self) -> bool:
        """A request failed and was answered before the disruption began (one sent just before it
        and still in flight when it began does not count: the disruption hit it)."""
        ended = self.load.first_failure_ended_at
        return ended is not None and ended < self.disrupted_at

    def served_between(self, start: float, end: float) -> int:
        """Requests that succeeded among those due from `start` to `end` (seconds into the load),
        by each request's own due time: did the app keep serving through an outage?"""
        return verdicts.window_counts(self.samples, start, end).served_inside

    def _drain(self) -> float:
        return self.load.timeout or verdicts.DRAIN


def measure_disruption(url: str, what: str, disrupt: Callable[[], object], *,
                       recovered: Callable[[], object] | None = None, rate: float = 20.0,
                       max_seconds: float = 60.0, warmup: float = 2.0, settle: float | None = None,
                       timeout: float = 5.0, connect_timeout: float | None = None, method: str = "GET",
                       expect_status: int = 200, body: BodyCheck | None = None, mark: Mark | None = None,
                       max_in_flight: int | None = None, tail: float = MIN_TAIL) -> DisruptionResult:
    """Load `url`, wait for a clean baseline of `warmup` seconds, `disrupt()`, wait for
    `recovered()` (it blocks and raises on its own timeout), then keep loading `settle` seconds:
    by default one request timeout (the drain) + `tail`, what the verdicts need to see a late failure."""
    load = LoadGenerator(url, rate=rate, max_seconds=max_seconds, timeout=timeout, connect_timeout=connect_timeout,
                         method=method, expect_status=expect_status, max_in_flight=max_in_flight, body=body,
                         mark=mark).start()
    settle = timeout + tail + SETTLE_MARGIN if settle is None else settle
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
        threading.Event().wait(min(settle, max(0.0, load.max_seconds - load.elapsed())))
    except BaseException as err:
        err.add_note(f"load so far: {load.stop().summary()}")
        raise
    result = load.stop(grace=timeout)  # what is still in flight gets its whole timeout: a real answer, not abandoned
    return DisruptionResult(what, result, disrupted_at, action_seconds, recovered_seconds, covered,
                            tuple(load.samples()), mark)


def _baseline(load: LoadGenerator, *, needed: int) -> Callable[[], None]:
    """A probe: `needed` requests have answered since the load began (failed ones count too,
    so a broken baseline is measured and reported instead of waited out)."""

    def probe() -> None:
        done = load.snapshot().sent
        if done < needed:
            raise NotYet(f"{done}/{needed} baseline requests answered")

    return probe

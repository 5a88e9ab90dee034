"""A bounded background load on 127.0.0.1 that counts every failure it sees.

Requests go out at a fixed rate (open loop: a slow answer does not slow the schedule), each on
a fresh connection, so every request is balanced anew by whatever sits in front of the app
(kube-proxy, a compose port, ...). Nothing is ever retried: a failed request is counted with
its reason. Everything is bounded: a fixed set of workers pulls due requests from a small queue
(a request that finds no room, or no free worker before the end, fails as "client overloaded"),
no request starts after `max_seconds`, and `stop()` abandons what is still in flight after a
second, whatever the backend does.
"""

from __future__ import annotations

import http.client
import ipaddress
import queue
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

MAX_SECONDS_CAP = 300.0
MAX_RATE_CAP = 2000.0
MAX_WORKERS = 256
STOP_GRACE = 1.0
OVERLOADED = "client overloaded"
ABANDONED = "abandoned at stop"
HTTP_METHOD = re.compile(r"[A-Z]+")


@dataclass(frozen=True)
class Sample:
    """One scheduled request: when it was due (seconds since the load began: failure windows
    follow this schedule, not the client's delays), how long it took once sent, why it failed
    (None when it answered the expected status), and when it went out (None: never sent)."""

    sent_at: float
    seconds: float
    error: str | None = None
    started_at: float | None = None

    @property
    def ended_at(self) -> float:
        """When the answer (or the error) came, on the same clock as `sent_at`: a request due
        before a disruption but still in flight when it began was hit by it."""
        return (self.sent_at if self.started_at is None else self.started_at) + self.seconds


@dataclass(frozen=True)
class LoadResult:
    """What the load measured; `recovery_seconds` spans the first failure to the first success
    after the last one (0 with no failure, None when no success followed the last failure)."""

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

    @property
    def succeeded(self) -> int:
        return self.sent - self.failed

    def summary(self) -> str:
        reasons = ", ".join(f"{count}x {reason}" for reason, count in sorted(self.reasons.items())) or "none"
        recovery = "never" if self.recovery_seconds is None else f"{self.recovery_seconds:.1f}s"
        return (f"{self.sent} requests in {self.duration:.1f}s at {self.rate:g}/s, {self.failed} failed "
                f"(reasons: {reasons}); p50 {self.p50_ms:.0f} ms, p99 {self.p99_ms:.0f} ms, "
                f"max {self.max_ms:.0f} ms; "
                f"failure window {recovery}")


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (0 for no values): p99 of 100 values is the 99th smallest."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-len(ordered) * pct // 100)))
    return ordered[int(rank) - 1]


def summarize(url: str, rate: float, duration: float, samples: list[Sample], *,
              stopped_by_limit: bool = False) -> LoadResult:
    """Turn raw samples into counts, latency percentiles and the failure window."""
    ordered = sorted(samples, key=lambda sample: sample.sent_at)
    failures = [sample for sample in ordered if sample.error is not None]
    latencies_ms = [sample.seconds * 1000 for sample in ordered if sample.error is None]
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
                      p99_ms_per_second=_p99_per_second(ordered))


def _per_second(samples: list[Sample]) -> dict[int, int]:
    return dict(sorted(Counter(int(sample.sent_at) for sample in samples).items()))


def _p99_per_second(samples: list[Sample]) -> dict[int, float]:
    """Latency over time, so a report can show where in the run the slow answers were."""
    by_second: dict[int, list[float]] = {}
    for sample in samples:
        if sample.error is None:
            by_second.setdefault(int(sample.sent_at), []).append(sample.seconds * 1000)
    return {second: percentile(values, 99) for second, values in sorted(by_second.items())}


def require_loopback(url: str) -> tuple[str, int, str]:
    """(host, port, path) of an http URL on the loopback range; anything else is refused."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme != "http" or not loopback:
        raise ValueError(f"load is only ever sent to http://127.0.0.1 (or another loopback address), not {url!r}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return host, parts.port or 80, path


@dataclass
class _Pending:
    """A scheduled request not yet recorded; `started_at` is set when it goes out."""

    due: float
    started_at: float | None = None


class LoadGenerator:
    """`with LoadGenerator(url) as load: ...; result = load.result` — or start()/stop()."""

    def __init__(self, url: str, *, rate: float = 20.0, max_seconds: float = 60.0, timeout: float = 5.0,
                 expect_status: int = 200, workers: int = 16, method: str = "GET") -> None:
        if not 0 < rate <= MAX_RATE_CAP:
            raise ValueError(f"rate must be in (0, {MAX_RATE_CAP:g}] requests/s, not {rate}")
        if not 0 < max_seconds <= MAX_SECONDS_CAP:
            raise ValueError(f"max_seconds must be in (0, {MAX_SECONDS_CAP:g}], not {max_seconds}")
        if not 1 <= workers <= MAX_WORKERS:
            raise ValueError(f"workers must be in [1, {MAX_WORKERS}], not {workers}")
        if not HTTP_METHOD.fullmatch(method.upper()):
            raise ValueError(f"method must be an HTTP method such as GET or HEAD, not {method!r}")
        self._host, self._port, self._path = require_loopback(url)
        self.url, self.rate, self.max_seconds, self.method = url, rate, max_seconds, method.upper()
        self.timeout, self.expect_status, self.workers = timeout, expect_status, workers
        self._queue: queue.Queue[int] = queue.Queue(maxsize=workers * 2)
        self._stop = threading.Event()
        self._scheduled_all = threading.Event()
        self._lock = threading.Condition()
        self._pending: dict[int, _Pending] = {}
        self._samples: list[Sample] = []
        self._threads: list[threading.Thread] = []
        self._started = 0.0
        self._stopped_by_limit = False
        self.result: LoadResult | None = None

    def start(self) -> LoadGenerator:
        if self._threads:
            raise RuntimeError("this load generator has already been started")
        self._started = time.monotonic()
        self._threads = [_daemon(self._schedule, "scheduler")]
        self._threads += [_daemon(self._work, f"worker-{number}") for number in range(self.workers)]
        for thread in self._threads:
            thread.start()
        return self

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def samples(self) -> list[Sample]:
        """Every request recorded so far, in schedule order."""
        with self._lock:
            return sorted(self._samples, key=lambda sample: sample.sent_at)

    def snapshot(self) -> LoadResult:
        """The counts so far, while the load goes on."""
        return summarize(self.url, self.rate, self.elapsed(), self.samples())

    def stop(self) -> LoadResult:
        """Stop sending; wait at most `STOP_GRACE` for requests in flight, then count them as
        abandoned (a hanging backend cannot hold the run); idempotent."""
        if self.result is not None:
            return self.result
        self._stop.set()
        if self._threads:
            self._threads[0].join(timeout=STOP_GRACE)
        self._drain_queue()
        with self._lock:
            self._lock.wait_for(lambda: not self._pending, timeout=STOP_GRACE)
            self._abandon_pending()
            samples = list(self._samples)
        self.result = summarize(self.url, self.rate, self.elapsed(), samples,
                                stopped_by_limit=self._stopped_by_limit)
        return self.result

    def __enter__(self) -> LoadGenerator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _schedule(self) -> None:
        """Request n is due at start + n/rate; the schedule ends at max_seconds or on stop()."""
        number = 0
        try:
            while True:
                due = number / self.rate
                if due >= self.max_seconds:
                    self._stopped_by_limit = True
                    return
                if self._stop.wait(max(0.0, due - self.elapsed())):
                    return
                self._enqueue(number, due)
                number += 1
        finally:
            self._scheduled_all.set()

    def _enqueue(self, number: int, due: float) -> None:
        """Hand a due request to the workers; with no room in the queue it fails right away."""
        with self._lock:
            self._pending[number] = _Pending(due)
        try:
            self._queue.put_nowait(number)
        except queue.Full:
            self._record(number, OVERLOADED)

    def _work(self) -> None:
        while True:
            try:
                number = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set() or (self._scheduled_all.is_set() and self._queue.empty()):
                    return
                continue
            started = self._claim(number)
            if started is not None:
                error = self._send()
                self._record(number, error, self.elapsed() - started)

    def _claim(self, number: int) -> float | None:
        """Mark request `number` as going out now; None (and counted as overloaded) when it is
        too late: the load was stopped or max_seconds has passed."""
        with self._lock:
            pending = self._pending.get(number)
            if pending is None:
                return None
            now = self.elapsed()
            if self._stop.is_set() or now >= self.max_seconds:
                self._record(number, OVERLOADED)
                return None
            pending.started_at = now
            return now

    def _record(self, number: int, error: str | None, seconds: float = 0.0) -> None:
        """Count request `number` once; a request already abandoned by stop() is ignored."""
        with self._lock:
            pending = self._pending.pop(number, None)
            if pending is None:
                return
            self._samples.append(Sample(pending.due, seconds, error, pending.started_at))
            self._lock.notify_all()

    def _drain_queue(self) -> None:
        """Due requests that no worker picked up before stop() were never sent."""
        while True:
            try:
                self._record(self._queue.get_nowait(), OVERLOADED)
            except queue.Empty:
                return

    def _abandon_pending(self) -> None:
        """Count what is still in flight as failed (call with the lock held)."""
        now = self.elapsed()
        for pending in self._pending.values():
            started = pending.started_at
            error, seconds = (OVERLOADED, 0.0) if started is None else (ABANDONED, now - started)
            self._samples.append(Sample(pending.due, seconds, error, started))
        self._pending.clear()

    def _send(self) -> str | None:
        """One request on a new connection, no body; the reason it failed, or None."""
        conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        try:
            conn.request(self.method, self._path, headers={"Connection": "close"})
            response = conn.getresponse()
            response.read()
        except TimeoutError:
            return "timeout"
        except (OSError, http.client.HTTPException) as err:
            return type(err).__name__
        finally:
            conn.close()
        if response.status != self.expect_status:
            return f"HTTP {response.status}"
        return None


def _daemon(target: Callable[[], None], name: str) -> threading.Thread:
    """Load threads never keep the process alive: a hanging backend cannot block an exit."""
    return threading.Thread(target=target, name=f"stageproof-load-{name}", daemon=True)

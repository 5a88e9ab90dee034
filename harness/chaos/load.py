"""A bounded background load on 127.0.0.1 that counts every failure it sees.

Requests go out at a fixed rate (open loop: a slow answer does not slow the schedule), each on
a fresh connection, so every request is balanced anew by whatever sits in front of the app
(kube-proxy, a compose port, ...). Nothing is ever retried: a failed request is counted with
its reason. The load stops by itself after `max_seconds`, whatever its caller does.
"""

from __future__ import annotations

import http.client
import ipaddress
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit

MAX_SECONDS_CAP = 300.0
MAX_RATE_CAP = 200.0


@dataclass(frozen=True)
class Sample:
    """One request: when it was sent (seconds since the load began), how long it took, and
    why it failed (None when it answered the expected status)."""

    sent_at: float
    seconds: float
    error: str | None = None


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
    recovery_seconds: float | None = 0.0
    stopped_by_limit: bool = False

    @property
    def succeeded(self) -> int:
        return self.sent - self.failed

    def summary(self) -> str:
        reasons = ", ".join(f"{count}x {reason}" for reason, count in sorted(self.reasons.items())) or "none"
        recovery = "never" if self.recovery_seconds is None else f"{self.recovery_seconds:.1f}s"
        return (f"{self.sent} requests in {self.duration:.1f}s at {self.rate:g}/s, {self.failed} failed "
                f"(reasons: {reasons}); p50 {self.p50_ms:.0f} ms, p99 {self.p99_ms:.0f} ms; "
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
    recovery: float | None = 0.0
    if failures:
        first, last = failures[0].sent_at, failures[-1].sent_at
        healed = next((sample.sent_at for sample in ordered if sample.error is None and sample.sent_at > last), None)
        recovery = None if healed is None else healed - first
    return LoadResult(url=url, rate=rate, duration=duration, sent=len(ordered), failed=len(failures),
                      reasons=dict(Counter(str(sample.error) for sample in failures)),
                      p50_ms=percentile(latencies_ms, 50), p99_ms=percentile(latencies_ms, 99),
                      max_ms=max(latencies_ms, default=0.0), first_failure_at=first, last_failure_at=last,
                      recovery_seconds=recovery, stopped_by_limit=stopped_by_limit)


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


class LoadGenerator:
    """`with LoadGenerator(url) as load: ...; result = load.result` — or start()/stop()."""

    def __init__(self, url: str, *, rate: float = 20.0, max_seconds: float = 60.0, timeout: float = 5.0,
                 expect_status: int = 200, workers: int = 16) -> None:
        if not 0 < rate <= MAX_RATE_CAP:
            raise ValueError(f"rate must be in (0, {MAX_RATE_CAP:g}] requests/s, not {rate}")
        if not 0 < max_seconds <= MAX_SECONDS_CAP:
            raise ValueError(f"max_seconds must be in (0, {MAX_SECONDS_CAP:g}], not {max_seconds}")
        self._host, self._port, self._path = require_loopback(url)
        self.url, self.rate, self.max_seconds = url, rate, max_seconds
        self.timeout, self.expect_status = timeout, expect_status
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stageproof-load")
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._samples: list[Sample] = []
        self._scheduler: threading.Thread | None = None
        self._started = 0.0
        self._stopped_by_limit = False
        self.result: LoadResult | None = None

    def start(self) -> LoadGenerator:
        if self._scheduler is not None:
            raise RuntimeError("this load generator has already been started")
        self._started = time.monotonic()
        self._scheduler = threading.Thread(target=self._schedule, name="stageproof-load-scheduler", daemon=True)
        self._scheduler.start()
        return self

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def snapshot(self) -> LoadResult:
        """The counts so far, while the load goes on."""
        with self._lock:
            samples = list(self._samples)
        return summarize(self.url, self.rate, self.elapsed(), samples)

    def stop(self) -> LoadResult:
        """Stop sending, let in-flight requests finish (each bounded by `timeout`); idempotent."""
        if self.result is not None:
            return self.result
        self._stop.set()
        if self._scheduler is not None:
            self._scheduler.join()
        self._pool.shutdown(wait=True)
        with self._lock:
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
        while not self._stop.is_set():
            due = number / self.rate
            if due >= self.max_seconds:
                self._stopped_by_limit = True
                return
            if self._stop.wait(max(0.0, due - self.elapsed())):
                return
            self._pool.submit(self._one_request)
            number += 1

    def _one_request(self) -> None:
        sent_at = self.elapsed()
        error = self._send()
        sample = Sample(sent_at, self.elapsed() - sent_at, error)
        with self._lock:
            self._samples.append(sample)

    def _send(self) -> str | None:
        """One GET on a new connection; the reason it failed, or None."""
        conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        try:
            conn.request("GET", self._path, headers={"Connection": "close"})
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

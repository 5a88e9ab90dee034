"""A bounded background load on 127.0.0.1 that counts every failure it sees.

Requests go out at a fixed rate (open loop: a slow or hanging answer never delays the requests due
after it), each on a fresh connection, so every request is balanced anew by whatever sits in front
of the app (kube-proxy, a compose port, ...). Nothing is ever retried: a failed request is counted
with its reason. The client is asyncio in a thread of its own with its own event loop (the checks
stay synchronous): each due request is a task, so concurrency grows with what is in flight, up to
`max_in_flight` (a request due at the cap is counted "never sent"). By default the cap is what the
schedule holds when every request hangs for its whole timeout (rate x timeout, with a quarter more),
so a hanging backend never starves the client. Everything is bounded: a
per-request timeout and a shorter connect timeout, no request is due after `max_seconds` (one the
client sends late goes out late, its lateness recorded, rather than being dropped), and
`stop()` abandons what is still in flight after `STOP_GRACE`, whatever the backend does.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import resource
import threading
import time

from harness.load.body import BodyCheck, Mark
from harness.load.client import Exchange, Request, require_loopback
from harness.load.collector import held_back
from harness.load.samples import ABANDONED, OVERLOADED, ClientBounds, LoadResult, Sample, percentile, summarize

__all__ = ["ABANDONED", "MAX_RATE_CAP", "OVERLOADED", "LoadGenerator", "LoadResult", "Sample", "percentile",
           "require_loopback", "summarize"]

MAX_SECONDS_CAP = 300.0
MAX_RATE_CAP = 2000.0
MAX_TIMEOUT = 60.0
#: the default cap on requests in flight is rate x timeout (what a backend that hangs every request
#: for its whole timeout keeps open, one socket each) times this, and at least MIN_IN_FLIGHT (the
#: former fixed default: room for a client made late by a busy machine at the chaos checks' rates)
IN_FLIGHT_HEADROOM = 1.25
MIN_IN_FLIGHT = 2000
MAX_IN_FLIGHT_CAP = 20000
DEFAULT_CONNECT_TIMEOUT = 2.0
STOP_GRACE = 1.0
SPARE_DESCRIPTORS = 256  # for everything else the process has open (the checks, the stage, logs)
HTTP_METHOD = re.compile(r"[A-Z]+")


class LoadGenerator:
    """`with LoadGenerator(url) as load: ...; result = load.result` — or start()/stop()."""

    def __init__(self, url: str, *, rate: float = 20.0, max_seconds: float = 60.0, timeout: float = 5.0,
                 connect_timeout: float | None = None, expect_status: int = 200, method: str = "GET",
                 max_in_flight: int | None = None, body: BodyCheck | None = None,
                 mark: Mark | None = None) -> None:
        connect = min(DEFAULT_CONNECT_TIMEOUT, timeout) if connect_timeout is None else connect_timeout
        if max_in_flight is None:
            max_in_flight = hanging_in_flight(rate, timeout)
        _validate(rate=rate, max_seconds=max_seconds, timeout=timeout, connect_timeout=connect,
                  max_in_flight=max_in_flight, method=method)
        self.request = Request(url, method.upper(), expect_status, timeout, connect, body, mark)
        self._exchange = Exchange(self.request)  # refuses a URL off the loopback range
        self.url, self.rate, self.max_seconds, self.max_in_flight = url, rate, max_seconds, max_in_flight
        self._lock = threading.Lock()
        self._samples: list[Sample] = []
        #: number -> (due, went out: None until its task runs), on the load's clock
        self._in_flight: dict[int, tuple[float, float | None]] = {}
        self._peak = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._halted: asyncio.Event | None = None
        self._ready = threading.Event()
        self._scheduled = threading.Event()
        self._crash: BaseException | None = None
        self._started = 0.0
        self._stopped_by_limit = False
        self._grace = STOP_GRACE
        self.result: LoadResult | None = None

    @property
    def mark(self) -> Mark | None:
        return self.request.mark

    def start(self) -> LoadGenerator:
        if self._thread is not None:
            raise RuntimeError("this load generator has already been started")
        _ensure_descriptors(self.max_in_flight + SPARE_DESCRIPTORS)
        self._started = time.monotonic()
        # a daemon: a hanging backend can never keep the process alive
        self._thread = threading.Thread(target=self._run, name="stageproof-load", daemon=True)
        self._thread.start()
        if not self._ready.wait(5.0):
            raise RuntimeError(f"the load client's event loop did not start: {self._crash!r}")
        return self

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def samples(self) -> list[Sample]:
        """Every request recorded so far (answered, failed or never sent), in schedule order."""
        with self._lock:
            return sorted(self._samples, key=lambda sample: sample.sent_at)

    def sent_ids(self) -> list[str]:
        """The marker ids of the requests that went out (answered, failed or still in flight), in
        schedule order: what a log check should find, and nothing else."""
        if self.mark is None:
            raise RuntimeError("this load carries no marker: pass mark=Mark()")
        with self._lock:
            numbers = {s.number for s in self._samples if s.started_at is not None and s.number is not None}
            numbers.update(number for number, (_, started) in self._in_flight.items() if started is not None)
        return [self.mark.id(number) for number in sorted(numbers)]

    def wait_scheduled(self, timeout: float) -> bool:
        """Block until every request due before `max_seconds` has gone out (or was counted never
        sent), at most `timeout` seconds: a busy machine makes the client late, not shorter."""
        return self._scheduled.wait(timeout)

    def snapshot(self) -> LoadResult:
        """The counts so far, while the load goes on."""
        return summarize(self.url, self.rate, self.elapsed(), self.samples(), bounds=self._bounds())

    def stop(self, *, grace: float = STOP_GRACE) -> LoadResult:
        """Stop sending; wait at most `grace` seconds for requests in flight (at most one request
        timeout), then count them as abandoned (a hanging backend cannot hold the run); idempotent."""
        if self.result is not None:
            return self.result
        self._grace = min(max(0.0, grace), self.request.timeout)
        loop, halted, thread = self._loop, self._halted, self._thread
        if loop is not None and halted is not None and thread is not None and thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: the load had ended by itself
                loop.call_soon_threadsafe(halted.set)
            thread.join(self._grace + 1.0)
        if self._crash is not None:
            raise RuntimeError(f"the load client failed: {self._crash!r}") from self._crash
        with self._lock:
            self._abandon_in_flight()  # only if the loop did not end in time (it ends its own first)
            samples = list(self._samples)
        self.result = summarize(self.url, self.rate, self.elapsed(), samples, stopped_by_limit=self._stopped_by_limit,
                                bounds=self._bounds())
        return self.result

    def __enter__(self) -> LoadGenerator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _bounds(self) -> ClientBounds:
        return ClientBounds(self.request.timeout, self.request.connect_timeout, self.max_in_flight, self._peak)

    def _run(self) -> None:
        try:
            with held_back():
                asyncio.run(self._main())
        except BaseException as err:  # reported by stop(): a load that died must not read as a clean run
            self._crash = err

    async def _main(self) -> None:
        """Schedule until max_seconds or stop(); then let what is in flight end (each request is
        bounded by its timeout), or after stop() give it the grace stop() was given and abandon the rest."""
        self._loop, self._halted = asyncio.get_running_loop(), asyncio.Event()
        tasks: set[asyncio.Task[None]] = set()
        idle = asyncio.Event()
        self._ready.set()
        scheduler = asyncio.create_task(self._schedule(tasks, idle))
        halted = asyncio.create_task(self._halted.wait())
        await asyncio.wait({scheduler, halted}, return_when=asyncio.FIRST_COMPLETED)
        if not halted.done():
            idle_wait = asyncio.create_task(idle.wait())
            await asyncio.wait({idle_wait, halted}, return_when=asyncio.FIRST_COMPLETED)
            idle_wait.cancel()
        scheduler.cancel()
        if tasks:
            await asyncio.wait(set(tasks), timeout=self._grace)
        for task in (*tasks, halted):
            task.cancel()
        await asyncio.gather(scheduler, halted, *tasks, return_exceptions=True)

    async def _schedule(self, tasks: set[asyncio.Task[None]], idle: asyncio.Event) -> None:
        """Request n is due at start + n/rate and starts then, whatever the earlier ones do."""
        idle.set()
        number = 0
        while (due := number / self.rate) < self.max_seconds:
            await asyncio.sleep(max(0.0, due - self.elapsed()))
            if len(tasks) >= self.max_in_flight:
                with self._lock:
                    self._samples.append(Sample(due, 0.0, OVERLOADED, None, number))
            else:
                with self._lock:  # counted from now on, even if stop() cancels it before it runs
                    self._in_flight[number] = (due, None)
                task = asyncio.create_task(self._one(number, due))
                tasks.add(task)
                idle.clear()
                self._peak = max(self._peak, len(tasks))
                task.add_done_callback(lambda done: _forget(done, tasks, idle))
            number += 1
        self._stopped_by_limit = True
        self._scheduled.set()

    async def _one(self, number: int, due: float) -> None:
        with self._lock:
            self._in_flight[number] = (due, self.elapsed())
        try:
            error = await self._exchange.send(number)
        except asyncio.CancelledError:
            self._finish(number, ABANDONED)
            raise
        self._finish(number, error)

    def _finish(self, number: int, error: str | None) -> None:
        """Count request `number` once; one already abandoned by stop() is ignored."""
        with self._lock:
            due, started = self._in_flight.pop(number, (0.0, None))
            if started is not None:
                self._samples.append(Sample(due, self.elapsed() - started, error, started, number))

    def _abandon_in_flight(self) -> None:
        """Count what is still in flight as abandoned, and a task stop() cancelled before it ran as
        never sent (call with the lock held)."""
        now = self.elapsed()
        for number, (due, started) in self._in_flight.items():
            if started is None:
                self._samples.append(Sample(due, 0.0, OVERLOADED, None, number))
            else:
                self._samples.append(Sample(due, now - started, ABANDONED, started, number))
        self._in_flight.clear()


def _forget(task: asyncio.Task[None], tasks: set[asyncio.Task[None]], idle: asyncio.Event) -> None:
    tasks.discard(task)
    if not tasks:
        idle.set()


def hanging_in_flight(rate: float, timeout: float) -> int:
    """The default cap: what the open-loop schedule holds at once when the backend answers nothing
    (each request open for its whole timeout), with headroom, within what this process may open."""
    wanted = max(MIN_IN_FLIGHT, math.ceil(rate * timeout * IN_FLIGHT_HEADROOM))
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    allowed = MAX_IN_FLIGHT_CAP if hard == resource.RLIM_INFINITY else hard - SPARE_DESCRIPTORS
    return max(1, min(wanted, MAX_IN_FLIGHT_CAP, allowed))


def _ensure_descriptors(needed: int) -> None:
    """One socket per request in flight: raise the soft limit on open files to `needed` when the
    hard limit allows, else refuse (an EMFILE mid-run would read as the app's failures)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise ValueError(f"max_in_flight needs {needed} open files, and this process may open only {hard} "
                             "(ulimit -Hn): lower max_in_flight or raise the limit")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def _validate(*, rate: float, max_seconds: float, timeout: float, connect_timeout: float, max_in_flight: int,
              method: str) -> None:
    """Every bound of the load, refused with the name of the one that is wrong."""
    if not 0 < rate <= MAX_RATE_CAP:
        raise ValueError(f"rate must be in (0, {MAX_RATE_CAP:g}] requests/s, not {rate}")
    if not 0 < max_seconds <= MAX_SECONDS_CAP:
        raise ValueError(f"max_seconds must be in (0, {MAX_SECONDS_CAP:g}], not {max_seconds}")
    if not 0 < timeout <= MAX_TIMEOUT:
        raise ValueError(f"timeout must be in (0, {MAX_TIMEOUT:g}] seconds, not {timeout}")
    if not 0 < connect_timeout <= timeout:
        raise ValueError(f"connect_timeout must be in (0, timeout = {timeout:g}] seconds, not {connect_timeout}")
    if not 1 <= max_in_flight <= MAX_IN_FLIGHT_CAP:
        raise ValueError(f"max_in_flight must be in [1, {MAX_IN_FLIGHT_CAP}], not {max_in_flight}")
    if not HTTP_METHOD.fullmatch(method.upper()):
        raise ValueError(f"method must be an HTTP method such as GET or HEAD, not {method!r}")

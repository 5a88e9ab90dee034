"""The load generator and the disruption measurement, against a tiny HTTP server on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness.core.net import free_port
from harness.load import LoadGenerator, measure_disruption
from harness.load.disruption import DisruptionResult
from harness.load.generator import ABANDONED, MAX_RATE_CAP, OVERLOADED, Sample, percentile, require_loopback, summarize


class Backend(ThreadingHTTPServer):
    """Answers `status` (200 unless a test changes it) and counts every request it received."""

    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.status = 200
        self.hits = 0
        self.methods: list[str] = []
        self.hang_seconds = 0.0
        self.release = threading.Event()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/users"


class Handler(BaseHTTPRequestHandler):
    server: Backend

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.hits += 1
            self.server.methods.append(self.command)
            status = self.server.status
        if self.server.hang_seconds:
            self.server.release.wait(self.server.hang_seconds)
        body = b"[]"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def backend() -> Iterator[Backend]:
    server = Backend()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


def test_a_healthy_backend_gets_rate_times_duration_requests_and_no_failure(backend: Backend) -> None:
    with LoadGenerator(backend.url, rate=40, max_seconds=0.5) as load:
        threading.Event().wait(0.8)
    result = load.result
    assert result is not None
    assert result.sent == 20 and result.failed == 0 and result.stopped_by_limit
    assert backend.hits == 20
    assert result.recovery_seconds == 0.0 and result.p99_ms > 0


def test_every_failed_request_is_counted_once_with_its_reason(backend: Backend) -> None:
    backend.status = 503
    with LoadGenerator(backend.url, rate=50, max_seconds=0.2) as load:
        threading.Event().wait(0.4)
    result = load.result
    assert result is not None
    assert result.failed == result.sent == backend.hits == 10, "a failed request was retried or lost"
    assert result.reasons == {"HTTP 503": 10}
    assert result.recovery_seconds is None, "no success followed the failures"


def test_a_closed_port_is_a_connection_failure() -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    with LoadGenerator(url, rate=20, max_seconds=0.2) as load:
        threading.Event().wait(0.4)
    assert load.result is not None
    assert load.result.failed == load.result.sent == 4
    assert load.result.reasons == {"ConnectionRefusedError": 4}


def test_the_load_stops_by_itself_after_max_seconds(backend: Backend) -> None:
    load = LoadGenerator(backend.url, rate=50, max_seconds=0.2).start()
    threading.Event().wait(0.6)
    sent = load.snapshot().sent
    threading.Event().wait(0.3)
    assert load.snapshot().sent == sent == 10
    assert load.stop().stopped_by_limit


@pytest.mark.parametrize("url", ["http://10.0.0.1/", "http://example.com/", "https://127.0.0.1/", "http://172.18.0.2/"])
def test_traffic_never_leaves_the_loopback_range(url: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        LoadGenerator(url)


def test_loopback_urls_are_accepted() -> None:
    assert require_loopback("http://127.0.0.1:8080/users?x=1") == ("127.0.0.1", 8080, "/users?x=1")
    assert require_loopback("http://localhost/")[0] == "localhost"


@pytest.mark.parametrize(("rate", "seconds"), [(0, 1), (MAX_RATE_CAP * 2, 1), (1, 0), (1, 3600)])
def test_unbounded_loads_are_refused(rate: float, seconds: float) -> None:
    with pytest.raises(ValueError):
        LoadGenerator("http://127.0.0.1:1/", rate=rate, max_seconds=seconds)


def test_failure_window_runs_from_first_failure_to_first_success_after_the_last() -> None:
    samples = [Sample(0.0, 0.01), Sample(1.0, 0.01, "HTTP 503"), Sample(1.5, 0.02),
               Sample(2.0, 0.01, "timeout"), Sample(2.5, 0.03), Sample(3.0, 0.01)]
    result = summarize("http://127.0.0.1/", 2, 3.5, samples)
    assert (result.sent, result.failed) == (6, 2)
    assert result.reasons == {"HTTP 503": 1, "timeout": 1}
    assert result.recovery_seconds == pytest.approx(1.5)
    assert result.max_ms == pytest.approx(30)


def test_percentile_is_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 99) == 99.0
    assert percentile(values, 50) == 50.0
    assert percentile([5.0], 99) == 5.0
    assert percentile([], 99) == 0.0


def test_a_clean_disruption_reports_zero_failures(backend: Backend) -> None:
    result = measure_disruption(backend.url, "noop", lambda: None, rate=50, max_seconds=5, warmup=0.2, settle=0.2)
    assert result.problems() == []
    assert result.load.sent >= 10 and result.covered
    assert "noop:" in result.summary()


def test_failures_during_a_disruption_are_reported_with_their_window(backend: Backend) -> None:
    def outage() -> None:
        backend.status = 503
        threading.Event().wait(0.3)

    def heal() -> None:
        backend.status = 200

    result = measure_disruption(backend.url, "outage", outage, recovered=heal, rate=50, max_seconds=5,
                                warmup=0.2, settle=0.3)
    assert result.load.failed >= 10
    assert result.load.reasons.keys() == {"HTTP 503"}
    assert result.load.recovery_seconds is not None and 0.2 < result.load.recovery_seconds < 1.0
    assert any("failed" in problem for problem in result.problems())


def test_a_load_that_ends_before_recovery_is_not_a_pass(backend: Backend) -> None:
    result = measure_disruption(backend.url, "slow", lambda: threading.Event().wait(0.5), rate=20,
                                max_seconds=0.4, warmup=0.1, settle=0.0)
    assert not result.covered
    assert any("max_seconds" in problem for problem in result.problems())


def test_a_hanging_backend_cannot_stretch_the_load_or_hold_stop(backend: Backend) -> None:
    backend.hang_seconds = 10.0
    load = LoadGenerator(backend.url, rate=20, max_seconds=1, max_in_flight=4).start()
    assert load.wait_scheduled(10)
    began = time.monotonic()
    result = load.stop()
    assert time.monotonic() - began < 2.0, "stop() waited for a hanging backend"
    samples = load.samples()
    assert max(sample.sent_at for sample in samples) < 1.0
    assert all(sample.started_at < 1.0 for sample in samples if sample.started_at is not None)
    started = [sample for sample in samples if sample.started_at is not None]
    assert result.sent == 20 and result.failed == 20, "every scheduled request is counted once"
    assert backend.hits == len(started) == 4, "only the 4 requests the cap allowed reached the backend"
    assert result.reasons == {ABANDONED: 4, OVERLOADED: 16}
    assert result.first_failure_at == 0.0 and result.last_failure_at == pytest.approx(0.95)
    assert result.sent_per_second == {0: 20} and result.failures_per_second == {0: 20}


def test_at_the_in_flight_cap_requests_are_counted_never_sent_instead_of_piling_up(backend: Backend) -> None:
    backend.hang_seconds = 10.0
    load = LoadGenerator(backend.url, rate=100, max_seconds=0.5, max_in_flight=1).start()
    assert load.wait_scheduled(10)
    snapshot = load.snapshot()
    assert snapshot.reasons.get(OVERLOADED, 0) >= 40, "requests were queued without bound"
    result = load.stop()
    assert result.sent == 50 and backend.hits == 1
    assert result.reasons == {ABANDONED: 1, OVERLOADED: 49}


def test_the_load_sends_the_method_it_was_given(backend: Backend) -> None:
    with LoadGenerator(backend.url, method="HEAD", rate=40, max_seconds=0.25) as load:
        threading.Event().wait(0.5)
    assert load.result is not None and load.result.failed == 0 and load.result.sent == 10
    assert backend.methods == ["HEAD"] * 10


def test_an_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match="HTTP method"):
        LoadGenerator("http://127.0.0.1:1/", method="GET /admin")


def test_a_single_request_never_sent_fails_a_zero_failure_claim() -> None:
    """The threaded client let up to 0.5% go unsent; an asyncio client that keeps its schedule has no
    excuse: a request that never went out is a disruption nobody measured."""

    def result(dropped: int, app_failures: int = 0) -> DisruptionResult:
        samples = [Sample(n / 200, 0.01, None, n / 200, n) for n in range(2000)]
        samples[500:500 + dropped] = [Sample(s.sent_at, 0.0, OVERLOADED, None, s.number)
                                      for s in samples[500:500 + dropped]]
        samples[600:600 + app_failures] = [Sample(s.sent_at, 0.01, "HTTP 502", s.sent_at, s.number)
                                           for s in samples[600:600 + app_failures]]
        load = summarize("http://127.0.0.1:1/", 200, 10, samples)
        return DisruptionResult("scale", load, disrupted_at=2.0, action_seconds=1, recovered_seconds=2, covered=True,
                                samples=tuple(samples))

    assert result(0).problems() == []
    assert any("never sent" in problem and "inconclusive" in problem for problem in result(1).problems())
    assert any("1 of 2000 requests failed" in problem for problem in result(0, app_failures=1).problems())


def test_a_request_in_flight_when_the_disruption_began_is_not_a_failure_before_it() -> None:
    def disrupted_at_two(*failures: Sample) -> DisruptionResult:
        ok = [Sample(n / 10, 0.01) for n in range(40)]
        load = summarize("http://127.0.0.1:1/", 10, 4.0, ok + list(failures))
        return DisruptionResult("kill", load, disrupted_at=2.0, action_seconds=0.1, recovered_seconds=1, covered=True,
                                samples=(*ok, *failures))

    in_flight = disrupted_at_two(Sample(1.99, 0.5, "HTTP 503", started_at=1.995))
    assert in_flight.load.first_failure_at == 1.99 and in_flight.load.first_failure_ended_at == pytest.approx(2.495)
    assert not in_flight.failed_before_the_disruption()
    answered_before = disrupted_at_two(Sample(1.5, 0.2, "HTTP 503", started_at=1.5))
    assert answered_before.failed_before_the_disruption()
    assert any("before the disruption" in problem for problem in answered_before.problems())
    never_sent = disrupted_at_two(Sample(1.9, 0.0, "client overloaded"))
    assert never_sent.failed_before_the_disruption(), "a request dropped before the disruption ended before it"


def test_served_between_counts_successes_by_their_own_due_time_not_whole_seconds() -> None:
    samples = [Sample(0.5, 0.01), Sample(1.2, 0.01, "timeout"), Sample(1.7, 0.01), Sample(2.1, 0.01, "timeout"),
               Sample(2.6, 0.01, OVERLOADED), Sample(3.4, 0.01)]
    result = DisruptionResult("node lost", summarize("http://127.0.0.1/", 2, 4, samples), disrupted_at=1.1,
                              action_seconds=0.5, recovered_seconds=1.5, covered=True, samples=tuple(samples))
    assert result.served_between(1.1, 2.6) == 1  # the one due at 1.7
    assert result.served_between(1.8, 2.6) == 0  # whole seconds counted 1.7 as "in second 1": it was before 1.8
    assert result.served_between(2.6, 4.0) == 1
    assert result.served_between(5, 9) == 0


def test_the_load_runs_a_drain_and_a_tail_past_recovery() -> None:
    """Today `settle` (3 s) is shorter than the drain (one request timeout, 5 s): a failure after
    the window could never be seen. The load must run drain + 3 s past recovery."""
    server = Backend()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = measure_disruption(server.url, "noop", lambda: None, rate=20, max_seconds=20, warmup=0.2,
                                    timeout=1.0)
    finally:
        server.shutdown()
        server.server_close()
    recovered_at = result.disrupted_at + result.recovered_seconds
    assert result.load.duration >= recovered_at + 1.0 + 3.0


def test_a_failure_after_the_drain_is_seen(backend: Backend) -> None:
    def recovered() -> None:
        def fail() -> None:
            backend.status = 503
        threading.Timer(3.5, fail).start()  # after the drain (1 s) and after today's settle (3 s)

    result = measure_disruption(backend.url, "late", lambda: None, recovered=recovered, rate=20, max_seconds=20,
                                warmup=0.2, timeout=1.0)
    assert result.load.failed > 0, "the late failure was not seen: the load ended too soon"


def test_a_marked_disruption_knows_the_ids_it_sent_and_reports_its_token(backend: Backend) -> None:
    import json

    from harness.load import Mark

    mark = Mark(token="run1")
    result = measure_disruption(backend.url, "noop", lambda: None, rate=20, max_seconds=5, warmup=0.1, settle=0.2,
                                mark=mark)
    assert result.sent_ids() == [f"run1-{n}" for n in range(result.load.sent)]
    assert result.figures()["mark"] == {"where": "query", "name": "stageproof", "token": "run1"}
    json.dumps(result.figures())
    unmarked = measure_disruption(backend.url, "noop", lambda: None, rate=20, max_seconds=5, warmup=0.1, settle=0.1)
    assert "mark" not in unmarked.figures()
    with pytest.raises(RuntimeError, match="no marker"):
        unmarked.sent_ids()

"""The readiness check sees the outage even when the database's stop outlasts the window in which a
Service still routes to a pod whose readiness fails (k8s: the probes fail, the pod leaves the
endpoints, and from then on nothing answers)."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from harness.checks import recovery
from harness.core.net import LOOPBACK
from harness.errors import WaitTimeout

WINDOW = 0.6  # seconds /readyz answers 503 after the database goes, before the pod leaves the Service
SLOW_STOP = 1.5  # seconds the stop takes: longer than the window


class Backend:
    """/readyz 200 with the database, 503 for WINDOW s after it went, then no answer at all (the
    connection closed unanswered); /healthz 200 whenever anything answers."""

    def __init__(self) -> None:
        self.down_at: float | None = None

    def answer(self, path: str) -> int | None:
        if self.down_at is None:
            return 200
        if time.monotonic() - self.down_at >= WINDOW:
            return None
        return 503 if path == "/readyz" else 200


class SlowStop:
    """DatabaseControl whose stop() returns only SLOW_STOP s after the database went."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def stop(self) -> None:
        self.backend.down_at = time.monotonic()
        time.sleep(SLOW_STOP)

    def start(self) -> None:
        self.backend.down_at = None


@pytest.fixture
def backend() -> Iterator[tuple[Backend, str]]:
    state = Backend()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = state.answer(self.path)
            if status is None:
                self.close_connection = True  # unanswered: the client sees the connection dropped
                return
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state, f"http://{LOOPBACK}:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_stop_slower_than_the_readiness_window_still_shows_the_503(backend: tuple[Backend, str],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    state, url = backend
    monkeypatch.setattr(recovery, "OUTAGE_TIMEOUT", 4.0)
    said: list[str] = []
    recovery.test_database_outage_is_reported_by_readiness(
        SimpleNamespace(identity=lambda: "pid 1"), SlowStop(state), SimpleNamespace(base_url=url),  # type: ignore[arg-type]
        SimpleNamespace(app=SimpleNamespace(ready_path="/readyz", health_path="/healthz")),  # type: ignore[arg-type]
        lambda text, *figures: said.append(text))
    assert said and "answered 503" in said[0]
    assert state.down_at is None  # started again


def test_no_503_at_all_still_fails(backend: tuple[Backend, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A readiness that never reports the outage (here: no answer from the moment the database goes)."""
    state, url = backend
    monkeypatch.setattr(recovery, "OUTAGE_TIMEOUT", 2.0)
    monkeypatch.setattr(Backend, "answer", lambda self, path: 200 if self.down_at is None else None)
    with pytest.raises(WaitTimeout, match="to report the database outage"):
        recovery.test_database_outage_is_reported_by_readiness(
            SimpleNamespace(identity=lambda: "pid 1"), SlowStop(state), SimpleNamespace(base_url=url),  # type: ignore[arg-type]
            SimpleNamespace(app=SimpleNamespace(ready_path="/readyz", health_path="/healthz")),  # type: ignore[arg-type]
            lambda text, *figures: None)
    assert state.down_at is None  # started again, even so

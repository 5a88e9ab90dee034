"""The log-stream check finds the very request it sent: a start-up banner, or an earlier request to
the same path, no longer satisfies it (both did: any line holding the load path passed)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.checks import containers
from harness.config import load_settings
from harness.errors import WaitTimeout
from harness.stage import Deployment

ROOT = Path(__file__).resolve().parents[2]
GUESTBOOK = load_settings(ROOT / "examples/guestbook/stageproof.toml", env={})


class Ok(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self) -> None:
        Ok.seen.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def app() -> Iterator[Deployment]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield Deployment("docker", f"http://127.0.0.1:{server.server_address[1]}", "r1")
    finally:
        server.shutdown()


class Logs:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def process_users(self) -> list[str]:
        return ["1000 1 python app.py"]

    def log_text(self) -> str:
        return "\n".join(self.lines + [f'127.0.0.1 - - "GET {path} HTTP/1.1" 200 -' for path in self.echo])

    echo: list[str] = []


def test_a_banner_with_the_load_path_does_not_count(app: Deployment, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(containers, "wait_until", lambda probe, **kw: probe())  # one look, no waiting
    logs = Logs([" * Running on http://0.0.0.0:5000/ (Press CTRL+C to quit)", '"GET / HTTP/1.1" 200 -'])
    with pytest.raises(containers.NotYet, match="no line for GET /"):
        containers.test_requests_appear_in_the_log_stream(logs, app, GUESTBOOK)  # type: ignore[arg-type]


def test_the_request_the_check_sent_is_found(app: Deployment) -> None:
    logs = Logs([" * Running on http://0.0.0.0:5000/"])
    logs.echo = Ok.seen  # the app logs what it received, as its access log does
    containers.test_requests_appear_in_the_log_stream(logs, app, GUESTBOOK)  # type: ignore[arg-type]
    assert any("stageproof-log-" in path for path in Ok.seen)


def test_a_missing_line_is_a_timeout_naming_the_request(app: Deployment, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(containers, "LOG_LINE_TIMEOUT", 1.0)  # the same wait, not the stage's 10 s of it
    with pytest.raises(WaitTimeout, match=r"the request GET /\?stageproof-log-"):
        containers.test_requests_appear_in_the_log_stream(Logs(["nothing"]), app, GUESTBOOK)  # type: ignore[arg-type]

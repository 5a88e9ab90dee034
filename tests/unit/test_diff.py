"""The cross-stage diff: what it masks, what it reports, what it sends, and its saved form."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
import requests

from harness.checks.diff_check import recording_path
from harness.cli import main
from harness.config import load_settings
from harness.contract.cases import load_cases
from harness.contract.diff import (
    MASKED,
    VOLATILE,
    Answer,
    Normaliser,
    Recording,
    RecordingUnreadable,
    build_sequence,
    compare,
    normalise,
    record,
    stage_unique,
)
from harness.contract.runner import ContractClient
from harness.stage import Deployment

ROOT = Path(__file__).resolve().parents[2]
OPENAPI = {"openapi": "3.0.3", "paths": {
    "/users": {"get": {}, "post": {}},
    "/users/{id}": {"get": {}},
    "/healthz": {"get": {}},
    "/admin/report": {"get": {"security": [{"bearer": []}]}},
    "/login": {"post": {}},
}}


def answer(path: str = "/users", status: int = 200, body: Any = None, *, is_json: bool = True,
           headers: dict[str, Any] | None = None) -> Answer:
    return Answer("GET", path, "none", status, headers or {"Content-Type": "application/json"},
                  [] if body is None else body, is_json)


def test_normalise_masks_ignored_fields_at_any_depth_and_names_the_run_values() -> None:
    body = {"id": 7, "owner": {"id": 3, "email": "carol-ab12cd340@example.com"},
            "items": [{"id": 1, "tag": "r-1.2"}, {"id": 2, "tag": "x"}], "release": "r-1.2"}
    assert normalise(body, ignore={"id", "release"}, unique="ab12cd340", release="r-1.2") == {
        "id": MASKED, "owner": {"id": MASKED, "email": "carol-${unique}@example.com"},
        "items": [{"id": MASKED, "tag": "${release}"}, {"id": MASKED, "tag": "x"}], "release": MASKED}


def test_normalise_keeps_list_order_and_text() -> None:
    assert normalise([3, 1, 2], ignore={"id"}, unique="u1", release="r") == [3, 1, 2]
    assert normalise("hi u1 at r", ignore=(), unique="u1", release="r") == "hi ${unique} at ${release}"


def test_the_unique_token_is_constant_per_stage_and_differs_between_stages() -> None:
    assert stage_unique("ab12cd34", "local-mysql") == stage_unique("ab12cd34", "local-mysql")
    assert stage_unique("ab12cd34", "local-sqlite") != stage_unique("ab12cd34", "local-mysql")
    assert stage_unique("ab12cd34", "external").startswith("ab12cd34")


def test_compare_names_the_request_for_a_status_difference() -> None:
    a = Recording("local-sqlite", "r", (answer("/users/999999", 404),))
    b = Recording("local-mysql", "r", (answer("/users/999999", 500),))
    assert compare(a, b) == ["GET /users/999999: status 404 vs 500"]


def test_compare_names_the_request_and_field_for_a_body_difference() -> None:
    a = Recording("local-sqlite", "r", (answer(body=[{"id": MASKED, "name": "carol", "email": "c@x"}]),))
    b = Recording("local-mysql", "r", (answer(body=[{"id": MASKED, "name": "Carol", "email": "c@x"}]),))
    assert compare(a, b) == ["GET /users: body field [0].name: 'carol' vs 'Carol'"]


def test_compare_reports_lengths_headers_missing_requests_and_text_lines() -> None:
    a = Recording("a", "r", (answer(body=[1, 2]), answer("/metrics", body="x\ny\n", is_json=False),
                             answer("/only-a")))
    b = Recording("b", "r", (answer(body=[1], headers={"Content-Type": "text/html"}),
                             answer("/metrics", body="x\nz\n", is_json=False), answer("/only-b")))
    assert compare(a, b) == [
        "GET /users: header Content-Type: 'application/json' vs 'text/html'",
        "GET /users: body: 2 items vs 1",
        "GET /metrics: body line 2: 'y' vs 'z'",
        "GET /only-a: not recorded at b",
        "GET /only-b: not recorded at a",
    ]


def test_noise_in_the_reference_is_not_compared_but_noise_only_later_is_reported() -> None:
    a = Recording("a", "r", (answer(body={"now": VOLATILE, "rows": [1, 2]}),))
    b = Recording("b", "r", (answer(body={"now": 5, "rows": VOLATILE}),))
    assert compare(a, b) == ["GET /users: body field rows: varies between two reads at b only"]


def test_identical_recordings_have_no_divergence() -> None:
    a = Recording("a", "r", (answer(body={"x": [1]}), answer("/m", body="t", is_json=False)))
    assert compare(a, a) == []


def test_a_recording_round_trips_through_json(tmp_path: Path) -> None:
    recording = Recording("local-mysql", "r-1", (answer(body={"id": MASKED, "x": [1, None, "${unique}"]}),
                                                 answer("/metrics", body=VOLATILE, is_json=False)))
    assert Recording.from_json(recording.to_json()) == recording
    path = recording_path(tmp_path / "reports" / "local.json", "local-mysql")
    assert path == tmp_path / "reports" / "local.recording.local-mysql.json"
    path.parent.mkdir()
    path.write_text(recording.to_json())
    assert Recording.read(path) == recording


def test_an_unreadable_recording_says_how_to_make_one(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"format": 99}')
    with pytest.raises(RecordingUnreadable, match="--stageproof-report"):
        Recording.read(tmp_path / "bad.json")


def test_the_sequence_is_the_document_gets_then_the_contract_gets_each_once() -> None:
    settings = load_settings(ROOT / "stageproof.toml", env={})
    sequence = build_sequence(settings, load_cases(settings.contract.cases), OPENAPI)
    assert [(request.method, request.path, request.auth) for request in sequence] == [
        ("GET", "/users", "none"),
        ("GET", "/healthz", "none"),
        ("GET", "/admin/report", "token"),
        ("GET", "/users/1", "none"),
        ("GET", "/users/999999", "none"),
        ("GET", "/users/not-a-number", "none"),
        ("GET", "/readyz", "none"),
        ("GET", "/version", "none"),
        ("GET", "/metrics", "none"),
        ("GET", "/openapi.json", "none"),
    ]  # no POST, no `/users/{id}`, no `/users/${id}` (a saved id differs per stage)


def test_without_a_document_the_sequence_is_the_contract_gets() -> None:
    settings = load_settings(ROOT / "stageproof.toml", env={})
    paths = [request.path for request in build_sequence(settings, load_cases(settings.contract.cases), None)]
    assert paths[0] == "/users" and "/healthz" in paths and len(paths) == len(set(paths))


class FakeSession:
    """Answers like an app whose /metrics counts its own reads."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, str]]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        self.sent.append((method, url, kwargs["headers"]))
        response = requests.Response()
        response.status_code = 200
        if url.endswith("/metrics"):
            response.headers["Content-Type"] = "text/plain"
            response._content = f"reads {len(self.sent)}\n".encode()
        else:
            response.headers["Content-Type"] = "application/json"
            response._content = b'[{"id": 4, "email": "carol-u9@example.com", "seen": "rel-7"}]'
        return response


def test_record_sends_each_request_twice_and_marks_what_changed_between_reads() -> None:
    client = ContractClient(Deployment("docker", "http://app:8000", "rel-7", "secret"), unique="u9")
    session = FakeSession()
    client.session = session  # type: ignore[assignment]
    settings = load_settings(ROOT / "stageproof.toml", env={})
    sequence = build_sequence(settings, [], {"paths": {"/users": {"get": {}}, "/metrics": {"get": {}}}})
    recording = record(client, sequence, Normaliser.for_stage(settings, client.unique, "rel-7"))
    assert [url for _, url, _ in session.sent] == ["http://app:8000/users"] * 2 + ["http://app:8000/metrics"] * 2
    users, metrics = recording.answers
    assert users.body == [{"id": MASKED, "email": "carol-${unique}@example.com", "seen": "${release}"}]
    assert users.headers["Content-Type"] == "application/json" and users.headers["Allow"] is None
    assert metrics.body == VOLATILE and not metrics.is_json
    assert recording.stage == "docker" and recording.release == "rel-7"


def test_stageproof_diff_exits_1_with_the_divergences_and_0_without(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # main() installs handlers for a real process
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(Recording("local-sqlite", "r", (answer(status=200),)).to_json())
    b.write_text(Recording("local-mysql", "r", (answer(status=500),)).to_json())
    assert main(["--config", str(tmp_path / "none.toml"), "diff", str(a), str(b)]) == 1
    assert "GET /users: status 200 vs 500" in capsys.readouterr().out
    assert main(["diff", str(a), str(a)]) == 0
    assert main(["diff", str(a), str(tmp_path / "missing.json")]) == 2

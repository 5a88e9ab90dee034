"""The property-based API check, against a tiny app on 127.0.0.1 that keeps or breaks its document."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, jsonify, request
from werkzeug.serving import BaseWSGIServer, make_server

from harness.checks import api
from harness.checks.api import api_config, run_api_checks
from harness.checks.common import missing_settings
from harness.config import Settings, load_settings
from harness.stage import Deployment

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "t0ken"
ITEMS = {"type": "array", "items": {"type": "integer"}}
DOCUMENT = {
    "openapi": "3.0.3",
    "info": {"title": "items", "version": "1"},
    "servers": [{"url": "http://192.0.2.1:9"}],  # never used: traffic goes to the deployment only
    "paths": {
        "/items": {
            "get": {"responses": {"200": {"description": "items",
                                          "content": {"application/json": {"schema": ITEMS}}}}},
            "post": {
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}}}},
                "responses": {"201": {"description": "added", "content": {"application/json": {"schema": ITEMS}}},
                              "400": {"description": "bad", "content": {"application/json": {"schema": {}}}},
                              "401": {"description": "no token", "content": {"application/json": {"schema": {}}}}},
            },
        },
    },
}


class ItemsApp:
    """Serves DOCUMENT; `broken` makes GET /items answer what the document forbids, `lenient` makes
    POST /items take any body (what the document forbids too), `picky` refuses every body (valid
    ones included, which it allows)."""

    def __init__(self) -> None:
        self.broken = False
        self.lenient = False
        self.picky = False
        self.seen: list[tuple[str, str, str | None]] = []
        self.flask = Flask(__name__)
        self.flask.before_request(self._record)
        self.flask.get("/openapi.json")(lambda: jsonify(DOCUMENT))
        self.flask.get("/items")(self._list)
        self.flask.post("/items")(self._add)

    def _record(self) -> None:
        if request.path != "/openapi.json":
            self.seen.append((request.method, request.full_path, request.headers.get("Authorization")))

    def _list(self) -> Any:
        return jsonify({"items": "not an array"}) if self.broken else jsonify([1, 2])

    def _add(self) -> Any:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return jsonify({"error": "no token"}), 401
        body = request.get_json(silent=True)
        if self.lenient:
            return jsonify([0]), 201
        if self.picky or not isinstance(body, dict) or type(body.get("n")) is not int:
            return jsonify({"error": "n must be an integer"}), 400
        return jsonify([body["n"]]), 201


@pytest.fixture
def items() -> Iterator[tuple[ItemsApp, str]]:
    app = ItemsApp()
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app.flask, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def settings() -> Settings:
    reference = load_settings(ROOT / "stageproof.toml")
    checks = reference.checks.model_copy(update={"api_examples": 5, "api_seed": 7})
    return reference.model_copy(update={"checks": checks})


def test_a_conforming_api_passes_with_the_token_on_every_request(items: tuple[ItemsApp, str],
                                                                 settings: Settings) -> None:
    app, url = items
    result = run_api_checks(settings, Deployment("unit", url, "r1", TOKEN))
    assert result.cases > 0 and result.failures == () and result.errors == ()
    assert app.seen and {auth for _, _, auth in app.seen} == {f"Bearer {TOKEN}"}
    assert {method for method, _, _ in app.seen} >= {"GET", "POST"}


def test_each_failure_names_its_check_and_a_curl_line_to_the_deployment(items: tuple[ItemsApp, str],
                                                                      settings: Settings) -> None:
    app, url = items
    app.broken = True
    result = run_api_checks(settings, Deployment("unit", url, "r1", TOKEN))
    assert "response_schema_conformance" in {failure.check for failure in result.failures}
    assert all(failure.curl.startswith("curl ") and url in failure.curl for failure in result.failures)
    assert f"(answered 200)\n    curl -X GET -H 'Authorization: [Filtered]' {url}/items" in result.problems()
    figures = result.figures()
    assert {key: figures[key] for key in ("cases", "failures", "errors")} == {
        "cases": result.cases, "failures": len(result.failures), "errors": 0}
    assert sum(count for key, count in figures.items() if key.startswith("cases_")) == result.cases
    assert figures["seconds"] > 0 and result.summary().startswith(f"api: {result.cases} cases (")


def test_the_fixed_seed_sends_the_same_requests_every_run(items: tuple[ItemsApp, str], settings: Settings) -> None:
    app, url = items
    runs = []
    for _ in range(2):
        app.seen.clear()
        run_api_checks(settings, Deployment("unit", url, "r1", TOKEN))
        runs.append(list(app.seen))
    assert runs[0] == runs[1]


def test_a_missing_document_fails_naming_its_url(items: tuple[ItemsApp, str], settings: Settings) -> None:
    _, url = items
    nowhere = settings.model_copy(update={"app": settings.app.model_copy(update={"openapi_path": "/nope.json"})})
    with pytest.raises(pytest.fail.Exception, match=f"no OpenAPI document at {url}/nope.json"):
        run_api_checks(nowhere, Deployment("unit", url, "r1", TOKEN))


def test_no_token_sends_no_authorization_header(settings: Settings) -> None:
    config = api_config(settings, Deployment("unit", "http://127.0.0.1:1", "r1", None))
    assert not config.projects.get_default().headers


def test_the_run_is_seeded_derandomized_and_bounded_in_every_phase(settings: Settings) -> None:
    config = api_config(settings, Deployment("unit", "http://127.0.0.1:1", "r1", TOKEN))
    project = config.projects.get_default()
    assert config.seed == 7 and project.base_url == "http://127.0.0.1:1"
    assert project.generation.deterministic and project.generation.max_examples == 5
    phases = project.phases
    assert all(phase.enabled for phase in (phases.examples, phases.coverage, phases.fuzzing, phases.stateful))
    assert phases.stateful.max_steps == api.STATEFUL_STEPS


def test_every_check_of_schemathesis_runs_on_valid_and_invalid_data(settings: Settings) -> None:
    """What `schemathesis run --checks all --mode all` runs (a bare limit of response time aside)."""
    project = api_config(settings, Deployment("unit", "http://127.0.0.1:1", "r1", TOKEN)).projects.get_default()
    names = api.all_checks()
    assert {"negative_data_rejection", "positive_data_acceptance", "ignored_auth", "use_after_free",
            "missing_required_header", "response_headers_conformance"} <= set(names)
    assert all(project.checks.get_by_name(name=name).enabled for name in names)
    assert {mode.value for mode in project.generation.modes} == {"positive", "negative"}


def test_an_api_that_accepts_what_its_document_forbids_fails(items: tuple[ItemsApp, str], settings: Settings) -> None:
    app, url = items
    app.lenient = True
    result = run_api_checks(settings, Deployment("unit", url, "r1", TOKEN))
    rejected = [failure for failure in result.failures if failure.check == "negative_data_rejection"]
    assert rejected and all("curl -X POST -H 'Authorization: [Filtered]'" in failure.curl for failure in rejected)
    assert "(answered 201)" in rejected[0].title


def test_an_api_that_refuses_what_its_document_allows_fails(items: tuple[ItemsApp, str], settings: Settings) -> None:
    app, url = items
    app.picky = True
    result = run_api_checks(settings, Deployment("unit", url, "r1", TOKEN))
    refused = [failure for failure in result.failures if failure.check == "positive_data_acceptance"]
    assert refused and "(answered 400)" in refused[0].title and f"{url}/items" in refused[0].curl


def test_an_app_without_an_openapi_document_makes_the_check_not_applicable() -> None:
    guestbook = load_settings(ROOT / "examples/guestbook/stageproof.toml")
    (marker,) = [mark for mark in api.test_api_behaves_as_its_openapi_document_says.pytestmark if mark.name == "needs"]
    assert missing_settings(guestbook, marker.args) == ["app.openapi_path"]

"""The contract runner substitutes placeholders and reports every mismatch."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from harness.contract.cases import Expect, load_cases
from harness.contract.runner import check, substitute
from harness.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def response(status: int, body: str, content_type: str = "application/json") -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    resp._content = body.encode()
    resp.headers["Content-Type"] = content_type
    return resp


def test_a_whole_placeholder_keeps_the_saved_type() -> None:
    assert substitute({"id": "${id}", "mail": "u-${id}@x"}, {"id": 7}) == {"id": 7, "mail": "u-7@x"}


def test_unknown_placeholders_stay_visible() -> None:
    assert substitute("/users/${nope}", {}) == "/users/${nope}"


def test_matching_response_has_no_problems() -> None:
    expect = Expect.model_validate({"status": 200, "content_type": "application/json", "json": [{"id": 1}]})
    assert check(expect, response(200, '[{"id": 1}]'), {}) == []


def test_every_mismatch_is_listed() -> None:
    expect = Expect.model_validate({"status": 201, "json_subset": {"field": "email"}, "json_keys": ["error"]})
    problems = check(expect, response(200, '{"field": "name"}', "text/html"), {})
    assert len(problems) == 3
    assert any("status 200, expected 201" in p for p in problems)
    assert any("'field' is 'name'" in p for p in problems)


def test_exact_bytes_are_compared() -> None:
    expect = Expect.model_validate({"status": 200, "body": '[{"id":1}]\n'})
    assert check(expect, response(200, '[{"id": 1}]\n'), {})


def test_reference_contract_loads() -> None:
    names = [case.name for case in load_cases(ROOT / "contract.toml")]
    assert names[0] == "users list is exactly the seed"


def test_a_case_needs_request_and_expect_or_steps(tmp_path: Path) -> None:
    bad = tmp_path / "contract.toml"
    bad.write_text('[[case]]\nname = "half"\nrequest = { path = "/users" }\n')
    with pytest.raises(ConfigError, match="needs both request and expect"):
        load_cases(bad)


def _metrics_step_expect() -> Expect:
    """The reference contract's metrics case: its /metrics step, the one that reads the count."""
    case = next(case for case in load_cases(ROOT / "contract.toml") if case.name.startswith("metrics"))
    steps = case.all_steps()
    assert [step.request.path for step in steps] == ["/version", "/metrics"]
    return steps[1].expect


METRICS_HEAD = ("# HELP http_requests_total Requests served\n# TYPE http_requests_total counter\n"
                "# HELP http_request_duration_seconds Latency\n# TYPE http_request_duration_seconds histogram\n")


def test_metrics_from_a_worker_that_did_not_serve_the_first_step_fail() -> None:
    """What CI once met: the worker answering /metrics had served nothing (the families, no sample)
    or only other routes; the case must fail then, not pass on the `# TYPE` lines alone."""
    expect = _metrics_step_expect()
    idle = response(200, METRICS_HEAD, "text/plain; version=0.0.4")
    other = response(200, METRICS_HEAD + 'http_requests_total{method="GET",route="/users",status="200"} 3.0\n'
                     'http_requests_total{method="GET",route="/version",status="500"} 1.0\n', "text/plain")
    for body in (idle, other):
        problems = check(expect, body, {})
        assert problems == ["body lacks 'http_requests_total{method=\"GET\",route=\"/version\",status=\"200\"}'"]


def test_metrics_that_count_the_first_step_pass() -> None:
    served = response(200, METRICS_HEAD + 'http_requests_total{method="GET",route="/version",status="200"} 1.0\n',
                      "text/plain; version=0.0.4")
    assert check(_metrics_step_expect(), served, {}) == []

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

"""Body checks and markers as values: what each one accepts, refuses, and the reason it counts."""

from __future__ import annotations

import pytest

from harness.load import Contains, JsonField, Mark, body_check


def test_contains_names_the_missing_text() -> None:
    assert Contains("ok").problem(b'{"status": "ok"}') is None
    assert Contains("ok").problem(b"<html>error</html>") == "body: missing 'ok'"
    assert Contains("\u00e9t\u00e9").problem("\u00e9t\u00e9".encode()) is None


@pytest.mark.parametrize(("check", "body", "problem"), [
    (JsonField("status", equals="ok"), b'{"status": "ok"}', None),
    (JsonField("status", equals="ok"), b'{"status": "down"}', "body: status is 'down', not 'ok'"),
    (JsonField("status"), b'{"other": 1}', "body: no 'status'"),
    (JsonField("items.0.id"), b'{"items": [{"id": 3}]}', None),
    (JsonField("items.1.id"), b'{"items": [{"id": 3}]}', "body: no 'items.1.id'"),
    (JsonField("count", equals=1), b'{"count": true}', "body: count is True, not 1"),
    (JsonField("count", equals=1), b'{"count": 1.0}', None),
    (JsonField("error", equals=None), b'{"error": null}', None),
    (JsonField("status"), b"<html>", "body: not JSON"),
    (JsonField("status", equals="ok"), b'{"status": "' + b"x" * 100 + b'"}',
     "body: status is 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx..., not 'ok'"),
])
def test_a_json_field_is_found_by_its_dotted_path(check: JsonField, body: bytes, problem: str | None) -> None:
    assert check.problem(body) == problem


def test_body_checks_come_from_config_mappings() -> None:
    assert body_check({"contains": "ok"}) == Contains("ok")
    assert body_check({"json_field": "status", "equals": "ok"}) == JsonField("status", "ok")
    assert body_check({"json_field": "items.0"}) == JsonField("items.0")


@pytest.mark.parametrize("spec", [{}, {"contains": ""}, {"contains": "a", "json_field": "b"}, {"equals": 1},
                                  {"json_field": "a", "equals": [1]}, {"json_field": "a..b"}, {"json_field": 3}])
def test_a_bad_body_check_is_one_clear_error(spec: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"body check|json_field"):
        body_check(spec)


def test_a_mark_goes_in_the_query_or_a_header() -> None:
    mark = Mark(token="abc")
    assert mark.path("/health", 7) == "/health?stageproof=abc-7"
    assert mark.path("/health?x=1", 7) == "/health?x=1&stageproof=abc-7"
    header = Mark(where="header", name="X-Run", token="abc")
    assert header.path("/health", 7) == "/health" and header.header(7) == "X-Run: abc-7\r\n"
    assert len(Mark().token) == 12


@pytest.mark.parametrize("name", ["", "a b", "x\r\nInjected: 1", "1abc"])
def test_a_marker_name_cannot_inject_anything(name: str) -> None:
    with pytest.raises(ValueError, match="marker name"):
        Mark(name=name)

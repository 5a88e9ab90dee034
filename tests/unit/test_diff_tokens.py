"""The cross-stage diff on a team's first run: the release is replaced as a whole token only (a
release id `dev` must not turn `width=device-width` into `width=${release}ice-width`), and
list-valued headers whose order a server does not fix (Werkzeug's `Allow`) compare as sets."""

from __future__ import annotations

from typing import Any

import pytest

from harness.contract.diff import Answer, Recording, compare, normalise

VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1">'


@pytest.mark.parametrize("release", ["dev", "device", "dev-3f2a9c01bd", "abc123-dirty", "abc123"])
def test_a_release_inside_a_longer_word_is_left_alone(release: str) -> None:
    text = f"{VIEWPORT} devices developer abc123-dirtyish xabc123 dev-3f2a9c01bdx"
    assert normalise(text, ignore=(), unique="u0000", release=release) == text


@pytest.mark.parametrize(("text", "expected"), [
    ("abc123-dirty", "${release}"),
    ("release abc123-dirty.", "release ${release}."),
    ("v=abc123-dirty&x=1", "v=${release}&x=1"),
    ('"abc123-dirty"', '"${release}"'),
    ("<footer>abc123-dirty</footer>", "<footer>${release}</footer>"),
    ("/static/abc123-dirty/app.js", "/static/${release}/app.js"),
])
def test_the_release_as_a_whole_token_is_named(text: str, expected: str) -> None:
    assert normalise(text, ignore=(), unique="u0000", release="abc123-dirty") == expected


def test_the_unique_token_is_named_even_glued_to_a_word() -> None:
    """`${unique}` is random (a run id): contracts glue it to words (`note-${unique}`, `user${unique}`)."""
    assert normalise("note-a1b2c3d40 usera1b2c3d40", ignore=(), unique="a1b2c3d40", release="dev") == \
        "note-${unique} user${unique}"


def _answer(headers: dict[str, Any]) -> Answer:
    return Answer("GET", "/submit", "none", 405, headers, "<h1>Method Not Allowed</h1>", False)


def _compare(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return compare(Recording("local-mysql", "r", (_answer(a),)), Recording("compose", "r", (_answer(b),)))


@pytest.mark.parametrize("name", ["Allow", "allow", "Vary", "Access-Control-Allow-Methods",
                                  "Access-Control-Allow-Headers", "Access-Control-Expose-Headers"])
def test_list_valued_headers_compare_as_sets(name: str) -> None:
    assert _compare({name: "POST, OPTIONS"}, {name: "OPTIONS, POST"}) == []
    assert _compare({name: "POST,OPTIONS"}, {name: "OPTIONS , POST"}) == []


def test_a_list_valued_header_with_another_member_is_still_a_divergence() -> None:
    found = _compare({"Allow": "POST, OPTIONS"}, {"Allow": "OPTIONS, POST, GET"})
    assert found == ["GET /submit: header Allow: 'POST, OPTIONS' vs 'OPTIONS, POST, GET'"]


def test_order_still_matters_for_a_header_that_is_not_a_list() -> None:
    assert _compare({"Content-Type": "text/html; charset=utf-8"}, {"Content-Type": "charset=utf-8; text/html"})

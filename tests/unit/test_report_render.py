"""The HTML report as a person sees it: headless Chromium renders it to a PNG that is not blank and
shows the matrix and a timeline, and the matrix in the page is the one the JSON report holds.

Without Chromium the test is skipped locally and fails in CI (`CI=true`): there the machine setup
(scripts/setup-machine.sh) installs Debian's chromium.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections import Counter
from dataclasses import asdict
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.lifecycle import in_ci
from harness.load.generator import Sample, summarize
from harness.report.html import CELLS, FAILED, find_browser, screenshot, write_reports
from harness.report.ledger import Ledger

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chromium() -> str:
    """The browser to render with; none is a skip here, a failure in CI."""
    found = find_browser()
    if found is None:
        reason = "no chromium on PATH to render the HTML report: apt-get install chromium (scripts/setup-machine.sh)"
        if in_ci():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return found


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, RGB rows) of a non-interlaced 8-bit RGB or RGBA PNG (alpha dropped)."""
    assert data.startswith(PNG_SIGNATURE), "not a PNG"
    header, compressed, pos = b"", bytearray(), len(PNG_SIGNATURE)
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        header = body if kind == b"IHDR" else header
        compressed += body if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, interlace) == (8, 0) and colour in (2, 6), f"unsupported PNG: depth {depth}, colour type {colour}"
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(bytes(compressed)), width * bpp
    rows, previous = [], bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        row = _unfilter(raw[start], bytearray(raw[start + 1:start + 1 + stride]), previous, bpp)
        rows.append(row)
        previous = row
    return width, height, [row if bpp == 3 else b"".join(row[i:i + 3] for i in range(0, stride, 4)) for row in rows]


def _unfilter(kind: int, row: bytearray, up: bytes, bpp: int) -> bytes:
    """Undo one PNG row filter (None, Sub, Up, Average, Paeth)."""
    if kind == 0:
        return bytes(row)
    if kind == 2:
        return bytes((a + b) & 255 for a, b in zip(row, up, strict=True))
    for i in range(len(row)):
        left = row[i - bpp] if i >= bpp else 0
        corner = up[i - bpp] if i >= bpp else 0
        if kind == 1:
            row[i] = (row[i] + left) & 255
        elif kind == 3:
            row[i] = (row[i] + (left + up[i]) // 2) & 255
        else:
            guess = left + up[i] - corner
            pa, pb, pc = abs(guess - left), abs(guess - up[i]), abs(guess - corner)
            row[i] = (row[i] + (left if pa <= pb and pa <= pc else up[i] if pb <= pc else corner)) & 255
    return bytes(row)


def colours(rows: list[bytes]) -> Counter[bytes]:
    return Counter(row[i:i + 3] for row in rows for i in range(0, len(row), 3))


def rgb(hex_colour: str) -> bytes:
    return bytes.fromhex(hex_colour.removeprefix("#"))


class Cells(HTMLParser):
    """The matrix as the page states it: (stage, check) -> outcome, from the cells' data attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[tuple[str, str], str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "td" and "data-outcome" in found:
            self.found[(str(found["data-stage"]), str(found["data-check"]))] = str(found["data-outcome"])


def matrix_from_json(payload: dict[str, object]) -> dict[tuple[str, str], str]:
    """The matrix the JSON implies, derived here from its fields (not by the report's code): a
    recorded outcome, else "not applicable" when the ledger says so, else "not run"."""
    stages = payload["stages"]
    assert isinstance(stages, list)
    checks = {check for stage in stages for check in [*stage["outcomes"], *stage["not_applicable"]]}
    expected = {}
    for stage in stages:
        for check in checks:
            deselected = stage["stage_not_applicable"] is not None or check in stage["not_applicable"]
            outcome = stage["outcomes"].get(check, "not applicable" if deselected else "not run")
            expected[(stage["stage"], check)] = outcome
    return expected


def run_with_chaos() -> Ledger:
    """Three stages: all checks pass locally, k8s fails its pod kill (measured), one is declared n/a."""
    samples = [Sample(n / 20, 0.008 + (0.25 if 120 <= n < 150 else 0), "timeout" if 80 <= n < 120 else None)
               for n in range(300)]
    ledger = Ledger()
    for stage in ("local-sqlite", "k8s"):
        ledger.record(stage).up_seconds = 2.5
        for _ in range(4):
            ledger.outcome(stage, "passed", contract=True, seconds=0.05, test="test_contract_case")
        ledger.outcome(stage, "passed", contract=False, seconds=3.0, test="test_contract_holds_after_app_restart")
    ledger.record("local-sqlite").not_applicable["test_pod_kill"] = "the stage cannot kill_instance"
    ledger.outcome("k8s", "failed", contract=False, seconds=15.0, test="test_pod_kill")
    ledger.outcome("k8s", "skipped", contract=False, seconds=0.0, test="test_network_policy_is_enforced")
    ledger.record("compose").stage_not_applicable = "the app ships no compose file"
    load = summarize("http://127.0.0.1:8080/users", 20.0, 15.0, samples)
    ledger.record("k8s").figures.append({"check": "test_pod_kill", "what": "kill one web pod", "disrupted_at": 4.0,
                                         "action_seconds": 0.3, "recovered_seconds": 3.5, "covered": True,
                                         "load": asdict(load)})
    return ledger


def test_rendered_report_is_not_blank_and_its_matrix_matches_the_json(tmp_path: Path) -> None:
    browser = chromium()
    html = write_reports(run_with_chaos(), tmp_path / "run.json")
    png = screenshot(html, tmp_path / "run.png", size=(1200, 900), browser=browser)

    width, height, rows = decode_png(png.read_bytes())
    assert (width, height) == (1200, 900)
    seen = colours(rows)
    background, count = seen.most_common(1)[0]
    assert len(seen) > 20 and count < 0.95 * width * height, f"the screenshot is (nearly) blank: {background.hex()}"
    for painted in (CELLS["passed"][1], CELLS["failed"][1], CELLS["not applicable"][1], FAILED):
        assert seen[rgb(painted)] > 200, f"{painted} is not on the screenshot: the matrix or the timeline is missing"

    parser = Cells()
    parser.feed(html.read_text(encoding="utf-8"))
    expected = matrix_from_json(json.loads((tmp_path / "run.json").read_text()))
    assert parser.found == expected
    assert expected[("compose", "test_pod_kill")] == "not applicable"
    assert expected[("k8s", "test_pod_kill")] == "failed"

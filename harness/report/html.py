"""The run summary as one self-contained HTML page: the stage x check matrix and a timeline per
chaos figure (requests/s, failures/s, p99 per second, the disruption marked).

Everything is inline (CSS, SVG; no script, no font, no address to fetch), so the page opens from
a CI artifact on a machine with no network. `screenshot` turns it into a PNG with headless Chromium.
"""

from __future__ import annotations

import math
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from harness.core.run import run
from harness.errors import StageUnavailable
from harness.report.ledger import Ledger, StageRecord

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: headless without a sandbox (root in CI) and without any network of its own (the machines have none)
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--force-color-profile=srgb", "--force-device-scale-factor=1")
#: how a matrix cell shows each outcome: symbol, background, text colour
CELLS = {"passed": ("\u2713", "#c9efd3", "#145c2a"), "failed": ("\u2717", "#f7c6c6", "#8a1212"),
         "skipped": ("\u21b7", "#fbe9b7", "#6b5200"), "not applicable": ("\u2013", "#e4e7ec", "#4a5260"),
         "not run": ("\u00b7", "#ffffff", "#9aa2ae"), "accepted failure": ("!", "#fde2c4", "#7a3e00")}
#: the timeline's colours: sent and failed bars, the p99 line, the disruption's band, strip and line
SENT, FAILED, P99, BAND, STRIP, MARK = "#93b4e0", "#dc2626", "#7c3aed", "#fde7c2", "#f59e0b", "#b45309"
CSS = """
body{font:14px/1.4 "DejaVu Sans",system-ui,sans-serif;margin:24px;color:#1d2330;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}.meta{color:#5b6473;margin:0}
table{border-collapse:collapse}th,td{border:1px solid #d5dae2;padding:4px 10px;text-align:left}
th{background:#f1f3f7;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.o{text-align:center;font-weight:600;min-width:110px}.error{color:#8a1212}
figure{margin:0 0 24px;border:1px solid #d5dae2;padding:10px;width:max-content}
figcaption{margin-bottom:6px}figcaption b{font-size:15px}ul.notes{margin:4px 0 12px;color:#3b4250}
svg text{font:11px "DejaVu Sans",sans-serif;fill:#3b4250}
""" + "".join(f".o-{outcome.replace(' ', '-')}{{background:{back};color:{fore}}}"
             for outcome, (_, back, fore) in CELLS.items())
# The timeline's geometry (SVG user units): two panels sharing the time axis.
WIDTH, LEFT, RIGHT, TOP = 1040, 64, 16, 46
RATE_HEIGHT, GAP, LATENCY_HEIGHT, BOTTOM = 150, 34, 100, 30
HEIGHT = TOP + RATE_HEIGHT + GAP + LATENCY_HEIGHT + BOTTOM
Scale = Callable[[float], float]


def write_reports(ledger: Ledger, json_path: Path) -> Path:
    """The JSON summary at `json_path` and the HTML page beside it (same name, .html), from the
    same moment of the run; returns the HTML's path."""
    ledger.finished = ledger.finished or time.time()
    ledger.write_json(json_path)
    html_path = json_path.with_suffix(".html")
    html_path.write_text(render(ledger), encoding="utf-8")
    return html_path


def render(ledger: Ledger) -> str:
    records = list(ledger.stages.values())
    finished = ledger.finished or time.time()
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ledger.started))
    figures = [(rec.stage, figure) for rec in records for figure in rec.figures if is_chaos(figure)]
    measured = [(rec.stage, figure) for rec in records for figure in rec.figures if not is_chaos(figure)]
    parts = ['<!doctype html><html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width">', "<title>stageproof report</title>",
             f"<style>{CSS}</style></head><body>", "<h1>stageproof report</h1>",
             f'<p class="meta">started {started}, took {finished - ledger.started:.0f}s; '
             f"{len(records)} stages, {len(ledger.checks())} checks, {len(figures)} chaos timelines</p>",
             "<h2>Stages</h2>", _stage_table(records), "<h2>Checks by stage</h2>", _matrix(ledger, records)]
    if figures:
        parts.append("<h2>Chaos timelines</h2>")
        parts += [chaos_figure(stage, figure) for stage, figure in figures]
    if measured:
        parts += ["<h2>Other measurements</h2>", _measurements(measured)]
    parts += ["<h2>Notes</h2>", *(_notes(rec) for rec in records), "</body></html>\n"]
    return "\n".join(parts)


def _stage_table(records: list[StageRecord]) -> str:
    head = "".join(f"<th>{name}</th>" for name in
                   ("stage", "release", "up (s)", "contract (s)", "passed", "failed", "skipped"))
    rows = [f"<table><tr>{head}</tr>"]
    for rec in records:
        up = "-" if rec.up_seconds is None else f"{rec.up_seconds:.1f}"
        numbers = (up, f"{rec.contract_seconds:.2f}", rec.passed, rec.failed, rec.skipped)
        cells = "".join(f'<td class="num">{value}</td>' for value in numbers)
        rows.append(f"<tr><th>{escape(rec.stage)}</th><td>{escape(rec.release or '-')}</td>{cells}</tr>")
        if rec.error:
            rows.append(f'<tr><td></td><td colspan="6" class="error">{escape(rec.error)}</td></tr>')
    return "\n".join([*rows, "</table>"])


def _matrix(ledger: Ledger, records: list[StageRecord]) -> str:
    """Rows are checks, columns stages; every cell carries data-stage/-check/-outcome for tests."""
    head = "".join(f"<th>{escape(rec.stage)}</th>" for rec in records)
    rows = [f'<table class="matrix"><tr><th>check</th>{head}</tr>']
    for check in ledger.checks():
        cells = []
        for rec in records:
            outcome, reason = rec.cell(check)
            title = f' title="{escape(reason)}"' if reason else ""
            cells.append(f'<td class="o o-{outcome.replace(" ", "-")}" data-stage="{escape(rec.stage)}" '
                         f'data-check="{escape(check)}" data-outcome="{escape(outcome)}"{title}>'
                         f"{CELLS.get(outcome, ('?',))[0]} {escape(outcome)}</td>")
        label = escape(check.removeprefix("test_").replace("_", " "))
        rows.append(f'<tr><th title="{escape(check)}">{label}</th>{"".join(cells)}</tr>')
    return "\n".join([*rows, "</table>"])


def _notes(rec: StageRecord) -> str:
    items = "".join(f"<li>{escape(note)}</li>" for note in rec.notes) or "<li>none</li>"
    return f'<h3>{escape(rec.stage)}</h3><ul class="notes">{items}</ul>'


def is_chaos(figure: Mapping[str, Any]) -> bool:
    """A disruption measured under load (`DisruptionResult.figures()`), which gets a timeline."""
    return isinstance(figure.get("load"), dict) and "disrupted_at" in figure


def _measurements(measured: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    rows = ["<table><tr><th>stage</th><th>check</th><th>figures</th></tr>"]
    for stage, figure in measured:
        values = ", ".join(f"{key} {value}" for key, value in figure.items() if key != "check")
        rows.append(f"<tr><td>{escape(stage)}</td><td>{escape(str(figure.get('check', '?')))}</td>"
                    f"<td>{escape(values)}</td></tr>")
    return "\n".join([*rows, "</table>"])


def chaos_figure(stage: str, figure: Mapping[str, Any]) -> str:
    load = figure.get("load", {})
    recovery = load.get("recovery_seconds")
    window = ("no failure" if not load.get("failed") else "no success after the last failure"
              if recovery is None else f"failure window {recovery:.1f}s")
    caption = (f"<b>{escape(stage)} \u00b7 {escape(str(figure.get('check', '?')))}</b>: "
               f"{escape(str(figure.get('what', '')))}<br>{load.get('sent', 0)} requests, "
               f"{load.get('failed', 0)} failed, p99 {load.get('p99_ms', 0):.0f} ms, {window}; "
               f"recovered {figure.get('recovered_seconds', 0):.1f}s after the disruption began"
               + ("" if figure.get("covered", True) else " (the load ended before recovery)"))
    return f"<figure><figcaption>{caption}</figcaption>{timeline(figure)}</figure>"


def timeline(figure: Mapping[str, Any]) -> str:
    """An inline SVG: sent and failed requests per second above, p99 latency per second below,
    a line where the disruption began and a band until the stage said it had recovered."""
    load = figure.get("load", {})
    sent, failed = _series(load.get("sent_per_second")), _series(load.get("failures_per_second"))
    p99 = _series(load.get("p99_ms_per_second"))
    began = float(figure.get("disrupted_at", 0.0))
    ended = began + float(figure.get("recovered_seconds", 0.0))
    span = max(1, math.ceil(max([float(load.get("duration", 0.0)), ended, *[s + 1 for s in sent]])))
    plot = WIDTH - LEFT - RIGHT

    def x(second: float) -> float:
        return LEFT + plot * second / span

    rate_top, latency_top = TOP, TOP + RATE_HEIGHT + GAP
    rate_max, latency_max = _nice(max(sent.values(), default=1)), _nice(max(p99.values(), default=1))
    band = _band(x, began, ended)
    out = [f'<svg width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img">', band[0]]
    out += _axes(rate_top, RATE_HEIGHT, rate_max, "requests/s")
    out += _axes(latency_top, LATENCY_HEIGHT, latency_max, "p99 ms")
    width = max(1.0, plot / span - 1)
    for second, count in sent.items():
        out.append(_bar(x(second), width, rate_top, RATE_HEIGHT, count / rate_max, SENT,
                        f"{second}s: {count} sent, {failed.get(second, 0)} failed, p99 {p99.get(second, 0):.0f} ms"))
    for second, count in failed.items():
        out.append(_bar(x(second), width, rate_top, RATE_HEIGHT, count / rate_max, FAILED, None))
    out += _latency_line(p99, x, latency_top, latency_max)
    out += _time_axis(span, x, latency_top + LATENCY_HEIGHT)
    out += [*band[1:], *_legend(), "</svg>"]
    return "\n".join(out)


def _band(x: Scale, began: float, ended: float) -> list[str]:
    """The disruption until recovery: a band behind the plots (the bars hide it, so a strip marks
    it above them too), then a dashed line where it began and its label; the band comes first."""
    left, bottom = x(began), TOP + RATE_HEIGHT + GAP + LATENCY_HEIGHT
    width = max(1.0, x(ended) - left)
    anchor, at = ("start", left + 4) if left < WIDTH / 2 else ("end", left - 4)
    return [f'<rect x="{left:.1f}" y="{TOP}" width="{width:.1f}" height="{bottom - TOP}" fill="{BAND}"/>',
            f'<text x="{at:.1f}" y="{TOP - 10}" text-anchor="{anchor}" style="fill:{MARK}">'
            f"disrupted at {began:.1f}s, recovered at {ended:.1f}s</text>",
            f'<rect x="{left:.1f}" y="{TOP - 6}" width="{width:.1f}" height="5" fill="{STRIP}"/>',
            f'<line x1="{left:.1f}" x2="{left:.1f}" y1="{TOP - 20}" y2="{bottom}" stroke="{MARK}" '
            'stroke-width="2" stroke-dasharray="5 3"/>']


def _series(values: Mapping[Any, float] | None) -> dict[int, float]:
    """Per-second series keyed by int (JSON turns the keys into strings)."""
    return {int(key): float(value) for key, value in (values or {}).items()}


def _nice(value: float) -> float:
    """The smallest 1, 2 or 5 x 10^n at least `value`: a y axis that ends on a round number."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value)


def _bar(left: float, width: float, top: int, height: int, share: float, colour: str, title: str | None) -> str:
    tall = height * min(1.0, share)
    tip = f"<title>{escape(title)}</title>" if title else ""
    return (f'<rect x="{left:.1f}" y="{top + height - tall:.1f}" width="{width:.1f}" height="{tall:.1f}" '
            f'fill="{colour}">{tip}</rect>')


def _axes(top: int, height: int, maximum: float, label: str) -> list[str]:
    middle = top + height / 2
    out = [f'<text x="14" y="{middle:.1f}" transform="rotate(-90 14 {middle:.1f})" text-anchor="middle" '
           f'style="font-weight:600">{label}</text>']
    for share in (0.0, 0.5, 1.0):
        y = top + height * (1 - share)
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e2e6ec"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{maximum * share:g}</text>')
    return out


def _latency_line(p99: dict[int, float], x: Scale, top: int, maximum: float) -> list[str]:
    """One polyline per run of consecutive seconds: a second with no success leaves a gap."""
    runs: list[list[str]] = []
    for second in sorted(p99):
        point = f"{x(second + 0.5):.1f},{top + LATENCY_HEIGHT * (1 - min(1.0, p99[second] / maximum)):.1f}"
        if runs and second - 1 in p99:
            runs[-1].append(point)
        else:
            runs.append([point])
    return [f'<polyline points="{" ".join(points)}" fill="none" stroke="{P99}" stroke-width="2"/>'
            if len(points) > 1 else _dot(points[0]) for points in runs]


def _dot(point: str) -> str:
    cx, cy = point.split(",")
    return f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{P99}"/>'


def _time_axis(span: int, x: Scale, bottom: int) -> list[str]:
    step = next(step for step in (1, 2, 5, 10, 15, 30, 60, 120) if span / step <= 15)
    out = [f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{bottom}" y2="{bottom}" stroke="#9aa2ae"/>']
    for second in range(0, span + 1, step):
        out.append(f'<text x="{x(second):.1f}" y="{bottom + 16}" text-anchor="middle">{second}s</text>')
    return out


def _legend() -> Iterable[str]:
    items = ((SENT, "sent/s"), (FAILED, "failed/s"), (P99, "p99 ms"), (STRIP, "until recovered"))
    for number, (colour, label) in enumerate(items):
        left = LEFT + number * 120
        yield f'<rect x="{left}" y="4" width="12" height="12" fill="{colour}"/>'
        yield f'<text x="{left + 16}" y="14">{label}</text>'


def find_browser() -> str | None:
    """The first Chromium-like browser on PATH (Debian's chromium, or Chrome on CI images)."""
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


def screenshot(html: Path, png: Path, *, size: tuple[int, int] = (1200, 900), browser: str | None = None,
               timeout: float = 90.0) -> Path:
    """Render `html` headless to `png` (the top `size` of the page), in a fresh empty profile."""
    browser = browser or find_browser()
    if browser is None:
        raise StageUnavailable(f"no Chromium to render {html}: install Debian's chromium (apt-get install chromium)")
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="stageproof-chromium-") as profile:
        run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={png.resolve()}",
             f"--window-size={size[0]},{size[1]}", html.resolve().as_uri()], timeout=timeout)
    if not png.is_file():
        raise StageUnavailable(f"{browser} exited without writing {png}")
    return png


def page_height(html: str) -> int:
    """A window tall enough for the whole page (headless screenshots stop at the window)."""
    rows, figures, notes = html.count("<tr"), html.count("<figure"), html.count("<li")
    return 160 + 36 * rows + (HEIGHT + 90) * figures + 22 * notes + 56 * html.count("<h2") + 50 * html.count("<h3")


def main(argv: list[str] | None = None) -> int:
    """`python -m harness.report.html PAGE.html...`: each page, whole, to PAGE.png beside it."""
    pages = [Path(arg) for arg in (sys.argv[1:] if argv is None else argv)]
    for page in pages:
        png = screenshot(page, page.with_suffix(".png"), size=(1200, page_height(page.read_text(encoding="utf-8"))))
        print(f"{page} -> {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

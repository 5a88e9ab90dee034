"""One page for the whole migration: every stage of every config side by side, after a CI run.

For each config (its reports grouped by `run.config`): the stage x check matrix of every session's
stages (passed / failed / not applicable with the reason / skipped / accepted failure), the
comparison with its expected matrix (differences, accepted failures, runs that never reported), the
cross-stage diff's divergences per pair of stages (`harness.report.gate`), and each chaos timeline.
Self-contained like the per-session page (harness.report.html): inline CSS and SVG, no network.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from harness.config import STAGE_NAMES
from harness.report.commands import matrices_in
from harness.report.expected import ExpectedMatrix
from harness.report.expected_write import read_ledger
from harness.report.gate import Compare, GateResult, Pair, diff_gate
from harness.report.html import CELLS, CSS, chaos_figure, is_chaos
from harness.report.ledger import Ledger, StageRecord
from harness.report.verdict import Difference, Verdict, compare, missing

EXTRA_CSS = """
th.sub{font-weight:400;color:#5b6473;font-size:12px}.ok{color:#145c2a}.bad{color:#8a1212;font-weight:600}
ul.diffs li{margin:2px 0}section.config{border-top:2px solid #d5dae2;margin-top:28px}
td.o.differs{outline:3px solid #8a1212;outline-offset:-3px}
"""


@dataclass(frozen=True)
class Column:
    session: str
    stage: str
    record: StageRecord


@dataclass
class ConfigView:
    """One config's part of the page: its reports, its matrix and what they say together."""

    app: str
    config_path: str
    ledgers: dict[str, Ledger] = field(default_factory=dict)  # session -> report
    matrix: ExpectedMatrix | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    missing: list[Difference] = field(default_factory=list)

    def columns(self) -> list[Column]:
        cols = [Column(session, stage, record) for session, ledger in self.ledgers.items()
                for stage, record in ledger.stages.items()]
        return sorted(cols, key=lambda c: (STAGE_NAMES.index(c.stage) if c.stage in STAGE_NAMES else 99, c.session))

    def checks(self) -> list[str]:
        return list(dict.fromkeys(check for ledger in self.ledgers.values() for check in ledger.checks()))

    def differing(self) -> set[tuple[str, str, str]]:
        """(session, stage, check) of every cell that differs from the expected matrix ("" = the whole stage)."""
        return {(v.session, d.stage, d.check) for v in self.verdicts for d in v.differences}

    def accepted(self) -> dict[tuple[str, str, str], str]:
        return {(v.session, a.stage, a.check): a.reason for v in self.verdicts for a in v.accepted}

    @property
    def ok(self) -> bool:
        return self.matrix is not None and not self.missing and all(v.ok for v in self.verdicts)


def build_views(reports: Iterable[Path], matrices: Sequence[ExpectedMatrix]) -> list[ConfigView]:
    by_app = {matrix.app: matrix for matrix in matrices}
    views: dict[str, ConfigView] = {}
    for path in reports:
        if ".recording." in path.name:
            continue
        ledger = read_ledger(path)
        if not ledger.stages:
            continue
        app = ledger.run.config or "(unknown config)"
        view = views.setdefault(app, ConfigView(app, ledger.run.config_path, matrix=by_app.get(app)))
        view.ledgers[ledger.run.session or path.stem] = ledger
    for view in views.values():
        if view.matrix is not None:
            view.verdicts = [compare(ledger, view.matrix, session) for session, ledger in view.ledgers.items()]
            view.missing = missing(view.matrix, view.ledgers)
    return list(views.values())


def write_migration_report(reports: Sequence[Path], output: Path, *, expected: Path, release: str,
                           compare: Compare) -> Path:
    """The page at `output`, from the reports (their recordings beside them) and the matrices in `expected`."""
    matrices = matrices_in(expected) if expected.is_dir() else []
    views = build_views(reports, matrices)
    folder = reports[0].parent if reports else output.parent
    gate = diff_gate(folder, matrices, release=release, compare=compare)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_migration(views, gate, release=release), encoding="utf-8")
    return output


def render_migration(views: Sequence[ConfigView], gate: GateResult, *, release: str) -> str:
    stages = sum(len(view.columns()) for view in views)
    verdict = all(view.ok for view in views) and gate.ok
    parts = ['<!doctype html><html lang="en"><head><meta charset="utf-8">',
             "<title>stageproof migration report</title>", f"<style>{CSS}{EXTRA_CSS}</style></head><body>",
             "<h1>stageproof migration report</h1>",
             f'<p class="meta">release {escape(release)}, written {time.strftime("%Y-%m-%d %H:%M:%S")}; '
             f"{len(views)} configs, {stages} stage runs</p>",
             f'<p id="verdict" data-verdict="{"passed" if verdict else "failed"}" class="{"ok" if verdict else "bad"}">'
             f'{"Everything as expected" if verdict else "Different from what is expected: see below"}</p>',
             "<h2>Configs</h2>", _overview(views, gate)]
    for view in views:
        parts += [_config_section(view, [pair for pair in gate.pairs if pair.config == view.app])]
    if gate.problems:
        parts += ["<h2>Diff gate problems</h2>", _list(gate.problems, "diffs")]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _overview(views: Sequence[ConfigView], gate: GateResult) -> str:
    rows = ["<table><tr><th>config</th><th>sessions</th><th>stages</th><th>expected matrix</th>"
            "<th>accepted failures</th><th>diff pairs</th></tr>"]
    for view in views:
        differences = len(view.missing) + sum(len(v.differences) for v in view.verdicts)
        state = "no expected matrix" if view.matrix is None else "as expected" if view.ok else \
            f"{differences} differences"
        pairs = [pair for pair in gate.pairs if pair.config == view.app]
        diverging = sum(bool(pair.divergences) and not pair.accepted for pair in pairs)
        rows.append(f'<tr data-config="{escape(view.app)}"><th>{escape(view.app)}</th><td>{len(view.ledgers)}</td>'
                    f'<td>{len(view.columns())}</td><td class="{"ok" if view.ok else "bad"}">{escape(state)}</td>'
                    f"<td>{len(view.accepted())}</td><td>{len(pairs)} compared, {diverging} diverging</td></tr>")
    return "\n".join([*rows, "</table>"])


def _config_section(view: ConfigView, pairs: list[Pair]) -> str:
    source = f" ({escape(view.config_path)})" if view.config_path else ""
    parts = [f'<section class="config" data-config="{escape(view.app)}"><h2>{escape(view.app)}{source}</h2>',
             "<h3>Checks by stage</h3>", _matrix(view)]
    parts += ["<h3>Against the expected matrix</h3>", _expected(view)]
    parts += ["<h3>Cross-stage diff</h3>", _pairs(pairs)]
    figures = [(f"{c.stage} ({c.session})", f) for c in view.columns() for f in c.record.figures if is_chaos(f)]
    if figures:
        parts += ["<h3>Chaos timelines</h3>", *(chaos_figure(label, figure) for label, figure in figures)]
    return "\n".join([*parts, "</section>"])


def cell_of(view: ConfigView, column: Column, check: str) -> tuple[str, str]:
    """(outcome, reason) of one cell: the ledger's outcome, an accepted failure as such."""
    outcome, reason = column.record.cell(check)
    messages = column.record.messages.get(check, [])
    if outcome in ("failed", "skipped") and messages:
        reason = messages[0]
    accepted = view.accepted().get((column.session, column.stage, check))
    if outcome == "failed" and accepted is not None:
        return "accepted failure", f"{accepted}: {reason}"
    return outcome, reason


def _matrix(view: ConfigView) -> str:
    columns = view.columns()
    head = "".join(f"<th>{escape(c.stage)}</th>" for c in columns)
    sub = "".join(f'<th class="sub">{escape(c.session)}</th>' for c in columns)
    rows = [f'<table class="matrix"><tr><th rowspan="2">check</th>{head}</tr><tr>{sub}</tr>']
    differing = view.differing()
    for check in view.checks():
        cells = []
        for column in columns:
            outcome, reason = cell_of(view, column, check)
            title = f' title="{escape(reason[:400])}"' if reason else ""
            differs = {(column.session, column.stage, check), (column.session, column.stage, "")} & differing
            mark = ' differs" data-expected="different' if differs else ""
            cells.append(f'<td class="o o-{outcome.replace(" ", "-")}{mark}" data-config="{escape(view.app)}" '
                         f'data-session="{escape(column.session)}" data-stage="{escape(column.stage)}" '
                         f'data-check="{escape(check)}" data-outcome="{escape(outcome)}"{title}>'
                         f"{CELLS.get(outcome, ('?',))[0]} {escape(outcome)}</td>")
        label = escape(check.removeprefix("test_").replace("_", " "))
        rows.append(f'<tr><th title="{escape(check)}">{label}</th>{"".join(cells)}</tr>')
    return "\n".join([*rows, "</table>"])


def _expected(view: ConfigView) -> str:
    if view.matrix is None:
        return f'<p class="bad">no expected/{escape(view.app)}.toml: write one with ' \
               "<code>stageproof expected write reports/*.json</code></p>"
    lines = [d.line() for d in view.missing] + [d.line() for v in view.verdicts for d in v.differences]
    accepted = [f"{v.session}: {a.line()}" for v in view.verdicts for a in v.accepted]
    compared = sum(v.compared for v in view.verdicts)
    head = f'<p class="{"ok" if not lines else "bad"}" data-differences="{len(lines)}">{compared} cells compared ' \
           f"with {escape(str(view.matrix.path))}: {len(lines)} differences, {len(accepted)} accepted failures</p>"
    return "\n".join([head, _list(lines, "diffs"), _list(accepted, "diffs")])


def _pairs(pairs: list[Pair]) -> str:
    if not pairs:
        return "<p>no pair of fresh recordings to compare</p>"
    rows = ["<table><tr><th>reference</th><th>stage</th><th>requests</th><th>divergences</th></tr>"]
    for pair in pairs:
        state = "ok" if not pair.divergences else "accepted" if pair.accepted else "bad"
        lines = "<br>".join(escape(line) for line in pair.divergences) or "none"
        rows.append(f'<tr data-pair="{escape(pair.reference)}|{escape(pair.other)}" '
                    f'data-divergences="{len(pair.divergences)}"><td>{escape(pair.reference)}</td>'
                    f'<td>{escape(pair.other)}</td><td class="num">{pair.requests}</td>'
                    f'<td class="{state}">{lines}</td></tr>')
    return "\n".join([*rows, "</table>"])


def _list(lines: Sequence[str], css: str) -> str:
    return f'<ul class="{css}">' + "".join(f"<li>{escape(line)}</li>" for line in lines) + "</ul>" if lines else ""

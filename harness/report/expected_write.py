"""`stageproof expected write REPORT.json...`: accept today's state as the expected matrix, then edit it.

Reports are grouped by config (their `run.config`); each becomes the run named after its session.
Runs of an existing file that no report names are kept, and so is every accepted failure whose
reason and pattern still hold (a new failure gets a FIXME reason and a pattern from its message).
TOML is written here (strings and inline tables only): tomllib reads, it does not write.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from harness.report.expected import (
    ACCEPTED,
    PASSED,
    STAGE_KEY,
    Cell,
    ExpectedMatrix,
    ExpectedMatrixError,
    StageRows,
    load_matrix,
    rows_of,
)
from harness.report.ledger import NOT_APPLICABLE, Ledger

BARE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
HEADER = """\
# What every run of {config} proves, per stage and check: CI fails on any difference
# (a check that vanished, turned not applicable, appeared, changed its reason, or an accepted failure
# that passes now or fails differently). Regenerate from real runs' reports with
#   stageproof expected write reports/*.json
# then edit: each accepted failure says why (a ticket) and the pattern its message must keep matching.
# Cells: "passed" | "not applicable: <reason>" | "skipped: <reason>"
#      | {{ status = "accepted failure: <why>", failure = "<regex>" }} (add `intermittent = true` when some runs pass)
"""


def read_ledger(path: Path) -> Ledger:
    try:
        return Ledger.from_payload(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError, AttributeError) as err:
        raise ExpectedMatrixError(f"{path}: not a stageproof JSON report ({err})") from err


def write_expected(reports: Iterable[Path], folder: Path) -> list[Path]:
    """Write (or update) expected/<app>.toml for the config of each report; returns the files."""
    grouped: dict[str, list[tuple[str, Ledger]]] = {}
    for report in reports:
        ledger = read_ledger(report)
        if not ledger.run.config:
            raise ExpectedMatrixError(f"{report}: the report names no config (written before reports carried "
                                      "their run): run the session again")
        grouped.setdefault(ledger.run.config, []).append((ledger.run.session or report.stem, ledger))
    written = []
    for app, ledgers in grouped.items():
        path = folder / f"{app}.toml"
        old = load_matrix(path) if path.exists() else None
        runs = dict(old.runs) if old else {}
        for session, ledger in ledgers:
            runs[session] = _keep_accepted(ledger, (old.runs if old else {}).get(session, {}))
        config = ledgers[0][1].run.config_path or (old.config if old else "")
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(render_matrix(ExpectedMatrix(app, config, runs)), encoding="utf-8")
        written.append(path)
    return written


def _keep_accepted(ledger: Ledger, old: Mapping[str, StageRows]) -> dict[str, StageRows]:
    """Today's rows, where an existing accepted failure that still accepts today's messages stays as written."""
    kept = {}
    for stage, rows in rows_of(ledger).items():
        before, messages = old.get(stage, StageRows()).checks, ledger.stages[stage].messages
        checks = {}
        for check, cell in rows.checks.items():
            previous = before.get(check)
            still = previous is not None and previous.status == ACCEPTED and (
                (cell.status == ACCEPTED and previous.accepts(messages.get(check, [])))
                or (cell.status == PASSED and previous.intermittent))
            checks[check] = previous if still and previous else cell
        kept[stage] = StageRows(rows.not_applicable, checks)
    return kept


def render_matrix(matrix: ExpectedMatrix) -> str:
    out = [HEADER.format(config=matrix.config or matrix.app), f"app = {_string(matrix.app)}",
           f"config = {_string(matrix.config)}"]
    for session, stages in matrix.runs.items():
        for stage, rows in stages.items():
            out += ["", f"[runs.{_key(session)}.{_key(stage)}]"]
            if rows.not_applicable is not None:
                out.append(f"{STAGE_KEY} = {_string(f'{NOT_APPLICABLE}: {rows.not_applicable}')}")
            out += [f"{_key(check)} = {_cell(cell)}" for check, cell in rows.checks.items()]
    return "\n".join(out) + "\n"


def _cell(cell: Cell) -> str:
    if cell.status == ACCEPTED:
        intermittent = ", intermittent = true" if cell.intermittent else ""
        return f"{{ status = {_string(str(cell))}, failure = {_literal(cell.failure or '')}{intermittent} }}"
    return _string(str(cell))


def _key(name: str) -> str:
    return name if name and set(name) <= BARE else _string(name)


def _string(text: str) -> str:
    """A TOML basic string: JSON's escapes are a subset of TOML's."""
    return json.dumps(text, ensure_ascii=False)


def _literal(text: str) -> str:
    """A TOML literal string (no escapes: regexes stay readable) when it can be one."""
    return f"'{text}'" if "'" not in text and "\n" not in text and text.isprintable() else _string(text)

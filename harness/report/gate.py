"""The cross-stage diff as a gate over a whole CI run: every recording the expected matrices call
for exists, is fresh, and answers like its config's first stage.

A session whose first stage only records the reference proves nothing alone; the CI jobs' reports,
gathered in one folder, do. Fresh means: written by the run whose report (reports/<session>.json)
sits beside it (same run id), of this CI run's release, for the config the matrix is about. A
recording no matrix calls for is stale too. Divergences are printed per pair of stages; those of a
stage whose diff check is an accepted failure are accepted when each line matches its pattern.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from harness.config import STAGE_NAMES
from harness.report.expected import ACCEPTED, Cell, ExpectedMatrix
from harness.report.ledger import Ledger
from harness.report.recordings import (
    Provenance,
    RecordingFile,
    RecordingFileError,
    is_recording,
    read_recording_file,
    session_and_stage,
)

DIFF_CHECK = "test_stage_answers_like_the_first_stage"
#: how recording B answers differently from recording A, one line each (`harness.contract.diff.compare`
#: over the two files: the caller brings it, the report layer does not import the contract)
Compare = Callable[[Path, Path], list[str]]


@dataclass(frozen=True)
class Found:
    """One fresh recording: which session and stage of which config."""

    session: str
    stage: str
    recording: RecordingFile
    path: Path

    @property
    def label(self) -> str:
        return f"{self.stage} ({self.session})"


@dataclass(frozen=True)
class Pair:
    config: str
    reference: str  # "local-sqlite (local)"
    other: str
    requests: int
    divergences: tuple[str, ...]
    accepted: bool = False

    def lines(self) -> list[str]:
        state = "accepted" if self.accepted and self.divergences else "ok" if not self.divergences else "DIVERGES"
        head = (f"{self.config}: {self.reference} vs {self.other}: {len(self.divergences)} divergences in "
                f"{self.requests} requests [{state}]")
        return [head, *(f"    {line}" for line in self.divergences)]


@dataclass
class GateResult:
    problems: list[str] = field(default_factory=list)  # missing, stale, unreadable
    pairs: list[Pair] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(pair.accepted or not pair.divergences for pair in self.pairs)

    def lines(self) -> list[str]:
        out = [f"  PROBLEM {problem}" for problem in self.problems]
        out += [line for pair in self.pairs for line in pair.lines()]
        failing = len(self.problems) + sum(not pair.accepted and bool(pair.divergences) for pair in self.pairs)
        return [*out, f"diff gate: {len(self.pairs)} pairs of stages compared, {failing} failing: "
                      + ("PASSED" if self.ok else "FAILED")]


def reports_in(folder: Path) -> dict[str, Ledger]:
    """The session reports of a folder, by session name (recordings and other JSON left out)."""
    found = {}
    for path in sorted(folder.glob("*.json")):
        if is_recording(path):
            continue
        try:
            payload = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(payload, dict) and isinstance(payload.get("stages"), list):
            ledger = Ledger.from_payload(payload)
            found[ledger.run.session or path.stem] = ledger
    return found


def diff_gate(folder: Path, matrices: Iterable[ExpectedMatrix], *, release: str, compare: Compare) -> GateResult:
    """Hold every recording in `folder` to the matrices, then compare each config's recordings to
    its first stage's (the migration's order: local-sqlite first, k8s last)."""
    result, reports = GateResult(), reports_in(folder)
    wanted: dict[tuple[str, str], tuple[str, Cell]] = {}  # (session, stage) -> (config, its diff cell)
    for matrix in matrices:
        for session, stages in matrix.runs.items():
            for stage, rows in stages.items():
                cell = rows.checks.get(DIFF_CHECK)
                if rows.not_applicable is None and cell is not None and cell.status in ("passed", ACCEPTED):
                    wanted[(session, stage)] = (matrix.app, cell)
    fresh: dict[str, list[Found]] = {}
    seen = set()
    for path in sorted(folder.glob("*.recording.*.json")):
        session, stage = session_and_stage(path)
        seen.add((session, stage))
        found = _fresh(path, session, stage, wanted, reports, release, result.problems)
        if found is not None:
            fresh.setdefault(wanted[(session, stage)][0], []).append(found)
    result.problems += [f"missing: {folder / f'{session}.recording.{stage}.json'} (config {config}: the expected "
                        f"matrix runs the diff at {stage} in session {session})"
                        # an accepted failure of the diff check may have recorded nothing (its stage never came up)
                        for (session, stage), (config, cell) in wanted.items()
                        if (session, stage) not in seen and cell.status != ACCEPTED]
    for config, recordings in fresh.items():
        result.pairs += _pairs(config, recordings, wanted, compare)
    return result


def _fresh(path: Path, session: str, stage: str, wanted: dict[tuple[str, str], tuple[str, Cell]],
           reports: dict[str, Ledger], release: str, problems: list[str]) -> Found | None:
    """The recording at `path` if it is one this CI run must have written, else None (a problem noted)."""
    if (session, stage) not in wanted:
        problems.append(f"stale: {path}: no expected matrix runs the diff at {stage} in session {session}")
        return None
    try:
        recording = read_recording_file(path)
    except RecordingFileError as err:
        problems.append(f"unreadable: {err}")
        return None
    why = _stale(recording.provenance, reports.get(session), wanted[(session, stage)][0], release, session)
    if why:
        problems.append(f"stale: {path}: {why}")
        return None
    return Found(session, stage, recording, path)


def _stale(provenance: Provenance | None, report: Ledger | None, config: str, release: str, session: str) -> str:
    if provenance is None:
        return "it carries no provenance (written before recordings said which run wrote them)"
    if report is None:
        return f"no report of session {session} beside it, so no run to hold it to"
    if provenance.run_id != report.run.run_id:
        return f"written by run {provenance.run_id}, but the report of session {session} is run {report.run.run_id}"
    if provenance.release != release:
        return f"of release {provenance.release}, not this CI run's {release}"
    if provenance.config != config:
        return f"recorded for config {provenance.config!r}, the matrix is {config!r}'s"
    return ""


def _order(found: Found) -> tuple[int, str]:
    return (STAGE_NAMES.index(found.stage) if found.stage in STAGE_NAMES else len(STAGE_NAMES), found.session)


def _pairs(config: str, found: list[Found], wanted: dict[tuple[str, str], tuple[str, Cell]],
           compare: Compare) -> list[Pair]:
    reference, *others = sorted(found, key=_order)
    pairs = []
    for other in others:
        lines = tuple(compare(reference.path, other.path))
        cell = wanted[(other.session, other.stage)][1]
        accepted = cell.status == ACCEPTED and bool(lines) and all(cell.accepts([line]) for line in lines)
        pairs.append(Pair(config, reference.label, other.label, other.recording.requests, lines, accepted))
    return pairs

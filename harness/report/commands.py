"""`stageproof expected write|check`, `stageproof diff-gate`, `stageproof report migration`: the proof
ledger of a whole CI run, from the reports its sessions wrote (no config needed)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.config import Settings
from harness.report.expected import ExpectedMatrix, load_matrix
from harness.report.gate import Compare

EXPECTED = Path("expected")
REPORTS = Path("reports")


def matrices_in(folder: Path) -> list[ExpectedMatrix]:
    return [load_matrix(path) for path in sorted(folder.glob("*.toml"))]


def cmd_expected(settings: Settings | None, args: argparse.Namespace) -> int:
    from harness.report.expected_write import read_ledger, write_expected
    from harness.report.verdict import compare

    if args.action == "write":
        for path in write_expected(args.reports, args.expected):
            print(f"wrote {path}: review it, then give each accepted failure its reason")
        return 0
    matrices = {matrix.app: matrix for matrix in matrices_in(args.expected)}
    failed = 0
    for report in args.reports:
        ledger = read_ledger(report)
        if not ledger.stages:
            continue  # a session without stages (unit, leaks): nothing to hold
        matrix = matrices.get(ledger.run.config)
        if matrix is None:
            print(f"{report}: no {args.expected}/{ledger.run.config or '<config>'}.toml")
            failed += 1
            continue
        verdict = compare(ledger, matrix, ledger.run.session or report.stem)
        print("\n".join(verdict.lines()))
        failed += not verdict.ok
    return 1 if failed else 0


def cmd_diff_gate(settings: Settings | None, args: argparse.Namespace) -> int:
    from harness.core.release import current_release
    from harness.report.gate import diff_gate

    release = args.release or current_release(Path.cwd())
    result = diff_gate(args.reports, matrices_in(args.expected), release=release, compare=args.compare)
    print(f"diff gate over {args.reports} (release {release}):")
    print("\n".join(result.lines()))
    return 0 if result.ok else 1


def cmd_report(settings: Settings | None, args: argparse.Namespace) -> int:
    from harness.core.release import current_release
    from harness.report.migration import write_migration_report

    release = args.release or current_release(Path.cwd())
    page = write_migration_report(args.reports, args.output, expected=args.expected, release=release,
                                  compare=args.compare)
    print(f"migration report: {page}")
    return 0


def add_commands(sub: Any, *, compare: Compare) -> None:
    """The parsers of these commands, on `stageproof`'s subparsers; `compare` tells how one saved
    recording answers differently from another (the CLI brings the contract's diff)."""
    expected = sub.add_parser("expected", help="write the expected matrix from reports, or check reports against it")
    expected.add_argument("action", choices=["write", "check"])
    expected.add_argument("reports", nargs="+", type=Path, help="JSON reports (reports/<session>.json)")
    expected.add_argument("--expected", type=Path, default=EXPECTED, help="the matrices' folder (default expected/)")
    expected.set_defaults(func=cmd_expected, needs_config=False)
    gate = sub.add_parser("diff-gate", help="every recording a CI run must have: present, fresh, and alike")
    gate.add_argument("--reports", type=Path, default=REPORTS, help="the run's reports and recordings (reports/)")
    gate.add_argument("--expected", type=Path, default=EXPECTED)
    gate.add_argument("--release", help="this CI run's release (default: the checkout's, as the sessions took it)")
    gate.set_defaults(func=cmd_diff_gate, needs_config=False, compare=compare)
    report = sub.add_parser("report", help="one HTML page for the whole migration (every config, every stage)")
    report.add_argument("kind", choices=["migration"])
    report.add_argument("reports", nargs="+", type=Path, help="JSON reports (reports/*.json)")
    report.add_argument("-o", "--output", type=Path, default=REPORTS / "migration.html")
    report.add_argument("--expected", type=Path, default=EXPECTED)
    report.add_argument("--release", help="this CI run's release (default: the checkout's)")
    report.set_defaults(func=cmd_report, needs_config=False, compare=compare)

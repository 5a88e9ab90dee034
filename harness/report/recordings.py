"""A cross-stage diff recording on disk, with where it came from: the run, its release, the config
and the session (report) that wrote it, so that a gate reading reports/ can tell a fresh recording
from one an earlier run left there.

The answers stay in `harness.contract.diff.Recording`'s format (it ignores the extra key), so
`stageproof diff A B` reads these files as before. This module reads and writes only the JSON
around them: comparing answers is the contract's job (the report layer does not import it).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.errors import StageproofError

MARK = ".recording."


class RecordingFileError(StageproofError):
    """A recording file cannot be read as one."""


@dataclass(frozen=True)
class Provenance:
    """Who wrote a recording: one run (`run_id`) of one release, for the app `config` names, in
    the session whose report is reports/<session>.json."""

    run_id: str
    release: str
    config: str
    session: str
    written: float = field(default_factory=time.time)


@dataclass(frozen=True)
class RecordingFile:
    """What the gate needs of a recording without comparing it: its stage, size and provenance."""

    path: Path
    stage: str
    release: str
    requests: int
    provenance: Provenance | None


def recording_path(report: Path, stage: str) -> Path:
    """Beside the JSON report: `local.json` -> `local.recording.local-mysql.json`."""
    return report.with_name(f"{report.with_suffix('').name}{MARK}{stage}.json")


def write_recording(path: Path, recording_json: str, provenance: Provenance) -> None:
    """`recording_json` (`Recording.to_json()`) with its provenance added."""
    data = json.loads(recording_json)
    data["provenance"] = asdict(provenance)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def read_recording_file(path: Path) -> RecordingFile:
    """The recording's stage, release, number of requests and provenance (None: written before
    recordings carried one)."""
    try:
        data = json.loads(path.read_text())
        found = data.get("provenance")
        provenance = Provenance(**found) if isinstance(found, dict) else None
        return RecordingFile(path, str(data["stage"]), str(data["release"]), len(data["answers"]), provenance)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise RecordingFileError(f"{path}: cannot read the recording ({err})") from err


def is_recording(path: Path) -> bool:
    return MARK in path.name


def session_and_stage(path: Path) -> tuple[str, str]:
    """`local.recording.local-mysql.json` -> ("local", "local-mysql"), from the name alone."""
    session, _, rest = path.name.partition(MARK)
    return session, rest.removesuffix(".json")

"""A cross-stage diff recording on disk, with where it came from: the run, its release, the config
and the session (report) that wrote it, so that a gate reading reports/ can tell a fresh recording
from one an earlier run left there.

The answers stay in `harness.contract.diff.Recording`'s format (it ignores the extra key), so
`stageproof diff A B` reads these files as before.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.contract.diff import Recording, RecordingUnreadable

MARK = ".recording."


@dataclass(frozen=True)
class Provenance:
    """Who wrote a recording: one run (`run_id`) of one release, for the app `config` names, in
    the session whose report is reports/<session>.json."""

    run_id: str
    release: str
    config: str
    session: str
    written: float = field(default_factory=time.time)


def recording_path(report: Path, stage: str) -> Path:
    """Beside the JSON report: `local.json` -> `local.recording.local-mysql.json`."""
    return report.with_name(f"{report.with_suffix('').name}{MARK}{stage}.json")


def write_recording(path: Path, recording: Recording, provenance: Provenance) -> None:
    data = json.loads(recording.to_json())
    data["provenance"] = asdict(provenance)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def read_recording(path: Path) -> tuple[Recording, Provenance | None]:
    """The recording and its provenance (None: written before recordings carried one)."""
    recording = Recording.read(path)
    try:
        found = json.loads(path.read_text()).get("provenance")
        provenance = Provenance(**found) if isinstance(found, dict) else None
    except (OSError, ValueError, TypeError) as err:
        raise RecordingUnreadable(f"{path}: unreadable provenance ({err})") from err
    return recording, provenance


def is_recording(path: Path) -> bool:
    return MARK in path.name


def session_and_stage(path: Path) -> tuple[str, str]:
    """`local.recording.local-mysql.json` -> ("local", "local-mysql"), from the name alone."""
    session, _, rest = path.name.partition(MARK)
    return session, rest.removesuffix(".json")

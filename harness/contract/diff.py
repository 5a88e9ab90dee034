"""The cross-stage diff: one sequence of GET requests, recorded at a run's first stage and replayed
at every later one (or against a recording saved by another run); every divergence names the request.

Pure functions over the settings, the contract and the responses. The check
(`harness.checks.diff_check`) and `stageproof diff A B` are the two callers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import requests

from harness.config import STAGE_NAMES, Settings
from harness.contract.cases import BUILT_IN, PLACEHOLDER, Case, Request
from harness.contract.runner import ContractClient
from harness.errors import StageproofError

FORMAT = 1
MASKED = "${masked}"
#: a value that differed between two reads at the same stage: noise, not compared
VOLATILE = "${volatile}"
MAX_PER_REQUEST = 10
CLIP = 120
#: headers whose value is a comma-separated set: a server may list it in any order (Werkzeug's
#: `Allow` differs per process), so two stages compare its members, not its order
LIST_HEADERS = frozenset({"allow", "vary", "access-control-allow-methods", "access-control-allow-headers",
                          "access-control-expose-headers", "accept-patch", "accept-post"})


class RecordingUnreadable(StageproofError):
    """A saved recording cannot be read (missing, not JSON, another format)."""


def stage_unique(run_id: str, stage: str) -> str:
    """The contract's `${unique}` at one stage of one run: the same for every case, so every
    stage's database holds the same rows when the diff runs (and a new run never collides)."""
    index = STAGE_NAMES.index(stage) if stage in STAGE_NAMES else len(STAGE_NAMES)
    return f"{run_id}{index}"


@dataclass(frozen=True)
class Answer:
    """One request and what came back, normalised so that two stages can be compared."""

    method: str
    path: str  # as written in the sequence: placeholders unresolved, the same at every stage
    auth: str
    status: int
    headers: dict[str, Any]
    body: Any  # parsed JSON, or the text; VOLATILE where two reads at this stage differed
    is_json: bool

    @property
    def request(self) -> str:
        how = {"token": " (with the token)", "wrong": " (with a wrong token)"}.get(self.auth, "")
        return f"{self.method} {self.path}{how}"

    def as_request(self) -> Request:
        return Request.model_validate({"method": self.method, "path": self.path, "auth": self.auth})


@dataclass(frozen=True)
class Recording:
    stage: str
    release: str
    answers: tuple[Answer, ...]

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "stage": self.stage, "release": self.release,
                           "answers": [asdict(answer) for answer in self.answers]}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Recording:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not a stageproof recording of format {FORMAT}")
        return cls(data["stage"], data["release"], tuple(Answer(**answer) for answer in data["answers"]))

    @classmethod
    def read(cls, path: Path) -> Recording:
        try:
            return cls.from_json(path.read_text())
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise RecordingUnreadable(f"{path}: cannot read the recording ({err}); write one with "
                                      "`pytest --stageproof-report PATH` (it lands beside PATH)") from err

    def requests(self) -> list[Request]:
        return [answer.as_request() for answer in self.answers]


@dataclass(frozen=True)
class Normaliser:
    """What may differ between stages without being a divergence."""

    ignore_fields: frozenset[str]
    headers: tuple[str, ...]
    unique: str
    release: str

    @classmethod
    def for_stage(cls, settings: Settings, unique: str, release: str) -> Normaliser:
        checks = settings.checks
        return cls(frozenset(checks.diff_ignore_fields), tuple(checks.diff_headers), unique, release)

    def answer(self, request: Request, response: requests.Response) -> Answer:
        is_json, body = _body(response)
        headers = {name: response.headers.get(name) for name in self.headers}
        return Answer(request.method, request.path, request.auth, response.status_code,
                      normalise(headers, ignore=(), unique=self.unique, release=self.release),
                      normalise(body, ignore=self.ignore_fields if is_json else (), unique=self.unique,
                                release=self.release), is_json)


def normalise(body: Any, *, ignore: Collection[str], unique: str, release: str) -> Any:
    """`body` with the fields named in `ignore` masked at any depth and the run's unique token and
    release id written as `${unique}` and `${release}`; lists keep their order (order matters)."""
    if isinstance(body, dict):
        return {key: MASKED if key in ignore else normalise(value, ignore=ignore, unique=unique, release=release)
                for key, value in body.items()}
    if isinstance(body, list):
        return [normalise(item, ignore=ignore, unique=unique, release=release) for item in body]
    if isinstance(body, str):
        if unique:  # random (a run id): safe to find anywhere, also glued to a word (`note-${unique}`)
            body = body.replace(unique, "${unique}")
        if release:
            body = _whole_token(release).sub("${release}", body)
    return body


def _whole_token(value: str) -> re.Pattern[str]:
    """`value` where it stands as a whole token: not inside a longer run of letters, digits, `_`
    and `-` (a release `dev` is no part of `device-width`; `abc123-dirty` is found in `v=abc123-dirty`)."""
    return re.compile(rf"(?<![\w-]){re.escape(value)}(?![\w-])")


def build_sequence(settings: Settings, cases: Sequence[Case], openapi: Mapping[str, Any] | None) -> list[Request]:
    """The document's GET operations without path parameters, then the contract's GET steps whose
    placeholders are built in (a saved `${id}` differs per stage), each once, in that order."""
    found: dict[tuple[str, str, str], Request] = {}
    document = openapi or {}
    for path, operations in (document.get("paths") or {}).items():
        if isinstance(operations, dict) and "get" in operations and "{" not in path:
            secured = operations["get"].get("security", document.get("security"))
            auth = "token" if secured and settings.app.token else "none"
            found.setdefault(("GET", path, auth), Request.model_validate({"path": path, "auth": auth}))
    for case in cases:
        for step in case.all_steps():
            request = step.request
            if request.method == "GET" and set(PLACEHOLDER.findall(request.path)) <= BUILT_IN:
                found.setdefault(("GET", request.path, request.auth),
                                 Request.model_validate({"path": request.path, "auth": request.auth}))
    return list(found.values())


def record(client: ContractClient, sequence: Sequence[Request], normaliser: Normaliser) -> Recording:
    """Send each request of `sequence` twice; what differs between the two reads is noise (a
    counter, a clock) and is marked VOLATILE instead of being compared."""
    deployment = client.deployment
    variables = {"release": deployment.release, "unique": client.unique, "token": deployment.token or ""}
    answers = []
    for request in sequence:
        first, second = (normaliser.answer(request, client.send(request, variables)) for _ in range(2))
        answers.append(Answer(first.method, first.path, first.auth, first.status,
                              _stable(first.headers, second.headers), _stable(first.body, second.body),
                              first.is_json))
    return Recording(deployment.stage, deployment.release, tuple(answers))


def compare(a: Recording, b: Recording) -> list[str]:
    """Every way `b` answers differently from `a`, one line each, naming the request (a's value first)."""
    theirs = {answer.request: answer for answer in b.answers}
    problems: list[str] = []
    for mine in a.answers:
        other = theirs.pop(mine.request, None)
        found = [f"not recorded at {b.stage}"] if other is None else _differences(mine, other, a.stage, b.stage)
        if len(found) > MAX_PER_REQUEST:
            found = [*found[:MAX_PER_REQUEST], f"... and {len(found) - MAX_PER_REQUEST} more differences"]
        problems += [f"{mine.request}: {line}" for line in found]
    problems += [f"{request}: not recorded at {a.stage}" for request in theirs]
    return problems


def _body(response: requests.Response) -> tuple[bool, Any]:
    if "json" in response.headers.get("Content-Type", ""):
        try:
            return True, response.json()
        except ValueError:
            pass
    return False, response.text


def _stable(first: Any, second: Any) -> Any:
    """`first`, with VOLATILE wherever `second` (the same request, read again) differs."""
    if first == second:
        return first
    if isinstance(first, dict) and isinstance(second, dict) and first.keys() == second.keys():
        return {key: _stable(value, second[key]) for key, value in first.items()}
    if isinstance(first, list) and isinstance(second, list) and len(first) == len(second):
        return [_stable(mine, theirs) for mine, theirs in zip(first, second, strict=True)]
    return VOLATILE


def _differences(a: Answer, b: Answer, a_stage: str, b_stage: str) -> list[str]:
    found = [f"status {a.status} vs {b.status}"] if a.status != b.status else []
    for name in dict.fromkeys([*a.headers, *b.headers]):
        mine, theirs = a.headers.get(name), b.headers.get(name)
        if name.lower() in LIST_HEADERS and _members(mine) == _members(theirs):
            continue
        found += _values(f"header {name}", mine, theirs, b_stage)
    if a.is_json and b.is_json:
        found += _values("body", a.body, b.body, b_stage)
    elif a.is_json != b.is_json:
        found.append(f"body is {'JSON' if a.is_json else 'text'} at {a_stage}, {'JSON' if b.is_json else 'text'} "
                     f"at {b_stage}")
    else:
        found += _text(a.body, b.body, b_stage)
    return found


def _members(value: Any) -> Any:
    """A list-valued header's members as a set (`POST, OPTIONS` == `OPTIONS,POST`); other values as they are."""
    if not isinstance(value, str) or value == VOLATILE:
        return value
    return frozenset(part.strip().lower() for part in value.split(",") if part.strip())


def _values(where: str, a: Any, b: Any, b_stage: str) -> list[str]:
    """Where two normalised JSON values differ, by field path (`body field [0].email: ...`)."""
    if a in (VOLATILE, b):
        return []
    if b == VOLATILE:
        return [f"{where}: varies between two reads at {b_stage} only"]
    if isinstance(a, dict) and isinstance(b, dict):
        found = []
        for key in dict.fromkeys([*a, *b]):
            field = _field(where, f".{key}" if where != "body" else str(key))
            found += _values(field, a.get(key, _ABSENT), b.get(key, _ABSENT), b_stage)
        return found
    if isinstance(a, list) and isinstance(b, list):
        found = [f"{where}: {len(a)} items vs {len(b)}"] if len(a) != len(b) else []
        for index, (mine, theirs) in enumerate(zip(a, b, strict=False)):
            found += _values(_field(where, f"[{index}]"), mine, theirs, b_stage)
        return found
    return [f"{where}: {_show(a)} vs {_show(b)}"]


def _field(where: str, step: str) -> str:
    return f"body field {step}" if where == "body" else f"{where}{step}"


def _text(a: str, b: str, b_stage: str) -> list[str]:
    if a in (VOLATILE, b):
        return []
    if b == VOLATILE:
        return [f"body varies between two reads at {b_stage} only"]
    mine, theirs = a.splitlines(), b.splitlines()
    lines = [number for number in range(max(len(mine), len(theirs)))
             if number >= len(mine) or number >= len(theirs) or mine[number] != theirs[number]]
    if not lines:
        return [f"body {_show(a)} vs {_show(b)}"]  # only line endings differ
    first = lines[0]
    line = f"body line {first + 1}: {_show(_line(mine, first))} vs {_show(_line(theirs, first))}"
    return [line + (f" ({len(lines)} lines differ)" if len(lines) > 1 else "")]


def _line(lines: list[str], number: int) -> Any:
    return lines[number] if number < len(lines) else _ABSENT


class _Absent:
    def __repr__(self) -> str:
        return "absent"


_ABSENT: Any = _Absent()


def _show(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= CLIP else shown[:CLIP - 3] + "..."

"""What a request carries and what its answer's body must hold, beyond the status code.

A `BodyCheck` turns "HTTP 200 with an error page" into a counted failure (`body: missing 'ok'`).
A `Mark` gives every request a run-unique id (`<token>-<n>`) in its query string or a header, so
a check that reads the app's logs can look for exactly the requests this load sent.
"""

from __future__ import annotations

import enum
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

JsonScalar = str | int | float | bool | None
SHOWN = 40  # characters of a value a reason quotes: reasons are counted, so they must stay few and short
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


class _Absent(enum.Enum):
    ABSENT = "absent"


ABSENT = _Absent.ABSENT


@dataclass(frozen=True)
class Contains:
    """The body must contain `text` (decoded as UTF-8, undecodable bytes replaced)."""

    text: str

    def problem(self, body: bytes) -> str | None:
        return None if self.text in body.decode("utf-8", "replace") else f"body: missing {_shown(self.text)}"


@dataclass(frozen=True)
class JsonField:
    """The body is JSON and has the dotted `path` (`status`, `items.0.id`: keys, or list indexes);
    with `equals`, the value there must be exactly that scalar."""

    path: str
    equals: JsonScalar | _Absent = ABSENT

    def __post_init__(self) -> None:
        if not self.path or "" in self.path.split("."):
            raise ValueError(f"json_field must be a dotted path such as 'status' or 'items.0.id', not {self.path!r}")

    def problem(self, body: bytes) -> str | None:
        try:
            value: object = json.loads(body)
        except ValueError:
            return "body: not JSON"
        for part in self.path.split("."):
            value = _step(value, part)
            if value is ABSENT:
                return f"body: no {self.path!r}"
        if self.equals is ABSENT or _same(value, self.equals):
            return None
        return f"body: {self.path} is {_shown(value)}, not {_shown(self.equals)}"


BodyCheck = Contains | JsonField


def body_check(spec: Mapping[str, object]) -> BodyCheck:
    """A check from config: `{"contains": "ok"}`, `{"json_field": "status", "equals": "ok"}` or
    `{"json_field": "items.0"}` (must exist). One clear error names the key that is wrong."""
    keys, text, path, equals = set(spec), spec.get("contains"), spec.get("json_field"), spec.get("equals", ABSENT)
    if keys == {"contains"} and isinstance(text, str) and text:
        return Contains(text)
    if "json_field" in keys and keys <= {"json_field", "equals"} and isinstance(path, str):
        if isinstance(equals, _Absent | str | int | float | bool) or equals is None:
            return JsonField(path, equals)
        raise ValueError(f"body check 'equals' must be a JSON scalar (text, number, true/false, null), not {equals!r}")
    raise ValueError(f"a body check is {{contains = 'text'}} or {{json_field = 'a.b', equals = value}} (equals "
                     f"optional), not {dict(spec)!r}")


@dataclass(frozen=True)
class Mark:
    """Request n carries `<token>-<n>`: as `?<name>=<id>` (query) or a `<name>: <id>` header."""

    where: Literal["query", "header"] = "query"
    name: str = "stageproof"
    token: str = field(default_factory=lambda: secrets.token_hex(6))

    def __post_init__(self) -> None:
        if not NAME.fullmatch(self.name):
            raise ValueError(f"a marker name is letters, digits, '-' and '_', not {self.name!r}")
        if self.where not in ("query", "header"):
            raise ValueError(f"a marker goes in the 'query' or a 'header', not {self.where!r}")

    def id(self, number: int) -> str:
        return f"{self.token}-{number}"

    def path(self, path: str, number: int) -> str:
        """`path` with this request's marker when it goes in the query string."""
        if self.where != "query":
            return path
        return f"{path}{'&' if '?' in path else '?'}{self.name}={self.id(number)}"

    def header(self, number: int) -> str:
        return f"{self.name}: {self.id(number)}\r\n" if self.where == "header" else ""


def _step(value: object, part: str) -> object:
    if isinstance(value, dict):
        return value.get(part, ABSENT)
    if isinstance(value, list) and part.isdigit() and int(part) < len(value):
        return value[int(part)]
    return ABSENT


def _same(value: object, expected: JsonScalar) -> bool:
    """JSON equality without Python's True == 1."""
    return (type(value) is type(expected) and value == expected) or (
        isinstance(value, int | float) and isinstance(expected, int | float)
        and not isinstance(value, bool) and not isinstance(expected, bool) and value == expected)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN else text[:SHOWN - 3] + "..."

"""The contract file's schema: cases of one or more request/expect steps."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.config import describe
from harness.errors import ConfigError


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Request(_Model):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    path: str = Field(pattern=r"^/")
    auth: Literal["none", "token", "wrong"] = "none"
    json_body: Any = Field(None, alias="json")
    data: str | None = None
    content_type: str | None = None


class Expect(_Model):
    status: int = Field(ge=100, le=599)
    content_type: str | None = None
    body: str | None = None
    json_body: Any = Field(None, alias="json")
    json_subset: dict[str, Any] | None = None
    json_keys: list[str] | None = None
    json_length: int | None = Field(None, ge=0)
    text_contains: list[str] | None = None


class Step(_Model):
    request: Request
    expect: Expect
    save: dict[str, str] = Field(default_factory=dict)


class Case(_Model):
    name: str = Field(min_length=1)
    steps: list[Step] = Field(default_factory=list)
    request: Request | None = None
    expect: Expect | None = None
    save: dict[str, str] = Field(default_factory=dict)
    fresh_only: bool = False

    @model_validator(mode="after")
    def _one_form(self) -> Case:
        single = self.request is not None or self.expect is not None
        if single == bool(self.steps):
            raise ValueError("give either request + expect, or steps, not both or neither")
        if single and (self.request is None or self.expect is None):
            raise ValueError("a single-step case needs both request and expect")
        return self

    def all_steps(self) -> list[Step]:
        if self.steps:
            return self.steps
        assert self.request is not None and self.expect is not None
        return [Step(request=self.request, expect=self.expect, save=self.save)]


class ContractFile(_Model):
    case: list[Case] = Field(min_length=1)


BUILT_IN = frozenset({"release", "unique", "token"})
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def load_cases(path: Path) -> list[Case]:
    """Read and validate the contract file; one ConfigError naming the case (by its name) and key."""
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{path}: {err}") from err
    try:
        cases = ContractFile.model_validate(raw).case
    except ValidationError as err:
        raise ConfigError(f"{path}: {describe(err, names=_case_names(raw))}") from None
    names = [case.name for case in cases]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"{path}: case names must be unique: {duplicates[0]!r} repeats")
    for case in cases:
        _check_placeholders(path, case)
    return cases


def _case_names(raw: dict[str, Any]) -> dict[int, str]:
    listed: list[Any] = raw["case"] if isinstance(raw.get("case"), list) else []
    return {index: str(case["name"]) for index, case in enumerate(listed)
            if isinstance(case, dict) and case.get("name")}


def _check_placeholders(path: Path, case: Case) -> None:
    """Every `${name}` a step uses is built in or saved by an earlier step of the same case."""
    known = set(BUILT_IN)
    for number, step in enumerate(case.all_steps(), start=1):
        used = set(PLACEHOLDER.findall(step.model_dump_json(by_alias=True, exclude={"save"})))
        unknown = sorted(used - known)
        if unknown:
            raise ConfigError(f"{path}: case {case.name!r}: step {number}: ${{{unknown[0]}}} is neither built in "
                              f"({', '.join(sorted(BUILT_IN))}) nor saved by an earlier step")
        known |= set(step.save)

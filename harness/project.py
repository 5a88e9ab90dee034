"""A project: the config and the contract, read once and checked against each other.

The config names contract cases (`checks.persistence`), and the contract's schema knows nothing of
the config: this module is where the two meet, so neither imports the other. Both front doors load
a project once per run; the contract file is parsed once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.config import Settings, config_path, load_settings
from harness.contract.cases import Case, load_cases
from harness.errors import ConfigError


@dataclass(frozen=True)
class Project:
    """The validated settings and the contract's cases of one app."""

    settings: Settings
    cases: tuple[Case, ...]

    def case(self, name: str) -> Case:
        return next(case for case in self.cases if case.name == name)


def load_project(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Project:
    """The config file (see `config.config_path`) and the contract it names, cross-checked."""
    settings = load_settings(path, env)
    cases = tuple(load_cases(settings.contract.cases))
    check_references(settings, cases, source=str(config_path(path, env)))
    return Project(settings, cases)


def check_references(settings: Settings, cases: tuple[Case, ...], *, source: str) -> None:
    """`checks.persistence` names a contract case with at least two steps (write, then read back)."""
    name = settings.checks.persistence
    if name is None:
        return
    found = {case.name: case for case in cases}
    if name not in found:
        raise ConfigError(f"{source}: checks.persistence: no contract case named {name!r} in {settings.contract.cases}")
    if len(found[name].all_steps()) < 2:
        raise ConfigError(f"{source}: checks.persistence: case {name!r} needs steps (write, then read back)")

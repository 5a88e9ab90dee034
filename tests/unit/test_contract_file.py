"""Contract-file errors name the case by its name and the offending key."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.contract.cases import load_cases
from harness.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "contract.toml"
    path.write_text(text)
    return path


def test_a_misspelt_key_names_the_case_and_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[[case]]\nname = "list"\nrequest = { path = "/x" }\nexpect = { stauts = 200 }\n')
    with pytest.raises(ConfigError, match=r"case\.'list'\.expect\.stauts: unknown key"):
        load_cases(path)


def test_a_placeholder_nobody_saved_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[[case]]\nname = "read"\n[[case.steps]]\nrequest = { path = "/x" }\n'
                           'expect = { status = 200 }\nsave = { id = "id" }\n[[case.steps]]\n'
                           'request = { path = "/x/${idd}" }\nexpect = { status = 200 }\n')
    with pytest.raises(ConfigError, match=r"case 'read': step 2: \$\{idd\} is neither built in"):
        load_cases(path)


def test_saved_and_built_in_placeholders_are_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, '[[case]]\nname = "read"\n[[case.steps]]\nrequest = { path = "/x/${unique}" }\n'
                           'expect = { status = 200, text_contains = ["${release}"] }\nsave = { id = "id" }\n'
                           '[[case.steps]]\nrequest = { path = "/x/${id}" }\nexpect = { status = 200 }\n')
    assert [case.name for case in load_cases(path)] == ["read"]
